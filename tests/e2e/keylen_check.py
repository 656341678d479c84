#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""keylen_check.py LOG STATUS [--expect ok|zero] [--min-rounds N]

Recompute the secret key length of every round of a qkdd log from what the
daemon published -- the "estimate:" line of each round (sifted counts per
intensity class, X errors, disclosed bits, secret_bits) and the bound's
parameters in its status file (mu, p_mu, eps_sec, eps_cor) -- with the
decoy-state formula of Documentation/protocol.md ("Secret key length",
Lim et al. 2014), written out here again on purpose: this is not the
daemon's qkd_keylen_decoy(), so an error in either shows as a mismatch.

--expect ok: every round gave key, and the recomputed length equals the
  daemon's secret_bits exactly.
--expect zero: no round gave key, and the recomputed bound is zero for
  every round that got to the estimate (with the disclosed bits the
  daemon logged; 0 where it did not know them -- an upper bound).

Prints one "# round N: ..." line a round; exit 0 if all held, 1 if not.
"""
import math
import re
import sys


def status(path):
    kv = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            kv[k] = v
    return kv


def h2(p):
    if p <= 0 or p >= 1:
        return 0.0
    return -p * math.log2(p) - (1 - p) * math.log2(1 - p)


def bound(mu, p, nz, nx, mx, leak, eps_sec, eps_cor):
    """ℓ before the floor (None: no key), as protocol.md writes it."""
    m1, m2, m3 = mu
    ln21 = math.log(21 / eps_sec)
    tau0 = sum(p[k] * math.exp(-mu[k]) for k in range(3))
    tau1 = sum(p[k] * math.exp(-mu[k]) * mu[k] for k in range(3))

    def pm(cnt):
        d = math.sqrt(sum(cnt) / 2 * ln21)
        plus = [math.exp(mu[k]) / p[k] * (cnt[k] + d) for k in range(3)]
        minus = [math.exp(mu[k]) / p[k] * (cnt[k] - d) for k in range(3)]
        return plus, minus

    def s01(cnt):
        plus, minus = pm(cnt)
        s0 = max(0.0, tau0 * (m2 * minus[2] - m3 * plus[1]) / (m2 - m3))
        s1 = tau1 * m1 * (minus[1] - plus[2] -
                          (m2 ** 2 - m3 ** 2) / m1 ** 2 *
                          (plus[0] - s0 / tau0)) / \
            (m1 * (m2 - m3) - m2 ** 2 + m3 ** 2)
        return s0, max(0.0, s1)

    sz0, sz1 = s01(nz)
    _, sx1 = s01(nx)
    mplus, mminus = pm(mx)
    vx1 = tau1 * (mplus[1] - mminus[2]) / (m2 - m3)
    if sz1 <= 0 or sx1 <= 0:
        return None, "no single-photon events guaranteed"
    b = vx1 / sx1
    if b >= 0.5:
        return None, "phase error bound %.3f" % b
    if b > 0:
        c, d = sz1, sx1
        g = (c + d) * (1 - b) * b / (c * d * math.log(2)) * \
            math.log2((c + d) / (c * d * (1 - b) * b) * 21 ** 2 / eps_sec ** 2)
        phi = b + (math.sqrt(g) if g > 0 else 0.0)
    else:
        phi = 0.0
    if phi >= 0.5:
        return None, "phase error bound %.3f" % phi
    raw = (sz0 + sz1 * (1 - h2(phi)) - leak - 6 * math.log2(21 / eps_sec) -
           math.log2(2 / eps_cor))
    return raw, "s_Z0=%.1f s_Z1=%.1f s_X1=%.1f v_X1=%.1f phi_Z=%.5f" % (
        sz0, sz1, sx1, vx1, phi)


def main():
    args = sys.argv[1:]
    expect, min_rounds = "ok", 1
    if "--expect" in args:
        i = args.index("--expect")
        expect = args[i + 1]
        del args[i:i + 2]
    if "--min-rounds" in args:
        i = args.index("--min-rounds")
        min_rounds = int(args[i + 1])
        del args[i:i + 2]
    log, st = args
    kv = status(st)
    if kv.get("source") != "wcp":
        print("# %s: source %s, not the decoy-state setup" %
              (st, kv.get("source")))
        return 1
    mu = [float(x) for x in kv["mu"].split(",")]
    p = [float(x) for x in kv["p_mu"].split(",")]
    eps_sec, eps_cor = float(kv["eps_sec"]), float(kv["eps_cor"])
    pat = re.compile(r"round (\d+): estimate: n_z=(\S+) n_x=(\S+) m_x=(\S+) "
                     r"disclosed=(\d+) secret_bits=(\d+)")
    rounds = bad = 0
    with open(log) as f:
        for line in f:
            m = pat.search(line)
            if not m:
                continue
            rnd = int(m.group(1))
            nz, nx, mx = ([float(x) for x in m.group(k).split(",")]
                          for k in (2, 3, 4))
            leak, daemon = int(m.group(5)), int(m.group(6))
            raw, why = bound(mu, p, nz, nx, mx, leak, eps_sec, eps_cor)
            ell = int(math.floor(raw)) if raw is not None and raw >= 1 else 0
            rounds += 1
            good = (ell == daemon and ell > 0) if expect == "ok" else \
                (ell == 0 and daemon == 0)
            bad += not good
            print("# round %d: recomputed l=%d (%s, leak %d), daemon "
                  "secret_bits=%d: %s" % (rnd, ell, why, leak, daemon,
                                          "agree" if good else "MISMATCH"))
    if rounds < min_rounds:
        print("# %d rounds with an estimate in %s, expected at least %d" %
              (rounds, log, min_rounds))
        return 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
