/* A timer restarted with a capture it already holds keeps its record and
 * context object (renewal in place, loop_internal.h): what a callback sees
 * must stay exactly what a fresh copy at the restart would give it. */
#include "looptest.h"

static uvw_var_t *var;
static uv_loop_t loop;

static void setup(void) {
  var = tu_var("renewal", NULL);
  cr_assert_eq(uv_loop_init(&loop), 0);
}
TestSuite(timer_renewal, .init = setup);

typedef struct {
  uv_timer_t timer;
  int fired;
  long seen[3];
  int rc[3];
  uvw_token_t *token;
  uvw_context_t *kept;
  uvw_task_t *task;
} probe_t;

static void seen_once(uv_timer_t *t) {
  probe_t *p = t->data;
  p->seen[p->fired++] = lt_read(var);
  uvw_close((uv_handle_t *)t, NULL);
}

Test(timer_renewal, restarts_from_outside_see_the_value_at_the_last_start) {
  probe_t p = {0};
  p.timer.data = &p;
  uv_timer_init(&loop, &p.timer);
  lt_write(var, 1);
  cr_assert_eq(uvw_timer_start(&p.timer, seen_once, 1000, 0), 0);
  cr_assert_eq(uvw_timer_start(&p.timer, seen_once, 1000, 0), 0, "unchanged context: renewed");
  lt_write(var, 2);
  cr_assert_eq(uvw_timer_start(&p.timer, seen_once, 0, 0), 0, "changed context: captured anew");
  lt_write(var, 3);
  lt_finish(&loop);
  cr_assert_eq(p.fired, 1);
  cr_assert_eq(p.seen[0], 2, "the value current at the last start, not before it nor after it");
}

static void token_then_restart(uv_timer_t *t) {
  probe_t *p = t->data;
  if (p->fired == 0) {
    uvw_value_t *v = uvw_value_int(20);
    cr_assert_eq(uvw_set(var, v, &p->token), 0);
    uvw_value_unref(v);
    cr_assert_eq(uvw_timer_start(t, token_then_restart, 0, 0), 0);
  } else {
    p->seen[0] = lt_read(var);
    p->rc[0] = uvw_reset(var, p->token);
    uvw_close((uv_handle_t *)t, NULL);
  }
  p->fired++;
}

Test(timer_renewal, a_token_of_the_previous_event_is_from_another_context) {
  probe_t p = {0};
  p.timer.data = &p;
  lt_write(var, 1);
  uv_timer_init(&loop, &p.timer);
  uvw_timer_start(&p.timer, token_then_restart, 0, 0);
  lt_finish(&loop);
  cr_assert_eq(p.fired, 2);
  cr_assert_eq(p.seen[0], 20, "the write made before the restart is captured");
  cr_assert_eq(p.rc[0], UVW_ETOKEN_CONTEXT, "as with a copy: the token belongs to the previous event's context");
  uvw_token_free(p.token);
}

static void keep_then_restart(uv_timer_t *t) {
  probe_t *p = t->data;
  p->seen[p->fired] = lt_read(var);
  if (p->fired == 0) {
    lt_write(var, 30);
    cr_assert_eq(uvw_timer_start(t, keep_then_restart, 0, 0), 0);
    p->kept = uvw_context_ref(uvw_context_current()); /* after the restart, before the callback ends */
  } else {
    lt_write(var, 31);
    uvw_close((uv_handle_t *)t, NULL);
  }
  p->fired++;
}

Test(timer_renewal, a_context_kept_by_the_callback_is_not_the_next_events) {
  probe_t p = {0};
  p.timer.data = &p;
  lt_write(var, 1);
  uv_timer_init(&loop, &p.timer);
  uvw_timer_start(&p.timer, keep_then_restart, 0, 0);
  lt_finish(&loop);
  cr_assert_eq(p.fired, 2);
  cr_assert_eq(p.seen[1], 30, "the next event starts from the value at the restart");
  uvw_value_t *out = NULL;
  cr_assert_not_null(p.kept);
  out = uvw_context_lookup(p.kept, var);
  cr_assert_not_null(out);
  cr_assert_eq(uvw_value_as_int(out), 30, "the next event's write does not reach the kept context");
  uvw_context_unref(p.kept);
}

static void claim_then_restart(uv_timer_t *t) {
  probe_t *p = t->data;
  if (p->fired == 0) {
    cr_assert_eq(uvw_timer_start(t, claim_then_restart, 0, 0), 0);
    /* The claim stamps this context's chain with the task as its owner. */
    p->rc[0] = uvw_task_new_in(uvw_context_current(), &p->task);
  } else {
    uvw_task_t *second = NULL;
    p->rc[1] = uvw_task_new_in(uvw_context_current(), &second);
    if (second) {
      uvw_task_finish(second);
      uvw_task_unref(second);
    }
    uvw_close((uv_handle_t *)t, NULL);
  }
  p->fired++;
}

Test(timer_renewal, a_task_claim_after_the_restart_does_not_reach_the_capture) {
  probe_t p = {0};
  p.timer.data = &p;
  lt_write(var, 1); /* armed: a claim stamps the chain */
  uv_timer_init(&loop, &p.timer);
  uvw_timer_start(&p.timer, claim_then_restart, 0, 0);
  lt_finish(&loop);
  cr_assert_eq(p.fired, 2);
  cr_assert_eq(p.rc[0], 0);
  cr_assert_eq(p.rc[1], 0, "the next event's chain was captured before the claim: it names no live task");
  uvw_task_finish(p.task);
  uvw_task_unref(p.task);
}

static void restart_then_stop(uv_timer_t *t) {
  probe_t *p = t->data;
  p->fired++;
  cr_assert_eq(uvw_timer_start(t, restart_then_stop, 0, 0), 0);
  p->seen[0] = (long)tu_released();
  if (p->rc[0] == 0)
    uvw_timer_stop(t);
  else
    uvw_close((uv_handle_t *)t, NULL);
  p->seen[1] = (long)tu_released();
}

static void release_after_restart(int close) {
  probe_t p = {0};
  p.timer.data = &p;
  p.rc[0] = close;
  uv_timer_init(&loop, &p.timer);
  size_t before = tu_released();
  uvw_context_t *ctx = lt_enter_counted(var);
  uvw_timer_start(&p.timer, restart_then_stop, 0, 0);
  lt_leave(ctx);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(p.fired, 1);
  cr_assert_eq(p.seen[0], (long)before, "the running callback holds the value");
  cr_assert_eq(p.seen[1], (long)before, "still running in it: not released inside the call");
  cr_assert_eq(tu_released(), before + 1, "released once the callback ended");
  if (!close) uvw_close((uv_handle_t *)&p.timer, NULL);
  lt_finish(&loop);
  cr_assert_eq(tu_released(), before + 1, "and only once");
}

Test(timer_renewal, stop_after_a_restart_in_the_callback_releases_the_capture_once) { release_after_restart(0); }
Test(timer_renewal, close_after_a_restart_in_the_callback_releases_the_capture_once) { release_after_restart(1); }
