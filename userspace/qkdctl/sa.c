// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkdctl sa: add, del, show ESP SA bindings (SAs keyed in the kernel from a
 * key stream, Documentation/ipsec.md).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include <qkd/sa.h>

#include "qkdctl.h"

static void addr_format(const struct qkd_sa_info *sa, const uint8_t *a,
			char *out, size_t len)
{
	if (!inet_ntop(sa->addr_len == 4 ? AF_INET : AF_INET6, a, out,
		       (socklen_t)len))
		snprintf(out, len, "?");
}

/* A policy selector end, "ADDR/LEN"; "-" when the binding has none. */
static void sel_format(const struct qkd_sa_info *sa, bool local, char *out,
		       size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (!sa->policy || !sa->sel_len ||
	    !inet_ntop(sa->sel_len == 4 ? AF_INET : AF_INET6,
		       local ? sa->sel_local : sa->sel_remote, a, sizeof(a))) {
		snprintf(out, len, "-");
		return;
	}
	snprintf(out, len, "%s/%u", a,
		 local ? sa->sel_local_prefix : sa->sel_remote_prefix);
}

#define SEL_STR_LEN (INET6_ADDRSTRLEN + 4)

static void print_sa(const struct qkd_sa_info *sa)
{
	char id[QKD_UUID_STR_LEN], l[INET6_ADDRSTRLEN], r[INET6_ADDRSTRLEN];
	char sl[SEL_STR_LEN], sr[SEL_STR_LEN];
	const char *lname = link_name_of(sa->link_id);

	qkd_uuid_format(sa->stream_id, id);
	addr_format(sa, sa->local, l, sizeof(l));
	addr_format(sa, sa->remote, r, sizeof(r));
	sel_format(sa, true, sl, sizeof(sl));
	sel_format(sa, false, sr, sizeof(sr));
	switch (opts.out) {
	case OUT_JSON:
		json_open('{');
		json_str("stream", id);
		json_u64("link_id", sa->link_id);
		if (lname)
			json_str("link", lname);
		json_str("local", l);
		json_str("remote", r);
		json_str("mode", qkd_sa_mode_name(sa->mode));
		json_str("alg", qkd_sa_alg_name(sa->alg));
		json_u64("key_bits", sa->key_bits);
		json_str("dir", qkd_sa_dir_name(sa->dir));
		json_u64("reqid", sa->reqid);
		json_u64("if_id", sa->if_id);
		json_u64("mark", sa->mark);
		json_u64("mark_mask", sa->mark_mask);
		json_u64("rekey_seconds", sa->rekey_seconds);
		json_u64("rekey_bytes", sa->rekey_bytes);
		json_u64("rekey_packets", sa->rekey_packets);
		json_u64("first_index", sa->first_index);
		json_str("state", qkd_sa_state_name(sa->state));
		if (sa->reason)
			json_str("reason", qkd_sa_reason_name(sa->reason));
		json_u64("rekeys", sa->rekeys);
		json_u64("rekey_failures", sa->failures);
		json_bool("policy", sa->policy);
		if (sa->policy) {
			json_str("policy_local", sl);
			json_str("policy_remote", sr);
			json_u64("policy_priority", sa->priority);
		}
		if (sa->has_out) {
			json_u64("out_generation", sa->out_gen);
			json_u64("out_spi", sa->out_spi);
			json_u64("out_bytes", sa->out_bytes);
			json_u64("out_packets", sa->out_packets);
		}
		if (sa->has_in) {
			json_u64("in_generation", sa->in_gen);
			json_u64("in_spi", sa->in_spi);
			json_u64("in_bytes", sa->in_bytes);
			json_u64("in_packets", sa->in_packets);
		}
		json_close('}');
		break;
	case OUT_TAB:
		/* Absent directions print "-" so that columns stay put. */
		printf("%s\t%u\t%s\t%s\t%s\t%s\t%u\t%s\t%u\t%s\t%llu\t%llu",
		       id, sa->link_id, l, r, qkd_sa_mode_name(sa->mode),
		       qkd_sa_alg_name(sa->alg), sa->key_bits,
		       qkd_sa_dir_name(sa->dir), sa->reqid,
		       qkd_sa_state_name(sa->state),
		       (unsigned long long)sa->rekeys,
		       (unsigned long long)sa->failures);
		if (sa->has_out)
			printf("\t%llu\t0x%08x", (unsigned long long)sa->out_gen,
			       sa->out_spi);
		else
			printf("\t-\t-");
		if (sa->has_in)
			printf("\t%llu\t0x%08x", (unsigned long long)sa->in_gen,
			       sa->in_spi);
		else
			printf("\t-\t-");
		if (sa->policy)
			printf("\t%s\t%s\t%u", sl, sr, sa->priority);
		else
			printf("\t-\t-\t-");
		putchar('\n');
		break;
	default:
		printf("%s: link %s (%u) %s -> %s %s %s key-bits %u dir %s reqid %u\n",
		       id, lname ? lname : "?", sa->link_id, l, r,
		       qkd_sa_mode_name(sa->mode), qkd_sa_alg_name(sa->alg),
		       sa->key_bits, qkd_sa_dir_name(sa->dir), sa->reqid);
		printf("    state %s", qkd_sa_state_name(sa->state));
		if (sa->reason)
			printf(" (%s)", qkd_sa_reason_name(sa->reason));
		printf(" rekeys %llu failures %llu first-index %llu",
		       (unsigned long long)sa->rekeys,
		       (unsigned long long)sa->failures,
		       (unsigned long long)sa->first_index);
		if (sa->rekey_seconds)
			printf(" rekey-seconds %u", sa->rekey_seconds);
		if (sa->rekey_bytes)
			printf(" rekey-bytes %llu",
			       (unsigned long long)sa->rekey_bytes);
		if (sa->rekey_packets)
			printf(" rekey-packets %llu",
			       (unsigned long long)sa->rekey_packets);
		if (sa->mark_mask)
			printf(" mark 0x%x/0x%x", sa->mark, sa->mark_mask);
		if (sa->if_id)
			printf(" if-id %u", sa->if_id);
		putchar('\n');
		if (sa->policy)
			printf("    policy %s <-> %s priority %u\n", sl, sr,
			       sa->priority);
		if (sa->has_out)
			printf("    out generation %llu spi 0x%08x bytes %llu packets %llu\n",
			       (unsigned long long)sa->out_gen, sa->out_spi,
			       (unsigned long long)sa->out_bytes,
			       (unsigned long long)sa->out_packets);
		if (sa->has_in)
			printf("    in generation %llu spi 0x%08x bytes %llu packets %llu\n",
			       (unsigned long long)sa->in_gen, sa->in_spi,
			       (unsigned long long)sa->in_bytes,
			       (unsigned long long)sa->in_packets);
	}
}

