/* Routines the cross-process tests dispatch to a real uvwool-worker. Each
 * answers with what it saw, so the caller can assert on both sides. The
 * variables live in namespace "t"; "t.stub_only" is deliberately never
 * declared here unless `declare_and_get` is called (docs/testing.md row 34). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uvwool.h>

#include "dscript.h"

static uvw_var_t *request_id, *tenant, *counter, *opaque_var;
static int cancelled_count;

static uvw_value_t *str(const char *s) { return uvw_value_cstring(s); }

/* The string bound to var, or "-" when unbound. */
static const char *read_str(uvw_var_t *var) {
  uvw_value_t *v = NULL;
  if (uvw_get_or(var, NULL, &v) != 0 || v == NULL || uvw_value_kind(v) != UVW_VALUE_STRING) return "-";
  return uvw_value_as_string(v);
}

static void set_str(uvw_var_t *var, const char *s, uvw_token_t **tok) {
  uvw_value_t *v = str(s);
  uvw_set(var, v, tok);
  uvw_value_unref(v);
}

static void set_int(uvw_var_t *var, int64_t i) {
  uvw_value_t *v = uvw_value_int(i);
  uvw_set(var, v, NULL);
  uvw_value_unref(v);
}

static void reply_str(uvw_call_t *call, const char *s) {
  uvw_value_t *v = str(s);
  uvw_call_return(call, v);
  uvw_value_unref(v);
}

/* read_and_mutate(n): returns "saw:<request_id>", then sets request_id to
 * "<seen>+worker" and counter to n + 1. */
static void read_and_mutate(uvw_call_t *call, void *arg) {
  (void)arg;
  char buf[256];
  snprintf(buf, sizeof(buf), "saw:%s", read_str(request_id));
  char next[300];
  snprintf(next, sizeof(next), "%s+worker", read_str(request_id));
  set_str(request_id, next, NULL);
  uvw_value_t *n = uvw_call_arg_count(call) ? uvw_call_arg(call, 0) : NULL;
  set_int(counter, n && uvw_value_kind(n) == UVW_VALUE_INT ? uvw_value_as_int(n) + 1 : -1);
  reply_str(call, buf);
}

/* echo(v): returns v unchanged and touches nothing. */
static void echo(uvw_call_t *call, void *arg) {
  (void)arg;
  uvw_call_return(call, uvw_call_arg_count(call) ? uvw_call_arg(call, 0) : NULL);
}

/* raise_after_set: sets request_id to "set-before-raise", then raises a
 * foreign "AppError" with a field. */
static void raise_after_set(uvw_call_t *call, void *arg) {
  (void)arg;
  set_str(request_id, "set-before-raise", NULL);
  uvw_error_t *e = uvw_error_new("AppError", 0, "the routine was asked to fail");
  uvw_error_add_field(e, "reason", "asked to");
  uvw_call_raise(call, e);
  uvw_error_unref(e);
}

/* hang: never answers on its own; when the caller cancels or goes away it
 * is told, and raises, which ends the call (no leak at worker exit). */
static void hang_cancelled(uvw_call_t *call, void *arg) {
  (void)arg;
  cancelled_count++;
  uvw_error_t *e = uvw_error_new("CancelledError", UVW_ECANCELED, "hang was cancelled");
  uvw_call_raise(call, e);
  uvw_error_unref(e);
}

static void hang(uvw_call_t *call, void *arg) {
  (void)arg;
  uvw_call_on_cancel(call, hang_cancelled, NULL);
}

/* cancelled_count: how many `hang` calls were told of their cancellation. */
static void cancelled_count_routine(uvw_call_t *call, void *arg) {
  (void)arg;
  uvw_value_t *v = uvw_value_int(cancelled_count);
  uvw_call_return(call, v);
  uvw_value_unref(v);
}

/* ---- a streaming routine ---------------------------------------------------- */

