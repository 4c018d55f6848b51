/* uvwool error codes, the per-thread error detail record, warnings and strict mode.
 *
 * Every uvwool call that can fail returns 0 or a negative UVW_E* code, as libuv
 * does. A failing call changes nothing it was asked to change and leaves a
 * detail record reachable through uvw_last_error() on the calling thread until
 * the next failing uvwool call on that thread. */
#ifndef UVWOOL_ERRORS_H
#define UVWOOL_ERRORS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The error codes, one list: UVW_ERRNO_MAP(XX) calls XX(name, value,
 * message) once per code, as libuv's UV_ERRNO_MAP does, and generates the
 * enum below, uvw_strerror and uvw_err_name. The values are fixed (they
 * cross the wire): the generic ones reuse errno values like libuv, so
 * UVW_ENOMEM == UV_ENOMEM; uvwool's own start at -30001. */
#define UVW_ERRNO_MAP(XX)                                                                          \
  /* allocation failed */                                                                         \
  XX(ENOMEM, -12, "out of memory")                                                                \
  /* bad argument (NULL, empty name, sentinel value) */                                           \
  XX(EINVAL, -22, "invalid argument")                                                             \
  /* the caller's buffer is too small (uvw_get_string); nothing written */                          \
  XX(ENOBUFS, -105, "buffer too small")                                                           \
  /* LookupError: unbound, no fallback, no default */                                             \
  XX(ELOOKUP, -30001, "context variable has no value")                                            \
  /* ChainContention: the chain is run by another runner */                                       \
  XX(ECONTENTION, -30002, "chain is run by another runner")                                       \
  /* ContextVarCollision: (namespace, name) already declared */                                   \
  XX(ECOLLISION, -30003, "context variable already declared")                                     \
  /* RuntimeError: token already used */                                                         \
  XX(ETOKEN_USED, -30004, "token has already been used once")                                     \
  /* ValueError: token was created by another variable */                                         \
  XX(ETOKEN_VAR, -30005, "token was created by a different context variable")                     \
  /* ValueError: token was created in another context */                                          \
  XX(ETOKEN_CONTEXT, -30006, "token was created in a different context")                          \
  /* RuntimeError: context already entered */                                                     \
  XX(EENTERED, -30007, "context is already entered")                                              \
  /* RuntimeError: exit of a context that is not the current one */                               \
  XX(ENOTENTERED, -30008, "context is not the current entered context")                           \
  /* TaskFactoryDisplaced */                                                                      \
  XX(EDISPLACED, -30009, "uvwool task factory was displaced")                                     \
  /* SerializationError */                                                                        \
  XX(ESERIALIZE, -30010, "serialization failed")                                                  \
  /* ChainSerializationError (a SerializationError) */                                            \
  XX(ECHAINSERIALIZE, -30011, "chain serialization failed")                                       \
  /* SerializationError: malformed wire data (bad protobuf, bad id, bad text) */                  \
  XX(EMALFORMED, -30012, "malformed wire data")                                                   \
  /* SerializationError: input or output exceeds the wire size limit */                           \
  XX(ETOOBIG, -30013, "wire data exceeds the size limit")                                         \
  /* SerializationError: the process-wide stub cap is reached */                                  \
  XX(ESTUBCAP, -30014, "too many undeclared context variables (stub cap)")                        \
  /* dispatch (uvwool/dispatch.h): the peer broke the dispatch protocol */                        \
  XX(EPROTO, -71, "dispatch protocol violation")                                                  \
  /* dispatch: the connection to the peer was lost (or never made) */                             \
  XX(ECONNRESET, -104, "connection to the peer lost")                                             \
  /* dispatch: the handshake timed out */                                                         \
  XX(ETIMEDOUT, -110, "dispatch handshake timed out")                                             \
  /* dispatch: the dispatch was cancelled */                                                      \
  XX(ECANCELED, -125, "dispatch cancelled")                                                       \
  /* dispatch: the routine raised; the error is the routine's */                                  \
  XX(EREMOTE, -30015, "the routine raised")                                                       \
  /* dispatch: the worker refused the dispatch (Nack) */                                          \
  XX(ENACK, -30016, "the worker refused the dispatch")                                            \
  /* dispatch: no routine is registered under that name */                                        \
  XX(ENOROUTINE, -30017, "no such routine")

