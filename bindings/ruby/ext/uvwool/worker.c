/* Uvwool::Worker: routines written in Ruby hosted on the C worker
 * (uvwool/dispatch.h, docs/dispatch.md), same wire, limits and options as
 * uvwool-worker.
 *
 * Each Worker owns a private libuv loop. Worker#run runs it in the calling
 * Ruby thread without the GVL (other Ruby threads run meanwhile) until
 * Worker#stop, an interrupt (Thread#raise, a signal: raised from run) or
 * close. A routine is called by the C worker from that loop, inside the
 * dispatch's context, so its block runs with the GVL re-taken
 * (rb_thread_call_with_gvl) on the same thread, in that context: its gets
 * see the caller's values, and the answer, made before the callback
 * returns, carries its changes back. No Ruby ever runs on a libuv pool
 * thread: nothing here uses the pool.
 *
 * One-shot routines answer when their block returns (or raises); streaming
 * ones are worker_stream.c's. The loop waits while a block runs. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <ruby/thread.h>

#include "worker.h"


static void worker_mark(void *p) {
  rworker_t *w = p;
  rb_gc_mark(w->routines);
  rb_gc_mark(w->deferred);
  rb_gc_mark(w->pending);
  rb_gc_mark(w->streams);
  rb_gc_mark(w->on_error);
}

static void on_closed(void *arg) { ((rworker_t *)arg)->closed = 1; }

static void *close_nogvl(void *p) {
  rworker_t *w = p;
  uvw_worker_close(w->w, on_closed, w);
  while (!w->closed && uv_run(&w->loop, UV_RUN_ONCE)) {
  }
  uv_close((uv_handle_t *)&w->wake, NULL);
  uv_run(&w->loop, UV_RUN_NOWAIT);
  uvw_loop_close(&w->loop);
  return NULL;
}

static void worker_free(void *p) {
  rworker_t *w = p;
  if (w->open) {
    w->open = 0;
    w->ruby_ok = 0; /* inside the GC: routines and on_error are not called */
    close_nogvl(w);
  }
  xfree(w);
}

static const rb_data_type_t worker_type = {
    .wrap_struct_name = "Uvwool::Worker", .function = {.dmark = worker_mark, .dfree = worker_free}};

static VALUE worker_alloc(VALUE klass) {
  rworker_t *w;
  VALUE obj = TypedData_Make_Struct(klass, rworker_t, &worker_type, w);
  w->routines = rb_hash_new();
  w->deferred = rb_hash_new();
  w->pending = rb_hash_new();
  w->streams = rb_hash_new();
  w->on_error = Qnil;
  return obj;
}

rworker_t *uvwr_worker_of(VALUE self) {
  rworker_t *w = rb_check_typeddata(self, &worker_type);
  if (!w->open) rb_raise(rb_eIOError, "uvwool: the worker is closed");
  return w;
}

static void check(int rc) {
  if (rc < 0) uvwr_raise_flushed(rc);
}

/* ---- a routine's step ----------------------------------------------------------- */

/* What a Worker::Call (a routine that answers later) holds of its call. */
typedef struct {
  uvw_call_t *call; /* NULL once answered or ended */
  int refs;         /* the Ruby object's and the call data's */
  VALUE self;       /* the Ruby object: w->pending keeps it while unanswered */
  rworker_t *w;
  uvw_context_t *ctx; /* a copy of the routine's context as its block left it: the
                         C worker runs the cancel hook outside the call's context */
} rhandle_t;

typedef struct {
  rworker_t *w;
  uvw_call_t *call; /* NULL: a Call answers */
  VALUE block, args, result;
  rhandle_t *handle;
} rcall_t;

VALUE uvwr_worker_args(uvw_call_t *call) {
  size_t n = uvw_call_arg_count(call);
  VALUE args = rb_ary_new_capa((long)n);
  for (size_t i = 0; i < n; i++) rb_ary_push(args, uvwr_from_value(uvw_call_arg(call, i)));
  return args;
}

