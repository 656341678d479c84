# SPDX-License-Identifier: GPL-2.0-only
#
# qkd: `make` builds qkd.ko and the userspace tools, `make check` runs every
# test (see README.md). The module itself is described by Kbuild; kbuild reads
# that file, never this one.

KDIR ?= $(shell d=/lib/modules/$$(uname -r)/build; \
	  if [ -d $$d ]; then echo $$d; \
	  else ls -d /lib/modules/*/build 2>/dev/null | sort -V | tail -n 1; fi)
# The release of the kernel KDIR builds for (its UTS_RELEASE, the module's
# vermagic: /lib/modules/KVER).
KVER = $(or $(shell awk '$$2 == "UTS_RELEASE" { gsub(/"/, "", $$3); print $$3 }' \
	$(KDIR)/include/generated/utsrelease.h 2>/dev/null),\
	$(notdir $(patsubst %/build,%,$(KDIR))))
# The one place of the version: VERSION, read here (the tools' --version,
# dkms.conf's PACKAGE_VERSION at `make dkms`), by Kbuild (MODULE_VERSION)
# and checked against debian/changelog (tests/lib/check-install.sh).
VERSION := $(shell cat VERSION)

# Installation, the way distributions call it: make install DESTDIR=...
# PREFIX=/usr. Units, udev rules and modules-load.d go to the vendor
# directories under PREFIX ($(PREFIX)/lib/...; systemd and udev also read
# /usr/local/lib/...), and the units' paths are generated from SBINDIR.
PREFIX ?= /usr/local
DESTDIR ?=
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
INCLUDEDIR ?= $(PREFIX)/include
LIBDIR ?= $(PREFIX)/lib
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
UNITDIR ?= $(PREFIX)/lib/systemd/system
UDEVRULESDIR ?= $(PREFIX)/lib/udev/rules.d
MODULESLOADDIR ?= $(PREFIX)/lib/modules-load.d
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d

CC ?= gcc
B := build
# The user's (or the distribution's) flags: CFLAGS, CPPFLAGS and LDFLAGS
# are used as given, after the project's own, which they cannot remove:
# -std, the include paths, the sanitizers of the tests.
CFLAGS ?= -O2 -g
# The tests keep their own optimisation (-O1) unless CFLAGS came from the
# environment or the command line.
CALLER_CFLAGS := $(if $(filter file,$(origin CFLAGS)),,$(CFLAGS))
CPPFLAGS ?=
LDFLAGS ?=
# -Werror in CI and tests only (tests/run-all.sh exports WERROR=1,
# tests/lib/check-install.sh installs with it; the test binaries always
# have it): a new compiler's new warning must not break a user's or a
# distribution's build.
WERROR ?= 0
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
	     -fno-sanitize-recover=all
NL_CFLAGS := $(shell pkg-config --cflags libnl-genl-3.0 2>/dev/null)
NL_LIBS := $(shell pkg-config --libs libnl-genl-3.0 2>/dev/null)
SSL_LIBS := $(shell pkg-config --libs openssl 2>/dev/null)
KCAPI_LIBS := $(shell pkg-config --libs libkcapi 2>/dev/null)
# qkdd's sd_notify(3) (Type=notify): libsystemd-dev
SYSTEMD_CFLAGS := $(shell pkg-config --cflags libsystemd 2>/dev/null)
SYSTEMD_LIBS := $(shell pkg-config --libs libsystemd 2>/dev/null)
# libqkd's constant-time hex and base64 of key bytes: libsodium-dev
SODIUM_LIBS := $(shell pkg-config --libs libsodium 2>/dev/null)
# qkd-kme alone: libmicrohttpd (HTTPS over GnuTLS), GnuTLS (the client
# certificates), json-c.
KME_PKGS := libmicrohttpd gnutls json-c
KME_CFLAGS := $(shell pkg-config --cflags $(KME_PKGS) 2>/dev/null)
KME_LIBS := $(shell pkg-config --libs $(KME_PKGS) 2>/dev/null)
# qkdd's ETSI 014 client (--key-source etsi014): libcurl (OpenSSL flavour),
# json-c.
QKDD_PKGS := libcurl json-c
QKDD_CFLAGS := $(shell pkg-config --cflags $(QKDD_PKGS) 2>/dev/null)
QKDD_LIBS := $(shell pkg-config --libs $(QKDD_PKGS) 2>/dev/null)
WARN_ONLY := -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes \
	-Wmissing-prototypes
WARN := $(WARN_ONLY) -Werror
BASE_CPPFLAGS := -D_GNU_SOURCE -Iinclude/uapi -Iuserspace/include $(NL_CFLAGS) \
	-DQKD_VERSION='"$(VERSION)"'
# Hardening, the distributions' usual set (Debian's dpkg-buildflags with
# hardening=+all): stack protector, stack-clash protection, PIE, and
# FORTIFY_SOURCE where it can work
# (with optimisation, and not when the caller's flags already choose a
# level). The test builds under ASan/UBSan go without FORTIFY, whose
# checked functions would hide accesses from the sanitizers.
HARDEN_CFLAGS := -fstack-protector-strong -fstack-clash-protection -fPIE
FORTIFY := $(if $(findstring _FORTIFY_SOURCE,$(CPPFLAGS) $(CFLAGS) $(EXTRA_CFLAGS)),,\
	$(if $(filter-out -O0,$(lastword $(filter -O%,$(CFLAGS) $(EXTRA_CFLAGS)))),\
	-U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=3))
USER_CFLAGS_NOFORTIFY := $(WARN_ONLY) $(if $(filter 1,$(WERROR)),-Werror) \
	$(HARDEN_CFLAGS) $(CFLAGS) $(EXTRA_CFLAGS) -std=c11 $(BASE_CPPFLAGS) $(CPPFLAGS)
USER_CFLAGS := $(USER_CFLAGS_NOFORTIFY) $(FORTIFY)
# Tests use the kselftest harness, which needs GNU C and whose macros leave
# parameters unused.
TEST_CFLAGS := $(WARN) -Wno-unused-parameter -Wno-missing-prototypes \
	-O1 -g $(CALLER_CFLAGS) $(EXTRA_CFLAGS) -std=gnu11 $(BASE_CPPFLAGS) $(CPPFLAGS) \
	-isystem $(B)/ksrc
# Unit tests: LeakSanitizer also in the kselftest harness's children, which
# leave with _exit() (tests/lib/lsan_exit.h).
UNIT_LSAN := tests/lib/lsan_exit.h
UNIT_CFLAGS := $(TEST_CFLAGS) $(SAN_FLAGS) -include $(UNIT_LSAN)
LIBS := $(NL_LIBS) $(SODIUM_LIBS) $(SSL_LIBS) $(KCAPI_LIBS) $(SYSTEMD_LIBS) -lm -lpthread
# Bind every symbol at start-up: besides a read-only GOT, no lazy-binding
# resolver runs later, which saves all vector registers -- key bytes after
# a memcpy -- on the stack, where no wipe of ours reaches them
# (Documentation/robustness.md, "The 6.1 flushed-phase finding").
USER_LDFLAGS := $(HARDEN_CFLAGS) $(CFLAGS) -pie -Wl,-z,relro,-z,now $(LDFLAGS)

# The flags of the last build, in a file that changes when they do: the
# objects and tools depend on it, so `make CFLAGS=-O0` after `make` (or CI's
# WERROR=1 after a plain build) rebuilds them instead of mixing flags. Even
# `make -n` updates it: tests that only print commands use their own B=.
# Goals that build nothing leave it alone.
FLAGS_STAMP := $(B)/.flags
flags_now := $(CC) $(USER_CFLAGS) $(WERROR) | $(USER_LDFLAGS)
NOBUILD_GOALS := uninstall uninstall-module uninstall-tools uninstall-dev \
	dkms-remove clean
ifneq ($(filter-out $(NOBUILD_GOALS),$(or $(MAKECMDGOALS),all)),)
ifneq ($(flags_now),$(file <$(FLAGS_STAMP)))
$(shell mkdir -p $(B))
$(file >$(FLAGS_STAMP),$(flags_now))
endif
endif

LIB_SRCS := $(wildcard userspace/lib/*.c)
PROTO_SRCS := $(wildcard userspace/protocol/*.c)
QKDCTL_SRCS := $(wildcard userspace/qkdctl/*.c)
QKDD_SRCS := $(wildcard userspace/qkdd/*.c)
KME_SRCS := $(wildcard userspace/kme/*.c)
TIMETAG_SRCS := $(wildcard userspace/timetag/*.c)
UNIT_TESTS := $(patsubst tests/unit/%.c,$(B)/san/tests/unit/%,\
		$(wildcard tests/unit/test_*.c))
KERNEL_TESTS := $(patsubst tests/kernel/%.c,$(B)/tests/kernel/%,\
		$(wildcard tests/kernel/test_*.c))
BENCHES := $(patsubst bench/%.c,$(B)/bench/%,$(wildcard bench/bench_*.c))

# Objects: $(B)/obj for the tools, $(B)/san/obj for ASan/UBSan test builds.
objs = $(patsubst %.c,$(1)/%.o,$(2))

.PHONY: all module tools libqkd examples tests harness check check-unit check-vm lint regen \
	debug-kernel check-debug stress mutants \
	lint-full check-deb install install-module install-tools install-dev \
	uninstall uninstall-module uninstall-tools uninstall-dev dkms dkms-remove demo \
	bench clean

all: module tools libqkd examples

# The running kernel, which `make module` compares with KDIR's (a test sets
# it: tests/lib/check-install.sh).
RUNNING_KVER ?= $(shell uname -r)

# A module for another kernel than the running one builds, but does not
# load here: say so (it is no error: the VM tests and packages do it).
module:
	@if [ -z "$(KDIR)" ] || [ ! -d "$(KDIR)" ]; then \
		echo "no kernel build tree: install linux-headers-amd64 or set KDIR" >&2; \
		exit 1; fi
	@if [ "$(KVER)" != "$(RUNNING_KVER)" ]; then \
		echo "warning: building qkd.ko for kernel $(KVER) (KDIR=$(KDIR)), not for the running kernel $(RUNNING_KVER): it will not load here" >&2; fi
	$(MAKE) -C $(KDIR) M=$(CURDIR) W=1 modules

tools: $(B)/qkdctl $(if $(QKDD_SRCS),$(B)/qkdd) $(B)/qkd-kme

$(B)/obj/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(USER_CFLAGS) -MMD -MP -c -o $@ $<

$(B)/san/obj/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -Werror,$(USER_CFLAGS_NOFORTIFY)) -Werror $(SAN_FLAGS) \
		-MMD -MP -c -o $@ $<

$(B)/libqkd.a: $(call objs,$(B)/obj,$(LIB_SRCS))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
# The shared libqkd: position-independent objects of its own, the symbols
# of userspace/lib/libqkd.map (the installed headers' API, version
# LIBQKD_0) and no other, soname libqkd.so.$(LIBQKD_SOVER). The real name
# carries VERSION; LIBQKD_SOVER changes only with an incompatible ABI.
LIBQKD_SOVER := 0
LIBQKD_SONAME := libqkd.so.$(LIBQKD_SOVER)
LIBQKD_SO := libqkd.so.$(VERSION)
LIBQKD_MAP := userspace/lib/libqkd.map
$(B)/pic/obj/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -fPIE,$(USER_CFLAGS)) -fPIC -MMD -MP -c -o $@ $<
$(B)/$(LIBQKD_SO): $(call objs,$(B)/pic/obj,$(LIB_SRCS)) $(LIBQKD_MAP) $(FLAGS_STAMP)
	$(CC) $(filter-out -pie -fPIE,$(USER_LDFLAGS)) -fPIC -shared \
		-Wl,-soname,$(LIBQKD_SONAME) -Wl,--version-script=$(LIBQKD_MAP) \
		-Wl,--no-undefined -o $@ $(filter %.o,$^) $(NL_LIBS) $(SODIUM_LIBS) \
		-lpthread
$(B)/$(LIBQKD_SONAME): $(B)/$(LIBQKD_SO)
	ln -sf $(LIBQKD_SO) $@
$(B)/libqkd.so: $(B)/$(LIBQKD_SONAME)
	ln -sf $(LIBQKD_SONAME) $@
libqkd: $(B)/libqkd.a $(B)/libqkd.so

# The LDPC decoder's inner loops (userspace/protocol/ldpc.c): vectorized,
# which needs if-conversion of its float comparisons (-fno-trapping-math: no
# code of it tests floating-point exception flags). No -ffast-math: both
# ends must compute the same thing, and the decoder's sums keep their order.
LDPC_VEC_CFLAGS := -ftree-vectorize -fvect-cost-model=dynamic -fno-trapping-math
$(B)/obj/userspace/protocol/ldpc.o $(B)/san/obj/userspace/protocol/ldpc.o: \
	USER_CFLAGS += $(LDPC_VEC_CFLAGS)
$(B)/san/obj/userspace/protocol/ldpc.o: USER_CFLAGS_NOFORTIFY += $(LDPC_VEC_CFLAGS)

$(B)/libqkdproto.a: $(call objs,$(B)/obj,$(PROTO_SRCS))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(B)/san/libqkd.a: $(call objs,$(B)/san/obj,$(LIB_SRCS))
	rm -f $@ && ar rcs $@ $^
$(B)/san/libqkdproto.a: $(call objs,$(B)/san/obj,$(PROTO_SRCS))
	rm -f $@ && ar rcs $@ $^

$(B)/qkdctl: $(call objs,$(B)/obj,$(QKDCTL_SRCS)) $(B)/libqkd.a $(FLAGS_STAMP)
	$(CC) $(USER_LDFLAGS) -o $@ $(filter %.o %.a,$^) $(LIBS)
$(call objs,$(B)/obj,$(QKDD_SRCS)) $(call objs,$(B)/san/obj,$(QKDD_SRCS)): \
	USER_CFLAGS += $(QKDD_CFLAGS)
$(call objs,$(B)/san/obj,$(QKDD_SRCS)): USER_CFLAGS_NOFORTIFY += $(QKDD_CFLAGS)
$(B)/qkdd: $(call objs,$(B)/obj,$(QKDD_SRCS)) $(B)/libqkdproto.a $(B)/libqkd.a \
		$(FLAGS_STAMP)
	$(CC) $(USER_LDFLAGS) -o $@ $(filter %.o %.a,$^) $(QKDD_LIBS) $(LIBS)

# qkd-timetag: recorded detection files for qkdd --replay (a development
# tool, not installed); qkdd's --channel parser (config.c) with it.
$(B)/qkd-timetag: $(call objs,$(B)/obj,$(TIMETAG_SRCS)) \
		$(B)/obj/userspace/qkdd/config.o $(B)/libqkdproto.a $(B)/libqkd.a \
		$(FLAGS_STAMP)
	$(CC) $(USER_LDFLAGS) -o $@ $(filter %.o %.a,$^) $(LIBS)

# qkd-kme: its objects see its libraries' headers.
$(call objs,$(B)/obj,$(KME_SRCS)) $(call objs,$(B)/san/obj,$(KME_SRCS)): \
	USER_CFLAGS += $(KME_CFLAGS)
$(call objs,$(B)/san/obj,$(KME_SRCS)): USER_CFLAGS_NOFORTIFY += $(KME_CFLAGS)
$(B)/qkd-kme: $(call objs,$(B)/obj,$(KME_SRCS)) $(B)/libqkd.a $(FLAGS_STAMP)
	$(CC) $(USER_LDFLAGS) -o $@ $(filter %.o %.a,$^) $(KME_LIBS) $(LIBS)

harness: $(B)/ksrc/.done $(B)/ksrc/ynl/.done
# One run of the script makes both stamps: a grouped target (&:), or under -j
# make runs it once per stamp, and the two runs race on the same files.
$(B)/ksrc/.done $(B)/ksrc/ynl/.done &:
	tests/lib/kernel-source.sh $(B)/ksrc

# Unit tests run on the host, under ASan/UBSan, linked with both libraries.
# -MMD: what a test includes (test_qkdd_config includes qkdd's config.c to
# reach its static parsers) rebuilds it when it changes.
$(B)/san/tests/unit/%: tests/unit/%.c $(B)/san/libqkdproto.a $(B)/san/libqkd.a \
		$(UNIT_LSAN) | harness
	@mkdir -p $(dir $@)
	$(CC) $(UNIT_CFLAGS) -MMD -MP -MF $@.d -o $@ $< $(filter %.a,$^) $(LIBS)

# The proof that a leaking unit test fails (tests/lib/selftest.sh); not a
# unit test.
$(B)/san/tests/lib/lsan_leak: tests/lib/lsan_leak.c $(UNIT_LSAN) | harness
	@mkdir -p $(dir $@)
	$(CC) $(UNIT_CFLAGS) -o $@ $(filter-out %.h,$^)

# qkdd's protocol driver in process: all of qkdd but main.c, before the libs.
QKDD_TEST_OBJS := $(call objs,$(B)/san/obj,\
		$(filter-out userspace/qkdd/main.c,$(QKDD_SRCS)))
$(B)/san/tests/unit/test_qkdd_session: tests/unit/test_qkdd_session.c \
		$(QKDD_TEST_OBJS) $(B)/san/libqkdproto.a $(B)/san/libqkd.a \
		$(UNIT_LSAN) | harness
	@mkdir -p $(dir $@)
	$(CC) $(UNIT_CFLAGS) -o $@ $(filter-out %.h,$^) $(QKDD_LIBS) $(LIBS)

# qkdd's parser of a vendor KME's answers (it includes kme_parse.c).
$(B)/san/tests/unit/test_qkdd_kme_parse: tests/unit/test_qkdd_kme_parse.c \
		$(B)/san/libqkd.a $(UNIT_LSAN) | harness
	@mkdir -p $(dir $@)
	$(CC) $(UNIT_CFLAGS) $(QKDD_CFLAGS) -MMD -MP -MF $@.d -o $@ $< \
		$(filter %.a,$^) $(QKDD_LIBS) $(LIBS)

# qkd-kme's parsers and checks in process: all of it but main.c.
KME_TEST_OBJS := $(call objs,$(B)/san/obj,\
		$(filter-out userspace/kme/main.c,$(KME_SRCS)))
$(B)/san/tests/unit/test_kme_%: tests/unit/test_kme_%.c $(KME_TEST_OBJS) \
		$(B)/san/libqkd.a $(UNIT_LSAN) | harness
	@mkdir -p $(dir $@)
	$(CC) $(UNIT_CFLAGS) $(KME_CFLAGS) -MMD -MP -MF $@.d -o $@ \
		$(filter-out %.h,$^) $(KME_LIBS) $(LIBS)

# Kernel tests run inside the VM (no sanitizers: the guest is small).
$(B)/tests/kernel/%: tests/kernel/%.c tests/kernel/qkd_test.h tests/kernel/qkd_wire.h $(B)/libqkd.a | harness
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -o $@ $(filter %.c %.a,$^) $(LIBS)
# test_kapi drives the test module tests/kmod/qkd_kapi_test.c (built per
# kernel by tests/kmod/build.sh, from tests/vm/run-kernel-tests.sh).
$(B)/tests/kernel/test_kapi: tests/kmod/qkd_kapi_test.h
# test_lsm loads the BPF LSM program lsm_deny.bpf.o, next to it, with
# libbpf. No vmlinux.h: the program only forward-declares the hooks' structs;
# the uapi headers (linux/bpf.h) need the multiarch include directory.
BPF_CLANG ?= clang
BPF_CFLAGS := -target bpf -O2 -g -Wall -Wextra -Wno-unused-parameter -Werror \
	-I/usr/include/$(shell gcc -print-multiarch 2>/dev/null)
BPF_LIBS := $(shell pkg-config --libs libbpf 2>/dev/null)
$(B)/tests/kernel/lsm_deny.bpf.o: tests/kernel/lsm_deny.bpf.c tests/kernel/lsm_deny.h
	@mkdir -p $(dir $@)
	$(BPF_CLANG) $(BPF_CFLAGS) -c -o $@ $<
$(B)/tests/kernel/test_lsm: tests/kernel/lsm_deny.h $(B)/tests/kernel/lsm_deny.bpf.o
$(B)/tests/kernel/test_lsm: LIBS += $(BPF_LIBS)

$(B)/bench/%: bench/%.c $(B)/libqkdproto.a $(B)/libqkd.a
	@mkdir -p $(dir $@)
	$(CC) $(USER_CFLAGS) -O3 -march=x86-64-v2 -o $@ $^ $(LIBS)
# bench_key_fetch's HTTPS rows: libcurl as the SAE of qkd-kme, json-c to
# check its replies.
BENCH_KME_PKGS := libcurl json-c
$(B)/bench/bench_key_fetch: USER_CFLAGS += $(shell pkg-config --cflags $(BENCH_KME_PKGS) 2>/dev/null)
$(B)/bench/bench_key_fetch: LIBS += $(shell pkg-config --libs $(BENCH_KME_PKGS) 2>/dev/null)

# The example of libqkd(3), and the 004 driver of tests/e2e/etsi004.sh:
# linked with the shared libqkd of the build tree (found through their
# RUNPATH), so that what they call is what libqkd.so.0 exports.
EXAMPLES := $(B)/examples/qkd_get_key_example
examples: $(EXAMPLES)
LINK_LIBQKD_SO = -L$(B) -Wl,-rpath,'$$ORIGIN/..' -lqkd
$(B)/examples/%: userspace/examples/%.c $(B)/libqkd.so $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(USER_CFLAGS) $(USER_LDFLAGS) -o $@ $< $(LINK_LIBQKD_SO) $(SSL_LIBS)
$(B)/tests/etsi004_probe: tests/e2e/etsi004_probe.c $(B)/libqkd.so $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(USER_CFLAGS) -Werror $(USER_LDFLAGS) -o $@ $< $(LINK_LIBQKD_SO) $(SSL_LIBS) -lpthread

# The man in the middle of tests/e2e/qkdd_mitm.sh.
$(B)/tests/qkdd_mitm: tests/e2e/qkdd_mitm.c $(B)/libqkdproto.a
	@mkdir -p $(dir $@)
	$(CC) $(USER_CFLAGS) -o $@ $^ $(LIBS)

tests: $(UNIT_TESTS) $(KERNEL_TESTS) $(B)/tests/qkdd_mitm $(B)/tests/etsi004_probe \
	$(B)/qkd-timetag

bench: $(BENCHES)

# Every test: host unit tests, lint, and the VM tests on both kernels.
check:
	tests/run-all.sh

check-unit: $(UNIT_TESTS)
	@set -e; for t in $(UNIT_TESTS); do echo "# $$t"; $$t; done

check-vm: all $(KERNEL_TESTS)
	tests/vm/run-kernel-tests.sh

# The debug VM kernel (KASAN, UBSAN, kmemleak, lockdep, fault injection),
# built once from linux-source-6.12 into $(or $(QKD_CACHE),/var/cache/qkd)
# and rebuilt only when tests/vm/debug-kernel.config changes (1600 CPU s:
# about 14 min on two idle cores, 55 on a busy 2-core machine; minutes when
# an older tree of the same source is cached to start from).
debug-kernel:
	tests/vm/build-debug-kernel.sh

# Every VM check on the debug kernel (Documentation/robustness.md): the
# kernel tests with a kmemleak scan after each, the fuzzer, the stress test
# and the fail-nth allocation-failure sweep, and the key-wipe canary.
check-debug: debug-kernel all $(KERNEL_TESTS)
	@rc=0; \
	tests/vm/run-kernel-tests.sh --kernel debug --timeout 3600 -q || rc=1; \
	tests/robust/run.sh --kernel debug || rc=1; \
	tests/robust/canary.sh --kernel debug -P || rc=1; \
	exit $$rc

# The long forms of the robustness checks (hours of one VM on 2 cores). On
# the debug kernel: more fuzzing and stress, the fail-nth sweep with 32 KiB
# pushes, 40 SIGKILLs of qkdd, 100 loads and unloads of the module in use,
# a bigger canary. On the Debian kernels, where a kill and its recovery
# take 4 s instead of 28: 300 SIGKILLs of qkdd (qkdd_crash.sh) each. On the
# host first: every libFuzzer target for 10 minutes. Last, the kernel
# mutants (make mutants), and the Debian packages with a DKMS build from
# qkd-dkms's layout (make check-deb).
stress: debug-kernel all
	@rc=0; \
	FUZZ_TIME=600 fuzz/run.sh || rc=1; \
	QKD_FAILNTH_ARGS="-b 1024 -m 20000 -N 20000" \
	QKD_LOADUNLOAD_ARGS="-n 100" QKD_LOADUNLOAD_ITERS=100 tests/robust/run.sh \
		--kernel debug -n 200000 -u 50000 -t 300 --stress-time 600 \
		--crash-kills 40 || rc=1; \
	tests/robust/canary.sh --kernel debug -k 4096 -P || rc=1; \
	tests/robust/run.sh --kernel all --crash-kills 300 || rc=1; \
	tests/mutants/run.sh --kind kernel || rc=1; \
	tests/lib/check-deb.sh -k || rc=1; \
	exit $$rc

# Mutation testing (Documentation/robustness.md, "Mutants"): each mutant of
# tests/mutants/*.mut, a small breakage of security-critical code, applied
# alone to a scratch copy of the tree (build/mutants/tree), must be killed
# by its tests: the host unit tests, and for the kernel mutants qkd.ko
# rebuilt for the newest installed kernel with the targeted kselftest (or
# the key-wipe canary) in the VM. Fails unless every one is killed; prints
# the mutation score. The unit mutants alone are the "mutants" stage of
# tests/run-all.sh (QKD_MUTANTS_KIND=unit here does the same).
mutants: tests
	tests/mutants/run.sh --kind $(or $(QKD_MUTANTS_KIND),all)

# Quick static checks (seconds): checkpatch --strict, the YNL spec and the
# files generated from it. The
# full set, with sparse, W=1 on every kernel, install and dkms, is
# tests/lib/lint.sh (the "lint" stage of tests/run-all.sh).
lint: harness
	perl $(B)/ksrc/checkpatch.pl --strict --no-tree --terse -q \
		--ignore FILE_PATH_CHANGES,SPDX_LICENSE_TAG \
		-f kernel/*.c kernel/*.h include/uapi/linux/qkd.h \
		include/uapi/linux/qkd_dev.h include/linux/qkd.h \
		tests/kmod/*.c tests/kmod/*.h
	python3 tests/lib/check-spec.py Documentation/netlink/specs/qkd.yaml \
		$(B)/ksrc/genetlink-c.yaml
	tests/lib/check-gen.sh

lint-full:
	tests/lib/lint.sh

# The generic netlink family is generated from its YNL spec, the one place
# its attributes are declared: the uapi header include/uapi/linux/qkd.h and
# the kernel's request policies and op table kernel/netlink-gen.[ch], all
# committed (the /dev/qkd ioctls are hand-written, in linux/qkd_dev.h).
# The generator is the kernel's own, tools/net/ynl/ynl-gen-c.py of
# linux-source-6.12 (extracted into $(B)/ksrc/ynl by `make harness`), run
# with Debian's /usr/bin/python3 (its yaml and jsonschema: the generator
# validates the spec against Documentation/netlink/genetlink-c.yaml). It
# walks up from the spec to a directory holding a MAINTAINERS file to name
# the spec in its output (and loops forever if there is none), and takes
# the schema from the spec's ../ directory, so it runs on a copy of the
# spec in a scratch tree with both: $(B)/ynl/tree. For each output:
#   /usr/bin/python3 $(B)/ksrc/ynl/tools/net/ynl/ynl-gen-c.py \
#	--spec $(B)/ynl/tree/Documentation/netlink/specs/qkd.yaml \
#	--mode uapi --header -o include/uapi/linux/qkd.h
#   (the same with --mode kernel --header -o kernel/netlink-gen.h and
#    --mode kernel --source -o kernel/netlink-gen.c)
# YNL_OUT=dir writes the three files under dir instead of the tree
# (tests/lib/lint.sh does, and fails when they differ from the committed
# ones).
YNL_PY := /usr/bin/python3
YNL_GEN := $(B)/ksrc/ynl/tools/net/ynl/ynl-gen-c.py
YNL_TREE := $(B)/ynl/tree
YNL_SPEC := Documentation/netlink/specs/qkd.yaml
YNL_OUT ?= .
regen: harness
	rm -rf $(YNL_TREE)
	mkdir -p $(YNL_TREE)/Documentation/netlink/specs \
		$(YNL_OUT)/include/uapi/linux $(YNL_OUT)/kernel
	touch $(YNL_TREE)/MAINTAINERS
	cp $(B)/ksrc/ynl/Documentation/netlink/genetlink-c.yaml \
		$(YNL_TREE)/Documentation/netlink/
	cp $(YNL_SPEC) $(YNL_TREE)/$(YNL_SPEC)
	$(YNL_PY) $(YNL_GEN) --spec $(CURDIR)/$(YNL_TREE)/$(YNL_SPEC) \
		--mode uapi --header -o $(YNL_OUT)/include/uapi/linux/qkd.h
	$(YNL_PY) $(YNL_GEN) --spec $(CURDIR)/$(YNL_TREE)/$(YNL_SPEC) \
		--mode kernel --header -o $(YNL_OUT)/kernel/netlink-gen.h
	$(YNL_PY) $(YNL_GEN) --spec $(CURDIR)/$(YNL_TREE)/$(YNL_SPEC) \
		--mode kernel --source -o $(YNL_OUT)/kernel/netlink-gen.c

# The Debian packages: built (dpkg-buildpackage, in a scratch copy),
# linted, their contents checked, and qkd.ko built by DKMS from
# qkd-dkms's files (tests/lib/check-deb.sh; the lint stage runs it without
# the DKMS build).
check-deb:
	tests/lib/check-deb.sh -k

demo:
	tools/demo.sh

# `make install` puts the module under /lib/modules/KVER/updates (DESTDIR
# only: the kernel's place, not PREFIX's), the tools, man pages, unit, udev
# rule and modules-load.d file (install-tools), and the uapi header, libqkd
# and its headers and pkg-config file (install-dev). `make uninstall`, with
# the same DESTDIR and PREFIX, removes exactly those files
# (tests/lib/check-install.sh checks both).
# Sections 5 and 8 (the tools, the site file) go with install-tools,
# section 3 (libqkd) with install-dev.
MAN_PAGES := $(wildcard Documentation/man/*.[58])
MAN3_PAGES := $(wildcard Documentation/man/*.3)
MAN_FILES := $(foreach m,$(MAN_PAGES),\
	$(MANDIR)/man$(subst .,,$(suffix $(m)))/$(notdir $(m)))
MAN3_FILES := $(foreach m,$(MAN3_PAGES),$(MANDIR)/man3/$(notdir $(m)))
# libqkd's public headers: the library's own (userspace/lib), not the
# protocol stages of libqkdproto, which is qkdd's and not installed.
LIBQKD_HEADERS := crypto dev etsi004 ids json nl sa util
TOOLS_FILES := $(SBINDIR)/qkdctl $(SBINDIR)/qkdd $(SBINDIR)/qkd-kme $(MAN_FILES) \
	$(UNITDIR)/qkdd@.service $(UNITDIR)/qkd@.service $(UNITDIR)/qkd-kme.service \
	$(UDEVRULESDIR)/60-qkd.rules \
	$(MODULESLOADDIR)/qkd.conf $(SYSUSERSDIR)/qkd.conf $(TMPFILESDIR)/qkd.conf
DEV_FILES := $(INCLUDEDIR)/linux/qkd.h $(INCLUDEDIR)/linux/qkd_dev.h \
	$(patsubst %,$(INCLUDEDIR)/qkd/%.h,$(LIBQKD_HEADERS)) \
	$(LIBDIR)/libqkd.a $(LIBDIR)/$(LIBQKD_SO) $(LIBDIR)/$(LIBQKD_SONAME) \
	$(LIBDIR)/libqkd.so $(PKGCONFIGDIR)/libqkd.pc $(MAN3_FILES)
# What modules_install may name the module (the kernel's
# CONFIG_MODULE_COMPRESS_*).
MODULE_FILES = $(foreach z,.ko .ko.xz .ko.zst .ko.gz,\
	/lib/modules/$(KVER)/updates/qkd$(z))

install: install-module install-tools install-dev

install-module: module
	$(MAKE) -C $(KDIR) M=$(CURDIR) INSTALL_MOD_PATH=$(DESTDIR) \
		INSTALL_MOD_DIR=updates CONFIG_MODULE_SIG_ALL= modules_install
	if [ -z "$(DESTDIR)" ]; then depmod -a $(KVER); fi

# The unit's paths follow SBINDIR (tools/systemd/*.in: @SBINDIR@),
# generated at install time so that no build for another PREFIX is reused.
install-tools: tools
	install -D -m 0755 $(B)/qkdctl $(DESTDIR)$(SBINDIR)/qkdctl
	install -D -m 0755 $(B)/qkdd $(DESTDIR)$(SBINDIR)/qkdd
	install -D -m 0755 $(B)/qkd-kme $(DESTDIR)$(SBINDIR)/qkd-kme
	set -e; for m in $(MAN_PAGES); do \
		s=$${m##*.}; install -D -m 0644 $$m $(DESTDIR)$(MANDIR)/man$$s/$${m##*/}; \
	done
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	set -e; for u in qkdd@ qkd@ qkd-kme; do \
		sed 's|@SBINDIR@|$(SBINDIR)|g' tools/systemd/$$u.service.in \
			>$(DESTDIR)$(UNITDIR)/$$u.service; \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$u.service; \
	done
	install -D -m 0644 tools/udev/60-qkd.rules $(DESTDIR)$(UDEVRULESDIR)/60-qkd.rules
	install -D -m 0644 tools/modules-load/qkd.conf \
		$(DESTDIR)$(MODULESLOADDIR)/qkd.conf
	install -D -m 0644 tools/sysusers/qkd.conf $(DESTDIR)$(SYSUSERSDIR)/qkd.conf
	install -D -m 0644 tools/tmpfiles/qkd.conf $(DESTDIR)$(TMPFILESDIR)/qkd.conf

