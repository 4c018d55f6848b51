/* The variable registry: a chained hash table under one mutex. Declaration
 * is rare (start-up, wire stubs) and never on a hot path; get/set never
 * touch the registry because callers hold uvw_var_t pointers. */
#define _GNU_SOURCE 1 /* dladdr */
#include "var.h"

#include <dlfcn.h>
#include <link.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"

#define REGISTRY_BUCKETS 1024 /* a power of two; chains stay short for thousands of vars */

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static uvw_var_t *buckets[REGISTRY_BUCKETS];
static size_t stub_count;
atomic_int uvw__var_restricted_seen;
atomic_uint_fast64_t uvw__var_policy_changes;

static size_t key_hash(const char *ns, const char *name) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a over ns \0 name */
  for (const char *p = ns; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
  h *= 1099511628211ULL;
  for (const char *p = name; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
  return (size_t)(h & (REGISTRY_BUCKETS - 1));
}

static uvw_var_t *lookup_locked(const char *ns, const char *name, size_t bucket) {
  for (uvw_var_t *v = buckets[bucket]; v; v = v->next)
    if (strcmp(v->ns, ns) == 0 && strcmp(v->name, name) == 0) return v;
  return NULL;
}

static int check_key(const char *ns, const char *name) {
  if (ns == NULL || name == NULL || ns[0] == '\0' || name[0] == '\0') {
    uvw_error_t *e = uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR,
                                    "context variable namespace and name must be non-empty strings");
    uvw__error_field(e, "namespace", "%s", ns ? ns : "(null)");
    uvw__error_field(e, "name", "%s", name ? name : "(null)");
    return UVW_EINVAL;
  }
  return 0;
}

static uvw_var_t *var_alloc(const char *ns, const char *name, uvw_value_t *dflt, int stub) {
  uvw_var_t *v = uvw__calloc(1, sizeof(*v));
  if (v == NULL) return NULL;
  v->ns = uvw__strndup(ns, strlen(ns));
  v->name = uvw__strndup(name, strlen(name));
  if (v->ns == NULL || v->name == NULL) {
    uvw__free(v->ns);
    uvw__free(v->name);
    uvw__free(v);
    return NULL;
  }
  atomic_init(&v->default_value, uvw__value_ref(dflt));
  atomic_init(&v->is_stub, stub);
  atomic_init(&v->policy, UVW_PROPAGATE_ALL);
  return v;
}

/* "main+0x1c (/usr/bin/prog)": the declaring call, named by the dynamic
 * symbol table when it can (a static function or a stripped program gives
 * the nearest exported name or just the module and offset). */
static void site_text(char *buf, size_t n, const void *addr) {
  Dl_info info;
  struct link_map *lm = NULL;
  if (addr == NULL) {
    snprintf(buf, n, "unknown");
    return;
  }
  if (dladdr1(addr, &info, (void **)&lm, RTLD_DL_LINKMAP) == 0 || info.dli_fname == NULL) {
    snprintf(buf, n, "%p", addr);
    return;
  }
  /* The main program's map has no name and dli_fname is its argv[0]
   * (which programs rewrite): name it by /proc/self/exe instead. */
  char exe[256];
  const char *module = info.dli_fname;
  if (lm != NULL && lm->l_name[0] == '\0') {
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (len > 0) {
      exe[len] = '\0';
      module = exe;
    }
  }
  if (info.dli_sname != NULL)
    snprintf(buf, n, "%s+0x%" PRIxPTR " (%s)", info.dli_sname, (uintptr_t)addr - (uintptr_t)info.dli_saddr, module);
  else
    snprintf(buf, n, "%s+0x%" PRIxPTR, module, (uintptr_t)addr - (uintptr_t)info.dli_fbase);
}

static void default_text(char *buf, size_t n, const uvw_value_t *v) {
  if (v == NULL) {
    snprintf(buf, n, "no default");
    return;
  }
  switch (uvw_value_kind(v)) {
  case UVW_VALUE_NIL: snprintf(buf, n, "nil"); break;
  case UVW_VALUE_BOOL: snprintf(buf, n, "%s", uvw_value_as_bool(v) ? "true" : "false"); break;
  case UVW_VALUE_INT: snprintf(buf, n, "%" PRId64, uvw_value_as_int(v)); break;
  case UVW_VALUE_DOUBLE: snprintf(buf, n, "%g", uvw_value_as_double(v)); break;
  case UVW_VALUE_STRING: snprintf(buf, n, "\"%.40s\"", uvw_value_as_string(v)); break;
  case UVW_VALUE_BYTES: snprintf(buf, n, "%zu bytes", uvw_value_len(v)); break;
  default: snprintf(buf, n, "an opaque value"); break;
  }
}

