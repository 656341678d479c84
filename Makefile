# SPDX-License-Identifier: GPL-2.0-only
#
# qkd: `make` builds qkd.ko and the userspace tools, `make check` runs every
# test (see README.md). The module itself is described by Kbuild; kbuild reads
# that file, never this one.

KDIR ?= $(shell d=/lib/modules/$$(uname -r)/build; \
	  if [ -d $$d ]; then echo $$d; \
	  else ls -d /lib/modules/*/build 2>/dev/null | sort -V | tail -n 1; fi)
PREFIX ?= /usr/local
DESTDIR ?=
MODULE_VERSION := 0.1.0

CC ?= gcc
B := build
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
	     -fno-sanitize-recover=all
NL_CFLAGS := $(shell pkg-config --cflags libnl-genl-3.0 2>/dev/null)
NL_LIBS := $(shell pkg-config --libs libnl-genl-3.0 2>/dev/null)
SSL_LIBS := $(shell pkg-config --libs openssl 2>/dev/null)
KCAPI_LIBS := $(shell pkg-config --libs libkcapi 2>/dev/null)
WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes \
	-Wmissing-prototypes
BASE_CPPFLAGS := -D_GNU_SOURCE -Iinclude/uapi -Iuserspace/include $(NL_CFLAGS)
USER_CFLAGS := -std=c11 $(WARN) -O2 -g $(BASE_CPPFLAGS) $(EXTRA_CFLAGS)
# Tests use the kselftest harness, which needs GNU C and whose macros leave
# parameters unused.
TEST_CFLAGS := -std=gnu11 $(WARN) -Wno-unused-parameter \
	-Wno-missing-prototypes -O1 -g $(BASE_CPPFLAGS) -isystem $(B)/ksrc
# Unit tests: LeakSanitizer also in the kselftest harness's children, which
# leave with _exit() (tests/lib/lsan_exit.h).
UNIT_LSAN := tests/lib/lsan_exit.h
UNIT_CFLAGS := $(TEST_CFLAGS) $(SAN_FLAGS) -include $(UNIT_LSAN)
LIBS := $(NL_LIBS) $(SSL_LIBS) $(KCAPI_LIBS) -lm -lpthread
# Bind every symbol at start-up: besides a read-only GOT, no lazy-binding
# resolver runs later, which saves all vector registers -- key bytes after
# a memcpy -- on the stack, where no wipe of ours reaches them
# (Documentation/robustness.md, "The 6.1 flushed-phase finding").
USER_LDFLAGS := -Wl,-z,relro,-z,now

LIB_SRCS := $(wildcard userspace/lib/*.c)
PROTO_SRCS := $(wildcard userspace/protocol/*.c)
QKDCTL_SRCS := $(wildcard userspace/qkdctl/*.c)
QKDD_SRCS := $(wildcard userspace/qkdd/*.c)
UNIT_TESTS := $(patsubst tests/unit/%.c,$(B)/san/tests/unit/%,\
		$(wildcard tests/unit/test_*.c))
KERNEL_TESTS := $(patsubst tests/kernel/%.c,$(B)/tests/kernel/%,\
		$(wildcard tests/kernel/test_*.c))
BENCHES := $(patsubst bench/%.c,$(B)/bench/%,$(wildcard bench/bench_*.c))

# Objects: $(B)/obj for the tools, $(B)/san/obj for ASan/UBSan test builds.
objs = $(patsubst %.c,$(1)/%.o,$(2))

.PHONY: all module tools tests harness check check-unit check-vm lint regen \
	debug-kernel check-debug stress mutants \
	lint-full install install-module install-tools dkms demo \
	bench clean

all: module tools

module:
	@if [ -z "$(KDIR)" ] || [ ! -d "$(KDIR)" ]; then \
		echo "no kernel build tree: install linux-headers-amd64 or set KDIR" >&2; \
		exit 1; fi
	$(MAKE) -C $(KDIR) M=$(CURDIR) W=1 modules

tools: $(B)/qkdctl $(if $(QKDD_SRCS),$(B)/qkdd)

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(USER_CFLAGS) -MMD -MP -c -o $@ $<

$(B)/san/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(USER_CFLAGS) $(SAN_FLAGS) -MMD -MP -c -o $@ $<

$(B)/libqkd.a: $(call objs,$(B)/obj,$(LIB_SRCS))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(B)/libqkdproto.a: $(call objs,$(B)/obj,$(PROTO_SRCS))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(B)/san/libqkd.a: $(call objs,$(B)/san/obj,$(LIB_SRCS))
	rm -f $@ && ar rcs $@ $^
$(B)/san/libqkdproto.a: $(call objs,$(B)/san/obj,$(PROTO_SRCS))
	rm -f $@ && ar rcs $@ $^

$(B)/qkdctl: $(call objs,$(B)/obj,$(QKDCTL_SRCS)) $(B)/libqkd.a
	$(CC) $(USER_LDFLAGS) -o $@ $^ $(LIBS)
$(B)/qkdd: $(call objs,$(B)/obj,$(QKDD_SRCS)) $(B)/libqkdproto.a $(B)/libqkd.a
	$(CC) $(USER_LDFLAGS) -o $@ $^ $(LIBS)

harness: $(B)/ksrc/.done $(B)/ksrc/ynl/.done
$(B)/ksrc/.done $(B)/ksrc/ynl/.done:
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
	$(CC) $(UNIT_CFLAGS) -o $@ $(filter-out %.h,$^) $(LIBS)

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

# The man in the middle of tests/e2e/qkdd_mitm.sh.
$(B)/tests/qkdd_mitm: tests/e2e/qkdd_mitm.c $(B)/libqkdproto.a
	@mkdir -p $(dir $@)
	$(CC) $(USER_CFLAGS) -o $@ $^ $(LIBS)

tests: $(UNIT_TESTS) $(KERNEL_TESTS) $(B)/tests/qkdd_mitm

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
# mutants (make mutants).
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

demo:
	tools/demo.sh

install: install-module install-tools

install-module: module
	$(MAKE) -C $(KDIR) M=$(CURDIR) INSTALL_MOD_PATH=$(DESTDIR) \
		INSTALL_MOD_DIR=updates CONFIG_MODULE_SIG_ALL= modules_install
	if [ -z "$(DESTDIR)" ]; then depmod -a $(notdir $(patsubst %/build,%,$(KDIR))); fi
	install -D -m 0644 include/uapi/linux/qkd.h $(DESTDIR)$(PREFIX)/include/linux/qkd.h
	install -D -m 0644 include/uapi/linux/qkd_dev.h $(DESTDIR)$(PREFIX)/include/linux/qkd_dev.h

install-tools: tools
	install -D -m 0755 $(B)/qkdctl $(DESTDIR)$(PREFIX)/sbin/qkdctl
	if [ -x $(B)/qkdd ]; then install -D -m 0755 $(B)/qkdd $(DESTDIR)$(PREFIX)/sbin/qkdd; fi
	for m in Documentation/man/*.[0-9]; do \
		[ -f "$$m" ] || continue; \
		s=$${m##*.}; install -D -m 0644 $$m $(DESTDIR)$(PREFIX)/share/man/man$$s/$$(basename $$m); \
	done
	install -D -m 0644 tools/udev/60-qkd.rules $(DESTDIR)/etc/udev/rules.d/60-qkd.rules
	install -D -m 0644 tools/systemd/qkdd@.service \
		$(DESTDIR)/etc/systemd/system/qkdd@.service

# DKMS: copy the module sources to /usr/src/qkd-<version> and register them.
dkms:
	rm -rf $(DESTDIR)/usr/src/qkd-$(MODULE_VERSION)
	mkdir -p $(DESTDIR)/usr/src/qkd-$(MODULE_VERSION)
	cp -r Kbuild dkms.conf kernel include $(DESTDIR)/usr/src/qkd-$(MODULE_VERSION)/
	dkms add -m qkd -v $(MODULE_VERSION)
	dkms install -m qkd -v $(MODULE_VERSION)

clean:
	-[ -d "$(KDIR)" ] && $(MAKE) -C $(KDIR) M=$(CURDIR) clean
	rm -rf $(B)

-include $(shell find $(B) -name '*.d' 2>/dev/null)