static rhandle_t *call_new(rworker_t *w, uvw_call_t *call);
static void handle_raise(rhandle_t *h, VALUE exc);

static VALUE call_block(VALUE p) {
  rcall_t *c = (rcall_t *)p;
  c->args = uvwr_worker_args(c->call);
  if (RTEST(rb_hash_lookup(c->w->deferred, rb_str_new_cstr(uvw_call_routine(c->call))))) {
    c->handle = call_new(c->w, c->call);
    rb_ary_unshift(c->args, c->handle->self);
    rb_proc_call(c->block, c->args);
    c->call = NULL; /* answered through the Call, now or later */
    if (c->handle->call) c->handle->ctx = uvw_context_copy_current();
    return Qnil;
  }
  c->result = rb_proc_call(c->block, c->args);
  return Qnil;
}


static int add_field(VALUE key, VALUE val, VALUE arg) {
  VALUE k = rb_obj_as_string(key), v = rb_obj_as_string(val);
  uvw_error_add_field((uvw_error_t *)arg, StringValueCStr(k), StringValueCStr(v));
  return ST_CONTINUE;
}

/* The Exception the caller receives for a Ruby exception: a uvwool error
 * keeps its kind (the class name is the kind name) and code; every error
 * carries its Ruby class in the field ruby_class, and the entries of its
 * #fields (a Hash) when it has one (WoolError's, or an application's). */
static VALUE exception_fields(VALUE exc) {
  return rb_respond_to(exc, rb_intern("fields")) ? rb_funcall(exc, rb_intern("fields"), 0) : Qnil;
}

static uvw_error_t *error_from_exception(VALUE exc) {
  VALUE klass = rb_class_name(rb_obj_class(exc));
  VALUE message = rb_protect(rb_obj_as_string, exc, NULL);
  if (!RB_TYPE_P(message, T_STRING)) message = rb_str_new_cstr("(unprintable)");
  const char *type = StringValueCStr(klass);
  if (strncmp(type, "Uvwool::", 8) == 0) type += 8;
  VALUE errno_v = rb_attr_get(exc, rb_intern("@errno"));
  int code = FIXNUM_P(errno_v) ? FIX2INT(errno_v) : 0;
  uvw_error_t *e = uvw_error_new(type, code, StringValueCStr(message));
  if (e == NULL) return NULL;
  uvw_error_add_field(e, "ruby_class", StringValueCStr(klass));
  int state = 0;
  VALUE fields = rb_protect(exception_fields, exc, &state);
  if (state) rb_set_errinfo(Qnil);
  if (!state && RB_TYPE_P(fields, T_HASH)) rb_hash_foreach(fields, add_field, (VALUE)e);
  return e;
}

static VALUE build_error(VALUE exc) { return (VALUE)error_from_exception(exc); }

void uvwr_worker_raise(uvw_call_t *call, VALUE exc) {
  int state = 0;
  uvw_error_t *e = (uvw_error_t *)rb_protect(build_error, exc, &state);
  if (state) { /* a message or field with a NUL byte, a class name that raises */
    rb_set_errinfo(Qnil);
    e = uvw_error_new("WoolError", 0, "uvwool: the routine's exception could not be converted");
  }
  uvw_call_raise(call, e); /* e NULL: the allocation failure in uvw_last_error() */
  uvw_error_unref(e);
}

VALUE uvwr_worker_take_exception(void) {
  VALUE exc = rb_errinfo();
  rb_set_errinfo(Qnil);
  /* throw/break out of a block, or an interrupt that is not an exception */
  if (!RTEST(rb_obj_is_kind_of(exc, rb_eException)))
    exc = rb_exc_new_cstr(rb_eRuntimeError, "uvwool: the routine left without a value or an exception");
  return exc;
}

static VALUE to_value(VALUE value) { return (VALUE)uvwr_to_value(value); }

