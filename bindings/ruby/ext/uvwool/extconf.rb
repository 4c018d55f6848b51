# Builds Uvwool::Core (uvwool/core.so) against the installed uvwool C
# library, found with pkg-config (set PKG_CONFIG_PATH to the prefix's
# lib/pkgconfig for a non-system install). The SWIG wrapper uvwool_wrap.c is
# generated when the gem is packaged; in a source tree without it, swig
# makes it from ../../uvwool_ruby.i.
require "mkmf"

abort "uvwool: pkg-config cannot find uvwool (set PKG_CONFIG_PATH)" unless pkg_config("uvwool")
libdir = `pkg-config --variable=libdir uvwool`.strip
# Find the library at run time without LD_LIBRARY_PATH, wherever the prefix is.
$LDFLAGS << " -Wl,-rpath,#{libdir}" unless libdir.empty?
$CFLAGS << " -std=gnu11 -Wall -Wextra -Wno-unused-parameter"
abort "uvwool: uvwool.h not found" unless have_header("uvwool.h")
abort "uvwool: uvw_task_new not found in libuvwool" unless have_func("uvw_task_new", "uvwool.h")

here = __dir__
unless File.exist?(File.join(here, "uvwool_wrap.c"))
  src = File.expand_path("../../uvwool_ruby.i", here)
  inc = `pkg-config --variable=includedir uvwool`.strip
  system("swig", "-ruby", "-I#{inc}", "-o", File.join(here, "uvwool_wrap.c"), src) or
    abort "uvwool: uvwool_wrap.c is missing and swig failed"
end

create_makefile("uvwool/core")
