/* Hostile peers against a real uvwool-worker (issue 11, items 1 and 2):
 * undeclared names cannot deny service, stubs go when their dispatch goes,
 * and each peer's memory and time are bounded by the worker's limits. */
#include "harness.h"
#include "wire_frame.h"

#include <fcntl.h>
#include <time.h>

/* ---- a worker with limit flags ------------------------------------------------------ */

static dh_worker_t hw;

static void hs_open(const char *const *extra) {
  char addr[200];
  dh_pipe_address(addr, sizeof(addr));
  const char *const listen[] = {addr, NULL};
  dh_start_args(&hw, listen, extra);
}

/* ---- frames by hand ---------------------------------------------------------------- */

typedef struct {
  uint8_t *p;
  size_t n, cap;
} pb_t;

static void pb_raw(pb_t *b, const void *data, size_t len) {
  if (b->n + len > b->cap) {
    b->cap = (b->n + len) * 2;
    b->p = realloc(b->p, b->cap);
    cr_assert_not_null(b->p);
  }
  memcpy(b->p + b->n, data, len);
  b->n += len;
}

static void pb_varint(pb_t *b, uint64_t v) {
  uint8_t tmp[10];
  size_t k = 0;
  do {
    tmp[k++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>= 7;
  } while (v);
  pb_raw(b, tmp, k);
}

/* A length-delimited field. */
static void pb_bytes(pb_t *b, unsigned field, const void *data, size_t len) {
  pb_varint(b, (uint64_t)field << 3 | 2);
  pb_varint(b, len);
  pb_raw(b, data, len);
}

/* A manifest of `n` entries (ns, name_i), all resets, undeclared anywhere. */
static pb_t junk_manifest(const char *ns, const char *prefix, size_t n) {
  pb_t m = {0};
  pb_bytes(&m, 1, "0123456789abcdef0123456789abcdef", 32);
  for (size_t i = 0; i < n; i++) {
    char name[64];
    int k = snprintf(name, sizeof name, "%s%zu", prefix, i);
    pb_t e = {0};
    pb_bytes(&e, 1, ns, strlen(ns));
    pb_bytes(&e, 2, name, (size_t)k);
    pb_bytes(&m, 2, e.p, e.n);
    free(e.p);
  }
  return m;
}

static void send_task(int fd, uint64_t id, const char *routine) {
  uvw_frame_t *t = uvw_frame_new(UVW_FRAME_TASK, id);
  cr_assert_eq(uvw_frame_set_routine(t, routine), 0);
  dh_raw_send_frame(fd, t);
  uvw_frame_free(t);
}

static void send_next(int fd, uint64_t id, const pb_t *manifest) {
  uvw_frame_t *n = uvw_frame_new(UVW_FRAME_NEXT, id);
  if (manifest) cr_assert_eq(uvw_frame_set_manifest_bytes(n, manifest->p, manifest->n), 0);
  dh_raw_send_frame(fd, n);
  uvw_frame_free(n);
}

/* Task + Next (with manifest, may be NULL) + Ack; returns the answer. */
static uvw_frame_t *one_shot(int fd, uint64_t id, const char *routine, const pb_t *manifest) {
  send_task(fd, id, routine);
  send_next(fd, id, manifest);
  uvw_frame_t *ack = dh_raw_recv_frame(fd);
  cr_assert_eq(uvw_frame_kind(ack), UVW_FRAME_ACK, "kind %d", uvw_frame_kind(ack));
  uvw_frame_free(ack);
  return dh_raw_recv_frame(fd);
}

/* The worker's stub count, asked over `fd`. */
static long worker_stubs(int fd, uint64_t id) {
  uvw_frame_t *r = one_shot(fd, id, "stub_count", NULL);
  cr_assert_eq(uvw_frame_kind(r), UVW_FRAME_RESULT);
  long n = (long)uvw_value_as_int(uvw_frame_value(r));
  uvw_frame_free(r);
  return n;
}

/* 1 when the worker closed fd within ms (EOF or reset), 0 otherwise. */
static int closed_within(int fd, int ms) {
  struct pollfd p = {fd, POLLIN, 0};
  while (poll(&p, 1, ms) > 0) {
    char c[4096];
    ssize_t n = read(fd, c, sizeof c);
    if (n <= 0) return 1;
  }
  return 0;
}

/* 1 when a peer on fd is served (an Ack for a Task comes back), 0 when the
 * worker closed it instead. Never raises SIGPIPE. */
static int served(int fd, uint64_t id) {
  uvw_frame_t *t = uvw_frame_new(UVW_FRAME_TASK, id);
  uvw_frame_set_routine(t, "stub_count");
  void *buf;
  size_t len;
  cr_assert_eq(uvw_frame_encode(t, &buf, &len), 0);
  uvw_frame_free(t);
  uint8_t h[4] = {0, 0, (uint8_t)(len >> 8), (uint8_t)len};
  int ok = send(fd, h, 4, MSG_NOSIGNAL) == 4 && send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len;
  uvw_free(buf);
  if (!ok) return 0;
  uint8_t in[4];
  return dh_raw_read(fd, in, 4);
}

/* ---- item 1: unknown variables cannot deny service ---------------------------------- */

Test(hostile, undeclared_names_for_an_unknown_dispatch_cost_nothing_and_block_no_one) {
  hs_open(NULL);
  int evil = dh_raw_connect(hw.addr[0]), good = dh_raw_connect(hw.addr[0]);
  long base = worker_stubs(good, 1);
  /* The attack of the issue: one ~20 KB Next for a dispatch that does not
   * exist, carrying 1,100 undeclared names. */
  pb_t junk = junk_manifest("h", "junk", 1100);
  send_next(evil, 77, &junk);
  uvw_frame_t *r = dh_raw_recv_frame(evil);
  cr_assert_eq(uvw_frame_kind(r), UVW_FRAME_EXCEPTION);
  cr_assert_eq(uvw_error_code(uvw_frame_error(r)), UVW_EPROTO);
  uvw_frame_free(r);
  cr_assert_eq(worker_stubs(good, 2), base, "no stub was made for a dispatch that does not exist");
  /* Another caller's variable new to the worker still gets through. */
  pb_t fresh = junk_manifest("other", "new", 3);
  r = one_shot(good, 3, "stub_count", &fresh);
  cr_assert_eq(uvw_frame_kind(r), UVW_FRAME_RESULT);
  cr_assert_eq(uvw_value_as_int(uvw_frame_value(r)), base + 3, "the caller's new variables arrived");
  uvw_frame_free(r);
  free(junk.p);
  free(fresh.p);
  close(evil);
  close(good);
  dh_stop(&hw);
}

/* The worker's report of a refused request says the peer stayed. */
Test(hostile, a_refused_request_is_reported_as_a_peer_error_not_a_drop) {
  char log[64];
  snprintf(log, sizeof log, "/tmp/uvwool-dt-%d.err", (int)getpid());
  dh_stderr_path = log;
  hs_open(NULL);
  dh_stderr_path = NULL;
  int fd = dh_raw_connect(hw.addr[0]);
  pb_t none = junk_manifest("h", "x", 0);
  send_next(fd, 77, &none);
  uvw_frame_t *r = dh_raw_recv_frame(fd);
  cr_assert_eq(uvw_error_code(uvw_frame_error(r)), UVW_EPROTO);
  uvw_frame_free(r);
  cr_assert(served(fd, 78), "the peer is still served");
  close(fd);
  dh_stop(&hw);
  char text[4096] = "";
  FILE *f = fopen(log, "r");
  cr_assert_not_null(f);
  size_t n = fread(text, 1, sizeof text - 1, f);
  text[n] = '\0';
  fclose(f);
  remove(log);
  /* The line about the refused request (a hang-up at the end may follow). */
  const char *refusal = strstr(text, "request for an unknown dispatch");
  cr_assert_not_null(refusal, "report: %s", text);
  const char *line = refusal;
  while (line > text && line[-1] != '\n') line--;
  cr_assert(strncmp(line, "uvwool-worker: peer error:", 26) == 0, "not reported as a drop: %s", text);
  cr_assert(strstr(refusal, "peer=kept") != NULL, "report: %s", text);
  free(none.p);
}

Test(hostile, stubs_are_freed_when_their_dispatch_ends) {
  hs_open(NULL);
  int fd = dh_raw_connect(hw.addr[0]);
  long base = worker_stubs(fd, 1);
  for (uint64_t round = 0; round < 5; round++) {
    char prefix[16];
    snprintf(prefix, sizeof prefix, "r%llu_", (unsigned long long)round);
    pb_t m = junk_manifest("h", prefix, 100);
    uvw_frame_t *r = one_shot(fd, 10 + round, "stub_count", &m);
    cr_assert_eq(uvw_value_as_int(uvw_frame_value(r)), base + 100, "held while the dispatch runs");
    uvw_frame_free(r);
    free(m.p);
  }
  cr_assert_eq(worker_stubs(fd, 99), base, "500 names later, nothing is left");
  close(fd);
  dh_stop(&hw);
}

Test(hostile, a_connection_cannot_create_more_stubs_than_its_budget) {
  const char *flags[] = {"--max-stubs", "150", NULL};
  hs_open(flags);
  int evil = dh_raw_connect(hw.addr[0]), good = dh_raw_connect(hw.addr[0]);
  long base = worker_stubs(good, 1);
  /* Two dispatches that stay open (hang) with 100 names each: the second
   * is over this connection's budget of 150 and fails alone. */
  pb_t a = junk_manifest("h", "a", 100), b = junk_manifest("h", "b", 100);
  send_task(evil, 1, "hang");
  send_next(evil, 1, &a);
  uvw_frame_t *ack = dh_raw_recv_frame(evil);
  cr_assert_eq(uvw_frame_kind(ack), UVW_FRAME_ACK);
  uvw_frame_free(ack);
  uvw_frame_t *r = one_shot(evil, 2, "stub_count", &b);
  cr_assert_eq(uvw_frame_kind(r), UVW_FRAME_EXCEPTION);
  cr_assert_eq(uvw_error_code(uvw_frame_error(r)), UVW_ESTUBCAP, "%s", uvw_error_message(uvw_frame_error(r)));
  cr_assert_str_eq(uvw_error_field(uvw_frame_error(r), "budget"), "50", "what was left of 150");
  uvw_frame_free(r);
  /* Other connections have their own budget. */
  r = one_shot(good, 2, "stub_count", &b);
  cr_assert_eq(uvw_frame_kind(r), UVW_FRAME_RESULT);
  cr_assert_eq(uvw_value_as_int(uvw_frame_value(r)), base + 200);
  uvw_frame_free(r);
  free(a.p);
  free(b.p);
  close(evil);
  close(good);
  dh_stop(&hw);
}

Test(hostile, names_of_16_mib_are_refused) {
  hs_open(NULL);
  int fd = dh_raw_connect(hw.addr[0]);
  long base = worker_stubs(fd, 1);
  size_t big = ((size_t)16 << 20) - 4096;
  char *name = malloc(big);
  memset(name, 'x', big);
  pb_t e = {0}, m = {0};
  pb_bytes(&e, 1, "h", 1);
  pb_bytes(&e, 2, name, big);
  pb_bytes(&m, 2, e.p, e.n);
  free(name);
  free(e.p);
  uvw_frame_t *r = one_shot(fd, 2, "stub_count", &m);
  cr_assert_eq(uvw_frame_kind(r), UVW_FRAME_RESULT, "the dispatch runs, the entry is skipped");
  cr_assert_eq(uvw_value_as_int(uvw_frame_value(r)), base, "no stub for a 16 MiB name");
  uvw_frame_free(r);
  free(m.p);
  close(fd);
  dh_stop(&hw);
}

/* ---- item 2: memory and time are bounded per peer ---------------------------------- */

Test(hostile, a_slow_loris_is_dropped_after_the_frame_timeout) {
  const char *flags[] = {"--frame-timeout", "300", NULL};
  hs_open(flags);
  int slow = dh_raw_connect(hw.addr[0]), good = dh_raw_connect(hw.addr[0]);
  /* A frame header announcing 1 MiB, then a trickle. */
  uint8_t h[4] = {0, 0x10, 0, 0};
  dh_raw_send(slow, h, 4);
  dh_raw_send(slow, "abc", 3);
  cr_assert(closed_within(slow, 20000), "the slow peer was never dropped");
  uvw_frame_t *r = one_shot(good, 1, "stub_count", NULL);
  cr_assert_eq(uvw_frame_kind(r), UVW_FRAME_RESULT, "the others are still served");
  uvw_frame_free(r);
  close(slow);
  close(good);
  dh_stop(&hw);
}

Test(hostile, an_idle_peer_is_closed_after_the_idle_timeout_and_a_busy_one_is_not) {
  const char *flags[] = {"--idle-timeout", "300", NULL};
  hs_open(flags);
  int idle = dh_raw_connect(hw.addr[0]), busy = dh_raw_connect(hw.addr[0]);
  send_task(busy, 1, "hang"); /* a live dispatch: not idle, however long it runs */
  send_next(busy, 1, NULL);
  uvw_frame_t *ack = dh_raw_recv_frame(busy);
  cr_assert_eq(uvw_frame_kind(ack), UVW_FRAME_ACK);
  uvw_frame_free(ack);
  cr_assert(closed_within(idle, 20000), "the idle peer was never closed");
  cr_assert(!closed_within(busy, 800), "a peer with a live dispatch stays");
  close(idle);
  close(busy);
  dh_stop(&hw);
}

Test(hostile, the_connection_cap_refuses_the_next_peer_and_serves_the_others) {
  const char *flags[] = {"--max-connections", "2", NULL};
  hs_open(flags);
  int a = dh_raw_connect(hw.addr[0]), b = dh_raw_connect(hw.addr[0]);
  worker_stubs(a, 1);
  worker_stubs(b, 1); /* both accepted and served */
  int c = dh_raw_connect(hw.addr[0]);
  cr_assert(closed_within(c, 20000), "the third connection was refused");
  cr_assert_geq(worker_stubs(a, 2), 0, "the others are still served");
  close(c);
  close(a);
  /* Room again once one leaves (the worker sees the hang-up a moment later). */
  int accepted = 0;
  for (int tries = 0; tries < 200 && !accepted; tries++) {
    int d = dh_raw_connect(hw.addr[0]);
    accepted = served(d, 3);
    close(d);
    if (!accepted) usleep(20000);
  }
  cr_assert(accepted, "a new peer is accepted after one left");
  close(b);
  dh_stop(&hw);
}

Test(hostile, too_many_dispatches_or_bytes_in_flight_are_refused_with_a_nack) {
  const char *flags[] = {"--max-dispatches", "3", "--max-inflight-bytes", "100000", NULL};
  hs_open(flags);
  int fd = dh_raw_connect(hw.addr[0]);
  for (uint64_t id = 1; id <= 3; id++) {
    send_task(fd, id, "hang");
    uvw_frame_t *ack = dh_raw_recv_frame(fd);
    cr_assert_eq(uvw_frame_kind(ack), UVW_FRAME_ACK);
    uvw_frame_free(ack);
  }
  send_task(fd, 4, "hang");
  uvw_frame_t *nack = dh_raw_recv_frame(fd);
  cr_assert_eq(uvw_frame_kind(nack), UVW_FRAME_NACK);
  cr_assert(strstr(uvw_error_message(uvw_frame_error(nack)), "too many dispatches"));
  uvw_frame_free(nack);
  /* A second connection: a Task whose arguments exceed the bytes in flight. */
  int fd2 = dh_raw_connect(hw.addr[0]);
  uvw_frame_t *t = uvw_frame_new(UVW_FRAME_TASK, 1);
  uvw_frame_set_routine(t, "hang");
  char *big = malloc(200000);
  memset(big, 'a', 199999);
  big[199999] = '\0';
  uvw_value_t *v = uvw_value_cstring(big);
  uvw_frame_add_arg(t, v);
  uvw_value_unref(v);
  free(big);
  dh_raw_send_frame(fd2, t);
  uvw_frame_free(t);
  nack = dh_raw_recv_frame(fd2);
  cr_assert_eq(uvw_frame_kind(nack), UVW_FRAME_NACK);
  cr_assert(strstr(uvw_error_message(uvw_frame_error(nack)), "bytes in flight"));
  uvw_frame_free(nack);
  close(fd);
  close(fd2);
  dh_stop(&hw);
}

Test(hostile, a_stream_using_a_new_chain_id_per_step_keeps_bounded_state) {
  const char *flags[] = {"--max-chains", "4", NULL};
  hs_open(flags);
  int fd = dh_raw_connect(hw.addr[0]);
  long base = worker_stubs(fd, 1);
  send_task(fd, 5, "stub_count_stream");
  uvw_frame_t *ack = dh_raw_recv_frame(fd);
  cr_assert_eq(uvw_frame_kind(ack), UVW_FRAME_ACK);
  uvw_frame_free(ack);
  long most = 0;
  for (int step = 0; step < 200; step++) {
    /* A new chain id each step, with one name of its own: the worker's
     * contexts of this stream hold these names, so the stub count shows
     * how many contexts it keeps. */
    pb_t m = {0};
    char id[33], name[32];
    snprintf(id, sizeof id, "%032x", step + 1);
    int k = snprintf(name, sizeof name, "step%d", step);
    pb_t e = {0};
    pb_bytes(&e, 1, "h", 1);
    pb_bytes(&e, 2, name, (size_t)k);
    pb_bytes(&m, 1, id, 32);
    pb_bytes(&m, 2, e.p, e.n);
    free(e.p);
    send_next(fd, 5, &m);
    free(m.p);
    uvw_frame_t *r = dh_raw_recv_frame(fd);
    cr_assert_eq(uvw_frame_kind(r), UVW_FRAME_RESULT);
    long n = (long)uvw_value_as_int(uvw_frame_value(r)) - base;
    if (n > most) most = n;
    uvw_frame_free(r);
  }
  /* The connection's manifest cache (wire/manifest_cache.c) also holds the
   * stubs of the last manifests it decoded: 8 slots, one name each here. */
  cr_assert_leq(most, 4 + 2 + 8,
                "contexts kept: at most --max-chains (plus the step's own and the cache's 8), saw %ld", most);
  close(fd);
  dh_stop(&hw);
}

Test(hostile, a_stream_keeping_big_contexts_is_charged_and_stopped_at_the_byte_budget) {
  const char *flags[] = {"--max-inflight-bytes", "200000", NULL};
  hs_open(flags);
  int fd = dh_raw_connect(hw.addr[0]), other = dh_raw_connect(hw.addr[0]);
  send_task(fd, 5, "stub_count_stream");
  uvw_frame_t *ack = dh_raw_recv_frame(fd);
  cr_assert_eq(uvw_frame_kind(ack), UVW_FRAME_ACK);
  uvw_frame_free(ack);
  char *big = malloc(60000);
  memset(big, 'v', 60000);
  int stopped_at = -1;
  for (int step = 0; step < 8 && stopped_at < 0; step++) {
    /* Each step a new chain id whose context keeps a 60 KB value. */
    pb_t m = {0}, e = {0}, v = {0};
    char id[33];
    snprintf(id, sizeof id, "%032x", step + 1);
    pb_bytes(&v, 5, big, 60000);
    pb_bytes(&e, 1, "h", 1);
    pb_bytes(&e, 2, "big", 3);
    pb_bytes(&e, 3, v.p, v.n);
    pb_bytes(&m, 1, id, 32);
    pb_bytes(&m, 2, e.p, e.n);
    send_next(fd, 5, &m);
    free(m.p);
    free(e.p);
    free(v.p);
    uvw_frame_t *r = dh_raw_recv_frame(fd);
    if (uvw_frame_kind(r) == UVW_FRAME_EXCEPTION) {
      cr_assert(strstr(uvw_error_message(uvw_frame_error(r)), "bytes in flight"), "%s",
                uvw_error_message(uvw_frame_error(r)));
      stopped_at = step;
    } else {
      cr_assert_eq(uvw_frame_kind(r), UVW_FRAME_RESULT);
    }
    uvw_frame_free(r);
  }
  free(big);
  cr_assert_eq(stopped_at, 3, "three kept contexts of 60 KB fit in 200 KB, the fourth does not");
  uvw_frame_t *r = one_shot(other, 1, "stub_count", NULL);
  cr_assert_eq(uvw_frame_kind(r), UVW_FRAME_RESULT, "other connections are not affected");
  uvw_frame_free(r);
  close(fd);
  close(other);
  dh_stop(&hw);
}

/* ---- backpressure: an in-process worker, so its counters can be read ------------- */

#define BIG_ANSWER 65536

static void big_answer(uvw_call_t *call, void *arg) {
  (void)arg;
  static char text[BIG_ANSWER + 1];
  memset(text, 'b', BIG_ANSWER);
  uvw_value_t *v = uvw_value_cstring(text);
  uvw_call_return(call, v);
  uvw_value_unref(v);
}

/* Append a length-prefixed encoded frame to b. */
static void pb_frame(pb_t *b, uvw_frame_t *f) {
  void *buf;
  size_t len;
  cr_assert_eq(uvw_frame_encode(f, &buf, &len), 0);
  uint8_t h[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
  pb_raw(b, h, 4);
  pb_raw(b, buf, len);
  uvw_free(buf);
  uvw_frame_free(f);
}

static void spin(uv_loop_t *l, int rounds) {
  for (int i = 0; i < rounds; i++) {
    uv_run(l, UV_RUN_NOWAIT);
    usleep(1000);
  }
}

Test(hostile, a_peer_that_never_reads_is_paused_and_its_queue_stays_bounded) {
  signal(SIGPIPE, SIG_IGN);
  dh_declare();
  uv_loop_t l;
  uv_loop_init(&l);
  uvw_worker_t *w;
  cr_assert_eq(uvw_worker_open(&l, &w), 0);
  cr_assert_eq(uvw_worker_register(w, "big", big_answer, NULL, 0), 0);
  uvw_worker_limits_t lim;
  uvw_worker_limits_default(&lim);
  lim.write_high_water = 256 * 1024;
  cr_assert_eq(uvw_worker_set_limits(w, &lim), 0);
  char addr[200];
  dh_pipe_address(addr, sizeof addr);
  cr_assert_eq(uvw_worker_listen(w, addr), 0);

  /* 300 dispatches of a 64 KiB answer (19 MiB), written and never read. */
  enum { N = 300 };
  pb_t out = {0};
  for (uint64_t id = 1; id <= N; id++) {
    uvw_frame_t *t = uvw_frame_new(UVW_FRAME_TASK, id);
    uvw_frame_set_routine(t, "big");
    pb_frame(&out, t);
    pb_frame(&out, uvw_frame_new(UVW_FRAME_NEXT, id));
  }
  int fd = dh_raw_connect(addr);
  fcntl(fd, F_SETFL, O_NONBLOCK);
  size_t sent = 0;
  size_t most_queued = 0;
  for (int round = 0; round < 400; round++) {
    ssize_t k = sent < out.n ? send(fd, out.p + sent, out.n - sent, MSG_NOSIGNAL) : 0;
    if (k > 0) sent += (size_t)k;
    spin(&l, 1);
    uvw_worker_stats_t st;
    cr_assert_eq(uvw_worker_stats(w, &st), 0);
    if (st.write_queue_bytes > most_queued) most_queued = st.write_queue_bytes;
  }
  uvw_worker_stats_t st;
  cr_assert_eq(uvw_worker_stats(w, &st), 0);
  cr_assert_eq(st.paused_peers, 1, "the peer that does not read is no longer read");
  cr_assert_leq(most_queued, lim.write_high_water + BIG_ANSWER + 64,
                "the queue stopped at the high-water mark plus one answer (%zu)", most_queued);

  /* Someone else is still served meanwhile. */
  uvw_conn_t *good;
  cr_assert_eq(uvw_conn_open(&l, addr, &good), 0);
  dh_reply_t reply = {0};
  cr_assert_eq(uvw_conn_dispatch(good, "big", NULL, 0, NULL, dh_record, &reply, NULL), 0);
  dh_run_until(&l, &reply.calls, 1, 30000);
  cr_assert_eq(reply.status, 0);
  cr_assert_eq(strlen(reply.value), sizeof(reply.value) - 1, "the big answer (truncated by the recorder)");
  dh_reply_clear(&reply);

  /* Reading again resumes it: every answer arrives. */
  fcntl(fd, F_SETFL, 0);
  size_t results = 0;
  uint8_t *frame = malloc(BIG_ANSWER + 1024);
  while (results < N) {
    if (sent < out.n) {
      fcntl(fd, F_SETFL, O_NONBLOCK);
      ssize_t k = send(fd, out.p + sent, out.n - sent, MSG_NOSIGNAL);
      if (k > 0) sent += (size_t)k;
      fcntl(fd, F_SETFL, 0);
    }
    struct pollfd p = {fd, POLLIN, 0};
    while (poll(&p, 1, 0) == 0) spin(&l, 1);
    uint8_t h[4];
    size_t got = 0;
    while (got < 4) {
      ssize_t k = read(fd, h + got, 4 - got);
      cr_assert_gt(k, 0);
      got += (size_t)k;
    }
    size_t len = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
    cr_assert_leq(len, BIG_ANSWER + 1024);
    for (got = 0; got < len;) {
      struct pollfd q = {fd, POLLIN, 0};
      while (poll(&q, 1, 0) == 0) spin(&l, 1);
      ssize_t k = read(fd, frame + got, len - got);
      cr_assert_gt(k, 0);
      got += (size_t)k;
    }
    uvw_frame_t *f;
    cr_assert_eq(uvw_frame_decode_response(frame, len, &f), 0);
    results += uvw_frame_kind(f) == UVW_FRAME_RESULT;
    uvw_frame_free(f);
  }
  free(frame);
  free(out.p);
  cr_assert_eq(results, N);
  close(fd);
  int closed = 0;
  uvw_conn_close(good, dh_conn_closed, &closed);
  uvw_worker_close(w, NULL, NULL);
  uv_run(&l, UV_RUN_DEFAULT);
  cr_assert_eq(closed, 1);
  cr_assert_eq(uvw_loop_close(&l), 0);
}

/* ---- a hostile worker against the caller: its stub budget per connection ---------- */

/* A listening unix socket the test plays the worker on. */
static int fake_listen(const char *address) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  strcpy(sa.sun_path, address + 5);
  cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  cr_assert_eq(listen(fd, 4), 0);
  return fd;
}

/* Run the caller's loop until fd is readable (its frames were written). */
static void spin_until_readable(uv_loop_t *l, int fd) {
  for (int i = 0; i < 30000; i++) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 0) > 0) return;
    spin(l, 1);
  }
  cr_assert_fail("the caller wrote nothing");
}