/* Called with the registry lock held: v's origin cannot change meanwhile. */
static int collision(const uvw_var_t *v) {
  char site[512], dflt[64];
  site_text(site, sizeof(site), v->declared_at);
  uvw_value_t *d = atomic_load_explicit(&((uvw_var_t *)v)->default_value, memory_order_acquire);
  default_text(dflt, sizeof(dflt), d);
  const char *origin = v->was_stub ? "a stub made from wire data, then declared" : "declared";
  uvw_error_t *e = uvw__error_set(UVW_ECOLLISION, UVW_KIND_CONTEXT_VAR_COLLISION,
                                  "context variable (%s, %s) is already declared: first %s by the call at %s, "
                                  "%s%s; declare each (namespace, name) once and share the variable "
                                  "(uvw_var_find returns it)",
                                  v->ns, v->name, origin, site, d ? "default " : "with ", dflt);
  uvw__error_field(e, "namespace", "%s", v->ns);
  uvw__error_field(e, "name", "%s", v->name);
  uvw__error_field(e, "first_declared_by", "%s", v->was_stub ? "stub" : "declaration");
  uvw__error_field(e, "first_declared_at", "%s", site);
  uvw__error_field(e, "existing_default", "%s", dflt);
  return UVW_ECOLLISION;
}

int uvw_var_declare(const char *ns, const char *name, uvw_value_t *dflt, uvw_var_t **out) {
  const void *caller = __builtin_return_address(0);
  int rc = check_key(ns, name);
  if (rc != 0) return rc;
  if (out == NULL || (dflt != NULL && uvw__value_is_sentinel(dflt))) {
    uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "uvw_var_declare(%s, %s): %s", ns, name,
                   out == NULL ? "out is NULL" : "a sentinel cannot be a default");
    return UVW_EINVAL;
  }
  size_t bucket = key_hash(ns, name);
  pthread_mutex_lock(&registry_lock);
  uvw_var_t *v = lookup_locked(ns, name, bucket);
  if (v != NULL && !atomic_load(&v->is_stub)) {
    rc = collision(v);
    pthread_mutex_unlock(&registry_lock);
    return rc;
  }
  if (v != NULL) {
    /* Take the stub over in place: every context that bound it keeps its
     * value under the same identity. Stubs have no default, so the explicit
     * default (if any) simply wins. */
    atomic_store_explicit(&v->default_value, uvw__value_ref(dflt), memory_order_release);
    atomic_store(&v->is_stub, 0);
    v->was_stub = 1;
    v->declared_at = caller;
    stub_count--;
  } else {
    v = var_alloc(ns, name, dflt, 0);
    if (v == NULL) {
      pthread_mutex_unlock(&registry_lock);
      return uvw__error_nomem("context variable");
    }
    v->declared_at = caller;
    v->next = buckets[bucket];
    buckets[bucket] = v;
  }
  pthread_mutex_unlock(&registry_lock);
  *out = v;
  return 0;
}

/* Called with the registry lock held. */
static int stub_create_locked(const char *ns, const char *name, size_t bucket, uvw_var_t **out) {
  uvw_var_t *v = var_alloc(ns, name, NULL, 1);
  if (v == NULL) return uvw__error_nomem("context variable stub");
  v->holds = 1;
  v->next = buckets[bucket];
  buckets[bucket] = v;
  stub_count++;
  *out = v;
  return 0;
}

int uvw__var_acquire(const char *ns, const char *name, int may_create, uvw_var_t **out, int *created) {
  *out = NULL;
  if (created) *created = 0;
  int rc = check_key(ns, name);
  if (rc != 0) return rc;
  size_t bucket = key_hash(ns, name);
  pthread_mutex_lock(&registry_lock);
  uvw_var_t *v = lookup_locked(ns, name, bucket);
  if (v != NULL) {
    if (atomic_load(&v->is_stub)) v->holds++;
    *out = v;
  } else if (!may_create) {
    rc = 1;
  } else if ((rc = stub_create_locked(ns, name, bucket, out)) == 0 && created) {
    *created = 1;
  }
  pthread_mutex_unlock(&registry_lock);
  return rc;
}

