/*
 * libmps: the bundled userspace MPTCP v1 stack (RFC 8684), public API.
 *
 * The stack is sans-I/O: it never reads a clock, opens a socket or sleeps.
 * The caller feeds it IP packets with mps_input(), collects the packets it
 * wants sent with mps_output(), and calls again no later than
 * mps_next_wakeup(). Every time is a caller-supplied monotonic "now" in
 * microseconds. A link adapter (struct mps_link_ops) moves packets between
 * the stack and a TUN device, the host, or the simulated network of the tests;
 * mps_pump() does one round of that.
 *
 * Errors are 0 or a negative errno. Handles (struct mps_stack, struct
 * mps_conn) are owned by the library; see each function for lifetimes.
 * Nothing here is thread-safe: one stack belongs to one thread.
 */
#ifndef MPS_H
#define MPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MPS_TIME_NEVER	    UINT64_MAX
#define MPS_MAX_LOCAL_ADDRS 8 /* extra local addresses a path manager may use */

struct mps_stack;
struct mps_conn;

/* An endpoint: IPv4 (family 4, first 4 bytes of addr) or IPv6 (family 6). */
struct mps_addr {
	uint8_t family;
	uint8_t addr[16]; /* network order */
	uint16_t port;	  /* host order */
};

struct mps_config {
	uint16_t mss;	     /* largest TCP payload we send and announce; 0: 1400 */
	uint32_t sndbuf;     /* per-connection send buffer, bytes; 0: autotuned (sndbuf_max) */
	uint32_t rcvbuf;     /* per-connection receive buffer, bytes; 0: 256 KiB (and rcvbuf_max) */
	uint32_t max_conns;  /* connections per stack, listeners' children included; 0: 64 */
	uint32_t msl_us;     /* maximum segment lifetime (TIME_WAIT is 2 MSL); 0: 30 s */
	bool mptcp_disabled; /* behave as plain TCP (baselines) */
	bool checksum;	     /* ask for DSS checksums (a peer that asks gets them anyway) */
	/*
	 * Subflows per connection, the initial one included, in either role;
	 * joins beyond it are refused. 0: 3 (Linux's default of 2 extra); at most 8.
	 */
	uint8_t max_subflows;
	/*
	 * Path manager by name: NULL or "fullmesh" (the only one so far). With
	 * it, a server announces each address of local_addrs (ADD_ADDR with
	 * HMAC, repeated until echoed) and a client opens a subflow from every
	 * local address (the connection's own and local_addrs) to every address
	 * of the peer it knows (the connection's own and those learnt by
	 * ADD_ADDR), within max_subflows. A server's local_addrs entry with a
	 * port other than the connection's is served on that port: announced
	 * with it (ADD_ADDR's port; an IPv6 one only where it fits beside the
	 * options, else without) and joins to it are taken. A client ignores
	 * the ports (its joins use ephemeral ones) and joins to the port a
	 * peer announced, or the connection's when none was given.
	 */
	const char *path_manager;
	/*
	 * Scheduler by name. NULL or "lowrtt" (the default): new data goes to
	 * the working subflow with room in its window and the lowest smoothed
	 * RTT, backup subflows only when no regular one works, and a failing
	 * subflow's data is reinjected on the others. "initial": new data on
	 * the initial subflow only. An unknown name fails mps_stack_create().
	 */
	const char *scheduler;
	/*
	 * Congestion control by name. NULL or "lia" (the default): RFC 6356's
	 * coupled increase when several subflows carry data, so that together
	 * they take no more than one TCP on a shared bottleneck; Reno with one.
	 * "reno": every subflow runs its own NewReno. Unknown names fail
	 * mps_stack_create(). Loss reactions are NewReno's in both.
	 */
	const char *congestion;
	struct mps_addr local_addrs[MPS_MAX_LOCAL_ADDRS];
	uint8_t nlocal_addrs; /* at most MPS_MAX_LOCAL_ADDRS */
	/*
	 * Randomness for keys, ISNs and ports. NULL: an internal generator
	 * seeded with seed, for deterministic tests only (its output is
	 * predictable). Production callers pass a getrandom()-backed function.
	 */
	void (*rand_bytes)(void *ctx, void *buf, size_t len);
	void *rand_ctx;
	uint64_t seed;
	/*
	 * Trace hook, or NULL: sees every packet given to mps_input() (out 0,
	 * before any check) and every packet mps_output() returns (out 1).
	 * subflow is the subflow ID, or -1 when no connection owns the packet.
	 * pkt is only valid during the call. mps_trace_packet() fits here.
	 */
	void (*trace)(void *ctx, const uint8_t *pkt, size_t len, int out, int subflow,
		      uint64_t now);
	void *trace_ctx;
	/*
	 * Allocator, or NULL for malloc/free: every byte the stack holds comes
	 * from here (tests use it to fail the Nth allocation). alloc returns
	 * NULL on failure; the stack then answers -ENOMEM or counts a drop.
	 */
	void *(*alloc)(void *ctx, size_t size);
	void (*free)(void *ctx, void *p);
	void *alloc_ctx;
	/*
	 * Send buffer autotuning. With sndbuf 0 each connection's send buffer
	 * starts at 256 KiB and grows, in doublings, to twice the sum of its
	 * subflows' congestion windows, up to sndbuf_max (0: 4 MiB). A sndbuf
	 * of its own is fixed unless sndbuf_max (at least sndbuf) is given too.
	 * At most 1 GiB.
	 */
	uint32_t sndbuf_max;
	/*
	 * Receive buffer autotuning, when rcvbuf_max is set (0: none, the
	 * receive buffer stays at rcvbuf): each receive buffer starts at rcvbuf
	 * (0: 256 KiB) and doubles while a round trip (timed by the timestamps
	 * the peer echoes) brings more than half of it, up to rcvbuf_max (at
	 * least rcvbuf, at most 1 GiB). The window scale we announce is chosen
	 * for rcvbuf_max.
	 */
	uint32_t rcvbuf_max;
};

