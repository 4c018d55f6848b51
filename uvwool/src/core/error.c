/* Error codes, the class tree, detail records and the per-thread last error. */
#include "error.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "thread.h"

/* ---- codes ------------------------------------------------------------ */

#define UVW__CODES(X)                                                          \
  X(UVW_ENOMEM, "out of memory")                                               \
  X(UVW_EINVAL, "invalid argument")                                            \
  X(UVW_ENOBUFS, "buffer too small")                                           \
  X(UVW_ELOOKUP, "context variable has no value")                              \
  X(UVW_ECONTENTION, "chain is run by another runner")                         \
  X(UVW_ECOLLISION, "context variable already declared")                       \
  X(UVW_ETOKEN_USED, "token has already been used once")                       \
  X(UVW_ETOKEN_VAR, "token was created by a different context variable")       \
  X(UVW_ETOKEN_CONTEXT, "token was created in a different context")            \
  X(UVW_EENTERED, "context is already entered")                                \
  X(UVW_ENOTENTERED, "context is not the current entered context")             \
  X(UVW_EDISPLACED, "uvwool task factory was displaced")                       \
  X(UVW_ESERIALIZE, "serialization failed")                                    \
  X(UVW_ECHAINSERIALIZE, "chain serialization failed")                        \
  X(UVW_EMALFORMED, "malformed wire data")                                     \
  X(UVW_ETOOBIG, "wire data exceeds the size limit")                           \
  X(UVW_ESTUBCAP, "too many undeclared context variables (stub cap)")         \
  X(UVW_EPROTO, "dispatch protocol violation")                                 \
  X(UVW_ECONNRESET, "connection to the peer lost")                             \
  X(UVW_ETIMEDOUT, "dispatch handshake timed out")                             \
  X(UVW_ECANCELED, "dispatch cancelled")                                       \
  X(UVW_EREMOTE, "the routine raised")                                         \
  X(UVW_ENACK, "the worker refused the dispatch")                              \
  X(UVW_ENOROUTINE, "no such routine")

const char *uvw_strerror(int code) {
#define X(c, msg) \
  if (code == c) return msg;
  UVW__CODES(X)
#undef X
  return "unknown error";
}

const char *uvw_err_name(int code) {
#define X(c, msg) \
  if (code == c) return #c;
  UVW__CODES(X)
#undef X
  return "UVW_UNKNOWN";
}

/* ---- the class tree ------------------------------------------------------ */

static const struct {
  const char *name;
  uvw_error_kind_t parent;
} kinds[UVW_KIND__COUNT] = {
    [UVW_KIND_NONE] = {NULL, UVW_KIND_NONE},
    [UVW_KIND_WOOL_ERROR] = {"WoolError", UVW_KIND_NONE},
    [UVW_KIND_CHAIN_CONTENTION] = {"ChainContention", UVW_KIND_WOOL_ERROR},
    [UVW_KIND_CONTEXT_VAR_COLLISION] = {"ContextVarCollision", UVW_KIND_WOOL_ERROR},
    [UVW_KIND_TASK_FACTORY_DISPLACED] = {"TaskFactoryDisplaced", UVW_KIND_WOOL_ERROR},
    [UVW_KIND_SERIALIZATION_ERROR] = {"SerializationError", UVW_KIND_WOOL_ERROR},
    [UVW_KIND_CHAIN_SERIALIZATION_ERROR] = {"ChainSerializationError", UVW_KIND_SERIALIZATION_ERROR},
    [UVW_KIND_LOOKUP_ERROR] = {"LookupError", UVW_KIND_WOOL_ERROR},
    [UVW_KIND_VALUE_ERROR] = {"ValueError", UVW_KIND_WOOL_ERROR},
    [UVW_KIND_RUNTIME_ERROR] = {"RuntimeError", UVW_KIND_WOOL_ERROR},
    [UVW_KIND_MEMORY_ERROR] = {"MemoryError", UVW_KIND_WOOL_ERROR},
    [UVW_KIND_WOOL_WARNING] = {"WoolWarning", UVW_KIND_NONE},
    [UVW_KIND_SERIALIZATION_WARNING] = {"SerializationWarning", UVW_KIND_WOOL_WARNING},
};

