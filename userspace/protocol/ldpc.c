// SPDX-License-Identifier: GPL-2.0-only
/*
 * Rate-adaptive LDPC reconciliation: see qkd/ldpc.h for the protocol and
 * the API, Documentation/protocol.md ("LDPC reconciliation") for the leak
 * accounting and the measured efficiency.
 *
 * Construction. The matrix has m rows and N = n + p columns. Column
 * degrees 2, 3, 8 and 24, in fractions from a table by the mother code's
 * rate (dist_counts, optimized offline by tools/ldpc_de.c, more degree 24
 * from rate 0.75 up by measurement). The construction is part of the wire
 * format: MSG_VERSION changes with it. The degree-2
 * columns, at most m - 1, form a path
 * through the rows in a seeded random order: no cycle, so no codeword on
 * degree-2 columns alone. The others are placed column by column in order
 * of increasing degree, each edge to a row of lowest current weight that
 * is not within distance 2 of the column's rows so far (progressive edge
 * growth cut at depth 1: no 4-cycles, no double edges, row weights within
 * one or two of each other). Ties are broken by a PRNG seeded from the
 * public seed and the dimensions, so both ends build the same matrix.
 * Then p columns are chosen to be punctured, greedily among the lowest
 * degrees: a column qualifies if it has a row that no punctured column
 * touches yet, which it then reserves for itself (no other punctured
 * column may touch a reserved row). Each punctured column thus owns a row
 * in which it is the only punctured column: H restricted to the punctured
 * columns has rank p (the leak accounting needs it), and each punctured
 * bit is recoverable in one step once the key bits are known. Columns are
 * then renumbered: key bits 0 .. n-1, punctured n .. N-1 in the order
 * they are revealed.
 *
 * Decoding. Layered sum-product (rows processed in order, each updating
 * the posteriors at once: about half the iterations of flooding), in the
 * tanh domain: per edge one exp2 in and one log2 out, a few float
 * operations each, in loops the compiler vectorizes. Flat arrays: row
 * starts, column indices and check-to-variable messages per edge in row
 * order, posteriors per column; the workspace is allocated once per Bob.
 * Early stop as soon as the hard decisions satisfy every row; success is
 * claimed only then, and only if the frame's tag matches too. A decoding
 * whose count of unsatisfied rows has not fallen for STALL_ITERS
 * iterations gives up before max_iter (the next reveal step is what it
 * needs): the same frames decode, at about 0.6 of the CPU time (8
 * iterations rather than 12: 0.9 of the iterations again, f the same
 * within 0.001 at QBER 2 %).
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <qkd/bitvec.h>
#include <qkd/ldpc.h>
#include <qkd/le.h>
#include <qkd/verify.h>
#include <qkd/prng.h>

#define MSG_SYNDROME	1
#define MSG_MORE	2
#define MSG_REVEAL	3
/*
 * The messages' version is also the matrix construction's: both ends must
 * build the same H from the parameters, so a change of the construction
 * (the degree table, the placement) bumps it and an old end refuses a new
 * one's SYNDROME ("SYNDROME of another version") instead of decoding with
 * another matrix. 1: the density-evolution table; 2: more degree-24
 * columns from rate 0.75 up (bench_ldpc, 2026-12-07); 3: frame tags of
 * 32 bits instead of 64.
 */
#define MSG_VERSION	3
#define MSG_HDR_LEN	16
#define TAG_BYTES	(QKD_LDPC_TAG_BITS / 8)

#define LLR_KNOWN	40.0f	/* a bit whose value is known */
#define R_MAX		0.9999990f /* |check message| <= 2 atanh(R_MAX) ~ 14.5 */
#define STALL_ITERS	8	/* iterations without progress: stuck */
#define T_MIN		1e-9f	/* tanh(|L|/2) floor: punctured bits start at 0 */

/*
 * A frame's tag: the low QKD_LDPC_TAG_BITS of the GF(2^64) polynomial
 * hash of qkd/verify.h under Alice's hash key. It only tells Bob whether
 * a word with the right syndrome is Alice's (a wrong one is hers plus a
 * codeword); the round's verification (qkd_verify_make, 64 bits or more)
 * is what makes the key correct. Truncating keeps the hash almost
 * universal: for two different frames the difference of their hashes is
 * a nonzero polynomial of degree d + 1 (d the frame's 64-bit words) in
 * the key, which takes each of the 2^64 / 2^TAG values with the same low
 * bits at most d + 1 times, so a wrong word passes with probability at
 * most (d + 1) 2^-TAG: 1000 / 2^32 = 2.3e-7 for a 2^16-bit frame, and
 * then costs the round's verification, not the key. 32 bits instead of
 * 64 cut the leak by 0.0036 n h(Q) at QBER 2 % (protocol.md).
 */
static uint64_t frame_tag(uint64_t hkey, const uint64_t *x, uint32_t n)
{
	return qkd_verify_hash64(hkey, x, n) &
	       (QKD_LDPC_TAG_BITS >= 64 ? ~0ull :
		(1ull << (QKD_LDPC_TAG_BITS % 64)) - 1);
}

/* ----------------------------------------------------------- params */

double qkd_ldpc_h2(double q)
{
	if (q <= 0 || q >= 1)
		return 0;
	return -q * log2(q) - (1 - q) * log2(1 - q);
}

int qkd_ldpc_params_check(const struct qkd_ldpc_params *p, const char **why)
{
	const char *w = NULL;

	if (!p)
		w = "no parameters";
	else if (p->frame_bits < QKD_LDPC_MIN_FRAME_BITS ||
		 p->frame_bits > QKD_LDPC_MAX_FRAME_BITS)
		w = "frame length out of range";
	else if (!p->nframes || p->nframes > QKD_LDPC_MAX_FRAMES)
		w = "number of frames out of range";
	else if (p->p >= p->m)
		w = "punctured bits not below syndrome bits";
	else if (p->m > p->frame_bits)
		/* rate below p/(n+p): no use for QBER <= 11 % */
		w = "more syndrome bits than key bits";
	else if (p->m - p->p < p->frame_bits / 64)
		w = "syndrome too short for the frame";
	else if (p->max_steps > QKD_LDPC_MAX_STEPS)
		w = "too many reveal steps";
	else if (p->max_steps && !p->step_bits)
		w = "reveal steps of zero bits";
	else if ((uint64_t)p->step_bits * p->max_steps > p->p)
		w = "reveal steps beyond the punctured bits";
	else if (!p->qber_ppm || p->qber_ppm > 200000)
		w = "QBER estimate out of range";
	else if (!p->max_iter || p->max_iter > 1000)
		w = "iteration limit out of range";
	if (why)
		*why = w;
	return w ? -EINVAL : 0;
}

/*
 * Efficiency of the first attempt, f0(q), the tag not counted, and the
 * reveal steps: MAX_STEPS steps of REVEAL_F n h(q) punctured bits each
 * (p = MAX_STEPS step_bits). Measured with bench_ldpc (2026-12-07, 2^16-bit
 * frames, the distribution of dist_tab): the frames' own thresholds spread
 * from about 1.06 to 1.17 (a frame's error count spreads by sqrt(n q)
 * around n q, the estimate by its sample's, and decodings stall), so a
 * low first attempt with small steps gives the lowest mean leak: each
 * frame pays about its own threshold rounded up to a step. The steps
 * must reach about 1.18 (f0 1.08 with four of 0.02, or 1.075 with five
 * of 0.015, left 2-3 frames of 112 failed at QBER 2 %); five of 0.02
 * from 1.08 leaked 0.005 less than three of 0.03 from 1.09 at 2 %, for
 * 1.2 times the decoding work (more attempts) and up to 11 messages.
 * At QBER 8 % the finer steps gained 0.0045 for 1.47 times the work:
 * from 6.5 % on, f0 1.09 and three steps of 0.03 as before.
 * Below QBER 1.5 % (rows of 50-120 ones) frames need more and stall more
 * often: 1.14 (with the table before 2026-12-07, 1.10-1.12 left 1-8
 * frames of 112 failed).
 */
#define REVEAL_F	0.02
#define MAX_STEPS	5
#define COARSE_Q	0.065	/* from here on: COARSE_F steps */
#define COARSE_F	0.03
#define COARSE_STEPS	3
static double f0_for(double q)
{
	if (q < 0.015)
		return 1.14;
	if (q >= COARSE_Q)
		return 1.09;
	return 1.08;
}

