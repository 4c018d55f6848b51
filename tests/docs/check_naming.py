#!/usr/bin/env python3
"""The naming rules of docs/naming.md, checked on the public headers.

1. Every function-pointer type ends in `_cb`.
2. A function named uvw_<object>_<verb> belongs to <object>: when <object> is
   one of uvwool's opaque types (uvw_<object>_t) or a libuv handle type
   (uv_<object>_t), the function takes that type, or makes one (returns it or
   fills a `uvw_<object>_t **out`). Wrappers of libuv functions (the loop
   layer's table) follow libuv's own names, and encoders make the object's
   bytes rather than the object: both are exempt. The calling thread's own
   functions (uvw_thread_*) are about no uv_thread_t.
3. Function-pointer parameters and struct members use a named `_cb` type,
   so bindings can name them (the wrapper table's generic `void (*)(void)`
   pointers, cast per row, are the exception).
4. The object comes first: no uvw_<verb>_<object> (uvw_copy_context) next to
   the object's own uvw_<object>_<verb> family.
Prints every offender and exits 1 when there is one."""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
inc = root / "uvwool" / "include"
headers = [inc / "uvwool.h"] + sorted((inc / "uvwool").glob("*.h"))
table = (root / "uvwool/src/loop/wrappers.def").read_text()
wrapped = {"uvw_" + n for n in re.findall(r"UVW_WRAPPER\(\s*\w+\s*,\s*(\w+)", table)}


def strip(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    return re.sub(r"^\s*#[^\n]*", " ", text, flags=re.M)


bad = []
decls = []
types = set()
for h in headers:
    src = strip(h.read_text())
    for m in re.finditer(r"typedef[^;]*?\(\s*\*\s*(\w+)\s*\)\s*\(", src):
        if not m.group(1).endswith("_cb"):
            bad.append(f"{h.relative_to(root)}: function-pointer type {m.group(1)} does not end in _cb")
    for m in re.finditer(r"\(\s*\*\s*(\w+)\s*\)\s*\(", src):
        before = src[src.rfind(";", 0, m.start()) + 1:m.start()]
        generic = src[m.end():m.end() + 6].startswith("void)")
        if "typedef" not in before and not generic:
            bad.append(f"{h.relative_to(root)}: {m.group(1)} is a function pointer without a named _cb type")
    types |= set(re.findall(r"\b(uvw_\w+)_t\b", src))
    for m in re.finditer(r"([\w\s\*]+?)\b(uvw_\w+)\s*\(([^;{}]*?)\)\s*;", src):
        decls.append((h, m.group(1), m.group(2), m.group(3)))

libuv_objects = {"loop", "timer", "idle", "check", "prepare", "stream", "tcp", "pipe", "tty", "udp", "poll",
                 "signal", "fs", "fs_poll", "fs_event", "process", "work", "async", "handle", "req"}
for h, ret, name, params in decls:
    # Wrappers keep libuv's names; an encoder makes the object's bytes.
    if name in wrapped or "typedef" in ret or name.endswith("_encode"):
        continue
    rest = name[len("uvw_"):]
    for obj in sorted({t[len("uvw_"):] for t in types} | libuv_objects, key=len, reverse=True):
        if not rest.startswith(obj + "_"):
            continue
        ctype = f"uvw_{obj}_t" if f"uvw_{obj}" in types else f"uv_{obj}_t"
        if ctype not in params and ctype not in ret:
            bad.append(f"{h.relative_to(root)}: {name} is named after {ctype} but neither takes nor makes one")
        break

verbs = {"copy", "install", "create", "new"}
objects = {t[len("uvw_"):] for t in types}
for h, ret, name, params in decls:
    verb, _, obj = name[len("uvw_"):].partition("_")
    if verb in verbs and obj in objects:
        bad.append(f"{h.relative_to(root)}: {name} puts the verb first: uvw_{obj}_{verb}... is the {obj}'s family")

for b in bad:
    print(b)
print(f"naming: {len(decls)} public functions checked, {len(bad)} offenders")
sys.exit(1 if bad else 0)
