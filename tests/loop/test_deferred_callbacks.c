/* A callback never runs inside the call that schedules or releases it
 * (libuv's rule for uv_close): a task's done callback in particular, which
 * becomes due inside whatever call releases the task's last registration.
 *
 * The test marks every uvw_ call it makes (IN_UVW) and every user callback
 * checks the mark is clear. The end of a callback is not a call the test can
 * mark, so there a sibling callback due in the same step of the loop must
 * run first. */
#include <sys/socket.h>
#include <unistd.h>

#include "looptest.h"

static uvw_var_t *var;
static uv_loop_t loop;
static int in_uvw;         /* > 0 while a uvw_ call made by the test runs */
static int violations;     /* user callbacks that ran inside one */
static const char *violator;

static void setup(void) {
  var = tu_var("v", NULL);
  in_uvw = violations = 0;
  violator = NULL;
  cr_assert_eq(uv_loop_init(&loop), 0);
}
TestSuite(deferred, .init = setup);

#define IN_UVW(stmt) \
  do {               \
    in_uvw++;        \
    stmt;            \
    in_uvw--;        \
  } while (0)

/* First thing in every user callback. */
static void user_callback(const char *name) {
  if (in_uvw == 0) return;
  violations++;
  violator = name;
}

static void assert_no_violation(void) {
  cr_assert_eq(violations, 0, "%s ran inside a uvw_ call", violator ? violator : "?");
}

/* A task whose done callback counts; its body runs `body`. */
typedef struct {
  int done;
  int body_ran;
  void (*body)(void *state);
  void *state;
} probe_t;

static void probe_done(uvw_task_t *task, void *arg) {
  (void)task;
  user_callback("the done callback");
  ((probe_t *)arg)->done++;
}

static void probe_body(uvw_task_t *task, void *arg) {
  (void)task;
  user_callback("the task body");
  probe_t *p = arg;
  p->body_ran++;
  if (p->body) p->body(p->state);
}

static uvw_task_t *spawn_probe(probe_t *p) {
  uvw_task_options_t opts = {NULL, probe_done, p};
  uvw_task_t *t;
  int rc;
  IN_UVW(rc = uvw_task_spawn(&loop, probe_body, p, &opts, &t));
  cr_assert_eq(rc, 0);
  cr_assert_eq(p->body_ran, 0, "the body does not run inside uvw_task_spawn");
  return t;
}

static void finish(probe_t *p, uvw_task_t *t) {
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_no_violation();
  cr_assert_eq(p->done, 1, "the done callback ran once, from the loop");
  cr_assert(uvw_task_finished(t));
  uvw_task_unref(t);
  cr_assert_eq(uvw_loop_close(&loop), 0);
}

/* ---- stop and close from outside the task --------------------------------- */

static void never_timer(uv_timer_t *t) {
  (void)t;
  cr_assert_fail("the timer was stopped before it was due");
}
static void start_long_timer(void *state) { cr_assert_eq(uvw_timer_start(state, never_timer, 60000, 0), 0); }

Test(deferred, uvw_timer_stop_does_not_run_the_done_callback) {
  static uv_timer_t timer;
  uv_timer_init(&loop, &timer);
  probe_t p = {0, 0, start_long_timer, &timer};
  uvw_task_t *t = spawn_probe(&p);
  uv_run(&loop, UV_RUN_NOWAIT); /* the body starts the timer: the task stays live */
  cr_assert_eq(p.body_ran, 1);
  cr_assert_not(uvw_task_finished(t));
  int rc;
  IN_UVW(rc = uvw_timer_stop(&timer)); /* the task's last registration */
  cr_assert_eq(rc, 0);
  cr_assert(uvw_task_finished(t), "finished at once (asyncio's done()), its callback deferred");
  cr_assert_eq(p.done, 0, "not yet");
  IN_UVW(uvw_close((uv_handle_t *)&timer, NULL));
  finish(&p, t);
}

static int close_cb_ran;
static void on_close(uv_handle_t *h) {
  (void)h;
  user_callback("the close callback");
  close_cb_ran++;
}

Test(deferred, uvw_close_does_not_run_the_done_or_close_callback) {
  static uv_timer_t timer;
  uv_timer_init(&loop, &timer);
  close_cb_ran = 0;
  probe_t p = {0, 0, start_long_timer, &timer};
  uvw_task_t *t = spawn_probe(&p);
  uv_run(&loop, UV_RUN_NOWAIT);
  IN_UVW(uvw_close((uv_handle_t *)&timer, on_close));
  cr_assert_eq(p.done, 0);
  cr_assert_eq(close_cb_ran, 0);
  finish(&p, t);
  cr_assert_eq(close_cb_ran, 1);
}

