/* Per-thread state: the current context, the thread's generation number (the
 * guard's notion of "which thread", never reused unlike OS thread ids), the
 * current task, the last error and the id generator.
 *
 * One initial-exec TLS block keeps every hot-path access to a single
 * %fs-relative load, with no __tls_get_addr call even in the shared library. */
#ifndef UVW_CORE_THREAD_H
#define UVW_CORE_THREAD_H

#include <stddef.h>
#include <stdint.h>

#include "freelist.h"
#include "sanitizers.h"
#include "uvwool/context.h"
#include "uvwool/errors.h"

struct uvw_task_s;

typedef struct uvw__thread_s {
  uint64_t gen;                 /* 0 until the thread first uses uvwool */
  int os_tid;                   /* gettid(), cached at first use for error reports */
  uvw_context_t *current;       /* NULL until the thread's base context is needed */
  uvw_context_t *base;          /* the thread's own default context */
  struct uvw_task_s *task;      /* current task, borrowed; NULL in plain code and plain callbacks */
  uvw_error_t *last_error;
  uint64_t rng[4];              /* xoshiro256** state for chain ids */
  uint64_t context_serial;      /* per-thread count behind context serials */
  /* Freed objects kept for reuse (freelist.h). */
  uvw__freelist_t free_contexts, free_chains, free_tokens;
  /* Set by the loop layer while a loop callback runs: called before every
   * set/reset/mount (arming: non-zero when the write arms the context) so the
   * loop can install its task factory and report its displacement; also
   * before a task claims a context this thread has entered (arming
   * UVW__WRITE_CLAIM), so the loop can give a capture it shares with the
   * running callback its own copy first. Core knows nothing of loops; a
   * non-zero return fails the write. */
  int (*write_hook)(void *arg, int arming);
  void *write_hook_arg;
  /* uvw_context_lookup on a context entered by another thread keeps the
   * value it returns alive here until the next such lookup (context.c). */
  uvw_value_t *foreign_lookup;
} uvw__thread_t;

/* write_hook's `arming` for a task claiming an entered context. */
#define UVW__WRITE_CLAIM 2

extern __thread uvw__thread_t uvw__tstate __attribute__((tls_model("initial-exec")));

void uvw__thread_init(void);
/* A check the loop layer installs on every read (uvw_get, uvw_get_or) while
 * UVWOOL_DEBUG=unwrapped is on, given the reader's return address; NULL
 * (the default) costs the read one predictable branch. */
typedef void (*uvw__read_hook_fn)(const void *site);
extern _Atomic(uvw__read_hook_fn) uvw__read_hook;

/* Warn (once) if another copy of the core is loaded in the process (copies.c). */
void uvw__core_copies_check(void);

static inline uvw__thread_t *uvw__thread(void) {
  if (__builtin_expect(uvw__tstate.gen == 0, 0)) uvw__thread_init();
  return &uvw__tstate;
}

/* Non-zero when membarrier(PRIVATE_EXPEDITED) is registered for the
 * process: the owner side of the foreign-reader handshake (context.h) then
 * needs only a compiler barrier, the rare foreign reader pays the syscall. */
extern int uvw__membarrier_ok;
/* Make every running thread of the process execute a full barrier. */
void uvw__membarrier(void);

/* Name of the OS thread `tid` of this process ("?" when it is gone), and of
 * the calling thread: for error reports only (a syscall or a /proc read). */
void uvw__thread_name(int tid, char *buf, size_t n);
/* The OS thread id of the thread with generation `gen`, or 0 when it is not
 * known (0, or a thread so old that its slot was reused): reports name
 * threads by generation and look the OS id up here, so the hot paths store
 * only the generation. */
int uvw__thread_os_tid_of(uint64_t gen);
void uvw__thread_self_name(char *buf, size_t n);

/* 128 random bits for a chain id, from the thread's generator (seeded from
 * the OS once per thread, so minting costs no syscall). */
void uvw__thread_random128(uint8_t out[16]);

#endif
