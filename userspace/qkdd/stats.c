// SPDX-License-Identifier: GPL-2.0-only
/*
 * Per-round statistics: one log line per round, and the status file
 * (--status FILE), rewritten atomically after every round as key=value
 * lines for monitoring (see qkdd(8)).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "qkd/util.h"
#include "qkdd.h"

void stats_round(const struct qkdd_opts *o, struct totals *t,
		 const struct round_stats *r)
{
	t->rounds++;
	if (r->ok) {
		t->rounds_ok++;
		t->keys += r->keys;
		t->secret_bits += r->secret_bits;
		t->auth_bytes += r->auth_bytes;
		qlog("ok: pulses=%" PRIu64 " detections=%" PRIu64
		     " sifted=%" PRIu64 " qber=%.4f sampled=%" PRIu64
		     " sample_errors=%" PRIu64
		     " key_bits=%" PRIu64 " disclosed=%" PRIu64
		     " f=%.3f secret_bits=%" PRIu64 " auth_used=%" PRIu64
		     " auth_withheld=%" PRIu64
		     " keys=%" PRIu64 " first_index=%" PRIu64
		     " reconciliation=%s ec_roundtrips=%" PRIu64
		     " ec_frames_disclosed=%u ec_time=%.3fs"
		     " cascade_roundtrips=%" PRIu64 " auth_reserve=%zu"
		     " eps_auth=2^%.1f time=%.2fs",
		     r->pulses, r->detections, r->sifted, r->qber, r->sampled,
		     r->sample_errors, r->key_bits, r->disclosed,
		     r->efficiency, r->secret_bits, r->auth_used, r->auth_bytes, r->keys, r->first_index,
		     ec_method_name(r->ec_method), r->ec_roundtrips,
		     r->ec_frames_disclosed, r->ec_seconds,
		     r->cascade_rounds, t->auth_reserve, r->auth_eps_log2,
		     r->seconds);
	} else {
		t->rounds_aborted++;
		qwarn("aborted, block discarded: %s", r->reason);
	}
	/* the round's CPU time per stage (cpu.c), then the total */
	{
		char line[400];
		size_t off = 0;
		double sum = 0;

		for (int i = 0; i < QS_N; i++) {
			off += (size_t)snprintf(line + off, sizeof(line) - off,
						"%s=%.4f ", qkdd_stage_name[i],
						r->cpu[i]);
			sum += r->cpu[i];
		}
		qlog("cpu: %stotal=%.4f", line, sum);
	}
	/* what the secret length was computed from (protocol.md, "Secret
	 * key length"): a test recomputes it from these */
	if (r->estimated)
		qlog("estimate: n_z=%.0f,%.0f,%.0f n_x=%.0f,%.0f,%.0f m_x=%.0f,%.0f,%.0f disclosed=%" PRIu64 " secret_bits=%" PRIu64,
		     r->n_z[0], r->n_z[1], r->n_z[2], r->n_x[0], r->n_x[1],
		     r->n_x[2], r->m_x[0], r->m_x[1], r->m_x[2], r->disclosed,
		     r->secret_bits);
	if (o->sim_test_keys)
		qlog("%s", QKDD_SIM_WARNING);
	if (r->ok)
		qkdd_notify_status("round %" PRIu64 ": ok, QBER %.2f%%, %" PRIu64
				   " keys (%" PRIu64 " in all, %" PRIu64
				   " rounds, %" PRIu64 " aborted)",
				   r->round, 100 * r->qber, r->keys, t->keys,
				   t->rounds, t->rounds_aborted);
	else
		qkdd_notify_status("round %" PRIu64 ": aborted (%s); %" PRIu64
				   " keys in all, %" PRIu64 " rounds, %" PRIu64
				   " aborted", r->round, r->reason, t->keys,
				   t->rounds, t->rounds_aborted);
	stats_write(o, t, r);
}

