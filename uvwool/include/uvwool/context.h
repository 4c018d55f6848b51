/* uvwool core: contexts, context variables, tokens and the chain.
 *
 * The model is Python's contextvars (docs/semantics.md):
 * every thread has a current context; a context maps variables to values;
 * copying a context is O(1); `set` returns a single-use token that `reset`
 * consumes. uvwool adds the chain: an armed context carries one immutable
 * chain record (a 128-bit id, the owner thread and task, pending resets,
 * pinned stubs), and every get/set/reset first runs the chain-contention
 * guard so a chain is never run by two runners at once. */
#ifndef UVWOOL_CONTEXT_H
#define UVWOOL_CONTEXT_H

#include <stddef.h>
#include <stdint.h>

#include "uvwool/errors.h"
#include "uvwool/value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct uvw_context_s uvw_context_t;
typedef struct uvw_var_s uvw_var_t;
typedef struct uvw_token_s uvw_token_t;

/* ---- contexts -------------------------------------------------------------- */

/* The calling thread's current context. Borrowed: valid while it stays
 * current (take uvw_context_ref to keep it). Returns NULL only when the
 * thread's own empty context cannot be allocated. */
uvw_context_t *uvw_context_current(void);
/* A new empty, unarmed context. New reference, NULL on allocation failure. */
uvw_context_t *uvw_context_new(void);
/* O(1) copy of ctx (contextvars' Context.copy): same bindings, same chain.
 * New reference; NULL (detail set) when ctx is NULL or on allocation failure.
 * Thread-safe: any thread may copy any context it holds a reference to,
 * also while the thread that has it entered sets and resets in it; the copy
 * is a consistent snapshot of one moment (every binding as some completed
 * write left it) and never changes afterwards. A copy made on another
 * thread waits for a write in progress to finish (a few instructions); the
 * writer never waits for long, and copying on the entering thread costs
 * what it always did. */
uvw_context_t *uvw_context_copy(uvw_context_t *ctx);
/* O(1) copy of the current context (copy_context()). New reference. */
uvw_context_t *uvw_context_copy_current(void);
/* A fork for a new task or thread (thread-safe like uvw_context_copy): the same values and pinned stubs, no
 * pending resets, and, when ctx is armed, a fresh chain id with no owner: the
 * first thread to enter the fork stamps itself as owner. Variables whose
 * policy lacks `policy_flag` (UVW_PROPAGATE_FORK or UVW_PROPAGATE_THREAD) are
 * left out. An unarmed ctx forks to an unarmed copy. New reference. */
uvw_context_t *uvw_context_fork(uvw_context_t *ctx, unsigned policy_flag);

uvw_context_t *uvw_context_ref(uvw_context_t *ctx);
void uvw_context_unref(uvw_context_t *ctx);

/* Make ctx current on this thread until the matching exit. Fails with
 * UVW_EINVAL for a NULL ctx, and with UVW_EENTERED when ctx is already
 * entered here or on any other thread: the detail names that thread (fields
 * entered_thread, entered_os_thread, entered_thread_name). */
int uvw_context_enter(uvw_context_t *ctx);
/* Leave ctx, restoring the context that was current at its enter. Fails with
 * UVW_ENOTENTERED when ctx is not this thread's current entered context. */
int uvw_context_exit(uvw_context_t *ctx);
/* enter; fn(arg); exit. Returns UVW_EINVAL (nothing entered) when fn is
 * NULL, else enter's error, else 0. */
typedef void (*uvw_run_cb)(void *arg);
int uvw_context_run(uvw_context_t *ctx, uvw_run_cb fn, void *arg);

/* Introspection (no guard runs; never arms). All of these are NULL-safe (a
 * NULL ctx reads as empty and unarmed) and thread-safe in the way of
 * uvw_context_copy: from a thread that does not have ctx entered they read
 * one consistent state of it while its entering thread writes. */
int uvw_context_is_armed(const uvw_context_t *ctx);
/* Number of bound variables. */
size_t uvw_context_size(const uvw_context_t *ctx);
/* Bound value of var in ctx, or NULL. Borrowed. On the thread that has ctx
 * entered it lives as long as that binding in ctx (see uvw_get). On any
 * other thread the value is kept alive for the caller until its next
 * uvw_context_lookup on a context it has not entered, or until it exits,
 * even if the owner rebinds var meanwhile: take uvw_value_ref to keep it
 * longer. */
uvw_value_t *uvw_context_lookup(const uvw_context_t *ctx, const uvw_var_t *var);
/* Write the chain id as 32 lowercase hex digits + NUL into out. Returns 0, or
 * UVW_EINVAL (out untouched) when ctx is unarmed. */
