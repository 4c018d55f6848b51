/* Context objects: lifecycle, O(1) copy, fork, enter/exit, introspection. */
#include "context.h"

#include <sched.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "var.h"

/* Freed contexts wait in the thread's cache (freelist.h): capturing a
 * context at every libuv registration then allocates nothing once warm. */
static uvw_context_t *context_obtain(uvw__thread_t *t) {
  uvw_context_t *ctx = uvw__freelist_pop(&t->free_contexts);
  return ctx != NULL ? ctx : uvw__malloc(sizeof(*ctx));
}

static void context_recycle(uvw_context_t *ctx) {
  uvw__freelist_push(&uvw__tstate.free_contexts, ctx, uvw__tstate.gen != 0);
}

/* A new context that takes over the caller's references to map and chain. */
static uvw_context_t *context_adopt(uvw__map_t *map, uvw__chain_t *chain) {
  uvw__thread_t *t = uvw__thread();
  uvw_context_t *ctx = context_obtain(t);
  if (ctx == NULL) {
    uvw__map_unref(map);
    uvw__chain_unref(chain);
    uvw__error_nomem("context");
    return NULL;
  }
  atomic_init(&ctx->refs, 1);
  atomic_init(&ctx->entered_by, 0);
  atomic_init(&ctx->readers, 0);
  atomic_init(&ctx->writing, 0);
  ctx->map = map;
  ctx->chain = chain;
  ctx->prev = NULL;
  uvw__context_renew_serial(ctx);
  return ctx;
}

static uvw_context_t *context_alloc(uvw__map_t *map, uvw__chain_t *chain) {
  return context_adopt(uvw__map_ref(map), uvw__chain_ref(chain));
}

uvw_context_t *uvw__context_current(void) {
  uvw__thread_t *t = uvw__thread();
  if (__builtin_expect(t->current == NULL, 0)) {
    uvw_context_t *base = context_alloc(NULL, NULL);
    if (base == NULL) return NULL;
    atomic_store(&base->entered_by, t->gen); /* current from birth: it cannot be entered */
    t->base = t->current = base;
  }
  return t->current;
}

uvw_context_t *uvw_context_current(void) { return uvw__context_current(); }
uvw_context_t *uvw_context_new(void) { return context_alloc(NULL, NULL); }

/* ---- foreign readers (the handshake is described in context.h) ---------------- */

int uvw__context_read_begin(const uvw_context_t *cctx) {
  uvw_context_t *ctx = (uvw_context_t *)cctx; /* only the atomics are written */
  if (atomic_load_explicit(&ctx->entered_by, memory_order_relaxed) == uvw__thread()->gen) return 0;
  for (;;) {
    atomic_fetch_add_explicit(&ctx->readers, 1, memory_order_seq_cst);
    /* Entered nowhere: a thread entering now sees us at its first write
     * (its enter is a compare-and-swap, a full barrier like our increment),
     * and a writer that does not enter uses the fenced begin, so the
     * kernel's barrier is not needed. */
    if (atomic_load_explicit(&ctx->entered_by, memory_order_seq_cst) == 0 &&
        atomic_load_explicit(&ctx->writing, memory_order_seq_cst) == 0)
      return 1;
    uvw__membarrier();
    if (atomic_load_explicit(&ctx->writing, memory_order_seq_cst) == 0) return 1;
    atomic_fetch_sub_explicit(&ctx->readers, 1, memory_order_release);
    while (atomic_load_explicit(&ctx->writing, memory_order_acquire) != 0) sched_yield();
  }
}

void uvw__context_read_end(const uvw_context_t *ctx, int foreign) {
  if (foreign) atomic_fetch_sub_explicit(&((uvw_context_t *)ctx)->readers, 1, memory_order_release);
}

void uvw__context_wait_readers(uvw_context_t *ctx) {
  /* Readers inside only take references: the wait is a few instructions
   * long, and new readers back off while `writing` is up. */
  while (atomic_load_explicit(&ctx->readers, memory_order_acquire) != 0) sched_yield();
}

void uvw__context_snapshot(const uvw_context_t *ctx, uvw__map_t **map, uvw__chain_t **chain) {
  int foreign = uvw__context_read_begin(ctx);
  *map = uvw__map_ref(ctx->map);
  *chain = uvw__chain_ref(ctx->chain);
  uvw__context_read_end(ctx, foreign);
}