/* The next request the caller wrote (kind checked), its dispatch id returned. */
static uint64_t fake_recv(uv_loop_t *l, int fd, uvw_frame_kind_t want) {
  spin_until_readable(l, fd);
  uvw_frame_t *f = dh_raw_recv(fd, 1);
  cr_assert_eq(uvw_frame_kind(f), want, "kind %d, wanted %d", uvw_frame_kind(f), want);
  uint64_t id = uvw_frame_dispatch_id(f);
  uvw_frame_free(f);
  return id;
}

/* An answer from the fake worker: a Result (done or not) with manifest m
 * (raw bytes, may be NULL), or with the manifest of the current context. */
static void fake_result(int fd, uint64_t id, int done, const pb_t *m) {
  uvw_frame_t *f = uvw_frame_new(UVW_FRAME_RESULT, id);
  cr_assert_eq(uvw_frame_set_value(f, uvw_value_nil()), 0);
  cr_assert_eq(uvw_frame_set_done(f, done), 0);
  if (m)
    cr_assert_eq(uvw_frame_set_manifest_bytes(f, m->p, m->n), 0);
  else
    cr_assert_eq(uvw_frame_set_manifest(f, NULL), 0);
  dh_raw_send_frame(fd, f);
  uvw_frame_free(f);
}

