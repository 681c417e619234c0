/*
 * MPTCP option codec (RFC 8684 §3) and TCP option walker. Lengths accepted
 * are those in the table of the project's MPTCP spec §1.1, which are the
 * ones the Linux kernel accepts; anything else is rejected with its own
 * reason so that the caller can count it and answer as the RFC says.
 */
#include <errno.h>
#include <string.h>

#include "mps_opt.h"
#include "prot/wire.h"

static const char *const err_names[MPS_OPT_E_COUNT] = {
	[MPS_OPT_OK] = "ok",
	[MPS_OPT_E_TCP_LEN_SHORT] = "tcp_len_short",
	[MPS_OPT_E_TCP_OVERRUN] = "tcp_overrun",
	[MPS_OPT_E_TCP_MSS_LEN] = "tcp_mss_len",
	[MPS_OPT_E_TCP_WS_LEN] = "tcp_ws_len",
	[MPS_OPT_E_TCP_SACK_PERM_LEN] = "tcp_sack_perm_len",
	[MPS_OPT_E_TCP_SACK_LEN] = "tcp_sack_len",
	[MPS_OPT_E_TCP_TS_LEN] = "tcp_ts_len",
	[MPS_OPT_E_TCP_DUP] = "tcp_dup",
	[MPS_OPT_E_TCP_MPTCP_TOO_MANY] = "tcp_mptcp_too_many",
	[MPS_OPT_E_SHORT] = "short",
	[MPS_OPT_E_KIND] = "kind",
	[MPS_OPT_E_LEN_BYTE] = "len_byte",
	[MPS_OPT_E_SUBTYPE] = "subtype",
	[MPS_OPT_E_MPC_LEN] = "mpc_len",
	[MPS_OPT_E_MPC_VERSION] = "mpc_version",
	[MPS_OPT_E_MPC_FLAG_B] = "mpc_flag_b",
	[MPS_OPT_E_MPC_NO_H] = "mpc_no_h",
	[MPS_OPT_E_MPC_FLAGS_DG] = "mpc_flags_dg",
	[MPS_OPT_E_MPC_ZERO_KEY] = "mpc_zero_key",
	[MPS_OPT_E_JOIN_LEN] = "join_len",
	[MPS_OPT_E_DSS_LEN] = "dss_len",
	[MPS_OPT_E_DSS_FLAGS] = "dss_flags",
	[MPS_OPT_E_DSS_FIN_NO_MAP] = "dss_fin_no_map",
	[MPS_OPT_E_ADD_ADDR_LEN] = "add_addr_len",
	[MPS_OPT_E_ADD_ADDR_ECHO] = "add_addr_echo",
	[MPS_OPT_E_RM_ADDR_LEN] = "rm_addr_len",
	[MPS_OPT_E_PRIO_LEN] = "prio_len",
	[MPS_OPT_E_FAIL_LEN] = "fail_len",
	[MPS_OPT_E_FASTCLOSE_LEN] = "fastclose_len",
	[MPS_OPT_E_TCPRST_LEN] = "tcprst_len",
	[MPS_OPT_E_TCPRST_NO_RST] = "tcprst_no_rst",
};

const char *mps_opt_err_name(enum mps_opt_err err)
{
	if ((unsigned int)err >= MPS_OPT_E_COUNT)
		return "unknown";
	return err_names[err];
}

static int reject(enum mps_opt_err *err, enum mps_opt_err why)
{
	*err = why;
	return why == MPS_OPT_E_SUBTYPE ? -EOPNOTSUPP : -EBADMSG;
}

/*
 * The MP_CAPABLE form is fixed by the segment: SYN, SYN/ACK, pure ACK or
 * ACK with data. Only the data form has two lengths (with and without the
 * checksum); whether the checksum was negotiated is the caller's check.
 */
static int parse_mpc(const uint8_t *p, size_t len, unsigned int seg, struct mps_opt_mpc *m,
		     enum mps_opt_err *err)
{
	size_t want;

