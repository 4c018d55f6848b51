/* The conformance routines (tests/conformance/README.md, "The routines every
 * worker hosts") for the C worker: a uvwool-worker plugin. Every other
 * language's worker hosts the same names with the same behaviour. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uvwool.h>

static uvw_var_t *request_id, *tenant, *counter, *value_var, *back, *phase;
static int cancelled_hangs;

/* The value bound to var (borrowed, valid while the context holds it), or
 * NULL when unbound. */
static uvw_value_t *bound(uvw_var_t *var) {
  uvw_value_t *v = NULL;
  if (uvw_get_or(var, NULL, &v) != 0) return NULL;
  return v;
}

static const char *bound_str(uvw_var_t *var) {
  uvw_value_t *v = bound(var);
  return v && uvw_value_kind(v) == UVW_VALUE_STRING ? uvw_value_as_string(v) : "";
}

static void set_owned(uvw_var_t *var, uvw_value_t *v, uvw_token_t **tok) {
  uvw_set(var, v, tok);
  uvw_value_unref(v);
}

static void answer_owned(uvw_call_t *call, uvw_value_t *v, int last) {
  if (last)
    uvw_call_return(call, v);
  else
    uvw_call_yield(call, v);
  uvw_value_unref(v);
}

static void raise_new(uvw_call_t *call, const char *type, int code, const char *message) {
  uvw_error_t *e = uvw_error_new(type, code, message);
  uvw_call_raise(call, e);
  uvw_error_unref(e);
}

static void echo(uvw_call_t *call, void *arg) {
  (void)arg;
  uvw_call_return(call, uvw_call_arg_count(call) ? uvw_call_arg(call, 0) : NULL);
}

static void reflect(uvw_call_t *call, void *arg) {
  (void)arg;
  uvw_value_t *v = bound(value_var);
  if (v == NULL) {
    answer_owned(call, uvw_value_cstring("<missing>"), 1);
    return;
  }
  uvw_set(back, v, NULL);
  uvw_call_return(call, v);
}

static void mutate(uvw_call_t *call, void *arg) {
  (void)arg;
  char buf[512];
  snprintf(buf, sizeof(buf), "%s+w", bound_str(tenant));
  set_owned(tenant, uvw_value_cstring(buf), NULL);
  uvw_value_t *n = bound(counter);
  set_owned(counter, uvw_value_int(n && uvw_value_kind(n) == UVW_VALUE_INT ? uvw_value_as_int(n) + 1 : 1), NULL);
  uvw_value_t *rid = bound(request_id);
  if (rid)
    uvw_call_return(call, rid);
  else
    answer_owned(call, uvw_value_cstring("<missing>"), 1);
}

/* conf.phases keeps its token across yields in the call's data. */
typedef struct {
  int nexts;
  uvw_token_t *token;
} phases_t;

static void phases_free(void *p) {
  phases_t *s = p;
  uvw_token_free(s->token);
  free(s);
}

static void phases(uvw_call_t *call, void *arg) {
  (void)arg;
  phases_t *s = uvw_call_data(call);
  if (s == NULL) {
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
      raise_new(call, "MemoryError", UVW_ENOMEM, "out of memory");
      return;
    }
    uvw_call_set_data(call, s, phases_free);
  }
  char buf[512];
  switch (uvw_call_step(call)) {
  case UVW_STEP_SEND: {
    uvw_value_t *sent = uvw_call_sent(call);
    snprintf(buf, sizeof(buf), "%s/%s", sent && uvw_value_kind(sent) == UVW_VALUE_STRING ? uvw_value_as_string(sent) : "",
             bound_str(phase));
    answer_owned(call, uvw_value_cstring(buf), 0);
    return;
  }
  case UVW_STEP_THROW:
    if (s->token) uvw_reset(phase, s->token);
    raise_new(call, "Error", 0, uvw_error_message(uvw_call_thrown(call)));
    return;
  case UVW_STEP_NEXT:
    break;
  }
  if (++s->nexts == 1) {
    set_owned(phase, uvw_value_cstring("streaming"), &s->token);
    answer_owned(call, uvw_value_int(1), 0);
    return;
  }
  uvw_reset(phase, s->token);
  answer_owned(call, uvw_value_cstring("done"), 1);
}