static void fake_ack(int fd, uint64_t id) {
  uvw_frame_t *f = uvw_frame_new(UVW_FRAME_ACK, id);
  dh_raw_send_frame(fd, f);
  uvw_frame_free(f);
}

/* A one-shot dispatch answered by the fake worker with m; its reply. */
static void fake_one_shot(uv_loop_t *l, uvw_conn_t *c, int fd, const pb_t *m, dh_reply_t *r) {
  cr_assert_eq(uvw_conn_dispatch(c, "fake", NULL, 0, NULL, dh_record, r, NULL), 0);
  uint64_t id = fake_recv(l, fd, UVW_FRAME_TASK);
  cr_assert_eq(fake_recv(l, fd, UVW_FRAME_NEXT), id);
  fake_ack(fd, id);
  fake_result(fd, id, 1, m);
  dh_run_until(l, &r->calls, 1, 30000);
}

/* The test as the worker: a loop, a listening socket at a fresh address,
 * a caller's connection to it (delta manifests asked for or not) and the
 * accepted end, fd. */
static void fake_open(uv_loop_t *l, char addr[200], int *lfd, int *fd, uvw_conn_t **c, int delta) {
  signal(SIGPIPE, SIG_IGN);
  dh_declare();
  uv_loop_init(l);
  dh_pipe_address(addr, 200);
  *lfd = fake_listen(addr);
  cr_assert_eq(uvw_conn_open(l, addr, c), 0);
  cr_assert_eq(uvw_conn_set_delta_manifests(*c, delta), 0);
  spin_until_readable(l, *lfd);
  *fd = accept(*lfd, NULL, NULL);
  cr_assert_geq(*fd, 0);
}

