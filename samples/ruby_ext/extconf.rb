# A Ruby extension on libuv written against uvwool's C API, built the way
# an extension author would: the C library via pkg-config, the uvwool gem's
# header (uvwool_ruby_ext.h) from the installed gem.
require "mkmf"

abort "pkg-config cannot find uvwool (set PKG_CONFIG_PATH)" unless pkg_config("uvwool")
libdir = `pkg-config --variable=libdir uvwool`.strip
$LDFLAGS << " -Wl,-rpath,#{libdir}"
gem_ext = File.join(Gem::Specification.find_by_name("uvwool").gem_dir, "ext", "uvwool")
$INCFLAGS << " -I#{gem_ext}"
$CFLAGS << " -std=gnu11 -Wall -Wextra -Wno-unused-parameter"
abort "uvwool_ruby_ext.h not found in the uvwool gem" unless have_header("uvwool_ruby_ext.h")
have_library("uv") or abort "libuv not found"
create_makefile("uvwool_sample")
