/*
 * libmps internals shared by the stack's own files; not part of the API.
 * One connection has one subflow in this version (the initial one); the
 * structures keep the subflow separate so joins slot in later.
 */
#ifndef MPS_INTERNAL_H
#define MPS_INTERNAL_H

#include "mps.h"
#include "mps_crypto.h"
#include "mps_opt.h"
#include "mps_seg.h"

#define MPS_MAX_LISTENERS  8
#define MPS_MAX_SUBFLOWS   8   /* per connection, the initial one included */
#define MPS_SACK_RANGES	   255 /* SACK scoreboard ranges per subflow */
#define MPS_SMAP_MAX	   512 /* send-map pieces per subflow; a full map takes no new data */
#define MPS_REINJECT_MAX   64  /* pieces waiting for reinjection per connection */
#define MPS_MAX_RST_QUEUE  16
#define MPS_MAX_EVENTS	   256
#define MPS_PUMP_MAX	   1024 /* packets each way per mps_pump() call */
#define MPS_RTO_INIT_US	   1000000u
#define MPS_RTO_MIN_US	   200000u /* Linux's floor; RFC 6298 allows a lower one than 1 s */
#define MPS_RTO_MAX_US	   60000000u
#define MPS_DTX_SOLO_US	   1000000u /* data-level timeout floor: only subflow, fallback possible */
#define MPS_MAX_BACKOFF	   12
#define MPS_SYN_RETRIES	   6
#define MPS_INIT_CWND_SEGS 10	 /* RFC 6928 */
#define MPS_DEFAULT_MSS	   536	 /* when the peer sends no MSS option (RFC 9293) */
#define MPS_DELACK_US	   40000 /* Linux's minimum delayed-ACK time; RFC 9293 allows up to 500 ms */
#define MPS_PAWS_IDLE_US   (24ULL * 86400 * 1000000) /* RFC 7323 §5.5: TS.Recent expires */
/*
 * A subflow of a connection given back (mps_close()) waits this long in
 * FIN-WAIT-2 for the peer's FIN, then goes quietly, as Linux's
 * tcp_fin_timeout (60 s): a peer that never closes holds nothing forever.
 */
#define MPS_FIN_WAIT2_US   60000000ULL
#define MPS_MPFAIL_WAIT_US 120000000ULL /* MP_FAIL unanswered: reset (Linux: TCP_RTO_MAX) */

/* An autotuned send buffer's first size, and its default cap (cfg.sndbuf_max). */
#define MPS_SNDBUF_START (256u * 1024)
#define MPS_SNDBUF_CAP	 (4u << 20)
/* A receive buffer's default size; it grows only up to a cfg.rcvbuf_max that is set. */
#define MPS_RCVBUF_START (256u * 1024)

/* A byte ring with a capacity (fixed, or grown by autotuning): bounds every stream buffer. */
struct mps_ring {
	uint8_t *buf;
	uint32_t cap, head, len;
};

struct mps_stack;
int mps_ring_init(struct mps_stack *st, struct mps_ring *r, uint32_t cap);
void mps_ring_free(struct mps_stack *st, struct mps_ring *r);
/* Give r a capacity of cap (> its own) keeping its bytes; -ENOMEM leaves it as it was. */
int mps_ring_grow(struct mps_stack *st, struct mps_ring *r, uint32_t cap);
/* Zeroed memory from the configured allocator; NULL on failure. */
void *mps_alloc(struct mps_stack *st, size_t size);
void mps_free(struct mps_stack *st, void *p);
uint32_t mps_ring_write(struct mps_ring *r, const uint8_t *src, uint32_t n);
void mps_ring_peek(const struct mps_ring *r, uint32_t off, uint8_t *dst, uint32_t n);
void mps_ring_drop(struct mps_ring *r, uint32_t n);
void mps_ring_csum(const struct mps_ring *r, uint32_t off, uint32_t n, struct mps_dss_csum *c);

