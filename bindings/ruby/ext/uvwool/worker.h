/* What the two halves of Uvwool::Worker share: the worker record
 * (worker.c: the loop, one-shot routines, options) and the way a Ruby
 * outcome becomes an answer (also used by worker_stream.c, the streaming
 * routines). Everything here runs with the GVL on the worker's loop thread. */
#ifndef UVWOOL_RUBY_WORKER_H
#define UVWOOL_RUBY_WORKER_H

#include <stdatomic.h>

#include "uvwool_ruby.h"

typedef struct {
  uv_loop_t loop;
  uv_async_t wake; /* Worker#stop and the unblocking function's way in */
  uvw_worker_t *w;
  uv_thread_t thread; /* the one that opened it: the C worker answers only there */
  VALUE routines; /* Hash: name => block (one-shot and streaming) */
  VALUE deferred; /* Hash: names of the routines that answer later => true */
  VALUE pending;  /* Hash: Worker::Call objects not answered yet => true */
  VALUE streams;  /* Hash: Worker::Yielder objects whose fiber may still run => true */
  VALUE on_error; /* nil or a callable */
  int open, closed, running;
  int ruby_ok;    /* callbacks may call Ruby (not from the GC's free) */
  atomic_int stop_asked, interrupted;
} rworker_t;

/* The worker of a Uvwool::Worker; IOError once it is closed. */
rworker_t *uvwr_worker_of(VALUE self);
/* The routine's arguments as an Array (raises what a conversion raises). */
VALUE uvwr_worker_args(uvw_call_t *call);
/* After a failed rb_protect: the exception, taken out of $! (a throw or
 * break out of the block, which leaves none, becomes a RuntimeError). */
VALUE uvwr_worker_take_exception(void);
/* Answer with exc as an Exception (its kind, code, ruby_class and fields;
 * one that cannot be converted becomes a WoolError saying so). */
void uvwr_worker_raise(uvw_call_t *call, VALUE exc);
/* Answer with value as the last Result; a value that cannot cross answers
 * with its conversion's error instead. */
void uvwr_worker_return(uvw_call_t *call, VALUE value);
/* Hand the warnings the step queued to Ruby's Warning (a raising handler
 * has no caller here: its exception is dropped). */
void uvwr_worker_flush_warnings(void);
/* Answer without Ruby: the worker is being collected. No GVL needed. */
void uvwr_worker_refuse(uvw_call_t *call);

/* The step of every streaming routine (worker_stream.c); arg: the worker. */
void uvwr_worker_stream_step(uvw_call_t *call, void *arg);
void uvwr_init_worker_streams(VALUE worker_class);

#endif
