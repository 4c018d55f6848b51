/* UvwoolSample::Loop: a libuv loop run from Ruby without the GVL.
 *
 *   loop = UvwoolSample::Loop.new
 *   loop.timer(ms) { |fired_ns| ... }     # uvw_timer_start
 *   loop.stat(path) { |size_or_errno| }   # uvw_fs_stat
 *   loop.offload(n) { |sum| ... }         # uvw_to_thread: 1 + ... + n on a pool thread
 *   loop.to_thread(work) { |result| ... } # Ruby work (a callable) on a Ruby Thread
 *   loop.repeat(n, plain = false) { |i| } # uvw_idle_start (plain: uv_idle_start, no capture):
 *                                         # the block n times, one per loop turn
 *   UvwoolSample.gvl_retakes(n[, block])  # n bare GVL re-takes (calling the block): a baseline
 *   loop.run                              # uv_run without the GVL
 *
 * Every registration captures the uvwool context current in Ruby when it is
 * made (the wrappers of uvwool/loop.h do it); the callback runs in that
 * context and takes the GVL to call its block (uvwool_rb_call), so the block
 * sees what the caller had set. The pool thread of `offload` runs C only:
 * Ruby must never run there; Ruby work goes to `to_thread`, which runs it
 * on a Ruby Thread (in a detached fork of the caller's context, as every
 * Thread.new with uvwool) and posts its result back to the loop. fired_ns is the CLOCK_MONOTONIC time at which
 * libuv ran the callback, before the GVL was taken: the block measures how
 * long taking the GVL took. */
#include <stdlib.h>

#include <uv.h>
#include <uvwool.h>

#include "uvwool_ruby_ext.h"

typedef struct {
  uv_loop_t loop;
  uv_async_t wake; /* the unblocking function's way in: stops uv_run */
  VALUE blocks;    /* every block registered, kept until run returns */
  VALUE error;     /* the first exception a block raised */
  int open;
} sloop_t;

typedef struct {
  sloop_t *s;
  VALUE block; /* also in s->blocks, so the GC keeps it */
  union {
    uv_timer_t timer;
    uv_fs_t fs;
    uv_work_t work;
    uv_async_t async;
    uv_idle_t idle;
  } u;
  long n, sum;
  int plain; /* repeat without uvwool */
  VALUE work, result; /* to_thread: both also in s->blocks */
} reg_t;

static void sloop_mark(void *p) {
  sloop_t *s = p;
  rb_gc_mark(s->blocks);
  rb_gc_mark(s->error);
}

static void sloop_free(void *p) {
  sloop_t *s = p;
  if (s->open) {
    uv_close((uv_handle_t *)&s->wake, NULL);
    uv_run(&s->loop, UV_RUN_NOWAIT);
    uvw_loop_close(&s->loop);
  }
  xfree(s);
}

static const rb_data_type_t sloop_type = {
    .wrap_struct_name = "UvwoolSample::Loop",
    .function = {.dmark = sloop_mark, .dfree = sloop_free}};

static sloop_t *get(VALUE self) { return rb_check_typeddata(self, &sloop_type); }

static void on_wake(uv_async_t *a) { uv_stop(a->loop); }

static VALUE sloop_alloc(VALUE klass) {
  sloop_t *s;
  VALUE obj = TypedData_Make_Struct(klass, sloop_t, &sloop_type, s);
  s->blocks = rb_ary_new();
  s->error = Qnil;
  if (uv_loop_init(&s->loop) != 0) rb_raise(rb_eRuntimeError, "uv_loop_init failed");
  uv_async_init(&s->loop, &s->wake, on_wake);
  uv_unref((uv_handle_t *)&s->wake); /* the wake handle alone keeps nothing running */
  s->open = 1;
  return obj;
}

static reg_t *reg_new(VALUE self) {
  sloop_t *s = get(self);
  rb_need_block();
  reg_t *r = calloc(1, sizeof(*r)); /* freed without the GVL: plain malloc */
  if (r == NULL) rb_memerror();
  r->s = s;
  r->block = rb_block_proc();
  rb_ary_push(s->blocks, r->block);
  return r;
}

/* Runs without the GVL, in the context captured at registration. arg is a
 * Fixnum or an object the GC sees (in s->blocks). */
static void call_block_with(reg_t *r, VALUE arg) {
  VALUE argv[1] = {arg};
  uvwool_rb_call_t c = {.block = r->block, .argc = 1, .argv = argv, .error_slot = &r->s->error};
  uvwool_rb_call(&c);
  if (c.state) uv_stop(&r->s->loop);
}

