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

unsigned int qkd_stream_default_max_keys = 4096;
module_param_named(stream_max_keys, qkd_stream_default_max_keys, uint, 0644);
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

	if (!qkd_stream_default_max_keys ||
	    qkd_stream_default_max_keys > QKD_STREAM_MAX_KEYS_LIMIT)
		return -EINVAL;

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
MODULE_VERSION("0.1.0");
MODULE_ALIAS_GENL_FAMILY("qkd");
