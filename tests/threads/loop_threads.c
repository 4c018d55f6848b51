/* Thread edges of the loop layer under ThreadSanitizer (a plain main()):
 * thread-safe call-soon from several threads, plain work and to_thread
 * offloads, uvw_thread_create. Ends with "N passed, N failed". */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "uvwool.h"
#include "uvwool/loop.h"


#define SENDERS 4
#define PER_SENDER 300
#define JOBS 64

static uv_loop_t loop;
static uvw_var_t *var;
static int ts_seen_own[SENDERS], ts_runs;

static void set_int(long v) {
  uvw_value_t *val = uvw_value_int(v);
  uvw_set(var, val, NULL);
  uvw_value_unref(val);
}

/* Each sender thread binds its own fork's value and sends: the callback on
 * the loop runs in a copy of the sender's context, which is armed by the
 * sender thread: reading there is contention, so count those instead. */
static void ts_cb(void *arg) {
  long sender = (long)(intptr_t)arg;
  uvw_value_t *out;
  if (uvw_get(var, &out) == UVW_ECONTENTION) ts_seen_own[sender]++;
  if (++ts_runs == SENDERS * PER_SENDER) uv_stop(&loop);
}

static void *sender(void *arg) {
  set_int((long)(intptr_t)arg);
  for (int i = 0; i < PER_SENDER; i++) uvw_loop_call_soon_threadsafe(&loop, ts_cb, arg);
  return NULL;
}

static void give_up(uv_timer_t *t) { uv_stop(t->loop); }

typedef struct {
  uv_work_t req;
  int fork;
  int rc;
  long seen;
} job_t;
static int jobs_done, job_rc_ok;

static void job_work(uv_work_t *req) {
  job_t *j = req->data;
  uvw_value_t *out = NULL;
  j->rc = uvw_get(var, &out);
  j->seen = out ? (long)uvw_value_as_int(out) : -1;
  if (j->fork) set_int(j->seen + 1); /* stays in the worker's fork */
}
static void job_after(uv_work_t *req, int status) {
  job_t *j = req->data;
  uvw_value_t *out = NULL;
  int ok = status == 0 && uvw_get(var, &out) == 0 && uvw_value_as_int(out) == 7;
  ok = ok && (j->fork ? (j->rc == 0 && j->seen == 7) : j->rc == UVW_ECONTENTION);
  job_rc_ok += ok;
  jobs_done++;
}

static long thread_seen[4];
static void thread_body(void *arg) {
  uvw_value_t *out = NULL;
  long *slot = arg;
  *slot = uvw_get(var, &out) == 0 ? (long)uvw_value_as_int(out) : -1;
}

int main(void) {
  uv_loop_init(&loop);
  uvw_loop_attach(&loop);
  uvw_var_declare("threads", "loopvar", NULL, &var);
  set_int(7);

  pthread_t th[SENDERS];
  for (long i = 0; i < SENDERS; i++) pthread_create(&th[i], NULL, sender, (void *)(intptr_t)i);
  uv_timer_t stopper;
  uv_timer_init(&loop, &stopper);
  uv_timer_start(&stopper, give_up, 10000, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  for (int i = 0; i < SENDERS; i++) pthread_join(th[i], NULL);
  uv_run(&loop, UV_RUN_NOWAIT); /* anything sent after the stop */
  CHECK(ts_runs == SENDERS * PER_SENDER, "thread-safe callbacks ran %d times", ts_runs);
  for (int i = 0; i < SENDERS; i++)
    CHECK(ts_seen_own[i] == PER_SENDER, "sender %d: %d of its callbacks ran in its armed context", i,
          ts_seen_own[i]);

  static job_t jobs[JOBS];
  for (int i = 0; i < JOBS; i++) {
    jobs[i].req.data = &jobs[i];
    jobs[i].fork = i % 2;
    if (jobs[i].fork)
      uvw_to_thread(&loop, &jobs[i].req, job_work, job_after);
    else
      uvw_queue_work(&loop, &jobs[i].req, job_work, job_after);
  }
  uv_timer_stop(&stopper);
  uv_close((uv_handle_t *)&stopper, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(jobs_done == JOBS, "%d jobs completed", jobs_done);
  CHECK(job_rc_ok == JOBS, "%d jobs saw what they should", job_rc_ok);

  uv_thread_t t[4];
  for (int i = 0; i < 4; i++) uvw_thread_create(&t[i], thread_body, &thread_seen[i]);
  for (int i = 0; i < 4; i++) uv_thread_join(&t[i]);
  for (int i = 0; i < 4; i++) CHECK(thread_seen[i] == 7, "thread %d saw %ld", i, thread_seen[i]);

  CHECK(uvw_loop_close(&loop) == 0, "loop closed cleanly");
  return CHECK_SUMMARY();
}
