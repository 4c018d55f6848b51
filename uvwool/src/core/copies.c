/* One core per process: a second copy of the core (a program linked with
 * the static uvwool run under LD_PRELOAD=libuvwool-preload.so, which brings
 * the shared one) has variables, contexts and thread state of its own, so
 * values set through one copy are invisible to the other's callbacks, with
 * nothing to show for it. Each copy looks itself up by name in the global
 * scope on first use: another address means another copy, said once.
 *
 * The lookup finds what the dynamic linker exports. A static copy in an
 * executable is not exported (unless linked with -rdynamic), so it is the
 * static copy that finds the shared one and speaks; a copy loaded with
 * RTLD_LOCAL is found by no one but finds a global one. Two copies that are
 * both hidden (two static copies in two RTLD_LOCAL modules) are not seen. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <string.h>

#include "error.h"
#include "thread.h"
#include "uvwool/common.h"

/* A static object: its address is this copy's own, never interposed (the
 * address of an exported function may resolve to another copy's). */
static const char anchor = 0;

const void *uvw_core_id(void) { return &anchor; }

static const char *object_of(const void *addr) {
  Dl_info info;
  if (!dladdr(addr, &info) || info.dli_fname == NULL || info.dli_fname[0] == '\0') return "the main program";
  return info.dli_fname;
}

static void check_copies(void) {
  const void *mine = &anchor;
  void *sym = dlsym(RTLD_DEFAULT, "uvw_core_id");
  if (sym == NULL) return;
  const void *(*id)(void);
  memcpy(&id, &sym, sizeof id); /* object to function pointer, as dlsym */
  const void *found = id();
  if (found == mine) return;
  uvw_error_t *w = uvw__error_new(
      0, UVW_KIND_WOOL_WARNING,
      "two copies of the uvwool core in this process: one in %s (%p), another in %s (%p); values set "
      "through one are invisible to callbacks run by the other (a program linked with the static uvwool "
      "run under libuvwool-preload.so?): link the shared libuvwool",
      object_of(mine), mine, object_of(found), found);
  uvw__error_field(w, "this_copy", "%s", object_of(mine));
  uvw__error_field(w, "other_copy", "%s", object_of(found));
  uvw__warn(w);
}

static pthread_once_t copies_once = PTHREAD_ONCE_INIT;

void uvw__core_copies_check(void) { pthread_once(&copies_once, check_copies); }
