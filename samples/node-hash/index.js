'use strict';
// uvwool first: it loads the C core RTLD_GLOBAL, and this addon's uvw_*
// calls resolve to it.
const { ContextVar } = require('uvwool');
const { hashFile } = require('./build/Release/hash.node');

// The variable every step of hashFile tags its trace with (the C side finds
// it by this namespace and name).
const requestId = new ContextVar('sample.hash', 'request_id', { default: '-' });

// hashFileAsync(path): hashFile as a promise of {digest, bytes, steps, trace}.
function hashFileAsync(file) {
  return new Promise((resolve, reject) => {
    hashFile(file, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

module.exports = { requestId, hashFile, hashFileAsync };
