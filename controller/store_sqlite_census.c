/*
 * The census's read of the store: every probe result of a client agent.
 * Probe runs are found through their summary metric paths_reachable, which
 * only the probe module emits (docs/experiments.md) and which the metric
 * table's primary key (name, run_rid) indexes, so the scan reads probe
 * results only, never the much larger bulk results with their samples.
 */
#include <errno.h>
#include <stdlib.h>

#include "census.h"
#include "store_sqlite.h"

int ctl_store_census_scan(struct ctl_store *st, const struct ctl_query *q,
			  int (*fn)(void *arg, const Fjord__V1__Run *run,
				    const Fjord__V1__Result *res),
			  void *arg)
{
	struct st_qbuild qb = { .len = 0 };
	struct ctl_query f = { 0 };
	struct store_conn *c;
	sqlite3_stmt *s = NULL;
	int err, rc = SQLITE_DONE;

	if (!st || !fn)
		return -EINVAL;
	if (q) {
		f.isp = q->isp;
		f.family = q->family;
		f.from_ms = q->from_ms;
		f.to_ms = q->to_ms;
	}
	st_qb_add(&qb, "SELECT " RUN_COLS ", x.msg FROM metric m"
		       " JOIN run r ON r.rid = m.run_rid JOIN run_msg rm ON rm.rid = r.rid"
		       " JOIN result x ON x.run_rid = r.rid AND x.agent_id = r.client_agent"
		       " WHERE m.name = 'paths_reachable'");
	err = st_qb_filters(&qb, &f);
	if (err)
		return err;
	st_qb_add(&qb, " ORDER BY r.due_ms, r.rid");
	c = st_conn_get(st, &err);
	if (!c)
		return err;
	err = st_qb_prepare(c, &qb, &s);
	while (!err && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		Fjord__V1__Run *run = NULL;
		Fjord__V1__Result *res;

		err = st_run_from_row(s, 0, &run);
		if (err)
			break;
		res = fjord__v1__result__unpack(NULL, (size_t)sqlite3_column_bytes(s, RUN_NCOLS),
						sqlite3_column_blob(s, RUN_NCOLS));
		if (!res) {
			st_set_err("stored result message of run %s does not unpack", run->id);
			protobuf_c_message_free_unpacked(&run->base, NULL);
			err = -EIO;
			break;
		}
		err = fn(arg, run, res);
		protobuf_c_message_free_unpacked(&res->base, NULL);
		protobuf_c_message_free_unpacked(&run->base, NULL);
	}
	if (!err && rc != SQLITE_DONE && rc != SQLITE_ROW)
		err = st_sqlerr(c->db, rc);
	sqlite3_finalize(s);
	st_conn_put(st, c);
	return err;
}
