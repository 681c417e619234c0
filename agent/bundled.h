/*
 * The bundled stack (libmps) in the agent: what the agent knows about its own
 * bundled addresses, the "info" text the kernel responder gives a peer that
 * asks for them, and a small driver that runs one libmps stack on one TUN
 * device (pump, wait on the device or the stack's next timer).
 *
 * Two TUN devices per node: bundled_tun for the client side of runs (opened by
 * the run's child process, one bundled run at a time per node) and
 * bundled_responder_tun for the long-lived bundled responder (bundled_resp.c),
 * each with its own addresses per ISP. docs/agent.md says why.
 */
#ifndef AGENT_BUNDLED_H
#define AGENT_BUNDLED_H

#include <stddef.h>
#include <stdint.h>

#include "agent_config.h"
#include "agent_sysinfo.h"
#include "exp.h"
#include "mps.h"

struct mps_tun;
struct mps_host;
struct mps_trace;

#define BUNDLED_MAX_ISPS AGENT_MAX_IFACES
/* libmps is built from the same tree as the agent: its version is the agent's. */
#define BUNDLED_LIBMPS_VERSION "libmps " FJORD_AGENT_VERSION
/* The info text: "ISP V4 V6[ PORT]\n" per ISP, "-" for none; PORT only for a host adapter. */
#define BUNDLED_INFO_MAX 1024

struct bundled_isp {
	char isp[AGENT_LABEL_MAX + 1];
	char addr[2][AGENT_ADDR_MAX]; /* client side: [0] IPv4, [1] IPv6; "" none */
	char resp[2][AGENT_ADDR_MAX]; /* responder side */
};

struct bundled_cfg {
	char tun[AGENT_IFNAME_MAX];	 /* "" : no bundled stack on this agent */
	char resp_tun[AGENT_IFNAME_MAX]; /* "" : no bundled responder */
	/*
	 * The host adapter instead of TUN devices (agent config bundled_host):
	 * runs and the responder on the node's own addresses (isps[].addr, also
	 * copied into isps[].resp), the responder on resp_port.
	 */
	bool host;
	uint16_t resp_port;
	struct bundled_isp isps[BUNDLED_MAX_ISPS];
	unsigned int n_isps;
	uint32_t rcvbuf_max; /* autotuning caps (agent config bundled_*buf_max); 0: libmps's */
	uint32_t sndbuf_max;
	bool offloads; /* TUN devices with libmps's offloads (agent config bundled_offloads) */
};

/* The bundled part of the agent's configuration (interfaces with a bundled address). */
void bundled_cfg_from_agent(const struct agent_config *c, struct bundled_cfg *b);
/* Set once at start; the run's children inherit it. NULL clears it. */
void bundled_set(const struct bundled_cfg *b);
const struct bundled_cfg *bundled_get(void);

/*
 * The buffer settings of every bundled stack of the agent into cfg: libmps's
 * starting buffers (256 KiB), autotuned up to the configured caps.
 */
void bundled_cfg_buffers(const struct bundled_cfg *b, struct mps_config *cfg);

/* Address literal (no prefix) into a libmps endpoint; 0 or -EINVAL. */
int bundled_addr(const char *s, uint16_t port, struct mps_addr *a);
/* Back to text, for traces and results. */
void bundled_addr_str(const struct mps_addr *a, char *buf, size_t len);
/* getrandom() for mps_config.rand_bytes. */
void bundled_rand(void *ctx, void *buf, size_t len);

/*
 * The responder addresses as the kernel responder's "info" answer: one line
 * "ISP V4 V6" per ISP ("-" where there is none). Returns the length, or
 * -ENOSPC if it does not fit len (BUNDLED_INFO_MAX is always enough).
 */
int bundled_info_text(const struct bundled_cfg *b, char *buf, size_t len);
/*
 * The address of isp and family (4 or 6) in an info text into out.
 * 0, -ENOENT (no such ISP or no address of that family) or -EPROTO (bad line).
 */
int bundled_info_lookup(const char *text, const char *isp, int family, char *out, size_t len);

/*
 * The port of the bundled responder on isp in an info text: the line's
 * fourth field (a host adapter's responder), or dflt (the kernel
 * responder's port) for a line of three. -ENOENT (no such ISP) or -EPROTO.
 */
int bundled_info_port(const char *text, const char *isp, unsigned int dflt);

/* The peer's bundled responder must answer within this (info, the run's request). */
#define BUNDLED_ANSWER_MS 5000

/*
 * The peer's info text (its bundled responder addresses), asked of its kernel
 * responder over run path 0, into text (at most cap - 1 bytes and a NUL).
 * 0, or a negative errno after exp_fail() with the reason.
 */
int bundled_ask_info(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
		     struct exp_out *out, char *text, size_t cap);
/* This agent's bundled addresses on isp, or NULL. */
const struct bundled_isp *bundled_own_isp(const struct bundled_cfg *b, const char *isp);

