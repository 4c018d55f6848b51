'use strict';
// require('uvwool/otel'): an OpenTelemetry ContextManager backed by uvwool.
module.exports = require('./lib/otel');
