/* uvwool tasks: the unit the guard's `task` check tells apart.
 *
 * One task type serves two kinds of task:
 *
 * - loop tasks, spawned on a libuv loop (uvw_task_spawn / uvw_task_create in
 *   uvwool/loop.h): the loop makes them current around their body and every
 *   callback registered under them, and finishes them when the body and all
 *   those registrations are done;
 * - runtime tasks, made here for a language runtime's own unit of
 *   concurrency (a Lua coroutine, a Ruby fiber, a JS async scope): the
 *   runtime makes the task current around each resume (uvw_task_enter /
 *   uvw_task_leave) and finishes it when the coroutine ends (uvw_task_finish).
 *
 * A task runs in its own context, a fork of its creator's (copy-on-fork: the
 * values are inherited, an armed chain gets a new id and the task as owner,
 * pending resets are dropped, variables without UVW_PROPAGATE_FORK are left
 * out), so its writes never reach its creator or its siblings. While a task is
 * live, another task touching the chain it owns raises ChainContention kind
 * "task"; creating a task in exactly a context whose chain a live task owns
 * raises ChainContention kind "create_task". See docs/core.md ("Tasks").
 *
 * Core layer: no libuv types. Handles are opaque and every entry point is a
 * plain function, so SWIG and FFI bindings can use this header as it is. */
#ifndef UVWOOL_TASK_H
#define UVWOOL_TASK_H

#include <stdint.h>

#include "uvwool/context.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct uvw_task_s uvw_task_t;

/* ---- runtime tasks ---------------------------------------------------------- */

/* A new runtime task running in a fork of `parent` (NULL: the current
 * context). The fork's chain, if any, has a new id and no owner yet: the
 * task stamps itself (and the entering thread) as owner at its first
 * uvw_task_enter. Nothing is entered by this call.
 * Returns 0 and a new reference in *out, UVW_EINVAL (out NULL) or UVW_ENOMEM;
 * on error *out is left alone. parent is borrowed; call it where a
 * uvw_context_fork of parent could be called. */
int uvw_task_new(uvw_context_t *parent, uvw_task_t **out);

/* A new runtime task running in exactly `ctx` (a new reference is taken),
 * not a fork: asyncio's create_task(context=...). A context whose chain a
 * live task owns is refused with UVW_ECONTENTION kind "create_task" (fields
 * as for every ChainContention); otherwise the new task is stamped as the
 * owner of ctx's chain (if armed), so a second live task made in it is
 * refused. An unarmed context is shared freely, and the guard then catches
 * two live tasks that both run in it once one of them arms it.
 * Returns 0 and a new reference in *out, UVW_EINVAL (ctx or out NULL),
 * UVW_EENTERED (ctx is entered on another thread: create the task there),
 * UVW_ECONTENTION or UVW_ENOMEM; on error nothing changed. Call it on the
 * thread that uses ctx. */
int uvw_task_new_in(uvw_context_t *ctx, uvw_task_t **out);

/* Make `task` the current task and its context the current context: call it
 * at each resume. Whatever the task left entered above its own context at
 * its last uvw_task_leave (a `run` it yielded inside) is current again. The
 * previous task and context are kept in the task and restored by
 * uvw_task_leave, so resumes nest (coroutine A resuming B) with no frame to
 * carry: a task runs at most once at a time, so it is its own save area.
 * No allocation and no lock (one compare-and-swap: other threads may be
 * copying the task's context); the first enter of a task made by uvw_task_new
 * claims its fork (one allocation, once).
 * Returns 0, or (nothing changed):
 *   UVW_EINVAL      task is NULL, a loop task (its loop makes it current), or
 *                   finished;
 *   UVW_EENTERED    the task is already entered (resuming a running task), or
 *                   its context (uvw_task_new_in) is entered elsewhere;
 *   UVW_ENOMEM      claiming the fork failed.
 * The task must be entered and left on one thread at a time; the caller
 * keeps a reference while it is entered. */
int uvw_task_enter(uvw_task_t *task);

/* Undo uvw_task_enter at a suspend (yield) or when the body returned: the
 * task and context current before the enter are current again. Contexts
 * the task entered above its own and did not exit stay with the task (they
 * are current again at the next enter).
 * Returns 0, or (nothing changed):
 *   UVW_EINVAL      task is NULL or a loop task;
 *   UVW_ENOTENTERED the task is not entered; or a task entered after it is
 *                   still current (leave that one first: nested resumes
 *                   unwind innermost first); or code inside the task exited
 *                   the task's own context.
 * A task entered inside a loop callback (uvwool's wrappers, call-soon, loop
 * tasks) and still current when the callback returns is suspended there,
 * with a warning naming it (the callback's context cannot be unwound with
 * the task's on top): its next uvw_task_leave returns 0 and does nothing,
 * and uvw_task_enter / uvw_task_finish work as after any leave.
 * Same thread as the enter. */
int uvw_task_leave(uvw_task_t *task);

/* The task is finished: the guard never reports it as an owner again, and
 * its context can drive another task. It lets go of its context (the task's
 * chain names the task as owner, so task -> context -> chain -> task is a
 * cycle that only finishing breaks: a runtime must finish every task it
 * creates, e.g. when the coroutine ends or is collected). Idempotent:
 * finishing a finished task returns 0 and does nothing.
 * Choice: a runtime task finishes when the runtime says, not when the
 * libuv registrations made under it are done (unlike a loop task): those
 * keep the task object alive (a reference) and its identity (their callbacks
 * run with it current) but not its liveness, as asyncio's call_later does
 * not keep a task pending.
 * Returns 0, or (nothing changed) UVW_EINVAL (NULL or a loop task, which its
 * loop finishes) or UVW_EENTERED (the task is entered: leave it first).
 * Call it on the thread that ran the task. */
int uvw_task_finish(uvw_task_t *task);

/* ---- every task --------------------------------------------------------------- */

/* The task current on this thread, or NULL (plain code and plain
 * callbacks). Borrowed. Any thread (each has its own). */
uvw_task_t *uvw_task_current(void);
/* NULL-safe; returns task. Any thread. */
uvw_task_t *uvw_task_ref(uvw_task_t *task);
/* NULL-safe. The last reference frees the task (an unfinished task's context
 * is released then too). Any thread. */
void uvw_task_unref(uvw_task_t *task);
/* Non-zero once the task finished; 0 for NULL. Any thread. */
int uvw_task_finished(const uvw_task_t *task);
/* Process-unique, never reused, never 0 (shown in ChainContention fields as
 * owner_task / offending_task); 0 for NULL. */
uint64_t uvw_task_id(const uvw_task_t *task);
/* The context the task runs in (borrowed), NULL for NULL and once the task
 * let go of it: a runtime task at uvw_task_finish, a loop task once it
 * finished and its done callback ran. Entering it from outside the task
 * while the task is entered fails (UVW_EENTERED); doing so from another
 * thread while the task runs is a data race. */
uvw_context_t *uvw_task_context(const uvw_task_t *task);

#ifdef __cplusplus
}
#endif
#endif