static int kind_valid(uvw_error_kind_t k) { return k > UVW_KIND_NONE && k < UVW_KIND__COUNT; }

const char *uvw_error_kind_name(uvw_error_kind_t kind) { return kind_valid(kind) ? kinds[kind].name : NULL; }

uvw_error_kind_t uvw_error_kind_parent(uvw_error_kind_t kind) {
  return kind_valid(kind) ? kinds[kind].parent : UVW_KIND_NONE;
}

int uvw_error_kind_is(uvw_error_kind_t kind, uvw_error_kind_t ancestor) {
  for (; kind_valid(kind); kind = kinds[kind].parent)
    if (kind == ancestor) return 1;
  return 0;
}

uvw_error_kind_t uvw_error_kind_from_name(const char *name) {
  if (name == NULL) return UVW_KIND_NONE;
  for (int k = UVW_KIND_NONE + 1; k < UVW_KIND__COUNT; k++)
    if (strcmp(kinds[k].name, name) == 0) return (uvw_error_kind_t)k;
  return UVW_KIND_NONE;
}

/* ---- records ------------------------------------------------------------- */

static uvw_error_t oom_error = {
    .refs = 1, .immortal = 1, .code = UVW_ENOMEM, .kind = UVW_KIND_MEMORY_ERROR,
    .message = "out of memory while reporting an error"};

static char *vformat(const char *fmt, va_list ap) {
  va_list copy;
  va_copy(copy, ap);
  int n = vsnprintf(NULL, 0, fmt, copy);
  va_end(copy);
  if (n < 0) return NULL;
  char *s = uvw__malloc((size_t)n + 1);
  if (s) vsnprintf(s, (size_t)n + 1, fmt, ap);
  return s;
}

uvw_error_t *uvw__error_newv(int code, uvw_error_kind_t kind, const char *fmt, va_list ap) {
  uvw_error_t *e = uvw__calloc(1, sizeof(*e));
  if (e == NULL) return &oom_error;
  e->message = vformat(fmt, ap);
  if (e->message == NULL) {
    uvw__free(e);
    return &oom_error;
  }
  atomic_init(&e->refs, 1);
  e->code = code;
  e->kind = kind;
  return e;
}

uvw_error_t *uvw__error_new(int code, uvw_error_kind_t kind, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  uvw_error_t *e = uvw__error_newv(code, kind, fmt, ap);
  va_end(ap);
  return e;
}

void uvw__error_publish(uvw_error_t *e) {
  uvw__thread_t *t = uvw__thread();
  uvw_error_t *old = t->last_error;
  t->last_error = e;
  if (old) uvw_error_unref(old);
}

uvw_error_t *uvw__error_set(int code, uvw_error_kind_t kind, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  uvw_error_t *e = uvw__error_newv(code, kind, fmt, ap);
  va_end(ap);
  uvw__error_publish(e);
  return e;
}

int uvw__error_nomem(const char *what) {
  uvw__error_set(UVW_ENOMEM, UVW_KIND_MEMORY_ERROR, "out of memory allocating %s", what);
  return UVW_ENOMEM;
}

static int append_field(uvw_error_t *e, char *name, char *value) {
  char **names = uvw__realloc(e->field_names, (e->nfields + 1) * sizeof(char *));
  if (names == NULL) return -1;
  e->field_names = names;
  char **values = uvw__realloc(e->field_values, (e->nfields + 1) * sizeof(char *));
  if (values == NULL) return -1;
  e->field_values = values;
  names[e->nfields] = name;
  values[e->nfields] = value;
  e->nfields++;
  return 0;
}

