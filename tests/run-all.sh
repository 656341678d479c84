#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Every test of qkd, from a fresh Debian machine: installs what it needs,
# builds, then runs
#   lint     checkpatch --strict, sparse, W=1 on both kernels, YNL spec check,
#            the store calls no front end (Documentation/design.md), make
#            install/uninstall and the build flags (tests/lib/
#            check-install.sh), the Debian packages built and linted
#            (tests/lib/check-deb.sh), DKMS
#   unit     host unit tests of the protocol stages and tools (ASan/UBSan,
#            LSan in the harness children), and tests/lib/selftest.sh
#   mutants  the unit mutants of tests/mutants/ (a tag check that always
#            succeeds, a PSK file not wiped, a decoy bound with the wrong
#            sign, ...), each applied alone to a scratch copy of the tree:
#            each must make its unit test fail (tests/mutants/run.sh; the
#            kernel mutants take longer and run in `make mutants`)
#   fuzz     a short bounded libFuzzer run of each userspace parser
#   daemon   two qkdd processes over loopback: same keys, Eve aborts, crashes;
#            the default channel (WCP with decoys: the secret length
#            recomputed) and a PNS attack (no key); qkdd as a service
#            (tests/e2e/qkdd_ops.sh: restarts, signals, logs, sd_notify);
#            then through a man in the middle that attacks the classical
#            channel and the simulated quantum link (tests/e2e/qkdd_mitm.sh);
#            the scripts side by side, about 40 s
#   vm       the module's kselftest tests in qemu, on Debian 6.1 and 6.12
#            (6.1 alone when the debug stage runs them on its 6.12 kernel,
#            and on 6.12 then only those the debug kernel cannot run:
#            test_lsm, which needs BTF)
#   e2e      qkdctl against the module, ESP SAs, two sites up and down from
#            their configuration files (qkdctl up/down), qkd-kme (ETSI 014
#            over mutual TLS at two sites), libqkd's ETSI 004 interface,
#            in qemu on both kernels; qkdctl up/down, qkd-kme, qkdd into
#            the kernel and fed by a vendor KME, and the demo on the
#            newest (E2E_NEWEST_ONLY); tests/e2e/lockdown.sh last in
#            each kernel's boot (it raises lockdown, which is
#            one-way)
#   debvm    the Debian packages in a fresh guest with systemd as PID 1
#            (tests/vm/debvm.sh, on the newest Debian kernel): dpkg -i, the
#            DKMS build there, modules-load.d, udev, two sites in network
#            namespaces from /etc/qkd/siteA.conf and siteB.conf with the
#            installed qkd@.service, keys taken, restart, kill and start
#            again with no new PSK, an eavesdropper in journalctl -p warning
#   robust   a genl/ioctl fuzzer (root, unprivileged, user namespace), a
#            concurrency stress with a delivery ledger, qkdd killed at random
#            points, load/unload in use, and the key-wipe canary, in qemu on
#            both kernels
#   debug    on the debug kernel (KASAN, UBSAN, lockdep, kmemleak,
#            fail-nth): the kernel tests with kmemleak scans, the fail-nth
#            sweep, the key-wipe canary (Documentation/robustness.md, "CI").
#            It runs last. A cached tree (make debug-kernel,
#            /var/cache/qkd) is used; without one it is built from a
#            minimal config, in the background from the end of the build
#            stage, under nice 19, so that the build uses the CPU the other
#            stages leave idle. QKD_DEBUG_BUILD=0
#            skips the build (the stage is then a named SKIP, never a pass).
# Each stage's full output is in build/test-logs/STAGE.log (the unit
# stage's binaries: build/test-logs/unit/). Exit 1 if anything failed.
#
# Counting (tests/lib/tap.sh, checked by tests/lib/selftest.sh): passed,
# failed and skipped are separate; an "ok ... # SKIP" is a skip, never a
# pass. Every test binary, script and stage must account for itself: a TAP
# plan (1..N) that its results do not match, no plan, a non-zero exit
# without a "not ok", a timeout -- each is a failure of its own, named.
# Then a manifest of what must have run is checked (below, "manifest"):
# the stages (one not in QKD_STAGES is a skip, named), the kernels that
# tools/install-deps.sh installs (Debian 6.1 and 6.12), every test binary
# of tests/unit/test_*.c and tests/kernel/test_*.c, the e2e scripts, the
# robust programs of tests/robust/guest.sh and the canary on each kernel,
# the planned counts of lint and fuzz; anything that did not run is a
# failure, listed as "not ok - not run: STAGE: ITEM". The output ends with
#   # SKIP STAGE: WHERE: TEST: REASON      (every skip, by name)
#   # not run: N                            (counted as failed)
#   N passed, N failed, N skipped
# the last line alone, exactly so (CI parses it).
#
# Time limits (timeout(1); a stage that reaches its limit is killed and
# is a failure, "timed out"): build, lint, unit, mutants 1800 s each (a unit
# binary 600 s, QKD_UNIT_TIMEOUT), fuzz FUZZ_TIME + 300 s per target and
# 600 s, daemon 1800 s,
# vm and e2e 2400 s per kernel, debvm 2400 s, robust 3600 s per kernel,
# debug 7200 s;
# QKD_STAGE_TIMEOUT_SCALE multiplies them all (default 1).
#
# QKD_STAGES="lint unit" runs a subset (the others are listed as skips).
# FUZZ_TIME (seconds per target, default 10) bounds the fuzz stage: a
# regression run from the seed corpora; `make stress` fuzzes 600 s each.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
# shellcheck source=lib/tap.sh
. tests/lib/tap.sh
all_stages="lint unit mutants fuzz daemon vm e2e debvm robust debug"
stages=${QKD_STAGES:-$all_stages}
logs=build/test-logs
export FUZZ_TIME=${FUZZ_TIME:-10}
# Warnings fail CI: every make below builds the tools with -Werror (the
# Makefile adds it only with WERROR=1, so that users' and distributions'
# builds with another compiler do not break; the test binaries always
# have it).
export WERROR=1

