#define _GNU_SOURCE 1 /* pthread_getname_np */
#include "thread.h"

#include <linux/membarrier.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "context.h"
#include "error.h"

__thread uvw__thread_t uvw__tstate __attribute__((tls_model("initial-exec")));

/* Generation 0 means "no thread"; the first thread to use uvwool gets 1. */
static atomic_uint_fast64_t next_gen = 1;
static pthread_key_t cleanup_key;
static pthread_once_t cleanup_once = PTHREAD_ONCE_INIT;

static void thread_cleanup(void *unused) {
  (void)unused;
  uvw__thread_t *t = &uvw__tstate;
  if (t->gen == 0) return;
  /* A context left entered at thread exit is released with the base. */
  uvw_context_unref(t->base);
  t->base = t->current = NULL;
  uvw_value_unref(t->foreign_lookup);
  t->foreign_lookup = NULL;
  /* After the base: what it held may have joined the caches. */
  uvw__freelist_drain(&t->free_contexts);
  uvw__freelist_drain(&t->free_chains);
  uvw__freelist_drain(&t->free_tokens);
  if (t->last_error) uvw_error_unref(t->last_error);
  t->last_error = NULL;
  t->gen = 0;
}

static void make_key(void) { (void)pthread_key_create(&cleanup_key, thread_cleanup); }

/* The main thread never runs pthread key destructors: clean it at exit so
 * valgrind sees no leak from a program that simply returns from main. */
__attribute__((destructor)) static void main_thread_cleanup(void) { thread_cleanup(NULL); }

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static void seed_rng(uvw__thread_t *t) {
  uint64_t seed[4];
  if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed)) {
    /* No entropy source: mix time and the generation so ids stay distinct. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (t->gen << 17);
    for (int i = 0; i < 4; i++) seed[i] = splitmix64(&x);
  }
  memcpy(t->rng, seed, sizeof(seed));
  if ((t->rng[0] | t->rng[1] | t->rng[2] | t->rng[3]) == 0) t->rng[0] = 1;
}

/* Recent threads' OS ids by generation: a ring, so a process that creates
 * threads forever holds a bounded table (an id older than TID_RING threads
 * is reported as unknown). Written once by each thread at its init; read on
 * error paths only. */
#define TID_RING 4096
static struct {
  atomic_uint_fast64_t gen;
  atomic_int tid;
} tid_ring[TID_RING];

int uvw__thread_os_tid_of(uint64_t gen) {
  if (gen == 0) return 0;
  size_t i = (size_t)(gen % TID_RING);
  uint64_t before = atomic_load_explicit(&tid_ring[i].gen, memory_order_acquire);
  int tid = atomic_load_explicit(&tid_ring[i].tid, memory_order_acquire);
  uint64_t after = atomic_load_explicit(&tid_ring[i].gen, memory_order_acquire);
  return before == gen && after == gen ? tid : 0; /* a slot rewritten meanwhile: unknown */
}

static void remember_tid(uint64_t gen, int tid) {
  size_t i = (size_t)(gen % TID_RING);
  atomic_store_explicit(&tid_ring[i].gen, 0, memory_order_release);
  atomic_store_explicit(&tid_ring[i].tid, tid, memory_order_release);
  atomic_store_explicit(&tid_ring[i].gen, gen, memory_order_release);
}

void uvw__thread_init(void) {
  uvw__thread_t *t = &uvw__tstate;
  t->gen = atomic_fetch_add(&next_gen, 1);
  t->os_tid = (int)syscall(SYS_gettid);
  remember_tid(t->gen, t->os_tid);
  seed_rng(t);
  /* The base context is allocated lazily by uvw__context_current so a
   * thread that only reads errors never allocates one. */
  t->base = t->current = NULL;
  pthread_once(&cleanup_once, make_key);
  (void)pthread_setspecific(cleanup_key, t);
  uvw__core_copies_check(); /* once per process: a second core is said at first use */
}

int uvw__membarrier_ok;

/* Registered before main so the flag never changes while writers run. */
__attribute__((constructor)) static void membarrier_register(void) {
#ifdef UVW__TSAN
  /* ThreadSanitizer cannot see the kernel's barrier: keep the fences it understands. */
  uvw__membarrier_ok = 0;
#else
  uvw__membarrier_ok = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
#endif
}

void uvw__membarrier(void) {
  if (uvw__membarrier_ok) (void)syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
}

void uvw__thread_name(int tid, char *buf, size_t n) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/self/task/%d/comm", tid);
  FILE *f = tid > 0 ? fopen(path, "r") : NULL;
  size_t len = f ? fread(buf, 1, n - 1, f) : 0;
  if (f) fclose(f);
  while (len > 0 && buf[len - 1] == '\n') len--;
  if (len == 0) snprintf(buf, n, "?");
  else buf[len] = '\0';
}

void uvw__thread_self_name(char *buf, size_t n) {
  if (n < 16 || pthread_getname_np(pthread_self(), buf, n) != 0 || buf[0] == '\0') snprintf(buf, n, "?");
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next64(uint64_t s[4]) {
  uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

void uvw__thread_random128(uint8_t out[16]) {
  uvw__thread_t *t = uvw__thread();
  uint64_t a = next64(t->rng), b = next64(t->rng);
  memcpy(out, &a, 8);
  memcpy(out + 8, &b, 8);
}