uvw_context_t *uvw_context_copy(uvw_context_t *ctx) {
  if (ctx == NULL) {
    uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "uvw_context_copy: ctx is NULL");
    return NULL;
  }
  if (atomic_load_explicit(&ctx->entered_by, memory_order_relaxed) == uvw__tstate.gen && uvw__tstate.gen != 0)
    return context_alloc(ctx->map, ctx->chain); /* our own: nobody else writes it */
  uvw__map_t *map;
  uvw__chain_t *chain;
  uvw__context_snapshot(ctx, &map, &chain);
  return context_adopt(map, chain);
}

uvw_context_t *uvw_context_copy_current(void) {
  uvw__thread_t *t = uvw__thread();
  /* A thread still on its never-materialised base copies an empty context. */
  return t->current ? context_alloc(t->current->map, t->current->chain) : context_alloc(NULL, NULL);
}

uvw_context_t *uvw_context_ref(uvw_context_t *ctx) {
  if (ctx) atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
  return ctx;
}

void uvw_context_unref(uvw_context_t *ctx) {
  if (ctx == NULL) return;
  /* The sole owner needs no read-modify-write: nobody else holds a
   * reference that could be copied concurrently. Saves an atomic on the
   * common copy -> use -> drop path. */
  if (atomic_load_explicit(&ctx->refs, memory_order_acquire) != 1 &&
      atomic_fetch_sub_explicit(&ctx->refs, 1, memory_order_acq_rel) != 1)
    return;
  uvw__map_unref(ctx->map);
  uvw__chain_unref(ctx->chain);
  context_recycle(ctx);
}

/* ---- fork ------------------------------------------------------------------ */

typedef struct {
  uvw__map_t *map;
  unsigned flag;
  int rc;
} filter_t;

static void drop_unpropagated(const void *key, uvw_value_t *value, void *arg) {
  (void)value;
  filter_t *f = arg;
  if (f->rc == 0 && !(uvw_var_policy(key) & f->flag)) f->rc = uvw__map_remove(&f->map, key);
}

uvw_context_t *uvw_context_fork(uvw_context_t *ctx, unsigned policy_flag) {
  if (ctx == NULL || (policy_flag != UVW_PROPAGATE_FORK && policy_flag != UVW_PROPAGATE_THREAD)) {
    uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "uvw_context_fork: bad context or policy flag");
    return NULL;
  }
  uvw__chain_t *src_chain;
  filter_t f = {NULL, policy_flag, 0};
  /* Our own context: nobody else writes it, so its chain is read borrowed
   * (as uvw_context_copy does); anyone else's is read in a snapshot. */
  int own = uvw__tstate.gen != 0 && atomic_load_explicit(&ctx->entered_by, memory_order_relaxed) == uvw__tstate.gen;
  if (own) {
    f.map = uvw__map_ref(ctx->map);
    src_chain = ctx->chain;
  } else {
    uvw__context_snapshot(ctx, &f.map, &src_chain);
  }
  /* Only scan when some variable ever opted out: the common fork is O(1). */
  if (uvw__var_any_restricted()) {
    uvw__map_t *snapshot = uvw__map_ref(f.map);
    uvw__map_foreach(snapshot, drop_unpropagated, &f);
    uvw__map_unref(snapshot);
  }
  uvw__chain_t *chain = NULL;
  if (f.rc == 0 && src_chain != NULL && (chain = uvw__chain_fork(src_chain)) == NULL) f.rc = UVW_ENOMEM;
  if (!own) uvw__chain_unref(src_chain);
  if (f.rc != 0) {
    uvw__map_unref(f.map);
    uvw__error_nomem("fork");
    return NULL;
  }
  return context_adopt(f.map, chain);
}

/* ---- enter / exit ------------------------------------------------------------ */

/* The rare ways out of enter and exit live out of line, so the common path
 * needs no stack frame (the report's buffers would force one). */
#define UVW__COLD __attribute__((noinline, cold))

/* UVW_EENTERED naming the thread that has ctx entered. Its identity is read
 * once, relaxed: it may have left since, which the report cannot know. Only
 * the generation is stored at enter (the compare-and-swap itself); the OS id
 * is looked up from it here. */
