/*
 * TUN link adapter. Reads and writes whole IP packets; a short or failed
 * write is reported to the caller, who treats the packet as lost. With
 * offloads every packet is preceded by a virtio_net_hdr (see mps_tun.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "mps_seg.h"
#include "mps_tun.h"
#include "prot/ip4.h"
#include "prot/ip6.h"
#include "prot/tcp.h"

/* GSO packets are still IP packets: 64 KiB at most, headers included. */
#define TUN_GSO_MAX 0xffff

struct mps_tun {
	int fd;
	bool offload;	    /* vnet header on every packet: MPS_TUN_OFFLOAD_TX */
	unsigned int flags; /* MPS_TUN_OFFLOAD_* */
	char name[IFNAMSIZ];
	struct mps_tun_stats stats;
	unsigned int rx_flags; /* MPS_IN_* of the packet tun_recv() returned last */
};

static int set_up(const char *name)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = 0;

	if (s < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
		rc = -errno;
	} else if (!(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
			rc = -errno;
	}
	close(s);
	return rc;
}

/* Header size, byte order and the offloads; the device must have IFF_VNET_HDR. */
static int set_offloads(int fd, unsigned int flags)
{
	unsigned long off = TUN_F_CSUM;

	int sz = MPS_VNET_HLEN, le = 1;

	if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0)
		return -errno;
	/* Legacy virtio headers are in host order; ask for little-endian everywhere. */
	if (ioctl(fd, TUNSETVNETLE, &le) < 0 && BYTE_ORDER != LITTLE_ENDIAN)
		return -errno;
	if (flags & MPS_TUN_OFFLOAD_RX)
		off |= TUN_F_TSO4 | TUN_F_TSO6;
	if (ioctl(fd, TUNSETOFFLOAD, off) < 0)
		return -errno;
	return 0;
}

struct mps_tun *mps_tun_open_flags(const char *name, unsigned int flags, int *err)
{
	struct mps_tun *tun;
	struct ifreq ifr;

	if (!name || !*name || strlen(name) >= IFNAMSIZ || (flags & ~MPS_TUN_OFFLOAD) ||
	    (flags & MPS_TUN_OFFLOAD) == MPS_TUN_OFFLOAD_RX) {
		*err = -EINVAL;
		return NULL;
	}
	tun = calloc(1, sizeof(*tun));
	if (!tun) {
		*err = -ENOMEM;
		return NULL;
	}
	tun->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (tun->fd < 0) {
		*err = -errno;
		free(tun);
		return NULL;
	}
	tun->offload = flags & MPS_TUN_OFFLOAD_TX;
	tun->flags = flags;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (tun->offload ? IFF_VNET_HDR : 0);
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	if (ioctl(tun->fd, TUNSETIFF, &ifr) < 0) {
		*err = -errno;
		mps_tun_close(tun);
		return NULL;
	}
	memcpy(tun->name, ifr.ifr_name, IFNAMSIZ);
	*err = tun->offload ? set_offloads(tun->fd, flags) : 0;
	if (!*err)
		*err = set_up(tun->name);
	if (*err) {
		mps_tun_close(tun);
		return NULL;
	}
	return tun;
}

struct mps_tun *mps_tun_open(const char *name, int *err)
{
	const char *env = getenv("MPS_TUN_OFFLOAD");
	/*
	 * Both halves by default: merged packets in cost a tenth of the goodput
	 * over shaped paths only while a join left a lone one to its delayed
	 * ACK, and they save most of the receiving system calls
	 * (docs/benchmarks.md, "TUN offloads").
	 */
	unsigned int flags = MPS_TUN_OFFLOAD;

	if (env && !strcmp(env, "0"))
		flags = 0;
	else if (env && !strcmp(env, "tx"))
		flags = MPS_TUN_OFFLOAD_TX;
	else if (env && *env && strcmp(env, "1")) {
		*err = -EINVAL; /* a typo must not measure the default instead */
		return NULL;
	}
	return mps_tun_open_flags(name, flags, err);
}

void mps_tun_close(struct mps_tun *tun)
{
	if (!tun)
		return;
	close(tun->fd);
	free(tun);
}

int mps_tun_fd(const struct mps_tun *tun)
{
	return tun->fd;
}

unsigned int mps_tun_offloads(const struct mps_tun *tun)
{
	return tun->flags;
}

void mps_tun_get_stats(const struct mps_tun *tun, struct mps_tun_stats *stats)
{
	*stats = tun->stats;
}

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

void mps_vnet_encode(const struct mps_vnet *v, uint8_t out[MPS_VNET_HLEN])
{
	out[0] = v->flags;
	out[1] = v->gso_type;
	put_le16(out + 2, v->hdr_len);
	put_le16(out + 4, v->gso_size);
	put_le16(out + 6, v->csum_start);
	put_le16(out + 8, v->csum_offset);
}