# ---- the manifest: what must run, derived from the tree ----

# The kernels tools/install-deps.sh installs (its linux-image-* packages,
# through their dependency on the versioned image): one KVER a line, or
# "?PACKAGE" for one that is not installed.
manifest_kernels() {
	local pkg kver
	for pkg in $(sed -n '/^PACKAGES="/,/"$/p' tools/install-deps.sh |
		tr ' "' '\n\n' | grep -E '^linux-image-'); do
		kver=$(dpkg-query -W -f='${Depends}' "$pkg" 2>/dev/null |
			grep -oE '^linux-image-[^ ,]+' | sed 's/^linux-image-//')
		if [ -n "$kver" ] && [ -d "/lib/modules/$kver" ]; then
			echo "$kver"
		else
			echo "?$pkg"
		fi
	done
}

# The binaries of tests/DIR/test_*.c.
manifest_tests() {
	local src
	for src in tests/"$1"/test_*.c; do
		[ -f "$src" ] && basename "$src" .c
	done
}

# The mutants of KIND (tests/mutants/*.mut), by name.
manifest_mutants() {
	local m
	for m in tests/mutants/*.mut; do
		grep -qE "^kind:[[:space:]]*$1[[:space:]]*$" "$m" && basename "$m" .mut
	done
}

# manifest STAGE: the items STAGE must report ("# ran: ITEM"), one a line.
manifest() {
	local k t
	case $1 in
	unit) echo selftest; manifest_tests unit ;;
	mutants) manifest_mutants unit | sed 's/^/mutant /' ;;
	daemon) echo qkdd_loopback.sh; echo qkdd_default.sh; echo qkdd_ops.sh; echo qkdd_mitm.sh
		echo qkdd_etsi014_host.sh ;;
	vm) for k in $(vm_stage_kernels); do
		for t in $(manifest_tests kernel); do echo "$k $t"; done; done
		for k in $(vm_left_kernels); do
			for t in $VM_DEBUG_CANNOT; do echo "$k $t"; done
			for t in $VM_DEBUG_LEFT_FIXTURES; do echo "$k ${t%%:*}"; done
		done | sort -u ;;
	# every script of tests/e2e but the libraries, the runner and the
	# daemon stage's
	e2e) local host
		host=" $(manifest daemon | tr '\n' ' ')"
		for k in $kernels; do
		for t in tests/e2e/*.sh; do
			t=${t##*/}
			case $t in guest-e2e.sh | lib-*.sh) continue ;; esac
			case "$host " in *" $t "*) continue ;; esac
			[ "$k" = "$(newest_kernel)" ] ||
				case " $E2E_NEWEST_ONLY " in *" $t "*) continue ;; esac
			echo "$k $t"
		done; done ;;
	debvm) echo "debvm $(debvm_kernel)" ;;
	robust) for k in $kernels; do
		for t in $(grep -oE '(^|&& )run [a-z-]+' tests/robust/guest.sh |
			awk '{ print $NF }'); do echo "$k $t"; done
		vm_left_kernels | grep -qxF "$k" || echo "$k canary"; done ;;
	debug) if [ "${QKD_DEBUG_BUILD:-1}" != 0 ] ||
		tests/vm/build-debug-kernel.sh --check >/dev/null 2>&1; then
		for t in $(debug_kernel_tests) failnth; do echo "debug $t"; done
		echo "debug canary"; fi ;;
	esac
}