static void call_block(reg_t *r, long arg) {
  call_block_with(r, LONG2FIX(arg)); /* a Fixnum: no allocation, no GVL needed */
}

static void timer_closed(uv_handle_t *h) { free(h->data); }

static void on_timer(uv_timer_t *t) {
  long fired = (long)uv_hrtime();
  reg_t *r = t->data;
  call_block(r, fired);
  uv_close((uv_handle_t *)t, timer_closed);
}

static VALUE sloop_timer(VALUE self, VALUE ms) {
  reg_t *r = reg_new(self);
  uv_timer_init(&r->s->loop, &r->u.timer);
  r->u.timer.data = r;
  int rc = uvw_timer_start(&r->u.timer, on_timer, NUM2ULL(ms), 0);
  if (rc < 0) rb_raise(rb_eRuntimeError, "uvw_timer_start: %s", uvw_strerror(rc));
  return self;
}

static void on_stat(uv_fs_t *req) {
  reg_t *r = req->data;
  long res = req->result < 0 ? (long)req->result : (long)req->statbuf.st_size;
  uv_fs_req_cleanup(req);
  call_block(r, res);
  free(r);
}

static VALUE sloop_stat(VALUE self, VALUE path) {
  const char *p = StringValueCStr(path);
  reg_t *r = reg_new(self);
  r->u.fs.data = r;
  int rc = uvw_fs_stat(&r->s->loop, &r->u.fs, p, on_stat);
  if (rc < 0) rb_raise(rb_eRuntimeError, "uvw_fs_stat: %s", uvw_strerror(rc));
  return self;
}

/* A libuv pool thread: C only. */
static void offload_work(uv_work_t *w) {
  reg_t *r = w->data;
  for (long i = 1; i <= r->n; i++) r->sum += i;
}

static void offload_done(uv_work_t *w, int status) {
  reg_t *r = w->data;
  call_block(r, status < 0 ? status : r->sum);
  free(r);
}

static VALUE sloop_offload(VALUE self, VALUE n) {
  long count = NUM2LONG(n);
  reg_t *r = reg_new(self);
  r->n = count;
  r->u.work.data = r;
  int rc = uvw_to_thread(&r->s->loop, &r->u.work, offload_work, offload_done);
  if (rc < 0) rb_raise(rb_eRuntimeError, "uvw_to_thread: %s", uvw_strerror(rc));
  return self;
}

/* ---- to_thread: Ruby work on a Ruby Thread ------------------------------------ */

static void async_closed(uv_handle_t *h) { free(h->data); }

/* On the loop, in the context captured by uvw_async_init. */
static void on_work_posted(uv_async_t *a) {
  reg_t *r = a->data;
  if (r->result != Qundef) call_block_with(r, r->result);
  uv_close((uv_handle_t *)a, async_closed);
}

static VALUE call_work(VALUE arg) { return rb_funcall(((reg_t *)arg)->work, rb_intern("call"), 0); }

/* The Ruby Thread's block: run the work, keep its result (or exception) where
 * the GC sees it, wake the loop (uv_async_send is thread-safe). */
static VALUE work_thread(RB_BLOCK_CALL_FUNC_ARGLIST(yielded, data)) {
  reg_t *r = (reg_t *)NUM2ULL(data);
  int state = 0;
  VALUE v = rb_protect(call_work, (VALUE)r, &state);
  if (state) {
    if (NIL_P(r->s->error)) r->s->error = rb_errinfo();
    rb_set_errinfo(Qnil);
    r->result = Qundef; /* the block is not called; run raises the work's exception */
  } else {
    rb_ary_push(r->s->blocks, v);
    r->result = v;
  }
  uv_async_send(&r->u.async);
  return Qnil;
}

static VALUE sloop_to_thread(VALUE self, VALUE work) {
  if (!rb_respond_to(work, rb_intern("call"))) rb_raise(rb_eTypeError, "to_thread expects a callable");
  reg_t *r = reg_new(self);
  r->work = work;
  r->result = Qundef;
  rb_ary_push(r->s->blocks, work);
  r->u.async.data = r;
  int rc = uvw_async_init(&r->s->loop, &r->u.async, on_work_posted); /* captures the context now */
  if (rc < 0) rb_raise(rb_eRuntimeError, "uvw_async_init: %s", uvw_strerror(rc));
  /* Thread.new (not rb_thread_create): the uvwool gem starts it in a fork. */
  VALUE body = rb_proc_new(work_thread, ULL2NUM((uintptr_t)r));
  rb_ary_push(r->s->blocks, rb_funcall_with_block(rb_cThread, rb_intern("new"), 0, NULL, body));
  return self;
}

