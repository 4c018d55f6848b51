#!/usr/bin/env bash
# usage: run.sh BUILD_DIR CONSUMER_SRC SCRATCH README VERSION
# Checks the installed package from a scratch (non-system) prefix:
#  1. README.md's "Using an installed uvwool" blocks, run exactly as written
#     (the blocks tagged <!-- install-test:... -->), with protobuf-c's
#     pkg-config file hidden: install, pkg-config build + run, CMake
#     find_package (shared) build + run, the worker, the proto;
#  2. the ELF facts: SONAME, the worker's RUNPATH, versioned symbols, every
#     public function of the library exported;
#  3. the prefix moved elsewhere still works (pkg-config, the worker);
#  4. the consumer project: find_package shared, static and link-time
#     transparent mode.
set -euo pipefail
build=$1 src=$2 scratch=$3 readme=$4 version=$5
cmake=${CMAKE_COMMAND:-cmake}
cc=$(command -v "${C_COMPILER:-cc}")
flags=""
[ -n "${SANITIZE:-}" ] && flags="-fsanitize=$SANITIZE"
fail() { echo "install test FAILED: $*" >&2; exit 1; }
# grep -q on a pipe would close it early: the writer's SIGPIPE fails the
# pipeline under pipefail. Read everything, then match.
contains() { local all; all=$(cat); grep -q "$@" <<<"$all"; }
unset LD_LIBRARY_PATH PKG_CONFIG_PATH

rm -rf "$scratch"
mkdir -p "$scratch/tree/build" "$scratch/app" "$scratch/blocks" "$scratch/bin" "$scratch/pc"
# The README's `build/demo` is the build under test.
ln -s "$build" "$scratch/tree/build/demo"
cp "$src/main.c" "$scratch/app/app.c"
# `cc` is the project's compiler with its sanitizer flags.
printf '#!/bin/sh\nexec %q %s "$@"\n' "$cc" "$flags" >"$scratch/bin/cc"
chmod +x "$scratch/bin/cc"

# ---- 1. the README's blocks ---------------------------------------------------
# blocks/NN.tree, NN.app: shell run in the tree or the app folder;
# NN.file.NAME: a file written into the app folder.
awk -v out="$scratch/blocks" '
  match($0, /^<!-- install-test:[a-z]+( [^ ]+)?/) {
    tag = substr($0, 19, RLENGTH - 18); split(tag, t, " ")
    kind = t[1] == "file" ? "file." t[2] : t[1]; pending = 1; next }
  pending && /^```/ { n++; name = sprintf("%s/%02d.%s", out, n, kind); printf "" > name
                      pending = 0; inblock = 1; next }
  inblock && /^```/ { inblock = 0; close(name); next }
  inblock { print >> name }
