#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""memscan.py PID PATTERNS: count each pattern in a live process's memory.

PATTERNS holds one "LABEL HEX" line per pattern. Every readable mapping of
PID (/proc/PID/maps, read through /proc/PID/mem: root, or ptrace rights
over PID) is searched, patterns that span two reads included. Prints
"LABEL COUNT" per pattern, then "# scanned N bytes in M mappings" (a
scan that read nothing is an error: exit 2). The key-wipe checks of the
userspace daemons use it the way tests/robust/canary.sh counts patterns
in the VM's memory for the kernel.
"""
import re
import sys

CHUNK = 1 << 20


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: memscan.py PID PATTERNS")
    pid, path = sys.argv[1], sys.argv[2]
    pats = []
    with open(path) as f:
        for line in f:
            if line.strip():
                label, hexs = line.split()
                pats.append((label, bytes.fromhex(hexs)))
    if not pats:
        sys.exit("memscan: no patterns")
    longest = max(len(p) for _, p in pats)
    counts = {label: 0 for label, _ in pats}
    scanned = maps = 0
    with open(f"/proc/{pid}/maps") as m, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in m:
            fields = line.split()
            if fields[1][0] != "r":
                continue
            # [vvar] faults on read; [vsyscall] is not in the address space
            if len(fields) > 5 and fields[5] in ("[vvar]", "[vsyscall]", "[vvar_vclock]"):
                continue
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            tail = b""
            addr = lo
            read_any = False
            while addr < hi:
                n = min(CHUNK, hi - addr)
                try:
                    mem.seek(addr)
                    buf = mem.read(n)
                except OSError:
                    break
                if not buf:
                    break
                read_any = True
                data = tail + buf
                for label, p in pats:
                    # matches that end in the new bytes only: the tail's
                    # own were counted with the chunk before
                    start = max(0, len(tail) - len(p) + 1)
                    counts[label] += sum(1 for _ in re.finditer(re.escape(p), data[start:]))
                tail = data[-(longest - 1):] if longest > 1 else b""
                scanned += len(buf)
                addr += len(buf)
            maps += read_any
    for label, _ in pats:
        print(label, counts[label])
    print(f"# scanned {scanned} bytes in {maps} mappings")
    if scanned == 0:
        sys.exit(2)


if __name__ == "__main__":
    main()
