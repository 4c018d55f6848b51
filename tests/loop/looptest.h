/* Shared helpers for the loop tests (header-only: each test is one file). */
#ifndef UVWOOL_LOOPTEST_H
#define UVWOOL_LOOPTEST_H

#include <criterion/criterion.h>
#include <string.h>
#include <uv.h>

#include "testutil.h"
#include "uvwool/loop.h"

/* The int bound to var in the current context, or -1 when unbound. */
static inline long lt_read(uvw_var_t *var) {
  uvw_value_t *out = NULL;
  int rc = uvw_get_or(var, NULL, &out);
  cr_assert_eq(rc, 0, "get failed: %s", uvw_error_message(uvw_last_error()));
  return out ? (long)uvw_value_as_int(out) : -1;
}

static inline void lt_write(uvw_var_t *var, long v) {
  uvw_value_t *val = uvw_value_int(v);
  int rc = uvw_set(var, val, NULL);
  uvw_value_unref(val);
  cr_assert_eq(rc, 0, "set failed: %s", uvw_error_message(uvw_last_error()));
}

/* The current chain id ("" when unarmed). */
static inline void lt_chain_id(char out[33]) {
  out[0] = '\0';
  uvw_context_chain_id(uvw_context_current(), out);
}

/* Run the loop to completion, close it through uvwool and check nothing is
 * left behind. */
static inline void lt_finish(uv_loop_t *loop) {
  uv_run(loop, UV_RUN_DEFAULT);
  cr_assert_eq(uvw_loop_close(loop), 0, "loop still has open handles");
}

#endif