static uint8_t arg_addr(const char *what, const char *s, uint8_t out[16])
{
	if (inet_pton(AF_INET, s, out) == 1)
		return 4;
	if (inet_pton(AF_INET6, s, out) == 1)
		return 16;
	usage_error("%s \"%s\": not an IPv4 or IPv6 address", what, s);
}

/* After add and rekey: silent in human mode, the binding for scripts. */
static void print_changed(const struct qkd_sa_info *sa)
{
	if (opts.out == OUT_HUMAN)
		return;
	link_name_of(0);
	print_sa(sa);
	if (opts.out == OUT_JSON)
		json_end();
}

/* NET[/LEN]: a selector end; LEN defaults to the whole address. */
static void arg_sel(const char *what, const char *s, uint8_t *len,
		    uint8_t addr[16], uint8_t *prefix, bool *have_prefix)
{
	char buf[INET6_ADDRSTRLEN + 8];
	char *slash;

	if (strlen(s) >= sizeof(buf))
		usage_error("%s \"%s\": not ADDR or ADDR/LEN", what, s);
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	*len = arg_addr(what, buf, addr);
	if (slash) {
		*prefix = (uint8_t)arg_u64(what, slash + 1, *len * 8u);
		*have_prefix = true;
	}
}

static uint8_t arg_enum(const char *what, const char *s,
			uint8_t (*parse)(const char *), const char *choices)
{
	uint8_t v = parse(s);

	if (!v)
		usage_error("%s \"%s\": expected %s", what, s, choices);
	return v;
}

