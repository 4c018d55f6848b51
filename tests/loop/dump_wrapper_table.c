/* Prints the wrapper table, one row per line: libuv name, uvwool name, kind.
 * Also checks that each row's function pointers are real, so a listed
 * wrapper that does not exist fails to link rather than pass. */
#include <stdio.h>

#include "uvwool/loop.h"

static const char *kind_name(uvw_wrapper_kind_t k) {
  static const char *names[] = {"MULTI", "ONESHOT", "STOP", "CLOSE", "WORK", "THREAD", "SYNC"};
  return (unsigned)k < sizeof(names) / sizeof(names[0]) ? names[k] : "?";
}

int main(void) {
  size_t n;
  const uvw_wrapper_t *t = uvw_wrapper_table(&n);
  for (size_t i = 0; i < n; i++) {
    if (t[i].wrapper == NULL || t[i].libuv == NULL || t[i].wrapper == t[i].libuv) return 1;
    printf("%s %s %s %s\n", t[i].libuv_name, t[i].name, kind_name(t[i].kind), t[i].family);
  }
  return 0;
}
