/* Delta manifests, end to end against a real worker: random scenarios run
 * twice, once with delta manifests and once with full manifests only (the
 * reference), and every state either side mounted must be the same.
 *
 * A scenario: a few chains (armed contexts), each step on one of them:
 * the caller changes its context (dscript.h), then a one-shot dispatch or
 * a step of a stream opened on another chain carries it; the routine
 * reports the state it found and changes it in turn; the reply callback
 * records the state after apply-back and continues the chain from it.
 * Mixed in: pending resets, stubs (names only the worker declares),
 * lenient and strict serialization failures, reconnects. The worker keeps
 * only 2 chains per direction (--delta-chains 2), so with 3 chains
 * evictions happen all the time. What is compared: each step's status,
 * the worker's digest of what it found, the caller's digest after
 * apply-back, and whether the chain id stayed. */
#include "dscript.h"
#include "harness.h"
#include "testutil.h"
#include "dispatch_int.h"
#include <stdarg.h>

#define CHAINS 3
#define STEPS 24

typedef struct {
  uint64_t rng;
  char *log;
  size_t len, cap;
  uvw_context_t *ctx[CHAINS]; /* where each chain goes on: its last reply's context */
  char id[CHAINS][33];
  uvw_dispatch_t *stream;
  int replies;
  int chain; /* the step's chain */
} scenario_t;

static uint64_t next_rand(scenario_t *s) {
  s->rng ^= s->rng << 13, s->rng ^= s->rng >> 7, s->rng ^= s->rng << 17;
  return s->rng;
}

