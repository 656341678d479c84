// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkd: a per-network-namespace store of quantum key distribution keys.
 *
 * This file only registers the parts, in dependency order: the per-netns
 * store first (the others look it up), then the genl family, the xfrm key
 * manager (its SA bindings send events, so they go before the family), the
 * "qkd" key type, then the character device; exit unwinds in reverse.
 */

#include <linux/module.h>
#include <net/genetlink.h>

#include "qkd.h"

/*
 * The parameter is writable at run time, so its range is checked on every
 * write, not only at load: a value STREAM_NEW's policy would refuse would
 * otherwise make every stream created without max-keys fail, for a reason
 * its caller never gave.
 */
static int qkd_param_set_stream_max_keys(const char *val,
					 const struct kernel_param *kp)
{
	return param_set_uint_minmax(val, kp, 1, QKD_STREAM_MAX_KEYS_LIMIT);
}

static const struct kernel_param_ops qkd_param_stream_max_keys_ops = {
	.set = qkd_param_set_stream_max_keys,
	.get = param_get_uint,
};

unsigned int qkd_stream_default_max_keys = 4096;
module_param_cb(stream_max_keys, &qkd_param_stream_max_keys_ops,
		&qkd_stream_default_max_keys, 0644);
MODULE_PARM_DESC(stream_max_keys, "max-keys of a stream created without one (default 4096)");

unsigned long qkd_netns_max_keys = 65536;
module_param_named(netns_max_keys, qkd_netns_max_keys, ulong, 0644);
MODULE_PARM_DESC(netns_max_keys, "keys one network namespace may store (default 65536)");

unsigned long qkd_netns_max_bytes = 16UL << 20;
module_param_named(netns_max_bytes, qkd_netns_max_bytes, ulong, 0644);
MODULE_PARM_DESC(netns_max_bytes, "key bytes one network namespace may store (default 16 MiB)");

static int __init qkd_init(void)
{
	int err;

	err = qkd_store_init();
	if (err)
		return err;
	err = qkd_genl_init();
	if (err)
		goto err_store;
	err = qkd_xfrm_init();
	if (err)
		goto err_genl;
	err = qkd_keyring_init();
	if (err)
		goto err_xfrm;
	err = qkd_chardev_init();
	if (err)
		goto err_keyring;
	return 0;

err_keyring:
	qkd_keyring_exit();
err_xfrm:
	qkd_xfrm_exit();
err_genl:
	qkd_genl_exit();
err_store:
	qkd_store_exit();
	return err;
}

static void __exit qkd_exit(void)
{
	qkd_chardev_exit();
	qkd_keyring_exit();
	qkd_xfrm_exit();
	qkd_genl_exit();
	qkd_store_exit();
}

module_init(qkd_init);
module_exit(qkd_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Store of quantum key distribution keys");
MODULE_AUTHOR("qkd developers");
MODULE_VERSION(QKD_VERSION);	/* from VERSION, by Kbuild */
MODULE_ALIAS_GENL_FAMILY("qkd");
