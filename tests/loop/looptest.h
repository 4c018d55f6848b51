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

static inline void lt_watchdog_fired(uv_timer_t *t) {
  (void)t;
  cr_assert_fail("watchdog: an expected callback never came");
}

/* An unreferenced timer that fails the test if the loop is still running
 * after ms: it keeps nothing alive, so it only fires if the test's own I/O
 * hangs. Close it before lt_finish. */
static inline void lt_watchdog_start(uv_loop_t *loop, uv_timer_t *watchdog, uint64_t ms) {
  uv_timer_init(loop, watchdog);
  uv_timer_start(watchdog, lt_watchdog_fired, ms, 0);
  uv_unref((uv_handle_t *)watchdog);
}

/* A fresh context, entered, binding holder to a counted value: a
 * registration made inside captures the value, and its release (tu_released)
 * shows the capture went. */
static inline uvw_context_t *lt_enter_counted(uvw_var_t *holder) {
  uvw_context_t *ctx = uvw_context_new();
  uvw_context_enter(ctx);
  uvw_value_t *v = tu_counted_value();
  uvw_set(holder, v, NULL);
  uvw_value_unref(v);
  return ctx;
}

static inline void lt_leave(uvw_context_t *ctx) {
  uvw_context_exit(ctx);
  uvw_context_unref(ctx);
}

/* What a multi-shot read-like registration (stream read, udp receive) saw
 * over three callbacks, each of which writes base + call index: the first
 * the value current at registration (1), the next ones their own previous
 * write and not the other registration's; alloc runs in the same context;
 * every callback in the scheduler's chain. */
static inline void lt_assert_three_reads(int fired, const long seen[3], const long alloc_seen[3],
                                         char ids[3][33], long base, const char *scheduler_id) {
  cr_assert_eq(fired, 3);
  cr_assert_eq(seen[0], 1, "the value current at registration");
  cr_assert_eq(seen[1], base, "the previous callback's write, and not the other registration's");
  cr_assert_eq(seen[2], base + 1);
  cr_assert_eq(alloc_seen[0], 1, "alloc runs in the registration's context too");
  cr_assert_eq(alloc_seen[1], base);
  cr_assert_eq(alloc_seen[2], base + 1);
  for (int k = 0; k < 3; k++) cr_assert_str_eq(ids[k], scheduler_id, "the scheduler's chain");
}

/* The fixture most loop tests share, for one file's test suite: `var` (what
 * callbacks read and write), `held` (holds counted values), a fresh `loop`
 * with an unreferenced watchdog, `scheduler_id` for a chain id, and
 * finish() to close the watchdog and the loop. A macro because each test
 * file needs its own statics and its own TestSuite. */
#define LT_FIXTURE(suite)                                                                  \
  static uvw_var_t *var;                                                                   \
  static uvw_var_t *held; /* holds the counted values: callbacks write var, never held */ \
  static uv_loop_t loop;                                                                   \
  static char scheduler_id[33];                                                            \
  static uv_timer_t watchdog;                                                              \
  static void setup(void) {                                                                \
    var = tu_var("v", NULL);                                                               \
    held = tu_var("held", NULL);                                                           \
    cr_assert_eq(uv_loop_init(&loop), 0);                                                  \
    lt_watchdog_start(&loop, &watchdog, 2000);                                             \
  }                                                                                        \
  TestSuite(suite, .init = setup);                                                         \
  static void finish(void) {                                                               \
    uv_close((uv_handle_t *)&watchdog, NULL);                                              \
    lt_finish(&loop);                                                                      \
  }

#endif
