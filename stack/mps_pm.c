/*
 * Path managers (RFC 8684 §3.4): which addresses a connection announces and
 * which subflows it opens, as small named ops tables. "fullmesh", the
 * default: a server announces every configured local address (ADD_ADDR
 * with HMAC, repeated until the peer echoes it); a client opens a subflow
 * from every local address it has to every address of the peer it knows,
 * the ones learnt by ADD_ADDR included, within cfg.max_subflows, and opens
 * again a subflow of its own that failed (timeout, RST or stale; the initial
 * one's pair as a join), after 1, 2 and 4 s.
 */
#include <errno.h>
#include <string.h>

#include "mps_internal.h"
#include "mps_tcp.h"

#define ADD_ADDR_TRIES	   5	   /* transmissions of one announcement before giving up */
#define JOIN_RETRIES	   3	   /* a failed join is opened again at most this often */
#define JOIN_RETRY_BASE_US 1000000 /* first wait before it is, doubled each time */

static bool same_host(const struct mps_addr *a, const struct mps_addr *b)
{
	return a->family == b->family && memcmp(a->addr, b->addr, a->family == 4 ? 4 : 16) == 0;
}

int mps_pm_local_id(const struct mps_conn *c, const struct mps_addr *addr)
{
	unsigned int i;

	if (same_host(addr, &c->sf.local))
		return 0;
	for (i = 0; i < c->nladdrs; i++)
		if (same_host(addr, &c->laddrs[i].addr))
			return c->laddrs[i].id;
	return -1;
}

void mps_pm_conn_init(struct mps_conn *c)
{
	const struct mps_config *cfg = &c->st->cfg;
	unsigned int i;

	c->announce_idx = -1;
	c->pm = mps_pm_find(cfg->path_manager);
	for (i = 0; i < MPS_MAX_SUBFLOWS; i++)
		c->jretry[i].next_at = MPS_TIME_NEVER;
	for (i = 0; i < cfg->nlocal_addrs && c->nladdrs < MPS_MAX_LOCAL_ADDRS; i++) {
		const struct mps_addr *a = &cfg->local_addrs[i];

		if (a->family != c->sf.local.family || mps_pm_local_id(c, a) >= 0)
			continue;
		c->laddrs[c->nladdrs].id = ++c->next_local_id;
		c->laddrs[c->nladdrs].addr = *a;
		c->laddrs[c->nladdrs].addr.port = 0;
		c->laddrs[c->nladdrs].port = a->port;
		c->laddrs[c->nladdrs].next_at = MPS_TIME_NEVER;
		c->nladdrs++;
	}
}

/* Client: a subflow for every (local, remote) pair not yet covered, within the limit. */
static void fullmesh_fill(struct mps_conn *c)
{
	struct mps_addr locals[1 + MPS_MAX_LOCAL_ADDRS], remotes[1 + MPS_MAX_REMOTE_ADDRS];
	unsigned int nl = 0, nr = 0, i, j, k;

	if (!c->is_client)
		return;
	locals[nl++] = c->sf.local;
	for (i = 0; i < c->nladdrs; i++)
		if (!c->laddrs[i].removed)
			locals[nl++] = c->laddrs[i].addr;
	remotes[nr++] = c->sf.remote;
	for (i = 0; i < c->nraddrs; i++) {
		if (c->raddrs[i].addr.family != c->sf.remote.family)
			continue;
		remotes[nr] = c->raddrs[i].addr;
		if (!remotes[nr].port)
			remotes[nr].port = c->sf.remote.port;
		nr++;
	}
	for (i = 0; i < nl; i++)
		for (j = 0; j < nr; j++) {
			bool have = c->sf.state != MPS_SF_CLOSED &&
				    same_host(&locals[i], &c->sf.local) &&
				    same_host(&remotes[j], &c->sf.remote);

			for (k = 0; k < c->njoins && !have; k++)
				have = c->joins[k]->state != MPS_SF_CLOSED &&
				       same_host(&locals[i], &c->joins[k]->local) &&
				       same_host(&remotes[j], &c->joins[k]->remote);
			if (have)
				continue;
			locals[i].port = 0;
			if (mps_join(c, &locals[i], &remotes[j], false) == -ENOSPC)
				return;
		}
}