void uvwr_worker_return(uvw_call_t *call, VALUE value) {
  int state = 0;
  uvw_value_t *v = (uvw_value_t *)rb_protect(to_value, value, &state);
  if (state) { /* a value that cannot cross: the caller gets the conversion's error */
    uvwr_worker_raise(call, uvwr_worker_take_exception());
    return;
  }
  uvw_call_return(call, v);
  uvw_value_unref(v);
}

static VALUE flush_warnings(VALUE unused) {
  (void)unused;
  uvwr_warnings_flush();
  return Qnil;
}

void uvwr_worker_flush_warnings(void) {
  int ignored = 0;
  rb_protect(flush_warnings, Qnil, &ignored);
  if (ignored) rb_set_errinfo(Qnil);
}

void uvwr_worker_refuse(uvw_call_t *call) {
  uvw_error_t *e = uvw_error_new("WoolError", UVW_ECONNRESET, "uvwool: the Ruby worker is being collected");
  uvw_call_raise(call, e);
  uvw_error_unref(e);
}

static void *routine_gvl(void *p) {
  rcall_t *c = p;
  int state = 0;
  c->block = rb_hash_aref(c->w->routines, rb_str_new_cstr(uvw_call_routine(c->call)));
  rb_protect(call_block, (VALUE)c, &state);
  if (state) {
    VALUE exc = uvwr_worker_take_exception();
    if (c->handle)
      handle_raise(c->handle, exc); /* unless the Call answered before */
    else
      uvwr_worker_raise(c->call, exc);
  } else if (c->call) { /* else deferred: the Call answers */
    uvwr_worker_return(c->call, c->result);
  }
  uvwr_worker_flush_warnings();
  return NULL;
}

static void on_routine(uvw_call_t *call, void *arg) {
  rworker_t *w = arg;
  if (!w->ruby_ok) {
    uvwr_worker_refuse(call);
    return;
  }
  rcall_t c = {w, call, Qnil, Qnil, Qnil, NULL};
  rb_thread_call_with_gvl(routine_gvl, &c);
}

/* ---- Worker::Call: a routine that answers later ------------------------------------ */

static VALUE cCall;

static void handle_unref(void *p) {
  rhandle_t *h = p;
  if (--h->refs > 0) return;
  uvw_context_unref(h->ctx);
  free(h); /* not xfree: the call's end may come without the GVL */
}

static void handle_call_ended(void *p) {
  ((rhandle_t *)p)->call = NULL;
  handle_unref(p);
}

static const rb_data_type_t call_type = {
    .wrap_struct_name = "Uvwool::Worker::Call", .function = {.dfree = handle_unref}};

static rhandle_t *call_new(rworker_t *w, uvw_call_t *call) {
  rhandle_t *h = calloc(1, sizeof(*h));
  if (h == NULL) rb_memerror();
  h->refs = 1;
  h->w = w;
  h->self = TypedData_Wrap_Struct(cCall, &call_type, h);
  h->call = call;
  h->refs++;
  uvw_call_set_data(call, h, handle_call_ended);
  rb_hash_aset(w->pending, h->self, Qtrue);
  return h;
}

/* The call, taken from h to answer it (it ends with the answer). */
static uvw_call_t *handle_take(rhandle_t *h) {
  uvw_call_t *call = h->call;
  if (call == NULL) rb_raise(rb_eIOError, "uvwool: the call was answered already or has ended");
  h->call = NULL;
  rb_hash_delete(h->w->pending, h->self);
  return call;
}

static void handle_raise(rhandle_t *h, VALUE exc) {
  if (h->call) uvwr_worker_raise(handle_take(h), exc);
}

static rhandle_t *handle_of(VALUE self) { return rb_check_typeddata(self, &call_type); }

/* Call#return(value = nil): answer with value, in the current context. */
static VALUE call_return(int argc, VALUE *argv, VALUE self) {
  rb_check_arity(argc, 0, 1);
  rhandle_t *h = handle_of(self);
  VALUE value = argc > 0 ? argv[0] : Qnil;
  if (h->call == NULL) handle_take(h); /* raises */
  uvw_value_t *v = uvwr_to_value(value); /* raises with the call unanswered */
  int rc = uvw_call_return(handle_take(h), v);
  uvw_value_unref(v);
  if (rc < 0) uvwr_raise_flushed(rc);
  return Qnil;
}

