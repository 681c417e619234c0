/*
 * libFuzzer target for the TUN adapter's vnet header handling (mps_tun.h).
 * Input: a 10-byte virtio_net_hdr as the kernel would hand it, then the
 * packet. Oracles besides the sanitizers: mps_vnet_rx_fix() answers 0,
 * -EPROTO or -EBADMSG only, and mps_vnet_rx_check() the same error or, where
 * rx_fix takes the packet, MPS_IN_* flags that make sense (never
 * MPS_IN_CSUM_STALE on an unmerged packet the kernel did not vouch for),
 * without writing to the packet; a TCP packet whose checksum field holds the
 * pseudo-header's sum, marked partial at that place, verifies once completed
 * (any other seed is the sender's error, caught by the stack's own check);
 * and the header mps_vnet_for_tx() makes for a packet asks for GSO only for
 * a payload above the segment size, with offsets inside the packet.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mps_seg.h"
#include "mps_tun.h"

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static uint32_t pseudo(const struct mps_seg *s)
{
	uint32_t tlen = (uint32_t)(s->payload + s->payload_len - s->tcp);
	size_t alen = s->family == 4 ? 4 : 16;
	uint32_t sum = 6 + (tlen >> 16) + (tlen & 0xffff);

	return mps_csum_add(mps_csum_add(sum, s->src, alen), s->dst, alen);
}

static int tcp_csum_ok(const struct mps_seg *s)
{
	uint32_t tlen = (uint32_t)(s->payload + s->payload_len - s->tcp);

	return fold(mps_csum_add(pseudo(s), s->tcp, tlen)) == 0xffff;
}

/* TCP, marked partial at its checksum field, which holds the pseudo-header's sum. */
static int well_seeded(const struct mps_vnet *v, const uint8_t *pkt, size_t len)
{
	struct mps_seg s;
	enum mps_seg_err err;

	if (!(v->flags & MPS_VNET_F_NEEDS_CSUM) || mps_seg_parse(pkt, len, 0, &s, &err) != 0)
		return 0;
	return v->csum_start == (size_t)(s.tcp - pkt) && v->csum_offset == 16 &&
	       fold(pseudo(&s)) == s.tcp_csum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t pkt[65536 + 64];
	struct mps_vnet v, t;
	struct mps_seg s;
	enum mps_seg_err err;
	uint16_t partial;
	size_t len;
	int rc, seeded, flags;

	if (size < MPS_VNET_HLEN || size - MPS_VNET_HLEN > sizeof(pkt))
		return 0;
	mps_vnet_decode(data, &v);
	len = size - MPS_VNET_HLEN;
	memcpy(pkt, data + MPS_VNET_HLEN, len);
	seeded = well_seeded(&v, pkt, len);
	flags = mps_vnet_rx_check(&v, pkt, len);
	if (memcmp(pkt, data + MPS_VNET_HLEN, len) != 0)
		abort();
	rc = mps_vnet_rx_fix(&v, pkt, len);
	if (rc != 0 && rc != -EPROTO && rc != -EBADMSG)
		abort();
	if (rc < 0 ? flags != rc
		   : flags < 0 || ((unsigned int)flags & ~(MPS_IN_CSUM_OK | MPS_IN_CSUM_STALE)) ||
			     ((unsigned int)flags == MPS_IN_CSUM_STALE && !v.gso_type))
		abort();
	/* A merged type that does not fit the packet refuses it; otherwise it verifies. */
	if (seeded && rc != -EPROTO &&
	    (rc != 0 || mps_seg_parse(pkt, len, 0, &s, &err) != 0 || !tcp_csum_ok(&s)))
		abort();
	rc = mps_vnet_for_tx(pkt, len, v.gso_size, &t, &partial);
	if (rc != 0 && rc != -EBADMSG)
		abort();
	if (rc == 0 && t.gso_type != MPS_VNET_GSO_NONE &&
	    (mps_seg_parse(pkt, len, 0, &s, &err) != 0 || s.payload_len <= v.gso_size ||
	     t.gso_size != v.gso_size || t.hdr_len > len ||
	     (size_t)t.csum_start + t.csum_offset + 2 > len))
		abort();
	return 0;
}