int qkd_ldpc_default_params(struct qkd_ldpc_params *p, uint32_t frame_bits,
			    uint32_t nframes, double qber, uint64_t seed)
{
	double nh;

	memset(p, 0, sizeof(*p));
	if (!(qber >= 0.005 && qber <= 0.11))
		return -EINVAL;
	nh = frame_bits * qkd_ldpc_h2(qber);
	p->frame_bits = frame_bits;
	p->nframes = nframes;
	p->max_steps = qber >= COARSE_Q ? COARSE_STEPS : MAX_STEPS;
	p->step_bits = (uint32_t)ceil((qber >= COARSE_Q ? COARSE_F : REVEAL_F) *
				      nh);
	p->p = p->step_bits * p->max_steps;
	p->m = (uint32_t)ceil(f0_for(qber) * nh) + p->p;
	p->qber_ppm = (uint32_t)(qber * 1e6 + 0.5);
	p->max_iter = 60;
	p->seed = seed;
	return qkd_ldpc_params_check(p, NULL);
}

/*
 * The reveal steps' reach. A frame decodes once the disclosed syndrome
 * is about f_hi n h(Q) bits, Q its true QBER and f_hi the upper end of
 * the code's thresholds, f0 + REACH_HI, plus what a short frame loses to
 * its length, REACH_SHORT / sqrt(n). Q differs from the estimate by the
 * frame's own binomial spread and the sample's, sd = sqrt(est (1 - est)
 * (1/n + 1/k)); the steps reach Q = est + REACH_Z sd. Set so that at
 * 2^16-bit frames and the samples of 2^20-bit blocks and above the reach
 * is the five steps, which left no frame of 112 failed in bench_ldpc; a
 * 13 762-bit frame with a 3441-bit sample (2^14-bit blocks) at QBER 3 %
 * gets eight steps reaching 1.4 n h(est): 1 of 120 frames failed at
 * QBER 2 and 3 % (bench_ldpc -b 16384 -D 60), against 44 of 120 with the
 * five steps.
 */
#define REACH_Z		3.0
#define REACH_HI	0.02
#define REACH_SHORT	2.0
#define QBER_STEP	0.0005

int qkd_ldpc_daemon_params(struct qkd_ldpc_params *p, uint32_t frame_bits,
			   uint32_t nframes, double est, uint64_t sample_bits,
			   uint64_t seed)
{
	double qe = est < 0.005 ? 0.005 : est > 0.11 ? 0.11 : est;
	double ik = sample_bits ? 1.0 / (double)sample_bits : 0; /* 0: exact */
	double qg, sd, qhi, need;
	uint64_t base, steps, step;
	int r;

	if (!(est >= 0 && est <= 0.11) || !frame_bits)
		return -EINVAL;
	/*
	 * The syndrome for the estimate plus its standard error: a frame
	 * that does not decode is sent whole, some ten times its syndrome;
	 * at 2^21-bit blocks the margin is about 1.5 % of the QBER, at
	 * 2^16 about 9 %.
	 */
	qg = qe + sqrt(qe * (1 - qe) * ik);
	qg = ceil(qg / QBER_STEP - 1e-9) * QBER_STEP;
	if (qg > 0.11)
		qg = 0.11;
	r = qkd_ldpc_default_params(p, frame_bits, nframes, qg, seed);
	if (r)
		return r;
	p->qber_ppm = (uint32_t)(qe * 1e6 + 0.5);
	sd = sqrt(qe * (1 - qe) * (1.0 / frame_bits + ik));
	qhi = qe + REACH_Z * sd;
	if (qhi > 0.5)
		qhi = 0.5;
	need = (f0_for(qg) + REACH_HI + REACH_SHORT / sqrt(frame_bits)) *
	       frame_bits * qkd_ldpc_h2(qhi);
	base = p->m - p->p;
	if ((double)p->m >= need)
		return qkd_ldpc_params_check(p, NULL);
	/* more steps of the same size, then larger steps */
	steps = (uint64_t)ceil((need - (double)base) / p->step_bits);
	step = p->step_bits;
	if (steps > QKD_LDPC_MAX_STEPS) {
		steps = QKD_LDPC_MAX_STEPS;
		step = (uint64_t)ceil((need - (double)base) / steps);
	}
	if (base + steps * step > frame_bits) {
		/* no more syndrome than key bits: as far as that goes */
		step = (frame_bits - base) / steps;
		if (!step)
			return -EINVAL;
	}
	p->step_bits = (uint32_t)step;
	p->max_steps = (uint32_t)steps;
	p->p = (uint32_t)(step * steps);
	p->m = (uint32_t)(base + p->p);
	return qkd_ldpc_params_check(p, NULL);
}

void qkd_ldpc_daemon_frames(size_t n, uint32_t *frame_bits, uint32_t *nframes)
{
	size_t nf = (n + QKD_LDPC_DAEMON_FRAME_MAX - 1) /
		    QKD_LDPC_DAEMON_FRAME_MAX, f;

	if (!nf)
		nf = 1;
	f = n / nf;
	/*
	 * A multiple of QKD_LDPC_DAEMON_FRAME_STEP when the frames are that
	 * long: the frame length is then the same from one round to the
	 * next (the key length varies by a few hundred bits), and so is the
	 * matrix, which a daemon builds once and keeps.
	 */
	if (f >= 64 * QKD_LDPC_DAEMON_FRAME_STEP)
		f -= f % QKD_LDPC_DAEMON_FRAME_STEP;
	*nframes = (uint32_t)nf;
	*frame_bits = (uint32_t)f;
}

size_t qkd_ldpc_params_encode(const struct qkd_ldpc_params *p, uint8_t *buf)
{
	qkd_put_le(buf, p->frame_bits, 4);
	qkd_put_le(buf + 4, p->nframes, 4);
	qkd_put_le(buf + 8, p->m, 4);
	qkd_put_le(buf + 12, p->p, 4);
	qkd_put_le(buf + 16, p->step_bits, 4);
	qkd_put_le(buf + 20, p->max_steps, 4);
	qkd_put_le(buf + 24, p->qber_ppm, 4);
	qkd_put_le(buf + 28, p->max_iter, 4);
	qkd_put_le(buf + 32, p->seed, 8);
	return QKD_LDPC_PARAMS_LEN;
}

int qkd_ldpc_params_decode(struct qkd_ldpc_params *p, const uint8_t *buf,
			   size_t len, const char **why)
{
	struct qkd_ldpc_params t;
	int r;

	if (len != QKD_LDPC_PARAMS_LEN) {
		if (why)
			*why = "LDPC parameters of the wrong length";
		return -EPROTO;
	}
	t.frame_bits = (uint32_t)qkd_get_le(buf, 4);
	t.nframes = (uint32_t)qkd_get_le(buf + 4, 4);
	t.m = (uint32_t)qkd_get_le(buf + 8, 4);
	t.p = (uint32_t)qkd_get_le(buf + 12, 4);
	t.step_bits = (uint32_t)qkd_get_le(buf + 16, 4);
	t.max_steps = (uint32_t)qkd_get_le(buf + 20, 4);
	t.qber_ppm = (uint32_t)qkd_get_le(buf + 24, 4);
	t.max_iter = (uint32_t)qkd_get_le(buf + 28, 4);
	t.seed = qkd_get_le(buf + 32, 8);
	r = qkd_ldpc_params_check(&t, why);
	if (r)
		return r;	/* *p untouched: nothing taken from a bad message */
	*p = t;
	return 0;
}

/* ------------------------------------------------------ construction */

struct qkd_ldpc_code {
	uint32_t n, p, N, m;
	uint64_t E;
	uint32_t max_row, max_col;
	uint32_t *rs;		/* m + 1 row starts */
	uint32_t *col;		/* E column indices, row by row, ascending */
	uint64_t digest;
};

/*
 * Column degree distribution for the mother rate R = 1 - m/N: columns of
 * degree 2, 3, 8 and 24 (node fractions), optimized by density evolution
 * for the BSC with the offline tool tools/ldpc_de.c (Gaussian
 * approximation with the BSC's two-point channel kept exact; rows
 * concentrated; the p punctured columns, p/m = 0.076, taken as degree-2
 * columns with no channel information; the first attempt's efficiency
 * (m - p) / (n h(q*)) at its threshold q* minimized: "ldpc_de -d 8:24 -a 5
 * -P 0.076" prints this table, before the shift of its rows from rate
 * 0.75 up described below). Degree 2 at most m - 1 columns
 * (qkd_ldpc_code_new lays them as a path; the optimum puts it at that
 * bound from R 0.70 up, at 35-45 % of the columns below). The approximation is optimistic at
 * high rates (f* below 1.03 above R 0.9 cannot be right), so the measured
 * efficiency (bench_ldpc, Documentation/protocol.md) is the arbiter: of
 * the degree pairs {6, 20} and {8, 24} tried for the two upper degrees,
 * {8, 24} measured best at QBER 2, 5 and 8 %, against the former
 * hand-tuned {2, 3, 14} (threshold f* 1.082 at R 0.83 in the same
 * approximation, 1.029 now). From rate 0.75 up (QBER below about 3.5 %)
 * the measurement moved 3750 of the 10^5 columns from degree 8 and 3000 to
 * degree 24 (a few more edges: +4-8 %), which the approximation rates
 * slightly worse: each frame's own threshold (the fewest revealed bits
 * with which it decodes, 24 frames of 62 912 bits, the same frames for
 * both tables) fell on average from 1.123 to 1.111 at QBER 1 %, 1.101
 * to 1.086 at 2 % and 1.084 to 1.077 at 3 %; the same shift at rates
 * 0.54 and 0.67 raised it (1.105 to 1.126 at 8 %, 1.082 to 1.097 at
 * 5 %), and those rows stay as the tool printed them. Moving 5000 from
 * degree 2, or degree 32 or 10 for 24 or 8, measured worse at 2 %. The
 * table is computed offline, in parts per
 * 10^5 of the columns, and indexed with integer arithmetic only: both
 * ends must get exactly the same counts whatever their compiler does with
 * floating point.
 */