typedef struct {
  int steps;
  uvw_token_t *tenant_token; /* set at step 1, reset at step 2: across a yield */
} stream_state_t;

static void stream_state_free(void *p) {
  stream_state_t *s = p;
  uvw_token_free(s->tenant_token);
  free(s);
}

/* counter_stream: step k (NEXT) yields "k:<request_id>:<tenant>" after
 * setting counter = k. Step 1 also sets tenant "stream-tenant" (token kept);
 * step 2 resets it with that token and yields "reset:ok" or "reset:<code>".
 * SEND v (an int) sets counter = v and yields v * 2. THROW answers
 * "caught:<message>" as the last Result. NEXT after step 5 returns "end". */
static void counter_stream(uvw_call_t *call, void *arg) {
  (void)arg;
  stream_state_t *s = uvw_call_data(call);
  if (s == NULL) {
    s = calloc(1, sizeof(*s));
    uvw_call_set_data(call, s, stream_state_free);
  }
  char buf[256];
  switch (uvw_call_step(call)) {
  case UVW_STEP_THROW:
    snprintf(buf, sizeof(buf), "caught:%s", uvw_error_message(uvw_call_thrown(call)));
    reply_str(call, buf);
    return;
  case UVW_STEP_SEND: {
    int64_t v = uvw_value_as_int(uvw_call_sent(call));
    set_int(counter, v);
    uvw_value_t *out = uvw_value_int(v * 2);
    uvw_call_yield(call, out);
    uvw_value_unref(out);
    return;
  }
  case UVW_STEP_NEXT:
    break;
  }
  s->steps++;
  if (s->steps > 5) {
    reply_str(call, "end");
    return;
  }
  set_int(counter, s->steps);
  if (s->steps == 1) {
    set_str(tenant, "stream-tenant", &s->tenant_token);
  } else if (s->steps == 2) {
    int rc = uvw_reset(tenant, s->tenant_token);
    snprintf(buf, sizeof(buf), "reset:%s", rc == 0 ? "ok" : uvw_err_name(rc));
    uvw_value_t *v = str(buf);
    uvw_call_yield(call, v);
    uvw_value_unref(v);
    return;
  }
  snprintf(buf, sizeof(buf), "%d:%s:%s", s->steps, read_str(request_id), read_str(tenant));
  uvw_value_t *v = str(buf);
  uvw_call_yield(call, v);
  uvw_value_unref(v);
}

/* ---- offloading (docs/testing.md row 35) ---------------------------------------------- */

typedef struct {
  uv_work_t req;
  uvw_call_t *call;
  int rc;
  uvw_error_t *error;
  char seen[128];
} offload_t;

static void offload_work(uv_work_t *req) {
  offload_t *o = req->data;
  uvw_value_t *v = NULL;
  o->rc = uvw_get_or(request_id, NULL, &v);
  if (o->rc != 0)
    o->error = uvw_error_ref(uvw_last_error());
  else
    snprintf(o->seen, sizeof(o->seen), "thread saw %s", v ? uvw_value_as_string(v) : "nothing");
}

static void offload_done(uv_work_t *req, int status) {
  offload_t *o = req->data;
  (void)status;
  if (o->rc != 0)
    uvw_call_raise(o->call, o->error);
  else
    reply_str(o->call, o->seen);
  uvw_error_unref(o->error);
  free(o);
}

static void offload(uvw_call_t *call, int to_thread) {
  offload_t *o = calloc(1, sizeof(*o));
  o->call = call;
  o->req.data = o;
  uv_loop_t *loop = uvw_call_loop(call);
  int rc = to_thread ? uvw_to_thread(loop, &o->req, offload_work, offload_done)
                     : uvw_queue_work(loop, &o->req, offload_work, offload_done);
  if (rc != 0) {
    free(o);
    uvw_call_raise(call, NULL);
  }
}

