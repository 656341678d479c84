#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Apply one mutant (tests/mutants/*.mut) to a copy of the tree.

    apply.py MUTANT TREE      apply it to TREE/<file:>, print the diff
    apply.py --check MUTANT   parse it and check that it applies to this
                              tree (nothing is written)

A mutant is one small edit, found by pattern so that it survives other
edits of the file (see Documentation/robustness.md, "Mutants"):

    file:    path of the file, from the top of the tree
    in:      (optional) a regex matching exactly one line of the file: the
             edit is searched from that line to the first line that is
             "}" or "};" (the end of that function or initializer)
    match:   a regex (Python re) that must match exactly ONE line of that
             region (0 or more than 1: the mutant is broken, exit 1),
             unless lines: says otherwise
    lines:   (optional) "all": every line of the region that matches is
             edited (at least one must); "N" (1, 2, ...): the Nth matching
             line of the region, which must exist. For a table whose
             entries repeat one line (the generated split-op table's
             .flags): a mutant that names the whole table, or one entry.
    replace: what the matched text becomes (re.sub syntax: \\1 ...);
             "replace:" with nothing after it deletes the matched text;
    delete:  yes  deletes the whole matched line instead
    kind, test, ...: read by run.sh, ignored here

Exit 0 when the file changed, 1 when the mutant does not apply (no or
several matches, the file is missing, or nothing changed), 2 on a usage
error.
"""
import difflib
import os
import re
import sys


def parse(path):
    spec = {"test": []}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            key, sep, val = line.partition(":")
            if not sep:
                raise ValueError("%s:%d: not KEY: VALUE" % (path, n))
            key, val = key.strip(), val.strip()
            if key == "test":
                spec["test"].append(val)
            elif key in spec:
                raise ValueError("%s:%d: %s given twice" % (path, n, key))
            else:
                spec[key] = val
    for key in ("file", "match", "kind"):
        if key not in spec:
            raise ValueError("%s: no %s:" % (path, key))
    if "replace" not in spec and spec.get("delete") != "yes":
        raise ValueError("%s: needs replace: or delete: yes" % path)
    if not spec["test"]:
        raise ValueError("%s: no test: (the tests expected to kill it)" % path)
    return spec


def one_line(lines, lo, hi, rx, what):
    hits = [i for i in range(lo, hi) if rx.search(lines[i])]
    if len(hits) != 1:
        where = ", ".join(str(i + 1) for i in hits[:5])
        raise LookupError("%s /%s/ matches %d lines%s (must be exactly 1)"
                          % (what, rx.pattern, len(hits),
                             " (" + where + ")" if hits else ""))
    return hits[0]


def chosen_lines(lines, lo, hi, rx, which):
    """The lines match: (with lines: WHICH, if given) selects."""
    if which is None:
        return [one_line(lines, lo, hi, rx, "match:")]
    hits = [i for i in range(lo, hi) if rx.search(lines[i])]
    if which == "all":
        if not hits:
            raise LookupError("match: /%s/ matches 0 lines (lines: all needs"
                              " at least 1)" % rx.pattern)
        return hits
    if not re.fullmatch(r"[1-9][0-9]*", which):
        raise ValueError("lines: %r is neither \"all\" nor a number from 1"
                         % which)
    n = int(which)
    if len(hits) < n:
        raise LookupError("match: /%s/ matches %d lines (lines: %d needs at"
                          " least %d)" % (rx.pattern, len(hits), n, n))
    return [hits[n - 1]]


def mutate(spec, text):
    lines = text.split("\n")
    lo, hi = 0, len(lines)
    if "in" in spec:
        lo = one_line(lines, 0, len(lines), re.compile(spec["in"]), "in:")
        end = re.compile(r"^\};?\s*$")
        hi = next((i for i in range(lo + 1, len(lines)) if end.match(lines[i])),
                  None)
        if hi is None:
            raise LookupError("in: no closing } after line %d" % (lo + 1))
        hi += 1
    rx = re.compile(spec["match"])
    hits = chosen_lines(lines, lo, hi, rx, spec.get("lines"))
    for i in reversed(hits):
        if spec.get("delete") == "yes":
            del lines[i]
        else:
            lines[i] = rx.sub(spec["replace"], lines[i], count=1)
    return "\n".join(lines)


def main(argv):
    check = len(argv) == 3 and argv[1] == "--check"
    if not check and len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    mut = argv[2] if check else argv[1]
    tree = os.getcwd() if check else argv[2]
    try:
        spec = parse(mut)
        path = os.path.join(tree, spec["file"])
        with open(path, encoding="utf-8") as f:
            before = f.read()
        after = mutate(spec, before)
    except (OSError, ValueError, LookupError, re.error) as e:
        print("%s: does not apply: %s" % (os.path.basename(mut), e),
              file=sys.stderr)
        return 1
    if after == before:
        print("%s: does not apply: %s unchanged" % (os.path.basename(mut),
                                                    spec["file"]),
              file=sys.stderr)
        return 1
    sys.stdout.writelines(difflib.unified_diff(
        before.splitlines(True), after.splitlines(True),
        "a/" + spec["file"], "b/" + spec["file"], n=1))
    if not check:
        with open(path, "w", encoding="utf-8") as f:
            f.write(after)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