/*
 * Create a stack. cfg is copied. Returns NULL with *err = -EINVAL (bad
 * config) or -ENOMEM. The caller frees it with mps_stack_destroy().
 */
struct mps_stack *mps_stack_create(const struct mps_config *cfg, int *err);

/* Free the stack and every connection in it; handles become invalid. */
void mps_stack_destroy(struct mps_stack *st);

/*
 * Accept connections to local (an unspecified address, all zero, matches
 * any address of that family). At most 8 listeners. Returns 0, -EADDRINUSE,
 * -ENOSPC or -EINVAL.
 */
int mps_listen(struct mps_stack *st, const struct mps_addr *local);

/*
 * Open a connection from local to remote; local->port 0 picks a free
 * ephemeral port. The SYN leaves with the next mps_output(). On success
 * *out is a handle owned by the stack, valid until mps_close() on it or
 * mps_stack_destroy(). Returns 0, -EINVAL, -EADDRINUSE or -ENOSPC/-ENOMEM.
 */
int mps_connect(struct mps_stack *st, const struct mps_addr *local, const struct mps_addr *remote,
		struct mps_conn **out);

/*
 * Next established connection from a listener's queue, or NULL. The handle
 * is owned by the stack, valid until mps_close() or mps_stack_destroy().
 */
struct mps_conn *mps_accept(struct mps_stack *st);

/*
 * Queue up to len bytes of buf for sending (copied). Returns the number of
 * bytes taken (less than len when the send buffer is full, never 0 for
 * len > 0), -EAGAIN if the buffer is full or the connection is not yet
 * established, -EPIPE after mps_shutdown() or a reset, -EINVAL for len 0.
 */
ssize_t mps_send(struct mps_conn *c, const void *buf, size_t len);

/*
 * Copy up to len bytes of received data into buf. Returns the count, 0 at
 * the end of the stream (the peer's DATA_FIN, or FIN after fallback, and
 * everything before it read), -EAGAIN if nothing is ready, -ECONNRESET after
 * a reset.
 */
ssize_t mps_recv(struct mps_conn *c, void *buf, size_t len);

