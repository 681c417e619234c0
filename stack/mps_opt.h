/*
 * MPTCP option codec and TCP option walker: pure functions over byte
 * buffers. They keep no state, allocate nothing and never read past the
 * length they are given. Connection-level checks (is a checksum negotiated,
 * does a key match ours) belong to the caller; this module only decides
 * whether an option is well formed for the segment that carries it, and if
 * not, says exactly why so that the caller can count it.
 */
#ifndef MPS_OPT_H
#define MPS_OPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "prot/mptcp.h"
#include "prot/tcp.h"

/*
 * Why an option (or option list) was rejected. Each value is one malformed
 * case, so a caller can keep one counter per value (MPS_OPT_E_COUNT slots).
 */
enum mps_opt_err {
	MPS_OPT_OK = 0,
	/* TCP option list (mps_tcpopt_walk) */
	MPS_OPT_E_TCP_LEN_SHORT, /* option length byte below 2 */
	MPS_OPT_E_TCP_OVERRUN,	 /* option runs past the option space */
	MPS_OPT_E_TCP_MSS_LEN,
	MPS_OPT_E_TCP_WS_LEN,
	MPS_OPT_E_TCP_SACK_PERM_LEN,
	MPS_OPT_E_TCP_SACK_LEN, /* not 2 + 8n with n = 1..4 */
	MPS_OPT_E_TCP_TS_LEN,
	MPS_OPT_E_TCP_DUP,	      /* a single-instance option appears twice */
	MPS_OPT_E_TCP_MPTCP_TOO_MANY, /* more MPTCP options than one segment may hold */
	/* MPTCP option (mps_opt_parse) */
	MPS_OPT_E_SHORT,    /* fewer than 3 bytes: no subtype */
	MPS_OPT_E_KIND,	    /* not option kind 30 */
	MPS_OPT_E_LEN_BYTE, /* length byte disagrees with the bytes given */
	MPS_OPT_E_SUBTYPE,  /* subtype not assigned by RFC 8684 */
	MPS_OPT_E_MPC_LEN,  /* length not the one this segment type allows */
	MPS_OPT_E_MPC_VERSION,
	MPS_OPT_E_MPC_FLAG_B,
	MPS_OPT_E_MPC_NO_H,
	MPS_OPT_E_MPC_FLAGS_DG,
	MPS_OPT_E_MPC_ZERO_KEY,
	MPS_OPT_E_JOIN_LEN,
	MPS_OPT_E_DSS_LEN,	  /* length inconsistent with the flags */
	MPS_OPT_E_DSS_FLAGS,	  /* a without A, or m without M */
	MPS_OPT_E_DSS_FIN_NO_MAP, /* F without a mapping */
	MPS_OPT_E_ADD_ADDR_LEN,	  /* not one of the eight ADD_ADDR lengths */
	MPS_OPT_E_ADD_ADDR_ECHO,  /* E flag disagrees with HMAC presence */
	MPS_OPT_E_RM_ADDR_LEN,	  /* zero or more than 8 address IDs */
	MPS_OPT_E_PRIO_LEN,
	MPS_OPT_E_FAIL_LEN,
	MPS_OPT_E_FASTCLOSE_LEN,
	MPS_OPT_E_TCPRST_LEN,
	MPS_OPT_E_TCPRST_NO_RST, /* MP_TCPRST on a segment without RST */
	MPS_OPT_E_COUNT
};

/* Short stable name of an error, for counters and logs ("dss_len"). */
const char *mps_opt_err_name(enum mps_opt_err err);

/*
 * What the codec needs to know about the carrying segment: the TCP flags
 * byte, plus MPS_SEG_DATA when the segment has payload (that alone tells
 * the MP_CAPABLE third ACK from its form on the first data segment).
 */
#define MPS_SEG_DATA 0x100

enum mps_mpc_form {
	MPS_MPC_SYN,	/* 4: no key */
	MPS_MPC_SYNACK, /* 12: responder key */
	MPS_MPC_ACK,	/* 20: both keys */
	MPS_MPC_DATA,	/* 22 or 24: both keys, data-level length [, checksum] */
};

enum mps_join_form {
	MPS_JOIN_SYN,	 /* 12: token, nonce */
	MPS_JOIN_SYNACK, /* 16: truncated HMAC, nonce */
	MPS_JOIN_ACK,	 /* 24: 160-bit HMAC */
};

struct mps_opt_mpc {
	enum mps_mpc_form form;
	uint8_t version;
	uint8_t flags;	   /* MPS_MPC_FLAG_* as on the wire */
	uint64_t snd_key;  /* SYNACK, ACK, DATA */
	uint64_t rcv_key;  /* ACK, DATA */
	uint16_t data_len; /* DATA */
	bool has_csum;	   /* DATA: 24-byte form */
	uint16_t csum;
};

struct mps_opt_join {
	enum mps_join_form form;
	bool backup;			 /* SYN, SYNACK */
	uint8_t addr_id;		 /* SYN, SYNACK */
	uint32_t token;			 /* SYN */
	uint32_t nonce;			 /* SYN, SYNACK */
	uint64_t hmac64;		 /* SYNACK: leftmost 64 bits */
	uint8_t hmac[MPS_JOIN_HMAC_LEN]; /* ACK */
};