void uvw__error_field(uvw_error_t *e, const char *name, const char *fmt, ...) {
  if (e->immortal) return;
  va_list ap;
  va_start(ap, fmt);
  char *value = vformat(fmt, ap);
  va_end(ap);
  char *n = uvw__strndup(name, strlen(name));
  if (value == NULL || n == NULL || append_field(e, n, value) != 0) {
    uvw__free(value);
    uvw__free(n);
  }
}

void uvw__error_set_cause(uvw_error_t *e, uvw_error_t *cause) {
  if (e->immortal) {
    uvw_error_unref(cause);
    return;
  }
  if (e->cause) uvw_error_unref(e->cause);
  e->cause = cause;
}

void uvw__error_set_context(uvw_error_t *e, uvw_error_t *context) {
  if (e->immortal) {
    uvw_error_unref(context);
    return;
  }
  if (e->context) uvw_error_unref(e->context);
  e->context = context;
}

int uvw__error_add_warning(uvw_error_t *e, uvw_error_t *warning) {
  uvw_error_t **w = e->immortal ? NULL : uvw__realloc(e->warnings, (e->nwarnings + 1) * sizeof(*w));
  if (w == NULL) {
    uvw_error_unref(warning);
    return UVW_ENOMEM;
  }
  e->warnings = w;
  w[e->nwarnings++] = warning;
  return 0;
}

uvw_error_t *uvw_error_ref(const uvw_error_t *ce) {
  uvw_error_t *e = (uvw_error_t *)ce;
  if (e && !e->immortal) atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
  return e;
}

void uvw_error_unref(uvw_error_t *e) {
  if (e == NULL || e->immortal) return;
  if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) != 1) return;
  for (size_t i = 0; i < e->nfields; i++) {
    uvw__free(e->field_names[i]);
    uvw__free(e->field_values[i]);
  }
  uvw__free(e->field_names);
  uvw__free(e->field_values);
  for (size_t i = 0; i < e->nwarnings; i++) uvw_error_unref(e->warnings[i]);
  uvw__free(e->warnings);
  uvw_error_unref(e->cause);
  uvw_error_unref(e->context);
  uvw__free(e->message);
  uvw__free(e);
}

const uvw_error_t *uvw_last_error(void) { return uvw__thread()->last_error; }

void uvw_clear_error(void) {
  uvw__thread_t *t = uvw__thread();
  uvw_error_unref(t->last_error);
  t->last_error = NULL;
}

int uvw_error_code(const uvw_error_t *e) { return e ? e->code : 0; }
uvw_error_kind_t uvw_error_kind(const uvw_error_t *e) { return e ? e->kind : UVW_KIND_NONE; }
const char *uvw_error_message(const uvw_error_t *e) { return e ? e->message : ""; }
size_t uvw_error_field_count(const uvw_error_t *e) { return e ? e->nfields : 0; }
const char *uvw_error_field_name(const uvw_error_t *e, size_t i) {
  return e && i < e->nfields ? e->field_names[i] : NULL;
}
const char *uvw_error_field_value(const uvw_error_t *e, size_t i) {
  return e && i < e->nfields ? e->field_values[i] : NULL;
}
const char *uvw_error_field(const uvw_error_t *e, const char *name) {
  if (e == NULL || name == NULL) return NULL;
  for (size_t i = 0; i < e->nfields; i++)
    if (strcmp(e->field_names[i], name) == 0) return e->field_values[i];
  return NULL;
}
const uvw_error_t *uvw_error_cause(const uvw_error_t *e) { return e ? e->cause : NULL; }
const uvw_error_t *uvw_error_context(const uvw_error_t *e) { return e ? e->context : NULL; }
size_t uvw_error_warning_count(const uvw_error_t *e) { return e ? e->nwarnings : 0; }
const uvw_error_t *uvw_error_warning(const uvw_error_t *e, size_t i) {
  return e && i < e->nwarnings ? e->warnings[i] : NULL;
}