	if (seg & MPS_TCP_SYN) {
		m->form = (seg & MPS_TCP_ACK) ? MPS_MPC_SYNACK : MPS_MPC_SYN;
		want = (seg & MPS_TCP_ACK) ? MPS_MPC_LEN_SYNACK : MPS_MPC_LEN_SYN;
		if (len != want)
			return reject(err, MPS_OPT_E_MPC_LEN);
	} else if (seg & MPS_SEG_DATA) {
		m->form = MPS_MPC_DATA;
		if (len != MPS_MPC_LEN_DATA && len != MPS_MPC_LEN_DATA_CSUM)
			return reject(err, MPS_OPT_E_MPC_LEN);
	} else {
		m->form = MPS_MPC_ACK;
		if (len != MPS_MPC_LEN_ACK)
			return reject(err, MPS_OPT_E_MPC_LEN);
	}
	m->version = p[2] & 0x0f;
	m->flags = p[3];
	/* Be gentle with future versions on the initial SYN only (RFC 8684 §3.1). */
	if (m->form == MPS_MPC_SYN ? m->version < MPS_MPTCP_VERSION
				   : m->version != MPS_MPTCP_VERSION)
		return reject(err, MPS_OPT_E_MPC_VERSION);
	if (m->flags & MPS_MPC_FLAG_B)
		return reject(err, MPS_OPT_E_MPC_FLAG_B);
	if (!(m->flags & MPS_MPC_FLAG_H))
		return reject(err, MPS_OPT_E_MPC_NO_H);
	if (m->flags & MPS_MPC_FLAGS_DG)
		return reject(err, MPS_OPT_E_MPC_FLAGS_DG);
	m->snd_key = len >= MPS_MPC_LEN_SYNACK ? mps_get_be64(p + MPS_MPC_OFF_SKEY) : 0;
	m->rcv_key = len >= MPS_MPC_LEN_ACK ? mps_get_be64(p + MPS_MPC_OFF_RKEY) : 0;
	if (len >= MPS_MPC_LEN_SYNACK && m->snd_key == 0)
		return reject(err, MPS_OPT_E_MPC_ZERO_KEY);
	if (len >= MPS_MPC_LEN_ACK && m->rcv_key == 0)
		return reject(err, MPS_OPT_E_MPC_ZERO_KEY);
	m->data_len = len >= MPS_MPC_LEN_DATA ? mps_get_be16(p + MPS_MPC_OFF_DLEN) : 0;
	m->has_csum = len == MPS_MPC_LEN_DATA_CSUM;
	m->csum = m->has_csum ? mps_get_be16(p + MPS_MPC_OFF_CSUM) : 0;
	return 0;
}

static int parse_join(const uint8_t *p, size_t len, unsigned int seg, struct mps_opt_join *j,
		      enum mps_opt_err *err)
{
	if ((seg & (MPS_TCP_SYN | MPS_TCP_ACK)) == MPS_TCP_SYN)
		j->form = MPS_JOIN_SYN;
	else if (seg & MPS_TCP_SYN)
		j->form = MPS_JOIN_SYNACK;
	else
		j->form = MPS_JOIN_ACK;
	if (len != (j->form == MPS_JOIN_SYN	 ? MPS_JOIN_LEN_SYN
		    : j->form == MPS_JOIN_SYNACK ? MPS_JOIN_LEN_SYNACK
						 : MPS_JOIN_LEN_ACK))
		return reject(err, MPS_OPT_E_JOIN_LEN);
	j->backup = j->form != MPS_JOIN_ACK && (p[2] & MPS_JOIN_FLAG_B);
	j->addr_id = j->form != MPS_JOIN_ACK ? p[3] : 0;
	j->token = j->form == MPS_JOIN_SYN ? mps_get_be32(p + 4) : 0;
	j->nonce = j->form == MPS_JOIN_SYN	? mps_get_be32(p + 8)
		   : j->form == MPS_JOIN_SYNACK ? mps_get_be32(p + 12)
						: 0;
	j->hmac64 = j->form == MPS_JOIN_SYNACK ? mps_get_be64(p + 4) : 0;
	memset(j->hmac, 0, sizeof(j->hmac));
	if (j->form == MPS_JOIN_ACK)
		memcpy(j->hmac, p + 4, MPS_JOIN_HMAC_LEN);
	return 0;
}