' "$readme"
blocks=$(ls "$scratch/blocks")
[ -n "$blocks" ] || fail "no install-test blocks in $readme"
all_sh=$(cat "$scratch"/blocks/*.tree "$scratch"/blocks/*.app 2>/dev/null || true)
for want in 'cmake --install build/demo --prefix "$PREFIX"' 'pkg-config --cflags --libs uvwool' \
  'cmake -S . -B build -DCMAKE_PREFIX_PATH="$PREFIX"' 'uvwool-worker" --help' 'protodir'; do
  grep -qF -- "$want" <<<"$all_sh" || fail "the README's blocks do not show: $want"
done
grep -q 'find_package(uvwool' "$scratch"/blocks/*.file.CMakeLists.txt || fail "no find_package block"

# Every .pc file the system has, but protobuf-c's.
for d in $(pkg-config --variable pc_path pkg-config | tr : ' '); do
  for f in "$d"/*.pc; do
    [ -e "$f" ] && [ "$(basename "$f")" != libprotobuf-c.pc ] && ln -sf "$f" "$scratch/pc/"
  done
done
export PKG_CONFIG_LIBDIR="$scratch/pc"
pkg-config --exists libuv || fail "libuv.pc not visible"
! pkg-config --exists libprotobuf-c || fail "libprotobuf-c.pc still visible"

export PREFIX="$scratch/prefix" PATH="$scratch/bin:$PATH" CC=cc CFLAGS="$flags" LDFLAGS="$flags"
# One shell session, as a reader's: the blocks in order, each in its folder.
log="$scratch/blocks.log" session="$scratch/session.sh"
for b in $blocks; do
  case $b in
  *.tree) printf 'cd %q\n' "$scratch/tree" ;;
  *.app) printf 'cd %q\n' "$scratch/app" ;;
  *.file.*) cp "$scratch/blocks/$b" "$scratch/app/${b#*.file.}"; continue ;;
  *) fail "unknown block $b" ;;
  esac >>"$session"
  cat "$scratch/blocks/$b" >>"$session"
done
timeout 600 bash -euo pipefail -x "$session" >"$log" 2>&1 || { cat "$log" >&2; fail "a README block (above)"; }
unset PKG_CONFIG_LIBDIR
# What the blocks built runs, with no LD_LIBRARY_PATH.
"$scratch/app/app" | contains '^consumer ok' || fail "the pkg-config build"
"$scratch/app/build/app" | contains '^consumer ok' || fail "the CMake build"
grep -q "^uvwool-worker (uvwool $version)" "$log" || fail "the worker did not start from the prefix"
grep -qx "$PREFIX/lib/pkgconfig/../../share/uvwool/proto/uvwool.proto" "$log" || fail "protodir"
cmp "$PREFIX/share/uvwool/proto/uvwool.proto" "$(dirname "$readme")/proto/uvwool.proto" || fail "proto"
cmp "$PREFIX/share/doc/uvwool/LICENSE" "$(dirname "$readme")/LICENSE" || fail "LICENSE"

# ---- 2. ELF: SONAME, RUNPATH, versioned symbols --------------------------------
IFS=. read -r major minor _ <<<"$version"
if [ "$major" = 0 ]; then abi=$major.$minor; else abi=$major; fi
lib=$PREFIX/lib/libuvwool.so
readelf -d "$lib" | contains "(SONAME) .*\[libuvwool.so.$abi\]" || fail "SONAME is not libuvwool.so.$abi"
[ -e "$PREFIX/lib/libuvwool.so.$abi" ] || fail "no libuvwool.so.$abi in the prefix"
readelf -d "$PREFIX/bin/uvwool-worker" | contains -F '(RUNPATH)            Library runpath: [$ORIGIN/../lib]' ||
  fail "the worker's RUNPATH is not \$ORIGIN/../lib"
readelf --dyn-syms -W "$lib" | awk '$5 == "GLOBAL" && $7 != "UND" {print $8}' >"$scratch/exported"
grep -q "^uvw_var_declare@@UVWOOL_$abi$" "$scratch/exported" || fail "uvw_var_declare is not versioned UVWOOL_$abi"
! grep -v "@@UVWOOL_$abi$" "$scratch/exported" | grep -v "^UVWOOL_$abi$" | grep . ||
  fail "symbols exported outside UVWOOL_$abi (above)"
! grep '^uvw__' "$scratch/exported" || fail "internal symbols exported (above)"
# Every public function the library defines is exported (a uvwool.map
# that stops matching it fails here).
nm -g --defined-only "$PREFIX/lib/libuvwool.a" | awk '$2 == "T" && $3 ~ /^uvw_[a-z]/ {print $3}' |
  sort -u >"$scratch/public"
sed 's/@@.*//' "$scratch/exported" | sort -u >"$scratch/exported.names"
missing=$(comm -23 "$scratch/public" "$scratch/exported.names")
[ -z "$missing" ] || fail "public functions not exported (uvwool/uvwool.map does not match them): $missing"
# A program built against it binds to the version.
objdump -T "$scratch/app/app" | contains "(UVWOOL_$abi) *uvw_var_declare$" || fail "the app does not bind UVWOOL_$abi"

# ---- 3. the prefix moved ---------------------------------------------------------
mv "$PREFIX" "$scratch/moved"
[ "$(PKG_CONFIG_PATH="$scratch/moved/lib/pkgconfig" pkg-config --variable=libdir uvwool)" = \
  "$scratch/moved/lib/pkgconfig/../../lib" ] || fail "the .pc file is not relocatable"
"$scratch/moved/bin/uvwool-worker" --help | contains "^uvwool-worker (uvwool $version)" || fail "the moved worker"

# ---- 4. the consumer project: shared, static, transparent ---------------------
"$cmake" -S "$src" -B "$scratch/build" -DCMAKE_PREFIX_PATH="$scratch/moved" \
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" >/dev/null
"$cmake" --build "$scratch/build" >/dev/null
"$scratch/build/consumer" | contains '^consumer ok' || fail "consumer (shared)"
"$scratch/build/consumer_static" | contains '^consumer ok' || fail "consumer_static"
# uvwool_transparent() from the installed package: plain uv_* calls propagate.
LD_LIBRARY_PATH="$scratch/moved/lib" "$scratch/build/consumer_transparent" | contains '^transparent ok' ||
  fail "consumer_transparent"
echo "install: README blocks (pkg-config, CMake without protobuf-c, worker, proto), SONAME, RUNPATH," \
  "versioned symbols, relocation and the consumer (shared, static, transparent) all ok"