static void raise_after_set(uvw_call_t *call, void *arg) {
  (void)arg;
  char before[256];
  snprintf(before, sizeof(before), "%s", bound_str(tenant));
  set_owned(tenant, uvw_value_cstring("raised"), NULL);
  uvw_error_t *e = uvw_error_new("AppError", 0, "conf failure");
  uvw_error_add_field(e, "reason", "asked");
  uvw_error_add_field(e, "tenant", before);
  uvw_call_raise(call, e);
  uvw_error_unref(e);
}

/* conf.offload_plain / conf.offload_to_thread: read request_id on a pool
 * thread, the plain way (the guard trips) or through uvw_to_thread. */
typedef struct {
  uv_work_t req;
  uvw_call_t *call;
  uvw_value_t *seen;
  uvw_error_t *error;
} offload_t;

static void offload_read(uv_work_t *req) {
  offload_t *o = req->data;
  uvw_value_t *v = NULL;
  if (uvw_get_or(request_id, NULL, &v) != 0)
    o->error = uvw_error_ref(uvw_last_error());
  else
    o->seen = v ? uvw_value_ref(v) : uvw_value_cstring("<missing>");
}

static void offload_done(uv_work_t *req, int status) {
  offload_t *o = req->data;
  (void)status;
  if (o->error)
    uvw_call_raise(o->call, o->error);
  else
    uvw_call_return(o->call, o->seen);
  uvw_error_unref(o->error);
  uvw_value_unref(o->seen);
  free(o);
}

