// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkdctl status: the node's totals and limits (STATUS_GET).
 */
#include "qkdctl.h"

int do_status(int argc, char **argv)
{
	const struct qkd_stats *s;
	struct qkd_status st;
	int err;

	arg_end(argc, argv, 1);
	err = qkd_status_get(ctl_nl(), &st);
	if (err)
		return kernel_error("status", err);
	s = &st.stats;
	switch (opts.out) {
	case OUT_JSON:
		json_open('{');
		json_u64("abi_version", st.abi_version);
		json_u64("links", st.links);
		json_u64("streams", st.streams);
		json_u64("max_keys", st.max_keys);
		json_u64("max_bytes", st.max_bytes);
		json_u64("keys_added", s->keys_added);
		json_u64("keys_delivered", s->keys_delivered);
		json_u64("keys_flushed", s->keys_flushed);
		json_u64("keys_stored", s->keys_stored);
		json_u64("bytes_stored", s->bytes_stored);
		json_close('}');
		json_end();
		break;
	case OUT_TAB:
		printf("%u\t%u\t%u\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\n",
		       st.abi_version, st.links, st.streams,
		       (unsigned long long)st.max_keys,
		       (unsigned long long)st.max_bytes,
		       (unsigned long long)s->keys_added,
		       (unsigned long long)s->keys_delivered,
		       (unsigned long long)s->keys_flushed,
		       (unsigned long long)s->keys_stored,
		       (unsigned long long)s->bytes_stored);
		break;
	default:
		printf("abi %u links %u streams %u\n", st.abi_version,
		       st.links, st.streams);
		printf("stored %llu keys %llu bytes (limits %llu keys %llu bytes)\n",
		       (unsigned long long)s->keys_stored,
		       (unsigned long long)s->bytes_stored,
		       (unsigned long long)st.max_keys,
		       (unsigned long long)st.max_bytes);
		printf("keys added %llu delivered %llu flushed %llu\n",
		       (unsigned long long)s->keys_added,
		       (unsigned long long)s->keys_delivered,
		       (unsigned long long)s->keys_flushed);
	}
	return 0;
}