/* Call#raise(exception): answer with it (fields as a routine's raise). */
static VALUE call_raise(VALUE self, VALUE exc) {
  if (!RTEST(rb_obj_is_kind_of(exc, rb_eException)))
    rb_raise(rb_eTypeError, "uvwool: Call#raise expects an Exception, got %" PRIsVALUE, rb_obj_class(exc));
  uvwr_worker_raise(handle_take(handle_of(self)), exc);
  return Qnil;
}

static VALUE call_answered_p(VALUE self) { return handle_of(self)->call ? Qfalse : Qtrue; }

static VALUE call_cancelled_p(VALUE self) {
  rhandle_t *h = handle_of(self);
  return h->call && uvw_call_cancelled(h->call) ? Qtrue : Qfalse;
}

static VALUE call_hook(VALUE p) {
  rhandle_t *h = (rhandle_t *)p;
  VALUE hook = rb_ivar_get(h->self, rb_intern("@on_cancel"));
  return rb_funcall(hook, rb_intern("call"), 0);
}

static void *cancel_gvl(void *p) {
  rhandle_t *h = p;
  int state = 0;
  rb_protect(call_hook, (VALUE)h, &state);
  if (state) {
    VALUE exc = rb_errinfo();
    rb_set_errinfo(Qnil);
    if (RTEST(rb_obj_is_kind_of(exc, rb_eException))) handle_raise(h, exc);
  }
  return NULL;
}

static void on_cancel(uvw_call_t *call, void *arg) {
  rhandle_t *h = arg;
  if (h->w->ruby_ok && h->ctx && uvw_context_enter(h->ctx) == 0) {
    uvw_context_t *ctx = uvw_context_ref(h->ctx); /* the hook may end the call */
    rb_thread_call_with_gvl(cancel_gvl, h);
    uvw_context_exit(ctx);
    uvw_context_unref(ctx);
    return;
  }
  uvw_error_t *e = uvw_error_new("WoolError", UVW_ECANCELED, "uvwool: the call was cancelled; its Ruby hook could not run (worker collected, or its context not enterable)");
  h->call = NULL;
  uvw_call_raise(call, e);
  uvw_error_unref(e);
}

/* Call#on_cancel { }: the block runs (on the worker's loop, in the call's
 * context) when the caller cancels, times out or goes away; it may answer. */
static VALUE call_on_cancel(VALUE self) {
  rhandle_t *h = handle_of(self);
  if (!rb_block_given_p()) rb_raise(rb_eArgError, "uvwool: Call#on_cancel needs a block");
  if (h->call == NULL) rb_raise(rb_eIOError, "uvwool: the call was answered already or has ended");
  rb_ivar_set(self, rb_intern("@on_cancel"), rb_block_proc());
  uvw_call_on_cancel(h->call, on_cancel, h);
  return self;
}

/* ---- errors of the worker ------------------------------------------------------- */

typedef struct {
  rworker_t *w;
  const uvw_error_t *error;
} rerr_t;

static VALUE call_on_error(VALUE p) {
  rerr_t *r = (rerr_t *)p;
  VALUE exc = uvwr_error_new(r->error, uvw_error_code(r->error) ? uvw_error_code(r->error) : UVW_EPROTO);
  return rb_funcall(r->w->on_error, rb_intern("call"), 1, exc);
}

static void *on_error_gvl(void *p) {
  int state = 0;
  rb_protect(call_on_error, (VALUE)p, &state);
  if (state) {
    /* The handler's own exception has no one to reach: report it. */
    VALUE exc = rb_errinfo();
    rb_set_errinfo(Qnil);
    rb_warn("uvwool: Worker on_error raised %" PRIsVALUE, rb_obj_class(exc));
  }
  return NULL;
}

