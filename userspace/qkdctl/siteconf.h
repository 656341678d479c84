/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * qkdctl up/down: the site configuration file (/etc/qkd/NAME.conf,
 * qkd.conf(5)). Parsing, and the file compared with what the kernel
 * reports of a link, stream or binding that exists: no netlink, no files
 * but the one read.
 */
#ifndef QKDCTL_SITECONF_H
#define QKDCTL_SITECONF_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include <linux/qkd.h>
#include <qkd/nl.h>
#include <qkd/sa.h>

#define SITE_MAX_STREAMS	16
#define SITE_MAX_SAS		16
#define SITE_MAX_KV		64	/* [daemon] lines */
#define SITE_MAX_SA_KV		20	/* [sa] keywords (18 exist, each once) */
#define SITE_VAL_MAX		256
#define SITE_FILE_MAX		(64u << 10)

/* One "key = value" line ([daemon], [sa]); val[0] == 0 and !has_val: a flag. */
struct site_kv {
	unsigned int line;
	bool has_val;
	char key[40];
	char val[SITE_VAL_MAX];
};

struct site_stream {
	unsigned int line;
	uint8_t id[16];
	char id_str[37];
	uint32_t key_size;
	uint32_t max_keys, low_water;
	bool have_max_keys, have_low_water;
};

struct site_sa {
	unsigned int line;
	uint8_t id[16];
	char id_str[37];
	bool remove_protection;	/* on-down = remove-protection */
	unsigned int nkv;
	struct site_kv kv[SITE_MAX_SA_KV];
};

struct site_conf {
	char path[512];
	char name[QKD_LINK_NAME_MAX];
	/* [link] */
	unsigned int link_line;
	uint8_t role;		/* QKD_LINK_ROLE_* */
	bool have_role;
	uint32_t id;		/* 0: the kernel picks */
	char peer[QKD_PEER_NAME_MAX];
	bool state_down;	/* state = down: leave the link down */
	/* [stream UUID] */
	unsigned int nstreams;
	struct site_stream streams[SITE_MAX_STREAMS];
	/* [daemon]: qkdd's options, checked by qkdd itself */
	bool have_daemon;
	unsigned int daemon_line;
	unsigned int daemon_stream;	/* index in streams[] qkdd fills */
	unsigned int ndaemon;
	struct site_kv daemon[SITE_MAX_KV];
	/* [sa UUID] */
	unsigned int nsas;
	struct site_sa sas[SITE_MAX_SAS];
};

/*
 * Parse @text (NUL-terminated) as the configuration of link @name read
 * from @path. 0, or -EINVAL with "PATH:LINE: reason" (or "PATH: reason")
 * in @err.
 */
int site_parse(struct site_conf *c, const char *name, const char *path,
	       const char *text, char *err, size_t errlen);

/* Read and parse @path: as site_parse(), or -errno with "PATH: reason". */
int site_load(struct site_conf *c, const char *name, const char *path,
	      char *err, size_t errlen);

/*
 * The file against what exists (qkdctl up adopts what matches, and never
 * deletes keys to make what the file says): 0 if @have is what the file
 * asks for, else 1 with the first field that differs in @why ("key-size:
 * 64 in the file, 32 in the kernel"). A [stream] field the file leaves out
 * is the kernel's default at creation: low-water 0 is compared, max-keys
 * (a module parameter at that time) is not. Link: role, id if given, peer.
 */
int site_link_diff(const struct site_conf *c, const struct qkd_link *have,
		   char *why, size_t len);
int site_stream_diff(const struct site_stream *st,
		     const struct qkd_stream *have, char *why, size_t len);
/*
 * [sa] (parsed by sa add's parser into @p) against a binding: addresses,
 * mode, algorithm, key bits, direction, reqid, if-id, mark and mask,
 * first-index, re-key limits, policy and its priority, with the kernel's
 * defaults for what the section leaves out (transport, AES-GCM, 256 bits,
 * both directions, 0, re-key every 3600 s), and the policy selectors the
 * section gives.
 */
int site_sa_diff(const struct qkd_sa_params *p, const struct qkd_sa_info *have,
		 char *why, size_t len);

#endif
