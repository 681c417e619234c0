/*
 * libFuzzer target for the probe's packet reader (agent/exp_tracebox.c): any
 * bytes, read as an ICMP(v4/v6) message or a TCP answer of either family,
 * give a known kind and a NUL-terminated sender, or -EINVAL; a quote is only
 * ever reported for a segment from the probe's port to its destination.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "../../agent/exp_tracebox.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void mk(struct sockaddr_storage *ss, int family, const char *a, uint16_t port)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		inet_pton(AF_INET, a, &s4->sin_addr);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		inet_pton(AF_INET6, a, &s6->sin6_addr);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_storage src, dst, from;
	struct exp_tbox_pkt p;
	int family, icmp, rc;

	if (size < 1)
		return 0;
	family = data[0] & 1 ? AF_INET6 : AF_INET;
	icmp = (data[0] >> 1) & 1;
	if (family == AF_INET) {
		mk(&src, family, "10.63.3.2", 40000);
		mk(&dst, family, "10.61.2.2", 7470);
		mk(&from, family, "10.61.2.2", 0);
	} else {
		mk(&src, family, "fd00:63:0:3::2", 40000);
		mk(&dst, family, "fd00:61:0:2::2", 7470);
		mk(&from, family, data[0] & 4 ? "fd00:61:0:2::2" : "fd00:63:0:3::1", 0);
	}
	rc = exp_tbox_parse(data + 1, size - 1, family, icmp, &src, &dst, &from, &p);
	assert(rc == 0 || rc == -EINVAL);
	assert(p.kind == EXP_TBOX_OTHER || p.kind == EXP_TBOX_QUOTE || p.kind == EXP_TBOX_UNREACH ||
	       p.kind == EXP_TBOX_ANSWERED);
	assert(rc == 0 || p.kind == EXP_TBOX_OTHER);
	assert(memchr(p.from, 0, sizeof(p.from)) != NULL);
	/* Quotes and answers are only ever about our ports. */
	assert(p.kind != EXP_TBOX_ANSWERED || !icmp);
	assert((p.kind != EXP_TBOX_QUOTE && p.kind != EXP_TBOX_UNREACH) || icmp);
	return 0;
}