static void on_error(uvw_worker_t *uw, const uvw_error_t *error, void *arg) {
  (void)uw;
  rworker_t *w = arg;
  if (!w->ruby_ok || NIL_P(w->on_error)) return;
  rerr_t r = {w, error};
  rb_thread_call_with_gvl(on_error_gvl, &r);
}

/* ---- the loop -------------------------------------------------------------------- */

static void on_wake(uv_async_t *a) { (void)a; }

static void *run_nogvl(void *p) {
  rworker_t *w = p;
  while (!atomic_load(&w->stop_asked) && !atomic_load(&w->interrupted))
    if (uv_run(&w->loop, UV_RUN_ONCE) == 0) break; /* nothing listens */
  return NULL;
}

/* Async-signal-safe (UVWR_NOGVL_LOOP): an atomic store and uv_async_send. */
static void run_ubf(void *p) {
  rworker_t *w = p;
  atomic_store(&w->interrupted, 1);
  uv_async_send(&w->wake);
}

static VALUE run_ensure(VALUE p) {
  rworker_t *w = (rworker_t *)p;
  w->running = 0;
  atomic_store(&w->stop_asked, 0);
  return Qnil;
}

static VALUE run_body(VALUE p) {
  rworker_t *w = (rworker_t *)p;
  for (;;) {
    atomic_store(&w->interrupted, 0);
    rb_nogvl(run_nogvl, w, run_ubf, w, UVWR_NOGVL_LOOP);
    if (atomic_load(&w->stop_asked)) break;
    rb_thread_check_ints(); /* an interrupt raises from run; a trap handler may stop */
    if (atomic_load(&w->stop_asked) || !atomic_load(&w->interrupted)) break; /* stopped, or ran dry */
  }
  return Qnil;
}

/* run: serve until stop (from a routine or another thread), an interrupt
 * (raised here) or nothing left to serve. */
static VALUE worker_run(VALUE self) {
  rworker_t *w = uvwr_worker_of(self);
  uv_thread_t self_thread = uv_thread_self();
  if (!uv_thread_equal(&self_thread, &w->thread))
    rb_raise(rb_eThreadError, "uvwool: a worker runs in the thread that made it (its routines answer only there)");
  if (w->running) rb_raise(rb_eThreadError, "uvwool: the worker is already running");
  w->running = 1;
  return rb_ensure(run_body, (VALUE)w, run_ensure, (VALUE)w);
}

/* stop: make run return after the step it serves; from any Ruby thread (or
 * a signal handler: a closed worker ignores it). */
static VALUE worker_stop(VALUE self) {
  rworker_t *w = rb_check_typeddata(self, &worker_type);
  if (!w->open) return Qnil;
  atomic_store(&w->stop_asked, 1);
  uv_async_send(&w->wake);
  return Qnil;
}

static VALUE worker_close(VALUE self) {
  rworker_t *w = rb_check_typeddata(self, &worker_type);
  if (!w->open) return Qnil;
  if (w->running) rb_raise(rb_eThreadError, "uvwool: the worker is running: stop it first");
  w->open = 0;
  rb_thread_call_without_gvl(close_nogvl, w, NULL, NULL);
  rb_hash_clear(w->pending); /* their calls ended with the connections */
  rb_hash_clear(w->streams); /* ended by the close's THROW steps, or (closed from another thread) left to the GC */
  return Qnil;
}

static VALUE worker_closed_p(VALUE self) {
  return ((rworker_t *)rb_check_typeddata(self, &worker_type))->open ? Qfalse : Qtrue;
}

/* ---- setup ------------------------------------------------------------------------ */

static VALUE worker_init(VALUE self) {
  rworker_t *w = rb_check_typeddata(self, &worker_type);
  if (w->open) rb_raise(rb_eTypeError, "uvwool: Worker already initialized");
  int rc = uv_loop_init(&w->loop);
  if (rc < 0) rb_raise(rb_eRuntimeError, "uvwool: uv_loop_init: %s", uv_strerror(rc));
  uv_async_init(&w->loop, &w->wake, on_wake);
  uv_unref((uv_handle_t *)&w->wake);
  rc = uvw_worker_open(&w->loop, &w->w);
  if (rc < 0) {
    VALUE exc = uvwr_error_new(uvw_last_error(), rc);
    uv_close((uv_handle_t *)&w->wake, NULL);
    uvw_loop_close(&w->loop);
    rb_exc_raise(exc);
  }
  uvw_worker_on_error(w->w, on_error, w);
  w->thread = uv_thread_self();
  w->open = w->ruby_ok = 1;
  return self;
}