void sa_params_parse(int argc, char **argv, struct qkd_sa_params *out)
{
	struct qkd_sa_params p;
	uint8_t rlen = 0;
	int i = 0;

	memset(&p, 0, sizeof(p));
	if (argc < 1)
		usage_error("sa add: missing stream UUID");
	arg_uuid("stream id", argv[i++], p.stream_id);
	while (i < argc) {
		const char *kw = argv[i];

		if (!strcmp(kw, "local")) {
			p.addr_len = arg_addr("local", arg_next(argc, argv, &i),
					      p.local);
		} else if (!strcmp(kw, "remote")) {
			rlen = arg_addr("remote", arg_next(argc, argv, &i),
					p.remote);
		} else if (!strcmp(kw, "mode")) {
			p.mode = arg_enum("mode", arg_next(argc, argv, &i),
					  qkd_sa_mode_parse,
					  "transport or tunnel");
		} else if (!strcmp(kw, "alg")) {
			p.alg = arg_enum("alg", arg_next(argc, argv, &i),
					 qkd_sa_alg_parse,
					 "aes-gcm (rfc4106(gcm(aes))) or chacha20-poly1305 (rfc7539esp(chacha20,poly1305))");
		} else if (!strcmp(kw, "key-bits")) {
			p.key_bits = arg_u32("key-bits", arg_next(argc, argv, &i));
			if (!p.key_bits)
				usage_error("key-bits 0 is invalid");
		} else if (!strcmp(kw, "dir")) {
			p.dir = arg_enum("dir", arg_next(argc, argv, &i),
					 qkd_sa_dir_parse, "out, in or both");
		} else if (!strcmp(kw, "reqid")) {
			p.reqid = arg_u32("reqid", arg_next(argc, argv, &i));
			p.have_reqid = true;
		} else if (!strcmp(kw, "if-id")) {
			p.if_id = arg_u32("if-id", arg_next(argc, argv, &i));
			p.have_if_id = true;
		} else if (!strcmp(kw, "mark")) {
			p.mark = arg_u32("mark", arg_next(argc, argv, &i));
			p.have_mark = true;
		} else if (!strcmp(kw, "mask")) {
			p.mark_mask = arg_u32("mask", arg_next(argc, argv, &i));
			p.have_mark_mask = true;
		} else if (!strcmp(kw, "rekey-seconds")) {
			p.rekey_seconds = arg_u32("rekey-seconds",
						  arg_next(argc, argv, &i));
			if (!p.rekey_seconds)
				usage_error("rekey-seconds 0 is invalid");
		} else if (!strcmp(kw, "rekey-bytes")) {
			p.rekey_bytes = arg_u64("rekey-bytes",
						arg_next(argc, argv, &i),
						UINT64_MAX);
			if (!p.rekey_bytes)
				usage_error("rekey-bytes 0 is invalid");
		} else if (!strcmp(kw, "rekey-packets")) {
			p.rekey_packets = arg_u64("rekey-packets",
						  arg_next(argc, argv, &i),
						  UINT64_MAX);
			if (!p.rekey_packets)
				usage_error("rekey-packets 0 is invalid");
		} else if (!strcmp(kw, "first-index")) {
			p.first_index = arg_u64("first-index",
						arg_next(argc, argv, &i),
						QKD_INDEX_MAX);
			p.have_first = true;
		} else if (!strcmp(kw, "policy")) {
			p.policy = true;
			i++;
		} else if (!strcmp(kw, "policy-local")) {
			arg_sel("policy-local", arg_next(argc, argv, &i),
				&p.sel_local_len, p.sel_local,
				&p.sel_local_prefix, &p.have_sel_local_prefix);
			p.policy = true;
		} else if (!strcmp(kw, "policy-remote")) {
			arg_sel("policy-remote", arg_next(argc, argv, &i),
				&p.sel_remote_len, p.sel_remote,
				&p.sel_remote_prefix, &p.have_sel_remote_prefix);
			p.policy = true;
		} else if (!strcmp(kw, "policy-priority")) {
			p.priority = arg_u32("policy-priority",
					     arg_next(argc, argv, &i));
			p.have_priority = true;
			p.policy = true;
		} else {
			usage_error("sa add: unknown argument \"%s\"", kw);
		}
	}
	if (!p.addr_len)
		usage_error("sa add: missing \"local ADDR\"");
	if (!rlen)
		usage_error("sa add: missing \"remote ADDR\"");
	if (rlen != p.addr_len)
		usage_error("sa add: local and remote addresses are of different families");
	if (p.have_mark_mask && !p.have_mark)
		usage_error("sa add: \"mask\" needs \"mark\"");
	if (!p.have_first)
		usage_error("sa add: missing \"first-index N\": both ends must name the same first index");
	*out = p;
}

