'use strict';
// node example.js FILE...: hashes the files concurrently, each under its own
// request id, and prints each step with the id it saw.
const { requestId, hashFileAsync } = require('.');

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node example.js FILE...');
  process.exit(2);
}
Promise.all(files.map((file, i) => requestId.run(`req-${i + 1}`, async () => {
  const { digest, bytes, trace } = await hashFileAsync(file);
  // After the await this is still the request's context.
  console.log(`${requestId.get()} ${file}: ${bytes} bytes, fnv1a64 ${digest}`);
  console.log(`  steps: ${trace.join(' ')}`);
}))).catch((err) => {
  console.error(`${err.code}: ${err.message}`);
  process.exit(1);
});