# The kernels of the vm stage: the Debian ones, but not the one of the
# series the debug kernel is built from (Debian's linux-source-6.12, the
# same source as its 6.12 kernel) when the debug stage runs the kernel
# tests on that (with Debian's hardening, tests/vm/debug-kernel.config):
# the two would run the same tests on the same code, some 10 minutes twice.
# The e2e and robust stages still run on every Debian kernel.
vm_stage_kernels() {
	local series k
	case " $stages " in
	*" debug "*) ;;
	*) printf '%s\n' $kernels; return ;;
	esac
	if [ "${QKD_DEBUG_BUILD:-1}" = 0 ] &&
		! tests/vm/build-debug-kernel.sh --check >/dev/null 2>&1; then
		printf '%s\n' $kernels
		return
	fi
	series=$(sed -n 's/^pkg=linux-source-//p' tests/vm/build-debug-kernel.sh)
	for k in $kernels; do
		case $k in "$series".*) ;; *) echo "$k" ;; esac
	done
}

# The Debian kernels vm_stage_kernels leaves to the debug stage.
vm_left_kernels() {
	local k
	for k in $kernels; do
		case $k in '?'*) continue ;; esac
		vm_stage_kernels | grep -qxF "$k" || echo "$k"
	done
}

# Kernel test binaries the debug kernel skips whole, which the vm stage
# runs on the kernels it leaves to the debug stage: test_lsm needs
# /sys/kernel/btf/vmlinux for the BPF LSM, and BTF (DEBUG_INFO_BTF, pahole)
# would add much to the debug kernel's build.
VM_DEBUG_CANNOT=test_lsm

# Fixtures (BINARY:FIXTURE) the debug stage leaves out of a binary it runs
# (the harness's -F), which the vm stage runs instead (-f) on the kernels
# it leaves to the debug stage. test_xfrm's resync: attacks on the SAs
# (flush, delete, deleteall) with pings crossing both ways and `ip` run
# again and again, 289 s of the debug stage's 1192 under KASAN and lockdep
# (2026-12-07), most of it process start-up in the guest; the SA
# replacement paths it drives run on the debug kernel in xfrm's
# deleted_outbound_sa_replaced_at_once, inbound_replacements_lost_again_hold
# and dry_binding_keeps_no_expired_sa. On Debian's kernel it takes about
# a third of that.
VM_DEBUG_LEFT_FIXTURES="test_xfrm:resync"

