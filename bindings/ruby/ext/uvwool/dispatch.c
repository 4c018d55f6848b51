/* Uvwool::Connection and Uvwool::Pool: dispatch to a uvwool-worker from Ruby
 * (docs/dispatch.md), one-shot and streaming, with apply-back into the
 * calling fiber's context.
 *
 * Each Connection (or Pool) owns a private libuv loop. A call blocks the
 * calling fiber (and so its thread) while that loop runs without the GVL,
 * until the reply came: other Ruby threads run meanwhile. Thread#raise,
 * Thread#kill and signals interrupt the wait: the dispatch is cancelled
 * (the worker is told), its reply drained, and the interrupt raised.
 *
 * Apply-back: the core runs the reply callback in the context captured at
 * the dispatch, with the worker's manifest merged into it, and leaves the
 * caller's own context alone (the rule of every callback). A Ruby caller
 * has no continuation but the code after the call, so the callback encodes
 * that merged capture's manifest (its warnings muted: the dispatch itself
 * already reported what cannot cross the wire), and once the loop returned
 * the binding mounts it into the current context, the calling fiber's:
 * the routine's changes are seen there and in no other fiber. A failed
 * dispatch merges nothing and so mounts nothing. */
#include <stdatomic.h>
#include <stdlib.h>

#include <ruby/thread.h>

#include "uvwool_ruby.h"

typedef struct rstream_s rstream_t;

typedef struct {
  uv_loop_t loop;
  uv_async_t wake; /* the unblocking function's way in */
  uvw_conn_t *conn; /* one of conn, pool */
  uvw_pool_t *pool;
  int open, closed, busy;
  atomic_int interrupted;
  rstream_t *streams; /* open streams, closed with the connection */
} rconn_t;

/* What one dispatch or stream step came back with, filled by on_reply
 * (without the GVL: no Ruby objects). */
typedef struct {
  int decided, status, done;
  uvw_value_t *value;     /* status 0 */
  uvw_error_t *error;     /* status != 0 */
  int merged;             /* the capture holds the worker's manifest */
  void *manifest;         /* its encoding (NULL: unarmed) */
  size_t manifest_len;
  uvw_error_t *apply_error; /* encoding the capture failed */
  int apply_status;
} outcome_t;

struct rstream_s {
  rconn_t *c; /* NULL once the connection closed */
  VALUE conn_obj;
  uvw_dispatch_t *d; /* NULL once ended */
  VALUE result;      /* the routine's return value, for StopIteration#result */
  int ended, conn_closed;
  rstream_t *prev, *next;
  outcome_t o;
};

static VALUE cConnection, cPool, cStream;
static ID id_result;

/* ---- the reply -------------------------------------------------------------- */

static void on_reply(uvw_dispatch_t *d, const uvw_reply_t *reply, void *arg) {
  (void)d;
  outcome_t *o = arg;
  o->decided = 1;
  o->status = reply->status;
  o->done = reply->done;
  if (reply->status == 0)
    o->value = reply->value ? uvw_value_ref(reply->value) : NULL;
  else
    o->error = reply->error ? uvw_error_ref(reply->error) : NULL;
  if (reply->status != 0 && reply->status != UVW_EREMOTE) return; /* nothing merged */
  o->merged = 1;
  uvwr_warnings_mute(1);
  int rc = uvw_manifest_encode(NULL, &o->manifest, &o->manifest_len);
  uvwr_warnings_mute(0);
  if (rc < 0) {
    o->apply_status = rc;
    o->apply_error = uvw_error_ref(uvw_last_error());
  }
}

static void outcome_clear(outcome_t *o) {
  uvw_value_unref(o->value);
  uvw_error_unref(o->error);
  uvw_error_unref(o->apply_error);
  uvw_free(o->manifest);
  memset(o, 0, sizeof(*o));
}

/* ---- running the loop until the reply came ------------------------------------ */

static void on_wake(uv_async_t *a) { (void)a; }

struct wait_args {
  rconn_t *c;
  outcome_t *o;
  int dry;
};

static void *wait_nogvl(void *p) {
  struct wait_args *w = p;
  while (!w->o->decided && !atomic_load(&w->c->interrupted))
    if (uv_run(&w->c->loop, UV_RUN_ONCE) == 0 && !w->o->decided) {
      w->dry = 1; /* nothing left to wait for: cannot happen with a dispatch pending */
      break;
    }
  return NULL;
}

