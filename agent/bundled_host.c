/*
 * The agent's bundled stack on the node's own addresses (libmps's host
 * adapter, stack/include/mps_host.h) instead of TUN devices: the adapter for
 * a run's child and for the bundled responder, and the node's requirements
 * checked when the agent starts.
 */
#include "bundled.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <ifaddrs.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mps_host.h"

int bundled_enabled(const struct bundled_cfg *b)
{
	return b->tun[0] || b->host;
}

/* Every bundled address of b (the client's; with the host adapter the responder's too). */
static int host_addrs(const struct bundled_cfg *b, struct mps_host_config *hc, char *err,
		      size_t errlen)
{
	unsigned int i, f;

	for (i = 0; i < b->n_isps; i++)
		for (f = 0; f < 2; f++) {
			const char *s = b->isps[i].addr[f];

			if (!s[0])
				continue;
			if (hc->naddrs >= MPS_HOST_MAX_ADDRS) {
				snprintf(err, errlen,
					 "the host adapter takes at most %u bundled addresses",
					 MPS_HOST_MAX_ADDRS);
				return -EINVAL;
			}
			if (bundled_addr(s, 0, &hc->addrs[hc->naddrs]) < 0) {
				snprintf(err, errlen, "bad bundled address %s", s);
				return -EINVAL;
			}
			hc->naddrs++;
		}
	if (!hc->naddrs) {
		snprintf(err, errlen,
			 "bundled_host: no interface has a bundled_ipv4 or bundled_ipv6");
		return -EINVAL;
	}
	return 0;
}

/* The adapter's own reason, with the agent setting or sysctl that fixes it where one does. */
static void host_why(int rc, const char *why, char *err, size_t errlen)
{
	const char *fix = "";

	if (rc == -EPERM)
		fix = " (the agent needs CAP_NET_RAW and CAP_NET_ADMIN: run it as root)";
	else if (rc == -ENOENT)
		fix = " (install nftables: deploy/deps.sh)";
	else if (rc == -EADDRNOTAVAIL)
		fix = " (bundled_ipv4 / bundled_ipv6 must be this node's addresses)";
	snprintf(err, errlen, "host adapter: %s%s", why[0] ? why : strerror(-rc), fix);
}

static int open_host(struct bundled_io *io, const struct mps_host_config *hc,
		     struct mps_config *cfg, int trace, char *err, size_t errlen)
{
	char why[256] = "";
	int rc;

	memset(io, 0, sizeof(*io));
	io->trace_fd = -1;
	io->host = mps_host_open(hc, &rc, why, sizeof(why));
	if (!io->host) {
		host_why(rc, why, err, errlen);
		return rc;
	}
	return bundled_io_finish(io, cfg, trace, err, errlen);
}

/*
 * A run's child killed by SIGTERM, SIGINT or SIGHUP (an operator's kill; the
 * runner itself uses SIGKILL) deletes its adapter's nftables table on the
 * way out, so that nothing is left for the next open to clean up. Only
 * async-signal-safe calls in the handler: fork, execve, waitpid, sigaction,
 * raise. The process still dies of the signal.
 */
static const int fatal_sigs[3] = { SIGTERM, SIGINT, SIGHUP };
static struct sigaction fatal_old[3];
static sigset_t fatal_old_mask;
static char fatal_nft[32], fatal_table[64];
static char *fatal_argv[6];
static volatile sig_atomic_t fatal_armed;

static void on_fatal_signal(int sig)
{
	static char *const envp[] = { NULL };
	struct sigaction dfl;
	pid_t p;

	if (fatal_armed) {
		p = fork();
		if (p == 0) {
			execve(fatal_nft, fatal_argv, envp);
			_exit(127);
		}
		while (p > 0 && waitpid(p, NULL, 0) < 0 && errno == EINTR)
			;
	}
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigaction(sig, &dfl, NULL);
	/* Blocked while the handler runs: delivered, with the default action, on return. */
	raise(sig);
}

