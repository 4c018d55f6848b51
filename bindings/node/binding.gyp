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
      "<!@(node -p \"require('fs').readdirSync('deps/uvwool/src/core').filter(f => f.endsWith('.c')).map(f => 'deps/uvwool/src/core/' + f).join(' ')\")"
    ],
    "include_dirs": ["deps/uvwool/include", "deps/uvwool/src/core"],
    "defines": ["NAPI_VERSION=8"],
    "cflags": ["-std=gnu11", "-fvisibility=hidden", "-Wall", "-Wno-unused-parameter"],
    "cflags!": ["-fno-exceptions"],
    "libraries": ["-lpthread"]
  }]
}