/* Async-signal-safe (UVWR_NOGVL_LOOP): an atomic store and uv_async_send. */
static void wait_ubf(void *p) {
  struct wait_args *w = p;
  atomic_store(&w->c->interrupted, 1);
  uv_async_send(&w->c->wake); /* thread-safe */
}

static VALUE check_ints(VALUE unused) {
  (void)unused;
  rb_thread_check_ints();
  return Qnil;
}

/* Wait for o, d being the dispatch it belongs to. Leaving without the
 * reply (an interrupt that raises) cancels d and drains its callback
 * first: a callback must never write into a frame that is gone. */
static void wait_reply(rconn_t *c, uvw_dispatch_t *d, outcome_t *o) {
  struct wait_args w = {c, o, 0};
  int state = 0;
  c->busy = 1;
  while (!o->decided && !w.dry && !state) {
    atomic_store(&c->interrupted, 0);
    /* No pending interrupt is raised inside (that would skip the cancel
     * below); with one pending it returns at once, so they are handled
     * here (a postponed job, a signal, Thread#raise). */
    rb_nogvl(wait_nogvl, &w, wait_ubf, &w, UVWR_NOGVL_LOOP);
    if (!o->decided) rb_protect(check_ints, Qnil, &state);
  }
  c->busy = 0;
  if (o->decided) return;
  uvw_dispatch_cancel(d);
  while (!o->decided && uv_run(&c->loop, UV_RUN_ONCE)) {
  }
  outcome_clear(o);
  if (state) rb_jump_tag(state);
  rb_raise(rb_eRuntimeError, "uvwool: the loop stopped before the worker answered");
}

/* ---- the outcome into Ruby ------------------------------------------------------ */

/* Mount the merged capture into the current context (the calling fiber's). */
static int apply_back(outcome_t *o) {
  if (o->apply_error) return o->apply_status;
  if (!o->merged || o->manifest == NULL) return 0;
  uvw_manifest_t *m = NULL;
  int rc = uvw_manifest_decode(o->manifest, o->manifest_len, &m);
  if (rc == 0) rc = uvw_manifest_mount(m);
  uvw_manifest_free(m);
  return rc;
}

static VALUE convert(VALUE arg) { return uvwr_from_value((const uvw_value_t *)arg); }

/* The value, or the exception to raise (Qundef in *value then). Clears o. */
static VALUE outcome_exception(outcome_t *o, VALUE *value) {
  VALUE exc = Qnil;
  *value = Qundef;
  int rc = apply_back(o);
  if (rc < 0) {
    exc = uvwr_error_new(o->apply_error ? o->apply_error : uvw_last_error(), rc);
  } else if (o->status != 0) {
    /* A remote error keeps its own code when it has one. */
    int code = o->error && uvw_error_code(o->error) ? uvw_error_code(o->error) : o->status;
    exc = uvwr_error_new(o->error, code);
    rb_ivar_set(exc, rb_intern("@status"), rb_usascii_str_new_cstr(uvw_err_name(o->status)));
  } else {
    int state = 0;
    *value = rb_protect(convert, (VALUE)o->value, &state);
    if (state) {
      exc = rb_errinfo();
      rb_set_errinfo(Qnil);
      *value = Qundef;
    }
  }
  outcome_clear(o);
  return exc;
}

static VALUE outcome_value(outcome_t *o) {
  VALUE value;
  VALUE exc = outcome_exception(o, &value);
  uvwr_warnings_flush();
  if (value == Qundef) rb_exc_raise(exc);
  return value;
}

/* ---- Connection / Pool objects ------------------------------------------------- */

static void stream_detach(rstream_t *s);

static void on_closed(void *arg) { ((rconn_t *)arg)->closed = 1; }

/* Close streams, connection and loop. No Ruby: also run from the GC. */
static void conn_shutdown(rconn_t *c) {
  if (!c->open) return;
  c->open = 0;
  for (rstream_t *s; (s = c->streams) != NULL;) {
    stream_detach(s);
    s->conn_closed = 1;
  }
  if (c->pool)
    uvw_pool_close(c->pool, on_closed, c);
  else
    uvw_conn_close(c->conn, on_closed, c);
  while (!c->closed && uv_run(&c->loop, UV_RUN_ONCE)) {
  }
  uv_close((uv_handle_t *)&c->wake, NULL);
  uvw_loop_close(&c->loop);
}

