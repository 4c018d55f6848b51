/* Streaming routines written in Ruby (Worker#stream). The C worker calls a
 * streaming routine once per step (NEXT, SEND, THROW: uvwool/dispatch.h);
 * here each dispatch runs its block in a Fiber of its own, resumed at every
 * step on the loop's thread with the GVL (worker.c's rules), and
 * Worker::Yielder#yield answers the step and suspends the fiber until the
 * next one, whose value (SEND) it returns or whose error (THROW) it raises.
 *
 * Context: the fiber is hosted (fibers.c): it has no uvwool task, so it runs
 * in the context current where it is resumed, the one the C worker mounted
 * for that step (the dispatch's context for the chain, with this step's
 * values from the caller). Reads see each step's values; the C worker
 * reuses a chain's context from step to step, so a set made before a yield
 * is still there after it and a token kept across the yield resets there;
 * every answer carries the context as the block left it. A task of its own
 * (what Fiber.new gives every other fiber: a fork) would freeze the first
 * step's values and keep the block's sets out of the answers. The one
 * thing a hosted fiber cannot carry is a context it entered itself, so a
 * yield inside Context#run is refused.
 *
 * Answers are all made inside the fiber, in the step's context: the yield
 * answers a Result; the end of the block answers the last Result (its
 * value) or an Exception (what it raised). After the resume the step only
 * checks that an answer was made: a fiber that suspended another way (a
 * bare Fiber.yield) ends the stream with an error saying so.
 *
 * Ends: the caller's throw, close or cancel, its connection lost and the
 * worker closing all come as a THROW step, raised at the pending yield, so
 * the block's ensure clauses run as it ends (the C worker drops what a
 * cancelled stream answers). The Yielder (which holds the fiber) stays in
 * the worker's streams Hash until its fiber ended or can answer no more. */
#include <stdlib.h>

#include <ruby/thread.h>

#include "worker.h"

typedef struct {
  uvw_call_t *call; /* NULL once the call ended (then over is set) */
  VALUE self;       /* the Yielder (not marked: it is the object holding this) */
  VALUE fiber, block, args;
  VALUE sent, thrown;      /* what the step brings to the pending yield */
  uvw_context_t *step_ctx; /* the context the running step runs in (borrowed) */
  uvw_context_t *last_ctx; /* the context the last step left (a reference) */
  atomic_int refs;         /* the Yielder's and the call's: the call may end
                              without the GVL while another thread collects */
  int answered;            /* the running step has its answer */
  int over;                /* no answer can be made any more */
} rstream_t;

static VALUE cYielder;

static void stream_mark(void *p) {
  rstream_t *s = p;
  rb_gc_mark(s->fiber);
  rb_gc_mark(s->block);
  rb_gc_mark(s->args);
  rb_gc_mark(s->sent);
  rb_gc_mark(s->thrown);
}

static void stream_unref(void *p) {
  rstream_t *s = p;
  if (atomic_fetch_sub(&s->refs, 1) != 1) return;
  uvw_context_unref(s->last_ctx);
  free(s); /* not xfree: maybe without the GVL */
}

static const rb_data_type_t yielder_type = {
    .wrap_struct_name = "Uvwool::Worker::Yielder", .function = {.dmark = stream_mark, .dfree = stream_unref}};

/* The call ended (no Ruby here: also from the GC's free of the worker). */
static void stream_call_ended(void *p) {
  rstream_t *s = p;
  s->call = NULL;
  s->over = 1;
  stream_unref(s);
}

static rstream_t *stream_of(VALUE self) { return rb_check_typeddata(self, &yielder_type); }

/* What a yield raises once the caller cancelled or went away. */
static VALUE cancelled_error(void) {
  uvw_error_t *e = uvw_error_new("WoolError", UVW_ECANCELED,
                                 "uvwool: the stream is over: its caller cancelled it or went away");
  if (e == NULL) rb_memerror();
  VALUE exc = uvwr_error_new(e, UVW_ECANCELED);
  uvw_error_unref(e);
  return exc;
}

/* ---- inside the fiber ------------------------------------------------------------ */