/*
 * Open another subflow of c (MP_JOIN, RFC 8684 §3.2) from local to remote;
 * local->port 0 picks a free ephemeral port, backup asks the peer to use it
 * only when no regular subflow works. c must be an MPTCP connection that is
 * fully established (a client has seen a DATA_ACK). The subflow carries no
 * data before the peer's fourth ACK. Returns 0, -EINVAL, -ENOTCONN (not
 * MPTCP or not fully established), -ENOSPC (cfg.max_subflows reached),
 * -EADDRINUSE or -ENOMEM. Its progress is reported by MPS_EV_SUBFLOW_UP and
 * MPS_EV_SUBFLOW_DOWN.
 */
int mps_join(struct mps_conn *c, const struct mps_addr *local, const struct mps_addr *remote,
	     bool backup);

/*
 * Announce local address addr to the peer of c (ADD_ADDR with HMAC, RFC
 * 8684 §3.4.1, repeated until echoed, as the path manager does for
 * cfg.local_addrs), for this connection only: a stack whose connections
 * should not all announce an address (their clients would join it) can
 * offer it to one. addr->port other than c's own: served and announced on
 * that port (as cfg.local_addrs). Joins to it are taken. Returns 0 (also
 * when it is announced already), -EINVAL, -ENOTCONN (c not an established
 * MPTCP connection), -EEXIST (c's own address), -ENOENT (withdrawn before
 * from c) or -ENOSPC (MPS_MAX_LOCAL_ADDRS on c).
 */
int mps_announce_addr(struct mps_conn *c, const struct mps_addr *addr);

/*
 * Withdraw local address addr (port ignored) from c: REMOVE_ADDR with its
 * ID goes to the peer, and every join subflow of c using it is reset. The
 * initial subflow's address (ID 0) may go only while a join works: the
 * initial subflow is reset and the joins carry the connection on. Returns
 * 0, -ENOENT if c has no ID for addr, -EBUSY for the initial subflow's
 * address with no working join, or -EINVAL.
 */
int mps_remove_addr(struct mps_conn *c, const struct mps_addr *addr);

/*
 * Ask the peer to use subflow idx (as mps_subflow_info() counts them) only
 * as a backup, or as a regular subflow again: MP_PRIO (RFC 8684 §3.3.8)
 * goes on that subflow's next pure ACK, and our scheduler treats it the same
 * way at once. A backup subflow (ours or the peer's wish) gets new data only
 * when no regular subflow works. Returns 0 (also when the flag is already
 * so), -EINVAL for no c, -ENOENT for no such subflow, -ENOTCONN if c is not
 * MPTCP or the subflow is not established (or has sent its FIN).
 */
int mps_set_backup(struct mps_conn *c, unsigned int idx, bool backup);

/* Send DATA_FIN after the queued data; receiving continues. Returns 0 or -ENOTCONN. */
int mps_shutdown(struct mps_conn *c);

/*
 * Give the handle back: as mps_shutdown(), and the stack frees the
 * connection once the close handshake ends (or at once if it already has
 * or was reset). c must not be used afterwards.
 */
void mps_close(struct mps_conn *c);

/*
 * Abort: MP_FASTCLOSE with an RST to the peer, and free the connection as
 * mps_close() does. c must not be used afterwards.
 */
void mps_abort(struct mps_conn *c);

/*
 * Feed one IP packet (IPv4 or IPv6 with TCP) received at now (microseconds).
 * The stack copies what it keeps. Returns 0, or a negative errno when the
 * packet was dropped; every drop is also counted (mps_stack_counters()).
 */
int mps_input(struct mps_stack *st, const uint8_t *pkt, size_t len, uint64_t now);

/* The link verified the packet's TCP checksum, or it never crossed a wire. */
#define MPS_IN_CSUM_OK 0x1u
/*
 * ... and the checksum field may not match the packet (a merged packet keeps
 * its first segment's, a partial one holds the pseudo-header's sum): it is
 * recomputed only if the trace hook is to see the packet.
 */
#define MPS_IN_CSUM_STALE 0x2u

/*
 * mps_input() for a packet whose link says more about it (MPS_IN_* flags):
 * with MPS_IN_CSUM_OK the stack does not verify the TCP checksum again, which
 * saves a pass over every byte received. pkt is written to only with
 * MPS_IN_CSUM_STALE and a trace hook. Returns and counts as mps_input();
 * -EINVAL for unknown flags, or MPS_IN_CSUM_STALE without MPS_IN_CSUM_OK.
 */