static void conn_free(void *p) {
  conn_shutdown(p);
  xfree(p);
}

static const rb_data_type_t conn_type = {
    .wrap_struct_name = "Uvwool::Connection", .function = {.dfree = conn_free}, .flags = RUBY_TYPED_FREE_IMMEDIATELY};

static VALUE conn_alloc(VALUE klass) {
  rconn_t *c;
  return TypedData_Make_Struct(klass, rconn_t, &conn_type, c);
}

static rconn_t *conn_of(VALUE self) {
  rconn_t *c = rb_check_typeddata(self, &conn_type);
  if (!c->open) rb_raise(rb_eIOError, "uvwool: the connection is closed");
  if (c->busy) rb_raise(rb_eThreadError, "uvwool: the connection is waiting for a reply in another thread or fiber");
  return c;
}

static void loop_open(rconn_t *c) {
  int rc = uv_loop_init(&c->loop);
  if (rc < 0) rb_raise(rb_eRuntimeError, "uvwool: uv_loop_init: %s", uv_strerror(rc));
  uv_async_init(&c->loop, &c->wake, on_wake);
  uv_unref((uv_handle_t *)&c->wake); /* keeps nothing running */
}

static void loop_abandon(rconn_t *c) {
  uv_close((uv_handle_t *)&c->wake, NULL);
  uvw_loop_close(&c->loop);
}

/* The end of Connection/Pool#initialize: rc is the open's result. */
static void opened(rconn_t *c, int rc) {
  if (rc < 0) {
    VALUE exc = uvwr_error_new(uvw_last_error(), rc);
    loop_abandon(c);
    rb_exc_raise(exc);
  }
  c->open = 1;
}

/* Connection#initialize(address, timeout_ms): uvw_conn_open, which
 * connects from the loop: a worker that is not there fails the first
 * dispatch (UVW_ECONNRESET). */
static VALUE conn_init(VALUE self, VALUE address, VALUE timeout) {
  rconn_t *c = rb_check_typeddata(self, &conn_type);
  const char *addr = StringValueCStr(address);
  if (c->open) rb_raise(rb_eTypeError, "uvwool: Connection already initialized");
  loop_open(c);
  opened(c, uvw_conn_open(&c->loop, addr, &c->conn));
  if (!NIL_P(timeout)) uvw_conn_set_dispatch_timeout(c->conn, NUM2ULL(timeout));
  return self;
}

/* Pool#initialize(addresses, timeout_ms). */
static VALUE pool_init(VALUE self, VALUE addresses, VALUE timeout) {
  rconn_t *c = rb_check_typeddata(self, &conn_type);
  Check_Type(addresses, T_ARRAY);
  long n = RARRAY_LEN(addresses);
  if (n == 0) rb_raise(rb_eArgError, "uvwool: a pool needs at least one address");
  if (c->open) rb_raise(rb_eTypeError, "uvwool: Pool already initialized");
  VALUE buf;
  const char **addrs = ALLOCV_N(const char *, buf, n);
  for (long i = 0; i < n; i++) {
    VALUE a = RARRAY_AREF(addresses, i);
    addrs[i] = StringValueCStr(a);
  }
  loop_open(c);
  int rc = uvw_pool_open(&c->loop, addrs, (size_t)n, &c->pool);
  ALLOCV_END(buf);
  RB_GC_GUARD(addresses);
  opened(c, rc);
  if (!NIL_P(timeout)) uvw_pool_set_dispatch_timeout(c->pool, NUM2ULL(timeout));
  return self;
}

static uvw_conn_t *next_conn(rconn_t *c) {
  if (!c->pool) return c->conn;
  uvw_conn_t *conn = uvw_pool_next(c->pool);
  if (conn == NULL) uvwr_raise(UVW_ECONNRESET);
  return conn;
}

static VALUE conn_close(VALUE self) {
  rconn_t *c = rb_check_typeddata(self, &conn_type);
  if (c->busy) rb_raise(rb_eThreadError, "uvwool: the connection is waiting for a reply in another thread or fiber");
  conn_shutdown(c);
  return Qnil;
}

static VALUE conn_closed_p(VALUE self) {
  return ((rconn_t *)rb_check_typeddata(self, &conn_type))->open ? Qfalse : Qtrue;
}

