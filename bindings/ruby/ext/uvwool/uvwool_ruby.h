/* Shared declarations of the hand-written C of the Ruby extension
 * (values.c, errors.c, fibers.c, vars.c, dispatch.c, warnings.c,
 * baggage.c) and the SWIG-generated low layer. */
#ifndef UVWOOL_RUBY_H
#define UVWOOL_RUBY_H

#include <ruby.h>
#include <ruby/thread.h>

#include "uvwool.h"

/* How a private loop (a Connection's wait, Worker#run) runs without the GVL:
 * rb_nogvl(loop_fn, arg, ubf, arg, UVWR_NOGVL_LOOP).
 * - INTR_FAIL: a pending interrupt is not raised inside; the caller handles
 *   it after the loop returned (rb_thread_check_ints), so it can clean up.
 * - UBF_ASYNC_SAFE: the unblocking function (an atomic store and
 *   uv_async_send, both async-signal-safe) may run in Ruby's signal handler.
 *   Without it a single-threaded process relies on a helper thread Ruby
 *   starts to receive signals, and that thread can miss them (Ruby 3.1: it
 *   sleeps without the signal fd when another thread held it a moment
 *   before), so a SIGTERM whose trap stops the worker never reached the
 *   loop and the worker served on. */
#define UVWR_NOGVL_LOOP (RB_NOGVL_INTR_FAIL | RB_NOGVL_UBF_ASYNC_SAFE)

/* Uvwool::MISSING: what Token#old_value returns when the variable was
 * unbound before the set, and the "no default" marker of Core.var_declare. */
extern VALUE uvwr_missing;

/* Ruby object -> new reference. Raises (nothing allocated): RangeError for an
 * Integer outside int64, EncodingError for a String that is not valid in its
 * encoding or cannot become UTF-8, NoMemoryError. */
uvw_value_t *uvwr_to_value(VALUE obj);
/* Value (borrowed) -> Ruby object. NULL is nil, the MISSING sentinel is
 * Uvwool::MISSING; an opaque value made by another runtime raises TypeError. */
VALUE uvwr_from_value(const uvw_value_t *v);
/* Number of Ruby objects currently held by uvwool values (marked by the GC). */
size_t uvwr_held_count(void);

/* Raise the Uvwool exception for a failed call that returned `code`, from the
 * calling thread's detail record. */
NORETURN(void uvwr_raise(int code));
/* The Uvwool exception (not raised) for error e (borrowed, may be NULL:
 * uvw_strerror(code) is the message) with `code` as its #code / #errno. */
VALUE uvwr_error_new(const uvw_error_t *e, int code);

/* Make fiber (rb_fiber_new'd, never resumed) run with no task of its own,
 * in the context current wherever it is resumed (fibers.c). */
void uvwr_fiber_host(VALUE fiber);

void uvwr_init_values(VALUE mod);
void uvwr_init_errors(VALUE mod);
void uvwr_init_fibers(VALUE mod);
void uvwr_init_vars(VALUE mod);
void uvwr_init_dispatch(VALUE mod);
void uvwr_init_warnings(VALUE mod);
void uvwr_init_baggage(VALUE mod);
void uvwr_init_worker(VALUE mod);

/* Warnings (warnings.c): the core's sink queues them; flush hands them to
 * Ruby's Warning (GVL held; raises what a raising handler raised). Mute
 * (nesting, per thread) drops those raised meanwhile on this thread. */
void uvwr_warnings_flush(void);
void uvwr_warnings_mute(int on);
/* uvwr_raise, with the warnings the failed call queued delivered first. */
NORETURN(void uvwr_raise_flushed(int code));

#endif
