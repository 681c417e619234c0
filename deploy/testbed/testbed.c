/*
 * fjord-testbed: brings the emulated NorNet-style testbed up and down.
 *
 *   fjord-testbed up FILE | down | status | set SITE/ISP key=value ... | down | up
 *
 * Everything it creates lives in network namespaces named fjtb-*: removing
 * them removes every veth, address, route, rule, qdisc and iptables rule.
 * The state directory records the topology and each namespace before it is
 * made, so "down" also cleans up after a crash or a half-finished "up".
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tb_config.h"

#define NS_PREFIX  "fjtb-"
#define NS_CORE	   "fjtb-core"
#define NS_CTL	   "fjtb-ctl"
#define QUEUE_BASE 1000
#define TABLE_BASE 100 /* routing table of ISP i: TABLE_BASE + i */
#define CMD_MAX	   1024
#define OUT_MAX	   4096

extern char **environ;

static char run_dir[80] = "/run/fjord-testbed";
static bool verbose;

static void path_in_run(char *buf, size_t len, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", run_dir, name);

	/* run_dir is capped well below every buffer this is called with. */
	if (n < 0 || (size_t)n >= len)
		buf[0] = 0;
}

/*
 * Runs a command (words separated by single spaces; names are validated so
 * they hold none) and captures its output. Returns its exit status, or -1
 * when it could not be started; out holds what it printed.
 */
static int run_capture(const char *cmdline, char *out, size_t outlen)
{
	char buf[CMD_MAX], *argv[64], *save = NULL, *w;
	posix_spawn_file_actions_t fa;
	int pipefd[2], st, argc = 0;
	size_t off = 0;
	pid_t pid;
	ssize_t n;

	snprintf(buf, sizeof(buf), "%s", cmdline);
	for (w = strtok_r(buf, " ", &save); w && argc < 63; w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	argv[argc] = NULL;
	if (argc == 0 || pipe2(pipefd, O_CLOEXEC) < 0)
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
	if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		close(pipefd[0]);
		close(pipefd[1]);
		snprintf(out, outlen, "cannot start %s", argv[0]);
		return -1;
	}
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	while ((n = read(pipefd[0], out + off, outlen - 1 - off)) > 0 && off + 1 < outlen)
		off += (size_t)n;
	/* Drain what does not fit so the child never blocks on a full pipe. */
	while (n > 0) {
		char sink[512];

		n = read(pipefd[0], sink, sizeof(sink));
	}
	out[off] = 0;
	while (off && (out[off - 1] == '\n' || out[off - 1] == ' '))
		out[--off] = 0;
	close(pipefd[0]);
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Runs one step of "up"; on failure says which step, the command and why. */
static int step(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int step(const char *what, const char *fmt, ...)
{
	char cmd[CMD_MAX], out[OUT_MAX];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (verbose)
		fprintf(stderr, "+ %s\n", cmd);
	/* Every change is made inside a testbed namespace, never on the host. */
	if (strncmp(cmd, "ip -n " NS_PREFIX, 11) && strncmp(cmd, "ip netns exec " NS_PREFIX, 19) &&
	    strncmp(cmd, "ip netns add " NS_PREFIX, 18) &&
	    strncmp(cmd, "ip netns del " NS_PREFIX, 18)) {
		fprintf(stderr,
			"fjord-testbed: step \"%s\": refusing a command outside the testbed's "
			"namespaces: %s\n",
			what, cmd);
		return -EPERM;
	}
	r = run_capture(cmd, out, sizeof(out));
	if (r != 0) {
		fprintf(stderr, "fjord-testbed: step \"%s\" failed: %s: %s\n", what, cmd,
			*out ? out : "exit status without a message");
		return -EIO;
	}
	return 0;
}

/* ---- state ---- */

static int state_append(const char *line)
{
	char p[PATH_MAX];
	FILE *f;

	path_in_run(p, sizeof(p), "state");
	f = fopen(p, "a");
	if (!f)
		return -errno;
	fprintf(f, "%s\n", line);
	if (fflush(f) || fsync(fileno(f))) {
		fclose(f);
		return -EIO;
	}
	fclose(f);
	return 0;
}

static bool state_has(const char *line)
{
	char p[PATH_MAX], buf[256];
	bool found = false;
	FILE *f;

	path_in_run(p, sizeof(p), "state");
	f = fopen(p, "r");
	if (!f)
		return false;
	while (!found && fgets(buf, sizeof(buf), f)) {
		buf[strcspn(buf, "\n")] = 0;
		found = strcmp(buf, line) == 0;
	}
	fclose(f);
	return found;
}

static int copy_file(const char *from, const char *to, char *err, size_t errlen)
{
	char buf[8192];
	FILE *in = fopen(from, "r"), *out;
	size_t n;

	if (!in) {
		snprintf(err, errlen, "%.120s: %s", from, strerror(errno));
		return -errno;
	}
	out = fopen(to, "w");
	if (!out) {
		snprintf(err, errlen, "%.120s: %s", to, strerror(errno));
		fclose(in);
		return -EIO;
	}
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		fwrite(buf, 1, n, out);
	fclose(in);
	if (fclose(out)) {
		snprintf(err, errlen, "%.120s: %s", to, strerror(errno));
		return -EIO;
	}
	return 0;
}

static bool same_file(const char *a, const char *b)
{
	char ba[8192], bb[8192];
	FILE *fa = fopen(a, "r"), *fb = fopen(b, "r");
	bool same = fa && fb;
	size_t na, nb;

	while (same) {
		na = fread(ba, 1, sizeof(ba), fa);
		nb = fread(bb, 1, sizeof(bb), fb);
		if (na != nb || memcmp(ba, bb, na))
			same = false;
		if (na == 0)
			break;
	}
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	return same;
}

static bool ns_exists(const char *ns)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "/run/netns/%s", ns);
	return access(p, F_OK) == 0;
}