/* Server: announce every local address once the connection is fully established. */
static void fullmesh_established(struct mps_conn *c, uint64_t now)
{
	unsigned int i;

	if (c->is_client) {
		fullmesh_fill(c);
		return;
	}
	for (i = 0; i < c->nladdrs; i++) {
		c->laddrs[i].announce = true;
		c->laddrs[i].next_at = now;
	}
}

static void fullmesh_addr_learnt(struct mps_conn *c, uint64_t now)
{
	(void)now;
	fullmesh_fill(c);
}

static void fullmesh_addr_removed(struct mps_conn *c, uint8_t id, uint64_t now)
{
	mps_join_close_id(c, id, true, now);
	/* The initial subflow's address too, if a join carries the connection on. */
	if (id == c->sf.remote_id)
		mps_initial_down(c, MPS_SF_DOWN_REMOVED, true, now);
}

/* The retry slot of the pair (local, remote), or -1. */
static int jretry_find(const struct mps_conn *c, const struct mps_addr *l, const struct mps_addr *r)
{
	unsigned int i;

	for (i = 0; i < MPS_MAX_SUBFLOWS; i++)
		if (c->jretry[i].local.family && same_host(&c->jretry[i].local, l) &&
		    same_host(&c->jretry[i].remote, r) && c->jretry[i].remote.port == r->port)
			return (int)i;
	return -1;
}

static void jretry_free(struct mps_conn *c, unsigned int i)
{
	memset(&c->jretry[i], 0, sizeof(c->jretry[i]));
	c->jretry[i].next_at = MPS_TIME_NEVER;
}

/* A failed join waits 1 s, 2 s, then 4 s before it is opened again; then it is given up. */
static void jretry_schedule(struct mps_conn *c, unsigned int i, int reason, uint64_t now)
{
	c->jretry[i].last_reason = reason;
	if (c->jretry[i].tries >= JOIN_RETRIES) {
		mps_event_sf(c->st, MPS_EV_JOIN_GIVEN_UP, c, c->jretry[i].id, reason, now);
		jretry_free(c, i);
		return;
	}
	c->jretry[i].next_at = now + ((uint64_t)JOIN_RETRY_BASE_US << c->jretry[i].tries);
}

static void fullmesh_join_failed(struct mps_conn *c, const struct mps_subflow *sf, int reason,
				 uint64_t now)
{
	int i = jretry_find(c, &sf->local, &sf->remote);
	unsigned int k;

	if (i < 0) {
		for (k = 0; k < MPS_MAX_SUBFLOWS && c->jretry[k].local.family; k++)
			;
		if (k == MPS_MAX_SUBFLOWS)
			return; /* cannot happen: one slot per subflow */
		i = (int)k;
		c->jretry[i].local = sf->local;
		c->jretry[i].local.port = 0;
		c->jretry[i].remote = sf->remote;
		c->jretry[i].id = sf->id;
		c->jretry[i].tries = 0;
	}
	jretry_schedule(c, (unsigned int)i, reason, now);
}

static void fullmesh_join_up(struct mps_conn *c, const struct mps_subflow *sf)
{
	int i = jretry_find(c, &sf->local, &sf->remote);

	if (i >= 0)
		jretry_free(c, (unsigned int)i);
}

static const struct mps_pm_ops fullmesh = {
	.name = "fullmesh",
	.established = fullmesh_established,
	.addr_learnt = fullmesh_addr_learnt,
	.addr_removed = fullmesh_addr_removed,
	.join_failed = fullmesh_join_failed,
	.join_up = fullmesh_join_up,
};

static const struct mps_pm_ops *const pms[] = { &fullmesh };

const struct mps_pm_ops *mps_pm_find(const char *name)
{
	unsigned int i;

	if (!name)
		return pms[0];
	for (i = 0; i < sizeof(pms) / sizeof(pms[0]); i++)
		if (strcmp(pms[i]->name, name) == 0)
			return pms[i];
	return NULL;
}