#define NDEG 4
/*
 * { degree 2, degree dm, degree dh } per 10^5 columns, dm, dh; the rest
 * degree 3. R 0.40-0.97 by 0.01; f* and q*: the tool's threshold (of
 * the tool's row, for the rows shifted from R 0.75 up).
 */
static const uint32_t dist_tab[][5] = {
	{ 44500, 10000, 10000,  8, 24 },	/* R 0.40: f* 1.0681, q* 0.1251 */
	{ 43500, 10000, 10000,  8, 24 },	/* R 0.41: f* 1.0662, q* 0.1221 */
	{ 42500, 10000, 10000,  8, 24 },	/* R 0.42: f* 1.0649, q* 0.1190 */
	{ 41250, 10000, 10000,  8, 24 },	/* R 0.43: f* 1.0628, q* 0.1161 */
	{ 41250, 10500, 10000,  8, 24 },	/* R 0.44: f* 1.0614, q* 0.1131 */
	{ 40500, 11500,  9500,  8, 24 },	/* R 0.45: f* 1.0562, q* 0.1107 */
	{ 39250, 11500,  9500,  8, 24 },	/* R 0.46: f* 1.0543, q* 0.1079 */
	{ 38000, 11500,  9500,  8, 24 },	/* R 0.47: f* 1.0533, q* 0.1049 */
	{ 36750, 11500,  9500,  8, 24 },	/* R 0.48: f* 1.0526, q* 0.1020 */
	{ 36750, 12000,  9500,  8, 24 },	/* R 0.49: f* 1.0512, q* 0.0992 */
	{ 37000, 12500,  9500,  8, 24 },	/* R 0.50: f* 1.0503, q* 0.0963 */
	{ 37250, 13000,  9500,  8, 24 },	/* R 0.51: f* 1.0500, q* 0.0935 */
	{ 36250, 13000,  9500,  8, 24 },	/* R 0.52: f* 1.0491, q* 0.0907 */
	{ 36250, 13500,  9500,  8, 24 },	/* R 0.53: f* 1.0478, q* 0.0880 */
	{ 36500, 14000,  9500,  8, 24 },	/* R 0.54: f* 1.0470, q* 0.0853 */
	{ 36000, 15000,  9000,  8, 24 },	/* R 0.55: f* 1.0430, q* 0.0830 */
	{ 34750, 15000,  9000,  8, 24 },	/* R 0.56: f* 1.0424, q* 0.0804 */
	{ 34750, 15500,  9000,  8, 24 },	/* R 0.57: f* 1.0413, q* 0.0778 */
	{ 35250, 16000,  9000,  8, 24 },	/* R 0.58: f* 1.0406, q* 0.0753 */
	{ 35500, 16500,  9000,  8, 24 },	/* R 0.59: f* 1.0402, q* 0.0727 */
	{ 35500, 17000,  9000,  8, 24 },	/* R 0.60: f* 1.0396, q* 0.0702 */
	{ 34250, 17000,  9000,  8, 24 },	/* R 0.61: f* 1.0383, q* 0.0678 */
	{ 34500, 17500,  9000,  8, 24 },	/* R 0.62: f* 1.0375, q* 0.0654 */
	{ 34750, 18000,  9000,  8, 24 },	/* R 0.63: f* 1.0369, q* 0.0630 */
	{ 34750, 18500,  9000,  8, 24 },	/* R 0.64: f* 1.0368, q* 0.0606 */
	{ 34750, 19000,  9000,  8, 24 },	/* R 0.65: f* 1.0364, q* 0.0583 */
	{ 33750, 19000,  9000,  8, 24 },	/* R 0.66: f* 1.0343, q* 0.0561 */
	{ 32250, 19000,  9000,  8, 24 },	/* R 0.67: f* 1.0330, q* 0.0539 */
	{ 31000, 19000,  9000,  8, 24 },	/* R 0.68: f* 1.0316, q* 0.0517 */
	{ 31000, 19500,  9000,  8, 24 },	/* R 0.69: f* 1.0310, q* 0.0496 */
	{ 29500, 19500,  9000,  8, 24 },	/* R 0.70: f* 1.0296, q* 0.0475 */
	{ 27500, 19500,  9000,  8, 24 },	/* R 0.71: f* 1.0294, q* 0.0453 */
	{ 28000, 20000,  9000,  8, 24 },	/* R 0.72: f* 1.0280, q* 0.0433 */
	{ 25750, 20000,  9000,  8, 24 },	/* R 0.73: f* 1.0287, q* 0.0412 */
	{ 26000, 20500,  9000,  8, 24 },	/* R 0.74: f* 1.0270, q* 0.0392 */
	{ 25000, 17000, 12000,  8, 24 },	/* R 0.75: DE row f* 1.0264, dm -3750, dh +3000 */
	{ 24000, 17250, 12000,  8, 24 },	/* R 0.76: DE row f* 1.0265, dm -3750, dh +3000 */
	{ 23000, 17500, 12000,  8, 24 },	/* R 0.77: DE row f* 1.0269, dm -3750, dh +3000 */
	{ 22000, 18000, 12000,  8, 24 },	/* R 0.78: DE row f* 1.0267, dm -3750, dh +3000 */
	{ 21000, 18250, 12000,  8, 24 },	/* R 0.79: DE row f* 1.0266, dm -3750, dh +3000 */
	{ 20000, 18750, 12000,  8, 24 },	/* R 0.80: DE row f* 1.0272, dm -3750, dh +3000 */
	{ 19000, 19000, 12000,  8, 24 },	/* R 0.81: DE row f* 1.0276, dm -3750, dh +3000 */
	{ 18000, 19500, 12000,  8, 24 },	/* R 0.82: DE row f* 1.0280, dm -3750, dh +3000 */
	{ 17000, 20000, 12000,  8, 24 },	/* R 0.83: DE row f* 1.0287, dm -3750, dh +3000 */
	{ 16000, 20500, 12000,  8, 24 },	/* R 0.84: DE row f* 1.0297, dm -3750, dh +3000 */
	{ 15000, 20500, 12250,  8, 24 },	/* R 0.85: DE row f* 1.0283, dm -3750, dh +3000 */
	{ 14000, 20750, 12500,  8, 24 },	/* R 0.86: DE row f* 1.0267, dm -3750, dh +3000 */
	{ 13000, 21250, 12500,  8, 24 },	/* R 0.87: DE row f* 1.0276, dm -3750, dh +3000 */
	{ 12000, 21500, 12750,  8, 24 },	/* R 0.88: DE row f* 1.0257, dm -3750, dh +3000 */
	{ 11000, 21750, 13000,  8, 24 },	/* R 0.89: DE row f* 1.0238, dm -3750, dh +3000 */
	{ 10000, 22000, 13250,  8, 24 },	/* R 0.90: DE row f* 1.0217, dm -3750, dh +3000 */
	{  9000, 22250, 13500,  8, 24 },	/* R 0.91: DE row f* 1.0194, dm -3750, dh +3000 */
	{  8000, 22500, 13750,  8, 24 },	/* R 0.92: DE row f* 1.0171, dm -3750, dh +3000 */
	{  7000, 22500, 14250,  8, 24 },	/* R 0.93: DE row f* 1.0125, dm -3750, dh +3000 */
	{  6000, 22750, 14750,  8, 24 },	/* R 0.94: DE row f* 1.0088, dm -3750, dh +3000 */
	{  5000, 23000, 15250,  8, 24 },	/* R 0.95: DE row f* 1.0047, dm -3750, dh +3000 */
	{  4000, 23250, 15750,  8, 24 },	/* R 0.96: DE row f* 1.0001, dm -3750, dh +3000 */
	{  3000, 24250, 16250,  8, 24 },	/* R 0.97: DE row f* 0.9948, dm -3750, dh +3000 */
};