/* ---- stop from inside the task's own callback ----------------------------- */

static void idle_stops_itself(uv_idle_t *idle) {
  user_callback("the idle callback");
  int rc;
  IN_UVW(rc = uvw_idle_stop(idle));
  cr_assert_eq(rc, 0);
  IN_UVW(uvw_close((uv_handle_t *)idle, on_close));
}
static void start_idle(void *state) { cr_assert_eq(uvw_idle_start(state, idle_stops_itself), 0); }

Test(deferred, uvw_idle_stop_does_not_run_the_done_callback) {
  static uv_idle_t idle;
  uv_idle_init(&loop, &idle);
  close_cb_ran = 0;
  probe_t p = {0, 0, start_idle, &idle};
  uvw_task_t *t = spawn_probe(&p);
  finish(&p, t);
  cr_assert_eq(close_cb_ran, 1);
}

typedef struct {
  uv_pipe_t pipe;
  int other_end;
  char buf[16];
  int reads;
} reader_t;

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  user_callback("the alloc callback");
  reader_t *r = h->data;
  *buf = uv_buf_init(r->buf, sizeof r->buf);
}
static void read_stops_itself(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  (void)buf;
  user_callback("the read callback");
  reader_t *r = s->data;
  cr_assert_gt(n, 0);
  r->reads++;
  int rc;
  IN_UVW(rc = uvw_read_stop(s));
  cr_assert_eq(rc, 0);
  IN_UVW(uvw_close((uv_handle_t *)s, on_close));
}
static void start_reading(void *state) {
  reader_t *r = state;
  cr_assert_eq(uvw_read_start((uv_stream_t *)&r->pipe, alloc_cb, read_stops_itself), 0);
  cr_assert_eq(write(r->other_end, "x", 1), 1);
}

Test(deferred, uvw_read_stop_does_not_run_the_done_callback) {
  static reader_t r;
  memset(&r, 0, sizeof r);
  int sv[2];
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  cr_assert_eq(uv_pipe_init(&loop, &r.pipe, 0), 0);
  cr_assert_eq(uv_pipe_open(&r.pipe, sv[0]), 0);
  r.pipe.data = &r;
  r.other_end = sv[1];
  close_cb_ran = 0;
  probe_t p = {0, 0, start_reading, &r};
  uvw_task_t *t = spawn_probe(&p);
  finish(&p, t);
  close(sv[1]);
  cr_assert_eq(r.reads, 1);
  cr_assert_eq(close_cb_ran, 1);
}

/* ---- the end of a callback --------------------------------------------------- */

/* Two timers due in the same step: the task's, then a plain one started just
 * after it. The task's callback closes its own timer, so the task's last
 * registration ends when that callback returns: the done callback must not
 * run there, before libuv moved on to the sibling. */
static int sibling_fired, sibling_before_done;
static void sibling_cb(uv_timer_t *t) {
  user_callback("the sibling timer");
  sibling_fired++;
  uv_close((uv_handle_t *)t, NULL);
}
static void closes_itself(uv_timer_t *t) {
  user_callback("the task's timer");
  IN_UVW(uvw_close((uv_handle_t *)t, NULL));
}
static void start_two_timers(void *state) {
  uv_timer_t *timers = state;
  uv_timer_init(&loop, &timers[0]);
  uv_timer_init(&loop, &timers[1]);
  cr_assert_eq(uvw_timer_start(&timers[0], closes_itself, 1, 0), 0);
  cr_assert_eq(uv_timer_start(&timers[1], sibling_cb, 1, 0), 0); /* not the task's */
}
static void done_after_sibling(uvw_task_t *task, void *arg) {
  probe_done(task, arg);
  sibling_before_done = sibling_fired;
}

Test(deferred, the_end_of_a_callback_does_not_run_the_done_callback) {
  static uv_timer_t timers[2];
  sibling_fired = sibling_before_done = 0;
  probe_t p = {0, 0, start_two_timers, timers};
  uvw_task_options_t opts = {NULL, done_after_sibling, &p};
  uvw_task_t *t;
  cr_assert_eq(uvw_task_spawn(&loop, probe_body, &p, &opts, &t), 0);
  finish(&p, t);
  cr_assert_eq(sibling_before_done, 1, "the done callback came from the loop, after the sibling");
}

