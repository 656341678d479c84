/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libqkd: the parts of the ETSI 004 interface that touch no device, for
 * the unit tests (tests/unit/test_etsi004.c). Not installed; the shared
 * library does not export them (qkd004_*, outside its qkd_* API).
 */
#ifndef QKD_ETSI004_PRIV_H
#define QKD_ETSI004_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/qkd_dev.h>
#include <qkd/etsi004.h>

/* Longest URI taken (the spec's URIs are free text; ours are short). */
#define QKD004_URI_MAX	1024

/*
 * "qkd://HOST" or "qkd://HOST/KSID": 0 and *@has_ksid (with @ksid), or
 * -EINVAL (no scheme, empty or over-long host, a path that is not one
 * non-zero UUID, anything after it).
 */
int qkd004_parse_uri(const char *uri, uint8_t ksid[QKD_004_KSID_LEN],
		     bool *has_ksid);

/*
 * The stream open_connect attaches to: @ksid if not all-zero, else the
 * destination's; both must agree when both name one. 0 (and @out), or a
 * status.
 */
uint32_t qkd004_pick_stream(const char *source, const char *destination,
			    const uint8_t ksid[QKD_004_KSID_LEN],
			    uint8_t out[QKD_004_KSID_LEN]);

/*
 * The QoS against the stream's status: fills in what is 0, answers
 * QKD_STATUS_OC_QOS_NOT_SATISFIABLE with a counter-proposal in @qos, or
 * QKD_STATUS_INVALID_ARGUMENT for values that make no sense.
 */
uint32_t qkd004_check_qos(struct qkd_qos *qos,
			  const struct qkd_stream_status *st);

/* The status of a failed /dev/qkd call (negative errno) of get_key. */
uint32_t qkd004_get_key_status(int err);

/*
 * The metadata of a key: writes the JSON object and its NUL to @buf
 * (@size bytes) and returns the bytes written, or, when @size is too
 * small, writes nothing and returns -(bytes needed). The size needed does
 * not depend on the key (qkd_get_key() checks it before taking one).
 */
#define QKD004_METADATA_SIZE	153
long qkd004_format_metadata(char *buf, size_t size,
			    const uint8_t ksid[QKD_004_KSID_LEN],
			    uint64_t index, uint32_t key_size);

#endif /* QKD_ETSI004_PRIV_H */
