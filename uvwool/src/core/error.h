/* Internal error construction. A failing call builds a detail record with
 * uvw__error_set (which publishes it as the thread's last error), adds fields,
 * and returns the code. Allocation failures degrade to a static "out of
 * memory" record so reporting an error never fails. */
#ifndef UVW_CORE_ERROR_H
#define UVW_CORE_ERROR_H

#include <stdarg.h>
#include <stdatomic.h>

#include "uvwool/errors.h"

struct uvw_error_s {
  atomic_uint refs;
  int immortal;
  int code;
  uvw_error_kind_t kind;
  char *message;
  size_t nfields;
  char **field_names;
  char **field_values;
  uvw_error_t *cause;
  uvw_error_t *context;
  size_t nwarnings;
  uvw_error_t **warnings;
};

#if defined(__GNUC__)
#define UVW__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define UVW__PRINTF(f, a)
#endif

/* A new unpublished record (refs = 1), or the static OOM record. */
uvw_error_t *uvw__error_new(int code, uvw_error_kind_t kind, const char *fmt, ...) UVW__PRINTF(3, 4);
uvw_error_t *uvw__error_newv(int code, uvw_error_kind_t kind, const char *fmt, va_list ap);
/* Build and publish as this thread's last error; returns the (borrowed)
 * record so the caller can add fields before returning the code. */
uvw_error_t *uvw__error_set(int code, uvw_error_kind_t kind, const char *fmt, ...) UVW__PRINTF(3, 4);
/* Publish e as this thread's last error (takes ownership of the reference). */
void uvw__error_publish(uvw_error_t *e);
/* Report a bad argument of public function `fn`: publishes UVW_EINVAL, a
 * ValueError "<fn>: <arg> <why>" with fields function and argument, and
 * returns UVW_EINVAL. */
int uvw__error_arg(const char *fn, const char *arg, const char *why);
/* Report a call made in the wrong state ("<fn>: <why>", RuntimeError) with
 * code `code` and a function field; returns `code`. */
int uvw__error_state(int code, const char *fn, const char *why);
/* Report an allocation failure of `what`; returns UVW_ENOMEM. */
int uvw__error_nomem(const char *what);
/* Append a structured field; silently dropped on allocation failure (the
 * message already names the essentials). */
void uvw__error_field(uvw_error_t *e, const char *name, const char *fmt, ...) UVW__PRINTF(3, 4);
/* Attach cause / context / an aggregated warning (takes ownership). */
void uvw__error_set_cause(uvw_error_t *e, uvw_error_t *cause);
void uvw__error_set_context(uvw_error_t *e, uvw_error_t *context);
int uvw__error_add_warning(uvw_error_t *e, uvw_error_t *warning);
/* Names codes outside uvwool's list for uvw_strerror (want_name 0) and
 * uvw_err_name (1): a static string, or NULL if unknown. Installed once by
 * the loop layer when the library loads (before any thread can read it). */
typedef const char *(*uvw__error_text_fn)(int code, int want_name);
void uvw__error_set_text_fallback(uvw__error_text_fn fn);
/* Emit a warning through the sink (borrowed by the sink, then dropped). */
void uvw__warn(uvw_error_t *warning);

#endif