void mps_pm_join_down(struct mps_conn *c, const struct mps_subflow *sf, int reason, uint64_t now)
{
	/*
	 * Only a subflow we opened (a join of ours, or a client's initial one)
	 * that timed out, was reset or went stale, while the connection carries on.
	 */
	if (!(sf->join_ours || (!sf->is_join && c->is_client)) ||
	    (reason != MPS_SF_DOWN_TIMEOUT && reason != MPS_SF_DOWN_RST &&
	     reason != MPS_SF_DOWN_STALE) ||
	    !c->pm || !c->pm->join_failed || !c->mptcp || c->reset ||
	    c->state != MPS_CONN_ESTABLISHED)
		return;
	c->pm->join_failed(c, sf, reason, now);
}

void mps_pm_join_up(struct mps_conn *c, const struct mps_subflow *sf)
{
	if (c->pm && c->pm->join_up)
		c->pm->join_up(c, sf);
}

/* Both ends of the pair are still ours and the peer's, and no live join covers it. */
static bool jretry_wanted(const struct mps_conn *c, unsigned int i)
{
	const struct mps_addr *l = &c->jretry[i].local, *r = &c->jretry[i].remote;
	bool local = same_host(l, &c->sf.local), remote = same_host(r, &c->sf.remote);
	unsigned int k;

	for (k = 0; k < c->nladdrs && !local; k++)
		local = !c->laddrs[k].removed && same_host(l, &c->laddrs[k].addr);
	for (k = 0; k < c->nraddrs && !remote; k++)
		remote = same_host(r, &c->raddrs[k].addr);
	if (c->sf.state != MPS_SF_CLOSED && same_host(l, &c->sf.local) &&
	    same_host(r, &c->sf.remote))
		return false;
	for (k = 0; k < c->njoins; k++)
		if (c->joins[k]->state != MPS_SF_CLOSED && same_host(l, &c->joins[k]->local) &&
		    same_host(r, &c->joins[k]->remote))
			return false;
	return local && remote;
}

static void jretry_tick(struct mps_conn *c, uint64_t now)
{
	unsigned int i;
	int rc;

	for (i = 0; i < MPS_MAX_SUBFLOWS; i++) {
		if (!c->jretry[i].local.family || c->jretry[i].next_at > now)
			continue;
		if (!jretry_wanted(c, i)) {
			jretry_free(c, i);
			continue;
		}
		c->jretry[i].tries++;
		c->jretry[i].next_at = MPS_TIME_NEVER; /* until this attempt's outcome */
		c->st->counters[MPS_CNT_JOIN_RETRY]++;
		mps_event_sf(c->st, MPS_EV_JOIN_RETRY, c, c->jretry[i].id, c->jretry[i].tries, now);
		rc = mps_join(c, &c->jretry[i].local, &c->jretry[i].remote, false);
		if (rc < 0)
			jretry_schedule(c, i, c->jretry[i].last_reason, now);
	}
}

/*
 * The subflow that carries connection-level options (ADD_ADDR): the
 * initial one, or, once it is gone, a working join. NULL if none works.
 */
static struct mps_subflow *opt_carrier(struct mps_conn *c)
{
	unsigned int i;

	if (c->sf.state != MPS_SF_CLOSED)
		return &c->sf;
	for (i = 0; i < c->njoins; i++)
		if (mps_sf_usable(c->joins[i]))
			return c->joins[i];
	return NULL;
}

int mps_pm_announce_opt(struct mps_conn *c, struct mps_opt *o, unsigned int room)
{
	const struct mps_addr *a;
	uint16_t port;
	uint8_t alen;

	if (c->announce_idx < 0 || c->announce_idx >= c->nladdrs)
		return -EINVAL;
	a = &c->laddrs[c->announce_idx].addr;
	port = c->laddrs[c->announce_idx].port;
	alen = a->family == 4 ? 4 : 16;
	memset(o, 0, sizeof(*o));
	o->subtype = MPS_MPTCP_SUB_ADD_ADDR;
	o->add_addr.addr_id = c->laddrs[c->announce_idx].id;
	o->add_addr.family = a->family;
	memcpy(o->add_addr.addr, a->addr, alen);
	/*
	 * Served on another port than the connection's: the port goes with it
	 * (RFC 8684 §3.4.1), if it fits. An IPv6 address with a port and the
	 * HMAC takes 30 bytes, more than is left beside timestamps: the
	 * callers leave the timestamps off that one ACK (as Linux does with
	 * add_addr_v6_port_drop_ts); where it still does not fit it goes
	 * without, and joins to the connection's own port are taken too.
	 */
	if (port && port != c->sf.local.port && 4u + alen + 2 + 8 <= room) {
		o->add_addr.has_port = true;
		o->add_addr.port = port;
	} else {
		port = 0;
	}
	c->announce_idx = -1;
	return mps_add_addr_hmac(c->lkey, c->rkey, o->add_addr.addr_id, a->addr, alen, port,
				 &o->add_addr.hmac);
}