/* __routine(name, answer) { |*args| ... }: register a routine. answer:
 * :now (one-shot, the block's value answers), :later (one-shot, the block
 * gets a Worker::Call first and answers through it) or :stream (streaming,
 * the block gets a Worker::Yielder first: worker_stream.c). */
static VALUE worker_routine(VALUE self, VALUE name, VALUE answer) {
  rworker_t *w = uvwr_worker_of(self);
  if (!rb_block_given_p()) rb_raise(rb_eArgError, "uvwool: Worker#routine and Worker#stream need a block");
  int stream = SYMBOL_P(answer) && SYM2ID(answer) == rb_intern("stream");
  name = rb_str_new_frozen(StringValue(name));
  VALUE block = rb_block_proc();
  check(uvw_worker_register(w->w, StringValueCStr(name), stream ? uvwr_worker_stream_step : on_routine, w,
                            stream ? UVW_ROUTINE_STREAM : 0));
  rb_hash_aset(w->routines, name, block);
  if (SYMBOL_P(answer) && SYM2ID(answer) == rb_intern("later")) rb_hash_aset(w->deferred, name, Qtrue);
  return self;
}

static VALUE worker_listen(VALUE self, VALUE address) {
  check(uvw_worker_listen(uvwr_worker_of(self)->w, StringValueCStr(address)));
  return self;
}

static VALUE worker_address(VALUE self, VALUE i) {
  char buf[512];
  check(uvw_worker_address(uvwr_worker_of(self)->w, NUM2SIZET(i), buf, sizeof(buf)));
  return rb_utf8_str_new_cstr(buf);
}

static VALUE worker_set_on_error(VALUE self, VALUE cb) {
  uvwr_worker_of(self)->on_error = cb;
  return cb;
}

static VALUE worker_set_socket_mode(VALUE self, VALUE mode) {
  check(uvw_worker_set_socket_mode(uvwr_worker_of(self)->w, NUM2UINT(mode)));
  return mode;
}

static VALUE worker_set_socket_group(VALUE self, VALUE gid) {
  check(uvw_worker_set_socket_group(uvwr_worker_of(self)->w, NUM2LONG(gid)));
  return gid;
}

static VALUE worker_allow_uid(VALUE self, VALUE uid) {
  check(uvw_worker_allow_uid(uvwr_worker_of(self)->w, NUM2UINT(uid)));
  return self;
}

static VALUE worker_allow_gid(VALUE self, VALUE gid) {
  check(uvw_worker_allow_gid(uvwr_worker_of(self)->w, NUM2UINT(gid)));
  return self;
}

static VALUE worker_set_allow_remote(VALUE self, VALUE allow) {
  check(uvw_worker_set_allow_remote(uvwr_worker_of(self)->w, RTEST(allow)));
  return allow;
}

static VALUE worker_set_dispatch_timeout(VALUE self, VALUE ms) {
  uvw_worker_set_dispatch_timeout(uvwr_worker_of(self)->w, NUM2ULL(ms));
  return ms;
}

/* The limits as a Hash of Symbol => Integer, the field names of
 * uvw_worker_limits_t. */
#define LIMIT_FIELDS(X)                                                                                      \
  X(max_connections) X(max_dispatches) X(max_inflight_bytes) X(max_stubs) X(max_chains) X(write_high_water) \
  X(frame_timeout_ms) X(idle_timeout_ms)

