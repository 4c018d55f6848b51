/* Helpers shared by the unit tests. */
#ifndef UVWOOL_TESTUTIL_H
#define UVWOOL_TESTUTIL_H

#include <stddef.h>

#include "uvwool.h"

/* A variable in a namespace unique to this call, so tests never collide
 * through the process-wide registry. */
uvw_var_t *tu_var(const char *name, uvw_value_t *default_value);
/* A fresh namespace string "test.N" (static storage, valid until the next call). */
const char *tu_namespace(void);

/* Opaque values whose release is counted, to prove references are dropped. */
extern const uvw_opaque_ops_t tu_counted_ops;
uvw_value_t *tu_counted_value(void);
size_t tu_released(void);

/* An allocator that fails the Nth allocation from now (1-based), or never (0). */
void tu_fail_alloc_after(long n);
void tu_restore_alloc(void);

#endif