void stats_write(const struct qkdd_opts *o, const struct totals *t,
		 const struct round_stats *r)
{
	char tmp[QKDD_PATH_MAX + 8], uuid[QKD_UUID_STR_LEN], *text = NULL;
	size_t len = 0;
	FILE *f;
	int fd;

	/* the text once, for the control socket and the status file */
	f = open_memstream(&text, &len);
	if (!f) {
		qlog("cannot build the status: out of memory");
		return;
	}
	qkd_uuid_format(o->stream, uuid);
	fprintf(f, "role=%s\nlink=%s\nstream=%s\npid=%d\ntime=%lld\n",
		qkdd_role_name(o->role), o->link, uuid, (int)getpid(),
		(long long)time(NULL));
	fprintf(f, "connected=%d\npaused=%d\nrounds=%" PRIu64 "\nrounds_ok=%" PRIu64
		"\nrounds_aborted=%" PRIu64 "\nkeys_total=%" PRIu64
		"\nsecret_bits_total=%" PRIu64 "\nnext_index=%" PRIu64
		"\nauth_reserve=%zu\nauth_failures=%" PRIu64 "\n",
		t->connected, t->paused, t->rounds, t->rounds_ok, t->rounds_aborted,
		t->keys, t->secret_bits, t->next_index, t->auth_reserve,
		t->auth_failures);
	fprintf(f, "auth_alarm=%d\nauth_backoff_s=%u\nauth_bootstraps=%" PRIu64
		"\n", t->auth_backoff_s > 0, t->auth_backoff_s,
		t->x509_bootstraps);
	fprintf(f, "auth_spent=%" PRIu64 "\nconn_failures=%u\nconn_failures_total=%"
		PRIu64 "\nbackoff_s=%u\n", t->auth_spent, t->conn_failures,
		t->conn_failures_total, t->backoff_s);
	if (o->sim_test_keys)
		fprintf(f, "warning=%s\n", QKDD_SIM_STATUS_WARNING);
	/* where the keys come from (--key-source) */
	fprintf(f, "key_source=%s\n",
		o->key_source == QKDD_SRC_ETSI014 ? "etsi014" : "bb84");
	if (o->key_source == QKDD_SRC_ETSI014)
		fprintf(f, "kme=%s\nkme_sae=%s\n", o->kme, o->kme_sae);
	/* CPU seconds per stage over all rounds (cpu.c) */
	for (int i = 0; i < QS_N; i++)
		fprintf(f, "cpu_%s_s=%.6f\n", qkdd_stage_name[i], t->cpu[i]);
	/* the parameters of the bound, exactly (both ends agreed on them) */
	fprintf(f, "source=%s\nmu=%.17g,%.17g,%.17g\np_mu=%.17g,%.17g,%.17g\neps_sec=%.17g\neps_cor=%.17g\n",
		o->ch.source == QKD_SOURCE_WCP ? "wcp" : "single-photon",
		o->ch.mu[0], o->ch.mu[1], o->ch.mu[2], o->ch.p_intensity[0],
		o->ch.p_intensity[1], o->ch.p_intensity[2], o->eps_sec,
		o->eps_cor);
	if (r) {
		fprintf(f, "last_round=%" PRIu64 "\nlast_result=%s\n",
			r->round, r->ok ? "ok" : "aborted");
		if (!r->ok)
			fprintf(f, "last_reason=%s\n", r->reason);
		fprintf(f, "pulses=%" PRIu64 "\ndetections=%" PRIu64
			"\nsifted_bits=%" PRIu64 "\nsampled_bits=%" PRIu64
			"\nqber=%.6f\nkey_bits=%" PRIu64
			"\ndisclosed_bits=%" PRIu64 "\nefficiency=%.4f"
			"\nsecret_bits=%" PRIu64 "\nauth_used_bytes=%" PRIu64
			"\nauth_withheld_bytes=%" PRIu64
			"\nkeys=%" PRIu64 "\ncascade_roundtrips=%" PRIu64
			"\nreconciliation=%s\nec_roundtrips=%" PRIu64
			"\nec_frames_disclosed=%u\nec_seconds=%.3f"
			"\nround_seconds=%.3f\n",
			r->pulses, r->detections, r->sifted, r->sampled,
			r->qber, r->key_bits, r->disclosed, r->efficiency,
			r->secret_bits, r->auth_used, r->auth_bytes, r->keys,
			r->cascade_rounds, ec_method_name(r->ec_method),
			r->ec_roundtrips, r->ec_frames_disclosed,
			r->ec_seconds, r->seconds);
		if (r->true_errors >= 0)
			fprintf(f, "true_errors=%" PRId64 "\nefficiency_true=%.4f\n",
				r->true_errors, r->efficiency_true);
		for (int i = 0; i < QS_N; i++)
			fprintf(f, "round_cpu_%s_s=%.6f\n", qkdd_stage_name[i],
				r->cpu[i]);
		if (r->estimated)
			fprintf(f, "n_z=%.0f,%.0f,%.0f\nn_x=%.0f,%.0f,%.0f\nm_x=%.0f,%.0f,%.0f\n",
				r->n_z[0], r->n_z[1], r->n_z[2], r->n_x[0],
				r->n_x[1], r->n_x[2], r->m_x[0], r->m_x[1],
				r->m_x[2]);
	}
	if (fclose(f)) {
		free(text);
		qlog("cannot build the status: out of memory");
		return;
	}
	control_publish(text, len);
	if (o->status[0]) {
		snprintf(tmp, sizeof(tmp), "%s.tmp", o->status);
		bool ok;

		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		ok = fd >= 0 && write(fd, text, len) == (ssize_t)len;
		if (fd >= 0 && close(fd))
			ok = false;
		if (!ok || rename(tmp, o->status))
			qlog("cannot write the status file %s", o->status);
	}
	free(text);
}