int mps_input_flags(struct mps_stack *st, uint8_t *pkt, size_t len, uint64_t now,
		    unsigned int flags);

/*
 * Run the timers due at now, then write the next packet to send into buf
 * (cap bytes; at least mss + 120 is always enough). Returns its length, 0 if
 * nothing is to be sent now, or -ENOSPC if cap is too small.
 */
int mps_output(struct mps_stack *st, uint64_t now, uint8_t *buf, size_t cap);

/* Earliest time at which mps_output() has timer work; MPS_TIME_NEVER if none. */
uint64_t mps_next_wakeup(const struct mps_stack *st);

/* Connection and subflow observability. */
enum mps_conn_state {
	MPS_CONN_CONNECTING,
	MPS_CONN_ESTABLISHED,
	MPS_CONN_CLOSING, /* our DATA_FIN sent, or the peer's received */
	MPS_CONN_CLOSED,
	MPS_CONN_RESET,
};

struct mps_subflow_info {
	uint8_t id; /* local address ID, 0 for the initial subflow */
	struct mps_addr local, remote;
	const char *state; /* RFC 9293 name, e.g. "ESTABLISHED"; static storage */
	uint32_t srtt_us, rttvar_us, rto_us;
	uint32_t cwnd, ssthresh; /* bytes */
	uint64_t bytes_sent, bytes_acked, bytes_received;
	uint32_t retransmits; /* segments sent again */
	bool backup;	      /* used as a backup: backup_local or backup_peer */
	bool backup_local;    /* we asked the peer (MP_JOIN flag B, mps_set_backup()) */
	bool backup_peer;     /* the peer asked us (its MP_JOIN flag B or MP_PRIO) */
	bool join;	      /* opened by MP_JOIN (idx > 0) */
	bool up;	   /* usable: established and, for a join we opened, its fourth ACK seen */
	uint8_t remote_id; /* the peer's address ID */
};

#define MPS_MAX_REMOTE_ADDRS 8 /* addresses learnt from ADD_ADDR, per connection */

struct mps_conn_info {
	uint32_t id; /* unique within the stack, never reused */
	enum mps_conn_state state;
	bool mptcp;		     /* MPTCP in use (false: never negotiated, or fell back) */
	bool fallback;		     /* negotiated MPTCP lost, or refused by the peer */
	bool checksum;		     /* DSS checksums in use */
	const char *fallback_reason; /* static storage, NULL if none */
	uint64_t local_key, remote_key;
	uint32_t local_token, remote_token;
	uint64_t bytes_sent, bytes_acked, bytes_received; /* data level */
	uint8_t nsubflows;     /* the initial one and every live join, up or in its handshake */
	uint8_t nremote_addrs; /* learnt from ADD_ADDR */
};

int mps_conn_info(const struct mps_conn *c, struct mps_conn_info *info);

/* Info on subflow idx (0 .. nsubflows-1). Returns 0 or -ENOENT. */
int mps_subflow_info(const struct mps_conn *c, unsigned int idx, struct mps_subflow_info *info);

/* Events, queued by the stack (at most 256; older ones dropped and counted). */
enum mps_event_type {
	MPS_EV_CONN_ESTABLISHED,
	MPS_EV_CONN_CLOSED,	/* close handshake done, both directions */
	MPS_EV_CONN_RESET,	/* reason: MPS_RST_* */
	MPS_EV_FALLBACK,	/* reason: MPS_FALLBACK_* */
	MPS_EV_SUBFLOW_UP,	/* subflow_id: its local ID */
	MPS_EV_SUBFLOW_DOWN,	/* reason: MPS_SF_DOWN_* (0: the initial subflow's own close) */
	MPS_EV_ADD_ADDR_IN,	/* the peer announced an address (HMAC verified); reason: its ID */
	MPS_EV_REMOVE_ADDR_IN,	/* the peer withdrew an address it announced; reason: its ID */
	MPS_EV_SUBFLOW_PRIO,	/* MP_PRIO changed a subflow's backup flag; reason: the new flag */
	MPS_EV_ADD_ADDR_OUT,	/* we announced an address (first transmission); reason: its ID */
	MPS_EV_ADD_ADDR_ECHOED, /* the peer echoed our announcement; reason: its ID */
	MPS_EV_ADD_ADDR_LOST, /* announcement never echoed after every retransmission; reason: ID */
	MPS_EV_REMOVE_ADDR_OUT, /* we withdrew an address; reason: its ID */
	MPS_EV_MP_FAIL,		/* MP_FAIL (RFC 8684 §3.7); reason: MPS_MP_FAIL_* */
	/*
	 * The path manager opens again a join of ours that failed (timeout or
	 * RST); subflow_id: the local ID, reason: the attempt (1..3).
	 */
	MPS_EV_JOIN_RETRY,
	/* A join still failing after every retry: given up; reason: its last MPS_SF_DOWN_*. */
	MPS_EV_JOIN_GIVEN_UP,
	/* mps_set_backup() changed our flag of a subflow; MP_PRIO goes out; reason: the flag. */
	MPS_EV_SUBFLOW_PRIO_OUT,
};