enum mps_sf_state {
	MPS_SF_CLOSED,
	MPS_SF_SYN_SENT,
	MPS_SF_SYN_RCVD,
	MPS_SF_ESTABLISHED,
	MPS_SF_FIN_WAIT_1,
	MPS_SF_FIN_WAIT_2,
	MPS_SF_CLOSE_WAIT,
	MPS_SF_CLOSING,
	MPS_SF_LAST_ACK,
	MPS_SF_TIME_WAIT,
};

const char *mps_sf_state_name(enum mps_sf_state s);

struct mps_subflow {
	struct mps_conn *conn;
	uint8_t id;
	bool backup;	   /* ours: we asked the peer to use it only as a backup */
	bool peer_backup;  /* the peer asked us (MP_JOIN flag B, or its MP_PRIO) */
	bool prio_pending; /* our MP_PRIO goes on this subflow's next pure ACK */
	struct mps_addr local, remote;
	enum mps_sf_state state;
	/* Send sequence space (RFC 9293 §3.3.1); snd_max is the highest sent. */
	uint32_t iss, snd_una, snd_nxt, snd_max, snd_wnd, snd_wl1, snd_wl2;
	uint32_t max_snd_wnd; /* largest window the peer offered (RFC 5961 §5.2) */
	uint32_t fin_seq;     /* valid if fin_sent */
	bool fin_sent;
	/* Receive sequence space. */
	uint32_t irs, rcv_nxt;
	bool fin_rcvd;
	uint8_t snd_wscale, rcv_wscale;
	bool ts_ok;
	bool sack_ok; /* SACK-permitted both ways: our duplicate ACKs carry a SACK block */
	uint32_t ts_recent;
	uint64_t ts_recent_at; /* when ts_recent was last set (RFC 7323 §5.5: stale after 24 days) */
	uint16_t peer_mss;
	/* RTT (RFC 6298, Karn's rule: only segments never retransmitted are timed). */
	uint32_t srtt, rttvar, rto;
	bool rtt_timing;
	uint32_t rtt_seq;
	uint64_t rtt_start;
	/* Reno/NewReno congestion control. */
	uint32_t cwnd, ssthresh, recover;
	uint8_t dupacks; /* saturates at 255 */
	bool in_recovery;
	/*
	 * A retransmission timeout resent from snd_una up to recover: duplicate
	 * ACKs of what it resends start no fast retransmit until snd_una passes
	 * recover (RFC 6582 §4.1), or each would inflate the window again.
	 */
	bool rto_recovery;
	bool rexmit_one;		 /* fast retransmit: resend the segment at rexmit_seq */
	uint32_t rexmit_seq, rexmit_max; /* where, and at most how much (0: one segment) */
	uint32_t rexmit_next;		 /* recovery: holes before this were resent (HighRxt) */
	/*
	 * SACK scoreboard (RFC 6675): disjoint ranges, sorted, above snd_una.
	 * A tbf queue overflowing drops runs of segments, so a window may hold
	 * many holes at once; when full, the highest ranges are the ones
	 * forgotten (they matter least for repair).
	 */
	struct {
		uint32_t left, right;
	} sacked[MPS_SACK_RANGES];
	uint8_t nsacked;
	bool sack_recovery; /* in_recovery driven by the scoreboard (RFC 6675), not NewReno */
	bool rescue_done;   /* RescueRxt used in this recovery (RFC 6675 §4, rule 4) */
	bool rxt_marked;    /* rxt_mark is set */
	uint32_t rxt_mark;  /* snd_max at our latest retransmission in SACK recovery */
	/* Proportional Rate Reduction (RFC 6937) in SACK recovery. */
	uint32_t prr_delivered, prr_out, recover_fs;
	/*
	 * HyStart++ (RFC 9406) in the first slow start: the minimum RTT of the
	 * last and of this round (us, UINT32_MAX: none), and of the round that
	 * began Conservative Slow Start.
	 */
	bool hs_init, hs_css;
	uint8_t hs_samples, hs_css_rounds;
	uint32_t hs_round_end, hs_last_min, hs_cur_min, hs_css_base;
	bool probe_answered; /* an ACK came back while the peer's window was zero */
	uint8_t backoff;
	uint64_t rto_at;      /* MPS_TIME_NEVER when not armed */
	uint64_t tw_at;	      /* TIME_WAIT end */
	uint64_t delack_at;   /* delayed ACK due (RFC 9293 §3.8.6.3) */
	uint8_t unacked_segs; /* full segments received since our last ACK */
	bool ack_now;
	uint64_t bytes_sent, bytes_acked, bytes_received;
	uint32_t retransmits;
	/* MP_JOIN subflows (mps_join.c); the initial subflow has is_join false. */
	bool is_join;
	bool join_ours;	   /* we sent the join SYN (mps_join()) */
	bool join_pre_est; /* initiator: third ACK sent, the fourth not yet received */
	bool join_up;	   /* MPS_EV_SUBFLOW_UP reported */
	uint8_t remote_id; /* the peer's address ID of this subflow */
	uint32_t lnonce, rnonce;
	/* Send map: the DSNs this subflow's sequence numbers carry, oldest first (a ring). */
	struct {
		uint32_t seq, len;
		uint64_t dsn;
		/*
		 * One mapping sent whole in a super-segment (TUN offloads): its
		 * retransmissions repeat it, checksum included, never merged.
		 */
		bool whole;
		uint16_t csum;
	} smap[MPS_SMAP_MAX];
	uint16_t smap_head, smap_len;
	uint32_t serial;		/* unique within the connection */
	struct mps_join_ooo *jooo;	/* a join's segments ahead of rcv_nxt (mps_join.c) */
	struct mps_join_ooo *jooo_tail; /* its last one: most arrive in order after it */
	uint32_t jooo_segs;
	uint32_t jooo_bytes;
	uint32_t jooo_last; /* seq of the most recently queued segment (RFC 2018 §4) */
	/* The current receive mapping of a join subflow (the initial one keeps it in conn). */
	bool rx_map_valid;
	uint64_t rx_map_dsn;
	uint32_t rx_map_ssn;
	uint16_t rx_map_len;
	/*
	 * With DSS checksums: the current mapping's payload, held here until it
	 * verifies and then handed to the connection (a join's mappings always,
	 * the initial subflow's when one starts ahead of rcv_nxt_dsn).
	 */
	uint8_t *rx_cbuf;
	uint16_t rx_cdata;  /* payload bytes of the mapping (DATA_FIN not counted) */
	uint16_t rx_cdone;  /* of which received */
	uint16_t rx_cgiven; /* of which handed to the connection, once verified */
	bool rx_cverified;  /* the whole mapping arrived and its checksum verified */
	bool rx_cfin;	    /* the mapping ends with a DATA_FIN */
	uint64_t rx_cdsn;   /* the mapping's DSN */
	uint16_t rx_ccsum;  /* the checksum it carried */
	struct mps_dss_csum rx_ck;
};