int uvw_context_chain_id(const uvw_context_t *ctx, char out[33]);
/* The chain record's identity, for "is it the same chain object" checks
 * (chains are immutable: any change installs a new record). NULL if unarmed. */
const void *uvw_context_chain(const uvw_context_t *ctx);
/* Generation number of the chain's owner thread, 0 if unarmed or unowned. */
uint64_t uvw_context_owner_thread(const uvw_context_t *ctx);
/* Pending resets: variables reset to "no value" whose key travels on the wire. */
size_t uvw_context_pending_reset_count(const uvw_context_t *ctx);
/* Non-zero if (namespace, name) has a pending reset in ctx. */
int uvw_context_has_pending_reset(const uvw_context_t *ctx, const char *ns, const char *name);

/* This thread's generation number: unique per thread for the process's
 * lifetime (never reused, unlike OS thread ids). */
uint64_t uvw_thread_generation(void);

/* ---- variables ------------------------------------------------------------- */

/* Propagation policy flags (uvwool's own addition): where a variable's
 * binding crosses. Default: everywhere. */
#define UVW_PROPAGATE_FORK   0x1u /* into spawned tasks */
#define UVW_PROPAGATE_THREAD 0x2u /* into to_thread / uvw_thread_create forks */
#define UVW_PROPAGATE_WIRE   0x4u /* into manifests */
/* Onto the public W3C baggage header (uvw_baggage_encode), which every
 * instrumented hop can read and log; needs UVW_PROPAGATE_WIRE as well. Clear
 * it to keep a secret in the binary manifest only:
 * uvw_var_set_policy(var, UVW_PROPAGATE_ALL & ~UVW_PROPAGATE_BAGGAGE). A
 * variable without it is also never bound from a baggage header. */
#define UVW_PROPAGATE_BAGGAGE 0x8u
#define UVW_PROPAGATE_ALL    0xFu

/* Declare the variable (ns, name). Thread-safe. `default_value` may be NULL (no default);
 * it is borrowed, the variable takes its own reference. Variables live for
 * the process. Returns 0 and the variable in *out, or:
 *   UVW_EINVAL      ns or name NULL or empty, or default is a sentinel;
 *   UVW_ECOLLISION  (ns, name) is already declared (even with an equal default):
 *                   the detail says whether a declaration or a stub made
 *                   from wire data came first, which call declared it and
 *                   its default;
 *   UVW_ENOMEM.
 * A key held by a stub (made from wire data) is taken over in place: same
 * identity and the values already bound everywhere; an explicit default wins. */
int uvw_var_declare(const char *ns, const char *name, uvw_value_t *default_value, uvw_var_t **out);
/* The declared or stub variable (ns, name), or NULL. Never creates.
 * Thread-safe; NULL ns or name gives NULL. Borrowed, live for the process:
 * a stub returned here is kept from then on (stubs nobody found are freed
 * once no context or decoded manifest holds them, so the same key may get
 * a new stub identity later; a declaration always takes the live stub
 * over in place). */
uvw_var_t *uvw_var_find(const char *ns, const char *name);
/* Borrowed, live for the process. */
const char *uvw_var_namespace(const uvw_var_t *var);
const char *uvw_var_name(const uvw_var_t *var);
/* Borrowed default value or NULL. */
uvw_value_t *uvw_var_default(const uvw_var_t *var);
int uvw_var_is_stub(const uvw_var_t *var);
unsigned uvw_var_policy(const uvw_var_t *var);
/* Replace the policy flags (UVW_PROPAGATE_*). UVW_EINVAL on unknown bits. */
int uvw_var_set_policy(uvw_var_t *var, unsigned flags);

/* The value of var in the current context: run the guard; the bound value;
 * else the variable's default; else UVW_ELOOKUP. Never arms a context.
 * Errors: UVW_EINVAL, UVW_ECONTENTION, UVW_ELOOKUP.
 *
 * *out is BORROWED. A bound value is owned by the current context and dies,
 * at the earliest, at:
 *   - the next uvw_set, uvw_set_cstring, uvw_reset or uvw_var_run of any
 *     variable on this thread (a set may rebuild or update the bindings in
 *     place), or a mount of a manifest;
 *   - the exit of the current context (uvw_context_exit, the end of
 *     uvw_context_run, and the end of every loop callback, whose captured
 *     context is left and released when the callback returns).
 * A default value lives for the process. To keep a value beyond any of
 * these, use uvw_get_ref (a new reference) or uvw_get_string (a copy), or
 * take uvw_value_ref at once. */
