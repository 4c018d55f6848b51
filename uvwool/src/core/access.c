/* get / set / reset and tokens: the hot paths of the library.
 *
 * Each runs the guard against the current context's chain first. Failures
 * leave the context as it was: everything that may fail (a new chain, a
 * token, the map update) is prepared before anything is published. */
#include <string.h>

#include "alloc.h"
#include "context.h"
#include "error.h"
#include "var.h"

struct uvw_token_s {
  uvw_var_t *var;
  uvw_value_t *old_value; /* reference held; the MISSING sentinel if unbound */
  uint64_t context_serial;
  int used;
};

_Atomic(uvw__read_hook_fn) uvw__read_hook;

/* Tokens come from and go back to the thread's cache (freelist.h): a set
 * with a token then allocates nothing once warm. */
static uvw_token_t *token_obtain(void) {
  uvw_token_t *token = uvw__freelist_pop(&uvw__tstate.free_tokens);
  return token != NULL ? token : uvw__malloc(sizeof(*token));
}

static void token_recycle(uvw_token_t *token) {
  if (token != NULL) uvw__freelist_push(&uvw__tstate.free_tokens, token, uvw__tstate.gen != 0);
}

static int bad_arg(const char *fn, const char *what) {
  uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "%s: %s", fn, what);
  return UVW_EINVAL;
}

/* Out of line and cold: inlined, its report would give every read a stack frame. */
static __attribute__((noinline, cold)) int lookup_error(const uvw_var_t *var) {
  uvw_error_t *e = uvw__error_set(UVW_ELOOKUP, UVW_KIND_LOOKUP_ERROR,
                                  "context variable (%s, %s) has no value and no default", var->ns, var->name);
  uvw__error_field(e, "namespace", "%s", var->ns);
  uvw__error_field(e, "name", "%s", var->name);
  return UVW_ELOOKUP;
}

/* A read of an unbound variable: the fallback (get_or) or the default,
 * which get fails without. */
static inline int read_unbound(uvw_var_t *var, int or_fallback, uvw_value_t *fallback, uvw_value_t **out) {
  uvw_value_t *v = or_fallback ? fallback : atomic_load_explicit(&var->default_value, memory_order_acquire);
  if (__builtin_expect(v == NULL && !or_fallback, 0)) return lookup_error(var);
  *out = v;
  return 0;
}

/* The rest of a read whose guard passed: the lookup in ctx's map, then the
 * default or fallback. */
static __attribute__((noinline)) int read_in(const uvw__map_t *m, uvw_var_t *var, int or_fallback,
                                             uvw_value_t *fallback, uvw_value_t **out) {
  uvw_value_t *v = uvw__map_get(m, var);
  if (v == NULL) return read_unbound(var, or_fallback, fallback, out);
  *out = v;
  return 0;
}

/* read_in for a HAMT map, the inline path's tail call for large maps (so
 * that path stays call-free): straight to the trie. */
static __attribute__((noinline)) int read_large(const uvw__map_t *m, uvw_var_t *var, int or_fallback,
                                                uvw_value_t *fallback, uvw_value_t **out) {
  uvw_value_t *v = uvw__map_hamt_get(m, var);
  if (v == NULL) return read_unbound(var, or_fallback, fallback, out);
  *out = v;
  return 0;
}

/* get and get_or. Unbound: get (`or_fallback` 0) reads the default and
 * fails without one; get_or returns `fallback`, NULL included. A thread whose
 * base context was never materialised is an empty unarmed context: nothing
 * to check, nothing bound, and no allocation to find that out. */
static __attribute__((noinline)) int read_value(uvw_var_t *var, int or_fallback, uvw_value_t *fallback,
                                                uvw_value_t **out, const char *fn) {
  if (var == NULL || out == NULL) return bad_arg(fn, "var or out is NULL");
  uvw__thread_t *t = &uvw__tstate;
  const uvw_context_t *ctx = t->current;
  if (ctx != NULL) {
    int rc = uvw__guard_op(ctx->chain, t, "get", var);
    if (rc != 0) return rc;
    return read_in(ctx->map, var, or_fallback, fallback, out);
  }
  return read_in(NULL, var, or_fallback, fallback, out);
}