struct mps_conn {
	struct mps_stack *st;
	struct mps_conn *next;
	uint32_t id;
	struct mps_subflow sf;
	struct mps_subflow *joins[MPS_MAX_SUBFLOWS - 1]; /* MP_JOIN subflows, in creation order */
	uint8_t njoins;
	uint8_t next_local_id; /* last local address ID handed out (0 is the initial one) */
	bool is_client;
	bool mptcp; /* MPTCP negotiated and not fallen back */
	bool fallback;
	const char *fallback_reason;
	int fallback_why;	/* MPS_FALLBACK_* */
	bool fully_established; /* client: a DSS DATA_ACK arrived from the server */
	bool csum;		/* DSS checksums negotiated (either side set A) */
	uint64_t lkey, rkey, lidsn, ridsn;
	uint32_t ltoken, rtoken;
	/*
	 * Data sequence space: snd_una_dsn is the DATA_ACK, snd_nxt_dsn the
	 * next DSN no subflow has sent, snd_base_dsn the DSN of the first byte
	 * of sndbuf (at most snd_una_dsn: a subflow may still have to resend
	 * bytes that arrived through another).
	 */
	uint64_t snd_una_dsn, rcv_nxt_dsn, snd_nxt_dsn, snd_base_dsn;
	/* Right edge of the receive window in our last segment (0: none yet). */
	uint64_t rcv_adv_edge;
	/*
	 * Right edge of the peer's connection-level receive window: the largest
	 * DATA_ACK + window carried by one segment (RFC 8684 §3.3.7), 0 until a
	 * DATA_ACK came. Data never goes beyond it: Linux drops data beyond the
	 * window it announced at the connection level after its subflow has
	 * acknowledged it.
	 */
	uint64_t snd_wnd_edge;
	/*
	 * Data-level retransmission (mps_sched.c): armed while data or our
	 * DATA_FIN waits for a DATA_ACK (0: not armed). When it fires and no
	 * subflow still has the oldest byte in flight, the data is reinjected
	 * and a lone DATA_FIN is sent again on subflow dfin_serial.
	 */
	uint64_t dtx_at;
	uint8_t dtx_backoff;
	bool dfin_resend;
	uint32_t dfin_serial;
	struct {
		uint64_t dsn;
		uint32_t len;
		uint32_t from; /* serial of the subflow it was taken from */
	} rq[MPS_REINJECT_MAX];
	uint8_t nrq;
	uint32_t next_serial;
	const struct mps_sched_ops *sched;
	uint64_t rx_map_dsn; /* the last mapping received (64-bit) */
	uint32_t rx_map_ssn;
	uint16_t rx_map_len;  /* DSN space, DATA_FIN included */
	uint16_t rx_map_data; /* payload bytes of the mapping */
	uint16_t rx_map_done; /* of which received */
	uint16_t rx_map_csum;
	bool rx_map_valid;
	struct mps_dss_csum rx_csum; /* running checksum of the current mapping */
	uint32_t rx_unverified;	     /* tail of rcvbuf held back until the checksum verifies */
	struct mps_ring sndbuf, rcvbuf;
	/* Receive buffer autotuning: RTT as a receiver (us), bytes received at drs_at. */
	bool drs_started;
	uint32_t drs_rtt;
	uint64_t drs_at, drs_bytes;
	bool shut_wr; /* DATA_FIN wanted after the queued data */
	bool data_fin_sent;
	bool data_fin_acked;
	bool data_fin_rcvd;  /* peer's DATA_FIN (or FIN after fallback) consumed */
	bool rx_fin_pending; /* a DATA_FIN seen ahead of data still missing */
	uint64_t rx_fin_dsn;
	/* MP_FAIL and the infinite mapping (RFC 8684 §3.7; mps_tcp.c). */
	bool mp_fail_tx;      /* our MP_FAIL goes on every pure ACK until the peer answers */
	bool mp_fail_wait;    /* we sent MP_FAIL: the peer's infinite mapping ends MPTCP */
	bool mp_fail_echo;    /* the peer's MP_FAIL is answered on our next pure ACK */
	bool inf_map_pending; /* our next new data segment carries the infinite mapping */
	bool inf_map_sent;    /* ... and went at inf_map_seq: its retransmissions carry it too */
	uint32_t inf_map_seq;
	uint64_t mp_fail_dsn; /* the DSN of ours, or of the one we answer */
	uint64_t mp_fail_at;  /* when we sent our first MP_FAIL */
	bool csum_seen;	 /* a DSS checksum verified (Linux then resets rather than falls back) */
	int rst_tcprst;	 /* MP_TCPRST reason of our fast close (MPS_TCPRST_*) */
	bool app_closed; /* handle given back with mps_close() */
	bool in_accept_q;
	bool accepted;
	bool reset;
	bool fastclose_pending;
	bool fastclose_joins; /* mps_abort(): the joins' RSTs carry MP_FASTCLOSE too */
	struct {
		uint8_t id;
		struct mps_addr addr; /* port 0: the peer did not give one */
	} raddrs[MPS_MAX_REMOTE_ADDRS];
	uint8_t nraddrs;
	bool echo_pending;	    /* an ADD_ADDR echo goes on the next pure ACK */
	struct mps_dooo *dooo;	    /* data ahead of rcv_nxt_dsn from any subflow */
	struct mps_dooo *dooo_tail; /* its last piece: most arrive after it */
	uint32_t dooo_bytes;
	uint32_t dooo_segs;
	/*
	 * Data went out a second time at the data level (the data-level
	 * timeout, reinjection): the initial subflow's sequence numbers no
	 * longer run in step with the DSNs, so no fallback (mps_fallback.c).
	 */
	bool data_resent;
	struct mps_ooo *ooo;	  /* out-of-order segments of the subflow */
	struct mps_ooo *ooo_tail; /* the last one: most arrive in order after it */
	uint32_t ooo_bytes;
	uint32_t ooo_segs;
	uint32_t ooo_last; /* seq of the most recently queued segment (RFC 2018 §4) */
	struct mps_opt_add_addr echo;
	/* Path manager state (mps_pm.c). */
	const struct mps_pm_ops *pm;
	bool pm_started;  /* established() called */
	bool pm_new_addr; /* the peer announced an address since the last tick */
	struct {
		uint8_t id;
		struct mps_addr addr; /* port 0 */
		uint16_t port;	      /* served on (cfg); 0: the connection's own */
		bool announce;	      /* we announce it (server role) */
		bool echoed, removed;
		uint8_t tries;
		uint64_t next_at; /* next (re)transmission of its ADD_ADDR, MPS_TIME_NEVER if none */
	} laddrs[MPS_MAX_LOCAL_ADDRS];
	uint8_t nladdrs;
	int8_t announce_idx; /* laddrs index whose ADD_ADDR goes on the next pure ACK, or -1 */
	/* Joins of ours that failed, waiting to be opened again (fullmesh, mps_pm.c). */
	struct {
		struct mps_addr local, remote; /* ports 0 and the peer's */
		uint8_t id;		       /* the local address ID it had */
		uint8_t tries;		       /* retries made */
		int last_reason;	       /* MPS_SF_DOWN_* of the last failure */
		uint64_t next_at;	       /* MPS_TIME_NEVER: the slot is free */
	} jretry[MPS_MAX_SUBFLOWS];
	uint8_t rm_ids[MPS_RM_ADDR_MAX];
	uint8_t nrm_ids; /* REMOVE_ADDR to send on the next pure ACK */
	enum mps_conn_state state;
	uint64_t bytes_sent, bytes_acked, bytes_received;
};

