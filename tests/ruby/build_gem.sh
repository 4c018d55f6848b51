#!/usr/bin/env bash
# usage: build_gem.sh BUILD_DIR SOURCE_DIR SCRATCH
# What a gem user does, offline: the uvwool C library installed into a
# prefix (SCRATCH/prefix), the gem packaged (SWIG wrapper generated into the
# staged sources, `gem build`), then `gem install --local` of the built .gem
# into a scratch GEM_HOME (SCRATCH/gems), finding libuvwool via pkg-config;
# finally `require "uvwool"` from an empty folder. The Ruby tests run against
# SCRATCH/gems.
# An LD_PRELOAD in the environment (the ASan runtime) is kept for the final
# require only: the tools that build must not run under it.
set -euo pipefail
build=$1 src=$2 scratch=$3
preload=${LD_PRELOAD:-}
unset LD_PRELOAD
fail() { echo "ruby gem FAILED: $*" >&2; exit 1; }
unset RUBYLIB RUBYOPT GEM_HOME GEM_PATH
rm -rf "$scratch"
mkdir -p "$scratch/stage" "$scratch/empty"

"${CMAKE_COMMAND:-cmake}" --install "$build" --prefix "$scratch/prefix" >/dev/null
export PKG_CONFIG_PATH="$scratch/prefix/lib/pkgconfig"
pkg-config --exists uvwool || fail "uvwool.pc not installed"

cp -r "$src/bindings/ruby/." "$scratch/stage/"
rm -f "$scratch/stage/ext/uvwool/uvwool_wrap.c"
swig -ruby -I"$src/uvwool/include" -o "$scratch/stage/ext/uvwool/uvwool_wrap.c" "$src/bindings/ruby/uvwool_ruby.i"
(cd "$scratch/stage" && gem build uvwool.gemspec) >"$scratch/build.log" 2>&1 || { cat "$scratch/build.log" >&2; fail "gem build"; }
gem=$(ls "$scratch"/stage/uvwool-*.gem)
# grep -q on a pipe would close it early (SIGPIPE under pipefail): list first.
files=$(tar -xOf "$gem" data.tar.gz | tar -tz)
grep -qx ext/uvwool/uvwool_wrap.c <<<"$files" || fail "the .gem lacks the SWIG wrapper"

export GEM_HOME="$scratch/gems" GEM_PATH="$scratch/gems"
(cd "$scratch/empty" && gem install --local --no-document "$gem") >"$scratch/install.log" 2>&1 ||
  { cat "$scratch/install.log" "$scratch"/gems/extensions/*/*/uvwool-*/mkmf.log >&2 2>/dev/null; fail "gem install --local"; }
out=$(cd "$scratch/empty" && LD_PRELOAD=$preload ruby -e 'require "uvwool"; puts Uvwool::VERSION; puts $LOADED_FEATURES.grep(/uvwool/)')
grep -q "$scratch/gems/gems/uvwool-" <<<"$out" || fail "require \"uvwool\" did not load the installed gem: $out"
echo "ruby gem: built, installed into $scratch/gems, require \"uvwool\" ok (uvwool $(head -1 <<<"$out"))"
