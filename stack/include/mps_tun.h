/*
 * TUN link adapter: the stack's packets go through a Linux TUN device
 * (IFF_TUN, no packet information header). Routing the stack's addresses to
 * the device is the caller's job (for example `ip route add A dev DEV`).
 *
 * With offloads (MPS_TUN_OFFLOAD) every packet carries a virtio_net_hdr
 * (IFF_VNET_HDR) and the device announces checksum and TCP segmentation
 * offload (TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6): the stack
 * writes up to 64 KiB of new data in one packet that the kernel cuts into
 * MSS-sized segments (GSO), and reads what the kernel merged (GRO) or its
 * TCP sent in one piece (TSO) as one large segment.
 */
#ifndef MPS_TUN_H
#define MPS_TUN_H

#include <stdbool.h>

#include "mps.h"

struct mps_tun;

/* Vnet header; we write super-segments for the kernel to cut (GSO). */
#define MPS_TUN_OFFLOAD_TX 0x1u
/* ... and the kernel may hand us what it merged or sent in one piece (TUN_F_TSO4/6). */
#define MPS_TUN_OFFLOAD_RX 0x2u
#define MPS_TUN_OFFLOAD	   (MPS_TUN_OFFLOAD_TX | MPS_TUN_OFFLOAD_RX)

/*
 * Open (creating it if absent) the TUN device name, set it non-blocking and
 * bring it up, with the offloads flags names (MPS_TUN_OFFLOAD_*; RX needs TX,
 * which brings the vnet header; without RX the device announces checksum
 * offload only, so the kernel cuts what it sends us). Returns a handle
 * the caller frees with mps_tun_close(), or NULL with *err = -EINVAL (bad
 * name or flags), -ENOMEM or the failing call's errno.
 */
struct mps_tun *mps_tun_open_flags(const char *name, unsigned int flags, int *err);

/*
 * mps_tun_open_flags() with MPS_TUN_OFFLOAD (super-segments out, merged
 * packets in), unless the environment variable MPS_TUN_OFFLOAD says
 * otherwise: "0" none, "tx" super-segments out only, "1" both (the same);
 * any other non-empty value is *err = -EINVAL. The variable is the way to
 * compare, or to work around a kernel that mishandles them, without
 * changing the program.
 */
struct mps_tun *mps_tun_open(const char *name, int *err);
void mps_tun_close(struct mps_tun *tun);

/* The device's file descriptor, for poll(); owned by tun. */
int mps_tun_fd(const struct mps_tun *tun);

/* The MPS_TUN_OFFLOAD_* flags the device was opened with. */
unsigned int mps_tun_offloads(const struct mps_tun *tun);

struct mps_tun_stats {
	uint64_t rx_pkts, rx_gso; /* packets read; of them, merged ones (gso_type set) */
	uint64_t rx_csum;	  /* partial checksums completed here (NEEDS_CSUM) */
	uint64_t rx_bad;	  /* dropped: vnet header that does not fit the packet */
	uint64_t tx_pkts, tx_gso; /* packets written; of them, ones the kernel cuts */
};

void mps_tun_get_stats(const struct mps_tun *tun, struct mps_tun_stats *stats);

/*
 * Link adapter: ctx is a struct mps_tun *. next_ready is unknown (poll the
 * fd). With offloads, gso_max offers 64 KiB and send_gso writes the vnet
 * header for the kernel to cut the packet, and recv_flags says which
 * checksums the kernel vouched for (mps_vnet_rx_check()). A caller that
 * wraps these ops must pass recv_flags on: recv leaves such a checksum as
 * the kernel gave it (a partial one holds the pseudo-header's sum only), and
 * a stack told nothing checks it and drops the packet (the agent's bundled
 * runs got 0.2 Mbit/s so).
 */
extern const struct mps_link_ops mps_tun_link_ops;

/*
 * The vnet header (struct virtio_net_hdr of linux/virtio_net.h), decoded.
 * On the wire it is 10 bytes, its 16-bit fields little-endian (the adapter
 * sets TUNSETVNETLE).
 */
#define MPS_VNET_HLEN	      10
#define MPS_VNET_F_NEEDS_CSUM 0x01 /* checksum partial: from csum_start, at +csum_offset */
#define MPS_VNET_F_DATA_VALID 0x02 /* checksum already verified */
#define MPS_VNET_GSO_NONE     0
#define MPS_VNET_GSO_TCPV4    1
#define MPS_VNET_GSO_TCPV6    4
#define MPS_VNET_GSO_ECN      0x80

struct mps_vnet {
	uint8_t flags, gso_type;
	uint16_t hdr_len, gso_size, csum_start, csum_offset;
};

void mps_vnet_encode(const struct mps_vnet *v, uint8_t out[MPS_VNET_HLEN]);
void mps_vnet_decode(const uint8_t in[MPS_VNET_HLEN], struct mps_vnet *v);

/*
 * The header for writing pkt (an IP packet the stack built, its TCP checksum
 * complete) so that the kernel cuts its payload into seg_size pieces. With
 * seg_size 0, or a payload no larger than it, the header is all zero and the
 * packet goes as it is. Otherwise the header asks for GSO with the checksum
 * partial, and *tcp_csum is the value the TCP checksum field must then hold
 * (the pseudo-header's sum, as the kernel's CHECKSUM_PARTIAL wants it), in
 * network order. Returns 0, or -EBADMSG if pkt is not an IP packet with TCP,
 * or -EINVAL if seg_size does not fit 16 bits.
 */
int mps_vnet_for_tx(const uint8_t *pkt, size_t len, uint32_t seg_size, struct mps_vnet *v,
		    uint16_t *tcp_csum);

/*
 * Check a header read with pkt against it and complete a partial checksum
 * in place, so that pkt is a plain IP packet with a valid TCP checksum (a
 * merged packet's checksum is recomputed whole when marked valid, since the
 * kernel left the first segment's). Returns 0; -EPROTO for a segmentation
 * type that is not TCP of the packet's IP version, or header lengths or
 * checksum offsets that do not fit the packet; -EBADMSG if pkt is not IP.
 */
int mps_vnet_rx_fix(const struct mps_vnet *v, uint8_t *pkt, size_t len);

/*
 * The checks of mps_vnet_rx_fix() without writing anything: the same
 * negative errno, or the MPS_IN_* flags (mps.h) that say what the header
 * vouches for. A partial checksum (NEEDS_CSUM) or one the kernel verified
 * (DATA_VALID) is MPS_IN_CSUM_OK; the field is stale (MPS_IN_CSUM_STALE)
 * when partial or when the packet is merged (GSO type set). A merged packet
 * with neither flag is MPS_IN_CSUM_STALE alone: mps_vnet_rx_fix() gives it
 * its checksum. The adapter's recv hands these flags to mps_pump() through
 * the recv_flags hook.
 */
int mps_vnet_rx_check(const struct mps_vnet *v, const uint8_t *pkt, size_t len);

#endif