/* With UVWOOL_DEBUG=unwrapped the loop layer's hook sees each read's call site. */
static __attribute__((noinline, cold)) int read_hooked(uvw__read_hook_fn hook, const void *site, uvw_var_t *var,
                                                       int or_fallback, uvw_value_t *fallback, uvw_value_t **out,
                                                       const char *fn) {
  hook(site);
  return read_value(var, or_fallback, fallback, out, fn);
}

/* The common read inline: our own chain (or none: the guard's common
 * verdict, without the call) and a flat map (or none). Everything else is a
 * tail call (the hook, bad arguments, a guard to run: read_value; a large
 * map: read_large; a missing default: the error), so this path makes no call
 * and needs no stack frame. */
#define READ(var, or_fallback, fallback, out, fn)                                                    \
  do {                                                                                               \
    uvw__read_hook_fn hook_ = atomic_load_explicit(&uvw__read_hook, memory_order_relaxed);         \
    if (__builtin_expect(hook_ != NULL, 0))                                                          \
      return read_hooked(hook_, __builtin_return_address(0), var, or_fallback, fallback, out, fn);   \
    const uvw_context_t *ctx_ = uvw__tstate.current;                                                 \
    if (__builtin_expect(var != NULL && out != NULL && ctx_ != NULL, 1)) {                            \
      const uvw__chain_t *c_ = ctx_->chain;                                                          \
      if (c_ == NULL || (c_->owner_gen == uvw__tstate.gen &&                                         \
                         (c_->owner_task == NULL || c_->owner_task == uvw__tstate.task))) {          \
        const uvw__map_t *m_ = ctx_->map;                                                            \
        if (m_ != NULL) {                                                                            \
          if (__builtin_expect(m_->cap == 0, 0)) return read_large(m_, var, or_fallback, fallback, out); \
          for (uint32_t i_ = 0; i_ < m_->size; i_++)                                                 \
            if (m_->entries[i_].key == var) {                                                        \
              *out = m_->entries[i_].value;                                                          \
              return 0;                                                                              \
            }                                                                                        \
        }                                                                                            \
        /* Unbound: its own return, so the default costs no jump back. */                            \
        return read_unbound(var, or_fallback, fallback, out);                                        \
      }                                                                                              \
    }                                                                                                \
    return read_value(var, or_fallback, fallback, out, fn);                                          \
  } while (0)

int uvw_get(uvw_var_t *var, uvw_value_t **out) { READ(var, 0, NULL, out, "uvw_get"); }
int uvw_get_or(uvw_var_t *var, uvw_value_t *fallback, uvw_value_t **out) {
  READ(var, 1, fallback, out, "uvw_get_or");
}

/* The chain the context must carry after a set of var: the same record when
 * nothing changes (the common case: no allocation), a fresh one when arming,
 * a re-stamped copy when the owner task changed or var had a pending reset. */
static int chain_after_set(const uvw_context_t *ctx, uvw__thread_t *t, const uvw_var_t *var,
                           uvw__chain_t **next) {
  uvw__chain_t *c = ctx->chain;
  *next = c;
  if (c == NULL) {
    *next = uvw__chain_new(t->gen, t->task);
    return *next ? 0 : uvw__error_nomem("chain");
  }
  if (c->owner_gen == t->gen && c->owner_task == t->task && (c->nresets == 0 || !uvw__chain_has_reset(c, var)))
    return 0;
  uvw__chain_t *copy = uvw__chain_clone(c);
  if (copy == NULL) return uvw__error_nomem("chain");
  uvw__chain_set_owner(copy, t->gen, t->task);
  uvw__chain_remove_reset(copy, var);
  *next = copy;
  return 0;
}

static void install_chain(uvw_context_t *ctx, uvw__chain_t *next) {
  if (next == ctx->chain) return;
  uvw__chain_unref(ctx->chain);
  ctx->chain = next; /* the reference made for it */
}

