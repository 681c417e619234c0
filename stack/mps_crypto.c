/*
 * MPTCP v1 cryptography. Keys, tokens and nonces are serialised big-endian
 * before hashing, as RFC 8684 and the Linux kernel do.
 */
#include <errno.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "mps_crypto.h"
#include "prot/wire.h"

void mps_key_token_idsn(uint64_t key, uint32_t *token, uint64_t *idsn)
{
	uint8_t k[8], h[SHA256_DIGEST_LENGTH];

	mps_put_be64(k, key);
	SHA256(k, sizeof(k), h);
	if (token)
		*token = mps_get_be32(h);
	if (idsn)
		*idsn = mps_get_be64(h + 24);
}

static int hmac_sha256(const uint8_t key[16], const uint8_t *msg, size_t len,
		       uint8_t out[MPS_HMAC_LEN])
{
	unsigned int olen = 0;

	if (!HMAC(EVP_sha256(), key, 16, msg, len, out, &olen) || olen != MPS_HMAC_LEN)
		return -EIO;
	return 0;
}

int mps_join_hmac(uint64_t own_key, uint64_t peer_key, uint32_t own_nonce, uint32_t peer_nonce,
		  uint8_t out[MPS_HMAC_LEN])
{
	uint8_t key[16], msg[8];

	mps_put_be64(key, own_key);
	mps_put_be64(key + 8, peer_key);
	mps_put_be32(msg, own_nonce);
	mps_put_be32(msg + 4, peer_nonce);
	return hmac_sha256(key, msg, sizeof(msg), out);
}

uint64_t mps_join_hmac64(uint64_t own_key, uint64_t peer_key, uint32_t own_nonce,
			 uint32_t peer_nonce, int *rc)
{
	uint8_t h[MPS_HMAC_LEN];

	*rc = mps_join_hmac(own_key, peer_key, own_nonce, peer_nonce, h);
	return *rc ? 0 : mps_get_be64(h);
}

int mps_add_addr_hmac(uint64_t snd_key, uint64_t rcv_key, uint8_t addr_id, const uint8_t *addr,
		      size_t addr_len, uint16_t port, uint64_t *hmac)
{
	uint8_t key[16], msg[1 + 16 + 2], h[MPS_HMAC_LEN];
	int rc;

	if (addr_len != 4 && addr_len != 16)
		return -EINVAL;
	mps_put_be64(key, snd_key);
	mps_put_be64(key + 8, rcv_key);
	msg[0] = addr_id;
	memcpy(msg + 1, addr, addr_len);
	mps_put_be16(msg + 1 + addr_len, port);
	rc = hmac_sha256(key, msg, 1 + addr_len + 2, h);
	if (rc)
		return rc;
	*hmac = mps_get_be64(h + MPS_HMAC_LEN - 8);
	return 0;
}

void mps_dss_csum_init(struct mps_dss_csum *c, uint64_t dsn, uint32_t ssn, uint16_t data_len)
{
	uint8_t ph[16];

	/* Pseudo-header: DSN (64), relative SSN (32), length (16), zero (16). */
	mps_put_be64(ph, dsn);
	mps_put_be32(ph + 8, ssn);
	mps_put_be16(ph + 12, data_len);
	mps_put_be16(ph + 14, 0);
	memset(c, 0, sizeof(*c));
	mps_dss_csum_add(c, ph, sizeof(ph));
}

void mps_dss_csum_add(struct mps_dss_csum *c, const uint8_t *data, size_t len)
{
	size_t i = 0;

	/* Pieces may split a 16-bit word; carry the odd byte to the next call. */
	if (c->have_odd && len > 0) {
		c->sum += ((uint32_t)c->odd << 8) | data[0];
		c->have_odd = 0;
		i = 1;
	}
	for (; i + 1 < len; i += 2)
		c->sum += ((uint32_t)data[i] << 8) | data[i + 1];
	if (i < len) {
		c->odd = data[i];
		c->have_odd = 1;
	}
	/* Fold now and then so that very long mappings cannot overflow 64 bits. */
	if (c->sum >> 48)
		c->sum = (c->sum & 0xffff) + (c->sum >> 16);
}

uint16_t mps_dss_csum_final(const struct mps_dss_csum *c)
{
	uint64_t s = c->sum;

	if (c->have_odd)
		s += (uint32_t)c->odd << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}