# debug_test_args BINARY: the harness options the debug stage runs it with.
debug_test_args() {
	local bf
	for bf in $VM_DEBUG_LEFT_FIXTURES; do
		[ "${bf%%:*}" = "$1" ] && printf ' -F %s' "${bf#*:}"
	done
}

# The kernel test binaries the debug stage runs: all but VM_DEBUG_CANNOT,
# whose every test would be a skip there (the vm stage runs them instead).
debug_kernel_tests() {
	local t
	for t in $(manifest_tests kernel); do
		case " $VM_DEBUG_CANNOT " in *" $t "*) continue ;; esac
		echo "$t"
	done
}

# End-to-end scripts that test userspace more than the module, run on the
# newest kernel only to keep the whole run under 60 minutes (the clean run
# of 2026-12-06 took about 64 with them on both): the demo (its ESP SA is
# ipsec.sh's on both kernels; 50 s), qkdd with a vendor KME as its key
# source (90 s), qkd-kme (90 s), qkdctl up/down (45 s), qkdd into the
# kernel store, its crash recovery and its pauses on full stores (150 s),
# qkdctl's commands one by one (45 s) and libqkd's ETSI 004 interface
# (35 s); the module's side of what they use (/dev/qkd, KEY_ADD, the genl
# family and its events) is the vm stage's kernel tests on both kernels.
# Both kernels run ipsec.sh (XFRM), qkdctl_alg.sh (the crypto API) and
# lockdown.sh, whose kernel sides differ between releases.
E2E_NEWEST_ONLY="demo.sh qkdd_etsi014.sh qkd_kme.sh qkdctl_up.sh qkdd_kernel.sh qkdctl_smoke.sh etsi004.sh"

# The newest Debian kernel of the manifest: the debvm stage's, and the one
# the e2e scripts of E2E_NEWEST_ONLY run on.
newest_kernel() {
	printf '%s\n' $kernels | grep -v '^?' | sort -V | tail -n 1
}
# Not the oldest: qkd-dkms's postinst (dh_dkms) builds for the running
# kernel and for the newest installed one, so a 6.1 guest builds the
# module twice under emulation (tried 2026-12-07: slower, not faster).
debvm_kernel() { newest_kernel; }

