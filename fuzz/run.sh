#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Build the libFuzzer targets with clang (libFuzzer + ASan + UBSan, leaks
# detected), write their seed corpora and run each for a bounded time:
#
#   frame     classical-channel frames and their authenticated open path
#             (userspace/protocol/frame.c, auth.c)
#   config    qkdd's configuration file (userspace/qkdd/config.c)
#   siteconf  the site file of qkdctl up/down (userspace/qkdctl/siteconf.c)
#   channel   qkdd's --channel KEY=VAL,... option, through the simulator
#   util      libqkd's numbers, UUIDs, key_IDs, hex, base64
#             (userspace/lib/util.c)
#   keyfile   libqkd's key-file reader, raw and hex (userspace/lib/util.c)
#   handshake qkdd's handshake state machine: Bob's hello() fed what an
#             attacker without the key sends (userspace/qkdd/handshake.c,
#             wire.c): no session, no stop, bounded memory and skips
#   kmekeys   qkdd's parser of a vendor KME's answers (--key-source
#             etsi014: userspace/qkdd/kme_parse.c): Key containers,
#             Status, Error
#   sift      Bob's sparse SIFT_BASES (pulse-index gaps, bases): the
#             announcement parser in userspace/protocol/sifting.c; what
#             it accepts encodes back to the same bytes
#   ldpc      the LDPC reconciliation messages (userspace/protocol/ldpc.c,
#             not yet used by qkdd): parameters, Bob's SYNDROME and REVEAL
#             parser, Alice's MORE parser; a refusal changes nothing, no
#             frame is claimed corrected with a key not Alice's
#   cascade   Cascade's messages (userspace/protocol/cascade.c): Alice's
#             request parser, Bob's answer parser on his batched first
#             request; every parity sent counted, a misled Bob ends
#   timetag   the recorded detection files of qkdd --replay
#             (userspace/protocol/timetag.c), as a regular file and as a
#             stream; what is accepted is in range and writes back the same
#
#   fuzz/run.sh                        every target, 20 s each
#   FUZZ_TIME=600 fuzz/run.sh          10 min each (the long form)
#   FUZZ_RUNS=100000 fuzz/run.sh       a fixed number of inputs each
#   FUZZ_TARGETS="config util" fuzz/run.sh
#   FUZZ_PAR=1 fuzz/run.sh             one target at a time (default: as
#                                      many as there are CPUs; each target
#                                      is one process and gets its whole
#                                      FUZZ_TIME either way)
#
# Seeds: fuzz/corpus/TARGET/ (small text files) plus, for frame, the frames
# fuzz/gen_corpus.c writes. Outputs go to build/fuzz/TARGET/ (grown corpus,
# crash/leak/timeout inputs, log); nothing is written into the source tree.
# Prints the plan "1..N", "ok N - fuzz_TARGET" or "not ok" per target and a final
# "N passed, N failed"; exits 1 if any target found a crash, a leak or
# undefined behaviour (reproduce: build/fuzz/fuzz_TARGET INPUT).
set -eu
cd "$(dirname "$0")/.."
out=${FUZZ_OUT:-build/fuzz}
time=${FUZZ_TIME:-20}
runs=${FUZZ_RUNS:--1}
jobs=${FUZZ_JOBS:-1}
par=${FUZZ_PAR:-$(nproc)}
targets=${FUZZ_TARGETS:-frame config siteconf channel util keyfile handshake cascade kme kmekeys sift timetag ldpc}
CC=${FUZZ_CC:-clang}
CFLAGS="-std=c11 -g -O1 -D_GNU_SOURCE -Iinclude/uapi -Iuserspace/include \
	-Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all"
LIBS="-lsodium -lssl -lcrypto -lm -lpthread"
# What the targets link: the protocol stages, libqkd's util.c, qkdd's
# option parser and qkdctl's site file parser. An archive, so that each target pulls only what it needs.
SRCS="userspace/protocol/*.c userspace/lib/util.c userspace/qkdd/config.c \
	userspace/qkdctl/siteconf.c"