static void offload_plain(uvw_call_t *call, void *arg) {
  (void)arg;
  offload(call, 0);
}
static void offload_to_thread(uvw_call_t *call, void *arg) {
  (void)arg;
  offload(call, 1);
}

/* ---- continuation, timeout, stubs, serialization -------------------------- */

typedef struct {
  uv_timer_t timer;
  uvw_call_t *call;
} sleeper_t;

static void sleeper_closed(uv_handle_t *h) { free(h->data); }

/* In the timer callback: a copy of the dispatch's context. */
static void sleeper_fired(uv_timer_t *t) {
  sleeper_t *s = t->data;
  set_str(tenant, "set-after-sleep", NULL);
  reply_str(s->call, "slept");
  uv_close((uv_handle_t *)t, sleeper_closed);
}

/* sleep(ms): answers from a timer callback after ms. */
static void sleep_routine(uvw_call_t *call, void *arg) {
  (void)arg;
  sleeper_t *s = calloc(1, sizeof(*s));
  s->call = call;
  uv_timer_init(uvw_call_loop(call), &s->timer);
  s->timer.data = s;
  uvw_timer_start(&s->timer, sleeper_fired, (uint64_t)uvw_value_as_int(uvw_call_arg(call, 0)), 0);
}

/* timeout_seen: the dispatch timeout that travelled with the Task (ms), or
 * -1 when none came. */
static void timeout_seen(uvw_call_t *call, void *arg) {
  (void)arg;
  uint64_t ms;
  int given = uvw_call_dispatch_timeout(call, &ms);
  uvw_value_t *v = uvw_value_int(given ? (int64_t)ms : -1);
  uvw_call_return(call, v);
  uvw_value_unref(v);
}

/* timeout_seen_stream (stream): timeout_seen's answer at every step. */
static void timeout_seen_stream(uvw_call_t *call, void *arg) {
  (void)arg;
  if (uvw_call_step(call) == UVW_STEP_THROW) {
    uvw_call_return(call, NULL);
    return;
  }
  uint64_t ms;
  int given = uvw_call_dispatch_timeout(call, &ms);
  uvw_value_t *v = uvw_value_int(given ? (int64_t)ms : -1);
  uvw_call_yield(call, v);
  uvw_value_unref(v);
}

/* declare_and_get(ns, name): declares the variable here (taking over a stub
 * the caller's manifest created) and returns its value, or "-". */
static void declare_and_get(uvw_call_t *call, void *arg) {
  (void)arg;
  uvw_var_t *var = NULL;
  const char *ns = uvw_value_as_string(uvw_call_arg(call, 0)), *name = uvw_value_as_string(uvw_call_arg(call, 1));
  if (uvw_var_declare(ns, name, NULL, &var) != 0 && (var = uvw_var_find(ns, name)) == NULL) {
    uvw_call_raise(call, NULL);
    return;
  }
  uvw_value_t *v = NULL;
  uvw_get_or(var, NULL, &v);
  if (v)
    uvw_call_return(call, v);
  else
    reply_str(call, "-");
}

static const uvw_opaque_ops_t no_codec = {"t.no_codec", NULL};

/* bind_unserializable: binds t.opaque to a value no codec can encode and
 * sets request_id to "alongside"; returns the code of the answer. */
static void bind_unserializable(uvw_call_t *call, void *arg) {
  (void)arg;
  static int dummy;
  uvw_value_t *v = uvw_value_opaque(&dummy, &no_codec);
  uvw_set(opaque_var, v, NULL);
  uvw_value_unref(v);
  set_str(request_id, "alongside", NULL);
  reply_str(call, "bound");
}

/* whoami: this worker's pid (which worker of a pool answered). */
static void whoami(uvw_call_t *call, void *arg) {
  (void)arg;
  uvw_value_t *v = uvw_value_int((int64_t)getpid());
  uvw_call_return(call, v);
  uvw_value_unref(v);
}

