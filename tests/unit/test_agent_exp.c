/*
 * Experiment types on loopback: the responder's protocol (every type, bad
 * headers refused with the reason, IPv4 and IPv6, MPTCP and TCP listeners),
 * and bulk, rr, baseline and probe runs through the runner against it.
 */
#define _XOPEN_SOURCE 700
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent_loop.h"
#include "agent_runner.h"
#include "agent_spool.h"
#include "agent_sysinfo.h"
#include "fj_clock.h"
#include "fj_test.h"
#include "responder.h"

static char tmpdir[64];
static struct agent_loop *loop;
static struct agent_spool *spool;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static int exp_setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/fjord-exp-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	loop = agent_loop_create(1024);
	return loop && agent_spool_open(tmpdir, 64 << 20, &spool, NULL) == 0 ? 0 : -1;
}

static int exp_teardown(void)
{
	agent_spool_close(spool);
	agent_loop_destroy(loop);
	return nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static struct agent_responder *mk_responder(int force_tcp)
{
	static const char *const lo[] = { "127.0.0.1", "::1" };
	struct agent_responder_cfg rc = { lo, 2, 0, 16, 30, force_tcp };
	struct agent_responder *r = NULL;
	char err[256] = "";

	CU_ASSERT_EQUAL(agent_responder_create(loop, &rc, &r, err, sizeof(err)), 0);
	if (!r)
		fprintf(stderr, "\n%s\n", err);
	return r;
}

static void pump(unsigned int ms)
{
	uint64_t end = fj_mono_ms() + ms;

	while (fj_mono_ms() < end)
		agent_loop_run_once(loop, 10);
}

static int connect_port(int family, unsigned int port)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	int fd = socket(family, SOCK_STREAM, 0);

	if (family == AF_INET) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		s6->sin6_addr = in6addr_loopback;
	}
	if (fd >= 0 && connect(fd, (struct sockaddr *)&ss,
			       family == AF_INET ? sizeof(*s4) : sizeof(*s6)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads exactly len bytes while the loop runs; returns what arrived. */
static size_t read_pumped(int fd, uint8_t *buf, size_t len, unsigned int ms)
{
	uint64_t end = fj_mono_ms() + ms;
	size_t got = 0;

	while (got < len && fj_mono_ms() < end) {
		ssize_t n;

		agent_loop_run_once(loop, 5);
		n = recv(fd, buf + got, len - got, MSG_DONTWAIT);
		if (n == 0)
			break;
		if (n > 0)
			got += (size_t)n;
	}
	return got;
}

static void send_request(int fd, const struct agent_resp_request *q)
{
	uint8_t req[AGENT_RESP_REQ_LEN];

	agent_resp_request_encode(q, req);
	CU_ASSERT_EQUAL(send(fd, req, sizeof(req), 0), (ssize_t)sizeof(req));
}

static void read_reply(int fd, struct agent_resp_reply *reply)
{
	uint8_t rep[AGENT_RESP_REPLY_LEN];

	memset(reply, 0, sizeof(*reply));
	CU_ASSERT_EQUAL_FATAL(read_pumped(fd, rep, sizeof(rep), 2000), sizeof(rep));
	CU_ASSERT_EQUAL(agent_resp_reply_decode(rep, reply), 0);
}

/* A header that is wrong in one way: refused with the reason, then closed. */
static void refused(unsigned int port, const uint8_t *hdr, const char *why)
{
	struct agent_resp_reply reply;
	uint8_t rest[8];
	int fd = connect_port(AF_INET, port);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(send(fd, hdr, AGENT_RESP_REQ_LEN, 0), AGENT_RESP_REQ_LEN);
	read_reply(fd, &reply);
	CU_ASSERT(!reply.ok);
	CU_ASSERT_STRING_EQUAL(reply.message, why);
	/* Then end of stream, not a reset. */
	CU_ASSERT_EQUAL(read_pumped(fd, rest, sizeof(rest), 2000), 0);
	close(fd);
}

static void test_resp_bad_headers(void)
{
	struct agent_responder *resp = mk_responder(0);
	struct agent_resp_request q;
	unsigned int port;
	unsigned long bad0;
	uint8_t h[AGENT_RESP_REQ_LEN];
	char err[64];

	CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
	port = agent_responder_port(resp);
	bad0 = agent_responder_bad_requests(resp);
	memset(h, 'x', sizeof(h));
	refused(port, h, "bad magic (not a Fjord request)");
	memset(&q, 0, sizeof(q));
	q.type = 9;
	agent_resp_request_encode(&q, h);
	refused(port, h, "unknown type 9");
	q.type = AGENT_RESP_RR;
	q.request_bytes = 0;
	q.response_bytes = 10;
	agent_resp_request_encode(&q, h);
	refused(port, h, "rr request_bytes must be 1..1048576 (got 0)");
	q.request_bytes = 10;
	q.response_bytes = (1u << 20) + 1;
	agent_resp_request_encode(&q, h);
	refused(port, h, "rr response_bytes must be 1..1048576 (got 1048577)");
	q.type = AGENT_RESP_SOURCE;
	agent_resp_request_encode(&q, h);
	refused(port, h, "source needs bytes or duration_ms");
	q.duration_ms = AGENT_RESP_MAX_DURATION_MS + 1;
	agent_resp_request_encode(&q, h);
	refused(port, h, "source duration_ms above 3600000");
	q.type = AGENT_RESP_ECHO;
	agent_resp_request_encode(&q, h);
	h[6] = 1;
	refused(port, h, "reserved header bytes not zero");
	CU_ASSERT_EQUAL(agent_responder_bad_requests(resp) - bad0, 7);
	/* The decoder says the same without a socket. */
	CU_ASSERT_EQUAL(agent_resp_request_decode(h, &q, err, sizeof(err)), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err, "reserved header bytes not zero");
	/* A client that closes mid-header is dropped. */
	{
		int fd = connect_port(AF_INET, port);

		CU_ASSERT_EQUAL(send(fd, "FJX1", 4, 0), 4);
		pump(50);
		CU_ASSERT_EQUAL(agent_responder_conns(resp), 1);
		close(fd);
		pump(50);
		CU_ASSERT_EQUAL(agent_responder_conns(resp), 0);
	}
	agent_responder_destroy(resp);
}

static void sha256(const uint8_t *p, size_t len, uint8_t md[32])
{
	unsigned int l = 32;

	EVP_Digest(p, len, md, &l, EVP_sha256(), NULL);
}

/* sink: the trailer counts the bytes and hashes them; source: the seed's stream, exactly. */
static void sink_source(int family, int force_tcp)
{
	struct agent_responder *resp = mk_responder(force_tcp);
	struct agent_resp_request q = { .type = AGENT_RESP_SINK };
	struct agent_resp_reply reply;
	struct agent_resp_trailer tr;
	size_t len = 300000, got;
	uint8_t *data = malloc(len), *back = malloc(len + 1), md[32],
		trailer[AGENT_RESP_TRAILER_LEN];
	int fd;

	CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
	agent_resp_fill(7, 0, data, len);
	fd = connect_port(family, agent_responder_port(resp));
	CU_ASSERT_FATAL(fd >= 0);
	send_request(fd, &q);
	read_reply(fd, &reply);
	CU_ASSERT(reply.ok);
	CU_ASSERT_STRING_EQUAL(reply.peer, family == AF_INET ? "127.0.0.1" : "::1");
	for (got = 0; got < len;) {
		ssize_t n = send(fd, data + got, len - got, MSG_DONTWAIT);

		if (n > 0)
			got += (size_t)n;
		agent_loop_run_once(loop, 1);
	}
	shutdown(fd, SHUT_WR);
	CU_ASSERT_EQUAL_FATAL(read_pumped(fd, trailer, sizeof(trailer), 3000), sizeof(trailer));
	CU_ASSERT_EQUAL(agent_resp_trailer_decode(trailer, &tr), 0);
	CU_ASSERT_EQUAL(tr.bytes, len);
	sha256(data, len, md);
	CU_ASSERT_EQUAL(memcmp(md, tr.sha256, 32), 0);
	close(fd);

	q.type = AGENT_RESP_SOURCE;
	q.bytes = len;
	q.seed = 7;
	fd = connect_port(family, agent_responder_port(resp));
	send_request(fd, &q);
	read_reply(fd, &reply);
	CU_ASSERT(reply.ok);
	/* Exactly len bytes of the stream, then end of stream. */
	CU_ASSERT_EQUAL(read_pumped(fd, back, len + 1, 3000), len);
	CU_ASSERT_EQUAL(memcmp(back, data, len), 0);
	close(fd);
	free(data);
	free(back);
	agent_responder_destroy(resp);
}

static void test_resp_sink_source_v4(void)
{
	sink_source(AF_INET, 0);
}

static void test_resp_sink_source_v6_tcp(void)
{
	sink_source(AF_INET6, 1);
}

/* The stream at any offset is the same as from the start. */
static void test_resp_fill_offsets(void)
{
	uint8_t a[1000], b[300];
	unsigned int off;

	agent_resp_fill(42, 0, a, sizeof(a));
	for (off = 0; off < 600; off += 37) {
		agent_resp_fill(42, off, b, sizeof(b));
		CU_ASSERT_EQUAL(memcmp(a + off, b, sizeof(b)), 0);
	}
	agent_resp_fill(43, 0, b, sizeof(b));
	CU_ASSERT_NOT_EQUAL(memcmp(a, b, sizeof(b)), 0);
}

static void test_resp_rr_and_duration(void)
{
	struct agent_responder *resp = mk_responder(0);
	struct agent_resp_request q = { .type = AGENT_RESP_RR };
	struct agent_resp_reply reply;
	uint8_t req[100] = { 0 }, *rsp = malloc(65536);
	uint64_t t0, total = 0;
	int fd, i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
	q.request_bytes = 100;
	q.response_bytes = 5000;
	fd = connect_port(AF_INET, agent_responder_port(resp));
	send_request(fd, &q);
	read_reply(fd, &reply);
	CU_ASSERT(reply.ok);
	for (i = 0; i < 5; i++) {
		/* A request in two pieces still gets exactly one response. */
		CU_ASSERT_EQUAL(send(fd, req, 60, 0), 60);
		pump(5);
		CU_ASSERT_EQUAL(recv(fd, rsp, 5000, MSG_DONTWAIT), -1);
		CU_ASSERT_EQUAL(send(fd, req, 40, 0), 40);
		CU_ASSERT_EQUAL(read_pumped(fd, rsp, 5000, 2000), 5000);
	}
	close(fd);

	/* source for a duration: data flows for about that long, then end of stream. */
	memset(&q, 0, sizeof(q));
	q.type = AGENT_RESP_SOURCE;
	q.duration_ms = 300;
	fd = connect_port(AF_INET, agent_responder_port(resp));
	send_request(fd, &q);
	read_reply(fd, &reply);
	t0 = fj_mono_ms();
	for (;;) {
		ssize_t n;

		agent_loop_run_once(loop, 1);
		while ((n = recv(fd, rsp, 65536, MSG_DONTWAIT)) > 0)
			total += (uint64_t)n;
		if (n == 0 || fj_mono_ms() - t0 > 5000)
			break;
	}
	CU_ASSERT(fj_mono_ms() - t0 >= 290);
	CU_ASSERT(fj_mono_ms() - t0 < 2500);
	CU_ASSERT(total > 0);
	close(fd);
	free(rsp);
	agent_responder_destroy(resp);
}

static const struct fj_test tests[] = {
	{ "resp_bad_headers", test_resp_bad_headers },
	{ "resp_sink_source_v4", test_resp_sink_source_v4 },
	{ "resp_sink_source_v6_tcp", test_resp_sink_source_v6_tcp },
	{ "resp_fill_offsets", test_resp_fill_offsets },
	{ "resp_rr_and_duration", test_resp_rr_and_duration },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_agent_exp = { "agent_exp", exp_setup, exp_teardown, tests };
