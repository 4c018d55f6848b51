#!/usr/bin/env python3
"""Transparent mode covers the whole wrapper table, in all three modes.

Every function uv.h declares that registers a callback (takes a uv_*_cb, or
is uv_spawn) must be a row of the wrapper table (the explicit API), be in
link-time mode's --wrap list, have a __wrap_ definition in
libuvwool-transparent.a, and be defined and exported by the preload object.
The modes must not interpose anything beyond the table and extras.def.
usage: check_coverage.py UV_H DUMP_PROGRAM WRAP_RSP TRANSPARENT_A PRELOAD_SO EXTRAS_DEF"""
import re
import subprocess
import sys

uv_h, dump, rsp, archive, preload, extras_def = sys.argv[1:7]
src = re.sub(r"/\*.*?\*/", " ", open(uv_h).read(), flags=re.S)
registering = set()
for m in re.finditer(r"UV_EXTERN\b(.*?);", src, re.S):
    mm = re.match(r"(.*?)\b(uv_\w+)\s*\((.*)\)$", " ".join(m.group(1).split()))
    if mm and (re.search(r"\buv_\w+_cb\b", mm.group(3)) or mm.group(2) == "uv_spawn"):
        registering.add(mm.group(2))

table = {line.split()[0] for line in subprocess.run([dump], check=True, capture_output=True,
                                                    text=True).stdout.splitlines()}
extras = {"uv_" + n for n in re.findall(r"UVWI_EXTRA\((\w+)\)", open(extras_def).read())}
wrapped = set(re.findall(r"--wrap=(uv_\w+)", open(rsp).read()))


def defined(args, prefix):
    out = subprocess.run(["nm", *args], check=True, capture_output=True, text=True).stdout
    return {m.group(1)[len(prefix):] for m in re.finditer(r"^\S*\s+T\s+(\S+)$", out, re.M)
            if m.group(1).startswith(prefix)}


wrap_defs = defined([archive], "__wrap_")
exported = defined(["-D", "--defined-only", preload], "")
exported = {s for s in exported if s.startswith("uv_")}

failures = []
for name in sorted(registering):
    for what, have in (("the wrapper table", table), ("the --wrap list", wrapped),
                       ("libuvwool-transparent.a (__wrap_)", wrap_defs), ("the preload's exports", exported)):
        if name not in have:
            failures.append(f"{name} registers a callback but is missing from {what}")
for name in sorted(table):
    for what, have in (("the --wrap list", wrapped), ("libuvwool-transparent.a", wrap_defs),
                       ("the preload's exports", exported)):
        if name not in have:
            failures.append(f"table row {name} is missing from {what}")
for what, have in (("the --wrap list", wrapped), ("libuvwool-transparent.a", wrap_defs),
                   ("the preload's exports", exported)):
    for name in sorted(have - table - extras):
        failures.append(f"{what} has {name}, which is neither in the table nor in extras.def")
for f in failures:
    print("FAIL", f)
print(f"{len(registering)} callback-registering functions in uv.h, {len(table)} table rows, "
      f"{len(wrapped)} wrapped, {len(wrap_defs)} __wrap_ definitions, {len(exported)} preload exports")
sys.exit(1 if failures or not registering or not table else 0)
