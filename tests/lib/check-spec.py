#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Check the YNL spec of the qkd family against its schema and the uapi header.

The spec (Documentation/netlink/specs/qkd.yaml) is the source of truth; the
header include/uapi/linux/qkd.h is written by hand, so this checks that every
command, attribute, enum and constant of the spec has the same value there.
"""
import re
import sys

import yaml

try:
    import jsonschema
except ImportError:  # validated in CI, where python3-jsonschema is installed
    jsonschema = None


def c_enum(header, name):
    body = re.search(r"enum %s \{(.*?)\};" % name, header, re.S)
    if not body:
        sys.exit("check-spec: enum %s not in the header" % name)
    values, nxt = {}, 0
    for line in body.group(1).splitlines():
        line = re.sub(r"/\*.*?\*/", "", line).strip().rstrip(",")
        if not line:
            continue
        m = re.match(r"(\w+)\s*(?:=\s*(\w+))?$", line)
        if not m:
            continue
        if m.group(2):
            nxt = int(m.group(2), 0)
        values[m.group(1)] = nxt
        nxt += 1
    return values


def c_name(prefix, name):
    return (prefix + name).upper().replace("-", "_")


def spec_enum(entries, prefix, start=0):
    values, nxt = {}, start
    for e in entries:
        if isinstance(e, str):
            e = {"name": e}
        if "value" in e:
            nxt = e["value"]
        values[c_name(prefix, e["name"])] = nxt
        nxt += 1
    return values


def main():
    spec_path, header_path = sys.argv[1], sys.argv[2]
    schema_path = sys.argv[3] if len(sys.argv) > 3 else None
    spec = yaml.safe_load(open(spec_path))
    header = open(header_path).read()
    errors = []

    if schema_path and jsonschema:
        jsonschema.validate(spec, yaml.safe_load(open(schema_path)))

    for d in spec.get("definitions", []):
        if d["type"] == "enum":
            want = spec_enum(d["entries"], d.get("name-prefix", ""))
            have = c_enum(header, d["enum-name"])
        else:
            cname = c_name("qkd-", d["name"])
            m = re.search(r"#define %s\s+(\w+)" % cname, header)
            want = {cname: d["value"]}
            have = {cname: int(m.group(1), 0)} if m else {}
        for k, v in want.items():
            if have.get(k) != v:
                errors.append("%s: spec %s, header %s" % (k, v, have.get(k)))

    aset = spec["attribute-sets"][0]
    want = spec_enum(aset["attributes"], aset["name-prefix"])
    have = c_enum(header, aset["enum-name"])
    ops = spec["operations"]
    want_ops = spec_enum(ops["list"], ops["name-prefix"])
    have_ops = c_enum(header, ops["enum-name"])
    for w, h in ((want, have), (want_ops, have_ops)):
        for k, v in w.items():
            if h.get(k) != v:
                errors.append("%s: spec %s, header %s" % (k, v, h.get(k)))
        for k in h:
            if k not in w and not k.startswith("__") and not k.endswith("UNSPEC"):
                errors.append("%s: in the header, not in the spec" % k)

    for e in errors:
        print("check-spec: " + e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