enum mps_fallback_reason {
	MPS_FALLBACK_SYNACK_NO_MPC = 1, /* the SYN/ACK lacked MP_CAPABLE */
	MPS_FALLBACK_SYN_NO_MPC,	/* the client's SYN lacked it */
	MPS_FALLBACK_ACK_NO_MPC,	/* the third ACK / first data lacked it */
	MPS_FALLBACK_NO_DSS,		/* the server's first segments carried no DSS */
	MPS_FALLBACK_MP_FAIL,		/* a DSS checksum failed: we sent MP_FAIL */
	MPS_FALLBACK_MP_FAIL_RCVD,	/* the peer sent MP_FAIL: we send the infinite mapping */
	MPS_FALLBACK_INFINITE_MAP,	/* the peer sent an infinite mapping unasked */
	MPS_FALLBACK_OPTS_LOST,		/* MPTCP options vanished from an established connection */
	MPS_FALLBACK_SIMULT_OPEN,	/* both SYNs crossed: plain TCP, as Linux does */
	MPS_FALLBACK_BAD_MAPPING,	/* in-order data arrived with a malformed DSS, no mapping */
};

/* What an MPS_EV_MP_FAIL reports. */
enum mps_mp_fail_reason {
	MPS_MP_FAIL_SENT = 1, /* our DSS checksum check failed; the fallback follows */
	MPS_MP_FAIL_RCVD,     /* the peer's failed; the fallback follows */
	MPS_MP_FAIL_IGNORED,  /* received after a join: no infinite mapping possible (as Linux) */
	MPS_MP_FAIL_INFINITE_SENT, /* our infinite mapping went out (answering the peer's) */
	MPS_MP_FAIL_INFINITE_RCVD, /* the peer's infinite mapping arrived */
	/*
	 * Our DSS checksum check failed on one of several subflows: that subflow
	 * (subflow_id) was reset with MP_TCPRST 6 and MP_FAIL; the others go on.
	 */
	MPS_MP_FAIL_SF_RESET,
};

enum mps_rst_reason {
	MPS_RST_PEER = 1, /* RST received */
	MPS_RST_FASTCLOSE,
	MPS_RST_TIMEOUT,   /* too many retransmissions */
	MPS_RST_LOCAL,	   /* mps_abort() */
	MPS_RST_CHECKSUM,  /* DSS checksum wrong or its presence not as negotiated */
	MPS_RST_OPTS_LOST, /* MPTCP options vanished where no fallback is allowed (RFC 8684 §3.7) */
	MPS_RST_BAD_MAPPING, /* data without a mapping where no fallback is allowed */
	MPS_RST_MP_FAIL,     /* our MP_FAIL went unanswered for 120 s */
};

/*
 * Why a subflow went away. The initial subflow goes with TIMEOUT, RST,
 * REMOVED or STALE only while a join carries the connection on.
 */