/* hang_after_one (stream): step 1 sets tenant "from-step-1" and yields
 * "one"; step 2 answers only its cancellation (raising, which ends the
 * call), as open-ended work should: the tests kill the worker there or
 * cancel the step. */
static void hang_after_one(uvw_call_t *call, void *arg) {
  (void)arg;
  if (uvw_call_data(call) != NULL) {
    uvw_call_on_cancel(call, hang_cancelled, NULL);
    return;
  }
  uvw_call_set_data(call, call, NULL);
  set_str(tenant, "from-step-1", NULL);
  uvw_value_t *v = str("one");
  uvw_call_yield(call, v);
  uvw_value_unref(v);
}

/* A codec only the worker has: the caller cannot decode what it encodes. */
static int worker_codec_encode(const uvw_value_t *value, void *arg, uvw_value_t **out) {
  (void)value;
  (void)arg;
  *out = uvw_value_bytes("w", 1);
  return 0;
}
static const uvw_opaque_ops_t worker_codec = {"t.worker_codec", NULL};

/* bind_worker_codec: binds t.opaque to a value of the worker-only codec
 * and request_id to "alongside-codec". */
static void bind_worker_codec(uvw_call_t *call, void *arg) {
  (void)arg;
  static int dummy;
  uvw_value_t *v = uvw_value_opaque(&dummy, &worker_codec);
  uvw_set(opaque_var, v, NULL);
  uvw_value_unref(v);
  set_str(request_id, "alongside-codec", NULL);
  reply_str(call, "bound");
}

/* noop: the benchmarks' routine (one-shot and streaming). */
static void noop(uvw_call_t *call, void *arg) {
  (void)arg;
  uvw_call_return(call, NULL);
}
static void noop_stream(uvw_call_t *call, void *arg) {
  (void)arg;
  if (uvw_call_step(call) == UVW_STEP_THROW)
    uvw_call_return(call, NULL);
  else
    uvw_call_yield(call, NULL);
}

/* stub_count: how many stubs the worker holds while this step runs (the
 * hostile-peer tests watch stubs come and go). A stream yields it per step. */
static void stub_count(uvw_call_t *call, void *arg) {
  (void)arg;
  uvw_value_t *v = uvw_value_int((int64_t)uvw_wire_stub_count());
  uvw_call_return(call, v);
  uvw_value_unref(v);
}
static void stub_count_stream(uvw_call_t *call, void *arg) {
  (void)arg;
  uvw_value_t *v = uvw_value_int((int64_t)uvw_wire_stub_count());
  if (uvw_call_step(call) == UVW_STEP_THROW)
    uvw_call_return(call, v);
  else
    uvw_call_yield(call, v);
  uvw_value_unref(v);
}

/* return_worker_codec: returns a value of the worker-only codec, which the
 * caller cannot decode. */
static void return_worker_codec(uvw_call_t *call, void *arg) {
  (void)arg;
  static int dummy;
  uvw_value_t *v = uvw_value_opaque(&dummy, &worker_codec);
  uvw_call_return(call, v);
  uvw_value_unref(v);
}

/* strict_flood(limit, k): shrinks this worker's wire size limit to limit
 * bytes, binds k variables (t.flood0 ...) to values no codec can encode and
 * returns: in strict mode the answer fails with one error aggregating k
 * failures, bigger than the limit. */
static void strict_flood(uvw_call_t *call, void *arg) {
  (void)arg;
  static int dummy;
  uvw_wire_set_max_size((size_t)uvw_value_as_int(uvw_call_arg(call, 0)));
  int64_t k = uvw_value_as_int(uvw_call_arg(call, 1));
  for (int64_t i = 0; i < k; i++) {
    char name[32];
    snprintf(name, sizeof(name), "flood%lld", (long long)i);
    uvw_var_t *var = uvw_var_find("t", name);
    if (var == NULL) uvw_var_declare("t", name, NULL, &var);
    uvw_value_t *v = uvw_value_opaque(&dummy, &no_codec);
    uvw_set(var, v, NULL);
    uvw_value_unref(v);
  }
  reply_str(call, "flooded");
}