/* Length of a DSS option with these flags, without the checksum. */
static size_t dss_len(uint8_t flags)
{
	size_t n = MPS_DSS_LEN_BASE;

	if (flags & MPS_DSS_FLAG_A)
		n += (flags & MPS_DSS_FLAG_a) ? 8 : 4;
	if (flags & MPS_DSS_FLAG_M)
		n += ((flags & MPS_DSS_FLAG_m) ? 8 : 4) + 4 + 2;
	return n;
}

static int dss_flags_check(uint8_t flags, enum mps_opt_err *err)
{
	if (((flags & MPS_DSS_FLAG_a) && !(flags & MPS_DSS_FLAG_A)) ||
	    ((flags & MPS_DSS_FLAG_m) && !(flags & MPS_DSS_FLAG_M)))
		return reject(err, MPS_OPT_E_DSS_FLAGS);
	if ((flags & MPS_DSS_FLAG_F) && !(flags & MPS_DSS_FLAG_M))
		return reject(err, MPS_OPT_E_DSS_FIN_NO_MAP);
	return 0;
}

static int parse_dss(const uint8_t *p, size_t len, struct mps_opt_dss *d, enum mps_opt_err *err)
{
	size_t base, off = MPS_DSS_LEN_BASE;
	int rc;

	if (len < MPS_DSS_LEN_BASE)
		return reject(err, MPS_OPT_E_DSS_LEN);
	/* Reserved bits are ignored on receipt (RFC 8684 §3.3). */
	d->flags = p[3] & MPS_DSS_FLAGS_ALL;
	rc = dss_flags_check(d->flags, err);
	if (rc)
		return rc;
	base = dss_len(d->flags);
	d->has_csum = (d->flags & MPS_DSS_FLAG_M) && len == base + 2;
	if (len != base && !d->has_csum)
		return reject(err, MPS_OPT_E_DSS_LEN);
	d->data_ack = 0;
	if (d->flags & MPS_DSS_FLAG_A) {
		d->data_ack = (d->flags & MPS_DSS_FLAG_a) ? mps_get_be64(p + off)
							  : mps_get_be32(p + off);
		off += (d->flags & MPS_DSS_FLAG_a) ? 8 : 4;
	}
	d->dsn = 0;
	d->ssn = 0;
	d->data_len = 0;
	d->csum = 0;
	if (d->flags & MPS_DSS_FLAG_M) {
		d->dsn = (d->flags & MPS_DSS_FLAG_m) ? mps_get_be64(p + off)
						     : mps_get_be32(p + off);
		off += (d->flags & MPS_DSS_FLAG_m) ? 8 : 4;
		d->ssn = mps_get_be32(p + off);
		d->data_len = mps_get_be16(p + off + 4);
		off += 6;
		if (d->has_csum)
			d->csum = mps_get_be16(p + off);
	}
	return 0;
}

/*
 * ADD_ADDR has eight legal lengths; each one fixes the family, the port and
 * the HMAC, and the HMAC must be present exactly when E is clear.
 */
static int parse_add_addr(const uint8_t *p, size_t len, struct mps_opt_add_addr *a,
			  enum mps_opt_err *err)
{
	size_t rest, alen;

	if (len < MPS_ADD_ADDR_LEN_V4)
		return reject(err, MPS_OPT_E_ADD_ADDR_LEN);
	a->echo = p[2] & MPS_ADD_ADDR_FLAG_E;
	a->addr_id = p[3];
	if (len >= MPS_ADD_ADDR_LEN_V6) {
		a->family = 6;
		alen = 16;
	} else {
		a->family = 4;
		alen = 4;
	}
	rest = len - 4 - alen;
	if (rest != 0 && rest != 2 && rest != MPS_ADD_ADDR_HMAC_LEN &&
	    rest != MPS_ADD_ADDR_HMAC_LEN + 2)
		return reject(err, MPS_OPT_E_ADD_ADDR_LEN);
	a->has_port = rest == 2 || rest == MPS_ADD_ADDR_HMAC_LEN + 2;
	if (a->echo == (rest >= MPS_ADD_ADDR_HMAC_LEN))
		return reject(err, MPS_OPT_E_ADD_ADDR_ECHO);
	memset(a->addr, 0, sizeof(a->addr));
	memcpy(a->addr, p + 4, alen);
	a->port = a->has_port ? mps_get_be16(p + 4 + alen) : 0;
	a->hmac = a->echo ? 0 : mps_get_be64(p + 4 + alen + (a->has_port ? 2 : 0));
	return 0;
}

