/*
 * Header-only capture of a kernel run: libpcap on the "any" device with a
 * filter on the responder's port, 128 bytes per packet (IP and TCP headers
 * with their options, where MP_CAPABLE, MP_JOIN, DSS and ADD_ADDR are), in a
 * thread of the run's process, into memory capped at EXP_TRACE_MAX; the run
 * gets it as the trace "capture.pcap". Needs CAP_NET_RAW: without it, or
 * without a capture device, the run goes on and says so (the event
 * "capture_unavailable"). Concurrent runs to the same responder port on this
 * node show up in each other's captures.
 */
#ifndef AGENT_EXP_PCAP_H
#define AGENT_EXP_PCAP_H

#include "exp.h"

#define EXP_PCAP_SNAPLEN 128

struct exp_pcap;

/* Starts capturing; NULL (after an event saying why) when it cannot. */
struct exp_pcap *exp_pcap_start(unsigned int port, struct exp_out *out);
/* Stops, and hands the capture to the run as "capture.pcap" (events for drops and the cap). */
void exp_pcap_stop(struct exp_pcap *c, struct exp_out *out);

#endif