int uvw_get(uvw_var_t *var, uvw_value_t **out);
/* uvw_get returning a NEW reference in *out (drop it with uvw_value_unref):
 * the value stays valid across sets, resets, exits and callbacks. Same
 * lookup and errors as uvw_get; *out untouched on error. */
int uvw_get_ref(uvw_var_t *var, uvw_value_t **out);
/* Copy the string value of var (as uvw_get finds it) into buf, NUL
 * terminated. Returns 0 with the length without the terminator in *len_out
 * (len_out may be NULL). Strings may hold NUL bytes: *len_out is the true
 * length. Errors, with buf left untouched:
 *   UVW_EINVAL   var NULL, buf NULL with cap != 0, or the value is not a
 *                string (fields variable, value_kind);
 *   UVW_ENOBUFS  cap is too small: nothing is written (no truncation) and
 *                *len_out receives the size needed, terminator included,
 *                as libuv's uv_os_getenv does (call with buf NULL, cap 0 to
 *                ask for the size);
 *   UVW_ECONTENTION, UVW_ELOOKUP as uvw_get. */
int uvw_get_string(uvw_var_t *var, char *buf, size_t cap, size_t *len_out);
/* Same, but `fallback` (borrowed, may be NULL) is returned instead of the
 * default when var is unbound: a NULL fallback is a real fallback, so this
 * never fails with UVW_ELOOKUP. */
int uvw_get_or(uvw_var_t *var, uvw_value_t *fallback, uvw_value_t **out);

/* Bind var to value (borrowed; the context takes its own reference) in the
 * current context: run the guard; arm the context if it is unarmed (new chain
 * id, owner = this thread and task); re-stamp the owner; clear a pending
 * reset of var. When token_out is not NULL it receives a new single-use token
 * (free with uvw_token_free). Errors leave the context unchanged:
 * UVW_EINVAL (NULL var or value, or a sentinel value), UVW_ECONTENTION,
 * UVW_EDISPLACED (inside a loop callback, when uvwool's task factory of the
 * loop was displaced by one that does not wrap it), UVW_ENOMEM. */
int uvw_set(uvw_var_t *var, uvw_value_t *value, uvw_token_t **token_out);
/* uvw_set of a string value copied from the NUL-terminated s (the caller
 * keeps s). Same errors as uvw_set (UVW_EINVAL for a NULL var or s); on
 * error nothing changes and *token_out is untouched. */
int uvw_set_cstring(uvw_var_t *var, const char *s, uvw_token_t **token_out);
/* Scoped binding: set var to value (borrowed), run fn(arg), reset var with
 * the set's token and free it. When the set fails (UVW_EINVAL for a NULL
 * var, value or fn, UVW_ECONTENTION, UVW_ENOMEM) fn does not run and
 * nothing changes. Otherwise returns the reset's result: 0, with var back
 * at its value from before the set whatever fn did to var meanwhile (a
 * binding fn made and did not reset is discarded; fn setting and resetting
 * var with tokens of its own is no error), or an error of uvw_reset, the
 * likely one UVW_ETOKEN_CONTEXT when fn left the thread in another context
 * than it found (the set's binding then stays in the context it was made
 * in). */
int uvw_var_run(uvw_var_t *var, uvw_value_t *value, uvw_run_cb fn, void *arg);
/* Restore the value var had before the set that minted token. Runs the
 * guard, then rejects in order: UVW_ETOKEN_USED, UVW_ETOKEN_VAR,
 * UVW_ETOKEN_CONTEXT. If var was unbound before, it becomes unbound and its
 * key becomes a pending reset. Does not free the token. Errors leave the
 * context and the token unchanged: UVW_EINVAL (var or token NULL),
 * UVW_ECONTENTION (the guard), UVW_EDISPLACED (as uvw_set), the three
 * token errors above, UVW_ENOMEM. */
int uvw_reset(uvw_var_t *var, uvw_token_t *token);

/* ---- tokens --------------------------------------------------------------- */

/* Tokens are process-local: never serialized, never copied. */
uvw_var_t *uvw_token_var(const uvw_token_t *token);
/* Borrowed: the value before the set, or the MISSING sentinel
 * (uvw_value_missing()) when var was unbound. */
uvw_value_t *uvw_token_old_value(const uvw_token_t *token);
int uvw_token_used(const uvw_token_t *token);
void uvw_token_free(uvw_token_t *token);

#ifdef __cplusplus
}
#endif
#endif
