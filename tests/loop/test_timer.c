/* Timers and idle/check/prepare on a real loop (docs/testing.md rows 17, 18, 22
 * for these edges). */
#include "looptest.h"

static uvw_var_t *var;
static uv_loop_t loop;
static char scheduler_id[33];

static void setup(void) {
  var = tu_var("v", NULL);
  cr_assert_eq(uv_loop_init(&loop), 0);
}
TestSuite(timer, .init = setup);

typedef struct {
  uv_timer_t timer;
  long seen[4];
  char ids[4][33];
  int fired;
} timer_probe_t;

static void record_and_write(uv_timer_t *t) {
  timer_probe_t *p = t->data;
  p->seen[p->fired] = lt_read(var);
  lt_chain_id(p->ids[p->fired]);
  lt_write(var, 100 + p->fired); /* must not leak out of this registration */
  if (++p->fired == 3) uvw_timer_stop(t);
}

/* Row 17 + 18 for a repeating timer. */
Test(timer, repeating_timer_sees_value_at_start_and_its_own_writes_only) {
  timer_probe_t p = {0};
  p.timer.data = &p;
  lt_write(var, 1);
  lt_chain_id(scheduler_id);
  uv_timer_init(&loop, &p.timer);
  cr_assert_eq(uvw_timer_start(&p.timer, record_and_write, 1, 1), 0);
  lt_write(var, 2); /* after registration: not seen */
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(p.fired, 3);
  cr_assert_eq(p.seen[0], 1, "the value current at registration");
  cr_assert_eq(p.seen[1], 100, "the write of the previous event of the same registration");
  cr_assert_eq(p.seen[2], 101);
  for (int i = 0; i < 3; i++) cr_assert_str_eq(p.ids[i], scheduler_id, "callbacks share the scheduler's chain");
  cr_assert_eq(lt_read(var), 2, "writes inside the callback did not leak back");
  cr_assert_eq(p.timer.data, &p, "handle->data is the user's");
  uvw_close((uv_handle_t *)&p.timer, NULL);
  lt_finish(&loop);
}

static long sibling_seen[2];
static void sibling(uv_timer_t *t) {
  long *slot = t->data;
  *slot = lt_read(var);
  lt_write(var, 50);
  uvw_close((uv_handle_t *)t, NULL);
}

Test(timer, one_shot_writes_reach_no_sibling) {
  uv_timer_t a, b;
  a.data = &sibling_seen[0];
  b.data = &sibling_seen[1];
  lt_write(var, 7);
  uv_timer_init(&loop, &a);
  uv_timer_init(&loop, &b);
  uvw_timer_start(&a, sibling, 0, 0);
  uvw_timer_start(&b, sibling, 1, 0);
  lt_finish(&loop);
  cr_assert_eq(sibling_seen[0], 7);
  cr_assert_eq(sibling_seen[1], 7, "a sibling's write is not seen");
  cr_assert_eq(lt_read(var), 7);
}

/* Row 22: stop and close release the capture. */
Test(timer, stop_and_close_release_the_captured_context) {
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  size_t before = tu_released();
  uvw_value_t *v = tu_counted_value();
  uvw_context_t *ctx = uvw_context_new();
  uvw_context_enter(ctx);
  uvw_set(var, v, NULL);
  uvw_value_unref(v);
  uvw_timer_start(&t, sibling, 1000, 0);
  uvw_context_exit(ctx);
  uvw_context_unref(ctx);
  cr_assert_eq(tu_released(), before, "the timer's capture holds the value");
  uvw_timer_stop(&t);
  cr_assert_eq(tu_released(), before + 1, "stop released it");

  v = tu_counted_value();
  ctx = uvw_context_new();
  uvw_context_enter(ctx);
  uvw_set(var, v, NULL);
  uvw_value_unref(v);
  uvw_timer_start(&t, sibling, 1000, 0);
  uvw_context_exit(ctx);
  uvw_context_unref(ctx);
  uvw_close((uv_handle_t *)&t, NULL);
  cr_assert_eq(tu_released(), before + 2, "close released it");
  lt_finish(&loop);
}

typedef struct {
  uv_timer_t timer;
  int fired;
  long seen[3];
} restart_t;

static void restart_self(uv_timer_t *t) {
  restart_t *r = t->data;
  r->seen[r->fired] = lt_read(var);
  lt_write(var, 10 + r->fired);
  if (++r->fired < 3)
    uvw_timer_start(t, restart_self, 0, 0); /* captures the callback's context, with this write */
  else
    uvw_close((uv_handle_t *)t, NULL);
  lt_write(var, 99); /* after the re-registration: not seen by the next one */
}