static void fake_close(uv_loop_t *l, uvw_conn_t *c, int fd, int lfd, const char *addr) {
  close(fd);
  close(lfd);
  remove(addr + 5);
  int closed = 0;
  uvw_conn_close(c, dh_conn_closed, &closed);
  uv_run(l, UV_RUN_DEFAULT);
  cr_assert_eq(closed, 1);
  cr_assert_eq(uvw_loop_close(l), 0);
}

Test(hostile, a_worker_cannot_fill_the_callers_stubs_beyond_its_connection_budget) {
  uv_loop_t l;
  char addr[200];
  int lfd, fd;
  uvw_conn_t *c;
  fake_open(&l, addr, &lfd, &fd, &c, 0);
  size_t base = uvw_wire_stub_count();
  uvw_context_t *ctx = dh_enter("caller");

  /* A stream whose every answer brings 128 new names (the per-decode cap):
   * the first 8 fill the default budget of 1024, the 9th is refused. */
  uvw_dispatch_t *s;
  cr_assert_eq(uvw_conn_dispatch_stream(c, "fake", NULL, 0, NULL, &s), 0);
  uint64_t sid = fake_recv(&l, fd, UVW_FRAME_TASK);
  fake_ack(fd, sid);
  dh_reply_t r[9] = {{0}};
  for (int k = 0; k < 9; k++) {
    cr_assert_eq(uvw_dispatch_next(s, dh_record, &r[k]), 0, "step %d: %s", k + 1, uvw_error_message(uvw_last_error()));
    cr_assert_eq(fake_recv(&l, fd, UVW_FRAME_NEXT), sid);
    char prefix[16];
    snprintf(prefix, sizeof prefix, "s%d_", k);
    pb_t m = junk_manifest("evil", prefix, 128);
    fake_result(fd, sid, 0, &m);
    free(m.p);
    dh_run_until(&l, &r[k].calls, 1, 30000);
  }
  for (int k = 0; k < 8; k++) cr_assert_eq(r[k].status, 0, "step %d: %s", k + 1, r[k].error_msg);
  cr_assert_eq(r[8].status, UVW_ESTUBCAP, "got %s: %s", uvw_err_name(r[8].status), r[8].error_msg);
  cr_assert_not_null(strstr(r[8].error_msg, "budget"), "%s", r[8].error_msg);
  cr_assert_str_eq(uvw_error_field(r[8].error, "budget"), "0", "nothing was left of 1024");
  cr_assert_str_eq(r[8].request_id, "caller", "nothing was merged");
  cr_assert_not(uvw_conn_is_dead(c), "the connection goes on");

  /* Declared variables still come back on that connection meanwhile. */
  dh_reply_t good = {0};
  cr_assert_eq(uvw_conn_dispatch(c, "fake", NULL, 0, NULL, dh_record, &good, NULL), 0);
  uint64_t id = fake_recv(&l, fd, UVW_FRAME_TASK);
  cr_assert_eq(fake_recv(&l, fd, UVW_FRAME_NEXT), id);
  fake_ack(fd, id);
  uvw_context_t *answer = dh_enter(NULL); /* the fake worker's side */
  dh_set_str(dh_tenant, "from-worker");
  fake_result(fd, id, 1, NULL); /* the manifest of `answer`: t.tenant */
  dh_leave(answer);
  dh_run_until(&l, &good.calls, 1, 30000);
  cr_assert_eq(good.status, 0, "%s", good.error_msg);
  cr_assert_str_eq(good.tenant, "from-worker");
  dh_reply_clear(&good);

  /* Once the stream and its contexts are gone, so are its stubs and its charge. */
  uvw_dispatch_close(s);
  cr_assert_eq(fake_recv(&l, fd, UVW_FRAME_THROW), sid, "the worker is told");
  for (int k = 0; k < 9; k++) dh_reply_clear(&r[k]);
  spin(&l, 5);
  cr_assert_eq(uvw_wire_stub_count(), base, "%zu stubs left behind", uvw_wire_stub_count() - base);

  /* A smaller budget, set on the connection. */
  uvw_conn_set_max_stubs(c, 100);
  pb_t over = junk_manifest("evil", "over", 101), fits = junk_manifest("evil", "fits", 100);
  dh_reply_t a = {0}, b = {0};
  fake_one_shot(&l, c, fd, &over, &a);
  cr_assert_eq(a.status, UVW_ESTUBCAP, "got %s: %s", uvw_err_name(a.status), a.error_msg);
  cr_assert_eq(uvw_wire_stub_count(), base, "a refused answer leaves no stub");
  fake_one_shot(&l, c, fd, &fits, &b);
  cr_assert_eq(b.status, 0, "%s", b.error_msg);
  cr_assert_eq(uvw_wire_stub_count(), base, "a one-shot's stubs went with its callback's context");
  free(over.p);
  free(fits.p);
  dh_reply_clear(&a);
  dh_reply_clear(&b);
  dh_leave(ctx);

  fake_close(&l, c, fd, lfd, addr);
}

