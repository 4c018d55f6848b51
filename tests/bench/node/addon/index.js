'use strict';
// uvwool first: its addon holds the C core this one calls (RTLD_GLOBAL).
require('uvwool');
module.exports = require('./build/Release/bench.node');
