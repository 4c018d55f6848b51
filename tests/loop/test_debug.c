/* UVWOOL_DEBUG=unwrapped / uvw_debug_unwrapped(): a read inside a libuv
 * callback registered without uvwool is reported, once per call site; reads
 * in wrapped callbacks and outside uv_run are not. */
#include <stdlib.h>

#include "looptest.h"

LT_FIXTURE(debug)

static int warnings;
static char last[1024];
static uintptr_t sites[4]; /* the call sites the warnings named */

static void sink(const uvw_error_t *w, void *arg) {
  (void)arg;
  const char *m = uvw_error_message(w), *at = strstr(m, ", at 0x");
  if (strstr(m, "not registered through uvwool") == NULL) return;
  if (at && warnings < 4) sites[warnings] = (uintptr_t)strtoull(at + 5, NULL, 16);
  warnings++;
  snprintf(last, sizeof last, "%s", m);
}

/* Whether site is a return address inside fn (a small function). */
static int inside(uintptr_t site, long (*fn)(void)) {
  uintptr_t start;
  memcpy(&start, &fn, sizeof start);
  return site > start && site < start + 512;
}

/* Two distinct read sites (noinline, and bodies that differ so no identical
 * code folding merges them: each keeps its own return address). */
static int site_b_calls;
static long read_site_a(void);
static long read_site_b(void);
/* uvw_get_or called directly: the site is the caller's return address (a
 * helper such as lt_read would be one site for all its callers at -O0). */
static long value_of(uvw_value_t *out) { return out ? (long)uvw_value_as_int(out) : -1; }
__attribute__((noinline)) static long read_site_a(void) {
  uvw_value_t *out = NULL;
  cr_assert_eq(uvw_get_or(var, NULL, &out), 0);
  return value_of(out);
}
__attribute__((noinline)) static long read_site_b(void) {
  uvw_value_t *out = NULL;
  site_b_calls++;
  cr_assert_eq(uvw_get_or(var, NULL, &out), 0);
  return value_of(out);
}

static int raw_fired;
static long raw_seen;
static void raw_cb(uv_timer_t *t) {
  raw_seen = read_site_a();
  read_site_b();
  if (++raw_fired == 3) uv_close((uv_handle_t *)t, NULL);
}

static int wrapped_fired;
static void wrapped_cb(uv_timer_t *t) {
  wrapped_fired++;
  read_site_a();
  read_site_b();
  uvw_close((uv_handle_t *)t, NULL);
}

Test(debug, a_read_in_an_unwrapped_callback_is_reported_once_per_site) {
  uvw_set_warning_sink(sink, NULL);
  cr_assert_eq(uvw_debug_unwrapped(1), 0, "off by default");
  lt_write(var, 5);
  lt_chain_id(scheduler_id);
  cr_assert_neq(scheduler_id[0], 0);
  read_site_a(); /* outside uv_run: not a callback */
  cr_assert_eq(warnings, 0);
  uv_timer_t wrapped, raw;
  uv_timer_init(&loop, &wrapped);
  uv_timer_init(&loop, &raw);
  cr_assert_eq(uvw_timer_start(&wrapped, wrapped_cb, 0, 0), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(wrapped_fired, 1);
  cr_assert_eq(warnings, 0, "a wrapped callback's reads are fine: %s", last);
  cr_assert_eq(uv_timer_start(&raw, raw_cb, 0, 1), 0); /* the forgotten w */
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(raw_fired, 3);
  cr_assert_eq(raw_seen, 5);
  cr_assert_eq(warnings, 2, "two sites, each once over three calls (%d)", warnings);
  cr_assert(inside(sites[0], read_site_a), "names the first reader: %s", last);
  cr_assert(inside(sites[1], read_site_b), "names the second reader: %s", last);
  cr_assert_eq(uvw_debug_unwrapped(0), 1);
  finish();
  uvw_set_warning_sink(NULL, NULL);
}

static void raw_off_cb(uv_timer_t *t) {
  lt_read(var);
  uv_close((uv_handle_t *)t, NULL);
}

Test(debug, off_nothing_is_reported) {
  uvw_set_warning_sink(sink, NULL);
  uvw_debug_unwrapped(0);
  uv_timer_t raw;
  uv_timer_init(&loop, &raw);
  cr_assert_eq(uv_timer_start(&raw, raw_off_cb, 0, 0), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(warnings, 0);
  finish();
  uvw_set_warning_sink(NULL, NULL);
}

/* Registered twice with CTest: without UVWOOL_DEBUG the switch starts off,
 * with UVWOOL_DEBUG=unwrapped (loop.test_debug_env) it starts on. */
Test(debug, env_sets_the_switch_at_load) {
  const char *env = getenv("UVWOOL_DEBUG");
  int want = env != NULL && strcmp(env, "unwrapped") == 0;
  cr_assert_eq(uvw_debug_unwrapped(0), want, "UVWOOL_DEBUG=%s", env ? env : "(unset)");
  finish();
}