int uvw_set(uvw_var_t *var, uvw_value_t *value, uvw_token_t **token_out) {
  if (__builtin_expect(var == NULL || value == NULL, 0)) return bad_arg("uvw_set", "var or value is NULL");
  if (__builtin_expect(uvw__value_is_sentinel(value), 0))
    return bad_arg("uvw_set", "MISSING/UNDEFINED cannot be bound: use uvw_reset");
  uvw_context_t *ctx = uvw__context_current();
  if (ctx == NULL) return UVW_ENOMEM;
  uvw__thread_t *t = &uvw__tstate;
  int rc = uvw__guard_op(ctx->chain, t, "set", var);
  if (rc != 0) return rc;
  if (t->write_hook && (rc = t->write_hook(t->write_hook_arg, ctx->chain == NULL)) != 0) return rc;

  uvw_token_t *token = NULL;
  if (token_out != NULL) {
    token = token_obtain();
    if (token == NULL) return uvw__error_nomem("token");
  }
  uvw__chain_t *next;
  if ((rc = chain_after_set(ctx, t, var, &next)) != 0) {
    token_recycle(token);
    return rc;
  }
  uvw_value_t *old = NULL;
  uvw__context_write_begin(ctx);
  rc = token ? uvw__map_swap(&ctx->map, var, value, &old) : uvw__map_set(&ctx->map, var, value);
  if (rc == 0) install_chain(ctx, next);
  uvw__context_write_end(ctx);
  if (rc != 0) {
    token_recycle(token);
    if (next != ctx->chain) uvw__chain_unref(next);
    return uvw__error_nomem("binding");
  }
  if (token != NULL) {
    token->var = var;
    token->old_value = old ? old : &uvw__missing_value; /* the reference the map held */
    token->context_serial = ctx->serial;
    token->used = 0;
  }
  if (token_out) *token_out = token;
  return 0;
}

int uvw_reset(uvw_var_t *var, uvw_token_t *token) {
  if (var == NULL || token == NULL) return bad_arg("uvw_reset", "var or token is NULL");
  uvw_context_t *ctx = uvw__context_current();
  if (ctx == NULL) return UVW_ENOMEM;
  uvw__thread_t *t = &uvw__tstate;
  int rc = uvw__guard_op(ctx->chain, t, "reset", var);
  if (rc != 0) return rc;
  if (t->write_hook && (rc = t->write_hook(t->write_hook_arg, 0)) != 0) return rc;
  if (token->used) {
    uvw__error_set(UVW_ETOKEN_USED, UVW_KIND_RUNTIME_ERROR, "token for (%s, %s) has already been used once",
                   token->var->ns, token->var->name);
    return UVW_ETOKEN_USED;
  }
  if (token->var != var) {
    uvw__error_set(UVW_ETOKEN_VAR, UVW_KIND_VALUE_ERROR,
                   "token was created by context variable (%s, %s), not (%s, %s)", token->var->ns,
                   token->var->name, var->ns, var->name);
    return UVW_ETOKEN_VAR;
  }
  if (token->context_serial != ctx->serial) {
    uvw__error_set(UVW_ETOKEN_CONTEXT, UVW_KIND_VALUE_ERROR,
                   "token for (%s, %s) was created in a different context", var->ns, var->name);
    return UVW_ETOKEN_CONTEXT;
  }
  if (token->old_value->kind != UVW_VALUE_MISSING) {
    /* Rebinding a value cancels a pending reset of the key: a key is never
     * both bound and pending. */
    uvw__chain_t *next = ctx->chain;
    if (next != NULL && next->nresets != 0 && uvw__chain_has_reset(next, var)) {
      if ((next = uvw__chain_clone(next)) == NULL) return uvw__error_nomem("chain");
      uvw__chain_remove_reset(next, var);
    }
    uvw__context_write_begin(ctx);
    rc = uvw__map_set(&ctx->map, var, token->old_value);
    if (rc == 0) install_chain(ctx, next);
    uvw__context_write_end(ctx);
    if (rc != 0) {
      if (next != ctx->chain) uvw__chain_unref(next);
      return uvw__error_nomem("binding");
    }
  } else {
    /* Back to "no value": record the key as a pending reset so the reset
     * itself travels on the wire. */
    uvw__chain_t *next = NULL;
    if (ctx->chain != NULL) {
      next = uvw__chain_clone(ctx->chain);
      if (next == NULL || uvw__chain_add_reset(next, var) != 0) {
        uvw__chain_unref(next);
        return uvw__error_nomem("chain");
      }
    }
    uvw__context_write_begin(ctx);
    rc = uvw__map_remove(&ctx->map, var);
    if (rc == 0 && next) install_chain(ctx, next);
    uvw__context_write_end(ctx);
    if (rc != 0) {
      uvw__chain_unref(next);
      return uvw__error_nomem("binding");
    }
  }
  token->used = 1;
  return 0;
}