# Rebuilt when any source or header is newer than it.
lib=$out/libfuzzqkd.a
mkdir -p "$out/obj"
if [ ! -f "$lib" ] || [ -n "$(find fuzz/run.sh userspace include \
	-newer "$lib" \( -name '*.[ch]' -o -name run.sh \) | head -n 1)" ]; then
	rm -f "$lib" "$out"/obj/*.o
	objs=
	for src in $SRCS; do
		o=$out/obj/$(echo "$src" | tr / _ | sed 's/\.c$/.o/')
		while [ "$(jobs -rp | wc -l)" -ge "$par" ]; do wait -n; done
		# shellcheck disable=SC2086
		$CC $CFLAGS $SAN -fsanitize=fuzzer-no-link -c -o "$o" "$src" &
		objs="$objs $o"
	done
	# every compile's status, not only the last one's (set -e)
	for pid in $(jobs -rp); do wait "$pid"; done
	for o in $objs; do [ -f "$o" ] || { echo "Bail out! $o did not build"; exit 1; }; done
	# shellcheck disable=SC2086
	ar rcs "$lib" $objs
fi

top=$(pwd)
pass=0
fail=0
n=0
# the plan first: a run that stops early is a failure (tests/lib/tap.sh)
echo "1..$(echo $targets | wc -w)"
# fuzz_target N TARGET: build and run one target; its TAP line in
# $out/TARGET/result (the targets run FUZZ_PAR at a time, printed in order)
fuzz_target() {
	local n=$1 t=$2 d=$out/$2 extra
	exec >"$d/result"
	# handshake: Bob's hello() with the rest of qkdd and its store
	extra=
	if [ "$t" = handshake ]; then
		extra="-I/usr/include/libnl3 $(ls userspace/qkdd/*.c userspace/lib/*.c |
			grep -v 'qkdd/main.c\|qkdd/config.c\|lib/util.c') -lnl-genl-3 -lnl-3 -lkcapi
			$(pkg-config --libs libsystemd) $(pkg-config --cflags --libs libcurl json-c)"
	fi
	# siteconf: the site file's comparison with the kernel's objects uses
	# libqkd's names of SA modes, algorithms and directions (lib/sa.c)
	if [ "$t" = siteconf ]; then
		extra="-I/usr/include/libnl3 $(ls userspace/lib/*.c | grep -v 'lib/util.c')
			-lnl-genl-3 -lnl-3 -lkcapi"
	fi
	# kmekeys: qkdd's kme_parse.c, with json-c
	if [ "$t" = kmekeys ]; then
		extra="$(pkg-config --cflags json-c) userspace/qkdd/kme_parse.c \
			$(pkg-config --libs json-c)"
	fi
	# kme: qkd-kme's JSON formats and configuration, with json-c
	if [ "$t" = kme ]; then
		extra="$(pkg-config --cflags json-c) userspace/kme/json.c userspace/kme/config.c \
			$(pkg-config --libs json-c)"
	fi
	# shellcheck disable=SC2086
	if ! $CC $CFLAGS $SAN -fsanitize=fuzzer -o "$out/fuzz_$t" \
		"fuzz/fuzz_$t.c" $extra "$lib" $LIBS; then
		echo "not ok $n - fuzz_$t: does not build"
		return
	fi
	if [ "$t" = frame ] || [ "$t" = handshake ]; then
		# shellcheck disable=SC2086
		$CC $CFLAGS -o "$d/gen_corpus" fuzz/gen_corpus.c \
			userspace/protocol/frame.c userspace/protocol/auth.c $LIBS
		"$d/gen_corpus" "$d/seeds"
	fi
	if [ -d "fuzz/corpus/$t" ]; then
		cp fuzz/corpus/"$t"/* "$d/seeds/"
	fi
	set -- -max_total_time="$time" -runs="$runs" -timeout=10 \
		-rss_limit_mb=2048 -artifact_prefix=crashes/ -print_final_stats=1
	if [ -f "fuzz/$t.dict" ]; then
		set -- "$@" -dict="$top/fuzz/$t.dict"
	fi
	case $t in
	frame) set -- "$@" -max_len=70000 ;;
	keyfile) set -- "$@" -max_len=16384 ;;
	# qkdd logs every refusal on stderr: closed for the target
	handshake) set -- "$@" -max_len=4096 -close_fd_mask=2 ;;
	*) set -- "$@" -max_len=4096 ;;
	esac
	if [ "$jobs" -gt 1 ]; then
		set -- "$@" -jobs="$jobs" -workers="$jobs"
	fi
	# libFuzzer writes fuzz-N.log files (FUZZ_JOBS > 1) and artefacts
	# relative to the current directory: run it from $d.
	if (cd "$d" && exec "$top/$out/fuzz_$t" "$@" corpus seeds) \
		>"$d/log" 2>&1; then
		echo "ok $n - fuzz_$t: $(grep -E '^stat::number_of_executed_units' "$d/log" |
			awk '{ s += $2 } END { print s + 0 }') inputs in ${time} s, corpus $(find "$d/corpus" -type f | wc -l)"
	else
		grep -E 'ERROR|error|SUMMARY|runtime error|==[0-9]+==|Test unit written' "$d/log" |
			head -n 20 | sed 's/^/# /'
		echo "not ok $n - fuzz_$t: see $d/log and $d/crashes/"
	fi
}

for t in $targets; do
	n=$((n + 1))
	mkdir -p "$out/$t/corpus" "$out/$t/seeds" "$out/$t/crashes"
	rm -f "$out/$t/result"
	while [ "$(jobs -rp | wc -l)" -ge "$par" ]; do wait -n || :; done
	fuzz_target "$n" "$t" &
done
wait || :
n=0
for t in $targets; do
	n=$((n + 1))
	if [ -s "$out/$t/result" ]; then
		cat "$out/$t/result"
	else
		echo "not ok $n - fuzz_$t: ended without a result (see $out/$t/log)"
	fi
	if grep -q '^ok ' "$out/$t/result" 2>/dev/null; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
	fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
