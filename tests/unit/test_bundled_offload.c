/*
 * The agent's bundled TUN I/O with libmps's offloads (agent/bundled.c): the
 * kernel's own TCP, in a network namespace of the test, sends to an address
 * routed into a TUN device that bundled_io_open() opened with offloads. The
 * kernel hands such a device its segments with the checksum partial and its
 * TSO super-segments whole; the stack must take every byte. Before the TUN
 * ops wrapper passed recv_flags on, the stack checked those partial
 * checksums itself and dropped every packet (on the emulated testbed
 * bundled bulk fell to 0.2 Mbit/s), so not even the handshake came through.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bundled.h"
#include "fj_clock.h"
#include "fj_test.h"
#include "mps.h"
#include "mps_tun.h"

#define OFF_DEV	  "fjoff0"
#define OFF_LOCAL "10.213.0.1" /* the kernel's end, on the device */
#define OFF_STACK "10.213.0.2" /* the stack's, routed into the device */
#define OFF_PORT  5201
#define OFF_BYTES (2u << 20)
#define OFF_MS	  10000 /* the child gives up after this */

static char ns[32];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	if (rc != 0)
		fprintf(stderr, "\ncommand failed (%d): %s\n", rc, cmd);
	return rc;
}

/* What the child saw, for the parent to assert on. */
struct off_report {
	int open_rc;
	unsigned int offloads;
	uint64_t got, bad_csum;
	struct mps_tun_stats tun;
};

static int ns_setup(void)
{
	snprintf(ns, sizeof(ns), "fjoff-%d", (int)getpid());
	if (sh("ip netns add %s", ns) || sh("ip -n %s link set lo up", ns) ||
	    sh("ip -n %s tuntap add dev %s mode tun", ns, OFF_DEV) ||
	    sh("ip -n %s addr add %s/24 dev %s", ns, OFF_LOCAL, OFF_DEV) ||
	    sh("ip -n %s link set %s up", ns, OFF_DEV))
		return -1;
	return 0;
}

static int ns_cleanup(void)
{
	if (ns[0])
		sh("ip netns del %s 2>/dev/null", ns);
	ns[0] = 0;
	return 0;
}

/* The kernel's sender: connects, then writes what its socket takes. */
static int kernel_connect(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(OFF_PORT) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	inet_pton(AF_INET, OFF_STACK, &sa.sin_addr);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		close(fd);
		return -errno;
	}
	return fd;
}

static void child_run(struct off_report *r)
{
	static uint8_t out[64 << 10], in[64 << 10];
	struct bundled_cfg b = { .offloads = true };
	struct mps_addr any = { .family = 4, .port = OFF_PORT };
	struct mps_config cfg;
	struct bundled_io io;
	struct mps_conn *c = NULL;
	uint64_t sent = 0, start = fj_mono_us();
	char path[64], err[200] = "";
	int nsfd, fd;

	snprintf(path, sizeof(path), "/run/netns/%s", ns);
	nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) < 0) {
		r->open_rc = -errno;
		return;
	}
	close(nsfd);
	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (uint8_t)(i * 7 + 3);
	bundled_set(&b);
	memset(&cfg, 0, sizeof(cfg));
	r->open_rc = bundled_io_open(&io, OFF_DEV, &cfg, 0, err, sizeof(err));
	if (r->open_rc < 0) {
		fprintf(stderr, "\nbundled_io_open: %s\n", err);
		return;
	}
	r->offloads = mps_tun_offloads(io.tun);
	if (mps_listen(io.st, &any) < 0 || (fd = kernel_connect()) < 0) {
		r->open_rc = -EIO;
		bundled_io_close(&io, NULL, NULL, 0, NULL);
		return;
	}
	while (r->got < OFF_BYTES && fj_mono_us() - start < (uint64_t)OFF_MS * 1000) {
		ssize_t n;

		if (sent < OFF_BYTES) {
			size_t want = OFF_BYTES - sent < sizeof(out) ? OFF_BYTES - sent
								     : sizeof(out);

			n = send(fd, out, want, MSG_NOSIGNAL);
			if (n > 0)
				sent += (uint64_t)n;
		}
		bundled_io_step(&io, 5);
		if (!c)
			c = mps_accept(io.st);
		while (c && (n = mps_recv(c, in, sizeof(in))) > 0)
			r->got += (uint64_t)n;
	}
	r->bad_csum = mps_stack_counter(io.st, MPS_CNT_IN_BAD_CSUM);
	mps_tun_get_stats(io.tun, &r->tun);
	close(fd);
	bundled_io_close(&io, NULL, NULL, 0, NULL);
}

static void test_kernel_to_stack(void)
{
	struct off_report r;
	int pfd[2], status = 0;
	pid_t pid;

	memset(&r, 0, sizeof(r));
	CU_ASSERT_EQUAL_FATAL(ns_setup(), 0);
	CU_ASSERT_EQUAL_FATAL(pipe(pfd), 0);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		child_run(&r);
		_exit(write(pfd[1], &r, sizeof(r)) == (ssize_t)sizeof(r) ? 0 : 1);
	}
	close(pfd[1]);
	CU_ASSERT_EQUAL(read(pfd[0], &r, sizeof(r)), (ssize_t)sizeof(r));
	close(pfd[0]);
	CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CU_ASSERT_EQUAL_FATAL(r.open_rc, 0);
	CU_ASSERT_EQUAL(r.offloads, MPS_TUN_OFFLOAD);
	/* Every byte, and no packet lost to a checksum the kernel vouched for. */
	CU_ASSERT_EQUAL(r.got, OFF_BYTES);
	CU_ASSERT_EQUAL(r.bad_csum, 0);
	CU_ASSERT_EQUAL(r.tun.rx_bad, 0);
	/* The case is the one that failed: partial checksums came, and merged packets. */
	CU_ASSERT(r.tun.rx_csum > 0);
	CU_ASSERT(r.tun.rx_gso > 0);
	if (r.got != OFF_BYTES)
		fprintf(stderr,
			"\ngot %llu of %u bytes; bad checksums %llu, tun rx %llu (csum %llu)\n",
			(unsigned long long)r.got, OFF_BYTES, (unsigned long long)r.bad_csum,
			(unsigned long long)r.tun.rx_pkts, (unsigned long long)r.tun.rx_csum);
	ns_cleanup();
}

static const struct fj_test tests[] = {
	{ "kernel_to_stack", test_kernel_to_stack },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_bundled_offload = { "bundled_offload", NULL, ns_cleanup, tests };
