#!/usr/bin/env bash
# usage: run.sh BUILD_DIR CONSUMER_SRC SCRATCH
# Installs BUILD_DIR into SCRATCH/prefix, then builds and runs the consumer
# with find_package (shared, static and link-time transparent mode) and with
# pkg-config.
set -euo pipefail
build=$1 src=$2 scratch=$3
cmake=${CMAKE_COMMAND:-cmake}
cc=${C_COMPILER:-cc}
rm -rf "$scratch"
mkdir -p "$scratch"
"$cmake" --install "$build" --prefix "$scratch/prefix" >/dev/null
flags=""
[ -n "${SANITIZE:-}" ] && flags="-fsanitize=$SANITIZE"
"$cmake" -S "$src" -B "$scratch/build" -DCMAKE_PREFIX_PATH="$scratch/prefix" \
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" >/dev/null
"$cmake" --build "$scratch/build" >/dev/null
LD_LIBRARY_PATH="$scratch/prefix/lib" "$scratch/build/consumer" | grep -q '^consumer ok'
"$scratch/build/consumer_static" | grep -q '^consumer ok'
# uvwool_transparent() from the installed package: plain uv_* calls propagate.
LD_LIBRARY_PATH="$scratch/prefix/lib" "$scratch/build/consumer_transparent" | grep -q '^transparent ok'
pc_dir=$(dirname "$(find "$scratch/prefix" -name uvwool.pc | head -n1)")
# pkg-config: the .pc carries the configured prefix; point it at the scratch one.
cflags=$(PKG_CONFIG_PATH="$pc_dir" pkg-config --define-variable=prefix="$scratch/prefix" --cflags uvwool)
libs=$(PKG_CONFIG_PATH="$pc_dir" pkg-config --define-variable=prefix="$scratch/prefix" --libs uvwool)
# shellcheck disable=SC2086
"$cc" $flags $cflags "$src/main.c" -o "$scratch/consumer_pc" $libs
LD_LIBRARY_PATH="$scratch/prefix/lib" "$scratch/consumer_pc" | grep -q '^consumer ok'
echo "install consumer: find_package (shared, static, transparent) and pkg-config all ok"
