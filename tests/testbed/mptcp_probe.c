/*
 * fjtb-mptcp-probe: one kernel MPTCP connection, for the testbed tests.
 *
 *   fjtb-mptcp-probe server ADDR PORT          accept one connection, drain it,
 *                                              print "peer=ADDR bytes=N" too
 *   fjtb-mptcp-probe client ADDR PORT SRC      connect from SRC, send 64 KB
 *
 * Both print "fallback=0|1 add_addr_accepted=N subflows=N" for their socket
 * (from MPTCP_INFO) once the data has gone through.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/mptcp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif
#ifndef SOL_MPTCP
#define SOL_MPTCP 284
#endif

static int parse_addr(const char *a, const char *port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	long p = port ? strtol(port, NULL, 10) : 0;

	memset(ss, 0, sizeof(*ss));
	if (p < 0 || p > 65535)
		return -EINVAL;
	if (inet_pton(AF_INET, a, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)p);
		*len = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, a, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)p);
		*len = sizeof(*s6);
		return 0;
	}
	return -EINVAL;
}

/*
 * A socket that fell back refuses MPTCP_INFO with EOPNOTSUPP (IPv4) or
 * ENOPROTOOPT (IPv6); that means fallback. Any other error is a failure.
 */
static int report(int fd)
{
	struct mptcp_info info;
	socklen_t len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (getsockopt(fd, SOL_MPTCP, MPTCP_INFO, &info, &len) < 0) {
		if (errno != EOPNOTSUPP && errno != ENOPROTOOPT) {
			printf("error: MPTCP_INFO: %s\n", strerror(errno));
			return 1;
		}
		printf("fallback=1 add_addr_accepted=0 subflows=0 (MPTCP_INFO: %s)\n",
		       strerror(errno));
		return 0;
	}
	printf("fallback=%d add_addr_accepted=%u subflows=%u\n",
	       (info.mptcpi_flags & MPTCP_INFO_FLAG_FALLBACK) ? 1 : 0,
	       info.mptcpi_add_addr_accepted, info.mptcpi_subflows);
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss, src;
	socklen_t len, slen;
	static char buf[65536];
	int fd, one = 1;

	if (argc < 4 || parse_addr(argv[2], argv[3], &ss, &len)) {
		fprintf(stderr,
			"usage: fjtb-mptcp-probe server ADDR PORT | client ADDR PORT SRC\n");
		return 2;
	}
	fd = socket(ss.ss_family, SOCK_STREAM, IPPROTO_MPTCP);
	if (fd < 0) {
		fprintf(stderr, "fjtb-mptcp-probe: MPTCP socket: %s\n", strerror(errno));
		return 1;
	}
	if (!strcmp(argv[1], "server")) {
		size_t total = 0;
		ssize_t n;
		int c;

		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 4) < 0) {
			fprintf(stderr, "fjtb-mptcp-probe: listen: %s\n", strerror(errno));
			return 1;
		}
		printf("listening\n");
		fflush(stdout);
		slen = sizeof(src);
		c = accept(fd, (struct sockaddr *)&src, &slen);
		if (c < 0) {
			fprintf(stderr, "fjtb-mptcp-probe: accept: %s\n", strerror(errno));
			return 1;
		}
		while ((n = read(c, buf, sizeof(buf))) > 0)
			total += (size_t)n;
		if (src.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&src)->sin_addr, buf, 64);
		else
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&src)->sin6_addr, buf, 64);
		printf("peer=%s bytes=%zu ", buf, total);
		n = report(c);
		close(c);
		close(fd);
		return (int)n;
	}
	if (!strcmp(argv[1], "client") && argc == 5 && !parse_addr(argv[4], NULL, &src, &slen)) {
		struct timeval tv = { 5, 0 };
		int n;

		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (bind(fd, (struct sockaddr *)&src, slen) < 0 ||
		    connect(fd, (struct sockaddr *)&ss, len) < 0) {
			fprintf(stderr, "fjtb-mptcp-probe: connect: %s\n", strerror(errno));
			return 1;
		}
		memset(buf, 'x', sizeof(buf));
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf)) {
			fprintf(stderr, "fjtb-mptcp-probe: write: %s\n", strerror(errno));
			return 1;
		}
		/* Give the path manager time for ADD_ADDR after the handshake. */
		usleep(400000);
		n = report(fd);
		close(fd);
		return n;
	}
	fprintf(stderr, "usage: fjtb-mptcp-probe server ADDR PORT | client ADDR PORT SRC\n");
	return 2;
}
