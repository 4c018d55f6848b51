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

/* Negative error codes. The generic ones reuse errno values like libuv. */
#define UVW_ENOMEM        (-12)   /* allocation failed */
#define UVW_EINVAL        (-22)   /* bad argument (NULL, empty name, sentinel value) */
#define UVW_ENOBUFS       (-105)  /* caller's buffer too small (uvw_get_string); nothing written */
#define UVW_ELOOKUP       (-30001) /* LookupError: unbound, no fallback, no default */
#define UVW_ECONTENTION   (-30002) /* ChainContention: the chain is run by another runner */
#define UVW_ECOLLISION    (-30003) /* ContextVarCollision: (namespace, name) already declared */
#define UVW_ETOKEN_USED   (-30004) /* RuntimeError: token already used */
#define UVW_ETOKEN_VAR    (-30005) /* ValueError: token was created by another variable */
#define UVW_ETOKEN_CONTEXT (-30006) /* ValueError: token was created in another context */
#define UVW_EENTERED      (-30007) /* RuntimeError: context already entered */
#define UVW_ENOTENTERED   (-30008) /* RuntimeError: exit of a context that is not the current one */
#define UVW_EDISPLACED    (-30009) /* TaskFactoryDisplaced */
#define UVW_ESERIALIZE    (-30010) /* SerializationError */
#define UVW_ECHAINSERIALIZE (-30011) /* ChainSerializationError (a SerializationError) */
#define UVW_EMALFORMED    (-30012) /* SerializationError: malformed wire data (bad protobuf, bad id, bad text) */
#define UVW_ETOOBIG       (-30013) /* SerializationError: input or output exceeds the wire size limit */
#define UVW_ESTUBCAP      (-30014) /* SerializationError: the process-wide stub cap is reached */
/* Dispatch (uvwool/dispatch.h). Generic conditions reuse errno values. */
#define UVW_EPROTO        (-71)    /* the peer broke the dispatch protocol */
#define UVW_ECONNRESET    (-104)   /* the connection to the peer was lost (or never made) */
#define UVW_ETIMEDOUT     (-110)   /* the dispatch handshake timed out */
#define UVW_ECANCELED     (-125)   /* the dispatch was cancelled */
#define UVW_EREMOTE       (-30015) /* the routine raised: the error is the routine's */
#define UVW_ENACK         (-30016) /* the worker refused the dispatch (Nack) */
#define UVW_ENOROUTINE    (-30017) /* no routine is registered under that name */

/* Returns a static message for a code ("unknown error" for others). */
const char *uvw_strerror(int code);
/* Returns the static symbolic name ("UVW_ELOOKUP"), "UVW_UNKNOWN" for others. */
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