/* Success: what every call returns when it did not fail. */
#define UVW_OK 0

typedef enum uvw_errno_e {
#define UVW__ERRNO_ENUM(name, value, message) UVW_##name = (value),
  UVW_ERRNO_MAP(UVW__ERRNO_ENUM)
#undef UVW__ERRNO_ENUM
} uvw_errno_t;

/* A static message for a code, never NULL: the list's message for a uvwool
 * code, "success" for 0, libuv's uv_strerror text for any other code once
 * the loop layer is loaded (it installs libuv's names when the library
 * loads), else "unknown error". Thread-safe. */
const char *uvw_strerror(int code);
/* The static symbolic name, never NULL: "UVW_ELOOKUP" for a uvwool code,
 * "UVW_OK" for 0, libuv's uv_err_name ("EBUSY") for any other code libuv
 * knows, else "UVW_UNKNOWN". Thread-safe. */
const char *uvw_err_name(int code);

/* The error and warning classes, a tree under two roots (docs/semantics.md §9).
 * Bindings raise exceptions of the same names with the same parents. */
typedef enum uvw_error_kind_e {
  UVW_KIND_NONE = 0,
  UVW_KIND_WOOL_ERROR,              /* root of errors */
  UVW_KIND_CHAIN_CONTENTION,        /* < WoolError */
  UVW_KIND_CONTEXT_VAR_COLLISION,   /* < WoolError */
  UVW_KIND_TASK_FACTORY_DISPLACED,  /* < WoolError */
  UVW_KIND_SERIALIZATION_ERROR,     /* < WoolError */
  UVW_KIND_CHAIN_SERIALIZATION_ERROR, /* < SerializationError */
  UVW_KIND_LOOKUP_ERROR,            /* < WoolError (Python's LookupError) */
  UVW_KIND_VALUE_ERROR,             /* < WoolError (Python's ValueError) */
  UVW_KIND_RUNTIME_ERROR,           /* < WoolError (Python's RuntimeError) */
  UVW_KIND_MEMORY_ERROR,            /* < WoolError */
  UVW_KIND_WOOL_WARNING,            /* root of warnings */
  UVW_KIND_SERIALIZATION_WARNING,   /* < WoolWarning */
  UVW_KIND__COUNT
} uvw_error_kind_t;

/* "ChainContention", "WoolError", ... NULL for an invalid kind. */
const char *uvw_error_kind_name(uvw_error_kind_t kind);
/* The parent class, UVW_KIND_NONE for the two roots. */
uvw_error_kind_t uvw_error_kind_parent(uvw_error_kind_t kind);
/* Non-zero when `kind` is `ancestor` or lies under it. */
int uvw_error_kind_is(uvw_error_kind_t kind, uvw_error_kind_t ancestor);
/* Kind from its name, UVW_KIND_NONE if unknown. */
uvw_error_kind_t uvw_error_kind_from_name(const char *name);

/* An error or warning detail: immutable once published, refcounted. */
typedef struct uvw_error_s uvw_error_t;

/* The detail of the last failing call on this thread, or NULL. Borrowed:
 * valid until the next failing uvwool call on this thread. */
const uvw_error_t *uvw_last_error(void);
/* Forget the last error of this thread. */
void uvw_clear_error(void);

