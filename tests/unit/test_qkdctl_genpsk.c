// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkdctl genpsk: the pre-shared key pair it writes is what qkdd loads
 * (auth_psk_read() and auth_new_from_psk(), the daemon's own loader), and it
 * never writes through an existing file, a symbolic link or a partly failed
 * pair. Runs build/qkdctl (from the top of the tree); no kernel module.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <qkd/auth.h>

#include "kselftest_harness.h"
#include "run_qkdctl.h"

#define DEFAULT_SIZE	65536	/* qkdctl.8: the default PSK size */
#define NOBODY		65534

static int rm_one(const char *p, const struct stat *st, int type,
		  struct FTW *f)
{
	(void)st; (void)type; (void)f;
	return remove(p);
}

/* The whole file, or NULL; *len its size. */
static uint8_t *read_all(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	int fd = open(path, O_RDONLY | O_NOFOLLOW);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) || !(buf = malloc((size_t)st.st_size + 1))) {
		close(fd);
		return NULL;
	}
	*len = (size_t)read(fd, buf, (size_t)st.st_size + 1);
	close(fd);
	return buf;
}

static void write_file(const char *path, const char *s, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);

	if (fd >= 0) {
		if (write(fd, s, strlen(s)) < 0)
			perror("write");
		fchmod(fd, mode);
		close(fd);
	}
}

static bool exists(const char *path)
{
	struct stat st;

	return !lstat(path, &st);
}

FIXTURE(genpsk) {
	char dir[64];
	char a[128], b[128];
};