static void fatal_arm(const struct bundled_io *io)
{
	static const char *const paths[] = { "/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft" };
	struct sigaction sa;
	unsigned int i;

	for (i = 0; i < 3 && access(paths[i], X_OK); i++)
		;
	if (i == 3)
		return; /* no nft to run: the next open deletes the table */
	snprintf(fatal_nft, sizeof(fatal_nft), "%s", paths[i]);
	snprintf(fatal_table, sizeof(fatal_table), "%s", mps_host_table(io->host));
	fatal_argv[0] = fatal_nft;
	fatal_argv[1] = "delete";
	fatal_argv[2] = "table";
	fatal_argv[3] = "inet";
	fatal_argv[4] = fatal_table;
	fatal_argv[5] = NULL;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fatal_signal;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < 3; i++)
		sigaddset(&sa.sa_mask, fatal_sigs[i]);
	for (i = 0; i < 3; i++)
		sigaction(fatal_sigs[i], &sa, &fatal_old[i]);
	fatal_armed = 1;
	/*
	 * A run's child inherits the agent's mask, which blocks SIGTERM and
	 * SIGINT for its signalfd: unblocked here, or they would wait forever.
	 */
	sigprocmask(SIG_UNBLOCK, &sa.sa_mask, &fatal_old_mask);
}

void bundled_host_disarm(void)
{
	unsigned int i;

	if (!fatal_armed)
		return;
	sigprocmask(SIG_SETMASK, &fatal_old_mask, NULL);
	fatal_armed = 0;
	for (i = 0; i < 3; i++)
		sigaction(fatal_sigs[i], &fatal_old[i], NULL);
}

int bundled_io_open_run(struct bundled_io *io, const struct bundled_cfg *b, struct mps_config *cfg,
			int trace, char *err, size_t errlen)
{
	struct mps_host_config hc;
	int rc;

	if (!b->host)
		return bundled_io_open(io, b->tun, cfg, trace, err, errlen);
	memset(&hc, 0, sizeof(hc));
	/* The client's connection and joins take the stack's ephemeral ports. */
	hc.ephemeral = true;
	rc = host_addrs(b, &hc, err, errlen);
	if (rc < 0)
		return rc;
	rc = open_host(io, &hc, cfg, trace, err, errlen);
	if (!rc)
		fatal_arm(io);
	return rc;
}

int bundled_io_open_resp(struct bundled_io *io, const struct bundled_cfg *b, unsigned int port,
			 struct mps_config *cfg, char *err, size_t errlen)
{
	struct mps_host_config hc;
	int rc;

	if (!b->host)
		return bundled_io_open(io, b->resp_tun, cfg, 0, err, errlen);
	memset(&hc, 0, sizeof(hc));
	/* Passive only: it announces no address and opens no join (bundled_resp.c). */
	hc.ports[0] = (uint16_t)port;
	hc.nports = 1;
	rc = host_addrs(b, &hc, err, errlen);
	if (rc < 0)
		return rc;
	return open_host(io, &hc, cfg, 0, err, errlen);
}

const char *bundled_io_adapter(const struct bundled_io *io)
{
	return io->host ? "host" : "tun";
}

/*
 * The host adapter's ops with the bundled_io as their context, counting the
 * packets read as io_recv() does for the TUN (bundled_io_step() needs it).
 */
static int hio_send(void *ctx, const uint8_t *pkt, size_t len, uint64_t now)
{
	return mps_host_link_ops.send(((struct bundled_io *)ctx)->host, pkt, len, now);
}

static int hio_recv(void *ctx, uint8_t *buf, size_t cap, uint64_t now)
{
	struct bundled_io *io = ctx;
	int n = mps_host_link_ops.recv(io->host, buf, cap, now);

	if (n > 0)
		io->rx_packets++;
	return n;
}

/* The kernel's checksum verdict: without it the stack would sum, or drop, a partial one. */
static unsigned int hio_recv_flags(void *ctx)
{
	return mps_host_link_ops.recv_flags(((struct bundled_io *)ctx)->host);
}

const struct mps_link_ops *bundled_host_ops(void)
{
	static const struct mps_link_ops ops = {
		.name = "host",
		.send = hio_send,
		.recv = hio_recv,
		.recv_flags = hio_recv_flags,
	};

	return &ops;
}

int bundled_host_fd(const struct bundled_io *io)
{
	return mps_host_fd(io->host);
}

