/* uvwool: Python-contextvars-grade context propagation for libuv programs.
 * The umbrella header; see README.md and docs/ for the model. */
#ifndef UVWOOL_H
#define UVWOOL_H

#include "uvwool/common.h"
#include "uvwool/errors.h"
#include "uvwool/value.h"
#include "uvwool/context.h"
#include "uvwool/task.h"
#include "uvwool/wire.h"
#include "uvwool/dispatch.h"
#include "uvwool/loop.h"

#endif
