'use strict';
// uvwool first: it loads the C core RTLD_GLOBAL, and this addon's uvw_*
// calls resolve to it.
require('uvwool');
module.exports = require('./build/Release/sample.node');