uvw_var_t *uvw_token_var(const uvw_token_t *token) { return token ? token->var : NULL; }
uvw_value_t *uvw_token_old_value(const uvw_token_t *token) { return token ? token->old_value : NULL; }
int uvw_token_used(const uvw_token_t *token) { return token ? token->used : 0; }

void uvw_token_free(uvw_token_t *token) {
  if (token == NULL) return;
  uvw__value_unref(token->old_value);
  token_recycle(token);
}

/* ---- values that outlive the binding ------------------------------------------ */

int uvw_get_ref(uvw_var_t *var, uvw_value_t **out) {
  if (var == NULL || out == NULL) return bad_arg("uvw_get_ref", "var or out is NULL");
  uvw_value_t *v;
  int rc = uvw_get(var, &v);
  if (rc != 0) return rc;
  *out = uvw__value_ref(v);
  return 0;
}

int uvw_get_string(uvw_var_t *var, char *buf, size_t cap, size_t *len_out) {
  if (var == NULL || (buf == NULL && cap != 0))
    return bad_arg("uvw_get_string", var == NULL ? "var is NULL" : "buf is NULL but cap is not 0");
  uvw_value_t *v;
  int rc = uvw_get(var, &v);
  if (rc != 0) return rc;
  if (v->kind != UVW_VALUE_STRING) {
    static const char *const kinds[] = {"MISSING", "UNDEFINED", "nil", "bool", "int",
                                        "double",  "string",    "bytes", "opaque"};
    const char *k = v->kind < sizeof(kinds) / sizeof(kinds[0]) ? kinds[v->kind] : "unknown";
    uvw_error_t *e = uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR,
                                    "uvw_get_string: context variable (%s, %s) holds a %s value, not a string",
                                    var->ns, var->name, k);
    uvw__error_field(e, "variable", "(%s, %s)", var->ns, var->name);
    uvw__error_field(e, "value_kind", "%s", k);
    return UVW_EINVAL;
  }
  if (v->len >= cap) {
    /* libuv's convention (uv_os_getenv): nothing written, the size needed
     * (terminator included) reported, so the caller can retry. */
    if (len_out) *len_out = v->len + 1;
    uvw_error_t *e = uvw__error_set(UVW_ENOBUFS, UVW_KIND_VALUE_ERROR,
                                    "uvw_get_string: the value of (%s, %s) needs %zu bytes, the buffer has %zu",
                                    var->ns, var->name, v->len + 1, cap);
    uvw__error_field(e, "needed", "%zu", v->len + 1);
    uvw__error_field(e, "capacity", "%zu", cap);
    return UVW_ENOBUFS;
  }
  memcpy(buf, v->data, v->len + 1);
  if (len_out) *len_out = v->len;
  return 0;
}

int uvw_set_cstring(uvw_var_t *var, const char *s, uvw_token_t **token_out) {
  if (var == NULL || s == NULL) return bad_arg("uvw_set_cstring", "var or s is NULL");
  uvw_value_t *v = uvw_value_cstring(s);
  if (v == NULL) return UVW_ENOMEM; /* the constructor filled the detail */
  int rc = uvw_set(var, v, token_out);
  uvw_value_unref(v);
  return rc;
}

int uvw_var_run(uvw_var_t *var, uvw_value_t *value, uvw_run_cb fn, void *arg) {
  if (fn == NULL) return bad_arg("uvw_var_run", "fn is NULL");
  uvw_token_t *token;
  int rc = uvw_set(var, value, &token);
  if (rc != 0) return rc;
  fn(arg);
  rc = uvw_reset(var, token);
  uvw_token_free(token);
  return rc;
}
