{
  "targets": [{
    "target_name": "hash",
    "sources": ["hash.c"],
    "include_dirs": ["<!@(node -p \"require('uvwool/gyp').include_dirs.join(' ')\")"],
    "defines": ["NAPI_VERSION=8"]
  }]
}