/* A DSS mapping as received (64-bit DSN), or the implied one of MP_CAPABLE's data form. */
struct mps_rx_map {
	bool valid;
	uint64_t dsn;
	uint32_t ssn;
	uint16_t len;
	bool fin;
	bool has_csum;
	uint16_t csum;
};

/* A segment that arrived ahead of rcv_nxt, kept until the hole before it fills. */
struct mps_ooo {
	struct mps_ooo *next; /* sorted by seq */
	uint32_t seq, len;
	bool fin;
	struct mps_rx_map map;
	uint8_t data[];
};

/*
 * Segments an out-of-order queue holds, for a receive buffer of cap bytes
 * (and never more bytes than that): a whole window of segments of 512
 * bytes or more, so that one loss on a long path never makes the rest of
 * the window be refused; smaller segments count against the bound.
 */
static inline uint32_t mps_ooo_max_segs(uint32_t cap)
{
	return 512 + cap / 512;
}

/* A join's segment ahead of its rcv_nxt, with its DSS (mps_join.c). */
struct mps_join_ooo {
	struct mps_join_ooo *next; /* sorted by seq */
	uint32_t seq, len;
	bool has_dss;
	struct mps_opt dss;
	uint8_t data[];
};

/* Data that arrived on some subflow ahead of the connection's rcv_nxt_dsn. */
struct mps_dooo {
	struct mps_dooo *next; /* sorted by dsn */
	uint64_t dsn;
	uint32_t len;
	uint8_t data[];
};

