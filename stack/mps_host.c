/*
 * Host link adapter (see mps_host.h): raw sockets out, AF_PACKET sockets in,
 * an nftables table that keeps the kernel's RSTs off the stack's ports, and
 * kernel sockets that hold the listening ports.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mps_host.h"
#include "prot/ip4.h"
#include "prot/ip6.h"
#include "prot/tcp.h"

#define HOST_RX_BUDGET 64	 /* packets looked at per recv call, ours or not */
#define HOST_SNDBUF    (4 << 20) /* raw send sockets: room for bursts of a full window */
#define HOST_RCVBUF    (8 << 20) /* packet sockets: room for a window while we are busy */
#define HOST_NFT_OUT   2048	 /* nft's output we keep (messages, table lists) */
#define HOST_SCRIPT    4096	 /* longest ruleset: 9 IPv6 addresses and 9 ports fit */
#define HOST_RESV      (MPS_HOST_MAX_ADDRS * (MPS_HOST_MAX_PORTS + 1))
#define HOST_PREFIX    "fjmps_"	       /* our tables: fjmps_PID_N */
#define HOST_NFT_PATH  "/usr/sbin/nft" /* Debian's; else nft from PATH */

struct mps_host {
	struct mps_host_config cfg;
	int tx4, tx6; /* raw, whole IP packets out; -1 if no address of the family */
	int rx4, rx6; /* AF_PACKET, ETH_P_IP and ETH_P_IPV6 in */
	int ep;	      /* epoll set of rx4 and rx6, for the caller's poll */
	int resv[HOST_RESV];
	unsigned int nresv;
	unsigned int turn;     /* which packet socket recv reads first, for fairness */
	unsigned int rx_flags; /* MPS_IN_* of the packet recv returned last */
	bool rules;	       /* the table is installed */
	char table[32];
	struct mps_host_stats stats;
};

