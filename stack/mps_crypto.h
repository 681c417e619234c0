/*
 * MPTCP v1 cryptography (RFC 8684 §3.1, §3.2, §3.4.1, §3.3.1) over OpenSSL
 * libcrypto: key to token and IDSN, the MP_JOIN and ADD_ADDR HMACs, and the
 * DSS checksum. Pure functions: no state, no allocation visible to callers.
 */
#ifndef MPS_CRYPTO_H
#define MPS_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define MPS_HMAC_LEN 32 /* HMAC-SHA256 output */

/* Token (top 32 bits of SHA-256(key)) and IDSN (low 64 bits) of a key. */
void mps_key_token_idsn(uint64_t key, uint32_t *token, uint64_t *idsn);

/*
 * MP_JOIN HMAC of one side: HMAC-SHA256 keyed own_key || peer_key over
 * own_nonce || peer_nonce, all big-endian, into out (MPS_HMAC_LEN bytes).
 * The responder sends the leftmost 64 bits in its SYN/ACK
 * (mps_join_hmac64), the initiator the leftmost 160 in its third ACK.
 * Returns 0 or -EIO if libcrypto fails.
 */
int mps_join_hmac(uint64_t own_key, uint64_t peer_key, uint32_t own_nonce, uint32_t peer_nonce,
		  uint8_t out[MPS_HMAC_LEN]);

/* Leftmost 64 bits of mps_join_hmac() as a number; 0 with *rc < 0 on failure. */
uint64_t mps_join_hmac64(uint64_t own_key, uint64_t peer_key, uint32_t own_nonce,
			 uint32_t peer_nonce, int *rc);

/*
 * ADD_ADDR HMAC (rightmost 64 bits): keyed sender key || receiver key over
 * address ID, the address (4 or 16 bytes, addr_len) and the port (two zero
 * bytes when no port is sent). Returns 0 and *hmac, -EINVAL for a bad
 * addr_len or -EIO.
 */
int mps_add_addr_hmac(uint64_t snd_key, uint64_t rcv_key, uint8_t addr_id, const uint8_t *addr,
		      size_t addr_len, uint16_t port, uint64_t *hmac);

/*
 * Incremental DSS checksum over one mapping: start with
 * mps_dss_csum_init(), add the mapped payload in order with
 * mps_dss_csum_add() (pieces of any length), then mps_dss_csum_final()
 * gives the value to put in the option. To verify a received mapping, add
 * the payload and compare final() with the option's checksum.
 */
struct mps_dss_csum {
	uint64_t sum; /* ones'-complement accumulator, folded at the end */
	uint8_t odd;  /* a byte waiting for its partner, if have_odd */
	uint8_t have_odd;
};

/* dsn is the full 64-bit DSN even when 32 bits go on the wire. */
void mps_dss_csum_init(struct mps_dss_csum *c, uint64_t dsn, uint32_t ssn, uint16_t data_len);
void mps_dss_csum_add(struct mps_dss_csum *c, const uint8_t *data, size_t len);
uint16_t mps_dss_csum_final(const struct mps_dss_csum *c);

#endif