/*
 * Hand n bytes at dsn, taken in order on some subflow, to the connection:
 * delivered if at rcv_nxt_dsn (then held data that follows), held if ahead
 * and within the receive window, skipped if already had. Returns how many
 * bytes the subflow may consume (fewer than n when the buffer is full).
 * Only without DSS checksums, which need whole mappings.
 */
uint32_t mps_conn_deliver(struct mps_conn *c, uint64_t dsn, const uint8_t *p, uint32_t n);
/*
 * Send buffer autotuning (mps_stack.c): grow c's send buffer towards twice
 * the sum of its subflows' congestion windows, in doublings, up to
 * cfg.sndbuf_max. Called as ACKs grow the windows.
 */
void mps_sndbuf_tune(struct mps_conn *c);
/*
 * Receive buffer autotuning (mps_stack.c), after a segment with payload
 * (t its options) went through c: once per round trip, the buffer doubles
 * towards twice what arrived in it, up to cfg.rcvbuf_max.
 */
void mps_rcvbuf_tune(struct mps_conn *c, const struct mps_tcpopts *t, uint64_t now);
/* A DATA_FIN at dsn seen on any subflow (mps_tcp.c). */
void mps_data_fin_check(struct mps_conn *c, bool have, uint64_t dsn);

struct mps_rst {
	struct mps_addr local, remote;
	uint32_t seq, ack;
	uint8_t flags;
	int tcprst;	   /* MP_TCPRST reason to add, or -1 for a bare RST */
	bool mp_fail;	   /* MP_FAIL too (RFC 8684 §3.7: a subflow reset for a checksum) */
	uint64_t fail_dsn; /* its DSN */
	bool fastclose;	   /* MP_FASTCLOSE too, with the peer's key fc_key (RFC 8684 §3.5) */
	uint64_t fc_key;
};

