/* UVWOOL_DEBUG=unwrapped (or uvw_debug_unwrapped(1)): say where a variable
 * is read inside a libuv callback that was not registered through uvwool
 * (uv_timer_start where uvw_timer_start was meant). Such a callback runs in
 * whatever context is current when uv_run runs, not the one it was
 * registered in, and nothing else tells.
 *
 * The exact condition: a uvw_get / uvw_get_or on a thread where no uvwool
 * loop frame is active (no wrapped callback, call-soon entry or task body of
 * a loop is running there) and whose call stack passes through libuv's
 * uv_run. Reported once per call site (the reader's return address).
 *
 * Limits: the stack is walked with backtrace() (unwind tables; at most 128
 * frames), and uv_run is the one the global symbol scope resolves (a
 * statically linked libuv without exported symbols is not seen). A raw
 * callback run by a nested uv_run inside a wrapped callback is not reported
 * (the outer frame is active), nor is a raw uv_queue_work body (it runs on
 * a pool thread, not under uv_run). A context the raw callback entered
 * explicitly is reported too: the check cannot tell it from the ambient
 * one. Off, the reads pay one predictable branch; on, every read outside a
 * frame walks the stack. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <execinfo.h>
#include <link.h>
#include <stdint.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "loop_internal.h"

#define MAX_FRAMES 128
#define MAX_SITES 1024 /* sites remembered: beyond, reads stop being reported */

static pthread_mutex_t sites_lock = PTHREAD_MUTEX_INITIALIZER;
static const void *sites[MAX_SITES];
static size_t nsites;

typedef struct {
  uintptr_t start, end; /* uv_run's code */
} range_t;

/* uv_run's code as the global scope resolves it; end == start when its size
 * is unknown (then a frame matches by its nearest symbol). */
static int uv_run_range(range_t *r) {
  void *sym = dlsym(RTLD_DEFAULT, "uv_run");
  Dl_info info;
  const ElfW(Sym) *entry = NULL;
  if (sym == NULL || !dladdr1(sym, &info, (void **)&entry, RTLD_DL_SYMENT) || info.dli_saddr == NULL) return -1;
  r->start = (uintptr_t)info.dli_saddr;
  r->end = r->start + (entry ? entry->st_size : 0);
  return 0;
}

static int under_uv_run(void) {
  static range_t run; /* computed once; racing threads compute the same */
  static int known;
  if (!__atomic_load_n(&known, __ATOMIC_ACQUIRE)) {
    range_t r;
    if (uv_run_range(&r) != 0) return 0;
    pthread_mutex_lock(&sites_lock);
    run = r;
    __atomic_store_n(&known, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&sites_lock);
  }
  void *frames[MAX_FRAMES];
  int n = backtrace(frames, MAX_FRAMES);
  for (int i = 1; i < n; i++) {
    uintptr_t pc = (uintptr_t)frames[i] - 1; /* a return address: inside the caller */
    if (run.end > run.start) {
      if (pc >= run.start && pc < run.end) return 1;
    } else {
      Dl_info info;
      if (dladdr((void *)pc, &info) && (uintptr_t)info.dli_saddr == run.start) return 1;
    }
  }
  return 0;
}

/* 1 the first time site is seen (then remembered), else 0. */
static int first_time(const void *site) {
  int first = 1;
  pthread_mutex_lock(&sites_lock);
  for (size_t i = 0; i < nsites && first; i++) first = sites[i] != site;
  if (first && nsites < MAX_SITES)
    sites[nsites++] = site;
  else
    first = 0;
  pthread_mutex_unlock(&sites_lock);
  return first;
}

static void report(const void *site) {
  Dl_info info;
  const char *fn = "?", *obj = "?";
  if (dladdr(site, &info)) {
    if (info.dli_sname) fn = info.dli_sname;
    if (info.dli_fname) obj = info.dli_fname;
  }
  uvw_error_t *w = uvw__error_new(0, UVW_KIND_WOOL_WARNING,
                                  "a context variable was read in a libuv callback not registered through uvwool "
                                  "(read from %s in %s, at %p): it runs in the context current at uv_run, not the "
                                  "one it was registered in; register it with the uvw_ wrapper (uvw_timer_start "
                                  "for uv_timer_start, ...) or run the program in transparent mode",
                                  fn, obj, site);
  uvw__error_field(w, "function", "%s", fn);
  uvw__error_field(w, "object", "%s", obj);
  uvw__warn(w);
}

static void unwrapped_read(const void *site) {
  /* A wrapped callback, call-soon entry or task body has its frame's hook. */
  if (uvw__tstate.write_hook == uvw__loop_write_hook) return;
  if (under_uv_run() && first_time(site)) report(site);
}

int uvw_debug_unwrapped(int on) {
  uvw__read_hook_fn prev = atomic_exchange(&uvw__read_hook, on ? unwrapped_read : NULL);
  return prev != NULL;
}

static void from_env(void) {
  const char *v = getenv("UVWOOL_DEBUG");
  if (v == NULL) return;
  /* A comma-separated list, for switches to come. */
  for (const char *p = v; *p;) {
    size_t n = strcspn(p, ",");
    if (n == strlen("unwrapped") && strncmp(p, "unwrapped", n) == 0) uvw_debug_unwrapped(1);
    p += n + (p[n] == ',');
  }
}

static pthread_once_t env_once = PTHREAD_ONCE_INIT;

void uvw__debug_env(void) { pthread_once(&env_once, from_env); }

/* Read at load too: a program whose only callbacks are unwrapped may never
 * create a loop state. */
__attribute__((constructor)) static void debug_init(void) { uvw__debug_env(); }