int uvw_error_code(const uvw_error_t *e);
uvw_error_kind_t uvw_error_kind(const uvw_error_t *e);
/* Borrowed, never NULL. */
const char *uvw_error_message(const uvw_error_t *e);
/* Structured fields, in insertion order. Names and values are borrowed.
 * ChainContention has: chain_id, kind (thread|task|create_task),
 * owner_thread, offending_thread, owner_task, offending_task (uvwool thread
 * generations and task ids), operation (get|set|reset|mount|serialize|create_task, ""
 * when unknown), variable ("(ns, name)", "" when the operation has none),
 * owner_os_thread, owner_thread_name, runner_os_thread, runner_thread_name
 * (OS thread ids, 0 when unknown, and names as the OS reports them when the
 * error is built, "?" for a thread that is gone), hint.
 * ContextVarCollision has: namespace, name, first_declared_by
 * (declaration|stub), first_declared_at (the declaring call, as
 * "symbol+0xoff (module)" when the dynamic symbol table names it),
 * existing_default. UVW_EENTERED has: entered_thread, entered_os_thread,
 * entered_thread_name. */
size_t uvw_error_field_count(const uvw_error_t *e);
const char *uvw_error_field_name(const uvw_error_t *e, size_t i);
const char *uvw_error_field_value(const uvw_error_t *e, size_t i);
/* Value of the named field, or NULL. Borrowed. */
const char *uvw_error_field(const uvw_error_t *e, const char *name);
/* The error that caused this one, or NULL (Python's __cause__). Borrowed. */
const uvw_error_t *uvw_error_cause(const uvw_error_t *e);
/* Build an error to raise (a routine's own error, a binding's exception):
 * `type` is a class name; one of the tree's names gives that kind, any
 * other name (NULL: "WoolError") gives WoolError with the name kept in a
 * trailing "wire_type" field, so it crosses the wire unchanged. `code` is
 * a UVW_E* value or 0. New reference (uvw_error_unref), NULL on ENOMEM. */
uvw_error_t *uvw_error_new(const char *type, int code, const char *message);
/* Append a structured field (copied) to an error built by uvw_error_new
 * that nobody else holds yet. 0, UVW_EINVAL or UVW_ENOMEM. */
int uvw_error_add_field(uvw_error_t *e, const char *name, const char *value);
/* The error being handled when this one arose, or NULL (__context__). Borrowed. */
const uvw_error_t *uvw_error_context(const uvw_error_t *e);
/* Warnings aggregated into this error (strict mode). Borrowed. */
size_t uvw_error_warning_count(const uvw_error_t *e);
const uvw_error_t *uvw_error_warning(const uvw_error_t *e, size_t i);

/* Keep a detail beyond the next failing call, and drop it. */
uvw_error_t *uvw_error_ref(const uvw_error_t *e);
void uvw_error_unref(uvw_error_t *e);

/* A lossless text rendering of an error with its fields, cause, context and
 * warnings, and its inverse. Serialize returns a new malloc'd NUL-terminated
 * string (free with uvw_free) or NULL on allocation failure. Deserialize
 * returns 0 and a new reference in *out, or UVW_EINVAL for malformed text
 * (detail in uvw_last_error). The wire layer carries errors in its own
 * protobuf payload; this form is for logs, tests and carriers. */
char *uvw_error_serialize(const uvw_error_t *e);
int uvw_error_deserialize(const char *text, size_t len, uvw_error_t **out);

/* Warnings (WoolWarning and below) go to one process-wide sink. The default
 * sink prints "uvwool: <Kind>: <message>" to stderr. A NULL sink restores the
 * default. The sink may be called from any thread; the warning is borrowed. */
typedef void (*uvw_warning_sink_cb)(const uvw_error_t *warning, void *arg);
void uvw_set_warning_sink(uvw_warning_sink_cb sink, void *arg);

/* Strict mode: serialization failures aggregate into one error instead of
 * warning. Initialised from the environment variable UVWOOL_STRICT
 * ("1"/"true"/"yes" turn it on) at first use; the call overrides it. */
void uvw_set_strict(int on);
int uvw_strict(void);

#ifdef __cplusplus
}
#endif
#endif