enum mps_sf_down_reason {
	MPS_SF_DOWN_RST = 1,  /* RST from the peer (a refused join included) */
	MPS_SF_DOWN_HMAC,     /* the peer's MP_JOIN HMAC did not verify */
	MPS_SF_DOWN_NO_JOIN,  /* the SYN/ACK carried no MP_JOIN */
	MPS_SF_DOWN_TIMEOUT,  /* handshake or FIN retransmissions exhausted */
	MPS_SF_DOWN_CLOSED,   /* FIN exchange done */
	MPS_SF_DOWN_CONN,     /* the connection was reset */
	MPS_SF_DOWN_DATA,     /* data on a join before its fourth ACK, or after a fallback: reset */
	MPS_SF_DOWN_REMOVED,  /* its address was withdrawn (REMOVE_ADDR either way) */
	MPS_SF_DOWN_STALE,    /* it held back more than half the send buffer of data the peer
				already has through other subflows: reset (MP_TCPRST 5) */
	MPS_SF_DOWN_CHECKSUM, /* a DSS checksum on it failed while other subflows work: reset
				 with MP_TCPRST 6 and MP_FAIL (RFC 8684 §3.7) */
};

struct mps_event {
	enum mps_event_type type;
	uint32_t conn_id;
	uint8_t subflow_id;
	int reason;
	uint64_t time; /* the "now" at which it happened */
};

/* Pop the oldest event into *ev. Returns 0, or -EAGAIN if there is none. */
int mps_next_event(struct mps_stack *st, struct mps_event *ev);

/* Id of a connection (as in events and mps_conn_info). */
uint32_t mps_conn_id(const struct mps_conn *c);

/* Counters of everything dropped or rejected, by name; see mps_stack_counter_name(). */
enum mps_counter {
	MPS_CNT_IN_BAD_IP,	  /* mps_seg_parse failed */
	MPS_CNT_IN_BAD_CSUM,	  /* TCP checksum wrong */
	MPS_CNT_IN_BAD_OPTS,	  /* malformed TCP option list (still processed) */
	MPS_CNT_IN_BAD_MPTCP,	  /* malformed MPTCP option (ignored, per option) */
	MPS_CNT_IN_NO_CONN,	  /* no connection or listener: answered with RST */
	MPS_CNT_IN_OUT_OF_WINDOW, /* sequence check failed: ACK sent */
	MPS_CNT_IN_PAWS,	  /* timestamp older than the last one (RFC 7323 §5): ACK sent */
	MPS_CNT_IN_OUT_OF_ORDER,  /* above rcv_nxt: queued (or dropped if no room), dup ACK sent */
	MPS_CNT_IN_BAD_ACK,	  /* ACK of data never sent */
	MPS_CNT_IN_RCVBUF_FULL,	  /* data beyond the receive buffer */
	MPS_CNT_IN_BAD_MAPPING,	  /* DSS mapping disagreeing with the stream */
	MPS_CNT_IN_DSS_CSUM,	  /* DSS checksum wrong, missing or unexpected: reset */
	MPS_CNT_IN_ACCEPT_FULL,	  /* SYN dropped: connection table full or no memory */
	MPS_CNT_IN_JOIN_REFUSED,  /* MP_JOIN SYN for a connection not fully established, fallen
				     back, or to a port it does not use: RST */
	MPS_CNT_IN_JOIN_TOKEN,	  /* MP_JOIN SYN with an unknown token: RST */
	MPS_CNT_IN_JOIN_HMAC,	  /* MP_JOIN SYN/ACK or third ACK whose HMAC is wrong or missing */
	MPS_CNT_IN_JOIN_LIMIT,	  /* MP_JOIN SYN beyond cfg.max_subflows: RST */
	MPS_CNT_IN_JOIN_DATA,	  /* data on a join before it is up, or after a fallback: reset */
	MPS_CNT_IN_ADD_ADDR_HMAC, /* ADD_ADDR with a wrong HMAC: ignored */
	MPS_CNT_IN_ADD_ADDR_FULL, /* ADD_ADDR beyond MPS_MAX_REMOTE_ADDRS: echoed, not kept */
	MPS_CNT_OUT_RST_DROPPED,  /* RST queue full */
	MPS_CNT_EVENTS_DROPPED,
	MPS_CNT_RETRANS_TIMEOUT, /* RTO expiries */
	MPS_CNT_FAST_RETRANS,
	MPS_CNT_REINJECTED,	  /* segments sent again on another subflow than the first one */
	MPS_CNT_PAWS_EXPIRED,	  /* TS.Recent older than 24 days, not trusted (RFC 7323 §5.5) */
	MPS_CNT_IN_MP_FAIL,	  /* MP_FAIL received */
	MPS_CNT_OUT_MP_FAIL,	  /* MP_FAIL sent (each transmission) */
	MPS_CNT_IN_INFINITE_MAP,  /* infinite mapping received */
	MPS_CNT_OUT_INFINITE_MAP, /* infinite mapping sent */
	MPS_CNT_IN_NO_DSS,	  /* MPTCP options gone mid-connection: fallback or reset */
	MPS_CNT_SIMULT_OPEN,	  /* simultaneous open (crossing SYNs) */
	MPS_CNT_IN_FASTCLOSE_KEY, /* MP_FASTCLOSE whose key is not ours: ignored */
	MPS_CNT_JOIN_RETRY,	  /* failed joins opened again by the path manager */
	MPS_CNT_DATA_RTO, /* data-level retransmission timer expiries: data or DATA_FIN sent again */
	MPS_CNT_SNDBUF_GROWN, /* send buffers grown by autotuning (each doubling or more) */
	MPS_CNT_LOST_RETRANS, /* SACK recovery: retransmissions found lost, holes resent again */
	MPS_CNT_RCVBUF_GROWN, /* receive buffers grown by autotuning */
	MPS_CNT__COUNT
};