static int sa_add(int argc, char **argv)
{
	struct qkd_sa_params p;
	struct qkd_sa_info sa;
	int err;

	sa_params_parse(argc, argv, &p);
	err = qkd_sa_add(ctl_nl(), &p, &sa);
	if (err)
		return kernel_error("sa add", err);
	print_changed(&sa);
	return 0;
}

static int sa_del(int argc, char **argv)
{
	uint8_t id[QKD_STREAM_ID_LEN];
	bool unprotect = false;
	int err;

	if (argc < 1)
		usage_error("sa del: missing stream UUID");
	arg_uuid("stream id", argv[0], id);
	if (argc > 1 && !strcmp(argv[1], "remove-protection")) {
		unprotect = true;
		arg_end(argc, argv, 2);
	} else {
		arg_end(argc, argv, 1);
	}
	err = unprotect ? qkd_sa_del_unprotect(ctl_nl(), id) :
			  qkd_sa_del(ctl_nl(), id);
	return err ? kernel_error("sa del", err) : 0;
}

static int sa_rekey(int argc, char **argv)
{
	uint8_t id[QKD_STREAM_ID_LEN];
	struct qkd_sa_info sa;
	int err;

	bool force = false;

	if (argc < 1)
		usage_error("sa rekey: missing stream UUID");
	arg_uuid("stream id", argv[0], id);
	if (argc >= 2 && !strcmp(argv[1], "force"))
		force = true;
	arg_end(argc, argv, 1 + force);
	err = force ? qkd_sa_rekey_force(ctl_nl(), id, &sa) :
		      qkd_sa_rekey(ctl_nl(), id, &sa);
	if (err)
		return kernel_error("sa rekey", err);
	print_changed(&sa);
	return 0;
}

static int show_one(const struct qkd_sa_info *sa, void *arg)
{
	(void)arg;
	print_sa(sa);
	return 0;
}

static int sa_show(int argc, char **argv)
{
	uint8_t id[QKD_STREAM_ID_LEN];
	struct qkd_sa_info sa;
	int err;

	/* Fetch link names now: no request may run inside a dump. */
	link_name_of(0);
	if (argc > 0) {
		arg_uuid("stream id", argv[0], id);
		arg_end(argc, argv, 1);
		err = qkd_sa_get(ctl_nl(), id, &sa);
		if (err)
			return kernel_error("sa show", err);
		print_sa(&sa);
		if (opts.out == OUT_JSON)
			json_end();
		return 0;
	}
	listing_begin();
	return listing_end("sa show", qkd_sa_dump(ctl_nl(), show_one, NULL));
}

int do_sa(int argc, char **argv)
{
	const char *verb = argc > 1 ? argv[1] : "show";

	argc = argc > 1 ? argc - 2 : 0;
	argv += 2;
	if (matches(verb, "add"))
		return sa_add(argc, argv);
	if (matches(verb, "delete"))
		return sa_del(argc, argv);
	if (matches(verb, "rekey"))
		return sa_rekey(argc, argv);
	if (matches(verb, "show") || matches(verb, "list") ||
	    !strcmp(verb, "ls"))
		return sa_show(argc, argv);
	usage_error("sa: unknown command \"%s\"", verb);
}