struct mps_stack {
	struct mps_config cfg;
	const struct mps_cc_ops *cc;
	uint64_t rng;
	struct mps_conn *conns;
	uint32_t nconns, next_id;
	struct mps_addr listeners[MPS_MAX_LISTENERS];
	unsigned int nlisteners;
	struct mps_rst rsts[MPS_MAX_RST_QUEUE];
	unsigned int nrsts;
	struct mps_event events[MPS_MAX_EVENTS];
	unsigned int ev_head, ev_len;
	uint16_t ip_id;
	/*
	 * For the mps_output_gso() call under way: the most TCP payload the
	 * link takes in one packet (0: one MSS), and the segment size the link
	 * must cut the packet just built into (0: send it as it is).
	 */
	uint32_t out_gso_max, out_seg_size;
	uint64_t counters[MPS_CNT__COUNT];
	uint64_t opt_errors[MPS_OPT_E_COUNT];
};

/*
 * A path manager: which subflows a connection opens and which addresses it
 * announces. Called by the stack between packets, never re-entered.
 */
struct mps_pm_ops {
	const char *name;
	void (*established)(struct mps_conn *c, uint64_t now); /* fully established, once */
	void (*addr_learnt)(struct mps_conn *c, uint64_t now); /* the peer announced an address */
	void (*addr_removed)(struct mps_conn *c, uint8_t id, uint64_t now); /* peer withdrew id */
	/* A join we opened failed (MPS_SF_DOWN_TIMEOUT or _RST); NULL: not retried. */
	void (*join_failed)(struct mps_conn *c, const struct mps_subflow *sf, int reason,
			    uint64_t now);
	/* A join we opened is up (its fourth ACK came); may be NULL. */
	void (*join_up)(struct mps_conn *c, const struct mps_subflow *sf);
};

/* A scheduler: which subflow takes new data next. */
struct mps_sched_ops {
	const char *name;
	bool multipath; /* gives data to joins, so their data is reinjected when they fail */
	/* The subflow that should send new data now, or NULL to wait. */
	struct mps_subflow *(*pick)(struct mps_conn *c);
};

const struct mps_sched_ops *mps_sched_find(const char *name); /* NULL name: the default */

/*
 * A backup subflow gets new data only when no regular one works. Either
 * end's wish makes it one, as Linux's scheduler since 6.10 (our flag and
 * the peer's).
 */
static inline bool mps_sf_backup(const struct mps_subflow *sf)
{
	return sf->backup || sf->peer_backup;
}

