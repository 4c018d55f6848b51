#include "testutil.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static atomic_long ns_counter;
static _Thread_local char ns_buf[32];

const char *tu_namespace(void) {
  snprintf(ns_buf, sizeof(ns_buf), "test.%ld", atomic_fetch_add(&ns_counter, 1));
  return ns_buf;
}

uvw_var_t *tu_var(const char *name, uvw_value_t *default_value) {
  uvw_var_t *v = NULL;
  if (uvw_var_declare(tu_namespace(), name, default_value, &v) != 0) abort();
  return v;
}

static atomic_size_t released;
static void counted_release(void *p) {
  (void)p;
  atomic_fetch_add(&released, 1);
}
const uvw_opaque_ops_t tu_counted_ops = {"test.counted", counted_release};
uvw_value_t *tu_counted_value(void) {
  return uvw_value_opaque(NULL, &tu_counted_ops);
}
size_t tu_released(void) { return atomic_load(&released); }

static atomic_long fail_at, calls;
static int should_fail(void) {
  long n = atomic_fetch_add(&calls, 1) + 1;
  long f = atomic_load(&fail_at);
  return f > 0 && n >= f;
}
static void *f_malloc(size_t n) { return should_fail() ? NULL : malloc(n); }
static void *f_realloc(void *p, size_t n) { return should_fail() ? NULL : realloc(p, n); }
static void *f_calloc(size_t c, size_t n) { return should_fail() ? NULL : calloc(c, n); }

void tu_fail_alloc_after(long n) {
  atomic_store(&calls, 0);
  atomic_store(&fail_at, n);
  uvw_replace_allocator(f_malloc, f_realloc, f_calloc, free);
}
void tu_restore_alloc(void) {
  atomic_store(&fail_at, 0);
  uvw_replace_allocator(malloc, realloc, calloc, free);
}