/* Connection#dead?: the connection was lost (what the last loop run saw). */
static VALUE conn_dead_p(VALUE self) {
  rconn_t *c = rb_check_typeddata(self, &conn_type);
  return !c->open || (c->conn && uvw_conn_is_dead(c->conn)) ? Qtrue : Qfalse;
}

/* ---- arguments -------------------------------------------------------------------- */

typedef struct {
  VALUE *argv;
  uvw_value_t **vals;
  int argc, made;
} args_t;

static VALUE args_convert(VALUE p) {
  args_t *a = (args_t *)p;
  for (; a->made < a->argc; a->made++) a->vals[a->made] = uvwr_to_value(a->argv[a->made]);
  return Qnil;
}

static void args_free(args_t *a) {
  for (int i = 0; i < a->made; i++) uvw_value_unref(a->vals[i]);
}

/* Convert argv into a->vals; a value that cannot be converted raises with
 * nothing held. */
static void args_make(args_t *a, int argc, VALUE *argv, uvw_value_t **vals) {
  *a = (args_t){argv, vals, argc, 0};
  int state = 0;
  rb_protect(args_convert, (VALUE)a, &state);
  if (state) {
    args_free(a);
    rb_jump_tag(state);
  }
}

static const char *routine_name(int argc, VALUE *argv) {
  if (argc < 1) rb_raise(rb_eArgError, "uvwool: the routine name is missing");
  return StringValueCStr(argv[0]);
}

/* ---- one-shot ------------------------------------------------------------------------ */

/* dispatch(routine, *args) -> the routine's value. */
static VALUE conn_dispatch(int argc, VALUE *argv, VALUE self) {
  rconn_t *c = conn_of(self);
  const char *routine = routine_name(argc, argv);
  args_t a;
  VALUE buf;
  uvw_value_t **vals = ALLOCV_N(uvw_value_t *, buf, argc);
  args_make(&a, argc - 1, argv + 1, vals);
  outcome_t o = {0};
  uvw_dispatch_t *d = NULL;
  int rc = uvw_conn_dispatch(next_conn(c), routine, vals, (size_t)a.argc, NULL, on_reply, &o, &d);
  args_free(&a);
  ALLOCV_END(buf);
  if (rc < 0) uvwr_raise_flushed(rc);
  wait_reply(c, d, &o);
  return outcome_value(&o);
}

/* ---- streams --------------------------------------------------------------------------- */

/* Close the dispatch (no Ruby): when the stream ended, was collected or its
 * connection closed. */
static void stream_detach(rstream_t *s) {
  if (s->c == NULL) return;
  if (s->prev)
    s->prev->next = s->next;
  else
    s->c->streams = s->next;
  if (s->next) s->next->prev = s->prev;
  if (s->d) uvw_dispatch_close(s->d);
  s->d = NULL;
  s->c = NULL;
  s->ended = 1;
}

static void stream_mark(void *p) {
  rstream_t *s = p;
  rb_gc_mark(s->conn_obj);
  rb_gc_mark(s->result);
}

static void stream_free(void *p) {
  rstream_t *s = p;
  stream_detach(s);
  outcome_clear(&s->o);
  xfree(s);
}

static const rb_data_type_t stream_type = {
    .wrap_struct_name = "Uvwool::Stream", .function = {.dmark = stream_mark, .dfree = stream_free}};

/* stream(routine, *args) -> a Uvwool::Stream (the Task is sent now). */
static VALUE conn_stream(int argc, VALUE *argv, VALUE self) {
  rconn_t *c = conn_of(self);
  const char *routine = routine_name(argc, argv);
  rstream_t *s;
  VALUE obj = TypedData_Make_Struct(cStream, rstream_t, &stream_type, s);
  s->conn_obj = self;
  s->result = Qnil;
  args_t a;
  VALUE buf;
  uvw_value_t **vals = ALLOCV_N(uvw_value_t *, buf, argc);
  args_make(&a, argc - 1, argv + 1, vals);
  int rc = uvw_conn_dispatch_stream(next_conn(c), routine, vals, (size_t)a.argc, NULL, &s->d);
  args_free(&a);
  ALLOCV_END(buf);
  if (rc < 0) uvwr_raise_flushed(rc);
  s->c = c;
  s->next = c->streams;
  if (c->streams) c->streams->prev = s;
  c->streams = s;
  return obj;
}

