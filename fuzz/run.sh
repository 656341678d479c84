#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Build the frame fuzz target with clang (libFuzzer + ASan + UBSan), write
# the seed corpus and run it for a bounded time.
#
#   fuzz/run.sh                  60 s
#   FUZZ_TIME=600 fuzz/run.sh    10 min
#   FUZZ_RUNS=100000 fuzz/run.sh a fixed number of inputs
#
# Outputs go to build/fuzz/ (binaries, seed corpus, grown corpus, crashes);
# nothing is written into the source tree.
set -eu
cd "$(dirname "$0")/.."
out=${FUZZ_OUT:-build/fuzz}
time=${FUZZ_TIME:-60}
runs=${FUZZ_RUNS:--1}
jobs=${FUZZ_JOBS:-1}
CC=${FUZZ_CC:-clang}
CFLAGS="-std=c11 -g -O1 -D_GNU_SOURCE -Iinclude/uapi -Iuserspace/include \
	-Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes"
SRCS="userspace/protocol/frame.c userspace/protocol/auth.c"
LIBS="-lssl -lcrypto -lm -lpthread"

mkdir -p "$out/seeds" "$out/corpus" "$out/crashes"
# shellcheck disable=SC2086
$CC $CFLAGS -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-o "$out/fuzz_frame" fuzz/fuzz_frame.c $SRCS $LIBS
# shellcheck disable=SC2086
$CC $CFLAGS -o "$out/gen_corpus" fuzz/gen_corpus.c $SRCS $LIBS
"$out/gen_corpus" "$out/seeds"

# With FUZZ_JOBS > 1 libFuzzer writes fuzz-N.log files into the current
# directory: run it from $out so they stay out of the tree.
top=$(pwd)
cd "$out"
set -- -max_total_time="$time" -runs="$runs" -timeout=10 -rss_limit_mb=2048 \
	-max_len=70000 -dict="$top/fuzz/frame.dict" -artifact_prefix=crashes/ \
	-print_final_stats=1
if [ "$jobs" -gt 1 ]; then
	set -- "$@" -jobs="$jobs" -workers="$jobs"
fi
exec ./fuzz_frame "$@" corpus seeds
