/* The routines the main demo's worker serves (loaded by uvwool-worker).
 * Each returns a line saying what it saw, so the caller can print the
 * worker's view next to its own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uvwool.h>

static uvw_var_t *request_id, *tenant, *deadline, *audit, *progress;

static const char *str_of(uvw_var_t *var) {
  uvw_value_t *v = NULL;
  return uvw_get_or(var, NULL, &v) == 0 && v && uvw_value_kind(v) == UVW_VALUE_STRING ? uvw_value_as_string(v)
                                                                                      : "(unbound)";
}

/* Milliseconds left until the caller's deadline (an absolute wall-clock time
 * in ms: both processes share the clock). */
static long ms_left(void) {
  uvw_value_t *v = NULL;
  if (uvw_get_or(deadline, NULL, &v) != 0 || v == NULL) return -1;
  uv_timeval64_t now;
  uv_gettimeofday(&now);
  return (long)(uvw_value_as_int(v) - (now.tv_sec * 1000 + now.tv_usec / 1000));
}

static void set_str(uvw_var_t *var, const char *s) {
  uvw_value_t *v = uvw_value_cstring(s);
  uvw_set(var, v, NULL);
  uvw_value_unref(v);
}

static void answer(uvw_call_t *call, const char *line, int last) {
  uvw_value_t *v = uvw_value_cstring(line);
  if (last)
    uvw_call_return(call, v);
  else
    uvw_call_yield(call, v);
  uvw_value_unref(v);
}

/* quote(sku): prices an item for the caller's tenant and leaves an audit
 * note in the context for the caller. */
static void quote(uvw_call_t *call, void *arg) {
  (void)arg;
  char line[512], note[128];
  snprintf(line, sizeof(line), "quote(%s) saw request_id=%s tenant=%s, %ld ms left before the deadline",
           uvw_value_as_string(uvw_call_arg(call, 0)), str_of(request_id), str_of(tenant), ms_left());
  snprintf(note, sizeof(note), "priced 42.50 by worker pid %d", (int)getpid());
  set_str(audit, note);
  answer(call, line, 1);
}

/* export_report (streaming): each NEXT reports progress, a SEND changes the
 * report's format; the caller's changes between steps are visible. */
static void export_report(uvw_call_t *call, void *arg) {
  (void)arg;
  intptr_t step = (intptr_t)uvw_call_data(call) + 1;
  uvw_call_set_data(call, (void *)step, NULL);
  char line[512], pct[16];
  snprintf(pct, sizeof(pct), "%d%%", (int)(step * 25));
  set_str(progress, pct);
  if (uvw_call_step(call) == UVW_STEP_SEND)
    snprintf(line, sizeof(line), "step %d: received \"%s\", switching format; progress=%s", (int)step,
             uvw_value_as_string(uvw_call_sent(call)), pct);
  else
    snprintf(line, sizeof(line), "step %d: request_id=%s audit=%s; progress=%s", (int)step, str_of(request_id),
             str_of(audit), pct);
  answer(call, line, step == 4);
}

/* ---- the same work offloaded two ways --------------------------------------- */

typedef struct {
  uv_work_t req;
  uvw_call_t *call;
  int rc;
  uvw_error_t *error;
  char seen[256];
} job_t;

static void thumbnail(uv_work_t *req) {
  job_t *j = req->data;
  uvw_value_t *v = NULL;
  /* Touches the dispatch's context from a pool thread. */
  j->rc = uvw_get_or(tenant, NULL, &v);
  if (j->rc != 0)
    j->error = uvw_error_ref(uvw_last_error());
  else
    snprintf(j->seen, sizeof(j->seen), "thumbnail made on a pool thread for tenant=%s",
             v ? uvw_value_as_string(v) : "(unbound)");
}

static void thumbnail_done(uv_work_t *req, int status) {
  job_t *j = req->data;
  (void)status;
  if (j->rc != 0)
    uvw_call_raise(j->call, j->error);
  else
    answer(j->call, j->seen, 1);
  uvw_error_unref(j->error);
  free(j);
}

static void offload(uvw_call_t *call, int right_way) {
  job_t *j = calloc(1, sizeof(*j));
  j->call = call;
  j->req.data = j;
  uv_loop_t *loop = uvw_call_loop(call);
  /* uvw_queue_work hands the pool thread the caller's live context: its
   * chain is owned by the loop thread, so touching it there is contention.
   * uvw_to_thread hands over a detached fork, which the thread owns. */
  int rc = right_way ? uvw_to_thread(loop, &j->req, thumbnail, thumbnail_done)
                     : uvw_queue_work(loop, &j->req, thumbnail, thumbnail_done);
  if (rc != 0) {
    free(j);
    uvw_call_raise(call, NULL);
  }
}

static void thumbnail_wrong(uvw_call_t *call, void *arg) {
  (void)arg;
  offload(call, 0);
}
static void thumbnail_right(uvw_call_t *call, void *arg) {
  (void)arg;
  offload(call, 1);
}

int uvwool_worker_init(uvw_worker_t *w);
int uvwool_worker_init(uvw_worker_t *w) {
  if (uvw_var_declare("demo", "request_id", NULL, &request_id) || uvw_var_declare("demo", "tenant", NULL, &tenant) ||
      uvw_var_declare("demo", "deadline", NULL, &deadline) || uvw_var_declare("demo", "audit", NULL, &audit) ||
      uvw_var_declare("demo", "progress", NULL, &progress))
    return -1;
  if (uvw_worker_register(w, "quote", quote, NULL, 0) ||
      uvw_worker_register(w, "export_report", export_report, NULL, UVW_ROUTINE_STREAM) ||
      uvw_worker_register(w, "thumbnail_wrong", thumbnail_wrong, NULL, 0) ||
      uvw_worker_register(w, "thumbnail_right", thumbnail_right, NULL, 0))
    return -1;
  return 0;
}