static VALUE worker_limits(VALUE self) {
  uvw_worker_limits_t l;
  check(uvw_worker_get_limits(uvwr_worker_of(self)->w, &l));
  VALUE h = rb_hash_new();
#define GET(f) rb_hash_aset(h, ID2SYM(rb_intern(#f)), ULL2NUM(l.f));
  LIMIT_FIELDS(GET)
#undef GET
  return h;
}

/* limits=(hash): the fields given change, the others keep what is in force;
 * an unknown key raises ArgumentError, nothing changed. */
static VALUE worker_set_limits(VALUE self, VALUE hash) {
  rworker_t *w = uvwr_worker_of(self);
  Check_Type(hash, T_HASH);
  uvw_worker_limits_t l;
  check(uvw_worker_get_limits(w->w, &l));
  long known = 0;
#define SET(f)                                                   \
  {                                                              \
    VALUE v = rb_hash_lookup2(hash, ID2SYM(rb_intern(#f)), Qundef); \
    if (v != Qundef) {                                           \
      l.f = NUM2ULL(v);                                          \
      known++;                                                   \
    }                                                            \
  }
  LIMIT_FIELDS(SET)
#undef SET
  if (known != RHASH_SIZE(hash))
    rb_raise(rb_eArgError, "uvwool: not every key of %" PRIsVALUE " is a limit (the limits: %" PRIsVALUE ")", rb_funcall(hash, rb_intern("keys"), 0),
             rb_funcall(worker_limits(self), rb_intern("keys"), 0));
  check(uvw_worker_set_limits(w->w, &l));
  return hash;
}

static VALUE worker_stats(VALUE self) {
  uvw_worker_stats_t s;
  check(uvw_worker_stats(uvwr_worker_of(self)->w, &s));
  VALUE h = rb_hash_new();
#define STAT(f) rb_hash_aset(h, ID2SYM(rb_intern(#f)), SIZET2NUM(s.f));
  STAT(connections) STAT(dispatches) STAT(inflight_bytes) STAT(read_buffer_bytes) STAT(write_queue_bytes)
  STAT(paused_peers) STAT(refused_connections) STAT(timed_out_peers) STAT(max_call_chains)
#undef STAT
  return h;
}

void uvwr_init_worker(VALUE mod) {
  VALUE c = rb_define_class_under(mod, "Worker", rb_cObject);
  rb_define_alloc_func(c, worker_alloc);
  rb_define_private_method(c, "__open", worker_init, 0);
  rb_define_private_method(c, "__routine", worker_routine, 2);
  rb_define_method(c, "listen", worker_listen, 1);
  rb_define_method(c, "address", worker_address, 1);
  rb_define_method(c, "run", worker_run, 0);
  rb_define_method(c, "stop", worker_stop, 0);
  rb_define_method(c, "close", worker_close, 0);
  rb_define_method(c, "closed?", worker_closed_p, 0);
  rb_define_method(c, "stats", worker_stats, 0);
  rb_define_method(c, "limits", worker_limits, 0);
  rb_define_method(c, "limits=", worker_set_limits, 1);
  rb_define_method(c, "on_error=", worker_set_on_error, 1);
  rb_define_method(c, "socket_mode=", worker_set_socket_mode, 1);
  rb_define_method(c, "socket_group=", worker_set_socket_group, 1);
  rb_define_method(c, "allow_uid", worker_allow_uid, 1);
  rb_define_method(c, "allow_gid", worker_allow_gid, 1);
  rb_define_method(c, "allow_remote=", worker_set_allow_remote, 1);
  rb_define_method(c, "dispatch_timeout=", worker_set_dispatch_timeout, 1);

  cCall = rb_define_class_under(c, "Call", rb_cObject);
  rb_undef_alloc_func(cCall); /* only the worker makes calls */
  rb_define_method(cCall, "return", call_return, -1);
  rb_define_method(cCall, "raise", call_raise, 1);
  rb_define_method(cCall, "on_cancel", call_on_cancel, 0);
  rb_define_method(cCall, "answered?", call_answered_p, 0);
  rb_define_method(cCall, "cancelled?", call_cancelled_p, 0);

  uvwr_init_worker_streams(c);
}