static VALUE stop_iteration(rstream_t *s) {
  VALUE exc = rb_exc_new_cstr(rb_eStopIteration, "uvwool: the stream has ended");
  rb_ivar_set(exc, id_result, s->result); /* what StopIteration#result reads */
  return exc;
}

enum step { STEP_NEXT, STEP_SEND, STEP_THROW };

/* One step; the routine's yielded value, or StopIteration (result: its
 * return value) once it returned, or its exception. */
static VALUE stream_step(VALUE self, enum step kind, VALUE arg) {
  rstream_t *s = rb_check_typeddata(self, &stream_type);
  if (s->conn_closed) rb_raise(rb_eIOError, "uvwool: the stream's connection is closed");
  if (s->ended) rb_exc_raise(stop_iteration(s));
  rconn_t *c = s->c;
  if (c->busy) rb_raise(rb_eThreadError, "uvwool: the connection is waiting for a reply in another thread or fiber");
  int rc;
  if (kind == STEP_NEXT) {
    rc = uvw_dispatch_next(s->d, on_reply, &s->o);
  } else if (kind == STEP_SEND) {
    uvw_value_t *v = uvwr_to_value(arg);
    rc = uvw_dispatch_send(s->d, v, on_reply, &s->o);
    uvw_value_unref(v);
  } else {
    VALUE name = rb_class_name(rb_obj_class(arg));
    VALUE msg = rb_funcall(arg, rb_intern("message"), 0);
    uvw_error_t *e = uvw_error_new(StringValueCStr(name), 0, StringValueCStr(msg));
    if (e == NULL) rb_memerror();
    rc = uvw_dispatch_throw(s->d, e, on_reply, &s->o);
    uvw_error_unref(e);
  }
  if (rc < 0) uvwr_raise_flushed(rc);
  wait_reply(c, s->d, &s->o);
  int done = s->o.done, failed = s->o.status != 0;
  VALUE value;
  VALUE exc = outcome_exception(&s->o, &value);
  if (done || failed) stream_detach(s);
  uvwr_warnings_flush();
  if (value == Qundef) rb_exc_raise(exc);
  if (!done) return value;
  s->result = value;
  rb_exc_raise(stop_iteration(s));
}

static VALUE stream_next(VALUE self) { return stream_step(self, STEP_NEXT, Qnil); }
static VALUE stream_send(VALUE self, VALUE v) { return stream_step(self, STEP_SEND, v); }

static VALUE stream_throw(VALUE self, VALUE exc) {
  if (!RTEST(rb_obj_is_kind_of(exc, rb_eException)))
    rb_raise(rb_eTypeError, "uvwool: Stream#throw expects an Exception, got %" PRIsVALUE, rb_obj_class(exc));
  return stream_step(self, STEP_THROW, exc);
}

static VALUE stream_close(VALUE self) {
  stream_detach(rb_check_typeddata(self, &stream_type));
  return Qnil;
}

static VALUE stream_ended_p(VALUE self) {
  return ((rstream_t *)rb_check_typeddata(self, &stream_type))->ended ? Qtrue : Qfalse;
}

void uvwr_init_dispatch(VALUE mod) {
  id_result = rb_intern("result");
  cConnection = rb_define_class_under(mod, "Connection", rb_cObject);
  rb_define_alloc_func(cConnection, conn_alloc);
  rb_define_private_method(cConnection, "__open", conn_init, 2);
  cPool = rb_define_class_under(mod, "Pool", cConnection);
  rb_define_private_method(cPool, "__open", pool_init, 2);
  rb_define_method(cConnection, "dispatch", conn_dispatch, -1);
  rb_define_method(cConnection, "stream", conn_stream, -1);
  rb_define_method(cConnection, "close", conn_close, 0);
  rb_define_method(cConnection, "closed?", conn_closed_p, 0);
  rb_define_method(cConnection, "dead?", conn_dead_p, 0);

  cStream = rb_define_class_under(mod, "Stream", rb_cObject);
  rb_undef_alloc_func(cStream); /* only Connection#stream makes streams */
  rb_define_method(cStream, "next", stream_next, 0);
  rb_define_method(cStream, "send_value", stream_send, 1);
  rb_define_method(cStream, "throw", stream_throw, 1);
  rb_define_method(cStream, "close", stream_close, 0);
  rb_define_method(cStream, "ended?", stream_ended_p, 0);
}
