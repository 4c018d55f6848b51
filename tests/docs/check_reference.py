#!/usr/bin/env python3
"""Checks that keep the repository's documentation honest.

  check_reference.py reference SRC [LIB]
      Every public function (declared in uvwool/include/uvwool.h and
      uvwool/include/uvwool/*.h, listed by name in uvwool/uvwool.map, or
      exported by the shared library LIB when given) has an entry in
      docs/reference/*.md: a "### name" heading, or a table row whose first
      cell names it. Prints each missing name; exits 1 if any.

  check_reference.py no-external-refs SRC
      No file of the repository (outside .git and build trees) cites the
      design folder the users never see. Prints each offending file:line;
      exits 1 if any.
"""
import os
import re
import subprocess
import sys

# Spelled in pieces so that this file does not report itself.
EXTERNAL = [
    "SEMAN" + "TICS",
    "TEST-" + "MATRIX",
    "shared" + "/design",
]
PUBLIC = re.compile(r"\buvw_[a-z][a-z0-9_]*\b")


def strip_c(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    # preprocessor lines, continuation lines included
    return re.sub(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", " ", text, flags=re.M)


def header_functions(src):
    inc = os.path.join(src, "uvwool", "include")
    paths = [os.path.join(inc, "uvwool.h")]
    sub = os.path.join(inc, "uvwool")
    paths += sorted(os.path.join(sub, f) for f in os.listdir(sub) if f.endswith(".h"))
    names = {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            code = strip_c(f.read())
        for stmt in re.split(r"[;{}]", code):
            stmt = " ".join(stmt.split())
            if not stmt or stmt.startswith("typedef") or stmt.startswith("extern \"C\""):
                continue
            # The identifier right before the first '(' is a function's name;
            # a function pointer (member or typedef) has '(*' there instead.
            m = re.match(r"[^(]*?\b(uvw_[a-z][a-z0-9_]*)\s*\(", stmt)
            if m:
                names.setdefault(m.group(1), os.path.relpath(path, src))
    return names


def map_functions(src):
    path = os.path.join(src, "uvwool", "uvwool.map")
    with open(path, encoding="utf-8") as f:
        text = re.sub(r"/\*.*?\*/", " ", f.read(), flags=re.S)
    names, section = {}, None
    for tok in re.findall(r"[A-Za-z_][A-Za-z0-9_*\[\]-]*:|[^\s;{}]+", text):
        if tok.endswith(":"):
            section = tok[:-1]
        elif section == "global" and re.fullmatch(r"uvw_[a-z][a-z0-9_]*", tok):
            names[tok] = "uvwool/uvwool.map"
    return names


def library_functions(lib):
    out = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True, check=True)
    names = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] in "TtWi":
            name = parts[2].split("@")[0]
            if re.fullmatch(r"uvw_[a-z][a-z0-9_]*", name):
                names[name] = os.path.basename(lib)
    return names


def documented(src):
    ref = os.path.join(src, "docs", "reference")
    found = set()
    if not os.path.isdir(ref):
        return found
    for fname in sorted(os.listdir(ref)):
        if not fname.endswith(".md"):
            continue
        with open(os.path.join(ref, fname), encoding="utf-8") as f:
            for line in f:
                if line.startswith("#"):
                    found.update(PUBLIC.findall(line))
                elif line.startswith("|"):
                    cells = line.strip().strip("|").split("|")
                    found.update(PUBLIC.findall(cells[0]))
    return found


def check_reference(src, lib):
    public = {}
    public.update(map_functions(src))
    if lib:
        public.update(library_functions(lib))
    public.update(header_functions(src))
    missing = sorted(n for n in public if n not in documented(src))
    for name in missing:
        print(f"missing from docs/reference/: {name} (declared in {public[name]})")
    print(f"{len(public) - len(missing)} of {len(public)} public functions documented")
    return 1 if missing else 0


def repository_files(src):
    try:
        out = subprocess.run(["git", "-C", src, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             capture_output=True, check=True)
        return sorted(set(p for p in out.stdout.decode().split("\0") if p))
    except (OSError, subprocess.CalledProcessError):
        files = []
        for root, dirs, fnames in os.walk(src):
            dirs[:] = [d for d in dirs if d != ".git" and not d.startswith("build")]
            files += [os.path.relpath(os.path.join(root, f), src) for f in fnames]
        return sorted(files)


def check_no_external_refs(src):
    bad = 0
    pattern = re.compile("|".join(re.escape(p) for p in EXTERNAL))
    for rel in repository_files(src):
        path = os.path.join(src, rel)
        if not os.path.isfile(path):
            continue
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.readlines()
        except (UnicodeDecodeError, OSError):
            continue  # binary files (fuzz corpus) cite nothing
        for no, line in enumerate(lines, 1):
            if pattern.search(line):
                print(f"{rel}:{no}: {line.strip()}")
                bad += 1
    if bad:
        print(f"{bad} lines cite documents outside the repository: point them at docs/")
    return 1 if bad else 0


def main(argv):
    if len(argv) < 3 or argv[1] not in ("reference", "no-external-refs"):
        print(__doc__)
        return 2
    if argv[1] == "reference":
        return check_reference(argv[2], argv[3] if len(argv) > 3 else None)
    return check_no_external_refs(argv[2])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