static void dist_counts(uint32_t N, uint32_t m, uint32_t cnt[NDEG],
			uint32_t deg[NDEG])
{
	uint64_t r = (uint64_t)(N - m) * 1000 / N;	/* rate, per mille */
	size_t i, last = sizeof(dist_tab) / sizeof(dist_tab[0]) - 1;

	i = r < 400 ? 0 : (size_t)(r - 400) / 10;
	if (i > last)
		i = last;
	/* in order of increasing degree (dm < dh), as PEG places them */
	deg[0] = 2;
	deg[1] = 3;
	deg[2] = dist_tab[i][3];
	deg[3] = dist_tab[i][4];
	/*
	 * Short frames at low QBER have fewer rows than the high degree:
	 * a column cannot touch a row twice, so degrees are capped at m (the
	 * order stays increasing).
	 */
	if (deg[3] > m)
		deg[3] = m;
	if (deg[2] > m)
		deg[2] = m;
	cnt[0] = (uint32_t)((uint64_t)N * dist_tab[i][0] / 100000);
	cnt[2] = (uint32_t)((uint64_t)N * dist_tab[i][1] / 100000);
	cnt[3] = (uint32_t)((uint64_t)N * dist_tab[i][2] / 100000);
	/*
	 * At most m - 1 columns of degree 2, laid as a path (see
	 * qkd_ldpc_code_new): a cycle of degree-2 columns is a codeword of
	 * its length, and low-weight codewords are what makes a decoder
	 * settle on a wrong word whose syndrome matches.
	 */
	if (cnt[0] > m - 1)
		cnt[0] = m - 1;
	cnt[1] = N - cnt[0] - cnt[2] - cnt[3];
}

void qkd_ldpc_code_free(struct qkd_ldpc_code *c)
{
	if (!c)
		return;
	free(c->rs);
	free(c->col);
	free(c);
}

struct peg {
	uint32_t m, cap;
	uint32_t *cdeg, *cadj;		/* m, m * cap */
	uint32_t *order, *pos, *bstart;	/* buckets of checks by degree */
	uint32_t *stamp;
	uint32_t dmin;
};

/* Check c gains an edge: it moves from bucket d to bucket d + 1. */
static void peg_bump(struct peg *g, uint32_t c)
{
	uint32_t d = g->cdeg[c], last = g->bstart[d + 1] - 1;
	uint32_t o = g->order[last], pc = g->pos[c];

	g->order[last] = c;
	g->order[pc] = o;
	g->pos[o] = pc;
	g->pos[c] = last;
	g->bstart[d + 1]--;
	g->cdeg[c]++;
	while (g->dmin < g->cap && g->bstart[g->dmin] == g->bstart[g->dmin + 1])
		g->dmin++;
}

/* A check of lowest degree not stamped with mark; UINT32_MAX if none. */
static uint32_t peg_pick(struct peg *g, struct qkd_prng *r, uint32_t mark)
{
	uint32_t d, i, lo, sz, c, start;

	for (d = g->dmin; d < g->cap; d++) {
		lo = g->bstart[d];
		sz = g->bstart[d + 1] - lo;
		if (!sz)
			continue;
		for (i = 0; i < 8; i++) {
			c = g->order[lo + qkd_prng_below(r, sz)];
			if (g->stamp[c] != mark)
				return c;
		}
		start = qkd_prng_below(r, sz);
		for (i = 0; i < sz; i++) {
			c = g->order[lo + (start + i) % sz];
			if (g->stamp[c] != mark)
				return c;
		}
	}
	return UINT32_MAX;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t digest_words(uint64_t h, const uint32_t *w, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= w[i];
		h *= 0x100000001b3ULL;
		h ^= h >> 29;
	}
	return h;
}

struct qkd_ldpc_code *qkd_ldpc_code_new(const struct qkd_ldpc_params *p)
{
	struct qkd_ldpc_code *c = NULL;
	struct peg g = { 0 };
	struct qkd_prng r;
	uint32_t N, m, v, k, i, j, cnt[NDEG], dist_deg[NDEG], sel = 0, cap;
	uint32_t mark = 0;
	uint32_t *vdeg = NULL, *vstart = NULL, *vadj = NULL, *label = NULL;
	uint32_t *cand = NULL, *ccount = NULL;
	uint8_t *reserved = NULL, *punct = NULL;
	uint64_t E = 0, seedmix;
	int err = -ENOMEM;

	if (qkd_ldpc_params_check(p, NULL)) {
		errno = EINVAL;
		return NULL;
	}
	N = p->frame_bits + p->p;
	m = p->m;
	dist_counts(N, m, cnt, dist_deg);
	for (i = 0; i < NDEG; i++)
		E += (uint64_t)cnt[i] * dist_deg[i];
	if (E > UINT32_MAX / 2) {
		errno = EINVAL;
		return NULL;
	}
	cap = (uint32_t)((E + m - 1) / m) + 6;

	c = calloc(1, sizeof(*c));
	vdeg = malloc(N * sizeof(*vdeg));
	vstart = malloc((N + 1) * sizeof(*vstart));
	vadj = malloc(E * sizeof(*vadj));
	g.cdeg = calloc(m, sizeof(*g.cdeg));
	g.cadj = malloc((size_t)m * cap * sizeof(*g.cadj));
	g.order = malloc(m * sizeof(*g.order));
	g.pos = malloc(m * sizeof(*g.pos));
	g.bstart = malloc((cap + 2) * sizeof(*g.bstart));
	g.stamp = calloc(m, sizeof(*g.stamp));
	if (!c || !vdeg || !vstart || !vadj || !g.cdeg || !g.cadj ||
	    !g.order || !g.pos || !g.bstart || !g.stamp)
		goto out;
	g.m = m;
	g.cap = cap;
	for (i = 0; i < m; i++) {
		g.order[i] = i;
		g.pos[i] = i;
	}
	g.bstart[0] = 0;
	for (i = 1; i < cap + 2; i++)
		g.bstart[i] = m;

	/* columns in order of increasing degree, as PEG places them */
	for (v = 0, i = 0; i < NDEG; i++)
		for (j = 0; j < cnt[i]; j++)
			vdeg[v++] = dist_deg[i];
	vstart[0] = 0;
	for (v = 0; v < N; v++)
		vstart[v + 1] = vstart[v] + vdeg[v];

	seedmix = p->seed ^ ((uint64_t)p->frame_bits << 40) ^
		  ((uint64_t)p->m << 20) ^ p->p;
	qkd_prng_seed(&r, seedmix);
	/*
	 * The degree-2 columns (the first cnt[0]) form a path through the
	 * checks in a seeded random order: column j joins checks perm[j] and
	 * perm[j + 1]. A path has no cycle, so no codeword lies on degree-2
	 * columns alone (the staircase of IRA codes, shuffled).
	 */
	cand = malloc(m * sizeof(*cand));
	if (!cand)
		goto out;
	for (i = 0; i < m; i++)
		cand[i] = i;
	for (i = m; i > 1; i--) {
		uint32_t x = qkd_prng_below(&r, i), t = cand[i - 1];

		cand[i - 1] = cand[x];
		cand[x] = t;
	}
	for (v = 0; v < cnt[0]; v++)
		for (k = 0; k < 2; k++) {
			uint32_t ch = cand[v + k];

			vadj[vstart[v] + k] = ch;
			g.cadj[(size_t)ch * cap + g.cdeg[ch]] = v;
			peg_bump(&g, ch);
		}
	free(cand);
	cand = NULL;
	for (v = cnt[0]; v < N; v++) {
		for (k = 0; k < vdeg[v]; k++) {
			uint32_t ch = UINT32_MAX, a, b;

			if (++mark == 0) {	/* stamps wrapped: clear them */
				memset(g.stamp, 0, m * sizeof(*g.stamp));
				mark = 1;
			}
			/* checks within distance 2 of v: no 4-cycle */
			for (a = 0; a < k; a++) {
				uint32_t cc = vadj[vstart[v] + a];

				g.stamp[cc] = mark;
				for (b = 0; b < g.cdeg[cc]; b++) {
					uint32_t w = g.cadj[(size_t)cc * cap + b];
					uint32_t e, we = w == v ? vstart[v] + k :
								   vstart[w + 1];

					for (e = vstart[w]; e < we; e++)
						g.stamp[vadj[e]] = mark;
				}
			}
			ch = peg_pick(&g, &r, mark);
			if (ch == UINT32_MAX) {
				/* small codes: accept a 4-cycle, never a double edge */
				if (++mark == 0) {
					memset(g.stamp, 0, m * sizeof(*g.stamp));
					mark = 1;
				}
				for (a = 0; a < k; a++)
					g.stamp[vadj[vstart[v] + a]] = mark;
				ch = peg_pick(&g, &r, mark);
			}
			if (ch == UINT32_MAX) {
				err = -EINVAL;
				goto out;
			}
			vadj[vstart[v] + k] = ch;
			g.cadj[(size_t)ch * cap + g.cdeg[ch]] = v;
			peg_bump(&g, ch);
		}
	}