static pid_t emu_pid(void)
{
	char p[PATH_MAX], exe[PATH_MAX];
	long pid = 0;
	ssize_t n;
	FILE *f;

	path_in_run(p, sizeof(p), "linkemu.pid");
	f = fopen(p, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = 0;
	fclose(f);
	if (pid <= 0)
		return 0;
	/* Only our emulator: a recycled pid must not be signalled. */
	snprintf(p, sizeof(p), "/proc/%ld/exe", pid);
	n = readlink(p, exe, sizeof(exe) - 1);
	if (n <= 0)
		return 0;
	exe[n] = 0;
	if (!strstr(exe, "fjord-linkemu"))
		return 0;
	return (pid_t)pid;
}

/* ---- down ---- */

/* True while pid runs; a zombie waiting for init to reap it counts as gone. */
static bool proc_alive(pid_t pid)
{
	char p[64], buf[512], *paren;
	ssize_t n;
	int fd;

	snprintf(p, sizeof(p), "/proc/%ld/stat", (long)pid);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	paren = strrchr(buf, ')');
	return paren && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
}

/* Ends every process whose network namespace is ns (they would keep it alive). */
static void kill_ns_procs(const char *ns)
{
	char p[PATH_MAX];
	struct stat nst;
	DIR *d;
	struct dirent *de;

	snprintf(p, sizeof(p), "/run/netns/%s", ns);
	if (stat(p, &nst) < 0)
		return;
	for (int sig = 0; sig < 2; sig++) {
		bool any = false;

		d = opendir("/proc");
		if (!d)
			return;
		while ((de = readdir(d))) {
			struct stat pst;
			char *end;
			long pid = strtol(de->d_name, &end, 10);

			if (*end || pid <= 1 || pid == getpid())
				continue;
			snprintf(p, sizeof(p), "/proc/%ld/ns/net", pid);
			if (stat(p, &pst) == 0 && pst.st_ino == nst.st_ino &&
			    pst.st_dev == nst.st_dev) {
				kill((pid_t)pid, sig ? SIGKILL : SIGTERM);
				any = true;
			}
		}
		closedir(d);
		if (!any)
			return;
		usleep(300000);
	}
}

static int cmd_down(void)
{
	char p[PATH_MAX], buf[256];
	pid_t pid = emu_pid();
	int failed = 0;
	FILE *f;

	if (pid > 0) {
		kill(pid, SIGTERM);
		for (int i = 0; i < 100 && proc_alive(pid); i++)
			usleep(10000);
		if (proc_alive(pid))
			kill(pid, SIGKILL);
	}
	path_in_run(p, sizeof(p), "state");
	f = fopen(p, "r");
	if (f) {
		while (fgets(buf, sizeof(buf), f)) {
			char ns[64];

			if (sscanf(buf, "ns %63s", ns) != 1 || strncmp(ns, NS_PREFIX, 5))
				continue;
			if (!ns_exists(ns))
				continue;
			kill_ns_procs(ns);
			if (step("delete namespace", "ip netns del %s", ns))
				failed++;
		}
		fclose(f);
	}
	if (failed) {
		fprintf(stderr, "fjord-testbed: down: %d namespaces remain; state kept in %s\n",
			failed, run_dir);
		return 1;
	}
	for (const char *n = "state\0topology.cfg\0linkemu.pid\0linkemu.sock\0linkemu.log\0"; *n;
	     n += strlen(n) + 1) {
		path_in_run(p, sizeof(p), n);
		unlink(p);
	}
	rmdir(run_dir);
	return 0;
}

/* ---- up ---- */

static const char *a4(const struct in_addr *a, char *buf)
{
	return inet_ntop(AF_INET, a, buf, INET_ADDRSTRLEN);
}

static const char *a6(const struct in6_addr *a, char *buf)
{
	return inet_ntop(AF_INET6, a, buf, INET6_ADDRSTRLEN);
}

static void core_dev(const struct tb_topology *t, unsigned int s, unsigned int isp, char *buf,
		     size_t len)
{
	snprintf(buf, len, "%.8s-%u", t->sites[s].name, isp);
}

static int make_ns(const char *ns)
{
	char line[96];
	int r;

	snprintf(line, sizeof(line), "ns %s", ns);
	r = state_append(line);
	if (r) {
		fprintf(stderr, "fjord-testbed: step \"record namespace %s\" failed: %s\n", ns,
			strerror(-r));
		return r;
	}
	if (ns_exists(ns) && step("remove a stale namespace", "ip netns del %s", ns))
		return -EIO;
	if (step("create namespace", "ip netns add %s", ns) ||
	    step("loopback up", "ip -n %s link set lo up", ns) ||
	    step("no IPv6 duplicate address detection",
		 "ip netns exec %s sysctl -qw net.ipv6.conf.all.accept_dad=0 "
		 "net.ipv6.conf.default.accept_dad=0",
		 ns) ||
	    step("forwarding on",
		 "ip netns exec %s sysctl -qw net.ipv4.ip_forward=1 "
		 "net.ipv6.conf.all.forwarding=1",
		 ns) ||
	    step("reverse-path filter off",
		 "ip netns exec %s sysctl -qw net.ipv4.conf.all.rp_filter=0 "
		 "net.ipv4.conf.default.rp_filter=0",
		 ns))
		return -EIO;
	return 0;
}

static int up_controller(const struct tb_topology *t)
{
	struct in_addr core4 = t->ctl_v4;
	struct in6_addr core6 = t->ctl_v6;
	char b1[64], b2[64];
	uint32_t mask = t->ctl_v4len ? 0xffffffffu << (32 - t->ctl_v4len) : 0;

	core4.s_addr = htonl((ntohl(t->ctl_v4.s_addr) & mask) | 1);
	for (unsigned int bit = t->ctl_v6len; bit < 128; bit++)
		core6.s6_addr[bit / 8] &= (unsigned char)~(0x80 >> (bit % 8));
	core6.s6_addr[15] |= 1;
	if (step("controller link", "ip -n %s link add ctl type veth peer name eth0 netns %s",
		 NS_CORE, NS_CTL) ||
	    step("controller link up", "ip -n %s link set ctl up", NS_CORE) ||
	    step("controller link up", "ip -n %s link set eth0 up", NS_CTL) ||
	    step("core address towards the controller", "ip -n %s addr add %s/%u dev ctl", NS_CORE,
		 a4(&core4, b1), t->ctl_v4len) ||
	    step("core address towards the controller", "ip -n %s addr add %s/%u dev ctl nodad",
		 NS_CORE, a6(&core6, b1), t->ctl_v6len) ||
	    step("controller address", "ip -n %s addr add %s/%u dev eth0", NS_CTL,
		 a4(&t->ctl_v4, b1), t->ctl_v4len) ||
	    step("controller address", "ip -n %s addr add %s/%u dev eth0 nodad", NS_CTL,
		 a6(&t->ctl_v6, b1), t->ctl_v6len) ||
	    step("controller default route", "ip -n %s route add default via %s", NS_CTL,
		 a4(&core4, b2)) ||
	    step("controller default route", "ip -n %s -6 route add default via %s", NS_CTL,
		 a6(&core6, b2)))
		return -EIO;
	return 0;
}

static int up_uplink(const struct tb_topology *t, unsigned int s, unsigned int u, unsigned int li)
{
	const struct tb_site *site = &t->sites[s];
	const struct tb_uplink *up = &site->uplinks[u];
	const char *isp = t->isps[up->isp].name;
	unsigned int i = up->isp, table = TABLE_BASE + up->isp;
	char ns[32], dev[24], what[96], c4[64], c6[64], n4[64], n6[64], b[64];
	struct in_addr core4, node4, bun4, pub4;
	struct in6_addr core6, node6, bun6;
	/* Always inside the core namespace: never touch the host's own tables. */
	const char *fams[2] = { "ip netns exec " NS_CORE " iptables",
				"ip netns exec " NS_CORE " ip6tables" };

	snprintf(ns, sizeof(ns), NS_PREFIX "%s", site->name);
	core_dev(t, s, i, dev, sizeof(dev));
	snprintf(what, sizeof(what), "uplink %s/%s", site->name, isp);
	tb_addr_v4(t, s, i, TB_HOST_CORE, 0, &core4);
	tb_addr_v6(t, s, i, TB_HOST_CORE, 0, &core6);
	a4(&core4, c4);
	a6(&core6, c6);
	if (step(what, "ip -n %s link add %s type veth peer name %s netns %s", NS_CORE, dev, isp,
		 ns) ||
	    step(what, "ip -n %s link set %s mtu %u up", NS_CORE, dev, up->mtu) ||
	    step(what, "ip -n %s link set %s mtu %u up", ns, isp, up->mtu) ||
	    step(what, "ip -n %s addr add %s/24 dev %s", NS_CORE, c4, dev) ||
	    step(what, "ip -n %s addr add %s/64 dev %s nodad", NS_CORE, c6, dev))
		return -EIO;
	for (unsigned int n = 0; n < site->n_nodes; n++) {
		snprintf(what, sizeof(what), "addresses of node %s on %s", site->nodes[n].name,
			 isp);
		tb_addr_v4(t, s, i, TB_HOST_NODE, n, &node4);
		tb_addr_v6(t, s, i, TB_HOST_NODE, n, &node6);
		tb_addr_v4(t, s, i, TB_HOST_BUNDLED, n, &bun4);
		tb_addr_v6(t, s, i, TB_HOST_BUNDLED, n, &bun6);
		a4(&node4, n4);
		a6(&node6, n6);
		if (step(what, "ip -n %s addr add %s/24 dev %s", ns, n4, isp) ||
		    step(what, "ip -n %s addr add %s/64 dev %s nodad", ns, n6, isp) ||
		    step(what, "ip -n %s rule add from %s table %u pref %u", ns, n4, table,
			 1000 + i) ||
		    step(what, "ip -n %s -6 rule add from %s table %u pref %u", ns, n6, table,
			 1000 + i) ||
		    step(what, "ip -n %s rule add from %s table %u pref %u", ns, a4(&bun4, b),
			 table, 1000 + i) ||
		    step(what, "ip -n %s -6 rule add from %s table %u pref %u", ns, a6(&bun6, b),
			 table, 1000 + i) ||
		    step(what, "ip -n %s route add %s dev %s", ns, a4(&bun4, b),
			 site->nodes[n].tun) ||
		    step(what, "ip -n %s -6 route add %s dev %s", ns, a6(&bun6, b),
			 site->nodes[n].tun))
			return -EIO;
		/* The bundled responder: its own addresses, TUN, rules, as the stack's. */
		tb_addr_v4(t, s, i, TB_HOST_BUNDLED_RESP, n, &bun4);
		tb_addr_v6(t, s, i, TB_HOST_BUNDLED_RESP, n, &bun6);
		if (step(what, "ip -n %s rule add from %s table %u pref %u", ns, a4(&bun4, b),
			 table, 1000 + i) ||
		    step(what, "ip -n %s -6 rule add from %s table %u pref %u", ns, a6(&bun6, b),
			 table, 1000 + i) ||
		    step(what, "ip -n %s route add %s dev %s", ns, a4(&bun4, b),
			 site->nodes[n].resp_tun) ||
		    step(what, "ip -n %s -6 route add %s dev %s", ns, a6(&bun6, b),
			 site->nodes[n].resp_tun))
			return -EIO;
	}
	/* The core reaches the bundled stacks through the site (node 0's address). */
	snprintf(what, sizeof(what), "routes of %s/%s", site->name, isp);
	tb_addr_v4(t, s, i, TB_HOST_NODE, 0, &node4);
	tb_addr_v6(t, s, i, TB_HOST_NODE, 0, &node6);
	tb_addr_v4(t, s, i, TB_HOST_BUNDLED, 0, &bun4);
	tb_addr_v6(t, s, i, TB_HOST_BUNDLED, 0, &bun6);
	bun6.s6_addr[15] = 0;
	if (step(what, "ip -n %s route add %s/25 via %s dev %s", NS_CORE, a4(&bun4, b),
		 a4(&node4, n4), dev) ||
	    step(what, "ip -n %s -6 route add %s/112 via %s dev %s", NS_CORE, a6(&bun6, b),
		 a6(&node6, n6), dev) ||
	    step(what, "ip -n %s route add default via %s dev %s table %u", ns, c4, isp, table) ||
	    step(what, "ip -n %s -6 route add default via %s dev %s table %u", ns, c6, isp, table))
		return -EIO;
	if (u == 0 && (step(what, "ip -n %s route add default via %s dev %s", ns, c4, isp) ||
		       step(what, "ip -n %s -6 route add default via %s dev %s", ns, c6, isp)))
		return -EIO;
	/* Every packet of the uplink passes the emulator, once each way. */
	snprintf(what, sizeof(what), "emulator hooks of %s/%s", site->name, isp);
	for (int f = 0; f < 2; f++)
		if (step(what, "%s -w -t mangle -A PREROUTING -i %s -j NFQUEUE --queue-num %u",
			 fams[f], dev, QUEUE_BASE + 2 * li) ||
		    step(what, "%s -w -t mangle -A POSTROUTING -o %s -j NFQUEUE --queue-num %u",
			 fams[f], dev, QUEUE_BASE + 2 * li + 1))
			return -EIO;
	snprintf(what, sizeof(what), "middlebox %s on %s/%s", tb_middlebox_name(up->middlebox),
		 site->name, isp);
	for (int f = 0; f < 2; f++) {
		for (int d = 0; d < 2; d++) {
			const char *flags = up->middlebox == TB_MB_STRIP_MPTCP_SYNACK
						    ? " --tcp-flags SYN,ACK SYN,ACK"
						    : "";

			if ((up->middlebox == TB_MB_STRIP_MPTCP ||
			     up->middlebox == TB_MB_STRIP_MPTCP_SYNACK) &&
			    step(what,
				 "%s -w -t mangle -A FORWARD %s %s -p tcp%s -j TCPOPTSTRIP "
				 "--strip-options 30",
				 fams[f], d ? "-o" : "-i", dev, flags))
				return -EIO;
		}
	}
	/*
	 * Sequence or payload rewriting: the emulator's middlebox queues, after
	 * the delay queue going up.
	 */
	for (int f = 0; f < 2 && (up->middlebox == TB_MB_REWRITE_SEQ ||
				  up->middlebox == TB_MB_REWRITE_PAYLOAD);
	     f++)
		if (step(what, "%s -w -t mangle -A FORWARD -i %s -p tcp -j NFQUEUE --queue-num %u",
			 fams[f], dev, QUEUE_BASE + 2 * tb_link_count(t) + 2 * li) ||
		    step(what, "%s -w -t mangle -A FORWARD -o %s -p tcp -j NFQUEUE --queue-num %u",
			 fams[f], dev, QUEUE_BASE + 2 * tb_link_count(t) + 2 * li + 1))
			return -EIO;
	if (up->middlebox == TB_MB_NAT) {
		tb_addr_v4(t, s, i, TB_HOST_PUBLIC, 0, &pub4);
		tb_addr_v4(t, s, i, TB_HOST_CORE, 0, &core4);
		if (step(what,
			 "ip netns exec %s iptables -w -t nat -A POSTROUTING -s %s/24 ! -o %s -j SNAT "
			 "--to-source %s",
			 NS_CORE, a4(&core4, b), dev, a4(&pub4, n4)))
			return -EIO;
	}
	return 0;
}

static int start_emulator(const char *self_dir)
{
	char exe[PATH_MAX + 32], topo[PATH_MAX], sock[PATH_MAX], logp[PATH_MAX], pidp[PATH_MAX];
	char qb[16], line[128] = "";
	int pipefd[2], nsfd, logfd;
	struct pollfd pfd;
	size_t off = 0;
	pid_t pid;

	snprintf(exe, sizeof(exe), "%.4000s/fjord-linkemu", self_dir);
	path_in_run(topo, sizeof(topo), "topology.cfg");
	path_in_run(sock, sizeof(sock), "linkemu.sock");
	path_in_run(logp, sizeof(logp), "linkemu.log");
	path_in_run(pidp, sizeof(pidp), "linkemu.pid");
	snprintf(qb, sizeof(qb), "%d", QUEUE_BASE);
	if (access(exe, X_OK)) {
		fprintf(stderr, "fjord-testbed: step \"start the link emulator\" failed: %s: %s\n",
			exe, strerror(errno));
		return -ENOENT;
	}
	nsfd = open("/run/netns/" NS_CORE, O_RDONLY | O_CLOEXEC);
	logfd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (nsfd < 0 || logfd < 0 || pipe2(pipefd, O_CLOEXEC) < 0) {
		fprintf(stderr, "fjord-testbed: step \"start the link emulator\" failed: %s\n",
			strerror(errno));
		return -EIO;
	}
	/* Fork twice so the emulator belongs to init, not to whoever ran "up". */
	pid = fork();
	if (pid == 0) {
		char *argv[] = { exe,  "--topology",   topo, "--control",
				 sock, "--queue-base", qb,   NULL };
		int nul;

		setsid();
		if (fork() != 0)
			_exit(0);
		if (setns(nsfd, CLONE_NEWNET) < 0) {
			dprintf(logfd, "setns %s: %s\n", NS_CORE, strerror(errno));
			_exit(1);
		}
		dup2(pipefd[1], 1);
		dup2(logfd, 2);
		nul = open("/dev/null", O_RDONLY);
		if (nul >= 0)
			dup2(nul, 0);
		execv(exe, argv);
		dprintf(2, "exec %s: %s\n", exe, strerror(errno));
		_exit(1);
	}
	close(pipefd[1]);
	close(nsfd);
	close(logfd);
	if (pid < 0) {
		fprintf(stderr,
			"fjord-testbed: step \"start the link emulator\" failed: fork: %s\n",
			strerror(errno));
		return -EIO;
	}
	waitpid(pid, NULL, 0);
	pfd.fd = pipefd[0];
	pfd.events = POLLIN;
	while (off < sizeof(line) - 1 && !strchr(line, '\n')) {
		ssize_t n;

		if (poll(&pfd, 1, 5000) <= 0)
			break;
		n = read(pipefd[0], line + off, sizeof(line) - 1 - off);
		if (n <= 0)
			break;
		off += (size_t)n;
		line[off] = 0;
	}
	close(pipefd[0]);
	if (strncmp(line, "ready pid=", 10)) {
		char msg[512] = "";
		FILE *f = fopen(logp, "r");

		if (f) {
			size_t n = fread(msg, 1, sizeof(msg) - 1, f);

			msg[n] = 0;
			msg[strcspn(msg, "\n")] = 0;
			fclose(f);
		}
		fprintf(stderr, "fjord-testbed: step \"start the link emulator\" failed: %s\n",
			*msg ? msg : "it did not report ready within 5 s");
		return -EIO;
	}
	{
		FILE *f = fopen(pidp, "w");

		if (!f || fprintf(f, "%ld\n", strtol(line + 10, NULL, 10)) < 0 || fclose(f)) {
			fprintf(stderr,
				"fjord-testbed: step \"record the emulator's pid\" failed: %s: %s\n",
				pidp, strerror(errno));
			return -EIO;
		}
	}
	return 0;
}

static int self_dir(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);
	char *slash;

	if (n <= 0)
		return -errno;
	buf[n] = 0;
	slash = strrchr(buf, '/');
	if (slash)
		*slash = 0;
	return 0;
}