uint64_t mps_stack_counter(const struct mps_stack *st, enum mps_counter which);
const char *mps_stack_counter_name(enum mps_counter which);

/* Per-reason counts of rejected MPTCP options (enum mps_opt_err in mps_opt.h). */
uint64_t mps_stack_opt_errors(const struct mps_stack *st, unsigned int opt_err);

/*
 * A link adapter: how packets reach the wire. ctx belongs to the adapter.
 * send takes a whole IP packet (not kept after return) and returns 0 or a
 * negative errno; recv writes the next received packet into buf and
 * returns its length, 0 if none is waiting, or a negative errno;
 * next_ready gives the time of the next packet known to arrive
 * (MPS_TIME_NEVER if unknown, as for a real device polled by fd).
 */
struct mps_link_ops {
	const char *name;
	int (*send)(void *ctx, const uint8_t *pkt, size_t len, uint64_t now);
	int (*recv)(void *ctx, uint8_t *buf, size_t cap, uint64_t now);
	uint64_t (*next_ready)(void *ctx);
	/*
	 * Optional, for links that cut large packets into segments themselves
	 * (TUN with GSO offload): gso_max gives the most TCP payload the link
	 * takes in one packet now (0: one MSS, as without the hook), and
	 * send_gso sends a packet whose payload the link must cut into pieces
	 * of seg_size bytes, each with the same headers and options (seg_size
	 * 0: the packet goes as it is). Both or neither.
	 */
	uint32_t (*gso_max)(void *ctx);
	int (*send_gso)(void *ctx, const uint8_t *pkt, size_t len, uint32_t seg_size, uint64_t now);
	/*
	 * Optional: the MPS_IN_* flags of the packet recv() returned last, for
	 * mps_input_flags() (NULL: 0, every checksum verified by the stack).
	 */
	unsigned int (*recv_flags)(void *ctx);
};

/*
 * mps_output() for a link that segments: new data may go as one packet of up
 * to gso_max bytes of TCP payload (the packet's length is still capped by
 * cap and by 64 KiB). Every segment the link cuts from it repeats its TCP and
 * MPTCP options: the DSS mapping covers the whole packet (its checksum too)
 * and the timestamp is the same. *seg_size is the subflow's MSS when the
 * payload is larger than that, else 0. Retransmissions stay one MSS.
 */
int mps_output_gso(struct mps_stack *st, uint64_t now, uint8_t *buf, size_t cap, uint32_t gso_max,
		   uint32_t *seg_size);

/*
 * One round between st and a link: deliver the packets the link has for
 * now, then hand the link what the stack wants to send, at most 1024 each
 * way. Returns the earliest time the caller must call again (stack timers
 * or link arrivals; now itself if packets were left). *err is 0, or the first error a link callback returned; a
 * packet the link refused is dropped as if lost on the wire.
 */
uint64_t mps_pump(struct mps_stack *st, const struct mps_link_ops *ops, void *ctx, uint64_t now,
		  int *err);

#endif