/* One stack on one TUN device. */
struct bundled_io {
	struct mps_stack *st;
	struct mps_tun *tun;
	struct mps_host *host; /* the host adapter instead of tun (bundled_host.c) */
	struct mps_trace *trace;
	int trace_fd; /* memfd the trace is written to, or -1 */
	uint64_t link_errors;
	uint64_t rx_packets; /* read from the device */
};

/*
 * Opens the TUN device dev (which must exist: a missing device is an error,
 * never created here, as it would have no routes), creates the stack with cfg
 * (rand_bytes and trace set here), and with trace a header-only pcap into a
 * memory file. 0, or a negative errno with the reason in err: "TUN device
 * fjtun0 does not exist", "TUN device fjtun0 is busy (...)".
 */
int bundled_io_open(struct bundled_io *io, const char *dev, struct mps_config *cfg, int trace,
		    char *err, size_t errlen);
/*
 * The rest of an open once io has its link: the trace (with trace set) and
 * the stack. On failure io is closed, link included. 0 or a negative errno.
 */
int bundled_io_finish(struct bundled_io *io, struct mps_config *cfg, int trace, char *err,
		      size_t errlen);

/* Host adapter (bundled_host.c). Whether b has a bundled stack at all (TUN or host). */
int bundled_enabled(const struct bundled_cfg *b);
/*
 * bundled_io_open() for a run's child: the client TUN, or the host adapter
 * on every bundled address with the stack's ephemeral ports. Errors as
 * bundled_io_open(), the host adapter's with the fix (root, nft, sysctl).
 */
int bundled_io_open_run(struct bundled_io *io, const struct bundled_cfg *b, struct mps_config *cfg,
			int trace, char *err, size_t errlen);
/*
 * With the host adapter, a run's process killed by SIGTERM, SIGINT or SIGHUP
 * deletes the adapter's nftables table before it dies (bundled_io_open_run()
 * arms it); bundled_io_close() disarms it, restoring the old handlers.
 */
void bundled_host_disarm(void);
/* The same for the bundled responder: its TUN, or the host adapter listening on port. */
int bundled_io_open_resp(struct bundled_io *io, const struct bundled_cfg *b, unsigned int port,
			 struct mps_config *cfg, char *err, size_t errlen);
/* "tun" or "host": the link adapter of io, for the provenance. */
const char *bundled_io_adapter(const struct bundled_io *io);
const struct mps_link_ops *bundled_host_ops(void);
int bundled_host_fd(const struct bundled_io *io);
/*
 * With b->host: what the host adapter needs of the node, checked when the
 * agent starts: CAP_NET_RAW and CAP_NET_ADMIN, the nft program, the
 * kernel's port range clear of 49152-65535, and every bundled address one
 * of this node's. 0, or a negative errno with the reason and its fix in err.
 */
int bundled_host_check(const struct bundled_cfg *b, char *err, size_t errlen);

/*
 * One round: packets in and out, then wait at most max_ms for the device or
 * the stack's next timer (0: do not wait). Returns 0 or a negative errno.
 */
int bundled_io_step(struct bundled_io *io, unsigned int max_ms);

/*
 * Gives c back (aborted when reset, else closed) and steps io for up to
 * close_ms, while the run has more than slack_ms left, so the close goes
 * out and the peer's end is freed: until c's close or reset event, or
 * until io's stack has nothing left to do.
 */
void bundled_io_end_conn(struct bundled_io *io, struct mps_conn *c, bool reset, uint64_t close_ms,
			 const struct exp_env *env, uint64_t slack_ms);
/*
 * Frees the stack (every connection in it), the trace and the device. With
 * trace non-NULL, *trace gets the pcap written (malloc'ed, at most cap bytes,
 * whole records only; *cut says whether records were left out), or NULL.
 */
void bundled_io_close(struct bundled_io *io, char **trace, size_t *len, size_t cap, int *cut);
/*
 * bundled_io_close() keeping the pcap as out's trace "capture.pcap" (at most
 * EXP_TRACE_MAX; the event capture_capped when records were left out).
 */
void bundled_io_close_trace(struct bundled_io *io, struct exp_out *out);

struct exp_link_sched;

/* A bulk transfer on the bundled stack (exp_bundled.c), called by exp_bulk.c. */
struct exp_bundled_xfer {
	uint64_t bytes;
	uint32_t duration_ms;
	int download;
	unsigned int interval_ms;
	struct exp_trace *csv; /* subflows.csv */
	/* Handover: link events fired on their schedule from the data's start; or NULL. */
	struct exp_link_sched *links;
	/*
	 * Called at every sample and at the end with the data-level progress:
	 * ms since the data started, and bytes the peer acknowledged (upload)
	 * or that arrived (download). NULL: not wanted.
	 */
	void (*progress)(void *arg, uint64_t t_ms, uint64_t bytes);
	void *progress_arg;
};