static bool is_healthy(const struct tb_topology *t)
{
	char ns[32];

	if (!state_has("complete") || emu_pid() <= 0 || !proc_alive(emu_pid()) ||
	    !ns_exists(NS_CORE) || !ns_exists(NS_CTL))
		return false;
	for (unsigned int s = 0; s < t->n_sites; s++) {
		snprintf(ns, sizeof(ns), NS_PREFIX "%s", t->sites[s].name);
		if (!ns_exists(ns))
			return false;
	}
	return true;
}

static int cmd_up(const char *file)
{
	static struct tb_topology t;
	char err[TB_ERR_MAX], p[PATH_MAX], dir[PATH_MAX], ns[32];
	unsigned int li = 0;
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (tb_config_load_file(file, &t, err, sizeof(err))) {
		fprintf(stderr, "fjord-testbed: up: %s\n", err);
		return 1;
	}
	if (self_dir(dir, sizeof(dir))) {
		fprintf(stderr, "fjord-testbed: up: cannot find my own directory\n");
		return 1;
	}
	path_in_run(p, sizeof(p), "topology.cfg");
	if (access(p, F_OK) == 0 && same_file(p, file) && is_healthy(&t)) {
		printf("fjord-testbed: %s is already up\n", t.name);
		return 0;
	}
	path_in_run(err, sizeof(err), "state");
	if (access(p, F_OK) == 0 || access(err, F_OK) == 0) {
		/* A different, crashed or half-built testbed: clear it first. */
		fprintf(stderr, "fjord-testbed: up: removing the previous testbed first\n");
		if (cmd_down())
			return 1;
	}
	if (mkdir(run_dir, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "fjord-testbed: step \"create %s\" failed: %s\n", run_dir,
			strerror(errno));
		return 1;
	}
	if (copy_file(file, p, err, sizeof(err))) {
		fprintf(stderr, "fjord-testbed: step \"keep a copy of the topology\" failed: %s\n",
			err);
		return 1;
	}
	if (make_ns(NS_CORE) || make_ns(NS_CTL))
		goto fail;
	for (unsigned int s = 0; s < t.n_sites; s++) {
		snprintf(ns, sizeof(ns), NS_PREFIX "%s", t.sites[s].name);
		if (make_ns(ns))
			goto fail;
		for (unsigned int n = 0; n < t.sites[s].n_nodes; n++) {
			const char *tun = t.sites[s].nodes[n].tun;

			const char *rtun = t.sites[s].nodes[n].resp_tun;

			if (step("TUN device of the bundled stack",
				 "ip -n %s tuntap add dev %s mode tun", ns, tun) ||
			    step("TUN device of the bundled stack", "ip -n %s link set %s up", ns,
				 tun) ||
			    step("TUN device of the bundled responder",
				 "ip -n %s tuntap add dev %s mode tun", ns, rtun) ||
			    step("TUN device of the bundled responder", "ip -n %s link set %s up",
				 ns, rtun))
				goto fail;
		}
	}
	if (up_controller(&t))
		goto fail;
	for (unsigned int s = 0; s < t.n_sites; s++)
		for (unsigned int u = 0; u < t.sites[s].n_uplinks; u++)
			if (up_uplink(&t, s, u, li++))
				goto fail;
	if (start_emulator(dir))
		goto fail;
	if (state_append("complete"))
		goto fail;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("fjord-testbed: %s is up: %u sites, %u uplinks, controller %s in namespace %s "
	       "(%.1f s)\n",
	       t.name, t.n_sites, li, inet_ntop(AF_INET, &t.ctl_v4, err, sizeof(err)), NS_CTL,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
fail:
	fprintf(stderr,
		"fjord-testbed: up failed; run \"fjord-testbed down\" to remove what was "
		"made (the state is in %s)\n",
		run_dir);
	return 1;
}

/* ---- status and set: talk to the emulator ---- */

static int emu_request(const char *req, char *out, size_t outlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { 3, 0 };
	ssize_t n;
	int fd;

	path_in_run(sa.sun_path, sizeof(sa.sun_path), "linkemu.sock");
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    send(fd, req, strlen(req), 0) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	n = recv(fd, out, outlen - 1, 0);
	close(fd);
	if (n < 0)
		return -errno;
	out[n] = 0;
	return 0;
}

static int load_running(struct tb_topology *t)
{
	char p[PATH_MAX], err[TB_ERR_MAX];

	path_in_run(p, sizeof(p), "topology.cfg");
	if (access(p, F_OK)) {
		fprintf(stderr, "fjord-testbed: no testbed is up (no %s)\n", p);
		return -ENOENT;
	}
	if (tb_config_load_file(p, t, err, sizeof(err))) {
		fprintf(stderr, "fjord-testbed: %s\n", err);
		return -EINVAL;
	}
	return 0;
}

static int cmd_status(void)
{
	static struct tb_topology t;
	static char out[1 << 19]; /* as the emulator's CTL_MSG_MAX */
	char ns[32], b4[64], b6[64], bb4[64], bb6[64];
	int r;

	if (load_running(&t))
		return 1;
	printf("testbed %s: %s\n", t.name,
	       state_has("complete") ? "up" : "INCOMPLETE (run down, then up)");
	printf("controller: namespace %s %s %s %s\n", NS_CTL, ns_exists(NS_CTL) ? "" : "(MISSING)",
	       inet_ntop(AF_INET, &t.ctl_v4, b4, sizeof(b4)),
	       inet_ntop(AF_INET6, &t.ctl_v6, b6, sizeof(b6)));
	for (unsigned int s = 0; s < t.n_sites; s++) {
		const struct tb_site *site = &t.sites[s];

		snprintf(ns, sizeof(ns), NS_PREFIX "%s", site->name);
		printf("site %s: namespace %s%s\n", site->name, ns,
		       ns_exists(ns) ? "" : " (MISSING)");
		for (unsigned int u = 0; u < site->n_uplinks; u++) {
			unsigned int i = site->uplinks[u].isp;

			for (unsigned int n = 0; n < site->n_nodes; n++) {
				struct in_addr x4, y4;
				struct in6_addr x6, y6;

				tb_addr_v4(&t, s, i, TB_HOST_NODE, n, &x4);
				tb_addr_v6(&t, s, i, TB_HOST_NODE, n, &x6);
				tb_addr_v4(&t, s, i, TB_HOST_BUNDLED, n, &y4);
				tb_addr_v6(&t, s, i, TB_HOST_BUNDLED, n, &y6);
				printf("  node %s on %s (dev %s, mtu %u, middlebox %s): kernel %s %s"
				       "  bundled %s %s via %s",
				       site->nodes[n].name, t.isps[i].name, t.isps[i].name,
				       site->uplinks[u].mtu,
				       tb_middlebox_name(site->uplinks[u].middlebox), a4(&x4, b4),
				       a6(&x6, b6), a4(&y4, bb4), a6(&y6, bb6), site->nodes[n].tun);
				tb_addr_v4(&t, s, i, TB_HOST_BUNDLED_RESP, n, &y4);
				tb_addr_v6(&t, s, i, TB_HOST_BUNDLED_RESP, n, &y6);
				printf("  responder %s %s via %s\n", a4(&y4, bb4), a6(&y6, bb6),
				       site->nodes[n].resp_tun);
			}
		}
	}
	r = emu_request("status", out, sizeof(out));
	if (r) {
		printf("link emulator: NOT RUNNING (%s)\n", strerror(-r));
		return 1;
	}
	fputs(out, stdout);
	return 0;
}

static int cmd_set(int argc, char **argv)
{
	static struct tb_topology t;
	char req[1024], out[1024];
	size_t off;
	int r;

	if (argc < 2) {
		fprintf(stderr, "usage: fjord-testbed set SITE/ISP key=value ... | down | up\n"
				"(key_up=value or key_down=value for one direction)\n");
		return 2;
	}
	if (load_running(&t))
		return 1;
	if (tb_link_find(&t, argv[0]) < 0) {
		fprintf(stderr, "fjord-testbed: set: no link \"%s\"; links are SITE/ISP:", argv[0]);
		for (unsigned int s = 0; s < t.n_sites; s++)
			for (unsigned int u = 0; u < t.sites[s].n_uplinks; u++)
				fprintf(stderr, " %s/%s", t.sites[s].name,
					t.isps[t.sites[s].uplinks[u].isp].name);
		fprintf(stderr, "\n");
		return 1;
	}
	off = (size_t)snprintf(req, sizeof(req), "set");
	for (int i = 0; i < argc && off < sizeof(req); i++)
		off += (size_t)snprintf(req + off, sizeof(req) - off, " %s", argv[i]);
	if (off >= sizeof(req)) {
		fprintf(stderr, "fjord-testbed: set: too many settings\n");
		return 2;
	}
	r = emu_request(req, out, sizeof(out));
	if (r) {
		fprintf(stderr, "fjord-testbed: set: the link emulator does not answer: %s\n",
			strerror(-r));
		return 1;
	}
	if (strncmp(out, "ok", 2)) {
		fprintf(stderr, "fjord-testbed: set: %s\n", out);
		return 1;
	}
	printf("%s\n", out);
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: fjord-testbed [-v] [--run-dir DIR] up FILE | down | status |\n"
		"       set SITE/ISP key=value ... (rate, delay, jitter, buffer, loss, loss_model,\n"
		"       ge_p, ge_r, ge_loss_bad, ge_loss_good, reorder; with _up or _down for\n"
		"       one direction) or down or up\n");
}

