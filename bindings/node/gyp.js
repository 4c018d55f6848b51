'use strict';
// For addons built against uvwool's C API with node-gyp:
//   "include_dirs": ["<!@(node -p \"require('uvwool/gyp').include_dirs.join(' ')\")"]
const path = require('node:path');
module.exports = {
  include_dirs: [path.join(__dirname, 'include'), path.join(__dirname, 'deps', 'uvwool', 'include')],
};
