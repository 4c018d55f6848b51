#!/usr/bin/env python3
"""The wrapper table against uv.h itself.

Every function uv.h declares that takes a uv_*_cb (or uv_spawn, whose
callback rides in its options) must be in uvwool's wrapper table with its
uvw_ name, and the table must list nothing uv.h lacks.
Every wrapper must also be called by a test under tests/loop, where each
family's tests prove propagation through it.
The table in docs/loop.md must list every row too.
usage: check_wrapper_table.py UV_H DUMP_PROGRAM TESTS_DIR DOCS_MD"""
import glob
import os
import re
import subprocess
import sys

uv_h, dump, tests_dir, docs_md = sys.argv[1:5]
src = open(uv_h).read()
src = re.sub(r"/\*.*?\*/", " ", src, flags=re.S)  # comments may hold ';'
declared = {}
for m in re.finditer(r"UV_EXTERN\b(.*?);", src, re.S):
    decl = " ".join(m.group(1).split())
    mm = re.match(r"(.*?)\b(uv_\w+)\s*\((.*)\)$", decl)
    if mm:
        declared[mm.group(2)] = mm.group(3)
registering = {n for n, params in declared.items()
               if re.search(r"\buv_\w+_cb\b", params) or n == "uv_spawn"}

rows = [line.split() for line in subprocess.run([dump], check=True, capture_output=True,
                                                 text=True).stdout.splitlines()]
table = {r[0]: r for r in rows}
failures = []
for name in sorted(registering - table.keys()):
    failures.append(f"{name} registers a callback but has no wrapper in the table")
for name, row in sorted(table.items()):
    if name not in declared:
        failures.append(f"{name} is in the table but not declared in {uv_h}")
    if row[1] != "uvw_" + name[3:]:
        failures.append(f"{name}: wrapper named {row[1]}, expected uvw_{name[3:]}")
stops = {n for n in table if table[n][2] == "STOP"}
for name in sorted(stops):
    if not name.endswith("_stop"):
        failures.append(f"{name} is marked STOP")
test_text = "".join(open(p).read() for p in glob.glob(os.path.join(tests_dir, "test_*.c")))
for name, row in sorted(table.items()):
    if not re.search(r"\b" + row[1] + r"\s*\(", test_text):
        failures.append(f"{row[1]} is not exercised by any test in {tests_dir}")
docs = open(docs_md).read()
for name, row in sorted(table.items()):
    if f"| `{name}` | `{row[1]}` | {row[2]} |" not in docs:
        failures.append(f"{name} is missing from the table in {docs_md}")
for f in failures:
    print("FAIL", f)
print(f"wrapper table: {len(registering)} callback-registering functions in uv.h, "
      f"{len(table)} rows ({len(stops)} stops)")
checks = len(registering) + 3 * len(table)
print(f"{checks - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