Test(timer, restart_from_its_own_callback_captures_anew) {
  restart_t r = {0};
  r.timer.data = &r;
  lt_write(var, 1);
  uv_timer_init(&loop, &r.timer);
  uvw_timer_start(&r.timer, restart_self, 0, 0);
  lt_finish(&loop);
  cr_assert_eq(r.fired, 3);
  cr_assert_eq(r.seen[0], 1);
  cr_assert_eq(r.seen[1], 10);
  cr_assert_eq(r.seen[2], 11);
}

Test(timer, wrapper_returns_libuv_errors_and_keeps_nothing) {
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  cr_assert_eq(uvw_timer_start(&t, NULL, 0, 0), UV_EINVAL, "libuv's own answer");
  uvw_close((uv_handle_t *)&t, NULL);
  size_t before = tu_released();
  uvw_value_t *v = tu_counted_value();
  uvw_context_t *ctx = uvw_context_new();
  uvw_context_enter(ctx);
  uvw_set(var, v, NULL);
  uvw_value_unref(v);
  cr_assert_eq(uvw_timer_start(&t, sibling, 0, 0), UV_EINVAL, "closing handle: libuv refuses");
  uvw_context_exit(ctx);
  uvw_context_unref(ctx);
  cr_assert_eq(tu_released(), before + 1, "the refused registration kept no capture");
  lt_finish(&loop);
}

/* idle / check / prepare: multi-shot, one capture per start. */
typedef struct {
  int fired;
  long seen[3];
} watch_t;

/* One watcher of each kind, each stopping itself after three events. The
 * loop only turns while something makes poll return: a repeating timer does
 * until all three are done (idle alone would stop first). */
static watch_t wi, wc, wp;
static uv_timer_t keepalive;
static int watch_event(watch_t *w) {
  w->seen[w->fired] = lt_read(var);
  lt_write(var, 20 + w->fired);
  if (++w->fired == 3 && wi.fired == 3 && wc.fired == 3 && wp.fired == 3) uv_timer_stop(&keepalive);
  return w->fired == 3;
}
static void idle_cb(uv_idle_t *h) {
  if (watch_event(h->data)) uvw_idle_stop(h);
}
static void check_cb(uv_check_t *h) {
  if (watch_event(h->data)) uvw_check_stop(h);
}
static void prepare_cb(uv_prepare_t *h) {
  if (watch_event(h->data)) uvw_prepare_stop(h);
}

static void noop_timer(uv_timer_t *t) { (void)t; }

Test(timer, idle_check_prepare_reuse_one_capture_per_start) {
  uv_idle_t idle;
  uv_check_t check;
  uv_prepare_t prepare;
  uv_timer_init(&loop, &keepalive);
  uv_timer_start(&keepalive, noop_timer, 1, 1);
  uv_idle_init(&loop, &idle);
  uv_check_init(&loop, &check);
  uv_prepare_init(&loop, &prepare);
  idle.data = &wi;
  check.data = &wc;
  prepare.data = &wp;
  lt_write(var, 3);
  uvw_idle_start(&idle, idle_cb);
  uvw_check_start(&check, check_cb);
  uvw_prepare_start(&prepare, prepare_cb);
  lt_write(var, 4);
  uv_run(&loop, UV_RUN_DEFAULT);
  watch_t *ws[] = {&wi, &wc, &wp};
  for (int i = 0; i < 3; i++) {
    cr_assert_eq(ws[i]->fired, 3, "watcher %d", i);
    cr_assert_eq(ws[i]->seen[0], 3, "watcher %d: value at start", i);
    cr_assert_eq(ws[i]->seen[1], 20, "watcher %d: its own previous write", i);
    cr_assert_eq(ws[i]->seen[2], 21, "watcher %d", i);
  }
  cr_assert_eq(lt_read(var), 4);
  uvw_close((uv_handle_t *)&idle, NULL);
  uvw_close((uv_handle_t *)&check, NULL);
  uvw_close((uv_handle_t *)&prepare, NULL);
  uv_close((uv_handle_t *)&keepalive, NULL);
  lt_finish(&loop);
}

static long close_seen;
static void on_close(uv_handle_t *h) {
  (void)h;
  close_seen = lt_read(var);
}

Test(timer, close_callback_runs_in_the_context_of_the_close_call) {
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  lt_write(var, 5);
  uvw_close((uv_handle_t *)&t, on_close);
  lt_write(var, 6);
  lt_finish(&loop);
  cr_assert_eq(close_seen, 5);
}

static long walk_seen;
static int walked;
static void on_walk(uv_handle_t *h, void *arg) {
  (void)h;
  (void)arg;
  walked++;
  walk_seen = lt_read(var);
}

Test(timer, walk_runs_its_callback_during_the_call_in_the_current_context) {
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  lt_write(var, 8);
  uvw_walk(&loop, on_walk, NULL);
  cr_assert_geq(walked, 1);
  cr_assert_eq(walk_seen, 8);
  uvw_close((uv_handle_t *)&t, NULL);
  lt_finish(&loop);
}