static void say(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (!why || !whylen)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

static size_t alen(uint8_t family)
{
	return family == 4 ? 4 : 16;
}

static const char *addr_str(const struct mps_addr *a, char *buf, size_t cap)
{
	if (!inet_ntop(a->family == 4 ? AF_INET : AF_INET6, a->addr, buf, (socklen_t)cap))
		snprintf(buf, cap, "?");
	return buf;
}

static bool addr_bad(const struct mps_addr *a)
{
	static const uint8_t zero[16];

	if (a->family != 4 && a->family != 6)
		return true;
	if (!memcmp(a->addr, zero, alen(a->family)))
		return true;
	return a->family == 4 ? (a->addr[0] & 0xf0) == 0xe0 : a->addr[0] == 0xff;
}

int mps_host_config_check(const struct mps_host_config *cfg, char *why, size_t whylen)
{
	char s[INET6_ADDRSTRLEN];
	unsigned int i, k;

	say(why, whylen, "ok");
	if (!cfg || cfg->naddrs < 1 || cfg->naddrs > MPS_HOST_MAX_ADDRS) {
		say(why, whylen, "1 to %d local addresses", MPS_HOST_MAX_ADDRS);
		return -EINVAL;
	}
	for (i = 0; i < cfg->naddrs; i++) {
		if (addr_bad(&cfg->addrs[i])) {
			say(why, whylen, "address %u (%s) is not a unicast IPv4 or IPv6 address", i,
			    cfg->addrs[i].family == 4 || cfg->addrs[i].family == 6
				    ? addr_str(&cfg->addrs[i], s, sizeof(s))
				    : "bad family");
			return -EINVAL;
		}
	}
	if (cfg->nports > MPS_HOST_MAX_PORTS) {
		say(why, whylen, "at most %d listening ports", MPS_HOST_MAX_PORTS);
		return -EINVAL;
	}
	for (i = 0; i < cfg->nports; i++) {
		for (k = 0; k < i; k++)
			if (cfg->ports[k] == cfg->ports[i])
				break;
		if (!cfg->ports[i] || k < i) {
			say(why, whylen, "listening port %u: %s", cfg->ports[i],
			    cfg->ports[i] ? "given twice" : "0 is no port");
			return -EINVAL;
		}
	}
	if (!cfg->nports && !cfg->ephemeral) {
		say(why, whylen, "no ports: neither a listening port nor ephemeral ones");
		return -EINVAL;
	}
	return 0;
}

static bool port_ours(const struct mps_host_config *cfg, uint16_t port)
{
	unsigned int i;

	if (cfg->ephemeral && port >= MPS_HOST_PORT_MIN)
		return true;
	for (i = 0; i < cfg->nports; i++)
		if (cfg->ports[i] == port)
			return true;
	return false;
}

static bool addr_ours(const struct mps_host_config *cfg, uint8_t family, const uint8_t *a)
{
	unsigned int i;

	for (i = 0; i < cfg->naddrs; i++)
		if (cfg->addrs[i].family == family && !memcmp(cfg->addrs[i].addr, a, alen(family)))
			return true;
	return false;
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

int mps_host_match(const struct mps_host_config *cfg, const uint8_t *pkt, size_t len, size_t *iplen)
{
	size_t ihl, tot;
	uint8_t family;

	if (len < 1)
		return -EBADMSG;
	family = pkt[0] >> 4;
	if (family == 4) {
		if (len < MPS_IP4_HLEN_MIN)
			return -EBADMSG;
		ihl = (size_t)(pkt[0] & 0x0f) * 4;
		tot = be16(pkt + MPS_IP4_OFF_LEN);
		if (ihl < MPS_IP4_HLEN_MIN || tot < ihl || tot > len)
			return -EBADMSG;
		if (pkt[MPS_IP4_OFF_PROTO] != MPS_IPPROTO_TCP ||
		    (be16(pkt + MPS_IP4_OFF_FRAG) & (MPS_IP4_FRAG_MF | MPS_IP4_FRAG_MASK)))
			return 0;
		if (!addr_ours(cfg, 4, pkt + MPS_IP4_OFF_DST))
			return 0;
	} else if (family == 6) {
		if (len < MPS_IP6_HLEN)
			return -EBADMSG;
		ihl = MPS_IP6_HLEN;
		tot = ihl + be16(pkt + MPS_IP6_OFF_PLEN);
		if (tot > len)
			return -EBADMSG;
		/* Extension headers: none on the stack's segments, so not ours. */
		if (pkt[MPS_IP6_OFF_NXT] != MPS_IPPROTO_TCP ||
		    !addr_ours(cfg, 6, pkt + MPS_IP6_OFF_DST))
			return 0;
	} else {
		return -EBADMSG;
	}
	if (tot < ihl + MPS_TCP_HLEN_MIN)
		return -EBADMSG;
	if (!port_ours(cfg, be16(pkt + ihl + MPS_TCP_OFF_DPORT)))
		return 0;
	*iplen = tot;
	return 1;
}

unsigned int mps_host_csum_flags(enum mps_host_csum how)
{
	return how == MPS_HOST_CSUM_NONE ? 0 : MPS_IN_CSUM_OK | MPS_IN_CSUM_STALE;
}

/* Appends to a bounded buffer; the first overflow sticks. */
struct text {
	char *buf;
	size_t cap, len;
	bool full;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= t->cap - t->len) {
		t->full = true;
		t->buf[t->len] = 0;
		return;
	}
	t->len += (size_t)n;
}

static bool table_name_ok(const char *table)
{
	size_t i, n = table ? strlen(table) : 0;

	if (n == 0 || n >= 32)
		return false;
	for (i = 0; i < n; i++)
		if (!(table[i] == '_' || (table[i] >= 'a' && table[i] <= 'z') ||
		      (table[i] >= '0' && table[i] <= '9')))
			return false;
	return true;
}

/*
 * One drop rule for the addresses of family, if cfg has any: out, the
 * kernel's RSTs from them (anything without our mark); in, every segment
 * to them, which the packet sockets have already seen.
 */
static void rule_for(struct text *t, const struct mps_host_config *cfg, uint8_t family, bool out)
{
	char s[INET6_ADDRSTRLEN];
	unsigned int i, n = 0;

	for (i = 0; i < cfg->naddrs; i++) {
		if (cfg->addrs[i].family != family)
			continue;
		if (n++)
			put(t, ", ");
		else if (out)
			put(t, "\t\tmeta mark != 0x%08x %s saddr { ",
			    cfg->mark ? cfg->mark : MPS_HOST_MARK, family == 4 ? "ip" : "ip6");
		else
			put(t, "\t\t%s daddr { ", family == 4 ? "ip" : "ip6");
		put(t, "%s", addr_str(&cfg->addrs[i], s, sizeof(s)));
	}
	if (!n)
		return;
	put(t, " } tcp %s { ", out ? "sport" : "dport");
	for (i = 0; i < cfg->nports; i++)
		put(t, "%s%u", i ? ", " : "", cfg->ports[i]);
	if (cfg->ephemeral)
		put(t, "%s%d-%d", cfg->nports ? ", " : "", MPS_HOST_PORT_MIN, MPS_HOST_PORT_MAX);
	put(t, " } %scounter drop\n", out ? "tcp flags & rst == rst " : "");
}

int mps_host_ruleset(const struct mps_host_config *cfg, const char *table, char *buf, size_t cap)
{
	struct text t = { buf, cap, 0, false };

	if (!buf || !cap)
		return -ENOSPC;
	buf[0] = 0;
	if (mps_host_config_check(cfg, NULL, 0) || !table_name_ok(table))
		return -EINVAL;
	/*
	 * In: before conntrack and routing (raw priority), so the kernel spends
	 * nothing on segments that are not its own and has no reason to answer.
	 */
	put(&t, "table inet %s {\n\tchain in {\n", table);
	put(&t, "\t\ttype filter hook prerouting priority -300; policy accept;\n");
	rule_for(&t, cfg, 4, false);
	rule_for(&t, cfg, 6, false);
	/* Out: should any segment reach the kernel's TCP all the same, its RST stays here. */
	put(&t, "\t}\n\tchain out {\n");
	put(&t, "\t\ttype filter hook output priority 0; policy accept;\n");
	rule_for(&t, cfg, 4, true);
	rule_for(&t, cfg, 6, true);
	put(&t, "\t}\n}\n");
	return t.full ? -ENOSPC : (int)t.len;
}

/*
 * Classic BPF, emitted with symbolic jump targets resolved at the end. A
 * target is an instruction index or one of these labels.
 */
enum { L_NEXT = -1, L_PORTS = -2, L_DROP = -3, L_ACCEPT = -4 };

struct bpf_prog {
	struct sock_filter *p;
	int jt[MPS_HOST_BPF_MAX], jf[MPS_HOST_BPF_MAX];
	size_t n, cap;
	bool full;
};

static void emit(struct bpf_prog *b, uint16_t code, uint32_t k, int jt, int jf)
{
	if (b->n >= b->cap || b->n >= MPS_HOST_BPF_MAX) {
		b->full = true;
		return;
	}
	b->p[b->n] = (struct sock_filter){ code, 0, 0, k };
	b->jt[b->n] = jt;
	b->jf[b->n] = jf;
	b->n++;
}

static uint32_t word(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Compare the destination address with each of family's; on a match go to L_PORTS. */
static void bpf_addrs(struct bpf_prog *b, const struct mps_host_config *cfg, uint8_t family)
{
	unsigned int i, w, nw = family == 4 ? 1 : 4;
	uint32_t off = family == 4 ? MPS_IP4_OFF_DST : MPS_IP6_OFF_DST;
	size_t start;

	for (i = 0; i < cfg->naddrs; i++) {
		if (cfg->addrs[i].family != family)
			continue;
		start = b->n;
		for (w = 0; w < nw; w++) {
			emit(b, BPF_LD | BPF_W | BPF_ABS, off + 4 * w, L_NEXT, 0);
			/* jf: past this address's block, patched below. */
			emit(b, BPF_JMP | BPF_JEQ | BPF_K, word(cfg->addrs[i].addr + 4 * w),
			     w + 1 == nw ? L_PORTS : L_NEXT, (int)(start + 2 * nw));
		}
	}
	emit(b, BPF_RET | BPF_K, 0, 0, 0);
}

static int bpf_resolve(struct bpf_prog *b, size_t ports, size_t drop, size_t accept)
{
	size_t i;
	int *j[2], k, to;

	for (i = 0; i < b->n; i++) {
		if (BPF_CLASS(b->p[i].code) != BPF_JMP)
			continue;
		j[0] = &b->jt[i];
		j[1] = &b->jf[i];
		for (k = 0; k < 2; k++) {
			to = *j[k] == L_NEXT	 ? (int)i + 1
			     : *j[k] == L_PORTS	 ? (int)ports
			     : *j[k] == L_DROP	 ? (int)drop
			     : *j[k] == L_ACCEPT ? (int)accept
						 : *j[k];
			if (to <= (int)i || to - (int)i - 1 > 255)
				return -ENOSPC;
			*(k ? &b->p[i].jf : &b->p[i].jt) = (uint8_t)(to - (int)i - 1);
		}
	}
	return 0;
}

int mps_host_bpf(const struct mps_host_config *cfg, int family, struct sock_filter *prog,
		 size_t cap)
{
	struct bpf_prog b = { .p = prog, .cap = cap };
	size_t ports, drop;
	unsigned int i;
	int rc;

	if ((family != 4 && family != 6) || mps_host_config_check(cfg, NULL, 0))
		return -EINVAL;
	emit(&b, BPF_LD | BPF_B | BPF_ABS, 0, 0, 0);
	emit(&b, BPF_ALU | BPF_AND | BPF_K, 0xf0, 0, 0);
	emit(&b, BPF_JMP | BPF_JEQ | BPF_K, family == 4 ? 0x40 : 0x60, L_NEXT, L_DROP);
	emit(&b, BPF_LD | BPF_B | BPF_ABS, family == 4 ? MPS_IP4_OFF_PROTO : MPS_IP6_OFF_NXT, 0, 0);
	emit(&b, BPF_JMP | BPF_JEQ | BPF_K, MPS_IPPROTO_TCP, L_NEXT, L_DROP);
	if (family == 4) {
		emit(&b, BPF_LD | BPF_H | BPF_ABS, MPS_IP4_OFF_FRAG, 0, 0);
		emit(&b, BPF_JMP | BPF_JSET | BPF_K, MPS_IP4_FRAG_MF | MPS_IP4_FRAG_MASK, L_DROP,
		     L_NEXT);
	}
	bpf_addrs(&b, cfg, (uint8_t)family);
	ports = b.n;
	if (family == 4) {
		emit(&b, BPF_LDX | BPF_B | BPF_MSH, 0, 0, 0);
		emit(&b, BPF_LD | BPF_H | BPF_IND, MPS_TCP_OFF_DPORT, 0, 0);
	} else {
		emit(&b, BPF_LD | BPF_H | BPF_ABS, MPS_IP6_HLEN + MPS_TCP_OFF_DPORT, 0, 0);
	}
	for (i = 0; i < cfg->nports; i++)
		emit(&b, BPF_JMP | BPF_JEQ | BPF_K, cfg->ports[i], L_ACCEPT, L_NEXT);
	if (cfg->ephemeral)
		emit(&b, BPF_JMP | BPF_JGE | BPF_K, MPS_HOST_PORT_MIN, L_ACCEPT, L_NEXT);
	drop = b.n;
	emit(&b, BPF_RET | BPF_K, 0, 0, 0);
	emit(&b, BPF_RET | BPF_K, 0x40000, 0, 0); /* the whole packet */
	if (b.full)
		return -ENOSPC;
	rc = bpf_resolve(&b, ports, drop, drop + 1);
	return rc ? rc : (int)b.n;
}

/* "A-B" or "A" at *s; advances *s. */
static int parse_span(const char **s, unsigned long *lo, unsigned long *hi)
{
	char *end;

	errno = 0;
	*lo = strtoul(*s, &end, 10);
	if (errno || end == *s || *lo > 65535)
		return -EINVAL;
	*hi = *lo;
	if (*end == '-') {
		*s = end + 1;
		*hi = strtoul(*s, &end, 10);
		if (errno || end == *s || *hi > 65535 || *hi < *lo)
			return -EINVAL;
	}
	*s = end;
	return 0;
}

/* Whether port appears in the reserved list; -EINVAL if the list does not parse. */
static int port_reserved(const char *reserved, unsigned long port)
{
	const char *s = reserved;
	unsigned long lo, hi;
	int hit = 0;

	while (*s == ' ' || *s == '\n')
		s++;
	while (*s && *s != '\n') {
		if (parse_span(&s, &lo, &hi))
			return -EINVAL;
		if (port >= lo && port <= hi)
			hit = 1;
		if (*s == ',')
			s++;
		else if (*s && *s != '\n')
			return -EINVAL;
	}
	return hit;
}

int mps_host_ports_check(const char *range, const char *reserved, char *why, size_t whylen)
{
	unsigned long lo, hi, p;
	char *mid, *end;
	int r;

	errno = 0;
	lo = strtoul(range, &mid, 10);
	hi = strtoul(mid, &end, 10);
	if (errno || mid == range || end == mid || lo > hi || hi > 65535) {
		say(why, whylen, "ip_local_port_range \"%s\" does not parse", range);
		return -EINVAL;
	}
	if (port_reserved(reserved, 0) < 0) {
		say(why, whylen, "ip_local_reserved_ports \"%s\" does not parse", reserved);
		return -EINVAL;
	}
	for (p = lo > MPS_HOST_PORT_MIN ? lo : MPS_HOST_PORT_MIN; p <= hi; p++) {
		r = port_reserved(reserved, p);
		if (r == 0) {
			say(why, whylen,
			    "the kernel may hand out port %lu itself (net.ipv4.ip_local_port_range "
			    "%lu-%lu overlaps the stack's %d-%d; set it to \"%lu %d\" or reserve "
			    "the overlap in net.ipv4.ip_local_reserved_ports)",
			    p, lo, hi, MPS_HOST_PORT_MIN, MPS_HOST_PORT_MAX, lo,
			    MPS_HOST_PORT_MIN - 1);
			return -EADDRINUSE;
		}
	}
	return 0;
}

/*
 * Run nft with script on its standard input (NULL: args only); its output
 * (stdout and stderr) goes to out, cut to outcap. Returns 0 if it exited 0,
 * -ENOENT if there is no nft, -EIO otherwise.
 */
static int run_nft(const char *const *args, const char *script, char *out, size_t outcap)
{
	const char *path = access(HOST_NFT_PATH, X_OK) == 0 ? HOST_NFT_PATH : "nft";
	posix_spawn_file_actions_t fa;
	int in[2], o[2], st = 0, rc;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	out[0] = 0;
	/* A socket for stdin: if nft dies early, send() fails instead of raising SIGPIPE. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) < 0)
		return -errno;
	if (pipe2(o, O_CLOEXEC) < 0) {
		rc = -errno;
		close(in[0]);
		close(in[1]);
		return rc;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, o[1], 1);
	posix_spawn_file_actions_adddup2(&fa, o[1], 2);
	rc = posix_spawnp(&pid, path, &fa, NULL, (char *const *)args, NULL);
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);
	close(o[1]);
	if (rc == 0 && script)
		(void)!send(in[1], script, strlen(script), MSG_NOSIGNAL);
	close(in[1]);
	while (rc == 0 && (n = read(o[0], out + got, outcap - 1 - got)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (got += (size_t)n) == outcap - 1)
			break;
	}
	out[got] = 0;
	close(o[0]);
	if (rc)
		return rc == ENOENT ? -ENOENT : -rc;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
		return -ENOENT;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

/* Delete the tables of adapters whose process is gone (SIGKILL leaves them behind). */
static void delete_stale_tables(void)
{
	static const char *const list[] = { "nft", "list", "tables", "inet", NULL };
	static const char *const apply[] = { "nft", "-f", "-", NULL };
	char out[HOST_NFT_OUT], script[HOST_NFT_OUT], name[32], *line, *save = NULL;
	struct text t = { script, sizeof(script), 0, false };
	unsigned int seq;
	int pid;

	if (run_nft(list, NULL, out, sizeof(out)))
		return;
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (sscanf(line, "table inet " HOST_PREFIX "%d_%u", &pid, &seq) != 2 || pid <= 0)
			continue;
		if (kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(name, sizeof(name), HOST_PREFIX "%d_%u", pid, seq);
		put(&t, "delete table inet %s\n", name);
	}
	if (t.len && !t.full)
		run_nft(apply, script, out, sizeof(out));
}

/* The first line of nft's message, for why. */
static const char *first_line(char *s)
{
	s[strcspn(s, "\n")] = 0;
	return s;
}

static int install_rules(struct mps_host *h, char *why, size_t whylen)
{
	static const char *const apply[] = { "nft", "-f", "-", NULL };
	static unsigned int seq;
	char script[HOST_SCRIPT], out[HOST_NFT_OUT];
	int rc;

	delete_stale_tables();
	snprintf(h->table, sizeof(h->table), HOST_PREFIX "%d_%u", (int)getpid(), seq++);
	rc = mps_host_ruleset(&h->cfg, h->table, script, sizeof(script));
	if (rc < 0) {
		say(why, whylen, "cannot write the nftables rules: %s", strerror(-rc));
		return rc;
	}
	rc = run_nft(apply, script, out, sizeof(out));
	if (rc == -ENOENT)
		say(why, whylen, "the nft program is missing (Debian package nftables)");
	else if (rc)
		say(why, whylen, "nft refused the RST rules: %s", first_line(out));
	if (!rc)
		h->rules = true;
	return rc;
}

static int remove_rules(struct mps_host *h)
{
	static const char *const apply[] = { "nft", "-f", "-", NULL };
	char script[64], out[HOST_NFT_OUT];
	int rc;

	if (!h->rules)
		return 0;
	snprintf(script, sizeof(script), "delete table inet %s\n", h->table);
	rc = run_nft(apply, script, out, sizeof(out));
	if (rc) {
		fprintf(stderr, "mps_host: cannot delete nftables table inet %s: %s\n", h->table,
			first_line(out));
		return -EIO;
	}
	h->rules = false;
	return 0;
}

static socklen_t sockaddr_of(const struct mps_addr *a, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == 4) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		memcpy(&s4->sin_addr, a->addr, 4);
		return sizeof(*s4);
	}
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(port);
	memcpy(&s6->sin6_addr, a->addr, 16);
	return sizeof(*s6);
}

/*
 * A kernel socket bound to a:port (type SOCK_STREAM, never listening) holds
 * the port; with port 0 a datagram socket only proves the address is ours.
 */
static int bind_probe(const struct mps_addr *a, uint16_t port, int *fd_out)
{
	struct sockaddr_storage ss;
	socklen_t sl = sockaddr_of(a, port, &ss);
	int fd, one = 1, rc = 0;

	fd = socket(a->family == 4 ? AF_INET : AF_INET6,
		    (port ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (a->family == 6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0)
		rc = -errno;
	if (rc || !fd_out)
		close(fd);
	else
		*fd_out = fd;
	return rc;
}

/*
 * Two adapters with ephemeral ports on one address would each see the
 * other's segments, and each stack would answer them with RSTs. The first
 * holds the range's first port with a kernel socket, so a second one is
 * refused (the stack may still pick that port: the kernel never sees its
 * segments).
 */
static int hold_ephemeral(struct mps_host *h, const struct mps_addr *a, const char *s, char *why,
			  size_t whylen)
{
	unsigned int k;
	int rc;

	if (!h->cfg.ephemeral)
		return 0;
	for (k = 0; k < h->cfg.nports; k++)
		if (h->cfg.ports[k] == MPS_HOST_PORT_MIN)
			return 0; /* held already as a listening port */
	rc = bind_probe(a, MPS_HOST_PORT_MIN, &h->resv[h->nresv]);
	if (!rc)
		h->nresv++;
	else if (rc == -EADDRINUSE)
		say(why, whylen,
		    "port %d on %s is taken: another host adapter opens connections from this "
		    "address (one at a time per address), or a kernel socket holds the port",
		    MPS_HOST_PORT_MIN, s);
	return rc;
}

static int reserve_ports(struct mps_host *h, char *why, size_t whylen)
{
	char s[INET6_ADDRSTRLEN];
	unsigned int i, k;
	int rc;

	for (i = 0; i < h->cfg.naddrs; i++) {
		addr_str(&h->cfg.addrs[i], s, sizeof(s));
		rc = bind_probe(&h->cfg.addrs[i], 0, NULL);
		if (rc == -EADDRNOTAVAIL) {
			say(why, whylen, "%s is not an address of this host (or still tentative)",
			    s);
			return rc;
		}
		for (k = 0; !rc && k < h->cfg.nports; k++) {
			rc = bind_probe(&h->cfg.addrs[i], h->cfg.ports[k], &h->resv[h->nresv]);
			if (!rc)
				h->nresv++;
			else if (rc == -EADDRINUSE)
				say(why, whylen, "port %u on %s is taken by a kernel socket",
				    h->cfg.ports[k], s);
		}
		if (!rc)
			rc = hold_ephemeral(h, &h->cfg.addrs[i], s, why, whylen);
		if (rc) {
			if (rc != -EADDRINUSE)
				say(why, whylen, "%s: %s", s, strerror(-rc));
			return rc;
		}
	}
	return 0;
}

static int read_small(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, cap - 1);
	close(fd);
	if (n < 0)
		return -EIO;
	buf[n] = 0;
	return 0;
}

static int check_kernel_ports(char *why, size_t whylen)
{
	char range[64], reserved[1024];
	int rc = read_small("/proc/sys/net/ipv4/ip_local_port_range", range, sizeof(range));

	if (!rc)
		rc = read_small("/proc/sys/net/ipv4/ip_local_reserved_ports", reserved,
				sizeof(reserved));
	if (rc) {
		say(why, whylen, "cannot read the kernel's local port range: %s", strerror(-rc));
		return rc;
	}
	return mps_host_ports_check(range, reserved, why, whylen);
}

static bool has_family(const struct mps_host_config *cfg, uint8_t family)
{
	unsigned int i;

	for (i = 0; i < cfg->naddrs; i++)
		if (cfg->addrs[i].family == family)
			return true;
	return false;
}

static int open_tx(struct mps_host *h, uint8_t family)
{
	uint32_t mark = h->cfg.mark ? h->cfg.mark : MPS_HOST_MARK;
	int fd, sz = HOST_SNDBUF, rc;

	fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    IPPROTO_RAW);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	*(family == 4 ? &h->tx4 : &h->tx6) = fd;
	return 0;
}

static int open_rx(struct mps_host *h, uint8_t family)
{
	struct sock_filter prog[MPS_HOST_BPF_MAX];
	struct sock_fprog fp = { .filter = prog };
	struct epoll_event ev = { .events = EPOLLIN };
	int fd, sz = HOST_RCVBUF, one = 1, n, rc = 0;

	n = mps_host_bpf(&h->cfg, family, prog, MPS_HOST_BPF_MAX);
	if (n < 0)
		return n;
	fp.len = (unsigned short)n;
	fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    htons(family == 4 ? ETH_P_IP : ETH_P_IPV6));
	if (fd < 0)
		return -errno;
	*(family == 4 ? &h->rx4 : &h->rx6) = fd;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if (setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof(fp)) < 0)
		rc = -errno;
	ev.data.fd = fd;
	if (!rc && epoll_ctl(h->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		rc = -errno;
	return rc;
}

static int open_sockets(struct mps_host *h, char *why, size_t whylen)
{
	uint8_t f;
	int rc = 0;

	h->ep = epoll_create1(EPOLL_CLOEXEC);
	if (h->ep < 0) {
		rc = -errno;
		say(why, whylen, "epoll: %s", strerror(-rc));
		return rc;
	}
	for (f = 4; !rc && f <= 6; f += 2) {
		if (!has_family(&h->cfg, f))
			continue;
		rc = open_tx(h, f);
		if (rc)
			say(why, whylen, "raw IPv%u socket: %s%s", f, strerror(-rc),
			    rc == -EPERM ? " (needs CAP_NET_RAW and CAP_NET_ADMIN)" : "");
		if (!rc) {
			rc = open_rx(h, f);
			if (rc)
				say(why, whylen, "packet socket for IPv%u: %s%s", f, strerror(-rc),
				    rc == -EPERM ? " (needs CAP_NET_RAW)" : "");
		}
	}
	return rc;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

struct mps_host *mps_host_open(const struct mps_host_config *cfg, int *err, char *why,
			       size_t whylen)
{
	struct mps_host *h;
	int rc;

	say(why, whylen, "ok");
	rc = mps_host_config_check(cfg, why, whylen);
	if (!rc && cfg->ephemeral)
		rc = check_kernel_ports(why, whylen);
	if (rc) {
		*err = rc;
		return NULL;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		say(why, whylen, "out of memory");
		*err = -ENOMEM;
		return NULL;
	}
	h->cfg = *cfg;
	h->tx4 = h->tx6 = h->rx4 = h->rx6 = h->ep = -1;
	rc = reserve_ports(h, why, whylen);
	if (!rc)
		rc = open_sockets(h, why, whylen);
	if (!rc)
		rc = install_rules(h, why, whylen);
	if (rc) {
		mps_host_close(h);
		*err = rc;
		return NULL;
	}
	*err = 0;
	return h;
}

int mps_host_close(struct mps_host *h)
{
	unsigned int i;
	int rc;

	if (!h)
		return 0;
	/* The rules go first: while they stand, the ports are still ours. */
	rc = remove_rules(h);
	close_fd(&h->tx4);
	close_fd(&h->tx6);
	close_fd(&h->rx4);
	close_fd(&h->rx6);
	close_fd(&h->ep);
	for (i = 0; i < h->nresv; i++)
		close(h->resv[i]);
	free(h);
	return rc;
}

int mps_host_fd(const struct mps_host *h)
{
	return h->ep;
}

const char *mps_host_table(const struct mps_host *h)
{
	return h->table;
}

void mps_host_get_stats(const struct mps_host *h, struct mps_host_stats *stats)
{
	*stats = h->stats;
}

static int host_send(void *ctx, const uint8_t *pkt, size_t len, uint64_t now)
{
	struct mps_host *h = ctx;
	union {
		struct cmsghdr c;
		uint8_t b[CMSG_SPACE(sizeof(struct in6_pktinfo))];
	} ctl;
	struct sockaddr_storage ss;
	struct mps_addr dst = { 0 };
	struct iovec iov = { (void *)pkt, len };
	struct msghdr m = { .msg_name = &ss, .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &ctl };
	uint8_t family = len ? pkt[0] >> 4 : 0;
	const uint8_t *src;
	struct cmsghdr *c = &ctl.c;
	int fd;

	(void)now;
	if (len < (family == 6 ? MPS_IP6_HLEN : MPS_IP4_HLEN_MIN) || (family != 4 && family != 6))
		return -EINVAL;
	src = pkt + (family == 4 ? MPS_IP4_OFF_SRC : MPS_IP6_OFF_SRC);
	if (!addr_ours(&h->cfg, family, src))
		return -EADDRNOTAVAIL; /* never send with an address the rules do not cover */
	dst.family = family;
	memcpy(dst.addr, pkt + (family == 4 ? MPS_IP4_OFF_DST : MPS_IP6_OFF_DST), alen(family));
	m.msg_namelen = sockaddr_of(&dst, 0, &ss);
	/* The source picks the route too, so that source routing finds its uplink. */
	memset(&ctl, 0, sizeof(ctl));
	if (family == 4) {
		struct in_pktinfo pi = { 0 };

		memcpy(&pi.ipi_spec_dst, src, 4);
		c->cmsg_level = IPPROTO_IP;
		c->cmsg_type = IP_PKTINFO;
		c->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(c), &pi, sizeof(pi));
		m.msg_controllen = CMSG_SPACE(sizeof(pi));
		fd = h->tx4;
	} else {
		struct in6_pktinfo pi = { 0 };

		memcpy(&pi.ipi6_addr, src, 16);
		c->cmsg_level = IPPROTO_IPV6;
		c->cmsg_type = IPV6_PKTINFO;
		c->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(c), &pi, sizeof(pi));
		m.msg_controllen = CMSG_SPACE(sizeof(pi));
		fd = h->tx6;
	}
	if (sendmsg(fd, &m, MSG_DONTWAIT) != (ssize_t)len) {
		h->stats.tx_err++;
		return errno == EAGAIN || errno == ENOBUFS ? -EAGAIN : -errno;
	}
	h->stats.tx_pkts++;
	return 0;
}

