#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Check the YNL spec of the qkd family against the kernel's schema.

The spec (Documentation/netlink/specs/qkd.yaml) is the source of truth; the
uapi header and the kernel's policies and op table are generated from it
(`make regen`), and tests/lib/check-gen.sh checks that the committed copies
are current, so no hand-made comparison with them is left here. What stays
is the schema check on its own, with a message that names the failing
element, and that fails (rather than skips) without python3-jsonschema.

    check-spec.py SPEC SCHEMA
"""
import sys

import yaml

try:
    import jsonschema
except ImportError:
    sys.exit("check-spec: python3-jsonschema is needed (apt install python3-jsonschema)")


def main():
    spec_path, schema_path = sys.argv[1], sys.argv[2]
    spec = yaml.safe_load(open(spec_path))
    schema = yaml.safe_load(open(schema_path))
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(spec),
                    key=lambda e: list(e.absolute_path))
    for e in errors:
        where = "/".join(str(p) for p in e.absolute_path) or "(top)"
        print("check-spec: %s: %s" % (where, e.message), file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