static VALUE run_block(VALUE self) {
  rstream_t *s = stream_of(self);
  VALUE args = rb_ary_dup(s->args);
  rb_ary_unshift(args, self);
  return rb_proc_call(s->block, args);
}

/* The fiber: the block with the Yielder and the dispatch's arguments; its
 * value is the last Result, its exception the Exception. */
static VALUE stream_body(RB_BLOCK_CALL_FUNC_ARGLIST(unused, self)) {
  (void)unused;
  rstream_t *s = stream_of(self);
  int state = 0;
  VALUE result = rb_protect(run_block, self, &state);
  VALUE exc = state ? uvwr_worker_take_exception() : Qnil;
  if (!s->over) {
    s->answered = s->over = 1;
    if (state)
      uvwr_worker_raise(s->call, exc);
    else
      uvwr_worker_return(s->call, result);
  }
  return Qnil;
}

/* Yielder#yield(value = nil): answer the step with value (the stream goes
 * on) and wait for the next step: nil for NEXT, the value of a SEND; a
 * THROW raises its error here. A value that cannot cross raises here with
 * the step still unanswered. */
static VALUE yielder_yield(int argc, VALUE *argv, VALUE self) {
  rb_check_arity(argc, 0, 1);
  rstream_t *s = stream_of(self);
  if (rb_fiber_current() != s->fiber)
    rb_raise(rb_eRuntimeError, "uvwool: Yielder#yield called outside its stream's block (from another fiber or thread)");
  if (s->over) rb_exc_raise(cancelled_error());
  if (uvw_context_current() != s->step_ctx)
    rb_raise(rb_eRuntimeError, "uvwool: Yielder#yield inside Context#run: a stream answers and waits for its next "
                               "step in the step's own context; yield outside the run");
  uvw_value_t *v = uvwr_to_value(argc > 0 ? argv[0] : Qnil);
  int rc = uvw_call_yield(s->call, v);
  uvw_value_unref(v);
  s->answered = 1;
  if (rc < 0) { /* the caller got this error (the context could not be encoded): the stream is over */
    s->over = 1;
    uvwr_raise_flushed(rc);
  }
  if (uvw_call_cancelled(s->call)) { /* the answer was dropped and the call ended */
    s->over = 1;
    rb_exc_raise(cancelled_error());
  }
  rb_fiber_yield(0, NULL);
  VALUE sent = s->sent, thrown = s->thrown;
  s->sent = s->thrown = Qnil;
  if (!NIL_P(thrown)) rb_exc_raise(thrown);
  return sent;
}

/* ---- a step ------------------------------------------------------------------------- */

typedef struct {
  rworker_t *w;
  uvw_call_t *call;
} rstep_t;

/* The first step: the Yielder, its fiber, the call's data. */
static VALUE stream_start(VALUE p) {
  rstep_t *st = (rstep_t *)p;
  VALUE self = TypedData_Wrap_Struct(cYielder, &yielder_type, NULL);
  rstream_t *s = calloc(1, sizeof(*s));
  if (s == NULL) rb_memerror();
  s->fiber = s->block = s->args = s->sent = s->thrown = Qnil;
  atomic_init(&s->refs, 1);
  DATA_PTR(self) = s;
  s->self = self;
  s->block = rb_hash_aref(st->w->routines, rb_str_new_cstr(uvw_call_routine(st->call)));
  s->args = uvwr_worker_args(st->call);
  s->fiber = rb_fiber_new(stream_body, self);
  uvwr_fiber_host(s->fiber);
  rb_hash_aset(st->w->streams, self, Qtrue);
  s->call = st->call;
  atomic_fetch_add(&s->refs, 1);
  uvw_call_set_data(st->call, s, stream_call_ended);
  return self;
}

static VALUE thrown_exception(const uvw_error_t *e) {
  if (e == NULL) return cancelled_error();
  /* An error the caller made has no code of ours: it came from the peer. */
  return uvwr_error_new(e, uvw_error_code(e) ? uvw_error_code(e) : UVW_EREMOTE);
}

/* A later step: what it brings, for the pending yield. A SEND value that
 * cannot become a Ruby object is raised at the yield instead. */
