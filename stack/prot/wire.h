/*
 * Big-endian field access for wire-format headers. Every protocol header in
 * stack/prot/ is described by byte offsets and read or written through these
 * helpers, so no code depends on struct packing or on the host's alignment.
 */
#ifndef MPS_PROT_WIRE_H
#define MPS_PROT_WIRE_H

#include <stdint.h>

static inline uint16_t mps_get_be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t mps_get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint64_t mps_get_be64(const uint8_t *p)
{
	return ((uint64_t)mps_get_be32(p) << 32) | mps_get_be32(p + 4);
}

static inline void mps_put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void mps_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void mps_put_be64(uint8_t *p, uint64_t v)
{
	mps_put_be32(p, (uint32_t)(v >> 32));
	mps_put_be32(p + 4, (uint32_t)v);
}

#endif