int uvw__var_stub(const char *ns, const char *name, uvw_var_t **out) {
  return uvw__var_acquire(ns, name, 1, out, NULL);
}

/* Called with the registry lock held: unlink and free a stub nobody holds. */
static void stub_free_locked(uvw_var_t *v) {
  for (uvw_var_t **p = &buckets[key_hash(v->ns, v->name)]; *p; p = &(*p)->next)
    if (*p == v) {
      *p = v->next;
      break;
    }
  stub_count--;
  uvw__free(v->ns);
  uvw__free(v->name);
  uvw__free(v);
}

/* Declared variables never become stubs again, so a lock-free look that
 * finds no stub is final: a manifest of declared variables takes no lock. */
static int any_stub(uvw_var_t *const *vars, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (vars[i] != NULL && atomic_load_explicit(&vars[i]->is_stub, memory_order_relaxed)) return 1;
  return 0;
}

void uvw__var_release(uvw_var_t *const *vars, size_t n) {
  if (!any_stub(vars, n)) return;
  pthread_mutex_lock(&registry_lock);
  for (size_t i = 0; i < n; i++) {
    uvw_var_t *v = vars[i];
    if (v == NULL || !atomic_load(&v->is_stub) || v->holds == 0) continue;
    if (--v->holds == 0 && !v->kept) stub_free_locked(v);
  }
  pthread_mutex_unlock(&registry_lock);
}

void uvw__var_hold(uvw_var_t *const *vars, size_t n) {
  if (!any_stub(vars, n)) return;
  pthread_mutex_lock(&registry_lock);
  for (size_t i = 0; i < n; i++)
    if (vars[i] != NULL && atomic_load(&vars[i]->is_stub)) vars[i]->holds++;
  pthread_mutex_unlock(&registry_lock);
}

size_t uvw__var_stub_count(void) {
  pthread_mutex_lock(&registry_lock);
  size_t n = stub_count;
  pthread_mutex_unlock(&registry_lock);
  return n;
}

uvw_var_t *uvw__var_lookup(const char *ns, const char *name) {
  if (ns == NULL || name == NULL) return NULL;
  pthread_mutex_lock(&registry_lock);
  uvw_var_t *v = lookup_locked(ns, name, key_hash(ns, name));
  pthread_mutex_unlock(&registry_lock);
  return v;
}

uvw_var_t *uvw_var_find(const char *ns, const char *name) {
  if (ns == NULL || name == NULL) return NULL;
  pthread_mutex_lock(&registry_lock);
  uvw_var_t *v = lookup_locked(ns, name, key_hash(ns, name));
  /* The caller may keep the pointer as long as it likes: a stub handed out
   * here is kept for the process, like a declared variable. */
  if (v != NULL && atomic_load(&v->is_stub)) v->kept = 1;
  pthread_mutex_unlock(&registry_lock);
  return v;
}

const char *uvw_var_namespace(const uvw_var_t *var) { return var ? var->ns : NULL; }
const char *uvw_var_name(const uvw_var_t *var) { return var ? var->name : NULL; }
uvw_value_t *uvw_var_default(const uvw_var_t *var) {
  return var ? atomic_load_explicit(&((uvw_var_t *)var)->default_value, memory_order_acquire) : NULL;
}
int uvw_var_is_stub(const uvw_var_t *var) { return var ? atomic_load(&((uvw_var_t *)var)->is_stub) : 0; }
unsigned uvw_var_policy(const uvw_var_t *var) { return var ? atomic_load(&((uvw_var_t *)var)->policy) : 0; }

int uvw_var_set_policy(uvw_var_t *var, unsigned flags) {
  if (var == NULL || (flags & ~UVW_PROPAGATE_ALL) != 0) {
    uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "bad propagation policy 0x%x", flags);
    return UVW_EINVAL;
  }
  /* Only the fork edges filter forks: a wire or baggage restriction must
   * not make every fork walk its map. */
  unsigned fork_edges = UVW_PROPAGATE_FORK | UVW_PROPAGATE_THREAD;
  if ((flags & fork_edges) != fork_edges) atomic_store(&uvw__var_restricted_seen, 1);
  atomic_store(&var->policy, flags);
  atomic_fetch_add(&uvw__var_policy_changes, 1);
  return 0;
}