static void offload(uvw_call_t *call, int to_thread) {
  offload_t *o = calloc(1, sizeof(*o));
  if (o == NULL) {
    raise_new(call, "MemoryError", UVW_ENOMEM, "out of memory");
    return;
  }
  o->call = call;
  o->req.data = o;
  uv_loop_t *loop = uvw_call_loop(call);
  int rc = to_thread ? uvw_to_thread(loop, &o->req, offload_read, offload_done)
                     : uvw_queue_work(loop, &o->req, offload_read, offload_done);
  if (rc != 0) {
    free(o);
    uvw_call_raise(call, uvw_last_error());
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

static const uvw_opaque_ops_t no_codec = {"conf.no_codec", NULL};

static void bind_opaque(uvw_call_t *call, void *arg) {
  (void)arg;
  static int native_object;
  set_owned(back, uvw_value_opaque(&native_object, &no_codec), NULL);
  set_owned(tenant, uvw_value_cstring("after-opaque"), NULL);
  answer_owned(call, uvw_value_cstring("bound"), 1);
}

static void hang_cancelled(uvw_call_t *call, void *arg) {
  (void)arg;
  cancelled_hangs++;
  raise_new(call, "CancelledError", UVW_ECANCELED, "conf.hang was cancelled");
}

static void hang(uvw_call_t *call, void *arg) {
  (void)arg;
  uvw_call_on_cancel(call, hang_cancelled, NULL);
}

static void cancelled_count(uvw_call_t *call, void *arg) {
  (void)arg;
  answer_owned(call, uvw_value_int(cancelled_hangs), 1);
}

/* conf.die_after_one: the exit waits ~20 ms so the first answer is written. */
static uv_timer_t death; /* zeroed: not active until the first step */
static void die(uv_timer_t *t) {
  (void)t;
  exit(0);
}

static void die_after_one(uvw_call_t *call, void *arg) {
  (void)arg;
  if (uv_is_active((uv_handle_t *)&death)) return; /* a later step: no answer, the process ends */
  answer_owned(call, uvw_value_int(1), 0);
  uv_timer_init(uvw_call_loop(call), &death);
  uv_timer_start(&death, die, 20, 0);
}

/* conf.chain_id: the chain id of the context the routine runs in. */
static uvw_value_t *current_chain_id(void) {
  char id[33];
  int rc = uvw_context_chain_id(uvw_context_current(), id);
  return uvw_value_cstring(rc == 0 ? id : "<unarmed>");
}

static void chain_id(uvw_call_t *call, void *arg) {
  (void)arg;
  answer_owned(call, current_chain_id(), 1);
}

/* conf.hop(address, routine): dispatch `routine` to the worker at address
 * from this routine, then, in the reply's context (the second worker's
 * changes merged), append "+hop" to conf.tenant and answer with the second
 * worker's result: both hops' changes flow back to the caller. A connection
 * per hop, closed in the reply: a worker keeps no outgoing connection that
 * would hold its loop open at exit. */
typedef struct {
  uvw_call_t *call;
  uvw_conn_t *conn;
} hop_t;

static void hop_replied(uvw_dispatch_t *d, const uvw_reply_t *reply, void *arg) {
  (void)d;
  hop_t *h = arg;
  if (reply->status == 0 || reply->status == UVW_EREMOTE) {
    char buf[512];
    snprintf(buf, sizeof(buf), "%s+hop", bound_str(tenant));
    set_owned(tenant, uvw_value_cstring(buf), NULL);
  }
  if (reply->status == 0)
    uvw_call_return(h->call, reply->value);
  else
    uvw_call_raise(h->call, reply->error);
  uvw_conn_close(h->conn, NULL, NULL);
  free(h);
}

static void hop(uvw_call_t *call, void *arg) {
  (void)arg;
  uvw_value_t *address = uvw_call_arg_count(call) == 2 ? uvw_call_arg(call, 0) : NULL;
  uvw_value_t *routine = address ? uvw_call_arg(call, 1) : NULL;
  if (!address || uvw_value_kind(address) != UVW_VALUE_STRING || uvw_value_kind(routine) != UVW_VALUE_STRING) {
    raise_new(call, "ValueError", UVW_EINVAL, "conf.hop(address, routine) takes two strings");
    return;
  }
  hop_t *h = calloc(1, sizeof(*h));
  if (h == NULL) {
    raise_new(call, "MemoryError", UVW_ENOMEM, "out of memory");
    return;
  }
  h->call = call;
  if (uvw_conn_open(uvw_call_loop(call), uvw_value_as_string(address), &h->conn) != 0 ||
      uvw_conn_dispatch(h->conn, uvw_value_as_string(routine), NULL, 0, NULL, hop_replied, h, NULL) != 0) {
    uvw_call_raise(call, uvw_last_error());
    uvw_conn_close(h->conn, NULL, NULL);
    free(h);
  }
}

int uvwool_worker_init(uvw_worker_t *w);
int uvwool_worker_init(uvw_worker_t *w) {
  static const struct {
    const char *name;
    uvw_var_t **var;
  } vars[] = {{"request_id", &request_id}, {"tenant", &tenant}, {"counter", &counter},
              {"value", &value_var},       {"back", &back},     {"phase", &phase}};
  static const struct {
    const char *name;
    uvw_routine_cb fn;
    unsigned flags;
  } routines[] = {
      {"conf.echo", echo, 0},
      {"conf.reflect", reflect, 0},
      {"conf.mutate", mutate, 0},
      {"conf.phases", phases, UVW_ROUTINE_STREAM},
      {"conf.raise_after_set", raise_after_set, 0},
      {"conf.offload_plain", offload_plain, 0},
      {"conf.offload_to_thread", offload_to_thread, 0},
      {"conf.bind_opaque", bind_opaque, 0},
      {"conf.hang", hang, 0},
      {"conf.cancelled_count", cancelled_count, 0},
      {"conf.die_after_one", die_after_one, UVW_ROUTINE_STREAM},
      {"conf.chain_id", chain_id, 0},
      {"conf.hop", hop, 0},
  };
  for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
    if (uvw_var_declare("conf", vars[i].name, NULL, vars[i].var) != 0) return -1;
  for (size_t i = 0; i < sizeof(routines) / sizeof(routines[0]); i++)
    if (uvw_worker_register(w, routines[i].name, routines[i].fn, NULL, routines[i].flags) != 0) return -1;
  return 0;
}