# Planned results of the stages that print one TAP stream.
manifest_plan() {
	case $1 in
	# checkpatch, the spec, the generated files (check-gen.sh), the
	# store's layering, the mutants apply, dkms build and its two
	# refusals, the results of tests/lib/check-install.sh
	# (install/uninstall, flags, version) and of tests/lib/check-deb.sh
	# (the Debian packages), and W=1 + sparse per kernel
	lint) echo $((8 + $(cat tests/lib/check-install.sh tests/lib/check-deb.sh |
		grep -c '^tap_check ') + $(ls -d /lib/modules/*/build 2>/dev/null | wc -l))) ;;
	fuzz) find fuzz -maxdepth 1 -name 'fuzz_*.c' | wc -l ;;
	mutants) manifest_mutants unit | wc -l ;;
	esac
}

# Time limit of a stage, seconds.
stage_timeout() {
	local nk t
	nk=$(printf '%s\n' $kernels | wc -l)
	case $1 in
	fuzz) t=$(( $(manifest_plan fuzz) * (FUZZ_TIME + 300) + 600 )) ;;
	vm | e2e) t=$((2400 * nk)) ;;
	debvm) t=2400 ;;
	robust) t=$((3600 * nk)) ;;
	debug) t=7200 ;;
	*) t=1800 ;;
	esac
	echo $((t * ${QKD_STAGE_TIMEOUT_SCALE:-1}))
}

# ---- the stages (run as "run-all.sh --stage NAME", under timeout) ----

build() {
	make -j2 all && make -j2 tests bench && make -s -C tests/robust
}

# Every unit test binary under ASan/UBSan/LSan, each its own item, and the
# suite's self-test (tests/lib/selftest.sh).
unit() {
	local t name log rc d=$logs/unit
	mkdir -p "$d"
	rm -f "$d"/*.log
	tests/lib/selftest.sh >"$d/selftest.log" 2>&1
	rc=$?
	cat "$d/selftest.log"
	tap_count selftest "$d/selftest.log" "$rc"
	for t in build/san/tests/unit/test_*; do
		[ -x "$t" ] || continue
		name=${t##*/} log=$d/${t##*/}.log
		timeout -k 10 "${QKD_UNIT_TIMEOUT:-600}" "$t" </dev/null >"$log" 2>&1
		rc=$?
		grep -E '^(not ok|ok .*# SKIP)' "$log"
		tap_count "$name" "$log" "$rc"
	done
	tap_summary_line
	[ "$TAP_FAIL" -eq 0 ]
}

# Every libFuzzer target, FUZZ_TIME s each; run.sh prints TAP per target.
fuzz() {
	if [ ! -x fuzz/run.sh ]; then
		echo "Bail out! fuzz/run.sh is missing"
		return 1
	fi
	fuzz/run.sh
}

# qkdd pairs on the host, each script its own item: qkdd_loopback.sh, the
# default channel (WCP with decoys) and a PNS attack (qkdd_default.sh, about
# 30 s), qkdd as a service (qkdd_ops.sh: state by default, exit 2 on a bad
# configuration, SIGHUP, SIGTERM, log priorities, sd_notify, the control
# socket; about 90 s), then the classical channel and the simulated quantum link under
# attack (qkdd_mitm.sh). Full logs in build/test-logs/daemon/.
#
# The scripts run side by side: they mostly wait (attacks, back-off,
# timeouts: 50 s of CPU in 200 s of wall time one after the other,
# 2026-12-07), and each has a slice of the port range of its own
# (QKDD_TEST_PORTS, lib-qkdd.sh's free_port), so that two never take one
# port. Their results are read in the order below.
daemon() {
	local s name log i=0 d=$logs/daemon scripts=(tests/e2e/qkdd_loopback.sh
		tests/e2e/qkdd_default.sh tests/e2e/qkdd_ops.sh
		tests/e2e/qkdd_mitm.sh tests/e2e/qkdd_etsi014_host.sh)
	mkdir -p "$d"
	rm -f "$d"/*.log "$d"/*.rc
	for s in "${scripts[@]}"; do
		name=${s##*/} log=$d/$name.log
		(
			QKDD_TEST_PORTS=$((20000 + i * 8000))-$((27999 + i * 8000)) \
				"$s" </dev/null >"$log" 2>&1
			echo $? >"$d/$name.rc"
		) &
		i=$((i + 1))
	done
	wait
	for s in "${scripts[@]}"; do
		name=${s##*/} log=$d/$name.log
		grep -E '^(not ok|ok .*# SKIP)' "$log"
		tap_count "$name" "$log" "$(cat "$d/$name.rc" 2>/dev/null || echo 1)"
	done
	tap_summary_line
	[ "$TAP_FAIL" -eq 0 ]
}

# The vm stage: the kernel tests on vm_stage_kernels, and the binaries of
# VM_DEBUG_CANNOT on the kernels left to the debug stage. Harness timeouts
# are doubled: the debug kernel's build runs beside.
vm() {
	local rc out k t bins=()
	out=$(mktemp)
	export QKD_TEST_TIMEOUT_SCALE=2
	k=$(vm_stage_kernels | grep -v '^?' | paste -sd, -)
	tests/vm/run-kernel-tests.sh -q --kernel "$k" >"$out" 2>&1
	rc=$?
	tap_show "$out"
	tap_take "$k" "$out" "$rc"
	for t in $VM_DEBUG_CANNOT; do bins+=("build/tests/kernel/$t"); done
	for t in $VM_DEBUG_LEFT_FIXTURES; do
		bins+=("build/tests/kernel/${t%%:*}" -f "${t#*:}")
	done
	# One vCPU: the resync fixture starts a ping or two a second, and each
	# flips a static key (the timestamping one), patched in with int3;
	# under qemu's multi-threaded emulation the other vCPU once ran a
	# stale int3 after the patch was done (an "Oops: int3" in
	# netif_rx_internal, 2026-12-07, no qkd code on the stack). A single
	# vCPU cannot race itself; the debug kernel has no jump labels.
	for k in $(vm_left_kernels); do
		QKD_VM_SMP=1 tests/vm/run-kernel-tests.sh -q --kernel "$k" "${bins[@]}" >"$out" 2>&1
		rc=$?
		tap_show "$out"
		tap_take "$k" "$out" "$rc"
	done
	rm -f "$out"
	tap_summary_line
	[ "$TAP_FAIL" -eq 0 ]
}

e2e() {
	local kver rc out skip
	out=$(mktemp)
	for kver in $kernels; do
		case $kver in '?'*) continue ;; esac
		if ! tests/vm/build-module.sh "$kver" "build/kmod-e2e/$kver"; then
			tap_fail "$kver" "build qkd.ko"
			continue
		fi
		echo "# ==== $kver"
		# qkdd pairs (qkdd_kernel.sh, the demo), ESP re-keying and the
		# crypto API checks: several minutes under TCG
		skip=
		[ "$kver" = "$(newest_kernel)" ] || skip=$E2E_NEWEST_ONLY
		# shellcheck disable=SC2086
		tests/vm/run-vm.sh --kernel "$kver" --timeout 1800 -q -- \
			tests/e2e/guest-e2e.sh "build/kmod-e2e/$kver/qkd.ko" $skip >"$out" 2>&1
		rc=$?
		tap_show "$out"
		tap_take "$kver" "$out" "$rc"
	done
	rm -f "$out"
	tap_summary_line
	[ "$TAP_FAIL" -eq 0 ]
}

# The packages in a systemd guest (tests/vm/debvm.sh: one VM, 9 minutes
# on a quiet two-core machine, 18 on a loaded one, most of it dpkg -i with the DKMS
# build and depmod under emulation, Documentation/robustness.md "CI"); the
# .debs are the lint stage's (build/deb) when the sources are the same.
debvm() {
	local k rc out
	k=$(debvm_kernel)
	[ -n "$k" ] || { tap_fail debvm "no Debian kernel installed"; tap_summary_line; return 1; }
	out=$(mktemp)
	tests/vm/debvm.sh --kernel "$k" --timeout 2100 >"$out" 2>&1
	rc=$?
	tap_show "$out"
	tap_count "debvm $k" "$out" "$rc"
	rm -f "$out"
	tap_summary_line
	[ "$TAP_FAIL" -eq 0 ]
}

# tests/robust/run.sh, its fast form: 15 s a fuzz phase and 10 s of
# stress (its defaults, 30 and 20, are `make stress`'s on every kernel;
# 2026-12-07: 140 s of the 400 were these fixed times), and the key-wipe
# canary not on the kernels vm_left_kernels leaves to the debug stage,
# which runs it on the debug kernel (the same source).
robust() {
	tests/robust/run.sh -t 15 --stress-time 10 \
		--no-canary "$(vm_left_kernels | paste -sd, -)"
}

# The debug kernel: a cached one (a runner that keeps /var/cache/qkd, or
# make debug-kernel) is used. Without one it is built (tests/vm/
# debug-kernel.config is a minimal config, see Documentation/robustness.md
# "CI" for its build time on two cores): the run started that build in the
# background, and build-debug-kernel.sh waits for it (flock) and prints the
# tree. Only QKD_DEBUG_BUILD=0 makes the stage one skip, named, with its
# reason -- never a pass.
debug() {
	local out rc cmd tree
	if ! tests/vm/build-debug-kernel.sh --check >/dev/null 2>&1; then
		if [ "${QKD_DEBUG_BUILD:-1}" = 0 ]; then
			tap_skip "debug kernel stage" "QKD_DEBUG_BUILD=0 and no cached debug kernel (make debug-kernel): no KASAN, lockdep, kmemleak, fail-nth sweep or debug canary in this run"
			tap_summary_line
			return 0
		fi
		echo "# ==== tests/vm/build-debug-kernel.sh"
		# The run's background build failed: say so, do not build again.
		if [ "${QKD_DEBUG_BUILD_RC:-0}" != 0 ]; then
			tail -n 20 "$logs/debug-kernel.log"
			tap_fail debug "build the debug kernel (exit $QKD_DEBUG_BUILD_RC, log $logs/debug-kernel.log)"
			tap_summary_line
			return 1
		fi
		# Its progress and any failure go to stderr, the tree to stdout.
		if ! tree=$(tests/vm/build-debug-kernel.sh) ||
			[ ! -f "${tree##*$'\n'}/.built" ]; then
			tap_fail debug "build the debug kernel"
			tap_summary_line
			return 1
		fi
		tree=${tree##*$'\n'}
		echo "ok 1 - build the debug kernel ($(cat "$tree/build-seconds")s, CPU $(cat "$tree/build-cpu-seconds" 2>/dev/null || echo ?)s)"
		tap_add 1 0 0
	fi
	if [ "${QKD_DEBUG_BUILD_RC:-}" = 0 ]; then
		tree=$(tests/vm/build-debug-kernel.sh --print-dir)
		echo "ok 1 - build the debug kernel, in the background ($(cat "$tree/build-seconds")s, CPU $(cat "$tree/build-cpu-seconds" 2>/dev/null || echo ?)s)"
		tap_add 1 0 0
	fi
	make -s -C tests/robust || { tap_fail debug "build tests/robust"; tap_summary_line; return 1; }
	out=$(mktemp)
	echo "# not on the debug kernel: $VM_DEBUG_CANNOT, and the fixtures $VM_DEBUG_LEFT_FIXTURES (the vm stage runs them on Debian's $(vm_left_kernels | paste -sd, -))"
	for cmd in "tests/vm/run-kernel-tests.sh --kernel debug --timeout 3600 -q $(for t in $(debug_kernel_tests); do printf ' build/tests/kernel/%s%s' "$t" "$(debug_test_args "$t")"; done) build/robust/failnth" \
		"tests/robust/canary.sh --kernel debug -P"; do
		echo "# ==== $cmd"
		# shellcheck disable=SC2086 # the command and its glob
		$cmd >"$out" 2>&1
		rc=$?
		tap_show "$out"
		case $cmd in
		*canary*) tap_count "debug canary" "$out" "$rc" ;;
		*) tap_take "debug kernel tests" "$out" "$rc" ;;
		esac
	done
	rm -f "$out"
	tap_summary_line
	[ "$TAP_FAIL" -eq 0 ]
}

