/* Topology file parser and address plan of the emulated testbed. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tb_config.h"

static const char *const mb_names[] = {
	[TB_MB_NONE] = "none",
	[TB_MB_STRIP_MPTCP] = "strip-mptcp",
	[TB_MB_STRIP_MPTCP_SYNACK] = "strip-mptcp-synack",
	[TB_MB_NAT] = "nat",
	[TB_MB_DROP_ADD_ADDR] = "drop-add-addr",
	[TB_MB_REWRITE_SEQ] = "rewrite-seq",
	[TB_MB_REWRITE_PAYLOAD] = "rewrite-payload",
};

const char *tb_middlebox_name(enum tb_middlebox mb)
{
	if ((unsigned int)mb >= sizeof(mb_names) / sizeof(mb_names[0]))
		return "?";
	return mb_names[mb];
}

int tb_middlebox_parse(const char *s, enum tb_middlebox *mb)
{
	for (unsigned int i = 0; i < sizeof(mb_names) / sizeof(mb_names[0]); i++) {
		if (strcmp(s, mb_names[i]) == 0) {
			*mb = (enum tb_middlebox)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* Splits "12.5unit" into a finite non-negative number and its unit. */
static int split_number(const char *s, double *v, const char **unit)
{
	char *end;

	if (!s || !*s || isspace((unsigned char)*s) || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	*v = strtod(s, &end);
	if (errno || end == s || !isfinite(*v) || *v < 0)
		return -EINVAL;
	*unit = end;
	return 0;
}

int tb_parse_rate(const char *s, uint64_t *bps)
{
	static const struct {
		const char *u;
		double mult;
	} units[] = { { "bit", 1 }, { "kbit", 1e3 }, { "mbit", 1e6 }, { "gbit", 1e9 } };
	const char *unit;
	double v;

	if (s && strcmp(s, "unlimited") == 0) {
		*bps = 0;
		return 0;
	}
	if (split_number(s, &v, &unit))
		return -EINVAL;
	if (!*unit && v == 0) {
		*bps = 0;
		return 0;
	}
	for (unsigned int i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(unit, units[i].u) == 0) {
			double r = v * units[i].mult;

			/* Below 8 kbit/s one 1500-byte packet takes more than 1.5 s. */
			if (r != 0 && (r < 8000 || r > 400e9))
				return -EINVAL;
			*bps = (uint64_t)(r + 0.5);
			return 0;
		}
	}
	return -EINVAL;
}

int tb_parse_duration(const char *s, uint32_t *us)
{
	const char *unit;
	double v, mult;

	if (split_number(s, &v, &unit))
		return -EINVAL;
	if (strcmp(unit, "us") == 0)
		mult = 1;
	else if (strcmp(unit, "ms") == 0)
		mult = 1e3;
	else if (strcmp(unit, "s") == 0)
		mult = 1e6;
	else if (!*unit && v == 0)
		mult = 0;
	else
		return -EINVAL;
	/* Ten seconds is far beyond any terrestrial or satellite path. */
	if (v * mult > 10e6)
		return -EINVAL;
	*us = (uint32_t)(v * mult + 0.5);
	return 0;
}

int tb_parse_prob(const char *s, double *p)
{
	const char *unit;
	double v;

	if (split_number(s, &v, &unit))
		return -EINVAL;
	if (strcmp(unit, "%") == 0)
		v /= 100;
	else if (*unit)
		return -EINVAL;
	if (v > 1)
		return -EINVAL;
	*p = v;
	return 0;
}

void tb_link_params_default(struct tb_link_params *p)
{
	memset(p, 0, sizeof(*p));
	p->buffer_us = 50000;
	p->loss_model = TB_LOSS_RANDOM;
	p->ge_loss_bad = 1.0;
}