	/*
	 * Punctured columns: lowest degree first, in a seeded random order
	 * within a degree; each must reserve a check no punctured column
	 * touches yet, and touch no check reserved by another.
	 */
	cand = malloc(N * sizeof(*cand));
	ccount = calloc(m, sizeof(*ccount));
	reserved = calloc(m, 1);
	punct = calloc(N, 1);
	label = malloc(N * sizeof(*label));
	if (!cand || !ccount || !reserved || !punct || !label)
		goto out;
	for (v = 0; v < N; v++)
		cand[v] = v;
	for (i = 0, v = 0; i < NDEG; v += cnt[i], i++)
		for (j = cnt[i]; j > 1; j--) {
			uint32_t x = qkd_prng_below(&r, j), t = cand[v + j - 1];

			cand[v + j - 1] = cand[v + x];
			cand[v + x] = t;
		}
	for (i = 0; i < N && sel < p->p; i++) {
		uint32_t own = UINT32_MAX, e;

		v = cand[i];
		for (e = vstart[v]; e < vstart[v + 1]; e++) {
			if (reserved[vadj[e]])
				break;
			if (!ccount[vadj[e]] && own == UINT32_MAX)
				own = vadj[e];
		}
		if (e < vstart[v + 1] || own == UINT32_MAX)
			continue;
		reserved[own] = 1;
		for (e = vstart[v]; e < vstart[v + 1]; e++)
			ccount[vadj[e]]++;
		punct[v] = 1;
		label[v] = p->frame_bits + sel++;
	}
	if (sel < p->p) {
		err = -EINVAL;	/* too many punctured bits for this code */
		goto out;
	}
	for (v = 0, j = 0; v < N; v++)
		if (!punct[v])
			label[v] = j++;

	/* row-major, renumbered, each row sorted (locality of the gathers) */
	c->n = p->frame_bits;
	c->p = p->p;
	c->N = N;
	c->m = m;
	c->E = E;
	c->rs = malloc((m + 1) * sizeof(*c->rs));
	c->col = malloc(E * sizeof(*c->col));
	if (!c->rs || !c->col)
		goto out;
	c->rs[0] = 0;
	for (i = 0; i < m; i++) {
		uint32_t *row = c->col + c->rs[i];

		c->rs[i + 1] = c->rs[i] + g.cdeg[i];
		for (k = 0; k < g.cdeg[i]; k++)
			row[k] = label[g.cadj[(size_t)i * cap + k]];
		qsort(row, g.cdeg[i], sizeof(*row), cmp_u32);
		if (g.cdeg[i] > c->max_row)
			c->max_row = g.cdeg[i];
	}
	for (i = 0; i < NDEG; i++)
		if (cnt[i] && dist_deg[i] > c->max_col)
			c->max_col = dist_deg[i];
	c->digest = digest_words(0xcbf29ce484222325ULL, &c->n, 1);
	c->digest = digest_words(c->digest, &c->p, 1);
	c->digest = digest_words(c->digest, &c->m, 1);
	c->digest = digest_words(c->digest, c->rs, m + 1);
	c->digest = digest_words(c->digest, c->col, E);
	err = 0;
out:
	free(vdeg);
	free(vstart);
	free(vadj);
	free(g.cdeg);
	free(g.cadj);
	free(g.order);
	free(g.pos);
	free(g.bstart);
	free(g.stamp);
	free(cand);
	free(ccount);
	free(reserved);
	free(punct);
	free(label);
	if (err) {
		qkd_ldpc_code_free(c);
		errno = -err;
		return NULL;
	}
	return c;
}

uint64_t qkd_ldpc_code_digest(const struct qkd_ldpc_code *c)
{
	return c->digest;
}

void qkd_ldpc_code_shape(const struct qkd_ldpc_code *c, uint64_t *edges,
			 uint32_t *max_row, uint32_t *max_col)
{
	*edges = c->E;
	*max_row = c->max_row;
	*max_col = c->max_col;
}

static inline int word_bit(const struct qkd_ldpc_code *c, const uint64_t *x,
			   const uint64_t *u, uint32_t v)
{
	if (v < c->n)
		return qkd_bv_get(x, v);
	return u ? qkd_bv_get(u, v - c->n) : 0;
}

void qkd_ldpc_syndrome(const struct qkd_ldpc_code *c, const uint64_t *x,
		       const uint64_t *u, uint64_t *s)
{
	uint32_t i, e;

	memset(s, 0, QKD_BV_WORDS(c->m) * 8);
	for (i = 0; i < c->m; i++) {
		int par = 0;

		for (e = c->rs[i]; e < c->rs[i + 1]; e++)
			par ^= word_bit(c, x, u, c->col[e]);
		if (par)
			s[i >> 6] |= (uint64_t)1 << (i & 63);
	}
}

/* ------------------------------------------------------------ decoder */

struct ws {
	float *L;	/* N posteriors */
	float *R;	/* E check-to-variable messages */
	float *q;	/* max_row: a row's variable-to-check messages */
	float *t;	/* max_row: their tanh(|q|/2) */
	float *x;	/* max_row: product of the others' */
	uint64_t *y;	/* the decoded key, until its tag is checked */
	size_t ysz;
	size_t Lsz, Rsz, qsz;
};

static void ws_free(struct ws *w)
{
	if (w->L)
		explicit_bzero(w->L, w->Lsz);
	if (w->R)
		explicit_bzero(w->R, w->Rsz);
	if (w->q)
		explicit_bzero(w->q, w->qsz);
	if (w->t)
		explicit_bzero(w->t, w->qsz);
	if (w->x)
		explicit_bzero(w->x, w->qsz);
	if (w->y)
		explicit_bzero(w->y, w->ysz);
	free(w->x);
	free(w->y);
	free(w->L);
	free(w->R);
	free(w->q);
	free(w->t);
	memset(w, 0, sizeof(*w));
}

static int ws_init(struct ws *w, const struct qkd_ldpc_code *c)
{
	memset(w, 0, sizeof(*w));
	w->Lsz = (size_t)c->N * sizeof(float);
	w->Rsz = (size_t)c->E * sizeof(float);
	w->L = malloc(w->Lsz);
	w->R = malloc(w->Rsz);
	w->qsz = (size_t)c->max_row * sizeof(float);
	w->q = malloc(w->qsz);
	w->t = malloc(w->qsz);
	w->x = malloc(w->qsz);
	w->ysz = QKD_BV_WORDS(c->n) * 8;
	w->y = malloc(w->ysz);
	if (!w->L || !w->R || !w->q || !w->t || !w->x || !w->y) {
		ws_free(w);
		return -ENOMEM;
	}
	return 0;
}

#define LOG2E	1.44269504f
#define LN2	0.69314718f

/*
 * 2^y for y <= 0 and log2(x) for normal x > 0, to about 1e-5: enough for
 * belief propagation, several times faster than expf()/logf(), and plain
 * arithmetic on the float's bits, which the compiler vectorizes.
 */
static inline float fast_exp2(float y)
{
	float fi, f, pw, sc;
	int32_t e;
	uint32_t bits;

	y = y < -125.0f ? -125.0f : y;
	fi = (float)(int32_t)y;		/* toward zero: y - fi in (-1, 0] */
	f = y - fi;
	pw = 1.0f + f * (0.69314718f + f * (0.24022651f + f * (0.05550411f +
	     f * (0.00961813f + f * 0.00133336f))));
	e = (int32_t)fi;
	bits = (uint32_t)(e + 127) << 23;
	memcpy(&sc, &bits, sizeof(sc));
	return pw * sc;
}

static inline float fast_log2(float x)
{
	uint32_t b;
	float t;
	int32_t e;

	memcpy(&b, &x, sizeof(b));
	e = (int32_t)(b >> 23) - 127;
	b = (b & 0x7fffff) | 0x3f800000;
	memcpy(&t, &b, sizeof(t));
	t -= 1.0f;				/* [0, 1) */
	/* log2(1 + t), fitted at Chebyshev nodes: error < 1e-6, no division */
	return (float)e + t * (1.44265636f + t * (-0.72038939f +
	       t * (0.47237999f + t * (-0.32259124f + t * (0.18950247f +
	       t * (-0.07611437f + t * 0.01455638f))))));
}

/* Checks of s the hard decisions of the posteriors do not satisfy. */
static uint32_t syndrome_unsat(const struct qkd_ldpc_code *c, const float *L,
			       const uint64_t *s)
{
	uint32_t i, e, bad = 0;

	for (i = 0; i < c->m; i++) {
		uint32_t par = (uint32_t)qkd_bv_get(s, i);

		for (e = c->rs[i]; e < c->rs[i + 1]; e++)
			par ^= L[c->col[e]] < 0;
		bad += par;
	}
	return bad;
}

/*
 * One decoding attempt. y: Bob's n bits; u: the first r punctured bits
 * (known). Returns 1 and writes the corrected key into y only if the hard
 * decisions satisfy every check and agree with the known bits.
 */