/* ---- delta manifests' differential test (test_dispatch_delta.c) ---------------------- */

/* Answer "<digest of the context as the routine found it>|<code of running
 * the script>" after running the script (dscript.h) in it. */
static void answer_script(uvw_call_t *call, const char *script, int last) {
  char buf[4096];
  dscript_digest(NULL, buf, sizeof(buf) - 16);
  size_t k = strlen(buf);
  snprintf(buf + k, sizeof(buf) - k, "|%d", dscript_run(script ? script : ""));
  uvw_value_t *v = str(buf);
  if (last)
    uvw_call_return(call, v);
  else
    uvw_call_yield(call, v);
  uvw_value_unref(v);
}

/* delta_script(script): one step of the scenario. */
static void delta_script(uvw_call_t *call, void *arg) {
  (void)arg;
  answer_script(call, uvw_value_as_string(uvw_call_arg(call, 0)), 1);
}

/* delta_script_stream: each SEND carries a script (NEXT: an empty one); a
 * THROW (the caller closing the stream) ends it. */
static void delta_script_stream(uvw_call_t *call, void *arg) {
  (void)arg;
  if (uvw_call_step(call) == UVW_STEP_THROW)
    reply_str(call, "end");
  else
    answer_script(call, uvw_call_step(call) == UVW_STEP_SEND ? uvw_value_as_string(uvw_call_sent(call)) : "", 0);
}

int uvwool_worker_init(uvw_worker_t *w);
int uvwool_worker_init(uvw_worker_t *w) {
  int rc = 0;
  rc |= uvw_var_declare("t", "request_id", NULL, &request_id);
  rc |= uvw_var_declare("t", "tenant", NULL, &tenant);
  rc |= uvw_var_declare("t", "counter", NULL, &counter);
  rc |= uvw_var_declare("t", "opaque", NULL, &opaque_var);
  static const struct {
    const char *name;
    uvw_routine_cb fn;
    unsigned flags;
  } table[] = {
      {"read_and_mutate", read_and_mutate, 0},
      {"echo", echo, 0},
      {"raise_after_set", raise_after_set, 0},
      {"hang", hang, 0},
      {"cancelled_count", cancelled_count_routine, 0},
      {"counter_stream", counter_stream, UVW_ROUTINE_STREAM},
      {"offload_plain", offload_plain, 0},
      {"offload_to_thread", offload_to_thread, 0},
      {"sleep", sleep_routine, 0},
      {"timeout_seen", timeout_seen, 0},
      {"timeout_seen_stream", timeout_seen_stream, UVW_ROUTINE_STREAM},
      {"declare_and_get", declare_and_get, 0},
      {"bind_unserializable", bind_unserializable, 0},
      {"whoami", whoami, 0},
      {"hang_after_one", hang_after_one, UVW_ROUTINE_STREAM},
      {"bind_worker_codec", bind_worker_codec, 0},
      {"noop", noop, 0},
      {"noop_stream", noop_stream, UVW_ROUTINE_STREAM},
      {"stub_count", stub_count, 0},
      {"stub_count_stream", stub_count_stream, UVW_ROUTINE_STREAM},
      {"strict_flood", strict_flood, 0},
      {"return_worker_codec", return_worker_codec, 0},
      {"delta_script", delta_script, 0},
      {"delta_script_stream", delta_script_stream, UVW_ROUTINE_STREAM},
  };
  if (rc == 0) rc = uvw_codec_register("t.worker_codec", worker_codec_encode, NULL, NULL);
  for (size_t i = 0; rc == 0 && i < sizeof(table) / sizeof(table[0]); i++)
    rc = uvw_worker_register(w, table[i].name, table[i].fn, NULL, table[i].flags);
  return rc ? -1 : 0;
}