static void logf_(scenario_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(scenario_t *s, const char *fmt, ...) {
  char buf[8192];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (s->len + (size_t)n + 1 > s->cap) {
    s->cap = (s->len + (size_t)n + 1) * 2;
    s->log = realloc(s->log, s->cap);
    cr_assert_not_null(s->log);
  }
  memcpy(s->log + s->len, buf, (size_t)n + 1);
  s->len += (size_t)n;
}

/* A random script: 0 to 3 operations on names a0..a5 (and x0..x2 for the
 * worker's, which the caller never declares: stubs there). */
static void random_script(scenario_t *s, int worker, int allow_opaque, char *out, size_t cap) {
  size_t k = 0;
  out[0] = '\0';
  int n = (int)(next_rand(s) % 4);
  for (int i = 0; i < n; i++) {
    char name[8];
    int stub = worker && next_rand(s) % 4 == 0;
    snprintf(name, sizeof(name), "%c%d", stub ? 'x' : 'a', (int)(next_rand(s) % (stub ? 3 : 6)));
    unsigned r = (unsigned)(next_rand(s) % 16);
    const char *sep = k ? ";" : "";
    if (r < 6)
      k += (size_t)snprintf(out + k, cap - k, "%ss %s v%u", sep, name, (unsigned)(next_rand(s) % 5));
    else if (r < 9)
      k += (size_t)snprintf(out + k, cap - k, "%si %s %d", sep, name, (int)(next_rand(s) % 7) - 3);
    else if (r < 10)
      k += (size_t)snprintf(out + k, cap - k, "%sn %s", sep, name);
    else if (r < 11)
      k += (size_t)snprintf(out + k, cap - k, "%sb %s %02x00ff", sep, name, (unsigned)(next_rand(s) % 256));
    else if (r < 15 || !allow_opaque)
      k += (size_t)snprintf(out + k, cap - k, "%su %s", sep, name);
    else
      k += (size_t)snprintf(out + k, cap - k, "%so %s", sep, name);
  }
}

static void record_reply(scenario_t *s, const uvw_reply_t *r) {
  char digest[4096];
  dscript_digest(NULL, digest, sizeof(digest));
  char id[33] = "";
  uvw_context_chain_id(uvw_context_current(), id);
  const char *seen = r->status == 0 && r->value ? uvw_value_as_string(r->value) : "-";
  logf_(s, "  reply status=%d worker=[%s] caller=[%s] chain=%s\n", r->status, seen ? seen : "?", digest,
        strcmp(id, s->id[s->chain]) == 0 ? "same" : "other");
  /* The chain goes on from here. */
  uvw_context_unref(s->ctx[s->chain]);
  s->ctx[s->chain] = uvw_context_copy_current();
  s->replies++;
}

static void on_reply(uvw_dispatch_t *d, const uvw_reply_t *r, void *arg) {
  (void)d;
  record_reply(arg, r);
}

static void stub_warnings(const uvw_error_t *w, void *arg) {
  (void)w;
  ++*(int *)arg;
}

static uvw_conn_t *connect_mode(int delta) {
  uvw_conn_t *c = NULL;
  cr_assert_eq(uvw_conn_open(&loop, worker.addr[0], &c), 0);
  cr_assert_eq(uvw_conn_set_delta_manifests(c, delta), 0);
  return c;
}

static void close_conn(scenario_t *s, uvw_conn_t **c, uvw__delta_counts_t *total) {
  if (s->stream) uvw_dispatch_close(s->stream);
  s->stream = NULL;
  uvw__delta_counts_t n = uvw__conn_delta_counts(*c);
  total->sent_full += n.sent_full;
  total->sent_delta += n.sent_delta;
  total->received_full += n.received_full;
  total->received_delta += n.received_delta;
  total->failed_delta += n.failed_delta;
  int closed = 0;
  uvw_conn_close(*c, dh_conn_closed, &closed);
  dh_run_until(&loop, &closed, 1, 60000);
  *c = NULL;
}

/* One step on chain k: see the file comment. */
static void step(scenario_t *s, uvw_conn_t *c, int k) {
  char local[512], remote[512];
  unsigned kind = (unsigned)(next_rand(s) % 10);
  int strict = kind == 9;
  random_script(s, 0, 1, local, sizeof(local));
  random_script(s, 1, 0, remote, sizeof(remote));
  s->chain = k;
  cr_assert_eq(uvw_context_enter(s->ctx[k]), 0);
  int rc = dscript_run(local);
  uvw_set_strict(strict);
  logf_(s, "step chain=%d local=[%s](%d) remote=[%s] strict=%d kind=%s\n", k, local, rc, remote, strict,
        kind < 3 && s->stream ? "stream" : "oneshot");
  uvw_value_t *arg = uvw_value_cstring(remote);
  int want = s->replies + 1;
  if (kind < 3 && s->stream)
    rc = uvw_dispatch_send(s->stream, arg, on_reply, s);
  else
    rc = uvw_conn_dispatch(c, "delta_script", &arg, 1, NULL, on_reply, s, NULL);
  uvw_value_unref(arg);
  uvw_set_strict(0);
  cr_assert_eq(uvw_context_exit(s->ctx[k]), 0);
  logf_(s, "  sent %d\n", rc);
  if (rc == 0) dh_run_until(&loop, &s->replies, want, 60000);
}

/* The stream the stream steps go to, opened and started (its first NEXT)
 * on chain 1. */
static void open_stream(scenario_t *s, uvw_conn_t *c) {
  s->chain = 1;
  int want = s->replies + 1;
  cr_assert_eq(uvw_context_enter(s->ctx[1]), 0);
  cr_assert_eq(uvw_conn_dispatch_stream(c, "delta_script_stream", NULL, 0, NULL, &s->stream), 0);
  cr_assert_eq(uvw_dispatch_next(s->stream, on_reply, s), 0);
  cr_assert_eq(uvw_context_exit(s->ctx[1]), 0);
  logf_(s, "stream opened\n");
  dh_run_until(&loop, &s->replies, want, 60000);
}

/* Run scenario `seed` in one mode; its record in *log (malloc'd). */
static char *run_scenario(uint64_t seed, int delta, uvw__delta_counts_t *total) {
  scenario_t s = {.rng = seed * 0x9E3779B97F4A7C15ull | 1};
  uvw_conn_t *c = connect_mode(delta);
  uvw_var_t *seedvar = dscript_var("seed");
  for (int k = 0; k < CHAINS; k++) {
    s.ctx[k] = uvw_context_new();
    cr_assert_eq(uvw_context_enter(s.ctx[k]), 0);
    uvw_value_t *v = uvw_value_int(k);
    cr_assert_eq(uvw_set(seedvar, v, NULL), 0); /* armed: a chain of its own */
    uvw_value_unref(v);
    uvw_context_chain_id(s.ctx[k], s.id[k]);
    cr_assert_eq(uvw_context_exit(s.ctx[k]), 0);
  }
  open_stream(&s, c);
  for (int i = 0; i < STEPS; i++) {
    if (next_rand(&s) % 16 == 0) { /* reconnect: both ends start from empty books */
      logf_(&s, "reconnect\n");
      close_conn(&s, &c, total);
      c = connect_mode(delta);
      open_stream(&s, c);
    }
    step(&s, c, (int)(next_rand(&s) % CHAINS));
  }
  close_conn(&s, &c, total);
  for (int k = 0; k < CHAINS; k++) uvw_context_unref(s.ctx[k]);
  return s.log ? s.log : strdup("");
}

Test(delta, a_random_scenario_mounts_the_same_states_with_and_without_deltas, .timeout = 900) {
  const char *listen[] = {NULL, NULL};
  char addr[200];
  dh_pipe_address(addr, sizeof(addr));
  listen[0] = addr;
  const char *extra[] = {"--delta-chains", "2", NULL};
  dh_start_args(&worker, listen, extra);
  uv_loop_init(&loop);
  int warnings = 0;
  uvw_set_warning_sink(stub_warnings, &warnings);
  const char *env = getenv("UVWOOL_DELTA_SCENARIOS");
  int scenarios = env ? atoi(env) : 200;
  uvw__delta_counts_t on = {0}, off = {0};
  for (int i = 0; i < scenarios; i++) {
    char *with = run_scenario((uint64_t)i + 1, 1, &on);
    char *without = run_scenario((uint64_t)i + 1, 0, &off);
    if (strcmp(with, without) != 0) {
      fprintf(stderr, "scenario %d differs.\n--- with deltas:\n%s\n--- full manifests only:\n%s\n", i + 1, with,
              without);
      cr_assert_fail("scenario %d: the states mounted with delta manifests differ from full manifests'", i + 1);
    }
    if (getenv("UVWOOL_DELTA_SHOW") && atoi(getenv("UVWOOL_DELTA_SHOW")) == i + 1) fprintf(stderr, "%s", with);
    free(with);
    free(without);
  }
  uvw_set_warning_sink(NULL, NULL);
  printf("delta differential: %d scenarios x %d steps, both modes; with deltas: %zu manifests sent whole, %zu "
         "as deltas; %zu received whole, %zu rebuilt from deltas; %d warnings\n",
         scenarios, STEPS, on.sent_full, on.sent_delta, on.received_full, on.received_delta, warnings);
  /* The scenarios did exercise deltas both ways, and none failed to apply. */
  cr_assert_gt(on.sent_delta, 0);
  cr_assert_gt(on.received_delta, 0);
  cr_assert_eq(on.failed_delta, 0);
  cr_assert_gt(on.sent_full, 0);
  cr_assert_eq(off.sent_full + off.sent_delta + off.received_full + off.received_delta + off.failed_delta, 0,
               "books kept with delta manifests off");
  dh_finish(&loop, NULL);
  dh_stop(&worker);
}

/* A worker that does not take deltas (as an older worker, whose Acks never
 * advertise): a caller asking for them keeps sending full manifests, and
 * gets full manifests back; everything works as without deltas. */
Test(delta, a_caller_asking_a_worker_without_deltas_stays_on_full_manifests) {
  char addr[200];
  dh_pipe_address(addr, sizeof(addr));
  const char *listen[] = {addr, NULL};
  const char *extra[] = {"--no-delta-manifests", NULL};
  dh_start_args(&worker, listen, extra);
  uv_loop_init(&loop);
  uvw_conn_t *c = connect_mode(1);
  scenario_t s = {.rng = 7};
  s.ctx[0] = uvw_context_new();
  cr_assert_eq(uvw_context_enter(s.ctx[0]), 0);
  cr_assert_eq(dscript_run("s a0 kept;i a1 5"), 0);
  uvw_context_chain_id(s.ctx[0], s.id[0]);
  cr_assert_eq(uvw_context_exit(s.ctx[0]), 0);
  for (int i = 0; i < 10; i++) {
    uvw_value_t *arg = uvw_value_cstring(i % 2 ? "s a2 odd" : "");
    cr_assert_eq(uvw_context_enter(s.ctx[0]), 0);
    cr_assert_eq(uvw_conn_dispatch(c, "delta_script", &arg, 1, NULL, on_reply, &s, NULL), 0);
    cr_assert_eq(uvw_context_exit(s.ctx[0]), 0);
    uvw_value_unref(arg);
    dh_run_until(&loop, &s.replies, i + 1, 60000);
  }
  cr_assert_not_null(strstr(s.log, "caller=[d.a0=s:kept d.a1=i:5 d.a2=s:odd]"), "%s", s.log);
  cr_assert_null(strstr(s.log, "status=-"), "every step succeeded: %s", s.log);
  uvw__delta_counts_t n = uvw__conn_delta_counts(c);
  cr_assert_eq(n.sent_delta + n.received_delta + n.failed_delta, 0, "no delta either way");
  cr_assert_eq(n.sent_full, 10, "its books still saw every manifest it sent (%zu)", n.sent_full);
  uvw__delta_counts_t total = {0};
  close_conn(&s, &c, &total);
  uvw_context_unref(s.ctx[0]);
  free(s.log);
  dh_finish(&loop, NULL);
  dh_stop(&worker);
}