bool mps_pm_announce_wants_room(const struct mps_conn *c, unsigned int room)
{
	const struct mps_addr *a;
	uint16_t port;

	if (c->announce_idx < 0 || c->announce_idx >= c->nladdrs)
		return false;
	a = &c->laddrs[c->announce_idx].addr;
	port = c->laddrs[c->announce_idx].port;
	return a->family == 6 && port && port != c->sf.local.port && 4u + 16 + 2 + 8 > room;
}

bool mps_pm_join_port_ok(const struct mps_conn *c, const struct mps_addr *local)
{
	unsigned int i;

	if (local->port == c->sf.local.port)
		return true;
	for (i = 0; i < c->nladdrs; i++)
		if (c->laddrs[i].port == local->port && !c->laddrs[i].removed &&
		    same_host(local, &c->laddrs[i].addr))
			return true;
	return false;
}

void mps_pm_tick(struct mps_conn *c, uint64_t now)
{
	struct mps_subflow *carrier;
	unsigned int i;
	bool ready = c->mptcp && !c->reset && c->state == MPS_CONN_ESTABLISHED &&
		     (!c->is_client || c->fully_established);

	if (!c->pm)
		return;
	if (!ready) {
		/* A connection that is closing or gone opens no more joins. */
		for (i = 0; i < MPS_MAX_SUBFLOWS; i++)
			if (c->jretry[i].local.family)
				jretry_free(c, i);
		return;
	}
	if (!c->pm_started) {
		c->pm_started = true;
		c->pm_new_addr = false;
		c->pm->established(c, now);
	} else if (c->pm_new_addr) {
		c->pm_new_addr = false;
		c->pm->addr_learnt(c, now);
	}
	jretry_tick(c, now);
	if (c->announce_idx >= 0)
		return; /* one announcement at a time on the next pure ACK */
	carrier = opt_carrier(c);
	for (i = 0; i < c->nladdrs; i++) {
		if (!c->laddrs[i].announce || c->laddrs[i].echoed || c->laddrs[i].removed ||
		    c->laddrs[i].next_at > now)
			continue;
		if (c->laddrs[i].tries == ADD_ADDR_TRIES) {
			c->laddrs[i].next_at = MPS_TIME_NEVER;
			mps_event(c->st, MPS_EV_ADD_ADDR_LOST, c, c->laddrs[i].id, now);
			continue;
		}
		if (!carrier)
			return; /* nothing to carry it now; tried again when a subflow works */
		if (c->laddrs[i].tries++ == 0)
			mps_event(c->st, MPS_EV_ADD_ADDR_OUT, c, c->laddrs[i].id, now);
		/* Repeated after an RTO of the subflow carrying it, doubled each time. */
		c->laddrs[i].next_at =
			now + ((uint64_t)(carrier->rto ? carrier->rto : MPS_RTO_INIT_US)
			       << (c->laddrs[i].tries - 1));
		c->announce_idx = (int8_t)i;
		carrier->ack_now = true;
		return;
	}
}

uint64_t mps_pm_next_timer(const struct mps_conn *c)
{
	uint64_t t = MPS_TIME_NEVER;
	unsigned int i;

	if (!c->pm || c->reset)
		return t;
	if (c->pm_new_addr && c->pm_started)
		return 0;
	if (!c->pm_started && c->mptcp && c->state == MPS_CONN_ESTABLISHED &&
	    (!c->is_client || c->fully_established))
		return 0;
	for (i = 0; i < c->nladdrs; i++)
		if (c->laddrs[i].announce && !c->laddrs[i].echoed && !c->laddrs[i].removed &&
		    c->laddrs[i].next_at < t)
			t = c->laddrs[i].next_at;
	/* Retries wait for their time; once the connection closes, the tick drops them at once. */
	for (i = 0; i < MPS_MAX_SUBFLOWS; i++)
		if (c->jretry[i].local.family && c->jretry[i].next_at < t)
			t = c->state == MPS_CONN_ESTABLISHED && c->mptcp ? c->jretry[i].next_at : 0;
	return t;
}

