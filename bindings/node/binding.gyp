{
  # uvwool's core, wire, loop and dispatch layers are compiled into the addon from
  # deps/uvwool (staged there by the CMake build, shipped by `npm pack`,
  # with the protobuf-c code generated from proto/uvwool.proto), against
  # Node's own headers: node-gyp's -I<nodedir>/include/node comes before
  # /usr/include, so uv.h is Node's. No libuv is linked: the uv_* calls bind
  # to the ones the node executable exports. The wire layer links Debian's
  # libprotobuf-c (libprotobuf-c-dev to build).
  "targets": [{
    "target_name": "uvwool",
    "sources": [
      "src/addon.c",
      "src/convert.c",
      "src/dispatch.c",
      "src/env.c",
      "src/errors_js.c",
      "src/node_api_glue.c",
      "src/peer.c",
      "src/worker.c",
      "<!@(node -p \"['core', 'wire', 'loop', 'dispatch'].flatMap(d => require('fs').readdirSync('deps/uvwool/src/' + d).filter(f => f.endsWith('.c')).map(f => 'deps/uvwool/src/' + d + '/' + f)).join(' ')\")",
      "deps/uvwool/proto/uvwool.pb-c.c"
    ],
    "include_dirs": ["include", "deps/uvwool/include", "deps/uvwool/src/core", "deps/uvwool/src/wire", "deps/uvwool/src/loop", "deps/uvwool/src/dispatch", "deps/uvwool/proto"],
    "defines": ["NAPI_VERSION=8"],
    "cflags": ["-std=gnu11", "-Wall", "-Wno-unused-parameter"],
    # Only the public C API (uvw_*, uvw_node_*) and Node's entry points
    # leave the addon: index.js loads it RTLD_GLOBAL for dependent addons.
    "ldflags": ["-Wl,--version-script=<(module_root_dir)/node.map"],
    "cflags!": ["-fno-exceptions"],
    "libraries": ["-lprotobuf-c", "-lpthread"]
  }]
}