int mps_opt_parse(const uint8_t *opt, size_t len, unsigned int seg, struct mps_opt *out,
		  enum mps_opt_err *err)
{
	*err = MPS_OPT_OK;
	if (len < 3)
		return reject(err, MPS_OPT_E_SHORT);
	if (opt[0] != MPS_TCPOPT_MPTCP)
		return reject(err, MPS_OPT_E_KIND);
	if (opt[1] != len || len > MPS_MPTCP_OPT_MAX)
		return reject(err, MPS_OPT_E_LEN_BYTE);
	out->subtype = opt[2] >> 4;
	out->len = (uint8_t)len;
	switch (out->subtype) {
	case MPS_MPTCP_SUB_CAPABLE:
		return parse_mpc(opt, len, seg, &out->mpc, err);
	case MPS_MPTCP_SUB_JOIN:
		return parse_join(opt, len, seg, &out->join, err);
	case MPS_MPTCP_SUB_DSS:
		return parse_dss(opt, len, &out->dss, err);
	case MPS_MPTCP_SUB_ADD_ADDR:
		return parse_add_addr(opt, len, &out->add_addr, err);
	case MPS_MPTCP_SUB_RM_ADDR:
		if (len < 4 || len > 3 + MPS_RM_ADDR_MAX)
			return reject(err, MPS_OPT_E_RM_ADDR_LEN);
		out->rm_addr.n = (uint8_t)(len - 3);
		memcpy(out->rm_addr.ids, opt + 3, out->rm_addr.n);
		return 0;
	case MPS_MPTCP_SUB_PRIO:
		if (len != MPS_PRIO_LEN)
			return reject(err, MPS_OPT_E_PRIO_LEN);
		out->prio_backup = opt[2] & MPS_PRIO_FLAG_B;
		return 0;
	case MPS_MPTCP_SUB_FAIL:
		if (len != MPS_FAIL_LEN)
			return reject(err, MPS_OPT_E_FAIL_LEN);
		out->fail_dsn = mps_get_be64(opt + 4);
		return 0;
	case MPS_MPTCP_SUB_FASTCLOSE:
		if (len != MPS_FASTCLOSE_LEN)
			return reject(err, MPS_OPT_E_FASTCLOSE_LEN);
		out->fastclose_key = mps_get_be64(opt + 4);
		return 0;
	case MPS_MPTCP_SUB_TCPRST:
		if (len != MPS_TCPRST_LEN)
			return reject(err, MPS_OPT_E_TCPRST_LEN);
		if (!(seg & MPS_TCP_RST))
			return reject(err, MPS_OPT_E_TCPRST_NO_RST);
		out->tcprst.flags = opt[2] & MPS_TCPRST_FLAGS;
		out->tcprst.reason = opt[3];
		return 0;
	case MPS_MPTCP_SUB_EXP:
		out->exp.len = (uint8_t)(len - 2);
		memcpy(out->exp.data, opt + 2, len - 2);
		return 0;
	default:
		return reject(err, MPS_OPT_E_SUBTYPE);
	}
}

static int mpc_len(const struct mps_opt_mpc *m)
{
	switch (m->form) {
	case MPS_MPC_SYN:
		return MPS_MPC_LEN_SYN;
	case MPS_MPC_SYNACK:
		return MPS_MPC_LEN_SYNACK;
	case MPS_MPC_ACK:
		return MPS_MPC_LEN_ACK;
	case MPS_MPC_DATA:
		return m->has_csum ? MPS_MPC_LEN_DATA_CSUM : MPS_MPC_LEN_DATA;
	}
	return -EINVAL;
}