static int bp_decode(const struct qkd_ldpc_code *c,
		     const struct qkd_ldpc_params *p, struct ws *w,
		     uint64_t *y, const uint64_t *s, const uint64_t *u,
		     uint32_t r, const uint64_t *hk_tag, uint32_t *iters)
{
	double qb = p->qber_ppm * 1e-6;
	float l0 = (float)log((1 - qb) / qb);
	float *restrict L = w->L, *restrict R = w->R, *restrict qv = w->q;
	float *restrict tv = w->t, *restrict xv = w->x;
	uint32_t v, i, it, k, unsat, least = UINT32_MAX, since = 0;
	int ok = 0;

	for (v = 0; v < c->n; v++)
		L[v] = qkd_bv_get(y, v) ? -l0 : l0;
	for (v = 0; v < c->p; v++)
		L[c->n + v] = v < r ? (qkd_bv_get(u, v) ? -LLR_KNOWN : LLR_KNOWN)
				    : 0.0f;
	memset(R, 0, (size_t)c->E * sizeof(float));
	for (it = 0; it < p->max_iter && !ok; it++) {
		for (i = 0; i < c->m; i++) {
			uint32_t beg = c->rs[i], d = c->rs[i + 1] - beg;
			const uint32_t *col = c->col + beg;
			float *restrict Re = R + beg, prod = 1.0f;
			uint32_t neg = (uint32_t)qkd_bv_get(s, i);

			/*
			 * Gather, then straight-line loops the compiler
			 * vectorizes. The product of the other edges' tanh is
			 * the row's product over the edge's own: tanh is
			 * floored at T_MIN so that a punctured bit's 0 divides
			 * out (its edge gets the others' product, the others
			 * about T_MIN: nothing, as they should). Four partial
			 * products break the multiplications' dependency chain.
			 */
			for (k = 0; k < d; k++)
				qv[k] = L[col[k]] - Re[k];
			for (k = 0; k < d; k++) {
				float ex = fast_exp2(-fabsf(qv[k]) * LOG2E);
				float t = (1.0f - ex) / (1.0f + ex);

				tv[k] = t < T_MIN ? T_MIN : t;
				neg ^= qv[k] < 0;
			}
			{
				float p0 = 1.0f, p1 = 1.0f, p2 = 1.0f, p3 = 1.0f;

				for (k = 0; k + 4 <= d; k += 4) {
					p0 *= tv[k];
					p1 *= tv[k + 1];
					p2 *= tv[k + 2];
					p3 *= tv[k + 3];
				}
				for (; k < d; k++)
					p0 *= tv[k];
				prod = (p0 * p1) * (p2 * p3);
			}
			for (k = 0; k < d; k++)
				xv[k] = prod / tv[k];
			for (k = 0; k < d; k++) {
				float x = xv[k] > R_MAX ? R_MAX : xv[k], mag;

				mag = LN2 * fast_log2((1.0f + x) / (1.0f - x));
				Re[k] = (neg ^ (qv[k] < 0)) ? -mag : mag;
			}
			for (k = 0; k < d; k++)
				L[col[k]] = qv[k] + Re[k];
		}
		unsat = syndrome_unsat(c, L, s);
		ok = !unsat;
		/*
		 * A decoding that has not lowered its count of unsatisfied
		 * checks for STALL_ITERS iterations is stuck (a trapping set,
		 * or a rate below what its errors need): give up early, the
		 * next reveal step is what it needs, not more iterations.
		 */
		if (unsat < least) {
			least = unsat;
			since = it;
		} else if (it - since >= STALL_ITERS) {
			it++;
			break;
		}
	}
	if (iters)
		*iters = it;
	if (!ok)
		return 0;
	for (v = 0; v < r; v++)	/* a known bit overruled: no success */
		if ((L[c->n + v] < 0) != qkd_bv_get(u, v))
			return 0;
	for (v = 0; v < c->n; v += 64) {
		uint64_t wd = 0;
		uint32_t b, lim = c->n - v < 64 ? c->n - v : 64;

		for (b = 0; b < lim; b++)
			wd |= (uint64_t)(L[v + b] < 0) << b;
		w->y[v / 64] = wd;
	}
	/*
	 * A word with the right syndrome may still be the wrong one (the
	 * true one plus a low-weight codeword): Alice's tag tells.
	 */
	if (hk_tag && frame_tag(hk_tag[0], w->y, c->n) != hk_tag[1]) {
		explicit_bzero(w->y, w->ysz);
		return 0;
	}
	memcpy(y, w->y, w->ysz);
	explicit_bzero(w->y, w->ysz);
	return 1;
}

int qkd_ldpc_decode(const struct qkd_ldpc_code *c,
		    const struct qkd_ldpc_params *p, uint64_t *y,
		    const uint64_t *s, const uint64_t *u_known, uint32_t r,
		    uint32_t *iters)
{
	struct ws w;
	int ok;

	if (r > c->p)
		return -EINVAL;
	if (ws_init(&w, c))
		return -ENOMEM;
	ok = bp_decode(c, p, &w, y, s, u_known, r, NULL, iters);
	ws_free(&w);
	return ok;
}

/* ----------------------------------------------------------- messages */

void qkd_ldpc_msg_free(struct qkd_ldpc_msg *m)
{
	if (m->data && m->cap)
		explicit_bzero(m->data, m->cap);
	free(m->data);
	m->data = NULL;
	m->len = m->cap = 0;
}

/* Room for len bytes, zeroed; the old contents are wiped first. */
static int msg_prepare(struct qkd_ldpc_msg *m, size_t len)
{
	if (len > m->cap) {
		uint8_t *d = malloc(len);

		if (!d)
			return -ENOMEM;
		qkd_ldpc_msg_free(m);
		m->data = d;
		m->cap = len;
	}
	memset(m->data, 0, m->cap);
	m->len = len;
	return 0;
}

static void msg_header(uint8_t *h, uint8_t type, uint8_t step,
		       uint32_t a, uint32_t b)
{
	h[0] = type;
	h[1] = MSG_VERSION;
	h[2] = step;
	h[3] = 0;
	qkd_put_le(h + 4, a, 4);
	qkd_put_le(h + 8, b, 4);
	qkd_put_le(h + 12, 0, 4);
}

/* Bits [from, from + nbits) of src packed LSB first into dst. */
static void pack_bits(uint8_t *dst, const uint64_t *src, uint32_t from,
		      uint32_t nbits)
{
	uint32_t i;

	for (i = 0; i < nbits; i++)
		if (qkd_bv_get(src, from + i))
			dst[i >> 3] |= (uint8_t)(1u << (i & 7));
}

static void unpack_bits(uint64_t *dst, uint32_t from, const uint8_t *src,
			uint32_t nbits)
{
	uint32_t i;

	for (i = 0; i < nbits; i++)
		qkd_bv_set(dst, from + i, (src[i >> 3] >> (i & 7)) & 1);
}

/* The bits after the last of nbits are zero in an honest message. */
static int pad_clear(const uint8_t *src, uint32_t nbits)
{
	return !(nbits & 7) || !(src[nbits >> 3] >> (nbits & 7));
}

/* ---------------------------------------------------------------- Alice */

struct qkd_ldpc_alice {
	const struct qkd_ldpc_code *c;
	struct qkd_ldpc_params p;
	size_t wn, wp;		/* words of a key, of the punctured bits */
	uint64_t *x;		/* nframes keys */
	uint64_t *u;		/* nframes punctured bits */
	uint32_t *revealed;
	uint32_t step;
	int sent;
	uint64_t hkey;		/* the frames' tags' hash key, nonzero */
	struct qkd_ldpc_stats st;
};

void qkd_ldpc_alice_free(struct qkd_ldpc_alice *a)
{
	if (!a)
		return;
	if (a->x)
		explicit_bzero(a->x, a->wn * a->p.nframes * 8);
	if (a->u)
		explicit_bzero(a->u, a->wp * a->p.nframes * 8);
	free(a->x);
	free(a->u);
	free(a->revealed);
	free(a);
}

static int fill_random(void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t k = getrandom((char *)buf + got, len - got, 0);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)k;
	}
	return 0;
}

