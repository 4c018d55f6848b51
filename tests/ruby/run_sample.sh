#!/usr/bin/env bash
# usage: run_sample.sh SOURCE_DIR SCRATCH
# Builds samples/ruby_ext the way an extension author would (against the
# uvwool gem installed by build_gem.sh into SCRATCH/gems and the C library in
# SCRATCH/prefix), then runs its minitest file.
set -euo pipefail
src=$1 scratch=$2
preload=${LD_PRELOAD:-}
unset LD_PRELOAD
export PKG_CONFIG_PATH="$scratch/prefix/lib/pkgconfig"
rm -rf "$scratch/sample"
cp -r "$src/samples/ruby_ext" "$scratch/sample"
(cd "$scratch/sample" && ruby extconf.rb && make) >"$scratch/sample.log" 2>&1 ||
  { cat "$scratch/sample.log" "$scratch/sample/mkmf.log" >&2; echo "sample build FAILED" >&2; exit 1; }
cd "$scratch/sample"
LD_PRELOAD=$preload exec ruby -I. test_sample.rb -v