UVW__COLD int uvw__context_entered_error(const uvw_context_t *ctx) {
  uint64_t gen = atomic_load_explicit(&ctx->entered_by, memory_order_relaxed);
  if (gen == UVW__ENTERED_HELD) {
    uvw__error_set(UVW_EENTERED, UVW_KIND_RUNTIME_ERROR,
                   "cannot enter context: it is entered inside a suspended task (a task that yielded inside "
                   "uvw_context_run); a context is current in one place at a time: enter a copy instead");
    return UVW_EENTERED;
  }
  int tid = uvw__thread_os_tid_of(gen);
  char name[64];
  uvw__thread_name(tid, name, sizeof(name));
  const char *where = gen == uvw__thread()->gen ? "this thread" : "another thread";
  uvw_error_t *e = uvw__error_set(UVW_EENTERED, UVW_KIND_RUNTIME_ERROR,
                                  "cannot enter context: it is already entered on %s (uvwool thread %llu, OS thread "
                                  "%d \"%s\"); a context is current on one thread at a time: enter a copy instead",
                                  where, (unsigned long long)gen, tid, name);
  uvw__error_field(e, "entered_thread", "%llu", (unsigned long long)gen);
  uvw__error_field(e, "entered_os_thread", "%d", tid);
  uvw__error_field(e, "entered_thread_name", "%s", name);
  return UVW_EENTERED;
}

static UVW__COLD int enter_null(void) {
  uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "uvw_context_enter: ctx is NULL");
  return UVW_EINVAL;
}

/* A fresh fork: the first runner claims it, on a chain of its own. ctx is
 * entered already (entered_by is ours), so foreign readers use the
 * handshake and the new chain is published by the book. */
static UVW__COLD int enter_claiming(uvw_context_t *ctx, uvw__thread_t *t) {
  uvw__chain_t *claimed = uvw__chain_clone(ctx->chain);
  if (claimed == NULL) {
    atomic_store_explicit(&ctx->entered_by, 0, memory_order_release);
    return uvw__error_nomem("chain");
  }
  uvw__chain_set_owner(claimed, t->gen, t->task);
  uvw__context_write_begin(ctx);
  uvw__chain_t *old = ctx->chain;
  ctx->chain = claimed;
  uvw__context_write_end(ctx);
  uvw__chain_unref(old);
  ctx->prev = t->current;
  t->current = ctx;
  return 0;
}

static inline int context_enter(uvw_context_t *ctx);

/* A thread's first enter: its state is made here, out of line, so that the
 * common enter makes no call and needs no stack frame. */
static UVW__COLD int enter_first(uvw_context_t *ctx) {
  uvw__thread_init();
  return context_enter(ctx);
}

static inline int context_enter(uvw_context_t *ctx) {
  if (__builtin_expect(ctx == NULL, 0)) return enter_null();
  uvw__thread_t *t = &uvw__tstate;
  if (__builtin_expect(t->gen == 0, 0)) return enter_first(ctx);
  uint64_t nobody = 0;
  if (__builtin_expect(!atomic_compare_exchange_strong_explicit(&ctx->entered_by, &nobody, t->gen,
                                                                memory_order_acquire, memory_order_relaxed),
                       0))
    return uvw__context_entered_error(ctx);
  if (__builtin_expect(ctx->chain != NULL && ctx->chain->owner_gen == 0, 0)) return enter_claiming(ctx, t);
  ctx->prev = t->current;
  t->current = ctx;
  return 0;
}

static UVW__COLD int exit_refused(void) {
  uvw__error_set(UVW_ENOTENTERED, UVW_KIND_RUNTIME_ERROR,
                 "cannot exit context: it is not the context this thread entered last");
  return UVW_ENOTENTERED;
}

static inline int context_exit(uvw_context_t *ctx) {
  /* A thread that never used uvwool has no current context: refused too. */
  uvw__thread_t *t = &uvw__tstate;
  if (__builtin_expect(ctx == NULL || ctx != t->current || ctx == t->base, 0)) return exit_refused();
  uvw__context_pop(t, ctx);
  return 0;
}

int uvw_context_enter(uvw_context_t *ctx) { return context_enter(ctx); }
int uvw_context_exit(uvw_context_t *ctx) { return context_exit(ctx); }