/* Congestion control (mps_cc.c): how a subflow's window grows in congestion avoidance. */
struct mps_cc_ops {
	const char *name;
	/* Bytes to add to sf's cwnd for an ACK of acked new bytes (at least 1). */
	uint32_t (*ca_increase)(const struct mps_conn *c, const struct mps_subflow *sf,
				uint32_t acked, uint32_t mss);
};

const struct mps_cc_ops *mps_cc_find(const char *name); /* NULL name: the default */
/*
 * RFC 6356 alpha of n subflows (cwnd in bytes, smoothed RTT in
 * microseconds; subflows with RTT 0 left out); 1 when there is none.
 */
double mps_lia_alpha(const uint32_t *cwnd, const uint32_t *rtt_us, unsigned int n);
/* LIA's increase for sf, as the "lia" table gives it (Reno with fewer than two subflows). */
uint32_t mps_lia_increase(const struct mps_conn *c, const struct mps_subflow *sf, uint32_t acked,
			  uint32_t mss);

const struct mps_pm_ops *mps_pm_find(const char *name); /* NULL name: the default */
void mps_pm_conn_init(struct mps_conn *c);		/* IDs for cfg.local_addrs */
void mps_pm_tick(struct mps_conn *c, uint64_t now);	/* calls the ops; ADD_ADDR timers */
uint64_t mps_pm_next_timer(const struct mps_conn *c);
/* A join subflow of c goes down (reason MPS_SF_DOWN_*), or one of ours comes up. */
void mps_pm_join_down(struct mps_conn *c, const struct mps_subflow *sf, int reason, uint64_t now);
void mps_pm_join_up(struct mps_conn *c, const struct mps_subflow *sf);
/*
 * Our pending ADD_ADDR (c->announce_idx) as an option for the next pure ACK
 * (RFC 8684 §3.4.1: HMAC keyed our key || the peer's), with the port the
 * address serves when room (bytes left for it) allows; clears announce_idx.
 * Returns 0 or a negative errno.
 */
int mps_pm_announce_opt(struct mps_conn *c, struct mps_opt *o, unsigned int room);
/* The next announcement is an IPv6 address with a port that does not fit in room bytes. */
bool mps_pm_announce_wants_room(const struct mps_conn *c, unsigned int room);
/* A join to local (its port included) is one we serve: the connection's port, or an announced one. */
bool mps_pm_join_port_ok(const struct mps_conn *c, const struct mps_addr *local);
/* An echo of our ADD_ADDR arrived. */
void mps_pm_echo_input(struct mps_conn *c, const struct mps_opt_add_addr *a, uint64_t now);
/* The local ID of addr (port ignored) on c, or -1. */
int mps_pm_local_id(const struct mps_conn *c, const struct mps_addr *addr);
/* Queue an RST with MP_TCPRST reason (or -1: none) on subflow sf of c (mps_join.c). */
void mps_sf_rst(struct mps_conn *c, struct mps_subflow *sf, int reason);
/*
 * Held checksummed mappings (mps_join.c). Start one for sf at dsn (data
 * payload bytes, fin: a DATA_FIN ends it, csum: the checksum it carries);
 * add in-order bytes (-EINVAL beyond the mapping); a verified mapping is
 * handed to the connection by mps_cmap_flush(), which returns false while
 * verified bytes still wait for room there (true with nothing verified).
 */
int mps_cmap_start(struct mps_conn *c, struct mps_subflow *sf, uint64_t dsn, uint32_t ssn,
		   uint16_t len, uint16_t data, bool fin, uint16_t csum);
/* Returns 1 when the mapping is complete and verified, 0 if incomplete, -EBADMSG if wrong. */
int mps_cmap_add(struct mps_conn *c, struct mps_subflow *sf, const uint8_t *p, uint32_t n);
bool mps_cmap_flush(struct mps_conn *c, struct mps_subflow *sf);
void mps_cmap_free(struct mps_conn *c, struct mps_subflow *sf);
/* Reset every join subflow of c whose remote (remote true) or local address ID is id. */
void mps_join_close_id(struct mps_conn *c, uint8_t id, bool remote, uint64_t now);