int main(int argc, char **argv)
{
	int i = 1;

	while (i < argc && argv[i][0] == '-') {
		if (!strcmp(argv[i], "-v")) {
			verbose = true;
			i++;
		} else if (!strcmp(argv[i], "--run-dir") && i + 1 < argc) {
			if (strlen(argv[i + 1]) >= sizeof(run_dir) || argv[i + 1][0] != '/') {
				fprintf(stderr,
					"fjord-testbed: --run-dir: an absolute path of at "
					"most %zu characters\n",
					sizeof(run_dir) - 1);
				return 2;
			}
			snprintf(run_dir, sizeof(run_dir), "%s", argv[i + 1]);
			i += 2;
		} else {
			usage();
			return 2;
		}
	}
	if (i >= argc) {
		usage();
		return 2;
	}
	if (geteuid() != 0 && strcmp(argv[i], "status")) {
		fprintf(stderr, "fjord-testbed: %s needs root (network namespaces)\n", argv[i]);
		return 1;
	}
	if ((!strcmp(argv[i], "up") && argc == i + 2) ||
	    (!strcmp(argv[i], "down") && argc == i + 1)) {
		char lock[sizeof(run_dir) + 8];
		int fd;

		/* One up or down at a time; the lock lives beside the state directory. */
		snprintf(lock, sizeof(lock), "%s.lock", run_dir);
		fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0 || flock(fd, LOCK_EX) < 0) {
			fprintf(stderr, "fjord-testbed: step \"lock %s\" failed: %s\n", lock,
				strerror(errno));
			return 1;
		}
		if (argv[i][0] == 'u') {
			int r = cmd_up(argv[i + 1]);

			/* A refused topology made nothing: leave no lock file either. */
			if (access(run_dir, F_OK))
				unlink(lock);
			return r;
		}
		/* Down leaves no trace, the lock file included (still held here). */
		if (cmd_down())
			return 1;
		unlink(lock);
		return 0;
	}
	if (!strcmp(argv[i], "status") && argc == i + 1)
		return cmd_status();
	if (!strcmp(argv[i], "set"))
		return cmd_set(argc - i - 1, argv + i + 1);
	usage();
	return 2;
}