int uvw__context_leave_unwinding(uvw_context_t *ctx) {
  /* Only when ctx is still below them, so a misbehaving callee cannot make
   * us unwind contexts that are not ours. */
  uvw__thread_t *t = uvw__thread();
  uvw_context_t *c = t->current;
  while (c != NULL && c != ctx && c != t->base) c = c->prev;
  if (c != ctx) return context_exit(ctx); /* reports UVW_ENOTENTERED */
  while (t->current != ctx) context_exit(t->current);
  return context_exit(ctx);
}

int uvw_context_run(uvw_context_t *ctx, uvw_run_cb fn, void *arg) {
  if (__builtin_expect(fn == NULL, 0)) return uvw__error_arg(__func__, "fn", "is NULL");
  int rc = context_enter(ctx);
  if (rc != 0) return rc;
  fn(arg);
  return uvw__context_leave(ctx);
}

/* ---- introspection ------------------------------------------------------------ */

/* Every reader below runs in a reader section (context.h), so it sees one
 * consistent state of ctx even while the thread that entered it writes. The
 * chain is immutable: reading it inside the section is enough. */

int uvw_context_is_armed(const uvw_context_t *ctx) {
  if (ctx == NULL) return 0;
  int foreign = uvw__context_read_begin(ctx);
  int armed = ctx->chain != NULL;
  uvw__context_read_end(ctx, foreign);
  return armed;
}

size_t uvw_context_size(const uvw_context_t *ctx) {
  if (ctx == NULL) return 0;
  int foreign = uvw__context_read_begin(ctx);
  size_t n = uvw__map_size(ctx->map);
  uvw__context_read_end(ctx, foreign);
  return n;
}

uvw_value_t *uvw_context_lookup(const uvw_context_t *ctx, const uvw_var_t *var) {
  if (ctx == NULL) return NULL;
  int foreign = uvw__context_read_begin(ctx);
  uvw_value_t *v = uvw__map_get(ctx->map, var);
  if (!foreign) return v;
  /* The owner may drop this binding at any moment: the thread keeps the
   * value alive until its next foreign lookup, as documented. */
  uvw__value_ref(v);
  uvw__context_read_end(ctx, foreign);
  uvw__thread_t *t = &uvw__tstate;
  uvw_value_unref(t->foreign_lookup);
  t->foreign_lookup = v;
  return v;
}

const void *uvw_context_chain(const uvw_context_t *ctx) {
  if (ctx == NULL) return NULL;
  int foreign = uvw__context_read_begin(ctx);
  const void *c = ctx->chain; /* an identity to compare, never dereferenced by callers */
  uvw__context_read_end(ctx, foreign);
  return c;
}

uint64_t uvw_context_owner_thread(const uvw_context_t *ctx) {
  if (ctx == NULL) return 0;
  int foreign = uvw__context_read_begin(ctx);
  uint64_t gen = ctx->chain ? ctx->chain->owner_gen : 0;
  uvw__context_read_end(ctx, foreign);
  return gen;
}

int uvw_context_chain_id(const uvw_context_t *ctx, char out[33]) {
  int armed = 0;
  if (ctx != NULL && out != NULL) {
    int foreign = uvw__context_read_begin(ctx);
    if ((armed = ctx->chain != NULL)) uvw__chain_id_hex(ctx->chain, out);
    uvw__context_read_end(ctx, foreign);
  }
  if (!armed) {
    const char *why = ctx == NULL   ? "ctx is NULL"
                      : out == NULL ? "out is NULL"
                                    : "context is unarmed: it has no chain id";
    uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "uvw_context_chain_id: %s", why);
    return UVW_EINVAL;
  }
  return 0;
}

size_t uvw_context_pending_reset_count(const uvw_context_t *ctx) {
  if (ctx == NULL) return 0;
  int foreign = uvw__context_read_begin(ctx);
  size_t n = ctx->chain ? ctx->chain->nresets : 0;
  uvw__context_read_end(ctx, foreign);
  return n;
}

int uvw_context_has_pending_reset(const uvw_context_t *ctx, const char *ns, const char *name) {
  uvw_var_t *var = uvw__var_lookup(ns, name); /* introspection keeps no stub alive */
  if (var == NULL || ctx == NULL) return 0;
  int foreign = uvw__context_read_begin(ctx);
  int has = ctx->chain && uvw__chain_has_reset(ctx->chain, var);
  uvw__context_read_end(ctx, foreign);
  return has;
}

uint64_t uvw_thread_generation(void) { return uvw__thread()->gen; }
