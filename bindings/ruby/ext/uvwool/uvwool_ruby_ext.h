/* uvwool for Ruby extensions that run libuv: call Ruby from a libuv callback.
 *
 * A Ruby extension runs its loop without the GVL (rb_nogvl around uv_run)
 * and registers callbacks through uvwool's C API (uvw_timer_start,
 * uvw_fs_*, uvw_to_thread, ...: uvwool/loop.h), which captures the current
 * context at registration and enters it around the callback. The callback
 * then takes the GVL with uvwool_rb_call and runs a Ruby block, which sees
 * the context captured at registration (Uvwool::ContextVar#get reads the
 * thread's current uvwool context).
 *
 * Rules:
 * - Only the Ruby thread that runs the loop calls uvwool_rb_call, from a loop
 *   callback. A libuv pool thread (the work_cb of uvw_to_thread /
 *   uv_queue_work) must never call Ruby: Ruby aborts the process ("non-ruby
 *   thread"). Work that runs Ruby code goes to a Ruby Thread.
 * - Keep every block you will call reachable by the GC (an Array in the
 *   extension's object, for instance) until its callback has run.
 * - Give rb_nogvl an unblocking function that wakes the loop with
 *   uv_async_send (async-signal-safe) and the flag RB_NOGVL_UBF_ASYNC_SAFE:
 *   a signal then reaches the loop from Ruby's signal handler. Without the
 *   flag a single-threaded process depends on a helper thread of Ruby's,
 *   which can miss the signal (Ruby 3.1), and the loop sleeps on.
 *
 * Header-only: nothing here links against the uvwool gem's own extension.
 * Find this folder with
 *   Gem::Specification.find_by_name("uvwool").gem_dir + "/ext/uvwool"
 * and the C library with pkg-config uvwool (samples/ruby_ext shows both). */
#ifndef UVWOOL_RUBY_EXT_H
#define UVWOOL_RUBY_EXT_H

#include <ruby.h>
#include <ruby/thread.h>

/* One call of a Ruby block from a loop callback. Fill block, argc, argv
 * (immediates, or objects the GC already sees: the GC does not scan the
 * frames a thread runs without the GVL) and error_slot; read state after
 * uvwool_rb_call: rb_protect's state, non-zero when the block raised (or
 * broke, threw). The block's exception is then stored, with the GVL held,
 * into *error_slot if that is still nil (keep the slot in a marked object;
 * raise it with rb_exc_raise once uv_run returned, never inside libuv).
 * The block's return value is dropped for the same GC reason. */
typedef struct uvwool_rb_call_s {
  VALUE block;
  int argc;
  const VALUE *argv;
  VALUE *error_slot;
  int state;
} uvwool_rb_call_t;

static VALUE uvwool_rb_call__body(VALUE arg) {
  uvwool_rb_call_t *c = (uvwool_rb_call_t *)arg;
  return rb_proc_call_with_block(c->block, c->argc, c->argv, Qnil);
}

static void *uvwool_rb_call__with_gvl(void *arg) {
  uvwool_rb_call_t *c = (uvwool_rb_call_t *)arg;
  rb_protect(uvwool_rb_call__body, (VALUE)c, &c->state);
  if (c->state) {
    VALUE err = rb_errinfo();
    /* break/throw leave no exception: they cannot cross the loop. */
    if (!RTEST(rb_obj_is_kind_of(err, rb_eException)))
      err = rb_exc_new_cstr(rb_eLocalJumpError, "break or throw out of a block run by a libuv callback");
    if (c->error_slot && NIL_P(*c->error_slot)) *c->error_slot = err;
    rb_set_errinfo(Qnil);
  }
  return NULL;
}

/* Take the GVL, run the block (protected), release the GVL. Call it from a
 * loop callback running without the GVL on a Ruby thread. */
static inline void uvwool_rb_call(uvwool_rb_call_t *c) {
  c->state = 0;
  rb_thread_call_with_gvl(uvwool_rb_call__with_gvl, c);
}

#endif