static VALUE stream_bring(VALUE p) {
  rstep_t *st = (rstep_t *)p;
  rstream_t *s = uvw_call_data(st->call);
  if (uvw_call_step(st->call) == UVW_STEP_THROW)
    s->thrown = thrown_exception(uvw_call_thrown(st->call));
  else if (uvw_call_step(st->call) == UVW_STEP_SEND)
    s->sent = uvwr_from_value(uvw_call_sent(st->call));
  return Qnil;
}

static VALUE stream_resume(VALUE fiber) { return rb_fiber_resume(fiber, 0, NULL); }

/* The context a step's block runs in. The C worker mounts a cancellation
 * (the caller's close or cancel, which carries no manifest) into a fresh
 * empty context; the block, told at its yield, runs its rescue and ensure
 * clauses in the context it left instead, where its tokens reset. NULL:
 * the step's own. */
static uvw_context_t *enter_step_context(rstream_t *s, uvw_call_t *call) {
  uvw_context_t *last = s->last_ctx;
  if (!uvw_call_cancelled(call) || last == NULL || last == uvw_context_current()) return NULL;
  return uvw_context_enter(last) == 0 ? last : NULL;
}

/* What a fiber that suspended outside a yield is raised with, so that its
 * ensure clauses run; if it suspends again it is left to the GC. */
static VALUE stream_release(VALUE fiber) { return rb_funcall(fiber, rb_intern("raise"), 1, cancelled_error()); }

static void *stream_step_gvl(void *p) {
  rstep_t *st = p;
  rstream_t *s = uvw_call_data(st->call);
  int state = 0;
  if (s == NULL) {
    VALUE self = rb_protect(stream_start, (VALUE)st, &state);
    if (state) {
      uvwr_worker_raise(st->call, uvwr_worker_take_exception());
      uvwr_worker_flush_warnings();
      return NULL;
    }
    s = stream_of(self);
  } else {
    rb_protect(stream_bring, (VALUE)st, &state);
    if (state) s->thrown = uvwr_worker_take_exception();
  }
  VALUE self = s->self, fiber = s->fiber; /* on the stack: the Yielder may leave the Hash below */
  s->answered = 0;
  uvw_context_t *entered = enter_step_context(s, st->call);
  s->step_ctx = uvw_context_current();
  rb_protect(stream_resume, fiber, &state); /* FiberError: resumed from another thread */
  VALUE exc = state ? uvwr_worker_take_exception() : Qnil;
  if (!s->over) { /* suspended at a yield, in step_ctx: where the next cancellation runs */
    uvw_context_unref(s->last_ctx);
    s->last_ctx = uvw_context_ref(s->step_ctx);
  }
  if (!s->answered && !s->over) {
    s->answered = s->over = 1;
    if (!state)
      exc = rb_exc_new_str(rb_eRuntimeError,
                           rb_sprintf("uvwool: streaming routine \"%s\" suspended its fiber without Yielder#yield "
                                      "(Fiber.yield, Fiber#transfer): not supported", uvw_call_routine(st->call)));
    uvwr_worker_raise(st->call, exc);
    if (!state && RTEST(rb_fiber_alive_p(fiber))) {
      rb_protect(stream_release, fiber, &state);
      if (state) rb_set_errinfo(Qnil);
    }
  }
  s->step_ctx = NULL;
  if (entered) uvw_context_exit(entered);
  if (s->over || !RTEST(rb_fiber_alive_p(fiber))) rb_hash_delete(st->w->streams, self);
  uvwr_worker_flush_warnings();
  RB_GC_GUARD(fiber);
  RB_GC_GUARD(self);
  return NULL;
}

void uvwr_worker_stream_step(uvw_call_t *call, void *arg) {
  rworker_t *w = arg;
  if (!w->ruby_ok) {
    uvwr_worker_refuse(call);
    return;
  }
  rstep_t st = {w, call};
  rb_thread_call_with_gvl(stream_step_gvl, &st);
}

void uvwr_init_worker_streams(VALUE worker_class) {
  cYielder = rb_define_class_under(worker_class, "Yielder", rb_cObject);
  rb_undef_alloc_func(cYielder); /* only a stream's first step makes one */
  rb_define_method(cYielder, "yield", yielder_yield, -1);
}
