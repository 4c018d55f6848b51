{
  # The core is compiled into the addon from deps/uvwool (staged there by the
  # CMake build or by `npm pack`), against Node's own headers. No system
  # libuv is linked: the loop layer, when added, binds to Node's uv_*.
  "targets": [{
    "target_name": "uvwool",
    "sources": [
      "src/addon.c",
      "src/convert.c",
      "src/env.c",
      "src/node_api_glue.c",
      "<!@(node -p \"require('fs').readdirSync('deps/uvwool/src/core').filter(f => f.endsWith('.c')).map(f => 'deps/uvwool/src/core/' + f).join(' ')\")"
    ],
    "include_dirs": ["include", "deps/uvwool/include", "deps/uvwool/src/core"],
    "defines": ["NAPI_VERSION=8"],
    "cflags": ["-std=gnu11", "-Wall", "-Wno-unused-parameter"],
    # Only the public C API (uvw_*, uvw_node_*) and Node's entry points
    # leave the addon: index.js loads it RTLD_GLOBAL for dependent addons.
    "ldflags": ["-Wl,--version-script=<(module_root_dir)/node.map"],
    "cflags!": ["-fno-exceptions"],
    "libraries": ["-lpthread"]
  }]
}