struct qkd_ldpc_alice *qkd_ldpc_alice_new(const struct qkd_ldpc_code *c,
					  const struct qkd_ldpc_params *p,
					  const uint64_t *const *keys)
{
	struct qkd_ldpc_alice *a;
	uint32_t f;

	if (!c || qkd_ldpc_params_check(p, NULL) || c->n != p->frame_bits ||
	    c->m != p->m || c->p != p->p) {
		errno = EINVAL;
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->c = c;
	a->p = *p;
	a->wn = QKD_BV_WORDS(p->frame_bits);
	a->wp = QKD_BV_WORDS(p->p);
	a->x = calloc(a->wn * p->nframes, 8);
	a->u = calloc(a->wp * p->nframes, 8);
	a->revealed = calloc(p->nframes, sizeof(*a->revealed));
	if (!a->x || !a->u || !a->revealed)
		goto fail;
	for (f = 0; f < p->nframes; f++) {
		memcpy(a->x + f * a->wn, keys[f], a->wn * 8);
		qkd_bv_clear_tail(a->x + f * a->wn, p->frame_bits);
	}
	/* secret and uniform: the one-time pad behind the leak's "- p" */
	if (fill_random(a->u, a->wp * p->nframes * 8))
		goto fail;
	for (f = 0; f < p->nframes; f++)
		qkd_bv_clear_tail(a->u + f * a->wp, p->p);
	do {
		if (fill_random(&a->hkey, sizeof(a->hkey)))
			goto fail;
	} while (!a->hkey);
	return a;
fail:
	qkd_ldpc_alice_free(a);
	errno = ENOMEM;
	return NULL;
}

int qkd_ldpc_alice_syndrome(struct qkd_ldpc_alice *a, struct qkd_ldpc_msg *out)
{
	const struct qkd_ldpc_code *c = a->c;
	size_t fb = (c->m + 7) / 8 + TAG_BYTES, wm = QKD_BV_WORDS(c->m);
	uint64_t *s;
	uint32_t f;

	if (a->sent)
		return -EALREADY;
	s = malloc(wm * 8);
	if (!s || msg_prepare(out, MSG_HDR_LEN + 8 + fb * a->p.nframes)) {
		free(s);
		return -ENOMEM;
	}
	msg_header(out->data, MSG_SYNDROME, 0, a->p.nframes, c->m);
	qkd_put_le(out->data + MSG_HDR_LEN, a->hkey, 8);
	for (f = 0; f < a->p.nframes; f++) {
		uint8_t *fr = out->data + MSG_HDR_LEN + 8 + f * fb;

		qkd_ldpc_syndrome(c, a->x + f * a->wn, a->u + f * a->wp, s);
		pack_bits(fr, s, 0, c->m);
		qkd_put_le(fr + fb - TAG_BYTES,
			   frame_tag(a->hkey, a->x + f * a->wn, c->n), TAG_BYTES);
	}
	explicit_bzero(s, wm * 8);
	free(s);
	a->sent = 1;
	a->st.leak_bits = (uint64_t)(c->m - c->p + QKD_LDPC_TAG_BITS) *
			  a->p.nframes;
	a->st.msgs++;
	a->st.bytes += out->len;
	return 0;
}

int qkd_ldpc_alice_handle(struct qkd_ldpc_alice *a, const uint8_t *req,
			  size_t len, struct qkd_ldpc_msg *out,
			  const char **why)
{
	const char *w = NULL;
	uint32_t count, i, f, prev = 0, sb = a->p.step_bits;
	size_t cb = (sb + 7) / 8;
	uint8_t step;

	if (!a->sent)
		w = "MORE before the syndrome was sent";
	else if (len < MSG_HDR_LEN || req[0] != MSG_MORE)
		w = "not a MORE message";
	else if (req[1] != MSG_VERSION)
		w = "MORE of another version";
	else if (req[3] || qkd_get_le(req + 8, 4) || qkd_get_le(req + 12, 4))
		w = "MORE with a reserved field set";
	else if ((step = req[2]) != a->step + 1)
		w = "MORE for another step than the next";
	else if (step > a->p.max_steps)
		w = "MORE beyond the agreed reveal steps";
	else if (!(count = (uint32_t)qkd_get_le(req + 4, 4)) || count > a->p.nframes)
		w = "MORE with a frame count out of range";
	else if (len != MSG_HDR_LEN + 4 * (size_t)count)
		w = "MORE of the wrong length";
	if (!w) {
		for (i = 0; i < count && !w; i++) {
			f = (uint32_t)qkd_get_le(req + MSG_HDR_LEN + 4 * i, 4);
			if (f >= a->p.nframes || (i && f <= prev))
				w = "MORE frames not increasing or out of range";
			else if (a->revealed[f] != (uint32_t)(step - 1) * sb)
				w = "MORE for a frame Bob already decoded";
			prev = f;
		}
	}
	if (w) {
		if (why)
			*why = w;
		return -EPROTO;
	}
	if (msg_prepare(out, MSG_HDR_LEN + cb * count))
		return -ENOMEM;
	msg_header(out->data, MSG_REVEAL, step, count, sb);
	for (i = 0; i < count; i++) {
		f = (uint32_t)qkd_get_le(req + MSG_HDR_LEN + 4 * i, 4);
		pack_bits(out->data + MSG_HDR_LEN + i * cb, a->u + f * a->wp,
			  a->revealed[f], sb);
		a->revealed[f] += sb;
	}
	a->step = step;
	a->st.steps = step;
	a->st.leak_bits += (uint64_t)sb * count;
	a->st.msgs += 2;
	a->st.bytes += len + out->len;
	return 0;
}

uint64_t qkd_ldpc_alice_frame_leak(const struct qkd_ldpc_alice *a,
				   uint32_t frame)
{
	if (!a->sent || frame >= a->p.nframes)
		return 0;
	return (uint64_t)(a->p.m - a->p.p + QKD_LDPC_TAG_BITS) +
	       a->revealed[frame];
}

void qkd_ldpc_alice_stats(const struct qkd_ldpc_alice *a,
			  struct qkd_ldpc_stats *s)
{
	*s = a->st;
}

/* ------------------------------------------------------------------ Bob */

struct qkd_ldpc_bob {
	const struct qkd_ldpc_code *c;
	struct qkd_ldpc_params p;
	size_t wm, wp;
	uint64_t *const *keys;
	uint64_t *s;		/* nframes syndromes */
	uint64_t *tag;		/* nframes: hash key, then the frame's tag */
	uint64_t *u;		/* nframes revealed punctured bits */
	uint32_t *revealed;
	uint8_t *state;
	uint32_t *req;		/* frames of the last MORE */
	uint32_t nreq;
	uint32_t step;
	int got_syndrome, done;
	/* a workspace per decoding thread (qkd_ldpc_bob_set_threads) */
	unsigned int nthreads;
	struct ws w[QKD_LDPC_MAX_THREADS];
	int *res;		/* per frame of req: bp_decode's result */
	uint32_t *its;		/* and its iterations */
	struct qkd_ldpc_stats st;
};

void qkd_ldpc_bob_free(struct qkd_ldpc_bob *b)
{
	if (!b)
		return;
	if (b->s)
		explicit_bzero(b->s, b->wm * b->p.nframes * 8);
	if (b->u)
		explicit_bzero(b->u, b->wp * b->p.nframes * 8);
	free(b->s);
	free(b->tag);
	free(b->u);
	free(b->revealed);
	free(b->state);
	free(b->req);
	free(b->res);
	free(b->its);
	for (unsigned int t = 0; t < QKD_LDPC_MAX_THREADS; t++)
		ws_free(&b->w[t]);
	free(b);
}

struct qkd_ldpc_bob *qkd_ldpc_bob_new(const struct qkd_ldpc_code *c,
				      const struct qkd_ldpc_params *p,
				      uint64_t *const *keys)
{
	struct qkd_ldpc_bob *b;

	if (!c || qkd_ldpc_params_check(p, NULL) || c->n != p->frame_bits ||
	    c->m != p->m || c->p != p->p) {
		errno = EINVAL;
		return NULL;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->c = c;
	b->p = *p;
	b->keys = keys;
	b->wm = QKD_BV_WORDS(p->m);
	b->wp = QKD_BV_WORDS(p->p);
	b->s = calloc(b->wm * p->nframes, 8);
	b->tag = calloc(2 * (size_t)p->nframes, 8);
	b->u = calloc(b->wp * p->nframes, 8);
	b->revealed = calloc(p->nframes, sizeof(*b->revealed));
	b->state = calloc(p->nframes, 1);
	b->req = calloc(p->nframes, sizeof(*b->req));
	b->res = calloc(p->nframes, sizeof(*b->res));
	b->its = calloc(p->nframes, sizeof(*b->its));
	b->nthreads = 1;
	if (!b->s || !b->tag || !b->u || !b->revealed || !b->state || !b->req ||
	    !b->res || !b->its || ws_init(&b->w[0], c)) {
		qkd_ldpc_bob_free(b);
		errno = ENOMEM;
		return NULL;
	}
	return b;
}

int qkd_ldpc_bob_set_threads(struct qkd_ldpc_bob *b, unsigned int n)
{
	if (!n || n > QKD_LDPC_MAX_THREADS)
		return -EINVAL;
	for (unsigned int t = b->nthreads; t < n; t++)
		if (ws_init(&b->w[t], b->c)) {
			b->nthreads = t;
			return -ENOMEM;
		}
	for (unsigned int t = n; t < b->nthreads; t++)
		ws_free(&b->w[t]);
	b->nthreads = n;
	return 0;
}

/*
 * Decoding share t of the frames asked (every nthreads-th from t), in
 * workspace t. Each frame is decoded alone, into its own key and result:
 * the shares touch nothing in common, and the outcome is the same
 * whatever the number of threads.
 */
static void bob_decode_share(struct qkd_ldpc_bob *b, unsigned int t)
{
	struct ws *w = &b->w[t];

	for (uint32_t i = t; i < b->nreq; i += b->nthreads) {
		uint32_t f = b->req[i];

		b->res[i] = bp_decode(b->c, &b->p, w, b->keys[f],
				      b->s + f * b->wm, b->u + f * b->wp,
				      b->revealed[f], b->tag + 2 * f,
				      &b->its[i]);
	}
	/* soft values of the last attempt are derived from the key */
	explicit_bzero(w->L, w->Lsz);
	explicit_bzero(w->R, w->Rsz);
	explicit_bzero(w->q, w->qsz);
	explicit_bzero(w->t, w->qsz);
	explicit_bzero(w->x, w->qsz);
}

struct bob_job {
	struct qkd_ldpc_bob *b;
	unsigned int t;
	double cpu_s;		/* the thread's CPU time */
};

static void *bob_decode_thread(void *arg)
{
	struct bob_job *j = arg;
	struct timespec ts;

	bob_decode_share(j->b, j->t);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	j->cpu_s = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	return NULL;
}

/*
 * The frames asked, on up to nthreads threads: shares 1.. on threads of
 * their own (a share whose thread cannot be made runs here after ours),
 * share 0 on the caller's. The helpers' CPU time goes to the stats.
 */
static void bob_decode_all(struct qkd_ldpc_bob *b)
{
	pthread_t th[QKD_LDPC_MAX_THREADS];
	struct bob_job job[QKD_LDPC_MAX_THREADS];
	unsigned int nt = b->nthreads < b->nreq ? b->nthreads : b->nreq;
	unsigned int t, started = 1;

	for (t = 1; t < nt; t++) {
		job[t] = (struct bob_job){ .b = b, .t = t };
		if (pthread_create(&th[t], NULL, bob_decode_thread, &job[t]))
			break;
		started++;
	}
	bob_decode_share(b, 0);
	for (t = started; t < nt; t++)
		bob_decode_share(b, t);
	for (t = 1; t < started; t++) {
		pthread_join(th[t], NULL);
		b->st.thread_cpu_s += job[t].cpu_s;
	}
}

/* Parse a SYNDROME; nothing is changed unless all of it is well formed. */
static const char *bob_parse_syndrome(const struct qkd_ldpc_bob *b,
				      const uint8_t *msg, size_t len)
{
	size_t fb = (b->p.m + 7) / 8 + TAG_BYTES;
	uint32_t f;

	if (len < MSG_HDR_LEN || msg[0] != MSG_SYNDROME)
		return "not a SYNDROME message";
	if (msg[1] != MSG_VERSION)
		return "SYNDROME of another version";
	if (msg[2] || msg[3] || qkd_get_le(msg + 12, 4))
		return "SYNDROME with a reserved field set";
	if ((uint32_t)qkd_get_le(msg + 4, 4) != b->p.nframes)
		return "SYNDROME for another number of frames";
	if ((uint32_t)qkd_get_le(msg + 8, 4) != b->p.m)
		return "SYNDROME of another length than agreed";
	if (len != MSG_HDR_LEN + 8 + fb * b->p.nframes)
		return "SYNDROME of the wrong length";
	if (!qkd_get_le(msg + MSG_HDR_LEN, 8))
		return "SYNDROME with a zero hash key";
	for (f = 0; f < b->p.nframes; f++)
		if (!pad_clear(msg + MSG_HDR_LEN + 8 + f * fb, b->p.m))
			return "SYNDROME with a padding bit set";
	return NULL;
}

static const char *bob_parse_reveal(const struct qkd_ldpc_bob *b,
				    const uint8_t *msg, size_t len)
{
	size_t cb = (b->p.step_bits + 7) / 8;
	uint32_t i;

	if (!b->nreq)
		return "REVEAL that was not asked for";
	if (len < MSG_HDR_LEN || msg[0] != MSG_REVEAL)
		return "not a REVEAL message";
	if (msg[1] != MSG_VERSION)
		return "REVEAL of another version";
	if (msg[3] || (uint32_t)qkd_get_le(msg + 12, 4))
		return "REVEAL with a reserved field set";
	if (msg[2] != b->step + 1)
		return "REVEAL for another step than asked";
	if ((uint32_t)qkd_get_le(msg + 4, 4) != b->nreq)
		return "REVEAL for another number of frames than asked";
	if ((uint32_t)qkd_get_le(msg + 8, 4) != b->p.step_bits)
		return "REVEAL of another step size than agreed";
	if (len != MSG_HDR_LEN + cb * b->nreq)
		return "REVEAL of the wrong length";
	for (i = 0; i < b->nreq; i++)
		if (!pad_clear(msg + MSG_HDR_LEN + i * cb, b->p.step_bits))
			return "REVEAL with a padding bit set";
	return NULL;
}

int qkd_ldpc_bob_handle(struct qkd_ldpc_bob *b, const uint8_t *msg,
			size_t len, struct qkd_ldpc_msg *out, const char **why)
{
	const char *w;
	uint32_t f, i, nfail = 0;

	if (b->done)
		w = "message after reconciliation ended";
	else if (!b->got_syndrome)
		w = bob_parse_syndrome(b, msg, len);
	else
		w = bob_parse_reveal(b, msg, len);
	if (w) {
		if (why)
			*why = w;
		return -EPROTO;
	}
	if (!b->got_syndrome) {
		size_t fb = (b->p.m + 7) / 8 + TAG_BYTES;

		for (f = 0; f < b->p.nframes; f++) {
			const uint8_t *fr = msg + MSG_HDR_LEN + 8 + f * fb;

			unpack_bits(b->s + f * b->wm, 0, fr, b->p.m);
			b->tag[2 * f] = qkd_get_le(msg + MSG_HDR_LEN, 8);
			b->tag[2 * f + 1] = qkd_get_le(fr + fb - TAG_BYTES,
						       TAG_BYTES);
			b->req[f] = f;
		}
		b->nreq = b->p.nframes;
		b->got_syndrome = 1;
		b->st.leak_bits = (uint64_t)(b->p.m - b->p.p +
					     QKD_LDPC_TAG_BITS) * b->p.nframes;
		b->st.msgs++;
	} else {
		size_t cb = (b->p.step_bits + 7) / 8;

		for (i = 0; i < b->nreq; i++) {
			f = b->req[i];
			unpack_bits(b->u + f * b->wp, b->revealed[f],
				    msg + MSG_HDR_LEN + i * cb,
				    b->p.step_bits);
			b->revealed[f] += b->p.step_bits;
		}
		b->step++;
		b->st.steps = b->step;
		b->st.leak_bits += (uint64_t)b->p.step_bits * b->nreq;
		b->st.msgs++;
	}
	b->st.bytes += len;
	bob_decode_all(b);
	for (i = 0; i < b->nreq; i++) {
		f = b->req[i];
		b->st.iterations += b->its[i];
		b->st.decodes++;
		if (b->res[i] == 1) {
			b->state[f] = QKD_LDPC_FRAME_OK;
			b->st.frames_ok++;
		} else {
			b->req[nfail++] = f;
		}
	}
	b->nreq = nfail;
	if (!nfail || b->step >= b->p.max_steps) {
		for (i = 0; i < nfail; i++)
			b->state[b->req[i]] = QKD_LDPC_FRAME_FAILED;
		b->st.frames_failed += nfail;
		b->nreq = 0;
		b->done = 1;
		return 0;
	}
	if (msg_prepare(out, MSG_HDR_LEN + 4 * (size_t)nfail))
		return -ENOMEM;
	msg_header(out->data, MSG_MORE, (uint8_t)(b->step + 1), nfail, 0);
	for (i = 0; i < nfail; i++)
		qkd_put_le(out->data + MSG_HDR_LEN + 4 * i, b->req[i], 4);
	b->st.msgs++;
	b->st.bytes += out->len;
	return 1;
}

enum qkd_ldpc_frame_state qkd_ldpc_bob_frame_state(const struct qkd_ldpc_bob *b,
						   uint32_t frame)
{
	if (frame >= b->p.nframes)
		return QKD_LDPC_FRAME_FAILED;
	return (enum qkd_ldpc_frame_state)b->state[frame];
}

uint64_t qkd_ldpc_bob_frame_leak(const struct qkd_ldpc_bob *b, uint32_t frame)
{
	if (!b->got_syndrome || frame >= b->p.nframes)
		return 0;
	return (uint64_t)(b->p.m - b->p.p + QKD_LDPC_TAG_BITS) +
	       b->revealed[frame];
}

void qkd_ldpc_bob_stats(const struct qkd_ldpc_bob *b, struct qkd_ldpc_stats *s)
{
	*s = b->st;
}
