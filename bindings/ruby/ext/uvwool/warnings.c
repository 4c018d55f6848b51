/* The core's warnings (SerializationWarning, ...) through Ruby's Warning.
 *
 * The core calls its warning sink on whichever thread warns, perhaps a
 * libuv pool thread or a Ruby thread running a loop without the GVL, and in
 * the middle of a uvwool call: no Ruby may run there. So the sink only
 * queues the warning; the queue is drained with the GVL held, into
 * Uvwool.__warn (lib/uvwool.rb, which calls Warning.warn with the category),
 * either at the end of the binding's own calls that can warn (dispatch,
 * baggage: uvwr_warnings_flush) or from a postponed job the sink registers
 * when it runs on a Ruby thread. A warning raised on a thread that is not
 * Ruby's waits for the next drain. */
#include <pthread.h>
#include <string.h>

#include "uvwool_ruby.h"

#include <ruby/debug.h>

/* Enough for one burst; the core already aggregates per decode. */
#define QUEUE_CAP 64

static uvw_error_t *queue[QUEUE_CAP];
static size_t queued, dropped;
static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread int muted;
static ID id_warn;
static VALUE mod_uvwool;

static void drain_job(void *unused);

static void sink(const uvw_error_t *w, void *arg) {
  (void)arg;
  if (muted) return;
  pthread_mutex_lock(&queue_lock);
  if (queued < QUEUE_CAP)
    queue[queued++] = uvw_error_ref(w);
  else
    dropped++;
  pthread_mutex_unlock(&queue_lock);
  /* Only a Ruby thread has an execution context to flag. */
  if (ruby_native_thread_p()) rb_postponed_job_register_one(0, drain_job, NULL);
}

void uvwr_warnings_mute(int on) { muted += on ? 1 : -1; }

static uvw_error_t *pop(size_t *lost) {
  pthread_mutex_lock(&queue_lock);
  uvw_error_t *w = NULL;
  if (queued) {
    w = queue[0];
    memmove(queue, queue + 1, --queued * sizeof(queue[0]));
  }
  *lost = dropped;
  dropped = 0;
  pthread_mutex_unlock(&queue_lock);
  return w;
}

struct warn_args {
  VALUE kind, message;
};

static VALUE call_warn(VALUE arg) {
  struct warn_args *a = (struct warn_args *)arg;
  return rb_funcall(mod_uvwool, id_warn, 2, a->kind, a->message);
}

/* Hand the queued warnings to Uvwool.__warn, in order. Returns 0, or the
 * state of a call that raised (a Warning.warn that raises): the drain stops
 * there, the rest stays queued for the next one. */
static int drain(void) {
  size_t lost = 0;
  for (uvw_error_t *w; (w = pop(&lost)) != NULL || lost;) {
    struct warn_args a;
    if (w) {
      const char *kind = uvw_error_kind_name(uvw_error_kind(w));
      a.kind = rb_utf8_str_new_cstr(kind ? kind : "WoolWarning");
      a.message = rb_utf8_str_new_cstr(uvw_error_message(w));
      uvw_error_unref(w);
    } else {
      a.kind = rb_utf8_str_new_cstr("WoolWarning");
      a.message = rb_sprintf("%zu more warnings were dropped (more than %d queued at once)", lost, QUEUE_CAP);
      lost = 0;
    }
    int state = 0;
    rb_protect(call_warn, (VALUE)&a, &state);
    if (state) return state;
  }
  return 0;
}

static void drain_job(void *unused) {
  (void)unused;
  /* A postponed job cannot raise: a raising handler's exception is dropped. */
  if (drain()) rb_set_errinfo(Qnil);
}

void uvwr_warnings_flush(void) {
  int state = drain();
  if (state) rb_jump_tag(state);
}

void uvwr_raise_flushed(int code) {
  VALUE exc = uvwr_error_new(uvw_last_error(), code); /* before a handler's uvwool call replaces it */
  uvwr_warnings_flush();
  rb_exc_raise(exc);
}

static VALUE flush_warnings(VALUE self) {
  (void)self;
  uvwr_warnings_flush();
  return Qnil;
}

void uvwr_init_warnings(VALUE mod) {
  mod_uvwool = mod;
  id_warn = rb_intern("__warn");
  /* Uvwool::Core.flush_warnings: deliver what is queued now. */
  rb_define_module_function(rb_const_get(mod, rb_intern("Core")), "flush_warnings", flush_warnings, 0);
  uvw_set_warning_sink(sink, NULL);
}
