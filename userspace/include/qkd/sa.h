/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libqkd: ESP SA bindings (QKD_CMD_SA_*): an SA pair keyed and re-keyed
 * inside the kernel from a key stream. See Documentation/ipsec.md.
 */
#ifndef QKD_SA_H
#define QKD_SA_H

#include <stdbool.h>
#include <stdint.h>

#include <qkd/nl.h>

/* What SA_NEW sends; fields whose have_* is false are left to the kernel. */
struct qkd_sa_params {
	uint8_t stream_id[QKD_STREAM_ID_LEN];
	uint8_t addr_len;		/* 4 (IPv4) or 16 (IPv6) */
	uint8_t local[16];
	uint8_t remote[16];
	uint8_t mode;			/* enum qkd_sa_mode, 0: default */
	uint8_t alg;			/* enum qkd_sa_alg, 0: default */
	uint8_t dir;			/* enum qkd_sa_dir, 0: default */
	uint32_t key_bits;		/* 0: default */
	bool have_reqid, have_if_id, have_mark, have_mark_mask, have_first;
	uint32_t reqid;
	uint32_t if_id;
	uint32_t mark;
	uint32_t mark_mask;
	uint32_t rekey_seconds;		/* 0: not sent */
	uint64_t rekey_bytes;		/* 0: not sent */
	uint64_t rekey_packets;		/* 0: not sent */
	uint64_t first_index;
	/* QKD_A_SA_POLICY: the kernel installs the XFRM policies too. */
	bool policy;
	uint8_t sel_local_len, sel_remote_len;	/* 0: the SA's address */
	uint8_t sel_local[16], sel_remote[16];
	bool have_sel_local_prefix, have_sel_remote_prefix, have_priority;
	uint8_t sel_local_prefix, sel_remote_prefix;
	uint32_t priority;
};

/* A binding as SA_GET reports it. */
struct qkd_sa_info {
	uint8_t stream_id[QKD_STREAM_ID_LEN];
	uint32_t link_id;
	uint8_t addr_len;
	uint8_t local[16];
	uint8_t remote[16];
	uint8_t mode, alg, dir, state;
	uint8_t reason;		/* enum qkd_sa_reason, 0: none (ok) */
	uint32_t key_bits, reqid, if_id, mark, mark_mask;
	uint32_t rekey_seconds;
	uint64_t rekey_bytes, rekey_packets;
	uint64_t first_index;
	uint64_t rekeys, failures;
	bool has_out, has_in;
	uint64_t out_gen, in_gen;
	uint32_t out_spi, in_spi;
	uint64_t out_bytes, out_packets, in_bytes, in_packets;
	bool policy;			/* the binding's policies are installed */
	uint8_t sel_len;		/* 4 or 16 */
	uint8_t sel_local[16], sel_remote[16];
	uint8_t sel_local_prefix, sel_remote_prefix;
	uint32_t priority;
};

int qkd_sa_add(struct qkd_nl *nl, const struct qkd_sa_params *p,
	       struct qkd_sa_info *out);
/*
 * Unbind: the SAs go, and the binding's policies become block policies
 * (the traffic stays blocked until an administrator removes them).
 */
int qkd_sa_del(struct qkd_nl *nl, const uint8_t stream_id[QKD_STREAM_ID_LEN]);
/* Unbind and delete the binding's policies: that traffic flows in clear. */
int qkd_sa_del_unprotect(struct qkd_nl *nl,
			 const uint8_t stream_id[QKD_STREAM_ID_LEN]);
/* Re-key the outbound SA now (QKD_CMD_SA_REKEY); @out gets the binding. */
int qkd_sa_rekey(struct qkd_nl *nl, const uint8_t stream_id[QKD_STREAM_ID_LEN],
		 struct qkd_sa_info *out);
/*
 * The same with QKD_A_SA_FORCE: even with no traffic on the last
 * QKD_SA_LOOKAHEAD generations, which leaves the peer behind for good
 * (the binding is then closed, reason peer-behind). For benchmarks.
 */
int qkd_sa_rekey_force(struct qkd_nl *nl, const uint8_t stream_id[QKD_STREAM_ID_LEN],
		       struct qkd_sa_info *out);
int qkd_sa_get(struct qkd_nl *nl, const uint8_t stream_id[QKD_STREAM_ID_LEN],
	       struct qkd_sa_info *out);
/* Calls @cb for each binding; returns the number of bindings or -errno. */
int qkd_sa_dump(struct qkd_nl *nl,
		int (*cb)(const struct qkd_sa_info *sa, void *arg), void *arg);
int qkd_sa_parse(struct nlattr **tb, struct qkd_sa_info *out);

/* Names of enum values ("tunnel", "rfc4106(gcm(aes))", ...); "?" if unknown. */
const char *qkd_sa_mode_name(uint8_t mode);
const char *qkd_sa_alg_name(uint8_t alg);
const char *qkd_sa_dir_name(uint8_t dir);
const char *qkd_sa_state_name(uint8_t state);
const char *qkd_sa_reason_name(uint8_t reason);
/* Reverse; 0 if unknown. Algorithms also by short name: aes-gcm, chacha20-poly1305. */
uint8_t qkd_sa_mode_parse(const char *s);
uint8_t qkd_sa_alg_parse(const char *s);
uint8_t qkd_sa_dir_parse(const char *s);

#endif /* QKD_SA_H */