install-dev: $(B)/libqkd.a $(B)/$(LIBQKD_SO)
	install -D -m 0644 include/uapi/linux/qkd.h $(DESTDIR)$(INCLUDEDIR)/linux/qkd.h
	install -D -m 0644 include/uapi/linux/qkd_dev.h $(DESTDIR)$(INCLUDEDIR)/linux/qkd_dev.h
	install -d -m 0755 $(DESTDIR)$(INCLUDEDIR)/qkd
	install -m 0644 $(patsubst %,userspace/include/qkd/%.h,$(LIBQKD_HEADERS)) \
		$(DESTDIR)$(INCLUDEDIR)/qkd/
	install -D -m 0644 $(B)/libqkd.a $(DESTDIR)$(LIBDIR)/libqkd.a
	install -m 0644 $(B)/$(LIBQKD_SO) $(DESTDIR)$(LIBDIR)/$(LIBQKD_SO)
	ln -sf $(LIBQKD_SO) $(DESTDIR)$(LIBDIR)/$(LIBQKD_SONAME)
	ln -sf $(LIBQKD_SONAME) $(DESTDIR)$(LIBDIR)/libqkd.so
	set -e; for m in $(MAN3_PAGES); do \
		install -D -m 0644 $$m $(DESTDIR)$(MANDIR)/man3/$${m##*/}; \
	done
	install -d -m 0755 $(DESTDIR)$(PKGCONFIGDIR)
	sed -e 's|@VERSION@|$(VERSION)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
		-e 's|@LIBDIR@|$(LIBDIR)|g' tools/libqkd.pc.in \
		>$(DESTDIR)$(PKGCONFIGDIR)/libqkd.pc
	chmod 0644 $(DESTDIR)$(PKGCONFIGDIR)/libqkd.pc

uninstall: uninstall-module uninstall-tools uninstall-dev

uninstall-module:
	rm -f $(addprefix $(DESTDIR),$(MODULE_FILES))
	if [ -z "$(DESTDIR)" ] && [ -d /lib/modules/$(KVER) ]; then depmod -a $(KVER); fi

uninstall-tools:
	rm -f $(addprefix $(DESTDIR),$(TOOLS_FILES))

uninstall-dev:
	rm -f $(addprefix $(DESTDIR),$(DEV_FILES))
	-rmdir $(DESTDIR)$(INCLUDEDIR)/qkd 2>/dev/null

# DKMS: copy the module sources to /usr/src/qkd-<version> and register
# them; dkms.conf's #MODULE_VERSION# (as dh_dkms fills it) becomes VERSION.
dkms:
	rm -rf $(DESTDIR)/usr/src/qkd-$(VERSION)
	mkdir -p $(DESTDIR)/usr/src/qkd-$(VERSION)
	cp -r Kbuild VERSION kernel include $(DESTDIR)/usr/src/qkd-$(VERSION)/
	sed 's/#MODULE_VERSION#/$(VERSION)/' dkms.conf \
		>$(DESTDIR)/usr/src/qkd-$(VERSION)/dkms.conf
	dkms add -m qkd -v $(VERSION)
	dkms install -m qkd -v $(VERSION)

dkms-remove:
	dkms remove -m qkd -v $(VERSION) --all
	rm -rf $(DESTDIR)/usr/src/qkd-$(VERSION)

clean:
	-[ -d "$(KDIR)" ] && $(MAKE) -C $(KDIR) M=$(CURDIR) clean
	rm -rf $(B)

-include $(shell find $(B) -name '*.d' 2>/dev/null)
