/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * qkdctl up/down: the site configuration file (/etc/qkd/NAME.conf,
 * qkd.conf(5)). Parsing only: no netlink, no files but the one read.
 */
#ifndef QKDCTL_SITECONF_H
#define QKDCTL_SITECONF_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include <linux/qkd.h>

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

#endif
