/*
 * MPTCP crypto against the worked vector of the kernel captures (keys,
 * token, nonces and both MP_JOIN HMACs from v4-two-paths.pcap, and the
 * server's ADD_ADDR HMAC from the same capture) and DSS checksum properties.
 * Checksums recomputed from v4-checksum.pcap are in the mps_golden suite.
 */
#include <errno.h>
#include <string.h>

#include "fj_test.h"
#include "mps_crypto.h"

#define CLIENT_KEY   10082925419146857915ULL
#define SERVER_KEY   17804127674889876544ULL
#define CLIENT_NONCE 2219058471u
#define SERVER_NONCE 3719761584u

static void test_token_idsn(void)
{
	uint32_t token;
	uint64_t idsn;

	mps_key_token_idsn(SERVER_KEY, &token, &idsn);
	CU_ASSERT_EQUAL(token, 1751648839u);
	CU_ASSERT_EQUAL(idsn, 758676897597874085ULL);
	mps_key_token_idsn(CLIENT_KEY, &token, &idsn);
	CU_ASSERT_EQUAL(token, 2847801513u);
	CU_ASSERT_EQUAL(idsn, 5214781313437733032ULL);
	/* v4-checksum.pcap: wireshark's token for key 4438613988056284298. */
	mps_key_token_idsn(4438613988056284298ULL, &token, &idsn);
	CU_ASSERT_EQUAL(token, 1597913436u);
	CU_ASSERT_EQUAL(idsn, 15442033058593551754ULL);
	mps_key_token_idsn(1, NULL, &idsn); /* either output may be omitted */
	mps_key_token_idsn(1, &token, NULL);
	CU_ASSERT_NOT_EQUAL(token, 0);
}

static void test_join_hmacs(void)
{
	static const uint8_t ack_hmac[20] = { 0x81, 0xf5, 0x41, 0xcc, 0xae, 0x12, 0x81,
					      0x6f, 0x24, 0x2b, 0xba, 0xb0, 0x53, 0xe1,
					      0x1d, 0x45, 0x5c, 0xc6, 0x5b, 0x9b };
	uint8_t h[MPS_HMAC_LEN];
	int rc = 1;

	/* Responder (server): keyed server||client over server||client nonce. */
	CU_ASSERT_EQUAL(mps_join_hmac64(SERVER_KEY, CLIENT_KEY, SERVER_NONCE, CLIENT_NONCE, &rc),
			8221736838326325652ULL);
	CU_ASSERT_EQUAL(rc, 0);
	/* Initiator (client): the leftmost 160 bits go in the third ACK. */
	CU_ASSERT_EQUAL(mps_join_hmac(CLIENT_KEY, SERVER_KEY, CLIENT_NONCE, SERVER_NONCE, h), 0);
	CU_ASSERT_EQUAL(memcmp(h, ack_hmac, sizeof(ack_hmac)), 0);
	/* Swapping the nonces must change the result. */
	CU_ASSERT_NOT_EQUAL(mps_join_hmac64(SERVER_KEY, CLIENT_KEY, CLIENT_NONCE, SERVER_NONCE,
					    &rc),
			    8221736838326325652ULL);
}

static void test_add_addr_hmac(void)
{
	static const uint8_t a4[4] = { 10, 0, 2, 2 };
	uint8_t a6[16] = { 0xde, 0xad, 0xbe, 0xef, 0, 2 };
	uint64_t h = 0, h2 = 0;

	/* v4-two-paths.pcap: the server announces 10.0.2.2, ID 1, no port. */
	CU_ASSERT_EQUAL(mps_add_addr_hmac(SERVER_KEY, CLIENT_KEY, 1, a4, 4, 0, &h), 0);
	CU_ASSERT_EQUAL(h, 836189962197164359ULL);
	CU_ASSERT_EQUAL(mps_add_addr_hmac(SERVER_KEY, CLIENT_KEY, 1, a4, 4, 5002, &h2), 0);
	CU_ASSERT_NOT_EQUAL(h, h2);
	CU_ASSERT_EQUAL(mps_add_addr_hmac(SERVER_KEY, CLIENT_KEY, 1, a6, 16, 0, &h2), 0);
	CU_ASSERT_NOT_EQUAL(h, h2);
	CU_ASSERT_EQUAL(mps_add_addr_hmac(SERVER_KEY, CLIENT_KEY, 1, a6, 6, 0, &h2), -EINVAL);
}

static void test_dss_csum(void)
{
	struct mps_dss_csum c;
	uint8_t buf[1001];
	uint16_t whole;
	size_t i, split;

	/* Independent vector: DSN 0x0102030405060708, SSN 1, "hello". */
	mps_dss_csum_init(&c, 0x0102030405060708ULL, 1, 5);
	mps_dss_csum_add(&c, (const uint8_t *)"hello", 5);
	CU_ASSERT_EQUAL(mps_dss_csum_final(&c), 0xac13);

	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	mps_dss_csum_init(&c, 42, 1000, sizeof(buf));
	mps_dss_csum_add(&c, buf, sizeof(buf));
	whole = mps_dss_csum_final(&c);
	/* Any split of the payload, odd or even, gives the same result. */
	for (split = 0; split <= sizeof(buf); split += 37) {
		mps_dss_csum_init(&c, 42, 1000, sizeof(buf));
		mps_dss_csum_add(&c, buf, split);
		mps_dss_csum_add(&c, buf + split, 1);
		mps_dss_csum_add(&c, buf + split, 0);
		if (split + 1 < sizeof(buf))
			mps_dss_csum_add(&c, buf + split + 1, sizeof(buf) - split - 1);
		if (split + 1 <= sizeof(buf))
			CU_ASSERT_EQUAL(mps_dss_csum_final(&c), whole);
	}
	/* The DSN is covered with all 64 bits. */
	mps_dss_csum_init(&c, 42 + (1ULL << 32), 1000, sizeof(buf));
	mps_dss_csum_add(&c, buf, sizeof(buf));
	CU_ASSERT_NOT_EQUAL(mps_dss_csum_final(&c), whole);
}

static const struct fj_test tests[] = {
	{ "token_idsn", test_token_idsn },
	{ "join_hmacs", test_join_hmacs },
	{ "add_addr_hmac", test_add_addr_hmac },
	{ "dss_csum", test_dss_csum },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_mps_crypto = { "mps_crypto", NULL, NULL, tests };