/* Stack services used by the TCP code. */
uint64_t mps_rand64(struct mps_stack *st);
void mps_event(struct mps_stack *st, enum mps_event_type type, const struct mps_conn *c, int reason,
	       uint64_t now);
void mps_queue_rst(struct mps_stack *st, const struct mps_seg *s, const struct mps_addr *local,
		   const struct mps_addr *remote);
/* As mps_queue_rst(), with an MP_TCPRST option carrying reason (MPS_TCPRST_*). */
void mps_queue_rst_reason(struct mps_stack *st, const struct mps_seg *s,
			  const struct mps_addr *local, const struct mps_addr *remote, int reason);
/* The connection whose local token is token, or NULL. */
struct mps_conn *mps_conn_by_token(struct mps_stack *st, uint32_t token);
struct mps_conn *mps_conn_new(struct mps_stack *st, const struct mps_addr *local,
			      const struct mps_addr *remote, bool client, int *err);
void mps_conn_reset(struct mps_conn *c, int reason, uint64_t now);
/* As mps_event(), for the subflow with local ID sf_id. */
void mps_event_sf(struct mps_stack *st, enum mps_event_type type, const struct mps_conn *c,
		  uint8_t sf_id, int reason, uint64_t now);
bool mps_addr_eq(const struct mps_addr *a, const struct mps_addr *b);
bool mps_tuple_free(struct mps_stack *st, const struct mps_addr *local,
		    const struct mps_addr *remote);

/* MP_JOIN subflows (mps_join.c). */
bool mps_seg_has_join(const struct mps_seg *s, const struct mps_tcpopts *t);
void mps_join_syn_input(struct mps_stack *st, const struct mps_seg *s, const struct mps_tcpopts *t,
			const struct mps_addr *local, const struct mps_addr *remote, uint64_t now);
void mps_join_input(struct mps_conn *c, struct mps_subflow *sf, const struct mps_seg *s,
		    const struct mps_tcpopts *t, uint64_t now);
void mps_join_timers(struct mps_conn *c, uint64_t now);
uint64_t mps_join_next_timer(const struct mps_conn *c);
/* Next packet of c's join subflows; *sf_id says which subflow sent it. */
int mps_join_output(struct mps_conn *c, uint64_t now, uint8_t *buf, size_t cap, int *sf_id);
void mps_join_free_all(struct mps_conn *c);
/* Report the join subflows of a connection about to be freed as down. */
void mps_join_gone(struct mps_conn *c, uint64_t now);
/* A join subflow is still closing (its FIN exchange not done): the connection waits for it. */
bool mps_join_closing(const struct mps_conn *c);
unsigned int mps_join_count(const struct mps_conn *c); /* live join subflows */

/* TCP and MPTCP subflow processing (mps_tcp.c). */
void mps_tcp_input(struct mps_conn *c, const struct mps_seg *s, const struct mps_tcpopts *t,
		   uint64_t now);
void mps_tcp_listen_input(struct mps_stack *st, const struct mps_seg *s,
			  const struct mps_tcpopts *t, const struct mps_addr *local,
			  const struct mps_addr *remote, uint64_t now);
void mps_tcp_timers(struct mps_conn *c, uint64_t now);
uint64_t mps_tcp_next_timer(const struct mps_conn *c);
void mps_tcp_free(struct mps_conn *c); /* what the TCP code holds for c */
int mps_tcp_output(struct mps_conn *c, uint64_t now, uint8_t *buf, size_t cap);
int mps_tcp_build_rst(struct mps_stack *st, const struct mps_rst *r, uint8_t *buf, size_t cap);
void mps_tcp_connect(struct mps_conn *c, uint64_t now);

/* Parse the MPTCP options of a segment; errors are counted on st. */
unsigned int mps_parse_mptcp(struct mps_stack *st, const struct mps_seg *s,
			     const struct mps_tcpopts *t, struct mps_opt *out, unsigned int max);

#endif