void mps_pm_echo_input(struct mps_conn *c, const struct mps_opt_add_addr *a, uint64_t now)
{
	unsigned int i;

	for (i = 0; i < c->nladdrs; i++)
		if (c->laddrs[i].announce && c->laddrs[i].id == a->addr_id &&
		    c->laddrs[i].addr.family == a->family &&
		    memcmp(c->laddrs[i].addr.addr, a->addr, a->family == 4 ? 4 : 16) == 0 &&
		    !c->laddrs[i].echoed) {
			c->laddrs[i].echoed = true;
			c->laddrs[i].next_at = MPS_TIME_NEVER;
			mps_event(c->st, MPS_EV_ADD_ADDR_ECHOED, c, a->addr_id, now);
		}
}

int mps_announce_addr(struct mps_conn *c, const struct mps_addr *addr)
{
	unsigned int i;
	int id;

	if (!c || !addr || (addr->family != 4 && addr->family != 6))
		return -EINVAL;
	if (!c->mptcp || c->reset || c->state != MPS_CONN_ESTABLISHED)
		return -ENOTCONN;
	id = mps_pm_local_id(c, addr);
	if (id == 0)
		return -EEXIST; /* the connection's own address: the peer knows it */
	for (i = 0; id > 0 && i < c->nladdrs; i++) {
		if (c->laddrs[i].id != id)
			continue;
		if (c->laddrs[i].removed)
			return -ENOENT;
		if (!c->laddrs[i].announce) {
			c->laddrs[i].announce = true;
			c->laddrs[i].next_at = 0; /* due at the next tick */
		}
		return 0;
	}
	if (c->nladdrs >= MPS_MAX_LOCAL_ADDRS)
		return -ENOSPC;
	i = c->nladdrs++;
	memset(&c->laddrs[i], 0, sizeof(c->laddrs[i]));
	c->laddrs[i].id = ++c->next_local_id;
	c->laddrs[i].addr = *addr;
	c->laddrs[i].addr.port = 0;
	c->laddrs[i].port = addr->port;
	c->laddrs[i].announce = true;
	/* Due at the next tick: the path manager sends it once a subflow can carry it. */
	c->laddrs[i].next_at = 0;
	return 0;
}

int mps_remove_addr(struct mps_conn *c, const struct mps_addr *addr)
{
	int id;
	unsigned int i;

	if (!addr || (addr->family != 4 && addr->family != 6))
		return -EINVAL;
	id = mps_pm_local_id(c, addr);
	/*
	 * An address that only mps_join() used (not configured, not announced)
	 * has the ID its joins carry: withdrawing it names that one. A later
	 * join from it gets a new ID, as the peer forgot this one.
	 */
	for (i = 0; id < 0 && i < c->njoins; i++)
		if (c->joins[i]->state != MPS_SF_CLOSED && same_host(addr, &c->joins[i]->local))
			id = c->joins[i]->id;
	if (id < 0)
		return -ENOENT;
	/* The initial subflow's address goes only while a join carries the connection on. */
	if (id == 0 &&
	    (!c->mptcp || c->reset || c->sf.state == MPS_SF_CLOSED || !mps_conn_working_join(c)))
		return -EBUSY;
	if (id == 0)
		mps_initial_down(c, MPS_SF_DOWN_REMOVED, true, 0);
	for (i = 0; i < c->nladdrs; i++)
		if (c->laddrs[i].id == id)
			c->laddrs[i].removed = true;
	if (c->announce_idx >= 0 && c->laddrs[c->announce_idx].id == id)
		c->announce_idx = -1;
	mps_join_close_id(c, (uint8_t)id, false, 0);
	if (c->mptcp && !c->reset && c->nrm_ids < MPS_RM_ADDR_MAX) {
		c->rm_ids[c->nrm_ids++] = (uint8_t)id;
		mps_conn_ack_now(c);
	}
	mps_event(c->st, MPS_EV_REMOVE_ADDR_OUT, c, id, 0);
	return 0;
}
