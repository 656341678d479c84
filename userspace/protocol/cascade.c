// SPDX-License-Identifier: GPL-2.0-only
/*
 * Cascade information reconciliation: Alice answers parity queries on her
 * reference key, Bob bisects odd blocks and corrects his key. See
 * qkd/cascade.h for the API and Documentation/protocol.md for the protocol.
 *
 * Layout of a frame. n key bits are padded with zeros to N, a multiple of
 * 4096. Pass 0 works on the key as it is, over [0, n). Pass p >= 1 works on
 * a shuffled copy of the N bits: the permutation is "word shuffle, rotate
 * each word, transpose each group of 64 words as a 64x64 bit matrix, word
 * shuffle", drawn from a PRNG seeded with the public seed. Every bit of an
 * input word lands in a different output word, and the word shuffles spread
 * those words over the whole frame; building a shuffled copy costs a few
 * operations per 64-bit word instead of one random access per bit.
 *
 * The blocks of pass p are [b*k_p, min((b+1)*k_p, L_p)). Inside a block,
 * bisection splits [s, s+len) into [s, s+ceil(len/2)) and the rest; nodes
 * are numbered like a heap (root 1, children 2h and 2h+1). Bob remembers
 * Alice's parity of every left child he has been told (2 bits per node in
 * tree[p]) and never asks for a parity he knows or can infer: the right
 * child is parent XOR left, the last block of passes >= 1 is the parity of
 * the whole key (known after pass 0) XOR the other blocks.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <qkd/bitvec.h>
#include <qkd/cascade.h>
#include <qkd/prng.h>

#define MSG_REQUEST	1
#define MSG_REPLY	2
#define MSG_VERSION	1
#define MSG_HDR_LEN	8
#define GROUP_ALIGN_BITS 4096
#define PREFETCH	8	/* queries or searches read ahead */
#define FREE_PASSES	2	/* passes bisected without waiting */
#define PIPELINE_FROM	2	/* PIPELINE: passes open before the overlap */
#define PIPELINE_TAIL	8	/* PIPELINE: searches left in the open passes */


/* ------------------------------------------------------------- layout */

struct perm {
	uint32_t *w1;		/* A[w] = rotl(K[w1[w]], rot[w]) */
	uint32_t *w1inv;
	uint8_t *rot;
	uint32_t *w2inv;	/* S[w2inv[b]] = B[b] (B = transposed A) */
	uint32_t *w2;
	/*
	 * Passes of two blocks of N/2 bits: half[a] holds the bits of
	 * original word a that land in block 0, so that the block parities
	 * cost one AND per word and no shuffled copy is built unless the
	 * pass has an odd block to bisect.
	 */
	uint64_t *half;
};

struct layout {
	uint32_t n;		/* key bits */
	uint32_t N;		/* padded bits */
	uint32_t W;		/* N / 64 */
	uint32_t nframes;
	int passes;
	uint32_t k[QKD_CASCADE_MAX_PASSES];
	uint32_t L[QKD_CASCADE_MAX_PASSES];
	uint32_t nblocks[QKD_CASCADE_MAX_PASSES];
	uint32_t tsize[QKD_CASCADE_MAX_PASSES];
	int kshift[QKD_CASCADE_MAX_PASSES];	/* log2 k, -1 if not a power */
	struct perm perm[QKD_CASCADE_MAX_PASSES];
};

static uint32_t next_pow2(uint32_t x)
{
	uint32_t p = 1;

	while (p < x)
		p <<= 1;
	return p;
}

static void shuffle_u32(struct qkd_prng *r, uint32_t *a, uint32_t n)
{
	uint32_t i, j, t;

	for (i = 0; i < n; i++)
		a[i] = i;
	for (i = n - 1; i > 0; i--) {
		j = qkd_prng_below(r, i + 1);
		t = a[i];
		a[i] = a[j];
		a[j] = t;
	}
}

static void layout_free(struct layout *l)
{
	int p;

	for (p = 0; p < QKD_CASCADE_MAX_PASSES; p++) {
		free(l->perm[p].w1);
		free(l->perm[p].w1inv);
		free(l->perm[p].rot);
		free(l->perm[p].w2);
		free(l->perm[p].w2inv);
		free(l->perm[p].half);
	}
	memset(l, 0, sizeof(*l));
}

static int params_check(const struct qkd_cascade_params *p)
{
	uint32_t i;

	if (!p || p->frame_bits < 64 ||
	    (p->flags & ~(QKD_CASCADE_F_PARALLEL | QKD_CASCADE_F_PIPELINE)) ||
	    p->frame_bits > QKD_CASCADE_MAX_FRAME_BITS ||
	    !p->nframes || p->nframes > QKD_CASCADE_MAX_FRAMES ||
	    !p->qber_ppm || p->qber_ppm > 500000)
		return -EINVAL;
	switch (p->variant) {
	case QKD_CASCADE_ORIGINAL:
	case QKD_CASCADE_OPTIMIZED:
	case QKD_CASCADE_YANETAL:
		return 0;
	case QKD_CASCADE_CUSTOM:
		if (!p->passes || p->passes > QKD_CASCADE_MAX_PASSES)
			return -EINVAL;
		for (i = 0; i < p->passes; i++)
			if (p->block[i] < 2)
				return -EINVAL;
		return 0;
	default:
		return -EINVAL;
	}
}

static uint32_t clamp_k(double k, uint32_t max)
{
	if (k < 2)
		k = 2;
	if (k > max)
		k = max;
	return (uint32_t)k;
}

int qkd_cascade_schedule(const struct qkd_cascade_params *p, uint32_t *block)
{
	double q;
	uint32_t n, N, half, i;
	int passes, a;

	if (params_check(p))
		return -EINVAL;
	q = p->qber_ppm / 1e6;
	n = p->frame_bits;
	N = (n + GROUP_ALIGN_BITS - 1) / GROUP_ALIGN_BITS * GROUP_ALIGN_BITS;
	half = (N + 1) / 2;
	memset(block, 0, sizeof(uint32_t) * QKD_CASCADE_MAX_PASSES);
	switch (p->variant) {
	case QKD_CASCADE_ORIGINAL:
		passes = 4;
		block[0] = clamp_k(ceil(0.73 / q), n);
		for (i = 1; i < 4; i++)
			block[i] = clamp_k(2.0 * block[i - 1], N);
		break;
	case QKD_CASCADE_YANETAL:
		passes = 10;
		block[0] = clamp_k(ceil(0.80 / q), n / 2);
		block[1] = clamp_k(5.0 * block[0], half);
		for (i = 2; i < 10; i++)
			block[i] = half;
		break;
	case QKD_CASCADE_OPTIMIZED:
		/*
		 * Option 8 of Martinez-Mateo et al., re-tuned by measurement
		 * for frames of 10^6 bits: k1 = 2^a with a = ceil(log2(0.73/Q))
		 * (floor above 6 %): 128, 64, 16, 8 at Q = 1, 2, 5, 8 %;
		 * k2 = 10/Q rounded to a power of two: 1024, 512, 256, 128;
		 * above 3 % k3 = 8 k2 (without it too many errors are left
		 * for the last passes); then halves of the frame: BICONF-like
		 * checks that cascade into every earlier pass.
		 */
		passes = 16;
		a = q > 0.06 ? (int)floor(log2(0.73 / q)) :
			(int)ceil(log2(0.73 / q) - 1e-9);
		if (a < 2)
			a = 2;
		if (a > 20)
			a = 20;
		block[0] = clamp_k(ldexp(1.0, a), n / 2);
		block[1] = clamp_k(ldexp(1.0, (int)lround(log2(10.0 / q))),
				   half);
		if (block[1] < 2 * block[0])
			block[1] = clamp_k(2.0 * block[0], half);
		i = 2;
		if (q > 0.03) {
			block[2] = clamp_k(8.0 * block[1], half);
			i = 3;
		}
		for (; i < 16; i++)
			block[i] = half;
		break;
	default:
		passes = (int)p->passes;
		for (i = 0; i < p->passes; i++)
			block[i] = clamp_k(p->block[i], i ? N : n);
		break;
	}
	return passes;
}