if [ "${1:-}" = --stage ]; then
	kernels=${QKD_KERNELS:-}
	case $2 in
	build | unit | fuzz | daemon | vm | e2e | debvm | robust | debug) "$2"; exit $? ;;
	esac
	exit 2
fi

# ---- the run ----

tools/install-deps.sh || { echo "install-deps failed"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
mkdir -p "$logs"
kernels=$(manifest_kernels | tr '\n' ' ')
export QKD_KERNELS=$kernels
skips=$logs/skips
: >"$skips"
notrun=0

# run_stage NAME MODE COMMAND...: run it under its time limit, count it
# (MODE tap: one TAP stream with its plan; sum: a script that counts and
# ends with "N passed, N failed, N skipped"), check its manifest, list its
# skips, print its summary line.
run_stage() {
	local name=$1 mode=$2 to rc secs t0=$SECONDS log=$logs/$1.log
	local f0=$TAP_FAIL p0=$TAP_PASS s0=$TAP_SKIP
	shift 2
	to=$(stage_timeout "$name")
	echo "# ---- stage $name: $* (limit ${to}s)"
	timeout -k 60 "$to" "$@" >"$log" 2>&1
	rc=$? secs=$((SECONDS - t0))
	[ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || echo "# stage $name: time limit of ${to}s reached"
	grep -E '^(not ok|# FAIL|.*error:)' "$log" | head -n 30
	if [ "$mode" = tap ]; then
		tap_count "$name" "$log" "$rc" "$(manifest_plan "$name")" >"$log.count"
		grep -E '^not ok' "$log.count"
		grep -E '^# SKIP ' "$log.count" >>"$skips"
	else
		tap_take "$name" "$log" "$rc"
		sed -n "s/^# SKIP /# SKIP $name: /p" "$log" >>"$skips"
	fi
	# the manifest: every item the stage must have run
	local item
	while IFS= read -r item; do
		grep -qxF "# ran: $item" "$log" && continue
		tap_fail "not run: $name" "$item"
		notrun=$((notrun + 1))
	done < <(manifest "$name")
	echo "# stage $name: $((TAP_PASS - p0)) passed, $((TAP_FAIL - f0)) failed, $((TAP_SKIP - s0)) skipped in $secs s (exit $rc, log $log)"
}

echo "# ---- build"
timeout -k 60 "$(stage_timeout build)" "$0" --stage build >"$logs/build.log" 2>&1
rc=$?
if [ "$rc" -ne 0 ]; then
	tail -n 40 "$logs/build.log"
	tap_fail build "make all tests bench: exit $rc (log $logs/build.log)"
	tap_summary_line
	exit 1
fi

# The debug kernel, where no cache has it (about 1700 CPU seconds,
# Documentation/robustness.md "CI"): built in the background from here,
# under nice 19, in a session of its own (killed if the run ends early), so
# that the build takes the CPU the other stages leave idle. The debug stage
# itself runs last, alone: two emulated VMs side by side on two cores ran
# each about three times slower (a clean-clone run of 2026-12-06).
debug_build_pid=
case " $stages " in
*" debug "*)
	if [ "${QKD_DEBUG_BUILD:-1}" != 0 ] &&
		! tests/vm/build-debug-kernel.sh --check >/dev/null 2>&1; then
		echo "# ---- debug kernel: building in the background from $SECONDS s (log $logs/debug-kernel.log)"
		setsid bash -c 'nice -n 19 tests/vm/build-debug-kernel.sh' >"$logs/debug-kernel.log" 2>&1 &
		debug_build_pid=$!
		trap 'pkill -s "$debug_build_pid" 2>/dev/null' EXIT
	fi ;;
esac
for s in $stages; do
	case " $all_stages " in
	*" $s "*) ;;
	*) tap_fail "$s" "unknown stage"; continue ;;
	esac
	case $s in
	lint) run_stage lint tap tests/lib/lint.sh ;;
	unit) run_stage unit sum "$0" --stage unit ;;
	mutants) run_stage mutants tap tests/mutants/run.sh --kind unit ;;
	fuzz) run_stage fuzz tap "$0" --stage fuzz ;;
	daemon) run_stage daemon sum "$0" --stage daemon ;;
	vm) run_stage vm sum "$0" --stage vm ;;
	e2e) run_stage e2e sum "$0" --stage e2e ;;
	debvm) run_stage debvm sum "$0" --stage debvm ;;
	robust) run_stage robust sum "$0" --stage robust ;;
	debug)
		if [ -n "$debug_build_pid" ]; then
			echo "# ---- debug kernel: waiting for the background build"
			wait "$debug_build_pid"
			export QKD_DEBUG_BUILD_RC=$?
			debug_build_pid=
			tail -n 3 "$logs/debug-kernel.log"
		fi
		run_stage debug sum "$0" --stage debug ;;
	esac
done
# A stage left out by QKD_STAGES is a skip, named.
for s in $all_stages; do
	case " $stages " in
	*" $s "*) ;;
	*) tap_skip "$s" "stage not run (not in QKD_STAGES)" >>"$skips" ;;
	esac
done

echo "# ==== skipped ($(grep -c . "$skips"))"
cat "$skips"
echo "# not run: $notrun (counted as failed)"
echo "# the whole run: $SECONDS s"
tap_summary_line
[ "$TAP_FAIL" -eq 0 ]