static int add_addr_len(const struct mps_opt_add_addr *a)
{
	int n;

	if (a->family != 4 && a->family != 6)
		return -EINVAL;
	n = a->family == 4 ? MPS_ADD_ADDR_LEN_V4 : MPS_ADD_ADDR_LEN_V6;
	if (a->has_port)
		n += 2;
	if (!a->echo)
		n += MPS_ADD_ADDR_HMAC_LEN;
	return n;
}

int mps_opt_len(const struct mps_opt *o)
{
	enum mps_opt_err err;

	switch (o->subtype) {
	case MPS_MPTCP_SUB_CAPABLE:
		return mpc_len(&o->mpc);
	case MPS_MPTCP_SUB_JOIN:
		return o->join.form == MPS_JOIN_SYN	 ? MPS_JOIN_LEN_SYN
		       : o->join.form == MPS_JOIN_SYNACK ? MPS_JOIN_LEN_SYNACK
		       : o->join.form == MPS_JOIN_ACK	 ? MPS_JOIN_LEN_ACK
							 : -EINVAL;
	case MPS_MPTCP_SUB_DSS:
		if ((o->dss.flags & ~MPS_DSS_FLAGS_ALL) || dss_flags_check(o->dss.flags, &err))
			return -EINVAL;
		if (o->dss.has_csum && !(o->dss.flags & MPS_DSS_FLAG_M))
			return -EINVAL;
		return (int)dss_len(o->dss.flags) + (o->dss.has_csum ? 2 : 0);
	case MPS_MPTCP_SUB_ADD_ADDR:
		return add_addr_len(&o->add_addr);
	case MPS_MPTCP_SUB_RM_ADDR:
		if (o->rm_addr.n < 1 || o->rm_addr.n > MPS_RM_ADDR_MAX)
			return -EINVAL;
		return 3 + o->rm_addr.n;
	case MPS_MPTCP_SUB_PRIO:
		return MPS_PRIO_LEN;
	case MPS_MPTCP_SUB_FAIL:
		return MPS_FAIL_LEN;
	case MPS_MPTCP_SUB_FASTCLOSE:
		return MPS_FASTCLOSE_LEN;
	case MPS_MPTCP_SUB_TCPRST:
		return MPS_TCPRST_LEN;
	case MPS_MPTCP_SUB_EXP:
		if (o->exp.len < 1 || o->exp.len > sizeof(o->exp.data))
			return -EINVAL;
		return 2 + o->exp.len;
	}
	return -EINVAL;
}

static void build_mpc(const struct mps_opt_mpc *m, uint8_t *p, int len)
{
	p[2] = (uint8_t)(MPS_MPTCP_SUB_CAPABLE << 4) | (m->version & 0x0f);
	p[3] = m->flags;
	if (len >= MPS_MPC_LEN_SYNACK)
		mps_put_be64(p + MPS_MPC_OFF_SKEY, m->snd_key);
	if (len >= MPS_MPC_LEN_ACK)
		mps_put_be64(p + MPS_MPC_OFF_RKEY, m->rcv_key);
	if (len >= MPS_MPC_LEN_DATA)
		mps_put_be16(p + MPS_MPC_OFF_DLEN, m->data_len);
	if (len == MPS_MPC_LEN_DATA_CSUM)
		mps_put_be16(p + MPS_MPC_OFF_CSUM, m->csum);
}

static void build_join(const struct mps_opt_join *j, uint8_t *p)
{
	p[2] = (uint8_t)(MPS_MPTCP_SUB_JOIN << 4);
	p[3] = 0;
	if (j->form != MPS_JOIN_ACK) {
		p[2] |= j->backup ? MPS_JOIN_FLAG_B : 0;
		p[3] = j->addr_id;
	}
	if (j->form == MPS_JOIN_SYN) {
		mps_put_be32(p + 4, j->token);
		mps_put_be32(p + 8, j->nonce);
	} else if (j->form == MPS_JOIN_SYNACK) {
		mps_put_be64(p + 4, j->hmac64);
		mps_put_be32(p + 12, j->nonce);
	} else {
		memcpy(p + 4, j->hmac, MPS_JOIN_HMAC_LEN);
	}
}

