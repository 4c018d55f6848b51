/* Dispatch with the worker and the caller on two loop threads of one
 * process, for ThreadSanitizer (a plain main()): each side's per-thread
 * state, the routine's to_thread offload and plain work offload, and the
 * worker's close requested from another thread through an async handle.
 * Ends with "N passed, N failed". */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "uvwool.h"

#define ROUNDS 40

static uvw_var_t *var;
static char address[128];

/* ---- the worker thread --------------------------------------------------------- */

static uv_loop_t wloop;
static uv_async_t wstop;
static uvw_worker_t *worker;
static pthread_mutex_t ready_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready_cond = PTHREAD_COND_INITIALIZER;
static int ready, worker_close_rc = -1;

typedef struct {
  uv_work_t req;
  uvw_call_t *call;
  int rc;
  long seen;
  uvw_error_t *error; /* the pool thread's error (last_error is per thread) */
} job_t;

static void job_work(uv_work_t *req) {
  job_t *j = req->data;
  uvw_value_t *v = NULL;
  j->rc = uvw_get_or(var, NULL, &v);
  j->seen = j->rc == 0 && v ? (long)uvw_value_as_int(v) : -1;
  if (j->rc != 0) j->error = uvw_error_ref(uvw_last_error());
}

static void job_done(uv_work_t *req, int status) {
  job_t *j = req->data;
  (void)status;
  if (j->rc != 0) {
    uvw_call_raise(j->call, j->error);
    uvw_error_unref(j->error);
  } else {
    /* The routine's change, made on the loop thread after the offload. */
    uvw_value_t *v = uvw_value_int(j->seen + 1000);
    uvw_set(var, v, NULL);
    uvw_value_unref(v);
    uvw_value_t *r = uvw_value_int(j->seen);
    uvw_call_return(j->call, r);
    uvw_value_unref(r);
  }
  free(j);
}

static void offload(uvw_call_t *call, void *arg) {
  job_t *j = calloc(1, sizeof(*j));
  j->call = call;
  j->req.data = j;
  int rc = arg ? uvw_to_thread(uvw_call_loop(call), &j->req, job_work, job_done)
               : uvw_queue_work(uvw_call_loop(call), &j->req, job_work, job_done);
  if (rc != 0) {
    free(j);
    uvw_call_raise(call, NULL);
  }
}

static void worker_closed(void *arg) { (void)arg; }
static void stop_worker(uv_async_t *a) {
  uvw_worker_close(worker, worker_closed, NULL);
  uv_close((uv_handle_t *)a, NULL);
}

static void *worker_main(void *arg) {
  (void)arg;
  uv_loop_init(&wloop);
  uv_async_init(&wloop, &wstop, stop_worker);
  CHECK(uvw_worker_open(&wloop, &worker) == 0, "worker");
  CHECK(uvw_worker_register(worker, "to_thread", offload, (void *)1, 0) == 0, "register");
  CHECK(uvw_worker_register(worker, "plain", offload, NULL, 0) == 0, "register");
  CHECK(uvw_worker_listen(worker, address) == 0, "listen: %s", uvw_error_message(uvw_last_error()));
  pthread_mutex_lock(&ready_lock);
  ready = 1;
  pthread_cond_signal(&ready_cond);
  pthread_mutex_unlock(&ready_lock);
  uv_run(&wloop, UV_RUN_DEFAULT);
  /* Checked by main after the join: CHECK's counters are main's. */
  worker_close_rc = uvw_loop_close(&wloop);
  return NULL;
}

/* ---- the caller (main thread) ---------------------------------------------------- */

static uv_loop_t cloop;
static uvw_conn_t *conn;
static int round_no, good, contention;

static void dispatch_round(void);

static void on_reply(uvw_dispatch_t *d, const uvw_reply_t *r, void *arg) {
  (void)d;
  long sent = (long)(intptr_t)arg;
  if (round_no % 2 == 0) {
    CHECK(r->status == 0, "to_thread round %d: %s", round_no, r->error ? uvw_error_message(r->error) : "");
    if (r->status == 0) {
      uvw_value_t *v = NULL;
      uvw_get(var, &v);
      CHECK(uvw_value_as_int(r->value) == sent, "the pool thread saw the caller's value");
      CHECK(v && uvw_value_as_int(v) == sent + 1000, "the routine's change came back");
      good++;
    }
  } else {
    CHECK(r->status == UVW_EREMOTE && uvw_error_kind(r->error) == UVW_KIND_CHAIN_CONTENTION,
          "plain work round %d trips the guard", round_no);
    contention += r->status == UVW_EREMOTE;
  }
  if (++round_no < ROUNDS) dispatch_round();
}

static void dispatch_round(void) {
  uvw_context_t *ctx = uvw_context_new();
  uvw_context_enter(ctx);
  uvw_value_t *v = uvw_value_int(round_no);
  uvw_set(var, v, NULL);
  uvw_value_unref(v);
  int rc = uvw_conn_dispatch(conn, round_no % 2 == 0 ? "to_thread" : "plain", NULL, 0, NULL, on_reply,
                        (void *)(intptr_t)round_no, NULL);
  CHECK(rc == 0, "dispatch: %s", uvw_error_message(uvw_last_error()));
  uvw_context_exit(ctx);
  uvw_context_unref(ctx);
}

static void conn_closed(void *arg) { (void)arg; }

int main(void) {
  snprintf(address, sizeof(address), "pipe:/tmp/uvwool-dt-threads-%d.sock", (int)getpid());
  remove(address + 5);
  CHECK(uvw_var_declare("threads", "v", NULL, &var) == 0, "declare");
  pthread_t wt;
  pthread_create(&wt, NULL, worker_main, NULL);
  pthread_mutex_lock(&ready_lock);
  while (!ready) pthread_cond_wait(&ready_cond, &ready_lock);
  pthread_mutex_unlock(&ready_lock);

  uv_loop_init(&cloop);
  CHECK(uvw_conn_open(&cloop, address, &conn) == 0, "connect");
  dispatch_round();
  while (round_no < ROUNDS && uv_run(&cloop, UV_RUN_ONCE)) {
  }
  uvw_conn_close(conn, conn_closed, NULL);
  uv_run(&cloop, UV_RUN_DEFAULT);
  CHECK(uvw_loop_close(&cloop) == 0, "caller loop closes");
  uv_async_send(&wstop);
  pthread_join(wt, NULL);
  CHECK(worker_close_rc == 0, "worker loop closes (%d)", worker_close_rc);
  CHECK(round_no == ROUNDS, "all rounds ran (%d)", round_no);
  CHECK(good == ROUNDS / 2 && contention == ROUNDS / 2, "good %d contention %d", good, contention);
  return CHECK_SUMMARY();
}