FIXTURE_SETUP(genpsk)
{
	strcpy(self->dir, "/tmp/qkd-genpsk.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	/* others may traverse (the unwritable-directory case runs as nobody) */
	ASSERT_EQ(0, chmod(self->dir, 0711));
	snprintf(self->a, sizeof(self->a), "%s/a.psk", self->dir);
	snprintf(self->b, sizeof(self->b), "%s/b.psk", self->dir);
	if (access(QKDCTL, X_OK))
		SKIP(return, QKDCTL " not built (run from the top of the tree)");
}

FIXTURE_TEARDOWN(genpsk)
{
	nftw(self->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Both files: mode 0600, the default size, equal, loaded by qkdd's loader. */
TEST_F(genpsk, pair_is_what_qkdd_loads)
{
	const char *args[] = { "genpsk", self->a, self->b, NULL };
	uint8_t *ka, *kb, *key;
	size_t la = 0, lb = 0, len;
	struct auth_ctx *ia, *rb;
	struct stat st;
	char why[256] = "";
	struct run r;
	int err;

	/* umask 0 must not widen the mode; umask 0277 must not narrow it */
	run_qkdctl(&r, -1, 0, args);
	ASSERT_EQ(0, r.rc) TH_LOG("stderr: %s", r.err);
	EXPECT_STREQ("", r.out);	/* never the key on stdout */
	ASSERT_EQ(0, lstat(self->a, &st));
	EXPECT_TRUE(S_ISREG(st.st_mode));
	EXPECT_EQ(0600, st.st_mode & 07777);
	EXPECT_EQ(DEFAULT_SIZE, st.st_size);
	ASSERT_EQ(0, lstat(self->b, &st));
	EXPECT_TRUE(S_ISREG(st.st_mode));
	EXPECT_EQ(0600, st.st_mode & 07777);
	EXPECT_EQ(DEFAULT_SIZE, st.st_size);
	ka = read_all(self->a, &la);
	kb = read_all(self->b, &lb);
	ASSERT_NE(NULL, ka);
	ASSERT_NE(NULL, kb);
	ASSERT_EQ(la, lb);
	EXPECT_EQ(0, memcmp(ka, kb, la));
	free(ka);
	free(kb);

	/* the daemon's parse: size, permissions, owner, non-zero hash keys */
	ASSERT_EQ(QKD_AUTH_OK, auth_psk_read(self->a, 0, &key, &len, why,
					     sizeof(why))) TH_LOG("%s", why);
	EXPECT_EQ(DEFAULT_SIZE, len);
	auth_key_free(key, len);
	/* and what qkdd calls: both ends, consumed (wiped, unlinked) */
	ia = auth_new_from_psk(QKD_AUTH_INITIATOR, self->a,
			       QKD_AUTH_PSK_CONSUME, NULL, &err, why,
			       sizeof(why));
	ASSERT_NE(NULL, ia) TH_LOG("%s", why);
	rb = auth_new_from_psk(QKD_AUTH_RESPONDER, self->b,
			       QKD_AUTH_PSK_CONSUME, NULL, &err, why,
			       sizeof(why));
	ASSERT_NE(NULL, rb) TH_LOG("%s", why);
	EXPECT_FALSE(exists(self->a));
	EXPECT_FALSE(exists(self->b));
	auth_free(ia);
	auth_free(rb);

	/* umask 0277 (no owner write): still exactly 0600 */
	run_qkdctl(&r, -1, 0277, args);
	ASSERT_EQ(0, r.rc) TH_LOG("stderr: %s", r.err);
	ASSERT_EQ(0, lstat(self->a, &st));
	EXPECT_EQ(0600, st.st_mode & 07777);
	ASSERT_EQ(0, lstat(self->b, &st));
	EXPECT_EQ(0600, st.st_mode & 07777);
}

TEST_F(genpsk, size_is_checked)
{
	const char *small[] = { "genpsk", self->a, self->b, "size", "1024",
				NULL };
	const char *big[] = { "genpsk", self->a, self->b, "size", "1048576",
			      NULL };
	static const char *const bad[] = {
		"0", "1023", "1000", "1057", "1048608", "2097152", "-1",
		"64k", "",
	};
	struct stat st;
	struct run r;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *args[] = { "genpsk", self->a, self->b, "size",
				       bad[i], NULL };

		run_qkdctl(&r, -1, 077, args);
		EXPECT_EQ(2, r.rc) TH_LOG("size \"%s\": %s", bad[i], r.err);
		EXPECT_FALSE(exists(self->a));
		EXPECT_FALSE(exists(self->b));
	}
	run_qkdctl(&r, -1, 077, small);
	ASSERT_EQ(0, r.rc) TH_LOG("stderr: %s", r.err);
	ASSERT_EQ(0, stat(self->b, &st));
	EXPECT_EQ(1024, st.st_size);
	ASSERT_EQ(0, unlink(self->a));
	ASSERT_EQ(0, unlink(self->b));
	run_qkdctl(&r, -1, 077, big);
	ASSERT_EQ(0, r.rc) TH_LOG("stderr: %s", r.err);
	ASSERT_EQ(0, stat(self->a, &st));
	EXPECT_EQ(1048576, st.st_size);
}

TEST_F(genpsk, usage_errors)
{
	static const char *const cases[][6] = {
		{ "genpsk" },
		{ "genpsk", "x.psk" },
		{ "genpsk", "x.psk", "y.psk", "extra" },
		{ "genpsk", "x.psk", "y.psk", "size" },
		{ "genpsk", "x.psk", "x.psk" },
		{ "genpsk", "", "y.psk" },
	};
	struct run r;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		run_qkdctl(&r, -1, 077, cases[i]);
		EXPECT_EQ(2, r.rc) TH_LOG("case %zu", i);
		EXPECT_STREQ("", r.out);
	}
	EXPECT_FALSE(exists("x.psk"));
	EXPECT_FALSE(exists("y.psk"));
}

/* An existing file at either name: refused, untouched, nothing left. */
TEST_F(genpsk, existing_file_is_untouched)
{
	const char *args[] = { "genpsk", self->a, self->b, NULL };
	struct stat st;
	struct run r;
	uint8_t *buf;
	size_t len = 0;

	write_file(self->a, "precious", 0644);
	run_qkdctl(&r, -1, 077, args);
	EXPECT_EQ(1, r.rc);
	EXPECT_STREQ("", r.out);
	EXPECT_NE(NULL, strstr(r.err, self->a)) TH_LOG("stderr: %s", r.err);
	EXPECT_NE(NULL, strstr(r.err, "exists")) TH_LOG("stderr: %s", r.err);
	buf = read_all(self->a, &len);
	ASSERT_NE(NULL, buf);
	EXPECT_EQ(8, len);
	EXPECT_EQ(0, memcmp(buf, "precious", 8));
	free(buf);
	ASSERT_EQ(0, stat(self->a, &st));
	EXPECT_EQ(0644, st.st_mode & 07777);
	EXPECT_FALSE(exists(self->b));

	/* the second name exists: the first is not left behind */
	ASSERT_EQ(0, rename(self->a, self->b));
	run_qkdctl(&r, -1, 077, args);
	EXPECT_EQ(1, r.rc);
	EXPECT_NE(NULL, strstr(r.err, self->b)) TH_LOG("stderr: %s", r.err);
	EXPECT_FALSE(exists(self->a));
	buf = read_all(self->b, &len);
	ASSERT_NE(NULL, buf);
	EXPECT_EQ(8, len);
	EXPECT_EQ(0, memcmp(buf, "precious", 8));
	free(buf);
}

/* A symbolic link at the name, dangling or not, is never followed. */
TEST_F(genpsk, symlink_is_refused)
{
	const char *args[] = { "genpsk", self->a, self->b, NULL };
	char victim[160], gone[160];
	struct run r;
	uint8_t *buf;
	size_t len = 0;

	snprintf(victim, sizeof(victim), "%s/victim", self->dir);
	snprintf(gone, sizeof(gone), "%s/created-through-link", self->dir);
	write_file(victim, "precious", 0600);
	ASSERT_EQ(0, symlink(victim, self->a));
	run_qkdctl(&r, -1, 077, args);
	EXPECT_EQ(1, r.rc);
	EXPECT_NE(NULL, strstr(r.err, self->a)) TH_LOG("stderr: %s", r.err);
	buf = read_all(victim, &len);
	ASSERT_NE(NULL, buf);
	EXPECT_EQ(8, len);
	EXPECT_EQ(0, memcmp(buf, "precious", 8));
	free(buf);
	EXPECT_FALSE(exists(self->b));

	ASSERT_EQ(0, unlink(self->a));
	ASSERT_EQ(0, symlink(gone, self->b));
	run_qkdctl(&r, -1, 077, args);
	EXPECT_EQ(1, r.rc);
	EXPECT_NE(NULL, strstr(r.err, self->b)) TH_LOG("stderr: %s", r.err);
	EXPECT_FALSE(exists(gone));
	EXPECT_FALSE(exists(self->a));
}

/* A directory we may not write: a clear error, nothing left elsewhere. */
TEST_F(genpsk, unwritable_directory)
{
	char ro[128], in_ro[160], ok[128], in_ok[160];
	const char *both[] = { "genpsk", in_ro, in_ok, NULL };
	const char *second[] = { "genpsk", in_ok, in_ro, NULL };
	/* root writes anywhere: run qkdctl as nobody then */
	int uid = geteuid() == 0 ? NOBODY : -1;
	struct run r;

	snprintf(ro, sizeof(ro), "%s/ro", self->dir);
	snprintf(ok, sizeof(ok), "%s/ok", self->dir);
	snprintf(in_ro, sizeof(in_ro), "%s/a.psk", ro);
	snprintf(in_ok, sizeof(in_ok), "%s/b.psk", ok);
	ASSERT_EQ(0, mkdir(ro, 0555));
	ASSERT_EQ(0, mkdir(ok, 0700));
	if (uid >= 0)
		ASSERT_EQ(0, chown(ok, NOBODY, NOBODY));

	run_qkdctl(&r, uid, 077, both);
	EXPECT_EQ(1, r.rc);
	EXPECT_STREQ("", r.out);
	EXPECT_NE(NULL, strstr(r.err, in_ro)) TH_LOG("stderr: %s", r.err);
	EXPECT_NE(NULL, strstr(r.err, strerror(EACCES)))
		TH_LOG("stderr: %s", r.err);
	EXPECT_FALSE(exists(in_ro));
	EXPECT_FALSE(exists(in_ok));

	run_qkdctl(&r, uid, 077, second);
	EXPECT_EQ(1, r.rc);
	EXPECT_NE(NULL, strstr(r.err, in_ro)) TH_LOG("stderr: %s", r.err);
	EXPECT_FALSE(exists(in_ro));
	EXPECT_FALSE(exists(in_ok));	/* the first file is removed again */
}

/* Two runs: two different keys. */
TEST_F(genpsk, fresh_each_run)
{
	char c[160], d[160];
	const char *one[] = { "genpsk", self->a, self->b, NULL };
	const char *two[] = { "genpsk", c, d, NULL };
	uint8_t *k1, *k2;
	size_t l1 = 0, l2 = 0;
	struct run r;

	snprintf(c, sizeof(c), "%s/c.psk", self->dir);
	snprintf(d, sizeof(d), "%s/d.psk", self->dir);
	run_qkdctl(&r, -1, 077, one);
	ASSERT_EQ(0, r.rc) TH_LOG("stderr: %s", r.err);
	run_qkdctl(&r, -1, 077, two);
	ASSERT_EQ(0, r.rc) TH_LOG("stderr: %s", r.err);
	k1 = read_all(self->a, &l1);
	k2 = read_all(c, &l2);
	ASSERT_NE(NULL, k1);
	ASSERT_NE(NULL, k2);
	ASSERT_EQ(l1, l2);
	EXPECT_NE(0, memcmp(k1, k2, l1));
	/* and not a repeated block inside one key */
	EXPECT_NE(0, memcmp(k1, k1 + l1 / 2, l1 / 2));
	free(k1);
	free(k2);
}

TEST_HARNESS_MAIN