struct exp_bundled_res {
	int done, sha_ok, mptcp, fallback, checksum;
	uint64_t t0_mono; /* when the data started (fj_mono_ms), 0 if it never did */
	uint64_t bytes, dur_ms;
	double goodput_bps;
	unsigned int max_subflows;
	char scheduler[32];
	char cc[16];
	Fjord__V1__Path **paths; /* the bundled addresses used, per run path (arena) */
	size_t n_paths;
};

/*
 * Runs the transfer: the peer's bundled responder addresses from its kernel
 * responder (info), the client TUN, one connection from path 0's bundled
 * address with a join per further path, samples, events and the trace
 * "capture.pcap". Failures go to exp_fail() with the reason; returns 0.
 */
int exp_bundled_bulk(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
		     struct exp_out *out, const struct exp_bundled_xfer *x,
		     struct exp_bundled_res *res);

/*
 * rr on the bundled stack (exp_bundled.c), called by exp_rr.c, which checks
 * the parameters, owns the arrays and computes the metrics. Transactions as
 * the kernel's rr (docs/experiments.md), each response checked against the
 * responder's stream; link events fired on their schedule from t0.
 */
struct exp_bundled_rr {
	uint32_t request_bytes, response_bytes, rate_per_s;
	uint64_t duration_ms;
	unsigned int interval_ms;
	uint32_t max;		      /* room in lat, start_ms and done_ms */
	uint32_t *lat;		      /* latency per transaction, us */
	uint32_t *start_ms, *done_ms; /* handover: per transaction, ms after t0; or NULL */
	struct exp_link_sched *links; /* handover, or NULL */
	struct exp_trace *trace;      /* rr.csv, or NULL */
	struct exp_trace *csv;	      /* subflows.csv, or NULL */
	/* Out: transactions done, late starts, the first one's start and the end (fj_mono_ms). */
	uint32_t n, late;
	uint64_t t0, t_end;
};

/* Runs it; failures go to exp_fail() with the reason ("transaction 12: ..."); returns 0. */
int exp_bundled_rr_run(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
		       struct exp_out *out, struct exp_bundled_rr *r, struct exp_bundled_res *res);

/* An echo run on the bundled stack: count messages of bytes, RTTs into rtts[0..*done). */
struct exp_bundled_echo {
	uint32_t bytes, count;
	unsigned int interval_ms;
	uint32_t *rtts;
	uint32_t *done;
	struct exp_trace *trace; /* rtt.csv, or NULL */
};

int exp_bundled_echo_run(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
			 struct exp_out *out, const struct exp_bundled_echo *e,
			 struct exp_bundled_res *res);
/* EXPERIMENT_TYPE_ECHO on the bundled stack, as exp_echo_run() for the kernel's. */
int exp_bundled_echo(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
		     struct exp_out *out);
/* Provenance of a bundled run (after exp_provenance()): libmps, settings, bundled paths. */
void exp_bundled_provenance(struct exp_out *out, const struct exp_bundled_res *br);

/*
 * The bundled responder: a child process of the agent that owns the responder
 * TUN and one libmps stack listening on port (IPv4 and IPv6, every address the
 * device carries), serving echo, sink, source and rr as agent/responder.h
 * describes (info is the kernel responder's). The device is opened before the
 * fork, so a missing or busy one is reported here. 0 and *pid, or a negative
 * errno with the reason in err. The child dies with the agent.
 */
int bundled_resp_start(const struct bundled_cfg *b, unsigned int port, unsigned int max_conns,
		       unsigned int idle_s, int *pid, char *err, size_t errlen);
/* Ends it (SIGTERM, and SIGCONT should it be stopped; SIGKILL after 2 s). pid <= 0 is fine. */
void bundled_resp_stop(int pid);

/*
 * The bundled responder under watch, in the agent's loop: started at once,
 * and again 1 s after it exits (every 5 s while starting fails: device
 * missing or busy). Its serve loop writes a heartbeat into a pipe every
 * 250 ms; one that stays silent for hang_ms while its process lives
 * (stopped, or stuck in the stack) is killed with SIGKILL, logged, counted
 * and so started again. b is copied. 0, -EINVAL (no resp_tun, hang_ms 0) or
 * -ENOMEM; a responder that cannot start yet is not an error (it is retried).
 * Destroy stops the responder.
 */
#define BUNDLED_HANG_MS 5000 /* the agent's hang_ms */

struct agent_loop;
struct bundled_sup;

int bundled_sup_create(struct agent_loop *loop, const struct bundled_cfg *b, unsigned int port,
		       unsigned int max_conns, unsigned int idle_s, unsigned int hang_ms,
		       struct bundled_sup **out);
void bundled_sup_destroy(struct bundled_sup *s);
/* The responder's pid now, or -1 while none runs. */
int bundled_sup_pid(const struct bundled_sup *s);
/* Responders started, exits seen (crash or kill) and hangs found since create. */
void bundled_sup_counts(const struct bundled_sup *s, unsigned int *starts, unsigned int *exits,
			unsigned int *hangs);

#endif