/* Position in pass p's order of original bit x. */
static inline uint32_t layout_pos(const struct layout *l, int p, uint32_t x)
{
	const struct perm *pm = &l->perm[p];
	uint32_t w, c, i, b;

	if (!p)
		return x;
	w = pm->w1inv[x >> 6];
	c = ((x & 63) + pm->rot[w]) & 63;
	i = w & 63;
	b = (w & ~63u) + (63 - c);
	return pm->w2inv[b] * 64 + (63 - i);
}

/* Original bit at position y of pass p's order. */
static inline uint32_t layout_orig(const struct layout *l, int p, uint32_t y)
{
	const struct perm *pm = &l->perm[p];
	uint32_t b, w, c;

	if (!p)
		return y;
	b = pm->w2[y >> 6];
	w = (b & ~63u) + (63 - (y & 63));
	c = 63 - (b & 63);
	return pm->w1[w] * 64 + ((c - pm->rot[w]) & 63);
}

static int layout_init(struct layout *l, const struct qkd_cascade_params *p)
{
	uint32_t block[QKD_CASCADE_MAX_PASSES];
	struct qkd_prng r;
	uint32_t i, W;
	int pass, passes;

	memset(l, 0, sizeof(*l));
	passes = qkd_cascade_schedule(p, block);
	if (passes < 0)
		return passes;
	l->n = p->frame_bits;
	l->N = (l->n + GROUP_ALIGN_BITS - 1) / GROUP_ALIGN_BITS *
		GROUP_ALIGN_BITS;
	l->W = W = l->N / 64;
	l->nframes = p->nframes;
	l->passes = passes;
	for (pass = 0; pass < passes; pass++) {
		struct perm *pm = &l->perm[pass];

		l->L[pass] = pass ? l->N : l->n;
		l->k[pass] = block[pass] > l->L[pass] ? l->L[pass] :
			block[pass];
		l->nblocks[pass] = (l->L[pass] + l->k[pass] - 1) / l->k[pass];
		l->tsize[pass] = next_pow2(l->k[pass]);
		l->kshift[pass] = l->tsize[pass] == l->k[pass] ?
			__builtin_ctz(l->k[pass]) : -1;
		if (!pass)
			continue;
		pm->w1 = malloc(W * sizeof(uint32_t));
		pm->w1inv = malloc(W * sizeof(uint32_t));
		pm->rot = malloc(W);
		pm->w2 = malloc(W * sizeof(uint32_t));
		pm->w2inv = malloc(W * sizeof(uint32_t));
		if (!pm->w1 || !pm->w1inv || !pm->rot || !pm->w2 ||
		    !pm->w2inv) {
			layout_free(l);
			return -ENOMEM;
		}
		qkd_prng_seed(&r, p->seed ^ (0x5851f42d4c957f2dULL * (uint64_t)pass));
		shuffle_u32(&r, pm->w1, W);
		shuffle_u32(&r, pm->w2, W);
		for (i = 0; i < W; i++) {
			pm->w1inv[pm->w1[i]] = i;
			pm->w2inv[pm->w2[i]] = i;
			pm->rot[i] = (uint8_t)(qkd_prng_next(&r) >> 58);
		}
		if (l->nblocks[pass] == 2 && 2 * l->k[pass] == l->N) {
			uint32_t y;

			pm->half = calloc(W, 8);
			if (!pm->half) {
				layout_free(l);
				return -ENOMEM;
			}
			for (y = 0; y < l->k[pass]; y++)
				qkd_bv_set(pm->half,
					   layout_orig(l, pass, y), 1);
		}
	}
	return 0;
}

/* Parity of block 0 of a two-block pass, from the unshuffled key. */
static int layout_half_parity(const struct layout *l, int p,
			      const uint64_t *key)
{
	const uint64_t *h = l->perm[p].half;
	uint64_t acc = 0;
	uint32_t i;

	for (i = 0; i < l->W; i++)
		acc ^= key[i] & h[i];
	return qkd_parity64(acc);
}

static int key_parity(const struct layout *l, const uint64_t *key)
{
	uint64_t acc = 0;
	uint32_t i;

	for (i = 0; i < l->W; i++)
		acc ^= key[i];
	return qkd_parity64(acc);
}

/* out = key in pass p's order (p >= 1), N bits. */
static void layout_shuffle(const struct layout *l, int p, const uint64_t *key,
			   uint64_t *out)
{
	const struct perm *pm = &l->perm[p];
	uint64_t m[64];
	uint32_t g, i, base;

	for (g = 0; g < l->W; g += 64) {
		for (i = 0; i < 64; i++) {
			base = g + i;
			m[i] = qkd_rotl64(key[pm->w1[base]], pm->rot[base]);
		}
		qkd_bv_transpose64(m);
		for (i = 0; i < 64; i++)
			out[pm->w2inv[g + i]] = m[i];
	}
}

/* ---------------------------------------------------------- messages */

void qkd_cascade_msg_free(struct qkd_cascade_msg *m)
{
	if (m->data && m->cap)
		explicit_bzero(m->data, m->cap);
	free(m->data);
	m->data = NULL;
	m->len = m->cap = 0;
}

static int msg_reserve(struct qkd_cascade_msg *m, size_t extra)
{
	size_t cap;
	uint8_t *d;

	if (m->len + extra <= m->cap)
		return 0;
	cap = m->cap ? m->cap : 4096;
	while (cap < m->len + extra)
		cap *= 2;
	d = realloc(m->data, cap);
	if (!d)
		return -ENOMEM;
	m->data = d;
	m->cap = cap;
	return 0;
}