/* A request's callback: the record is released when the fs callback returns.
 * A plain check handle (after the poll step where fs callbacks run) marks
 * that libuv moved on. */
static int fs_returned, fs_returned_at_done;
static void clear_mark(uv_check_t *c) {
  (void)c;
  fs_returned = 0;
}
static void stat_cb(uv_fs_t *req) {
  user_callback("the fs callback");
  cr_assert_eq(req->result, 0);
  uv_fs_req_cleanup(req);
  fs_returned = 1;
}
static void start_stat(void *state) { cr_assert_eq(uvw_fs_stat(&loop, state, ".", stat_cb), 0); }
static void done_after_fs(uvw_task_t *task, void *arg) {
  probe_done(task, arg);
  fs_returned_at_done = fs_returned;
}

Test(deferred, an_fs_completion_does_not_run_the_done_callback) {
  static uv_fs_t req;
  static uv_check_t check;
  uv_check_init(&loop, &check);
  uv_check_start(&check, clear_mark);
  uv_unref((uv_handle_t *)&check);
  fs_returned = 0;
  fs_returned_at_done = -1;
  probe_t p = {0, 0, start_stat, &req};
  uvw_task_options_t opts = {NULL, done_after_fs, &p};
  uvw_task_t *t;
  cr_assert_eq(uvw_task_spawn(&loop, probe_body, &p, &opts, &t), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&check, NULL);
  finish(&p, t);
  cr_assert_eq(fs_returned_at_done, 0, "the done callback came after libuv left the fs callback");
}

/* ---- the body's end, and a loop closed first ------------------------------------ */

Test(deferred, a_task_with_nothing_pending_gets_its_done_callback_on_a_later_step) {
  probe_t p = {0, 0, NULL, NULL};
  uvw_task_t *t = spawn_probe(&p);
  uv_run(&loop, UV_RUN_NOWAIT); /* the body runs and returns: the task finishes */
  cr_assert_eq(p.body_ran, 1);
  cr_assert(uvw_task_finished(t));
  cr_assert_eq(p.done, 0, "not at the end of the body's own callback");
  finish(&p, t);
}

static void never_soon(void *arg) {
  (void)arg;
  cr_assert_fail("the loop closed first");
}
static void queue_something(void *state) {
  (void)state;
  cr_assert_eq(uvw_loop_call_soon(&loop, never_soon, NULL), 0);
}

Test(deferred, uvw_loop_close_runs_no_done_callback_and_leaks_nothing) {
  size_t before = tu_released();
  uvw_value_t *v = tu_counted_value();
  uvw_set(var, v, NULL); /* the task's fork holds it until the task lets go */
  uvw_value_unref(v);
  probe_t p = {0, 0, queue_something, NULL};
  uvw_task_t *t = spawn_probe(&p);
  uv_run(&loop, UV_RUN_NOWAIT); /* the body queues an entry that keeps the task live */
  cr_assert_not(uvw_task_finished(t));
  uvw_value_t *other = uvw_value_int(0);
  uvw_set(var, other, NULL);
  uvw_value_unref(other);
  int rc;
  IN_UVW(rc = uvw_loop_close(&loop));
  cr_assert_eq(rc, 0);
  assert_no_violation();
  cr_assert_eq(p.done, 0, "a done callback never runs once its loop is gone");
  cr_assert(uvw_task_finished(t));
  cr_assert_null(uvw_task_context(t));
  cr_assert_eq(tu_released(), before + 1, "the task let go of its context");
  uvw_task_unref(t);
}

Test(deferred, a_done_callback_queued_when_the_loop_closes_is_dropped) {
  size_t before = tu_released();
  uvw_value_t *v = tu_counted_value();
  uvw_set(var, v, NULL);
  uvw_value_unref(v);
  probe_t p = {0, 0, NULL, NULL};
  uvw_task_t *t = spawn_probe(&p);
  uv_run(&loop, UV_RUN_NOWAIT); /* finished, its done callback queued */
  cr_assert(uvw_task_finished(t));
  uvw_value_t *other = uvw_value_int(0);
  uvw_set(var, other, NULL);
  uvw_value_unref(other);
  cr_assert_eq(uvw_loop_close(&loop), 0);
  cr_assert_eq(p.done, 0);
  cr_assert_null(uvw_task_context(t));
  cr_assert_eq(tu_released(), before + 1, "the queued entry let go of the task's context");
  uvw_task_unref(t);
}