struct mps_opt_dss {
	uint8_t flags;	   /* MPS_DSS_FLAG_*; decides which fields below are present */
	uint64_t data_ack; /* 32 or 64 bits as on the wire (flag a); the caller expands */
	uint64_t dsn;	   /* 32 or 64 bits as on the wire (flag m) */
	uint32_t ssn;	   /* relative subflow sequence number */
	uint16_t data_len; /* 0 with a mapping is the infinite mapping */
	bool has_csum;
	uint16_t csum;
};

struct mps_opt_add_addr {
	bool echo;
	uint8_t addr_id;
	uint8_t family;	  /* 4 or 6 */
	uint8_t addr[16]; /* first 4 bytes for IPv4, network order */
	bool has_port;
	uint16_t port;
	uint64_t hmac; /* present iff !echo: rightmost 64 bits */
};

struct mps_opt_rm_addr {
	uint8_t n;
	uint8_t ids[MPS_RM_ADDR_MAX];
};

struct mps_opt_tcprst {
	uint8_t flags; /* U V W T, MPS_TCPRST_FLAGS */
	uint8_t reason;
};

struct mps_opt_exp {
	uint8_t len; /* bytes in data: the option from byte 2 on */
	uint8_t data[MPS_MPTCP_OPT_MAX - 2];
};

/* One parsed MPTCP option; subtype selects the member of the union. */
struct mps_opt {
	uint8_t subtype; /* MPS_MPTCP_SUB_* */
	uint8_t len;	 /* wire length, set by mps_opt_parse and mps_opt_build */
	union {
		struct mps_opt_mpc mpc;
		struct mps_opt_join join;
		struct mps_opt_dss dss;
		struct mps_opt_add_addr add_addr;
		struct mps_opt_rm_addr rm_addr;
		bool prio_backup;
		uint64_t fail_dsn;
		uint64_t fastclose_key; /* the receiver's key */
		struct mps_opt_tcprst tcprst;
		struct mps_opt_exp exp;
	};
};

/*
 * Parse one MPTCP option. opt points at the kind byte and len is the
 * option's length as the walker found it. seg is the carrying segment's TCP
 * flags, ORed with MPS_SEG_DATA if it has payload. Returns 0 and fills *out,
 * or -EBADMSG for a malformed option and -EOPNOTSUPP for an unassigned
 * subtype; either way *err names the reason (MPS_OPT_OK on success). *out is
 * unspecified on failure. Nothing is allocated.
 */
int mps_opt_parse(const uint8_t *opt, size_t len, unsigned int seg, struct mps_opt *out,
		  enum mps_opt_err *err);

/*
 * Write the option o into buf (at most cap bytes), kind and length
 * included, no padding. Returns the number of bytes written, -EINVAL if o
 * cannot be encoded (unknown subtype or form, too many IDs, a DSS with
 * inconsistent flags) or -ENOSPC if it does not fit. Sets o->len on success.
 */
int mps_opt_build(struct mps_opt *o, uint8_t *buf, size_t cap);

/* Length mps_opt_build would write for o, or -EINVAL. */
int mps_opt_len(const struct mps_opt *o);

static inline bool mps_dss_is_infinite(const struct mps_opt_dss *d)
{
	return (d->flags & MPS_DSS_FLAG_M) && d->data_len == 0;
}

/* Result of walking a TCP option list. */
#define MPS_TCPOPTS_MPTCP_MAX 4

#define MPS_TCPOPTS_MSS	      0x01
#define MPS_TCPOPTS_WS	      0x02
#define MPS_TCPOPTS_SACK_PERM 0x04
#define MPS_TCPOPTS_SACK      0x08
#define MPS_TCPOPTS_TS	      0x10

struct mps_sack_blk {
	uint32_t left;
	uint32_t right;
};

struct mps_tcpopts {
	unsigned int present; /* MPS_TCPOPTS_* */
	uint16_t mss;
	uint8_t ws; /* as sent; the caller clamps to MPS_TCP_WS_MAX */
	uint32_t ts_val;
	uint32_t ts_ecr;
	uint8_t nsack;
	struct mps_sack_blk sack[MPS_TCP_SACK_MAX];
	uint8_t nmptcp;
	struct {
		uint8_t off; /* from the start of the option list */
		uint8_t len;
	} mptcp[MPS_TCPOPTS_MPTCP_MAX];
	uint8_t nunknown;     /* options of other kinds, skipped */
	uint8_t nerr;	      /* malformed options seen */
	enum mps_opt_err err; /* the first of them */
};

/*
 * Walk the TCP option list opts[0..len) (len at most MPS_TCP_OPT_MAX) and
 * fill *out. The walk stops at EOL, at the end, or at a length byte that
 * makes the rest unreadable. An option of known kind but wrong length is
 * skipped and counted; what was read before and after stays valid. Returns 0
 * for a clean list, -EBADMSG if out->nerr > 0, -EINVAL if len is too big.
 */
int mps_tcpopt_walk(const uint8_t *opts, size_t len, struct mps_tcpopts *out);

#endif