static inline void put_varint(struct qkd_cascade_msg *m, uint64_t v)
{
	while (v >= 0x80) {
		m->data[m->len++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	m->data[m->len++] = (uint8_t)v;
}

static inline int get_varint(const uint8_t **pp, const uint8_t *end,
			     uint64_t *v)
{
	const uint8_t *p = *pp;
	uint64_t r = 0;
	unsigned int sh = 0;

	while (p < end && sh < 64) {
		uint8_t c = *p++;

		r |= (uint64_t)(c & 0x7f) << sh;
		if (!(c & 0x80)) {
			*pp = p;
			*v = r;
			return 0;
		}
		sh += 7;
	}
	return -EPROTO;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
		(uint32_t)p[3] << 24;
}

static void msg_header(struct qkd_cascade_msg *m, uint8_t type, uint32_t round)
{
	m->data[0] = type;
	m->data[1] = MSG_VERSION;
	m->data[2] = 0;
	m->data[3] = 0;
	put_le32(m->data + 4, round);
	m->len = MSG_HDR_LEN;
}

size_t qkd_cascade_params_encode(const struct qkd_cascade_params *p,
				 uint8_t *buf)
{
	int i;

	put_le32(buf, p->variant);
	put_le32(buf + 4, p->frame_bits);
	put_le32(buf + 8, p->nframes);
	put_le32(buf + 12, p->qber_ppm);
	put_le32(buf + 16, (uint32_t)p->seed);
	put_le32(buf + 20, (uint32_t)(p->seed >> 32));
	put_le32(buf + 24, p->passes);
	put_le32(buf + 28, p->flags);
	for (i = 0; i < QKD_CASCADE_MAX_PASSES; i++)
		put_le32(buf + 32 + 4 * i, p->block[i]);
	return QKD_CASCADE_PARAMS_LEN;
}

int qkd_cascade_params_decode(struct qkd_cascade_params *p,
			      const uint8_t *buf, size_t len)
{
	int i;

	if (len != QKD_CASCADE_PARAMS_LEN)
		return -EPROTO;
	memset(p, 0, sizeof(*p));
	p->variant = get_le32(buf);
	p->frame_bits = get_le32(buf + 4);
	p->nframes = get_le32(buf + 8);
	p->qber_ppm = get_le32(buf + 12);
	p->seed = get_le32(buf + 16) | (uint64_t)get_le32(buf + 20) << 32;
	p->passes = get_le32(buf + 24);
	p->flags = get_le32(buf + 28);
	for (i = 0; i < QKD_CASCADE_MAX_PASSES; i++)
		p->block[i] = get_le32(buf + 32 + 4 * i);
	return params_check(p);
}

/*
 * Request body: a sequence of tokens, each starting with a varint v:
 *   v == 0: select frame and pass: varint frame, byte pass; resets start
 *   v == 1: "top": the parities of all blocks of the selected pass (for
 *           pass >= 1 all but the last block, which Bob infers)
 *   v >= 2: one range: start = previous start + zigzag^-1(v - 2), then
 *           varint len; the parity of [start, start + len) of the pass
 * Reply body: le32 number of bits, then the parity bits packed LSB first,
 * in the order of the queries.
 */

static inline uint64_t zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

void qkd_cascade_daemon_frames(size_t n, uint32_t *frame_bits,
			       uint32_t *nframes)
{
	size_t nf = (n + QKD_CASCADE_DAEMON_FRAME_MAX - 1) /
		    QKD_CASCADE_DAEMON_FRAME_MAX;

	if (!nf)
		nf = 1;
	*nframes = (uint32_t)nf;
	*frame_bits = (uint32_t)(n / nf);
}

void qkd_cascade_daemon_params(struct qkd_cascade_params *p,
			       uint32_t frame_bits, uint32_t nframes,
			       double qber_estimate, uint64_t seed)
{
	*p = (struct qkd_cascade_params){
		.variant = QKD_CASCADE_OPTIMIZED,
		.frame_bits = frame_bits,
		.nframes = nframes,
		.qber_ppm = (uint32_t)(fmax(qber_estimate, 0.005) * 1e6),
		.seed = seed,
		.flags = QKD_CASCADE_F_PARALLEL | QKD_CASCADE_F_PIPELINE,
	};
}

double qkd_cascade_h2(double p)
{
	if (p <= 0 || p >= 1)
		return 0;
	return -p * log2(p) - (1 - p) * log2(1 - p);
}

/* ------------------------------------------------------------- Alice */

struct alice_frame {
	uint64_t *key;				/* N bits */
	uint64_t *shuf[QKD_CASCADE_MAX_PASSES];	/* lazily built */
	uint32_t built;				/* bit p: shuf[p] is valid */
	uint32_t top_sent;			/* bit p: "top" answered */
	uint64_t disclosed;
};

struct qkd_cascade_alice {
	struct layout l;
	struct alice_frame *fr;
	struct qkd_cascade_stats st;
};

void qkd_cascade_alice_free(struct qkd_cascade_alice *a)
{
	uint32_t f;
	int p;

	if (!a)
		return;
	if (a->fr) {
		for (f = 0; f < a->l.nframes; f++) {
			if (a->fr[f].key)
				explicit_bzero(a->fr[f].key, a->l.W * 8);
			free(a->fr[f].key);
			for (p = 1; p < QKD_CASCADE_MAX_PASSES; p++) {
				if (a->fr[f].shuf[p])
					explicit_bzero(a->fr[f].shuf[p],
						       a->l.W * 8);
				free(a->fr[f].shuf[p]);
			}
		}
	}
	free(a->fr);
	layout_free(&a->l);
	free(a);
}

struct qkd_cascade_alice *
qkd_cascade_alice_new(const struct qkd_cascade_params *p,
		      const uint64_t *const *keys)
{
	struct qkd_cascade_alice *a = calloc(1, sizeof(*a));
	uint32_t f;
	int err;

	if (!a) {
		errno = ENOMEM;
		return NULL;
	}
	err = layout_init(&a->l, p);
	if (err) {
		free(a);
		errno = -err;
		return NULL;
	}
	a->fr = calloc(a->l.nframes, sizeof(*a->fr));
	if (!a->fr)
		goto nomem;
	for (f = 0; f < a->l.nframes; f++) {
		a->fr[f].key = calloc(a->l.W, 8);
		if (!a->fr[f].key)
			goto nomem;
		a->fr[f].shuf[0] = a->fr[f].key;
	}
	qkd_cascade_alice_reset(a, keys);
	return a;
nomem:
	qkd_cascade_alice_free(a);
	errno = ENOMEM;
	return NULL;
}

void qkd_cascade_alice_reset(struct qkd_cascade_alice *a,
			     const uint64_t *const *keys)
{
	uint32_t f;

	for (f = 0; f < a->l.nframes; f++) {
		struct alice_frame *fr = &a->fr[f];

		memcpy(fr->key, keys[f], QKD_BV_WORDS(a->l.n) * 8);
		qkd_bv_clear_tail(fr->key, a->l.n);
		fr->built = 1;
		fr->top_sent = 0;
		fr->disclosed = 0;
	}
}

void qkd_cascade_alice_stats(const struct qkd_cascade_alice *a,
			     struct qkd_cascade_stats *s)
{
	*s = a->st;
}

uint64_t qkd_cascade_alice_frame_disclosed(const struct qkd_cascade_alice *a,
					   uint32_t frame)
{
	return frame < a->l.nframes ? a->fr[frame].disclosed : 0;
}

/* Append reply bit number nbit (the reply holds nbit bits so far). */
static inline int put_bit(struct qkd_cascade_msg *m, uint64_t nbit, int bit)
{
	if (!(nbit & 7)) {
		if (m->len == m->cap && msg_reserve(m, 1))
			return -ENOMEM;
		m->data[m->len++] = 0;
	}
	m->data[m->len - 1] |= (uint8_t)(bit << (nbit & 7));
	return 0;
}

/*
 * Read-ahead of the request: decodes range queries ahead of the main loop
 * and prefetches the words they will read (answering is bound by cache
 * misses on the permuted copies). Stops quietly at anything unexpected; the
 * main loop reports errors.
 */
struct lookahead {
	const uint8_t *p;
	const uint64_t *bits;
	uint64_t start;
};

static void lookahead_run(struct lookahead *la, const uint8_t *end,
			  const struct qkd_cascade_alice *a, unsigned int n)
{
	uint64_t v, len;

	while (n && la->p < end) {
		if (get_varint(&la->p, end, &v))
			goto stop;
		if (v == 0) {
			if (get_varint(&la->p, end, &v) || la->p >= end ||
			    v >= a->l.nframes || *la->p >= a->l.passes)
				goto stop;
			la->bits = (a->fr[v].built & (1u << *la->p)) ?
				a->fr[v].shuf[*la->p] : NULL;
			la->p++;
			la->start = 0;
			continue;
		}
		if (v == 1)
			continue;
		la->start += (uint64_t)unzigzag(v - 2);
		if (get_varint(&la->p, end, &len))
			goto stop;
		if (la->bits && la->start < a->l.N)
			__builtin_prefetch(&la->bits[la->start >> 6]);
		n--;
	}
	return;
stop:
	la->p = end;
}

int qkd_cascade_alice_handle(struct qkd_cascade_alice *a, const uint8_t *req,
			     size_t len, struct qkd_cascade_msg *out)
{
	struct lookahead la = { req + MSG_HDR_LEN, NULL, 0 };
	const struct layout *l = &a->l;
	const uint8_t *p = req + MSG_HDR_LEN, *end = req + len;
	struct alice_frame *fr = NULL;
	const uint64_t *bits = NULL;
	uint64_t v, nbits = 0, start = 0, blen, b, nb;
	uint32_t round;
	int pass = -1, err;

	/*
	 * Nothing an honest Bob does not send is taken: reserved bytes set,
	 * or a round other than the next one (a request replayed, dropped
	 * or reordered) is malformed, not ignored.
	 */
	if (len < MSG_HDR_LEN || req[0] != MSG_REQUEST ||
	    req[1] != MSG_VERSION || req[2] || req[3])
		return -EPROTO;
	round = get_le32(req + 4);
	if (round != a->st.rounds)
		return -EPROTO;
	out->len = 0;
	/*
	 * Each query is at least 2 bytes: len / 16 bytes hold the bits of
	 * ranges; "top" queries reserve their own space.
	 */
	if (msg_reserve(out, MSG_HDR_LEN + 4 + len / 16 + 16))
		return -ENOMEM;
	msg_header(out, MSG_REPLY, round);
	out->len += 4;
	lookahead_run(&la, end, a, PREFETCH);
	while (p < end) {
		if (get_varint(&p, end, &v))
			return -EPROTO;
		if (v == 0) {
			if (get_varint(&p, end, &v) || v >= l->nframes ||
			    p >= end || *p >= l->passes)
				return -EPROTO;
			fr = &a->fr[v];
			pass = *p++;
			start = 0;
			bits = NULL;
			continue;
		}
		if (!fr)
			return -EPROTO;
		if (v == 1) {
			/* block parities of a pass are sent once per batch */
			if (fr->top_sent & (1u << pass))
				return -EPROTO;
			fr->top_sent |= 1u << pass;
		}
		if (v == 1 && l->perm[pass].half) {
			err = put_bit(out, nbits++,
				      layout_half_parity(l, pass, fr->key));
			if (err)
				return err;
			fr->disclosed++;
			continue;
		}
		if (!bits) {
			if (!(fr->built & (1u << pass))) {
				if (!fr->shuf[pass])
					fr->shuf[pass] = malloc(l->W * 8);
				if (!fr->shuf[pass])
					return -ENOMEM;
				layout_shuffle(l, pass, fr->key,
					       fr->shuf[pass]);
				fr->built |= 1u << pass;
			}
			bits = fr->shuf[pass];
		}
		if (v == 1) {
			nb = l->nblocks[pass] - (pass ? 1 : 0);
			err = msg_reserve(out, nb / 8 + 2);
			if (err)
				return err;
			for (b = 0; b < nb; b++) {
				uint64_t s = b * l->k[pass];
				uint64_t e = s + l->k[pass];

				if (e > l->L[pass])
					e = l->L[pass];
				err = put_bit(out, nbits++,
					qkd_bv_parity_range(bits, s, e - s));
				if (err)
					return err;
			}
			fr->disclosed += nb;
			continue;
		}
		start += (uint64_t)unzigzag(v - 2);
		if (get_varint(&p, end, &blen) || !blen ||
		    start >= l->L[pass] || blen > l->L[pass] - start ||
		    start / l->k[pass] != (start + blen - 1) / l->k[pass])
			return -EPROTO;	/* Bob only asks inside one block */
		err = put_bit(out, nbits++,
			      qkd_bv_parity_range(bits, start, blen));
		if (err)
			return err;
		fr->disclosed++;
		a->st.queries++;
		lookahead_run(&la, end, a, 1);
	}
	put_le32(out->data + MSG_HDR_LEN, (uint32_t)nbits);
	a->st.disclosed_bits += nbits;
	a->st.rounds++;
	a->st.req_bytes += len;
	a->st.reply_bytes += out->len;
	return 0;
}

/* --------------------------------------------------------------- Bob */

struct search {
	uint32_t block;
	uint32_t s, len, h;	/* current node, known to be odd */
	uint32_t gen;		/* block generation when s/len/h were valid */
	uint32_t waiting;	/* round + 1 if a query is in flight */
};

struct bob_pass {
	uint64_t *bits;		/* Bob's key in this pass's order */
	uint64_t *atop;		/* Alice's block parities */
	uint64_t *btop;		/* Bob's current block parities */
	uint64_t *active;	/* block has a search */
	uint64_t *tree;		/* 2 bits per node: known, Alice parity */
	uint32_t *gen;		/* bumped on every flip in the block */
	uint32_t *touched;	/* tree words that are not zero */
	uint32_t ntouched, captouched;
	struct search *srch;
	uint32_t nsrch, capsrch;
	uint32_t nb;		/* blocks: atop, btop, active, gen */
	size_t tw;		/* words of tree */
	bool top_known;
	bool bits_ok;		/* bits is up to date (else built on demand) */
};

struct bob_frame {
	uint64_t *key;		/* N bits; also pass 0's bits */
	struct bob_pass ps[QKD_CASCADE_MAX_PASSES];
	int started;		/* passes whose top was requested */
	int open;		/* passes begun: 0..open-1 bisect odd blocks */
	int total_parity;	/* Alice's parity of the whole key */
	bool done, failed;
	uint64_t disclosed, corrected;
};

enum { PEND_TOP, PEND_NODE };

struct pending {
	uint32_t frame;
	uint16_t pass;
	uint16_t kind;
	uint32_t idx;		/* tree index (node) */
};

struct qkd_cascade_bob {
	struct layout l;
	uint64_t *const *user_keys;
	struct bob_frame *fr;
	struct pending *pend;
	size_t npend, cappend;
	uint64_t pend_bits;
	uint32_t round;
	bool awaiting;
	/* encoder state */
	int64_t enc_frame, enc_pass;
	int64_t enc_start;
	struct qkd_cascade_stats st;
	uint32_t frames_done;
	bool parallel;
	bool tops_ahead;	/* every pass's top in the first request */
	bool pipeline;		/* QKD_CASCADE_F_PIPELINE */
};

/*
 * Everything of a pass is derived from Bob's key (its parities, the
 * search state, the error positions it leads to): wiped before it is
 * freed, as the key itself.
 */
static void wipe(void *p, size_t n)
{
	if (p && n)
		explicit_bzero(p, n);
}

static void bob_pass_free(struct bob_pass *bp, bool free_bits)
{
	wipe(bp->atop, QKD_BV_WORDS(bp->nb) * 8);
	wipe(bp->btop, QKD_BV_WORDS(bp->nb) * 8);
	wipe(bp->active, QKD_BV_WORDS(bp->nb) * 8);
	wipe(bp->gen, (size_t)bp->nb * sizeof(uint32_t));
	wipe(bp->tree, bp->tw * 8);
	wipe(bp->touched, (size_t)bp->captouched * sizeof(uint32_t));
	wipe(bp->srch, (size_t)bp->capsrch * sizeof(*bp->srch));
	if (free_bits)
		free(bp->bits);
	free(bp->atop);
	free(bp->btop);
	free(bp->active);
	free(bp->tree);
	free(bp->gen);
	free(bp->touched);
	free(bp->srch);
	memset(bp, 0, sizeof(*bp));
}

static void bob_frame_release(struct qkd_cascade_bob *b, struct bob_frame *fr)
{
	int p;

	for (p = 0; p < QKD_CASCADE_MAX_PASSES; p++) {
		if (p && fr->ps[p].bits)
			explicit_bzero(fr->ps[p].bits, b->l.W * 8);
		bob_pass_free(&fr->ps[p], p != 0);
	}
	if (fr->key)
		explicit_bzero(fr->key, b->l.W * 8);
	free(fr->key);
	fr->key = NULL;
}

void qkd_cascade_bob_free(struct qkd_cascade_bob *b)
{
	uint32_t f;

	if (!b)
		return;
	if (b->fr)
		for (f = 0; f < b->l.nframes; f++)
			bob_frame_release(b, &b->fr[f]);
	free(b->fr);
	free(b->pend);
	layout_free(&b->l);
	free(b);
}

struct qkd_cascade_bob *qkd_cascade_bob_new(const struct qkd_cascade_params *p,
					    uint64_t *const *keys)
{
	struct qkd_cascade_bob *b = calloc(1, sizeof(*b));
	uint32_t f;
	int err;

	if (!b) {
		errno = ENOMEM;
		return NULL;
	}
	err = layout_init(&b->l, p);
	if (err) {
		free(b);
		errno = -err;
		return NULL;
	}
	b->user_keys = keys;
	b->parallel = p->flags & QKD_CASCADE_F_PARALLEL;
	b->tops_ahead = true;
	b->pipeline = p->flags & QKD_CASCADE_F_PIPELINE;
	b->fr = calloc(b->l.nframes, sizeof(*b->fr));
	if (!b->fr)
		goto nomem;
	for (f = 0; f < b->l.nframes; f++) {
		b->fr[f].key = calloc(b->l.W, 8);
		if (!b->fr[f].key)
			goto nomem;
	}
	qkd_cascade_bob_reset(b, keys);
	return b;
nomem:
	qkd_cascade_bob_free(b);
	errno = ENOMEM;
	return NULL;
}

void qkd_cascade_bob_reset(struct qkd_cascade_bob *b, uint64_t *const *keys)
{
	uint32_t f;

	b->user_keys = keys;
	for (f = 0; f < b->l.nframes; f++) {
		struct bob_frame *fr = &b->fr[f];

		memcpy(fr->key, keys[f], QKD_BV_WORDS(b->l.n) * 8);
		qkd_bv_clear_tail(fr->key, b->l.n);
		fr->started = fr->open = 0;
		fr->total_parity = 0;
		fr->done = fr->failed = false;
		fr->disclosed = fr->corrected = 0;
	}
	b->frames_done = 0;
	b->awaiting = false;
}

int qkd_cascade_bob_set_tops_ahead(struct qkd_cascade_bob *b, bool on)
{
	uint32_t f;

	for (f = 0; f < b->l.nframes; f++)
		if (b->fr[f].started)
			return -EBUSY;
	b->tops_ahead = on;
	return 0;
}

void qkd_cascade_bob_stats(const struct qkd_cascade_bob *b,
			   struct qkd_cascade_stats *s)
{
	*s = b->st;
}

uint64_t qkd_cascade_bob_frame_disclosed(const struct qkd_cascade_bob *b,
					 uint32_t frame)
{
	return frame < b->l.nframes ? b->fr[frame].disclosed : 0;
}

static inline unsigned int tree_get(const uint64_t *t, uint64_t idx)
{
	return (unsigned int)(t[idx >> 5] >> ((idx & 31) * 2)) & 3;
}

static inline int tree_set(struct bob_pass *bp, uint64_t idx, int parity)
{
	uint64_t *w = &bp->tree[idx >> 5];

	if (!*w) {
		if (bp->ntouched == bp->captouched) {
			uint32_t cap = bp->captouched ? bp->captouched * 2 :
				1024;
			uint32_t *t = realloc(bp->touched, cap * sizeof(*t));

			if (!t)
				return -ENOMEM;
			bp->touched = t;
			bp->captouched = cap;
		}
		bp->touched[bp->ntouched++] = (uint32_t)(idx >> 5);
	}
	*w |= (uint64_t)(1 | (parity << 1)) << ((idx & 31) * 2);
	return 0;
}

static inline bool block_odd(const struct bob_pass *bp, uint32_t blk)
{
	return qkd_bv_get(bp->atop, blk) != qkd_bv_get(bp->btop, blk);
}

static int add_search(struct bob_pass *bp, uint32_t blk)
{
	struct search *s;

	if (bp->nsrch == bp->capsrch) {
		uint32_t cap = bp->capsrch ? bp->capsrch * 2 : 64;

		s = realloc(bp->srch, cap * sizeof(*s));
		if (!s)
			return -ENOMEM;
		bp->srch = s;
		bp->capsrch = cap;
	}
	s = &bp->srch[bp->nsrch++];
	s->block = blk;
	s->gen = ~bp->gen[blk];	/* forces a walk from the root */
	s->waiting = 0;
	s->s = s->len = s->h = 0;
	qkd_bv_set(bp->active, blk, 1);
	return 0;
}

static int pend_push(struct qkd_cascade_bob *b, uint32_t frame, int pass,
		     int kind, uint32_t idx)
{
	struct pending *pe;

	if (b->npend == b->cappend) {
		size_t cap = b->cappend ? b->cappend * 2 : 1024;

		pe = realloc(b->pend, cap * sizeof(*pe));
		if (!pe)
			return -ENOMEM;
		b->pend = pe;
		b->cappend = cap;
	}
	pe = &b->pend[b->npend++];
	pe->frame = frame;
	pe->pass = (uint16_t)pass;
	pe->kind = (uint16_t)kind;
	pe->idx = idx;
	return 0;
}

static int enc_select(struct qkd_cascade_bob *b, struct qkd_cascade_msg *m,
		      uint32_t frame, int pass)
{
	if (b->enc_frame == frame && b->enc_pass == pass)
		return 0;
	if (msg_reserve(m, 16))
		return -ENOMEM;
	put_varint(m, 0);
	put_varint(m, frame);
	m->data[m->len++] = (uint8_t)pass;
	b->enc_frame = frame;
	b->enc_pass = pass;
	b->enc_start = 0;
	return 0;
}

static int emit_range(struct qkd_cascade_bob *b, struct qkd_cascade_msg *m,
		      uint32_t frame, int pass, uint32_t s, uint32_t len,
		      uint32_t idx)
{
	int err = enc_select(b, m, frame, pass);

	if (err)
		return err;
	if (msg_reserve(m, 24))
		return -ENOMEM;
	put_varint(m, 2 + zigzag((int64_t)s - b->enc_start));
	put_varint(m, len);
	b->enc_start = s;
	b->pend_bits++;
	return pend_push(b, frame, pass, PEND_NODE, idx);
}

/*
 * Passes whose odd blocks may be bisected now: the open ones, and with
 * PIPELINE, once passes 0 and 1 are open and at most PIPELINE_TAIL
 * searches are left in the open passes (the tail of the chains of
 * corrections between them), one more.
 */
static inline int pass_limit(const struct qkd_cascade_bob *b,
			     const struct bob_frame *fr)
{
	int lim = fr->open, p;
	uint32_t act = 0;

	if (b->pipeline && fr->open >= PIPELINE_FROM) {
		for (p = 0; p < fr->open; p++)
			act += fr->ps[p].nsrch;
		if (act <= PIPELINE_TAIL)
			lim++;
	}
	return lim < fr->started ? lim : fr->started;
}

/* Add a search for every odd block of pass p that has none. */
static int open_searches(struct qkd_cascade_bob *b, struct bob_frame *fr,
			 int p)
{
	struct bob_pass *bp = &fr->ps[p];
	uint32_t blk;

	for (blk = 0; bp->top_known && blk < b->l.nblocks[p]; blk++)
		if (block_odd(bp, blk) && !qkd_bv_get(bp->active, blk) &&
		    add_search(bp, blk))
			return -ENOMEM;
	return 0;
}

/* Correct original bit x and cascade into every started pass. */
static int bob_flip(struct qkd_cascade_bob *b, struct bob_frame *fr,
		    uint32_t x)
{
	const struct layout *l = &b->l;
	int p, err;

	/*
	 * Only a peer that answers inconsistently can send Bob to a padding
	 * bit or make him flip bits back and forth: give the frame up.
	 */
	if (x >= l->n || fr->corrected >= l->n / 2) {
		fr->failed = true;
		return 0;
	}
	qkd_bv_flip(fr->key, x);
	fr->corrected++;
	for (p = 0; p < fr->started; p++) {
		struct bob_pass *bp = &fr->ps[p];
		uint32_t y = layout_pos(l, p, x);
		uint32_t blk = l->kshift[p] >= 0 ? y >> l->kshift[p] :
			y / l->k[p];

		if (p && bp->bits_ok)
			qkd_bv_flip(bp->bits, y);
		bp->gen[blk]++;
		qkd_bv_flip(bp->btop, blk);
		if (p < pass_limit(b, fr) && bp->top_known &&
		    block_odd(bp, blk) && !qkd_bv_get(bp->active, blk)) {
			err = add_search(bp, blk);
			if (err)
				return err;
		}
	}
	return 0;
}

/*
 * Bisection is bound by cache misses: each step touches the tree and the
 * bits of a random block. Searches are advanced in array order, so the
 * lines of a search PREFETCH places ahead are requested early.
 */

static inline void prefetch_search(const struct layout *l,
				   const struct bob_pass *bp, int p,
				   const struct search *s)
{
	__builtin_prefetch(&bp->gen[s->block]);
	__builtin_prefetch(&bp->tree[((uint64_t)s->block * l->tsize[p] +
				      s->h) >> 5]);
	if (bp->bits_ok)
		__builtin_prefetch(&bp->bits[s->s >> 6]);
}

/*
 * Advance one search as far as known parities allow. Returns 1 if it is
 * waiting for a query, 0 if the block is no longer odd (drop it), 2 if the
 * error was found at position s->s of the pass (flip it, drop the search).
 */
static int advance(struct qkd_cascade_bob *b, struct qkd_cascade_msg *m,
		   uint32_t f, int p, struct search *s, int *err)
{
	const struct layout *l = &b->l;
	struct bob_frame *fr = &b->fr[f];
	struct bob_pass *bp = &fr->ps[p];
	const uint32_t tbase = s->block * l->tsize[p];

	if (!bp->bits_ok) {
		if (!bp->bits)
			bp->bits = malloc(l->W * 8);
		if (!bp->bits) {
			*err = -ENOMEM;
			return 1;
		}
		layout_shuffle(l, p, fr->key, bp->bits);
		bp->bits_ok = true;
	}
	if (s->gen != bp->gen[s->block]) {
		if (!block_odd(bp, s->block))
			return 0;
		s->s = s->block * l->k[p];
		s->len = l->k[p];
		if (s->s + s->len > l->L[p])
			s->len = l->L[p] - s->s;
		s->h = 1;
		s->gen = bp->gen[s->block];
	}
	while (s->len > 1) {
		uint32_t ll = (s->len + 1) / 2;
		unsigned int e = tree_get(bp->tree, tbase + s->h);

		if (!(e & 1)) {
			*err = emit_range(b, m, f, p, s->s, ll, tbase + s->h);
			s->waiting = b->round + 1;
			return 1;
		}
		if ((int)(e >> 1) != qkd_bv_parity_range(bp->bits, s->s, ll)) {
			s->len = ll;
			s->h = 2 * s->h;
		} else {
			s->s += ll;
			s->len -= ll;
			s->h = 2 * s->h + 1;
		}
	}
	return 2;
}

static int start_pass(struct qkd_cascade_bob *b, struct qkd_cascade_msg *m,
		      uint32_t f)
{
	const struct layout *l = &b->l;
	struct bob_frame *fr = &b->fr[f];
	int p = fr->started, err;
	struct bob_pass *bp = &fr->ps[p];
	uint32_t nb = l->nblocks[p], blk;
	size_t tw;

	if (!p) {
		bp->bits = fr->key;
		bp->bits_ok = true;
	} else if (l->perm[p].half) {
		bp->bits_ok = false;
	} else {
		if (!bp->bits)
			bp->bits = malloc(l->W * 8);
		if (!bp->bits)
			return -ENOMEM;
		layout_shuffle(l, p, fr->key, bp->bits);
		bp->bits_ok = true;
	}
	if (!bp->atop) {
		tw = ((size_t)nb * l->tsize[p] * 2 + 63) / 64;
		bp->atop = calloc(QKD_BV_WORDS(nb), 8);
		bp->btop = calloc(QKD_BV_WORDS(nb), 8);
		bp->active = calloc(QKD_BV_WORDS(nb), 8);
		bp->gen = calloc(nb, sizeof(uint32_t));
		bp->tree = calloc(tw, 8);
		if (!bp->atop || !bp->btop || !bp->active || !bp->gen ||
		    !bp->tree)
			return -ENOMEM;
		bp->nb = nb;
		bp->tw = tw;
	} else {
		uint32_t i;

		memset(bp->atop, 0, QKD_BV_WORDS(nb) * 8);
		memset(bp->btop, 0, QKD_BV_WORDS(nb) * 8);
		memset(bp->active, 0, QKD_BV_WORDS(nb) * 8);
		for (i = 0; i < bp->ntouched; i++)
			bp->tree[bp->touched[i]] = 0;
		bp->ntouched = 0;
	}
	bp->nsrch = 0;
	bp->top_known = false;
	if (!bp->bits_ok) {
		int h = layout_half_parity(l, p, fr->key);

		qkd_bv_set(bp->btop, 0, h);
		qkd_bv_set(bp->btop, 1, h ^ key_parity(l, fr->key));
	}
	for (blk = 0; bp->bits_ok && blk < nb; blk++) {
		uint32_t s = blk * l->k[p], e = s + l->k[p];

		if (e > l->L[p])
			e = l->L[p];
		if (qkd_bv_parity_range(bp->bits, s, e - s))
			qkd_bv_set(bp->btop, blk, 1);
	}
	fr->started++;
	err = enc_select(b, m, f, p);
	if (err)
		return err;
	if (msg_reserve(m, 4))
		return -ENOMEM;
	put_varint(m, 1);
	b->pend_bits += nb - (p ? 1 : 0);
	return pend_push(b, f, p, PEND_TOP, 0);
}

static void finish_frame(struct qkd_cascade_bob *b, uint32_t f)
{
	struct bob_frame *fr = &b->fr[f];
	size_t words = QKD_BV_WORDS(b->l.n);
	uint64_t *dst = b->user_keys[f];

	if (b->l.n & 63) {
		uint64_t m = ((uint64_t)1 << (b->l.n & 63)) - 1;

		memcpy(dst, fr->key, (words - 1) * 8);
		dst[words - 1] = (dst[words - 1] & ~m) |
			(fr->key[words - 1] & m);
	} else {
		memcpy(dst, fr->key, words * 8);
	}
	fr->done = true;
	b->st.corrected_bits += fr->corrected;
	if (fr->failed)
		b->st.frames_failed++;
	b->frames_done++;
}

/*
 * One round of one frame (bob_frame_step): advance the searches, smallest
 * blocks (lowest pass) first; without PARALLEL a pass is only advanced
 * when no lower pass has a query in flight this round. When no open pass
 * has a search left, open the next one in the same request (its top was
 * asked in the first; with the reference schedule, ask it now).
 */
/*
 * Advance every search of pass q that is not waiting for an answer.
 * Returns 0, 1 if the frame was given up, or a negative errno.
 */
static int step_pass(struct qkd_cascade_bob *b, struct qkd_cascade_msg *m,
		     uint32_t f, int q, int *em)
{
	struct bob_frame *fr = &b->fr[f];
	struct bob_pass *bp = &fr->ps[q];
	const uint32_t stamp = b->round + 1;
	uint32_t i = 0, blk, y;
	int r, err = 0;

	while (i < bp->nsrch) {
		struct search *s = &bp->srch[i];

		if (s->waiting == stamp) {
			i++;
			continue;
		}
		if (i + PREFETCH < bp->nsrch)
			prefetch_search(&b->l, bp, q, &bp->srch[i + PREFETCH]);
		r = advance(b, m, f, q, s, &err);
		if (err)
			return err;
		if (r == 1) {
			if (!b->parallel && q < *em)
				*em = q;
			i++;
			continue;
		}
		/* finished: remove the search, then flip the bit it found */
		blk = s->block;
		y = s->s;
		qkd_bv_set(bp->active, blk, 0);
		bp->srch[i] = bp->srch[--bp->nsrch];
		if (r != 2)
			continue;
		err = bob_flip(b, fr, layout_orig(&b->l, q, y));
		if (err)
			return err;
		if (fr->failed)
			return 1;
	}
	return 0;
}

/*
 * Lowest pass with a search that can advance, or -1. em is the lowest pass
 * with a query in flight this round: the first FREE_PASSES passes (small
 * blocks, between which corrections chain back and forth) always advance;
 * a later pass (large blocks: a wasted bisection is expensive) waits until
 * no lower pass has a query in flight.
 */
static int lowest_ready_pass(const struct bob_frame *fr, int em,
			     uint32_t stamp)
{
	int p;

	for (p = 0; p < fr->started; p++) {
		const struct bob_pass *bp = &fr->ps[p];
		uint32_t i;

		if (p >= FREE_PASSES && p > em)
			break;
		for (i = 0; i < bp->nsrch; i++)
			if (bp->srch[i].waiting != stamp)
				return p;
	}
	return -1;
}

static int bob_frame_step(struct qkd_cascade_bob *b,
			  struct qkd_cascade_msg *m, uint32_t f)
{
	struct bob_frame *fr = &b->fr[f];
	int em = QKD_CASCADE_MAX_PASSES, p, q, r, err;
	uint32_t nact;

	if (fr->done)
		return 0;
	if (!fr->started) {
		/*
		 * The first request: the block parities of pass 0, or of
		 * every pass (what Alice discloses with them does not
		 * depend on Bob's key, and every pass asks for them).
		 */
		do {
			err = start_pass(b, m, f);
			if (err)
				return err;
		} while (b->tops_ahead && fr->started < b->l.passes);
		fr->open = 1;
		return 0;
	}
	for (;;) {
		while ((q = lowest_ready_pass(fr, em, b->round + 1)) >= 0) {
			r = step_pass(b, m, f, q, &em);
			if (r < 0)
				return r;
			if (r) {
				finish_frame(b, f);
				return 0;
			}
		}
		nact = 0;
		for (p = 0; p < fr->open; p++)
			nact += fr->ps[p].nsrch;
		if (nact) {
			/* PIPELINE: the chains' tail, the next pass joins */
			p = pass_limit(b, fr) - 1;
			if (p < fr->open || fr->ps[p].nsrch)
				return 0;
			err = open_searches(b, fr, p);
			if (err)
				return err;
			if (!fr->ps[p].nsrch)
				return 0;
			continue;
		}
		if (fr->open < fr->started) {
			/* pass open's top is in hand: bisect it now */
			if (!fr->ps[fr->open].top_known)
				return 0;
			fr->open++;
			for (p = 0; p < pass_limit(b, fr); p++) {
				err = open_searches(b, fr, p);
				if (err)
					return err;
			}
			continue;
		}
		if (fr->started < b->l.passes) {
			err = start_pass(b, m, f);
			fr->open = fr->started;
			return err;
		}
		for (p = 0; p < fr->started; p++)
			if (fr->ps[p].nsrch)
				return 0;
		finish_frame(b, f);
		return 0;
	}
}

int qkd_cascade_bob_request(struct qkd_cascade_bob *b,
			    struct qkd_cascade_msg *out)
{
	uint32_t f;
	int err;

	if (b->awaiting)
		return -EBUSY;
	if (msg_reserve(out, MSG_HDR_LEN))
		return -ENOMEM;
	msg_header(out, MSG_REQUEST, b->round);
	b->npend = 0;
	b->pend_bits = 0;
	b->enc_frame = b->enc_pass = -1;
	for (f = 0; f < b->l.nframes; f++) {
		err = bob_frame_step(b, out, f);
		if (err)
			return err;
	}
	if (!b->npend) {
		if (b->frames_done != b->l.nframes)
			return -EPROTO;
		return 0;
	}
	b->awaiting = true;
	b->st.req_bytes += out->len;
	b->st.queries += b->pend_bits;
	return 1;
}

int qkd_cascade_bob_reply(struct qkd_cascade_bob *b, const uint8_t *reply,
			  size_t len)
{
	const struct layout *l = &b->l;
	const uint8_t *bits;
	uint64_t nbits, at = 0;
	size_t i;

	if (!b->awaiting)
		return -EPROTO;
	if (len < MSG_HDR_LEN + 4 || reply[0] != MSG_REPLY ||
	    reply[1] != MSG_VERSION || reply[2] || reply[3] ||
	    get_le32(reply + 4) != b->round)
		return -EPROTO;
	nbits = get_le32(reply + MSG_HDR_LEN);
	if (nbits != b->pend_bits || len != MSG_HDR_LEN + 4 + (nbits + 7) / 8)
		return -EPROTO;
	bits = reply + MSG_HDR_LEN + 4;
	/* the bits after the last parity are zero in an honest answer */
	if ((nbits % 8) && (bits[nbits / 8] >> (nbits % 8)))
		return -EPROTO;
	for (i = 0; i < b->npend; i++) {
		const struct pending *pe = &b->pend[i];

		if (i + PREFETCH < b->npend &&
		    b->pend[i + PREFETCH].kind == PEND_NODE) {
			const struct pending *pf = &b->pend[i + PREFETCH];

			__builtin_prefetch(&b->fr[pf->frame].ps[pf->pass]
					   .tree[pf->idx >> 5], 1);
		}
		struct bob_frame *fr = &b->fr[pe->frame];
		struct bob_pass *bp = &fr->ps[pe->pass];
		int bit;

		if (fr->done) {	/* frame given up after its query left */
			at += pe->kind == PEND_NODE ? 1 :
				l->nblocks[pe->pass] - (pe->pass ? 1 : 0);
			continue;
		}
		if (pe->kind == PEND_NODE) {
			bit = (bits[at / 8] >> (at % 8)) & 1;
			at++;
			if (tree_set(bp, pe->idx, bit))
				return -ENOMEM;
			fr->disclosed++;
			continue;
		}
		{
			uint32_t nb = l->nblocks[pe->pass], blk, sent;
			int par = 0;

			sent = nb - (pe->pass ? 1 : 0);
			for (blk = 0; blk < sent; blk++) {
				bit = (bits[at / 8] >> (at % 8)) & 1;
				at++;
				par ^= bit;
				if (bit)
					qkd_bv_set(bp->atop, blk, 1);
			}
			fr->disclosed += sent;
			if (!pe->pass)
				fr->total_parity = par;
			else if (fr->total_parity ^ par)
				qkd_bv_set(bp->atop, nb - 1, 1);
			bp->top_known = true;
			if (pe->pass < pass_limit(b, fr) &&
			    open_searches(b, fr, pe->pass))
				return -ENOMEM;
		}
	}
	b->st.disclosed_bits += nbits;
	b->st.reply_bytes += len;
	b->st.rounds++;
	b->round++;
	b->awaiting = false;
	return 0;
}

int qkd_cascade_bob_run(struct qkd_cascade_bob *b,
			const struct qkd_cascade_transport *t)
{
	struct qkd_cascade_msg req = { 0 };
	const uint8_t *reply;
	size_t rlen;
	int r;

	for (;;) {
		r = qkd_cascade_bob_request(b, &req);
		if (r <= 0)
			break;
		r = t->roundtrip(t->ctx, req.data, req.len, &reply, &rlen);
		if (r)
			break;
		r = qkd_cascade_bob_reply(b, reply, rlen);
		if (r)
			break;
	}
	qkd_cascade_msg_free(&req);
	return r;
}

int qkd_cascade_loopback_roundtrip(void *ctx, const uint8_t *req,
				   size_t req_len, const uint8_t **reply,
				   size_t *reply_len)
{
	struct qkd_cascade_loopback *lb = ctx;
	int r = qkd_cascade_alice_handle(lb->alice, req, req_len, &lb->reply);

	if (r)
		return r;
	*reply = lb->reply.data;
	*reply_len = lb->reply.len;
	return 0;
}