static void build_dss(const struct mps_opt_dss *d, uint8_t *p)
{
	size_t off = MPS_DSS_LEN_BASE;

	p[2] = (uint8_t)(MPS_MPTCP_SUB_DSS << 4);
	p[3] = d->flags;
	if (d->flags & MPS_DSS_FLAG_A) {
		if (d->flags & MPS_DSS_FLAG_a)
			mps_put_be64(p + off, d->data_ack);
		else
			mps_put_be32(p + off, (uint32_t)d->data_ack);
		off += (d->flags & MPS_DSS_FLAG_a) ? 8 : 4;
	}
	if (!(d->flags & MPS_DSS_FLAG_M))
		return;
	if (d->flags & MPS_DSS_FLAG_m)
		mps_put_be64(p + off, d->dsn);
	else
		mps_put_be32(p + off, (uint32_t)d->dsn);
	off += (d->flags & MPS_DSS_FLAG_m) ? 8 : 4;
	mps_put_be32(p + off, d->ssn);
	mps_put_be16(p + off + 4, d->data_len);
	if (d->has_csum)
		mps_put_be16(p + off + 6, d->csum);
}

static void build_add_addr(const struct mps_opt_add_addr *a, uint8_t *p)
{
	size_t alen = a->family == 4 ? 4 : 16;

	p[2] = (uint8_t)(MPS_MPTCP_SUB_ADD_ADDR << 4) | (a->echo ? MPS_ADD_ADDR_FLAG_E : 0);
	p[3] = a->addr_id;
	memcpy(p + 4, a->addr, alen);
	if (a->has_port)
		mps_put_be16(p + 4 + alen, a->port);
	if (!a->echo)
		mps_put_be64(p + 4 + alen + (a->has_port ? 2 : 0), a->hmac);
}

int mps_opt_build(struct mps_opt *o, uint8_t *buf, size_t cap)
{
	int len = mps_opt_len(o);

	if (len < 0)
		return len;
	if ((size_t)len > cap)
		return -ENOSPC;
	buf[0] = MPS_TCPOPT_MPTCP;
	buf[1] = (uint8_t)len;
	switch (o->subtype) {
	case MPS_MPTCP_SUB_CAPABLE:
		build_mpc(&o->mpc, buf, len);
		break;
	case MPS_MPTCP_SUB_JOIN:
		build_join(&o->join, buf);
		break;
	case MPS_MPTCP_SUB_DSS:
		build_dss(&o->dss, buf);
		break;
	case MPS_MPTCP_SUB_ADD_ADDR:
		build_add_addr(&o->add_addr, buf);
		break;
	case MPS_MPTCP_SUB_RM_ADDR:
		buf[2] = MPS_MPTCP_SUB_RM_ADDR << 4;
		memcpy(buf + 3, o->rm_addr.ids, o->rm_addr.n);
		break;
	case MPS_MPTCP_SUB_PRIO:
		buf[2] = (uint8_t)(MPS_MPTCP_SUB_PRIO << 4) |
			 (o->prio_backup ? MPS_PRIO_FLAG_B : 0);
		break;
	case MPS_MPTCP_SUB_FAIL:
	case MPS_MPTCP_SUB_FASTCLOSE:
		buf[2] = (uint8_t)(o->subtype << 4);
		buf[3] = 0;
		mps_put_be64(buf + 4,
			     o->subtype == MPS_MPTCP_SUB_FAIL ? o->fail_dsn : o->fastclose_key);
		break;
	case MPS_MPTCP_SUB_TCPRST:
		buf[2] = (uint8_t)(MPS_MPTCP_SUB_TCPRST << 4) |
			 (o->tcprst.flags & MPS_TCPRST_FLAGS);
		buf[3] = o->tcprst.reason;
		break;
	case MPS_MPTCP_SUB_EXP:
		memcpy(buf + 2, o->exp.data, o->exp.len);
		buf[2] = (uint8_t)((MPS_MPTCP_SUB_EXP << 4) | (buf[2] & 0x0f));
		break;
	}
	o->len = (uint8_t)len;
	return len;
}

static void walk_err(struct mps_tcpopts *out, enum mps_opt_err why)
{
	if (out->nerr == 0)
		out->err = why;
	if (out->nerr < UINT8_MAX)
		out->nerr++;
}