static int seterr(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int seterr(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (err && len) {
		va_start(ap, fmt);
		vsnprintf(err, len, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

int tb_link_set(struct tb_link_params *p, const char *key, const char *value, char *err,
		size_t errlen)
{
	struct {
		const char *key;
		double *prob;
		uint32_t *dur;
	} table[] = {
		{ "delay", NULL, &p->delay_us },
		{ "jitter", NULL, &p->jitter_us },
		{ "buffer", NULL, &p->buffer_us },
		{ "loss", &p->loss, NULL },
		{ "ge_p", &p->ge_p, NULL },
		{ "ge_r", &p->ge_r, NULL },
		{ "ge_loss_bad", &p->ge_loss_bad, NULL },
		{ "ge_loss_good", &p->ge_loss_good, NULL },
		{ "reorder", &p->reorder, NULL },
	};

	if (!value)
		return seterr(err, errlen, "%s: needs a value (%s=...)", key, key);
	if (strcmp(key, "rate") == 0) {
		if (tb_parse_rate(value, &p->rate_bps))
			return seterr(err, errlen,
				      "rate: \"%s\" is not a rate like \"100mbit\", \"500kbit\", "
				      "\"1gbit\" or \"unlimited\" (8 kbit/s to 400 gbit/s)",
				      value);
		return 0;
	}
	if (strcmp(key, "loss_model") == 0) {
		if (strcmp(value, "random") == 0)
			p->loss_model = TB_LOSS_RANDOM;
		else if (strcmp(value, "gilbert-elliott") == 0)
			p->loss_model = TB_LOSS_GE;
		else
			return seterr(err, errlen,
				      "loss_model: \"%s\" is neither \"random\" nor "
				      "\"gilbert-elliott\"",
				      value);
		return 0;
	}
	for (unsigned int i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (strcmp(key, table[i].key) != 0)
			continue;
		if (table[i].dur && tb_parse_duration(value, table[i].dur))
			return seterr(err, errlen,
				      "%s: \"%s\" is not a duration like \"20ms\", \"500us\" "
				      "or \"1s\" (at most 10 s)",
				      key, value);
		if (table[i].prob && tb_parse_prob(value, table[i].prob))
			return seterr(err, errlen,
				      "%s: \"%s\" is not a probability like \"1.5%%\" or 0.015 "
				      "(0 to 100%%)",
				      key, value);
		if (strcmp(key, "loss") == 0)
			p->loss_model = TB_LOSS_RANDOM;
		return 0;
	}
	return seterr(err, errlen,
		      "unknown link setting \"%s\" (known: rate, delay, jitter, buffer, loss, "
		      "loss_model, ge_p, ge_r, ge_loss_bad, ge_loss_good, reorder)",
		      key);
}

int tb_link_set_dirs(struct tb_link_params p[2], const char *key, const char *value, char *err,
		     size_t errlen)
{
	struct tb_link_params q[2] = { p[0], p[1] };
	char base[32];
	size_t n = strlen(key);
	int first = 0, last = 1, r = 0;

	if (n > 3 && !strcmp(key + n - 3, "_up") && n - 3 < sizeof(base)) {
		last = 0;
		n -= 3;
	} else if (n > 5 && !strcmp(key + n - 5, "_down") && n - 5 < sizeof(base)) {
		first = 1;
		n -= 5;
	} else if (n >= sizeof(base)) {
		return seterr(err, errlen, "unknown link setting \"%.40s\"", key);
	}
	memcpy(base, key, n);
	base[n] = 0;
	for (int d = first; d <= last && !r; d++)
		r = tb_link_set(&q[d], base, value, err, errlen);
	if (r)
		return r;
	p[0] = q[0];
	p[1] = q[1];
	return 0;
}

static void fmt_dur(char *buf, size_t len, uint32_t us)
{
	if (us % 1000 == 0)
		snprintf(buf, len, "%ums", us / 1000);
	else
		snprintf(buf, len, "%uus", us);
}

void tb_link_format(const struct tb_link_params *p, char *buf, size_t len)
{
	char rate[32], d[16], j[16], b[16], loss[160];

	if (p->rate_bps == 0)
		snprintf(rate, sizeof(rate), "unlimited");
	else if (p->rate_bps % 1000000 == 0)
		snprintf(rate, sizeof(rate), "%llumbit",
			 (unsigned long long)(p->rate_bps / 1000000));
	else
		snprintf(rate, sizeof(rate), "%llukbit", (unsigned long long)(p->rate_bps / 1000));
	fmt_dur(d, sizeof(d), p->delay_us);
	fmt_dur(j, sizeof(j), p->jitter_us);
	fmt_dur(b, sizeof(b), p->buffer_us);
	if (p->loss_model == TB_LOSS_GE)
		snprintf(loss, sizeof(loss),
			 "loss_model=gilbert-elliott ge_p=%g%% ge_r=%g%% ge_loss_bad=%g%% "
			 "ge_loss_good=%g%%",
			 p->ge_p * 100, p->ge_r * 100, p->ge_loss_bad * 100, p->ge_loss_good * 100);
	else
		snprintf(loss, sizeof(loss), "loss=%g%%", p->loss * 100);
	snprintf(buf, len, "rate=%s delay=%s jitter=%s buffer=%s %s reorder=%g%%%s", rate, d, j, b,
		 loss, p->reorder * 100, p->down ? " down" : "");
}

/* ---- file parsing ---- */

struct ctx {
	char *err;
	size_t errlen;
};

static const char *src_file(const config_setting_t *s)
{
	const char *f = config_setting_source_file(s);

	return f ? f : "<string>";
}

/* Writes the dotted path of a setting ("sites.[1].uplinks.[0].delay"). */
static void setting_path(const config_setting_t *s, char *buf, size_t len)
{
	const config_setting_t *chain[16];
	unsigned int n = 0;
	size_t off = 0;

	buf[0] = 0;
	for (; s && config_setting_parent(s) && n < 16; s = config_setting_parent(s))
		chain[n++] = s;
	while (n-- > 0) {
		const config_setting_t *c = chain[n];
		int w;

		if (config_setting_name(c))
			w = snprintf(buf + off, len - off, "%s%s", off ? "." : "",
				     config_setting_name(c));
		else
			w = snprintf(buf + off, len - off, "%s[%d]", off ? "." : "",
				     config_setting_index(c));
		if (w < 0 || (size_t)w >= len - off)
			return;
		off += (size_t)w;
	}
}

static int bad(struct ctx *c, const config_setting_t *s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int bad(struct ctx *c, const config_setting_t *s, const char *fmt, ...)
{
	char path[160], msg[TB_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	setting_path(s, path, sizeof(path));
	snprintf(c->err, c->errlen, "%s:%d: %s: %s", src_file(s), config_setting_source_line(s),
		 path, msg);
	return -EINVAL;
}

static int missing(struct ctx *c, const config_setting_t *parent, const char *name)
{
	char path[160];

	setting_path(parent, path, sizeof(path));
	snprintf(c->err, c->errlen, "%s:%d: %s%s%s: missing (required)", src_file(parent),
		 config_setting_source_line(parent), path, *path ? "." : "", name);
	return -EINVAL;
}

/* A name: lower-case letter, then lower-case letters, digits or '-'. */
/* The responder TUN named after the node's: its name and an 'r' (the caller checked the length). */
static void tun_plus_r(struct tb_node *node)
{
	size_t l = strlen(node->tun);

	memcpy(node->resp_tun, node->tun, l);
	node->resp_tun[l] = 'r';
	node->resp_tun[l + 1] = 0;
}

static int get_name(struct ctx *c, const config_setting_t *parent, const char *key, char *out,
		    size_t cap)
{
	const config_setting_t *s = config_setting_get_member(parent, key);
	const char *v;

	if (!s)
		return missing(c, parent, key);
	v = config_setting_get_string(s);
	if (!v)
		return bad(c, s, "must be a string");
	if (!*v || strlen(v) >= cap)
		return bad(c, s, "\"%s\" must have 1 to %zu characters", v, cap - 1);
	if (!islower((unsigned char)v[0]))
		return bad(c, s, "\"%s\" must start with a lower-case letter", v);
	for (const char *p = v; *p; p++)
		if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '-')
			return bad(c, s, "\"%s\": only a-z, 0-9 and '-' are allowed", v);
	memcpy(out, v, strlen(v) + 1);
	return 0;
}

static int parse_prefix(const char *v, int af, void *addr, unsigned int *len)
{
	char buf[64];
	const char *slash = strchr(v, '/');
	char *end;
	unsigned long l;
	size_t n;

	if (!slash)
		return -EINVAL;
	n = (size_t)(slash - v);
	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, v, n);
	buf[n] = 0;
	if (inet_pton(af, buf, addr) != 1)
		return -EINVAL;
	if (!isdigit((unsigned char)slash[1]))
		return -EINVAL;
	l = strtoul(slash + 1, &end, 10);
	if (*end || l > (af == AF_INET ? 32u : 128u))
		return -EINVAL;
	*len = (unsigned int)l;
	return 0;
}

static bool host_bits_zero(const unsigned char *a, unsigned int bytes, unsigned int len)
{
	for (unsigned int bit = len; bit < bytes * 8; bit++)
		if (a[bit / 8] & (0x80 >> (bit % 8)))
			return false;
	return true;
}

/* A network prefix of at most maxlen bits (so the site number fits below it). */
static int get_prefix(struct ctx *c, const config_setting_t *parent, const char *key, int af,
		      void *addr, unsigned int *len, unsigned int maxlen, bool network)
{
	const config_setting_t *s = config_setting_get_member(parent, key);
	const char *v;

	if (!s)
		return missing(c, parent, key);
	v = config_setting_get_string(s);
	if (!v)
		return bad(c, s, "must be a string like \"%s\"",
			   af == AF_INET ? "10.1.0.0/16" : "fd00:1::/48");
	if (parse_prefix(v, af, addr, len))
		return bad(c, s, "\"%s\" is not an IPv%d prefix like \"%s\"", v,
			   af == AF_INET ? 4 : 6, af == AF_INET ? "10.1.0.0/16" : "fd00:1::/48");
	if (*len > maxlen)
		return bad(c, s, "\"%s\": the prefix must be /%u or shorter", v, maxlen);
	if (network && !host_bits_zero(addr, af == AF_INET ? 4 : 16, *len))
		return bad(c, s, "\"%s\": host bits are set", v);
	return 0;
}

static int get_middlebox(struct ctx *c, const config_setting_t *parent, enum tb_middlebox *mb)
{
	const config_setting_t *s = config_setting_get_member(parent, "middlebox");
	const char *v;

	if (!s)
		return 0;
	v = config_setting_get_string(s);
	if (!v)
		return bad(c, s, "must be a string");
	if (tb_middlebox_parse(v, mb))
		return bad(c, s,
			   "\"%s\" is not one of none, strip-mptcp, strip-mptcp-synack, nat, "
			   "drop-add-addr, rewrite-seq, rewrite-payload",
			   v);
	return 0;
}

/*
 * "rewrite_offset": which byte of each TCP stream the rewrite-payload
 * middlebox changes. Only where that middlebox applies, so that a typo in
 * the middlebox's name does not leave a setting silently unused.
 */
static int get_rewrite_offset(struct ctx *c, const config_setting_t *parent, enum tb_middlebox mb,
			      uint32_t *offset)
{
	const config_setting_t *s = config_setting_get_member(parent, "rewrite_offset");
	long long v;

	if (!s)
		return 0;
	if (mb != TB_MB_REWRITE_PAYLOAD)
		return bad(c, s, "only applies with middlebox = \"rewrite-payload\" (here: %s)",
			   tb_middlebox_name(mb));
	if (config_setting_type(s) != CONFIG_TYPE_INT &&
	    config_setting_type(s) != CONFIG_TYPE_INT64)
		return bad(c, s, "must be an integer (bytes into each TCP stream, 0 is the first)");
	v = config_setting_get_int64(s);
	if (config_setting_type(s) == CONFIG_TYPE_INT)
		v = config_setting_get_int(s);
	if (v < 0 || v > TB_REWRITE_OFFSET_MAX)
		return bad(c, s, "%lld is outside 0..%u (bytes into each TCP stream)", v,
			   TB_REWRITE_OFFSET_MAX);
	*offset = (uint32_t)v;
	return 0;
}

/* True when the host part of the address is 0 or 1. */
static bool host_at_most_one(const unsigned char *a, unsigned int bytes, unsigned int len)
{
	for (unsigned int bit = len; bit < bytes * 8 - 1; bit++)
		if (a[bit / 8] & (0x80 >> (bit % 8)))
			return false;
	return true;
}

static int parse_controller(struct ctx *c, const config_setting_t *root, struct tb_topology *t)
{
	const config_setting_t *s = config_setting_get_member(root, "controller");
	int r;

	if (!s)
		return missing(c, root, "controller");
	if (!config_setting_is_group(s))
		return bad(c, s, "must be a group { ipv4 = ...; ipv6 = ...; }");
	r = get_prefix(c, s, "ipv4", AF_INET, &t->ctl_v4, &t->ctl_v4len, 30, false);
	if (!r)
		r = get_prefix(c, s, "ipv6", AF_INET6, &t->ctl_v6, &t->ctl_v6len, 126, false);
	if (r)
		return r;
	/* The core takes host 1 of the controller's prefix. */
	if (host_at_most_one((unsigned char *)&t->ctl_v4, 4, t->ctl_v4len))
		return bad(c, config_setting_get_member(s, "ipv4"),
			   "the controller needs a host number above 1 (host 1 is the core's)");
	if (host_at_most_one(t->ctl_v6.s6_addr, 16, t->ctl_v6len))
		return bad(c, config_setting_get_member(s, "ipv6"),
			   "the controller needs a host number above 1 (host 1 is the core's)");
	return 0;
}

static int parse_isps(struct ctx *c, const config_setting_t *root, struct tb_topology *t)
{
	const config_setting_t *l = config_setting_get_member(root, "isps");
	int r;

	if (!l)
		return missing(c, root, "isps");
	if (!config_setting_is_list(l) || config_setting_length(l) == 0)
		return bad(c, l, "must be a non-empty list ( { name = ...; }, ... )");
	if (config_setting_length(l) > TB_MAX_ISPS)
		return bad(c, l, "at most %d ISPs", TB_MAX_ISPS);
	for (int i = 0; i < config_setting_length(l); i++) {
		const config_setting_t *s = config_setting_get_elem(l, (unsigned int)i);
		struct tb_isp *isp = &t->isps[i];

		if (!config_setting_is_group(s))
			return bad(c, s, "must be a group { name = ...; ipv4 = ...; ipv6 = ...; }");
		r = get_name(c, s, "name", isp->name, sizeof(isp->name));
		if (!r)
			r = get_prefix(c, s, "ipv4", AF_INET, &isp->v4, &isp->v4len, 16, true);
		if (!r)
			r = get_prefix(c, s, "ipv6", AF_INET6, &isp->v6, &isp->v6len, 48, true);
		if (!r && config_setting_get_member(s, "inside_ipv4")) {
			r = get_prefix(c, s, "inside_ipv4", AF_INET, &isp->inside_v4,
				       &isp->inside_v4len, 16, true);
			isp->has_inside = true;
		}
		if (!r)
			r = get_middlebox(c, s, &isp->middlebox);
		isp->rewrite_offset = TB_REWRITE_OFFSET_DEFAULT;
		if (!r)
			r = get_rewrite_offset(c, s, isp->middlebox, &isp->rewrite_offset);
		if (r)
			return r;
		for (int j = 0; j < i; j++)
			if (strcmp(t->isps[j].name, isp->name) == 0)
				return bad(c, config_setting_get_member(s, "name"),
					   "ISP \"%s\" is listed twice", isp->name);
		t->n_isps++;
	}
	return 0;
}

static int find_isp(const struct tb_topology *t, const char *name)
{
	for (unsigned int i = 0; i < t->n_isps; i++)
		if (strcmp(t->isps[i].name, name) == 0)
			return (int)i;
	return -ENOENT;
}

static int parse_uplink(struct ctx *c, const config_setting_t *s, struct tb_topology *t,
			struct tb_site *site)
{
	static const char *const link_keys[] = { "rate",	"delay",	"jitter", "buffer",
						 "loss",	"loss_model",	"ge_p",	  "ge_r",
						 "ge_loss_bad", "ge_loss_good", "reorder" };
	struct tb_uplink *u = &site->uplinks[site->n_uplinks];
	const config_setting_t *m;
	const char *isp;
	char msg[TB_ERR_MAX];
	int idx, r;

	if (!config_setting_is_group(s))
		return bad(c, s, "must be a group { isp = ...; rate = ...; delay = ...; }");
	m = config_setting_get_member(s, "isp");
	if (!m)
		return missing(c, s, "isp");
	isp = config_setting_get_string(m);
	if (!isp)
		return bad(c, m, "must be a string naming an ISP from \"isps\"");
	idx = find_isp(t, isp);
	if (idx < 0)
		return bad(c, m, "no ISP named \"%s\" in \"isps\"", isp);
	for (unsigned int j = 0; j < site->n_uplinks; j++)
		if (site->uplinks[j].isp == (unsigned int)idx)
			return bad(c, m, "site \"%s\" has two uplinks to ISP \"%s\"", site->name,
				   isp);
	u->isp = (unsigned int)idx;
	u->middlebox = t->isps[idx].middlebox;
	r = get_middlebox(c, s, &u->middlebox);
	u->rewrite_offset = t->isps[idx].rewrite_offset;
	if (!r)
		r = get_rewrite_offset(c, s, u->middlebox, &u->rewrite_offset);
	if (r)
		return r;
	if (u->middlebox == TB_MB_NAT && !t->isps[idx].has_inside)
		return bad(c, m,
			   "NAT uplink needs \"inside_ipv4\" (the private block) in ISP \"%s\"",
			   isp);
	u->mtu = 1500;
	m = config_setting_get_member(s, "mtu");
	if (m) {
		if (config_setting_type(m) != CONFIG_TYPE_INT)
			return bad(c, m, "must be an integer (bytes)");
		if (config_setting_get_int(m) < 1280 || config_setting_get_int(m) > 9000)
			return bad(c, m, "%d is outside 1280..9000 (IPv6 needs at least 1280)",
				   config_setting_get_int(m));
		u->mtu = (unsigned int)config_setting_get_int(m);
	}
	tb_link_params_default(&u->params[TB_DIR_UP]);
	tb_link_params_default(&u->params[TB_DIR_DOWN]);
	for (int k = 0; k < config_setting_length(s); k++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned int)k);
		const char *key = config_setting_name(e);
		char num[64];
		const char *val;
		bool known = false;

		if (!strcmp(key, "isp") || !strcmp(key, "mtu") || !strcmp(key, "middlebox") ||
		    !strcmp(key, "rewrite_offset"))
			continue;
		for (unsigned int q = 0; q < sizeof(link_keys) / sizeof(link_keys[0]); q++) {
			size_t kl = strlen(link_keys[q]);

			/* "delay", "delay_up" and "delay_down" are the same setting. */
			known |= !strncmp(key, link_keys[q], kl) &&
				 (!key[kl] || !strcmp(key + kl, "_up") ||
				  !strcmp(key + kl, "_down"));
		}
		if (!known)
			return bad(
				c, e,
				"unknown uplink setting (known: isp, mtu, middlebox, rewrite_offset, rate, "
				"delay, jitter, buffer, loss, loss_model, ge_p, ge_r, "
				"ge_loss_bad, ge_loss_good, reorder; the link settings also "
				"with _up or _down for one direction)");
		switch (config_setting_type(e)) {
		case CONFIG_TYPE_STRING:
			val = config_setting_get_string(e);
			break;
		case CONFIG_TYPE_INT:
			snprintf(num, sizeof(num), "%d", config_setting_get_int(e));
			val = num;
			break;
		case CONFIG_TYPE_FLOAT:
			snprintf(num, sizeof(num), "%.17g", config_setting_get_float(e));
			val = num;
			break;
		default:
			return bad(c, e, "must be a string or a number");
		}
		if (tb_link_set_dirs(u->params, key, val, msg, sizeof(msg))) {
			size_t kl = strcspn(msg, ":");

			/* The path already names the key; do not repeat it. */
			if (!strncmp(msg, key, kl) && msg[kl] == ':' && kl > 0)
				return bad(c, e, "%s", msg + kl + 2);
			return bad(c, e, "%s", msg);
		}
	}
	for (int d = 0; d < 2; d++)
		if (u->params[d].jitter_us > u->params[d].delay_us)
			return bad(c, s, "jitter (%u us) is larger than delay (%u us)%s",
				   u->params[d].jitter_us, u->params[d].delay_us,
				   d ? " going down" : " going up");
	site->n_uplinks++;
	return 0;
}

static int parse_sites(struct ctx *c, const config_setting_t *root, struct tb_topology *t)
{
	const config_setting_t *l = config_setting_get_member(root, "sites");
	int r;

	if (!l)
		return missing(c, root, "sites");
	if (!config_setting_is_list(l) || config_setting_length(l) == 0)
		return bad(c, l, "must be a non-empty list ( { name = ...; }, ... )");
	if (config_setting_length(l) > TB_MAX_SITES)
		return bad(c, l, "at most %d sites", TB_MAX_SITES);
	for (int i = 0; i < config_setting_length(l); i++) {
		const config_setting_t *s = config_setting_get_elem(l, (unsigned int)i);
		const config_setting_t *nl, *ul;
		struct tb_site *site = &t->sites[i];

		if (!config_setting_is_group(s))
			return bad(c, s,
				   "must be a group { name = ...; nodes = ...; uplinks = ...; }");
		r = get_name(c, s, "name", site->name, sizeof(site->name));
		if (r)
			return r;
		for (int j = 0; j < i; j++)
			if (strcmp(t->sites[j].name, site->name) == 0)
				return bad(c, config_setting_get_member(s, "name"),
					   "site \"%s\" is listed twice", site->name);
		if (strcmp(site->name, "core") == 0 || strcmp(site->name, "ctl") == 0)
			return bad(c, config_setting_get_member(s, "name"),
				   "\"%s\" is reserved for the testbed's own namespaces",
				   site->name);
		nl = config_setting_get_member(s, "nodes");
		if (!nl)
			return missing(c, s, "nodes");
		if (!config_setting_is_list(nl) || config_setting_length(nl) == 0)
			return bad(c, nl,
				   "must be a non-empty list ( { name = ...; tun = ...; } )");
		if (config_setting_length(nl) > TB_MAX_NODES)
			return bad(c, nl, "at most %d nodes per site", TB_MAX_NODES);
		for (int n = 0; n < config_setting_length(nl); n++) {
			const config_setting_t *ns = config_setting_get_elem(nl, (unsigned int)n);
			struct tb_node *node = &site->nodes[n];

			if (!config_setting_is_group(ns))
				return bad(c, ns, "must be a group { name = ...; tun = ...; }");
			r = get_name(c, ns, "name", node->name, sizeof(node->name));
			if (!r)
				r = get_name(c, ns, "tun", node->tun, sizeof(node->tun));
			if (!r && config_setting_get_member(ns, "responder_tun"))
				r = get_name(c, ns, "responder_tun", node->resp_tun,
					     sizeof(node->resp_tun));
			else if (!r && strlen(node->tun) + 1 < sizeof(node->resp_tun))
				tun_plus_r(node);
			else if (!r)
				r = bad(c, ns,
					"TUN \"%s\" is too long to name its responder TUN "
					"after it: set responder_tun",
					node->tun);
			if (r)
				return r;
			if (!strcmp(node->tun, node->resp_tun))
				return bad(c, ns, "responder_tun must differ from tun");
			for (unsigned int s2 = 0; s2 <= (unsigned int)i; s2++)
				for (unsigned int n2 = 0; n2 < t->sites[s2].n_nodes; n2++)
					if (!strcmp(t->sites[s2].nodes[n2].name, node->name))
						return bad(c, ns, "node \"%s\" is listed twice",
							   node->name);
			for (unsigned int n2 = 0; n2 < site->n_nodes; n2++) {
				const struct tb_node *o = &site->nodes[n2];
				const char *clash =
					!strcmp(o->tun, node->tun) ||
							!strcmp(o->resp_tun, node->tun)
						? node->tun
					: !strcmp(o->tun, node->resp_tun) ||
							!strcmp(o->resp_tun, node->resp_tun)
						? node->resp_tun
						: NULL;

				if (clash)
					return bad(c, ns, "TUN \"%s\" is used twice in site \"%s\"",
						   clash, site->name);
			}
			for (unsigned int q = 0; q < t->n_isps; q++)
				if (!strcmp(t->isps[q].name, node->tun) ||
				    !strcmp(t->isps[q].name, node->resp_tun))
					return bad(c, ns,
						   "TUN \"%s\" has the name of an ISP uplink",
						   !strcmp(t->isps[q].name, node->tun)
							   ? node->tun
							   : node->resp_tun);
			site->n_nodes++;
		}
		ul = config_setting_get_member(s, "uplinks");
		if (!ul)
			return missing(c, s, "uplinks");
		if (!config_setting_is_list(ul) || config_setting_length(ul) == 0)
			return bad(c, ul, "must be a non-empty list ( { isp = ...; ... } )");
		for (int u = 0; u < config_setting_length(ul); u++) {
			r = parse_uplink(c, config_setting_get_elem(ul, (unsigned int)u), t, site);
			if (r)
				return r;
		}
		t->n_sites++;
	}
	return 0;
}

static int parse_root(struct ctx *c, const config_t *cfg, struct tb_topology *t)
{
	const config_setting_t *root = config_root_setting(cfg);
	const config_setting_t *s;
	const char *name;
	int r;

	memset(t, 0, sizeof(*t));
	s = config_setting_get_member(root, "name");
	if (!s)
		return missing(c, root, "name");
	name = config_setting_get_string(s);
	if (!name || !*name || strlen(name) >= sizeof(t->name))
		return bad(c, s, "must be a string of 1 to %zu characters", sizeof(t->name) - 1);
	memcpy(t->name, name, strlen(name) + 1);
	r = parse_controller(c, root, t);
	if (!r)
		r = parse_isps(c, root, t);
	if (!r)
		r = parse_sites(c, root, t);
	if (r)
		return r;
	for (int k = 0; k < config_setting_length(root); k++) {
		const char *key =
			config_setting_name(config_setting_get_elem(root, (unsigned int)k));

		if (strcmp(key, "name") && strcmp(key, "controller") && strcmp(key, "isps") &&
		    strcmp(key, "sites"))
			return bad(c, config_setting_get_elem(root, (unsigned int)k),
				   "unknown top-level setting (known: name, controller, isps, "
				   "sites)");
	}
	return 0;
}

static int load(config_t *cfg, int rc, const char *what, struct tb_topology *t, char *err,
		size_t errlen)
{
	struct ctx c = { err, errlen };
	int r;

	if (rc != CONFIG_TRUE) {
		if (config_error_type(cfg) == CONFIG_ERR_FILE_IO)
			snprintf(err, errlen, "%s: cannot read the file", what);
		else
			snprintf(err, errlen, "%s:%d: %s",
				 config_error_file(cfg) ? config_error_file(cfg) : what,
				 config_error_line(cfg), config_error_text(cfg));
		config_destroy(cfg);
		return -EINVAL;
	}
	r = parse_root(&c, cfg, t);
	config_destroy(cfg);
	return r;
}

int tb_config_load_file(const char *path, struct tb_topology *t, char *err, size_t errlen)
{
	config_t cfg;

	config_init(&cfg);
	return load(&cfg, config_read_file(&cfg, path), path, t, err, errlen);
}

int tb_config_load_string(const char *text, struct tb_topology *t, char *err, size_t errlen)
{
	config_t cfg;

	config_init(&cfg);
	return load(&cfg, config_read_string(&cfg, text), "<string>", t, err, errlen);
}

/* ---- links and addresses ---- */

unsigned int tb_link_count(const struct tb_topology *t)
{
	unsigned int n = 0;

	for (unsigned int s = 0; s < t->n_sites; s++)
		n += t->sites[s].n_uplinks;
	return n;
}

int tb_link_at(const struct tb_topology *t, unsigned int i, unsigned int *site,
	       unsigned int *uplink)
{
	for (unsigned int s = 0; s < t->n_sites; s++) {
		if (i < t->sites[s].n_uplinks) {
			*site = s;
			*uplink = i;
			return 0;
		}
		i -= t->sites[s].n_uplinks;
	}
	return -ENOENT;
}

int tb_link_find(const struct tb_topology *t, const char *name)
{
	const char *slash = strchr(name, '/');
	unsigned int base = 0;
	size_t n;

	if (!slash)
		return -ENOENT;
	n = (size_t)(slash - name);
	for (unsigned int s = 0; s < t->n_sites; s++) {
		const struct tb_site *site = &t->sites[s];

		if (strlen(site->name) == n && !strncmp(site->name, name, n)) {
			for (unsigned int u = 0; u < site->n_uplinks; u++)
				if (!strcmp(t->isps[site->uplinks[u].isp].name, slash + 1))
					return (int)(base + u);
			return -ENOENT;
		}
		base += site->n_uplinks;
	}
	return -ENOENT;
}

const struct tb_uplink *tb_site_uplink(const struct tb_topology *t, unsigned int site,
				       unsigned int isp)
{
	if (site >= t->n_sites)
		return NULL;
	for (unsigned int u = 0; u < t->sites[site].n_uplinks; u++)
		if (t->sites[site].uplinks[u].isp == isp)
			return &t->sites[site].uplinks[u];
	return NULL;
}

int tb_addr_v4(const struct tb_topology *t, unsigned int site, unsigned int isp, enum tb_host h,
	       unsigned int n, struct in_addr *out)
{
	const struct tb_uplink *u = tb_site_uplink(t, site, isp);
	const struct tb_isp *i;
	uint32_t base, host;

	if (!u || site >= 255 || n >= TB_MAX_NODES)
		return -EINVAL;
	i = &t->isps[isp];
	base = ntohl(i->v4.s_addr);
	if (u->middlebox == TB_MB_NAT && h != TB_HOST_PUBLIC)
		base = ntohl(i->inside_v4.s_addr);
	else if (u->middlebox != TB_MB_NAT && h == TB_HOST_PUBLIC)
		return -EINVAL;
	switch (h) {
	case TB_HOST_CORE:
		host = 1;
		break;
	case TB_HOST_NODE:
		host = 2 + n;
		break;
	case TB_HOST_BUNDLED:
		host = 128 + n;
		break;
	case TB_HOST_BUNDLED_RESP:
		host = 160 + n;
		break;
	case TB_HOST_PUBLIC:
		host = 2;
		break;
	default:
		return -EINVAL;
	}
	out->s_addr = htonl(base | ((site + 1) << 8) | host);
	return 0;
}

int tb_addr_v6(const struct tb_topology *t, unsigned int site, unsigned int isp, enum tb_host h,
	       unsigned int n, struct in6_addr *out)
{
	const struct tb_uplink *u = tb_site_uplink(t, site, isp);

	if (!u || site >= 0xffff || n >= TB_MAX_NODES || h == TB_HOST_PUBLIC)
		return -EINVAL;
	*out = t->isps[isp].v6;
	out->s6_addr[6] = (unsigned char)((site + 1) >> 8);
	out->s6_addr[7] = (unsigned char)(site + 1);
	switch (h) {
	case TB_HOST_CORE:
		out->s6_addr[15] = 1;
		break;
	case TB_HOST_NODE:
		out->s6_addr[15] = (unsigned char)(2 + n);
		break;
	case TB_HOST_BUNDLED:
		out->s6_addr[13] = 1;
		out->s6_addr[15] = (unsigned char)n;
		break;
	case TB_HOST_BUNDLED_RESP:
		out->s6_addr[13] = 1;
		out->s6_addr[14] = 1;
		out->s6_addr[15] = (unsigned char)n;
		break;
	default:
		return -EINVAL;
	}
	return 0;
}