/* What PACKET_AUXDATA says of the checksum. */
static enum mps_host_csum aux_csum(struct msghdr *m)
{
	struct cmsghdr *c;
	struct tpacket_auxdata aux;

	for (c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
		if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA ||
		    c->cmsg_len < CMSG_LEN(sizeof(aux)))
			continue;
		memcpy(&aux, CMSG_DATA(c), sizeof(aux));
		if (aux.tp_status & TP_STATUS_CSUMNOTREADY)
			return MPS_HOST_CSUM_PARTIAL;
		if (aux.tp_status & TP_STATUS_CSUM_VALID)
			return MPS_HOST_CSUM_VALID;
	}
	return MPS_HOST_CSUM_NONE;
}

/* One packet from fd: its length if it is for the stack, 0 if not, -EAGAIN if none. */
static int rx_one(struct mps_host *h, int fd, uint8_t *buf, size_t cap)
{
	union {
		struct cmsghdr c;
		uint8_t b[CMSG_SPACE(sizeof(struct tpacket_auxdata)) + 64];
	} ctl;
	struct sockaddr_ll sll;
	struct iovec iov = { buf, cap };
	struct msghdr m = { .msg_name = &sll,
			    .msg_namelen = sizeof(sll),
			    .msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = &ctl,
			    .msg_controllen = sizeof(ctl) };
	ssize_t n = recvmsg(fd, &m, MSG_DONTWAIT | MSG_TRUNC);
	size_t iplen;
	int rc;

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? -EAGAIN : -errno;
	h->stats.rx_pkts++;
	if ((size_t)n > cap || sll.sll_pkttype == PACKET_OUTGOING) {
		h->stats.rx_bad++; /* over the cap: cut, so useless */
		return 0;
	}
	rc = mps_host_match(&h->cfg, buf, (size_t)n, &iplen);
	if (rc <= 0 || sll.sll_pkttype == PACKET_OTHERHOST) {
		if (rc < 0)
			h->stats.rx_bad++;
		else
			h->stats.rx_other++;
		return 0;
	}
	/*
	 * A checksum the kernel vouches for is summed neither here nor in the
	 * stack (a pass over every byte): only the trace needs a stale field
	 * right, and mps_input_flags() fixes it for that.
	 */
	h->rx_flags = mps_host_csum_flags(aux_csum(&m));
	if (h->rx_flags)
		h->stats.rx_csum++;
	h->stats.rx_ours++;
	return (int)iplen;
}

static int host_recv(void *ctx, uint8_t *buf, size_t cap, uint64_t now)
{
	struct mps_host *h = ctx;
	int fds[2] = { h->rx4, h->rx6 }, i, n, dry = 0;

	(void)now;
	h->rx_flags = 0;
	for (i = 0; i < HOST_RX_BUDGET && dry < 2; i++) {
		if (fds[h->turn] < 0) {
			h->turn ^= 1;
			dry++;
			continue;
		}
		n = rx_one(h, fds[h->turn], buf, cap);
		if (n == -EAGAIN) {
			h->turn ^= 1;
			dry++;
			continue;
		}
		if (n < 0)
			return n;
		dry = 0;
		if (n > 0) {
			h->turn ^= 1; /* the other family next time: neither starves */
			return n;
		}
	}
	return 0;
}

static unsigned int host_recv_flags(void *ctx)
{
	const struct mps_host *h = ctx;

	return h->rx_flags;
}

const struct mps_link_ops mps_host_link_ops = {
	.name = "host",
	.send = host_send,
	.recv = host_recv,
	.next_ready = NULL,
	.gso_max = NULL,
	.send_gso = NULL,
	.recv_flags = host_recv_flags,
};