/* ---- repeat, and the bare GVL re-take it is compared with (the benchmark) ---- */

static void idle_closed(uv_handle_t *h) { free(h->data); }

static void on_idle(uv_idle_t *h) {
  reg_t *r = h->data;
  call_block(r, r->sum++);
  if (r->sum >= r->n || r->s->error != Qnil) {
    if (r->plain)
      uv_idle_stop(h);
    else
      uvw_idle_stop(h);
    uv_close((uv_handle_t *)h, idle_closed);
  }
}

static VALUE sloop_repeat(int argc, VALUE *argv, VALUE self) {
  rb_check_arity(argc, 1, 2);
  long count = NUM2LONG(argv[0]);
  int plain = argc > 1 && RTEST(argv[1]);
  if (count <= 0) rb_raise(rb_eArgError, "repeat expects a positive count");
  reg_t *r = reg_new(self);
  r->n = count;
  r->plain = plain;
  uv_idle_init(&r->s->loop, &r->u.idle);
  r->u.idle.data = r;
  int rc = plain ? uv_idle_start(&r->u.idle, on_idle) : uvw_idle_start(&r->u.idle, on_idle);
  if (rc < 0) rb_raise(rb_eRuntimeError, "uvw_idle_start: %s", uvw_strerror(rc));
  return self;
}

typedef struct {
  long n;
  VALUE block; /* Qnil: take the GVL and give it back, nothing else */
} retake_t;

static void *with_gvl_body(void *p) {
  retake_t *t = p;
  if (t->block != Qnil) rb_proc_call_with_block(t->block, 0, NULL, Qnil); /* a benchmark: no rescue */
  return NULL;
}

static void *retake_nogvl(void *p) {
  retake_t *t = p;
  for (long i = 0; i < t->n; i++) rb_thread_call_with_gvl(with_gvl_body, t);
  return NULL;
}

static VALUE sample_gvl_retakes(int argc, VALUE *argv, VALUE self) {
  (void)self;
  rb_check_arity(argc, 1, 2);
  retake_t t = {NUM2LONG(argv[0]), argc > 1 ? argv[1] : Qnil};
  rb_thread_call_without_gvl(retake_nogvl, &t, RUBY_UBF_IO, NULL);
  RB_GC_GUARD(argv[argc - 1]);
  return Qnil;
}

static void *run_nogvl(void *p) {
  sloop_t *s = p;
  uv_run(&s->loop, UV_RUN_DEFAULT);
  return NULL;
}

/* Interrupts (Thread#kill, signals) stop the loop. uv_async_send is
 * thread-safe and async-signal-safe, so Ruby may call this from its signal
 * handler (RB_NOGVL_UBF_ASYNC_SAFE): a single-threaded process then needs no
 * helper thread of Ruby's to pass a signal on, which can miss it. */
static void run_ubf(void *p) {
  sloop_t *s = p;
  uv_async_send(&s->wake);
}

/* Runs the loop until nothing is pending; raises the first exception a
 * block raised (the loop stops there). */
static VALUE sloop_run(VALUE self) {
  sloop_t *s = get(self);
  rb_nogvl(run_nogvl, s, run_ubf, s, RB_NOGVL_UBF_ASYNC_SAFE);
  VALUE err = s->error;
  s->error = Qnil;
  if (uv_loop_alive(&s->loop) == 0) rb_ary_clear(s->blocks);
  if (!NIL_P(err)) rb_exc_raise(err);
  return self;
}

void Init_uvwool_sample(void) {
  VALUE mod = rb_define_module("UvwoolSample");
  VALUE cls = rb_define_class_under(mod, "Loop", rb_cObject);
  rb_define_alloc_func(cls, sloop_alloc);
  rb_define_method(cls, "timer", sloop_timer, 1);
  rb_define_method(cls, "stat", sloop_stat, 1);
  rb_define_method(cls, "offload", sloop_offload, 1);
  rb_define_method(cls, "to_thread", sloop_to_thread, 1);
  rb_define_method(cls, "repeat", sloop_repeat, -1);
  rb_define_module_function(mod, "gvl_retakes", sample_gvl_retakes, -1);
  rb_define_method(cls, "run", sloop_run, 0);
}