/* ---- a hostile worker's delta manifests ------------------------------------------- */

/* f encoded, with `extra` (raw fields) after it, framed and sent: protobuf
 * reads fields in any order, as the caller's own link appends them. */
static void fake_send_with(int fd, const uvw_frame_t *f, const pb_t *extra) {
  void *buf;
  size_t len;
  cr_assert_eq(uvw_frame_encode(f, &buf, &len), 0);
  pb_t all = {0};
  pb_raw(&all, buf, len);
  pb_raw(&all, extra->p, extra->n);
  uvw_free(buf);
  uint8_t h[4] = {(uint8_t)(all.n >> 24), (uint8_t)(all.n >> 16), (uint8_t)(all.n >> 8), (uint8_t)all.n};
  dh_raw_send(fd, h, 4);
  dh_raw_send(fd, all.p, all.n);
  free(all.p);
}

Test(hostile, a_worker_delta_against_no_base_fails_that_answer_alone_and_is_resynced) {
  uv_loop_t l;
  char addr[200];
  int lfd, fd;
  uvw_conn_t *c;
  fake_open(&l, addr, &lfd, &fd, &c, 1);
  uvw_context_t *ctx = dh_enter("caller");
  char chain[33];
  dh_chain_id(chain);

  /* The caller asks for deltas; the fake worker says it keeps 4 chains,
   * then answers with a delta of the caller's chain, whose manifest it
   * never sent whole: there is no base for it on the caller. */
  dh_reply_t r = {0};
  cr_assert_eq(uvw_conn_dispatch(c, "fake", NULL, 0, NULL, dh_record, &r, NULL), 0);
  spin_until_readable(&l, fd);
  uvw_frame_t *task = dh_raw_recv(fd, 1);
  cr_assert_eq(uvw_frame_kind(task), UVW_FRAME_TASK);
  cr_assert_eq(uvw__frame_delta_chains(task), 64, "the Task advertises the caller's bound");
  uint64_t id = uvw_frame_dispatch_id(task);
  uvw_frame_free(task);
  cr_assert_eq(fake_recv(&l, fd, UVW_FRAME_NEXT), id);
  pb_t bound = {0}, delta = {0}, field = {0};
  pb_varint(&bound, 14 << 3);
  pb_varint(&bound, 4);
  uvw_frame_t *ack = uvw_frame_new(UVW_FRAME_ACK, id);
  fake_send_with(fd, ack, &bound);
  uvw_frame_free(ack);
  pb_bytes(&delta, 1, chain, strlen(chain));
  pb_varint(&delta, 2 << 3);
  pb_varint(&delta, 5);
  pb_bytes(&field, 16, delta.p, delta.n);
  uvw_frame_t *res = uvw_frame_new(UVW_FRAME_RESULT, id);
  cr_assert_eq(uvw_frame_set_value(res, uvw_value_nil()), 0);
  cr_assert_eq(uvw_frame_set_done(res, 1), 0);
  fake_send_with(fd, res, &field);
  uvw_frame_free(res);
  dh_run_until(&l, &r.calls, 1, 30000);
  cr_assert_eq(r.status, UVW_EMALFORMED, "got %s: %s", uvw_err_name(r.status), r.error_msg);
  cr_assert_not_null(strstr(r.error_msg, "manifest delta"), "%s", r.error_msg);
  cr_assert_not_null(strstr(r.error_msg, "no manifest of this chain is kept"), "%s", r.error_msg);
  cr_assert_str_eq(uvw_error_field(r.error, "chain_id"), chain);
  cr_assert_str_eq(r.request_id, "caller", "nothing was merged");
  cr_assert_not(uvw_conn_is_dead(c), "the connection goes on");

  /* The caller's next frame asks the worker to resync that chain; the
   * worker's full manifest then applies as any. */
  dh_reply_t r2 = {0};
  cr_assert_eq(uvw_conn_dispatch(c, "fake", NULL, 0, NULL, dh_record, &r2, NULL), 0);
  spin_until_readable(&l, fd);
  uvw_frame_t *t2 = dh_raw_recv(fd, 1);
  cr_assert_eq(uvw__frame_resync_count(t2), 1, "the chain is named for a resync");
  cr_assert_str_eq(uvw__frame_resync(t2, 0), chain);
  uint64_t id2 = uvw_frame_dispatch_id(t2);
  uvw_frame_free(t2);
  cr_assert_eq(fake_recv(&l, fd, UVW_FRAME_NEXT), id2);
  fake_ack(fd, id2);
  uvw_context_t *answer = dh_enter(NULL); /* the fake worker's side */
  dh_set_str(dh_tenant, "from-worker");
  fake_result(fd, id2, 1, NULL);
  dh_leave(answer);
  dh_run_until(&l, &r2.calls, 1, 30000);
  cr_assert_eq(r2.status, 0, "%s", r2.error_msg);
  cr_assert_str_eq(r2.tenant, "from-worker");
  free(bound.p);
  free(delta.p);
  free(field.p);
  dh_reply_clear(&r);
  dh_reply_clear(&r2);
  dh_leave(ctx);

  fake_close(&l, c, fd, lfd, addr);
}