void mps_vnet_decode(const uint8_t in[MPS_VNET_HLEN], struct mps_vnet *v)
{
	v->flags = in[0];
	v->gso_type = in[1];
	v->hdr_len = get_le16(in + 2);
	v->gso_size = get_le16(in + 4);
	v->csum_start = get_le16(in + 6);
	v->csum_offset = get_le16(in + 8);
}

static uint16_t sum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* The pseudo-header of TCP over s's addresses with tcp_len bytes of TCP, not folded. */
static uint32_t pseudo_sum(const struct mps_seg *s, uint32_t tcp_len)
{
	size_t alen = s->family == 4 ? 4 : 16;
	uint32_t sum = MPS_IPPROTO_TCP + (tcp_len >> 16) + (tcp_len & 0xffff);

	return mps_csum_add(mps_csum_add(sum, s->src, alen), s->dst, alen);
}

int mps_vnet_for_tx(const uint8_t *pkt, size_t len, uint32_t seg_size, struct mps_vnet *v,
		    uint16_t *tcp_csum)
{
	struct mps_seg s;
	enum mps_seg_err serr;
	uint32_t ihl, tcp_len;

	memset(v, 0, sizeof(*v));
	if (seg_size > 0xffff)
		return -EINVAL;
	if (mps_seg_parse(pkt, len, 0, &s, &serr) != 0)
		return -EBADMSG;
	if (!seg_size || s.payload_len <= seg_size)
		return 0;
	ihl = (uint32_t)(s.tcp - pkt);
	tcp_len = (uint32_t)(s.payload + s.payload_len - s.tcp);
	v->flags = MPS_VNET_F_NEEDS_CSUM;
	v->gso_type = s.family == 4 ? MPS_VNET_GSO_TCPV4 : MPS_VNET_GSO_TCPV6;
	v->hdr_len = (uint16_t)(s.payload - pkt);
	v->gso_size = (uint16_t)seg_size;
	v->csum_start = (uint16_t)ihl;
	v->csum_offset = MPS_TCP_OFF_CSUM;
	put_be16((uint8_t *)tcp_csum, sum_fold(pseudo_sum(&s, tcp_len)));
	return 0;
}

/* Shared by mps_vnet_rx_check() and mps_vnet_rx_fix(); *end: where the IP packet ends. */
static int rx_check(const struct mps_vnet *v, const uint8_t *pkt, size_t len, struct mps_seg *s,
		    size_t *end)
{
	enum mps_seg_err serr;
	uint8_t gso = v->gso_type & (uint8_t)~MPS_VNET_GSO_ECN;
	bool ip = mps_seg_parse(pkt, len, 0, s, &serr) == 0;

	/* Link padding after the IP packet is no part of any checksum. */
	*end = ip ? (size_t)(s->payload + s->payload_len - pkt) : len;
	if (gso != MPS_VNET_GSO_NONE) {
		if (!ip)
			return -EBADMSG;
		if (gso != (s->family == 4 ? MPS_VNET_GSO_TCPV4 : MPS_VNET_GSO_TCPV6) ||
		    !v->gso_size)
			return -EPROTO;
	}
	if (v->flags & MPS_VNET_F_NEEDS_CSUM) {
		if ((size_t)v->csum_start + v->csum_offset + 2 > *end)
			return -EPROTO;
		/* Built by the kernel itself: nothing on a wire could have changed it. */
		return (int)(MPS_IN_CSUM_OK | MPS_IN_CSUM_STALE);
	}
	/* Verified by the kernel; a merged packet's field is still its first segment's. */
	if (v->flags & MPS_VNET_F_DATA_VALID)
		return (int)(MPS_IN_CSUM_OK | (gso != MPS_VNET_GSO_NONE ? MPS_IN_CSUM_STALE : 0));
	/* Merged without DATA_VALID: the field is not the packet's, so recompute it. */
	return gso != MPS_VNET_GSO_NONE ? (int)MPS_IN_CSUM_STALE : 0;
}

int mps_vnet_rx_check(const struct mps_vnet *v, const uint8_t *pkt, size_t len)
{
	struct mps_seg s;
	size_t end;

	return rx_check(v, pkt, len, &s, &end);
}

int mps_vnet_rx_fix(const struct mps_vnet *v, uint8_t *pkt, size_t len)
{
	struct mps_seg s;
	size_t end;
	uint32_t tcp_len;
	uint16_t c;
	/* Checked before anything is written: a refused packet stays as it came. */
	int rc = rx_check(v, pkt, len, &s, &end);

	if (rc < 0)
		return rc;
	if (v->flags & MPS_VNET_F_NEEDS_CSUM) {
		/* Generic: the field holds the pseudo-header's sum; add the rest. */
		c = (uint16_t)~sum_fold(mps_csum_add(0, pkt + v->csum_start, end - v->csum_start));
		put_be16(pkt + v->csum_start + v->csum_offset, c);
		return 0;
	}
	if (!(rc & MPS_IN_CSUM_STALE))
		return 0;
	/* Merged, not partial: the field is the first segment's, not the packet's. */
	tcp_len = (uint32_t)(s.payload + s.payload_len - s.tcp);
	memset((uint8_t *)s.tcp + MPS_TCP_OFF_CSUM, 0, 2);
	c = (uint16_t)~sum_fold(mps_csum_add(pseudo_sum(&s, tcp_len), s.tcp, tcp_len));
	put_be16((uint8_t *)s.tcp + MPS_TCP_OFF_CSUM, c);
	return 0;
}