/* ---- warnings and strict mode ------------------------------------------- */

static void stderr_sink(const uvw_error_t *w, void *arg) {
  (void)arg;
  fprintf(stderr, "uvwool: %s: %s\n", uvw_error_kind_name(w->kind), w->message);
}

/* Sink and argument are read and written together under a lock so a racing
 * warning never pairs one sink with another's argument; the sink itself runs
 * outside the lock. Warnings are rare, so the lock costs nothing that counts. */
static pthread_mutex_t sink_lock = PTHREAD_MUTEX_INITIALIZER;
static uvw_warning_sink_cb sink_fn = stderr_sink;
static void *sink_arg = NULL;

void uvw_set_warning_sink(uvw_warning_sink_cb fn, void *arg) {
  pthread_mutex_lock(&sink_lock);
  sink_fn = fn ? fn : stderr_sink;
  sink_arg = fn ? arg : NULL;
  pthread_mutex_unlock(&sink_lock);
}

void uvw__warn(uvw_error_t *w) {
  pthread_mutex_lock(&sink_lock);
  uvw_warning_sink_cb fn = sink_fn;
  void *arg = sink_arg;
  pthread_mutex_unlock(&sink_lock);
  fn(w, arg);
  uvw_error_unref(w);
}

static atomic_int strict_mode = -1; /* -1: not read from the environment yet */

int uvw_strict(void) {
  int v = atomic_load(&strict_mode);
  if (v < 0) {
    const char *env = getenv("UVWOOL_STRICT");
    v = env && (strcmp(env, "1") == 0 || strcmp(env, "true") == 0 || strcmp(env, "yes") == 0);
    int expected = -1;
    atomic_compare_exchange_strong(&strict_mode, &expected, v);
    v = atomic_load(&strict_mode);
  }
  return v;
}

void uvw_set_strict(int on) { atomic_store(&strict_mode, on ? 1 : 0); }

/* ---- errors built by users (routines, bindings) ------------------------- */

/* Mirrors the wire's convention (src/wire/errpb.c): a foreign class name
 * rides in a trailing field of a WoolError. */
#define WIRE_TYPE_FIELD "wire_type"

uvw_error_t *uvw_error_new(const char *type, int code, const char *message) {
  uvw_error_kind_t kind = type ? uvw_error_kind_from_name(type) : UVW_KIND_WOOL_ERROR;
  uvw_error_t *e = uvw__error_new(code, kind != UVW_KIND_NONE ? kind : UVW_KIND_WOOL_ERROR, "%s",
                                  message ? message : "");
  if (e == NULL || e->immortal) return NULL;
  if (kind == UVW_KIND_NONE && uvw_error_add_field(e, WIRE_TYPE_FIELD, type) != 0) {
    uvw_error_unref(e);
    return NULL;
  }
  return e;
}

int uvw_error_add_field(uvw_error_t *e, const char *name, const char *value) {
  if (e == NULL || e->immortal || name == NULL || value == NULL) return UVW_EINVAL;
  char *n = uvw__strndup(name, strlen(name));
  char *v = uvw__strndup(value, strlen(value));
  if (n == NULL || v == NULL || append_field(e, n, v) != 0) {
    uvw__free(n);
    uvw__free(v);
    return UVW_ENOMEM;
  }
  /* Keep a foreign class name last, where the wire looks for it. */
  size_t last = e->nfields - 1;
  if (last > 0 && strcmp(name, WIRE_TYPE_FIELD) != 0 &&
      strcmp(e->field_names[last - 1], WIRE_TYPE_FIELD) == 0) {
    char *tn = e->field_names[last - 1], *tv = e->field_values[last - 1];
    e->field_names[last - 1] = e->field_names[last];
    e->field_values[last - 1] = e->field_values[last];
    e->field_names[last] = tn;
    e->field_values[last] = tv;
  }
  return 0;
}
