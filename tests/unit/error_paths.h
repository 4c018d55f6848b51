/* The shared half of the error-path tests (tests/unit/test_error_paths.c for
 * the core and the wire, tests/dispatch/test_dispatch_error_paths.c for the
 * loop and dispatch): a table of failing calls, each checked for a negative
 * code and a detail record that names the function or the argument, and a
 * coverage check that every function the shared library exports and the
 * test's headers declare is in the table or in an allow-list of functions
 * that cannot fail, each with its reason. */
#ifndef UVWOOL_ERROR_PATHS_H
#define UVWOOL_ERROR_PATHS_H

#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uvwool.h"

/* A case returns the failing call's code; a pointer-returning call returns
 * EP_NULL when it gave NULL (its code is then the detail's). */
#define EP_NULL INT_MIN
#define EP_PTR(expr) ((expr) == NULL ? EP_NULL : 0)

typedef struct {
  const char *fn;     /* the public function this case fails */
  int (*call)(void);  /* makes the failing call */
  const char *names;  /* what the detail must name; NULL: fn */
} ep_case_t;

typedef struct {
  const char *fn;
  const char *why; /* why it cannot fail */
} ep_allowed_t;

static int ep_detail_names(const uvw_error_t *e, const char *what) {
  if (strstr(uvw_error_message(e), what)) return 1;
  for (size_t i = 0; i < uvw_error_field_count(e); i++)
    if (strcmp(uvw_error_field_value(e, i), what) == 0) return 1;
  return 0;
}

static void ep_run(const ep_case_t *c) {
  uvw_clear_error();
  int rc = c->call();
  const uvw_error_t *e = uvw_last_error();
  const char *what = c->names ? c->names : c->fn;
  cr_expect(rc < 0, "%s: returned %d, not a negative code", c->fn, rc);
  if (rc >= 0) return;
  cr_expect(e != NULL, "%s: returned %d (%s) and left no detail", c->fn, rc, uvw_err_name(rc));
  if (e == NULL) return;
  cr_expect(uvw_error_code(e) < 0, "%s: the detail's code is %d", c->fn, uvw_error_code(e));
  if (rc != EP_NULL)
    cr_expect(uvw_error_code(e) == rc, "%s: returned %s but the detail says %s", c->fn, uvw_err_name(rc),
              uvw_err_name(uvw_error_code(e)));
  cr_expect(uvw_error_kind(e) != UVW_KIND_NONE, "%s: the detail has no kind", c->fn);
  cr_expect(uvw_error_message(e)[0] != '\0', "%s: the detail has no message", c->fn);
  cr_expect(ep_detail_names(e, what), "%s: the detail \"%s\" does not name %s", c->fn, uvw_error_message(e), what);
}

static void ep_run_all(const ep_case_t *cases, size_t n) {
  for (size_t i = 0; i < n; i++) ep_run(&cases[i]);
}

static char *ep_slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  cr_assert(f, "cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  cr_assert(s && fread(s, 1, (size_t)n, f) == (size_t)n);
  s[n] = '\0';
  fclose(f);
  return s;
}

/* Does a header declare `fn` (its name followed by "(")? */
static int ep_declared(const char *const *texts, size_t ntexts, const char *fn) {
  size_t n = strlen(fn);
  for (size_t t = 0; t < ntexts; t++)
    for (const char *p = strstr(texts[t], fn); p; p = strstr(p + 1, fn)) {
      char before = p == texts[t] ? ' ' : p[-1];
      if ((before != ' ' && before != '*') || p[n] != '(') continue;
      /* A declaration, not a mention: the line starts with its return type
       * (not a comment) and has no "(" before the name. */
      const char *line = p;
      while (line > texts[t] && line[-1] != '\n') line--;
      while (*line == ' ') line++;
      if (*line == '*' || *line == '/' || memchr(line, '(', (size_t)(p - line))) continue;
      return 1;
    }
  return 0;
}

static int ep_listed(const ep_case_t *cases, size_t ncases, const ep_allowed_t *allowed, size_t nallowed,
                     const char *fn) {
  for (size_t i = 0; i < ncases; i++)
    if (strcmp(cases[i].fn, fn) == 0) return 1;
  for (size_t i = 0; i < nallowed; i++)
    if (strcmp(allowed[i].fn, fn) == 0) return 1;
  return 0;
}

/* Every uvw_ function exported by the shared library and declared in one of
 * `headers` (paths under UVWOOL_INCLUDE_DIR/uvwool) has a case or an
 * allow-list entry; every entry names an exported function. */
static void ep_check_coverage(const char *const *headers, size_t nheaders, const ep_case_t *cases, size_t ncases,
                              const ep_allowed_t *allowed, size_t nallowed) {
  const char *texts[16];
  cr_assert(nheaders <= 16);
  for (size_t i = 0; i < nheaders; i++) {
    char path[1024];
    snprintf(path, sizeof(path), "%s/uvwool/%s", UVWOOL_INCLUDE_DIR, headers[i]);
    texts[i] = ep_slurp(path);
  }
  char cmd[1200];
  /* readelf, not nm: nm loads its plugins, which valgrind's child tracing
   * reports as the loader's own errors. */
  snprintf(cmd, sizeof(cmd), "readelf --dyn-syms -W '%s'", UVWOOL_SHARED_LIB);
  FILE *p = popen(cmd, "r");
  cr_assert(p, "cannot run %s", cmd);
  char line[512], sym[256];
  size_t exported = 0, missing = 0;
  static char names[1024][256];
  while (fgets(line, sizeof(line), p)) {
    char type[16], bind[16], ndx[16];
    if (sscanf(line, "%*s %*s %*s %15s %15s %*s %15s %255s", type, bind, ndx, sym) != 4) continue;
    if (strcmp(type, "FUNC") != 0 || strcmp(bind, "GLOBAL") != 0 || strcmp(ndx, "UND") == 0) continue;
    if (strncmp(sym, "uvw_", 4) != 0) continue;
    char *at = strchr(sym, '@'); /* versioned symbols: uvw_x@@UVWOOL_0.1 */
    if (at) *at = '\0';
    if (exported < 1024) snprintf(names[exported++], sizeof(names[0]), "%s", sym);
    if (!ep_declared(texts, nheaders, sym)) continue;
    if (!ep_listed(cases, ncases, allowed, nallowed, sym)) {
      cr_expect_fail("%s is exported but has no error-path case and is not in the allow-list", sym);
      missing++;
    }
  }
  pclose(p);
  cr_assert(exported > 100, "readelf found only %zu exported functions in %s", exported, UVWOOL_SHARED_LIB);
  for (size_t i = 0; i < ncases + nallowed; i++) {
    const char *fn = i < ncases ? cases[i].fn : allowed[i - ncases].fn;
    int found = 0;
    for (size_t k = 0; k < exported && !found; k++) found = strcmp(names[k], fn) == 0;
    cr_expect(found, "%s is in the table but not exported", fn);
    cr_expect(ep_declared(texts, nheaders, fn), "%s is in the table but not declared in this test's headers", fn);
  }
  for (size_t i = 0; i < nheaders; i++) free((void *)texts[i]);
  cr_expect(missing == 0, "%zu exported functions are not covered", missing);
}

#endif