static int write_result(ssize_t n, size_t len)
{
	if (n < 0)
		return errno == EAGAIN ? -EAGAIN : -errno;
	return (size_t)n == len ? 0 : -EIO;
}

static int tun_send(void *ctx, const uint8_t *pkt, size_t len, uint64_t now)
{
	struct mps_tun *tun = ctx;
	uint8_t hdr[MPS_VNET_HLEN] = { 0 };
	struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *)pkt, len } };

	(void)now;
	tun->stats.tx_pkts++;
	if (!tun->offload)
		return write_result(write(tun->fd, pkt, len), len);
	return write_result(writev(tun->fd, iov, 2), sizeof(hdr) + len);
}

static int tun_send_gso(void *ctx, const uint8_t *pkt, size_t len, uint32_t seg_size, uint64_t now)
{
	struct mps_tun *tun = ctx;
	uint8_t hdr[MPS_VNET_HLEN], head[MPS_IP6_HLEN + 60];
	struct mps_vnet v;
	uint16_t csum;
	struct iovec iov[3];
	int rc;

	if (!tun->offload || !seg_size)
		return tun_send(ctx, pkt, len, now);
	rc = mps_vnet_for_tx(pkt, len, seg_size, &v, &csum);
	if (rc)
		return rc;
	if (!v.gso_type)
		return tun_send(ctx, pkt, len, now);
	if (v.hdr_len > sizeof(head))
		return -EMSGSIZE; /* cannot happen: IPv6 plus the longest TCP header */
	/* The headers are copied to hold the partial checksum; the payload is not. */
	mps_vnet_encode(&v, hdr);
	memcpy(head, pkt, v.hdr_len);
	memcpy(head + v.csum_start + v.csum_offset, &csum, 2);
	iov[0] = (struct iovec){ hdr, sizeof(hdr) };
	iov[1] = (struct iovec){ head, v.hdr_len };
	iov[2] = (struct iovec){ (void *)(pkt + v.hdr_len), len - v.hdr_len };
	tun->stats.tx_pkts++;
	tun->stats.tx_gso++;
	return write_result(writev(tun->fd, iov, 3), sizeof(hdr) + len);
}

static int tun_recv(void *ctx, uint8_t *buf, size_t cap, uint64_t now)
{
	struct mps_tun *tun = ctx;
	uint8_t hdr[MPS_VNET_HLEN];
	struct iovec iov[2] = { { hdr, sizeof(hdr) }, { buf, cap } };
	struct mps_vnet v;
	ssize_t n;
	int rc;

	(void)now;
	tun->rx_flags = 0;
	for (;;) {
		n = tun->offload ? readv(tun->fd, iov, 2) : read(tun->fd, buf, cap);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		tun->stats.rx_pkts++;
		if (!tun->offload)
			return (int)n;
		if ((size_t)n < sizeof(hdr)) {
			tun->stats.rx_bad++;
			continue;
		}
		n -= (ssize_t)sizeof(hdr);
		mps_vnet_decode(hdr, &v);
		/* A header that does not fit its packet: the packet cannot be trusted. */
		rc = mps_vnet_rx_check(&v, buf, (size_t)n);
		if (rc < 0) {
			tun->stats.rx_bad++;
			continue;
		}
		/*
		 * Checksums the kernel vouches for are not summed again here nor in
		 * the stack (a pass over every byte): only the trace needs a stale
		 * field right, and mps_input_flags() fixes it for that. A merged
		 * packet the kernel did not vouch for has no checksum of its own to
		 * verify; it gets one here, as before.
		 */
		if (rc == (int)MPS_IN_CSUM_STALE) {
			mps_vnet_rx_fix(&v, buf, (size_t)n);
			rc = (int)MPS_IN_CSUM_OK;
		}
		tun->rx_flags = (unsigned int)rc;
		if (v.flags & MPS_VNET_F_NEEDS_CSUM)
			tun->stats.rx_csum++;
		if (v.gso_type != MPS_VNET_GSO_NONE)
			tun->stats.rx_gso++;
		return (int)n;
	}
}

static unsigned int tun_recv_flags(void *ctx)
{
	const struct mps_tun *tun = ctx;

	return tun->rx_flags;
}

static uint32_t tun_gso_max(void *ctx)
{
	const struct mps_tun *tun = ctx;

	return tun->offload ? TUN_GSO_MAX : 0;
}

const struct mps_link_ops mps_tun_link_ops = {
	.name = "tun",
	.send = tun_send,
	.recv = tun_recv,
	.next_ready = NULL,
	.gso_max = tun_gso_max,
	.send_gso = tun_send_gso,
	.recv_flags = tun_recv_flags,
};