/* A sysctl's text (first line, trailing newline cut) into buf; 0 or -errno. */
static int read_sysctl(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	/* The kernel separates the range's two numbers with a tab: a space in messages. */
	for (char *t = strchr(buf, '\t'); t; t = strchr(t, '\t'))
		*t = ' ';
	return 0;
}

/* Whether this process has capability cap (CAP_NET_RAW, CAP_NET_ADMIN) in its effective set. */
static int has_cap(unsigned int cap)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) < 0)
		return 0;
	return (d[cap / 32].effective >> (cap % 32)) & 1;
}

/* Whether s (a literal) is an address of one of this host's interfaces. */
static int is_local(const struct ifaddrs *ifs, const char *s)
{
	struct mps_addr a;

	if (bundled_addr(s, 0, &a) < 0)
		return 0;
	for (; ifs; ifs = ifs->ifa_next) {
		const struct sockaddr *sa = ifs->ifa_addr;

		if (!sa)
			continue;
		if (sa->sa_family == AF_INET && a.family == 4 &&
		    !memcmp(&((const struct sockaddr_in *)sa)->sin_addr, a.addr, 4))
			return 1;
		if (sa->sa_family == AF_INET6 && a.family == 6 &&
		    !memcmp(&((const struct sockaddr_in6 *)sa)->sin6_addr, a.addr, 16))
			return 1;
	}
	return 0;
}

int bundled_host_check(const struct bundled_cfg *b, char *err, size_t errlen)
{
	char range[64], reserved[1024] = "", why[160] = "";
	struct ifaddrs *ifs = NULL;
	unsigned int i, f;
	int rc;

	if (!b->host)
		return 0;
	if (!has_cap(CAP_NET_RAW) || !has_cap(CAP_NET_ADMIN)) {
		snprintf(err, errlen,
			 "bundled_host: the host adapter needs CAP_NET_RAW and CAP_NET_ADMIN "
			 "(run the agent as root, or give it both capabilities)");
		return -EPERM;
	}
	if (access("/usr/sbin/nft", X_OK) && access("/sbin/nft", X_OK) &&
	    access("/usr/bin/nft", X_OK)) {
		snprintf(err, errlen,
			 "bundled_host: the host adapter needs the nft program (package nftables)");
		return -ENOENT;
	}
	rc = read_sysctl("/proc/sys/net/ipv4/ip_local_port_range", range, sizeof(range));
	if (!rc)
		rc = read_sysctl("/proc/sys/net/ipv4/ip_local_reserved_ports", reserved,
				 sizeof(reserved));
	if (rc) {
		snprintf(err, errlen, "bundled_host: cannot read the kernel's port range: %s",
			 strerror(-rc));
		return rc;
	}
	rc = mps_host_ports_check(range, reserved, why, sizeof(why));
	if (rc) {
		if (rc == -EINVAL)
			snprintf(err, errlen, "bundled_host: the kernel's port range: %s", why);
		else
			snprintf(err, errlen,
				 "bundled_host: the kernel may hand out ports of the bundled "
				 "stack's range %u-%u itself (net.ipv4.ip_local_port_range is "
				 "%s): set net.ipv4.ip_local_port_range = 32768 49151, or list "
				 "%u-%u in net.ipv4.ip_local_reserved_ports (docs/operations.md)",
				 MPS_HOST_PORT_MIN, MPS_HOST_PORT_MAX, range, MPS_HOST_PORT_MIN,
				 MPS_HOST_PORT_MAX);
		return rc == -EINVAL ? rc : -EADDRINUSE;
	}
	if (getifaddrs(&ifs) < 0) {
		rc = -errno;
		snprintf(err, errlen, "bundled_host: cannot list the addresses: %s", strerror(-rc));
		return rc;
	}
	for (i = 0; i < b->n_isps && !rc; i++)
		for (f = 0; f < 2 && !rc; f++)
			if (b->isps[i].addr[f][0] && !is_local(ifs, b->isps[i].addr[f])) {
				snprintf(err, errlen,
					 "bundled_host: %s (ISP %s) is not an address of this "
					 "node (with bundled_host, bundled_ipv4 / bundled_ipv6 "
					 "name the interface's own addresses)",
					 b->isps[i].addr[f], b->isps[i].isp);
				rc = -EADDRNOTAVAIL;
			}
	freeifaddrs(ifs);
	return rc;
}