/* A single-instance option seen twice keeps its first value. */
static bool walk_once(struct mps_tcpopts *out, unsigned int bit)
{
	if (out->present & bit) {
		walk_err(out, MPS_OPT_E_TCP_DUP);
		return false;
	}
	out->present |= bit;
	return true;
}

static void walk_one(const uint8_t *o, size_t off, uint8_t olen, struct mps_tcpopts *out)
{
	size_t i;

	switch (o[0]) {
	case MPS_TCPOPT_MSS:
		if (olen != MPS_TCPOLEN_MSS)
			walk_err(out, MPS_OPT_E_TCP_MSS_LEN);
		else if (walk_once(out, MPS_TCPOPTS_MSS))
			out->mss = mps_get_be16(o + 2);
		break;
	case MPS_TCPOPT_WS:
		if (olen != MPS_TCPOLEN_WS)
			walk_err(out, MPS_OPT_E_TCP_WS_LEN);
		else if (walk_once(out, MPS_TCPOPTS_WS))
			out->ws = o[2];
		break;
	case MPS_TCPOPT_SACK_PERM:
		if (olen != MPS_TCPOLEN_SACK_PERM)
			walk_err(out, MPS_OPT_E_TCP_SACK_PERM_LEN);
		else
			walk_once(out, MPS_TCPOPTS_SACK_PERM);
		break;
	case MPS_TCPOPT_SACK:
		if (olen < 2 + MPS_TCPOLEN_SACK_BLK || (olen - 2) % MPS_TCPOLEN_SACK_BLK ||
		    (olen - 2) / MPS_TCPOLEN_SACK_BLK > MPS_TCP_SACK_MAX) {
			walk_err(out, MPS_OPT_E_TCP_SACK_LEN);
		} else if (walk_once(out, MPS_TCPOPTS_SACK)) {
			out->nsack = (uint8_t)((olen - 2) / MPS_TCPOLEN_SACK_BLK);
			for (i = 0; i < out->nsack; i++) {
				out->sack[i].left = mps_get_be32(o + 2 + 8 * i);
				out->sack[i].right = mps_get_be32(o + 6 + 8 * i);
			}
		}
		break;
	case MPS_TCPOPT_TS:
		if (olen != MPS_TCPOLEN_TS) {
			walk_err(out, MPS_OPT_E_TCP_TS_LEN);
		} else if (walk_once(out, MPS_TCPOPTS_TS)) {
			out->ts_val = mps_get_be32(o + 2);
			out->ts_ecr = mps_get_be32(o + 6);
		}
		break;
	case MPS_TCPOPT_MPTCP:
		if (out->nmptcp >= MPS_TCPOPTS_MPTCP_MAX) {
			walk_err(out, MPS_OPT_E_TCP_MPTCP_TOO_MANY);
			break;
		}
		out->mptcp[out->nmptcp].off = (uint8_t)off;
		out->mptcp[out->nmptcp].len = olen;
		out->nmptcp++;
		break;
	default:
		if (out->nunknown < UINT8_MAX)
			out->nunknown++;
		break;
	}
}

int mps_tcpopt_walk(const uint8_t *opts, size_t len, struct mps_tcpopts *out)
{
	size_t off = 0;

	memset(out, 0, sizeof(*out));
	if (len > MPS_TCP_OPT_MAX)
		return -EINVAL;
	while (off < len) {
		uint8_t kind = opts[off], olen;

		if (kind == MPS_TCPOPT_EOL)
			break;
		if (kind == MPS_TCPOPT_NOP) {
			off++;
			continue;
		}
		if (off + 1 >= len) {
			walk_err(out, MPS_OPT_E_TCP_OVERRUN);
			break;
		}
		olen = opts[off + 1];
		if (olen < 2) {
			walk_err(out, MPS_OPT_E_TCP_LEN_SHORT);
			break;
		}
		if (off + olen > len) {
			walk_err(out, MPS_OPT_E_TCP_OVERRUN);
			break;
		}
		walk_one(opts + off, off, olen, out);
		off += olen;
	}
	return out->nerr ? -EBADMSG : 0;
}
