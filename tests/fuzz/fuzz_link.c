/* libFuzzer target: the dispatch link, statefully, both directions, on a
 * real in-process worker and caller over unix sockets on one loop.
 *
 * Input: byte 0 picks the side (bit 0: 0 = frames to a worker, 1 = frames
 * to a caller), then chunks of [op][id][len hi][len lo][len bytes]. Each
 * chunk becomes one frame on the stream: raw bytes with a correct length
 * prefix, a built Request/Response (Task, Next, Send, Throw / Ack, Nack,
 * Result, Exception) whose id, routine, value and manifest come from the
 * chunk, or bytes written with no framing at all.
 *
 * Checks, per input: no crash and no leak (ASan/LSan); every frame the
 * worker or the caller writes back decodes; every caller dispatch gets
 * exactly one final callback once its connection is closed; and after each
 * sequence the worker still serves a well-formed dispatch on a new
 * connection, with its context applied back. */
#define _GNU_SOURCE 1 /* accept4 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "fuzz_common.h"
#include "uvwool/dispatch.h"

#define CHECK(cond, ...)                                                                                   \
  do {                                                                                                     \
    if (!(cond)) {                                                                                         \
      fprintf(stderr, "fuzz_link: check failed: %s: ", #cond);                                            \
      fprintf(stderr, __VA_ARGS__);                                                                        \
      fputc('\n', stderr);                                                                                 \
      abort();                                                                                             \
    }                                                                                                      \
  } while (0)

static uv_loop_t loop;
static uvw_worker_t *worker;
static uvw_var_t *var;
static char worker_path[108], fake_path[108], worker_addr[128], fake_addr[128];
static int fake_listener = -1;

/* ---- routines ------------------------------------------------------------------- */

static void echo(uvw_call_t *call, void *arg) {
  (void)arg;
  uvw_value_t *seen = NULL;
  if (uvw_get(var, &seen) == 0 && uvw_value_kind(seen) == UVW_VALUE_STRING) {
    char buf[256];
    snprintf(buf, sizeof buf, "%.200s!", uvw_value_as_string(seen));
    uvw_set_cstring(var, buf, NULL);
  }
  uvw_call_return(call, uvw_call_arg_count(call) ? uvw_call_arg(call, 0) : NULL);
}

static void stream(uvw_call_t *call, void *arg) {
  (void)arg;
  uintptr_t steps = (uintptr_t)uvw_call_data(call) + 1;
  uvw_call_set_data(call, (void *)steps, NULL);
  switch (uvw_call_step(call)) {
  case UVW_STEP_THROW: uvw_call_raise(call, uvw_call_thrown(call)); return;
  case UVW_STEP_SEND: uvw_call_yield(call, uvw_call_sent(call)); return;
  default: break;
  }
  uvw_value_t *n = uvw_value_int((int64_t)steps);
  if (steps >= 3)
    uvw_call_return(call, n);
  else
    uvw_call_yield(call, n);
  uvw_value_unref(n);
}

/* ---- set-up (once) ------------------------------------------------------------------ */

static void remove_sockets(void) {
  unlink(worker_path);
  unlink(fake_path);
}

static void setup(void) {
  static int done;
  if (done) return;
  done = 1;
  fuzz_setup();
  CHECK(uv_loop_init(&loop) == 0, "loop");
  CHECK(uvw_var_declare("fuzz.link", "v", NULL, &var) == 0, "declare");
  snprintf(worker_path, sizeof worker_path, "/tmp/uvw-fuzz-link-%d.sock", (int)getpid());
  snprintf(fake_path, sizeof fake_path, "/tmp/uvw-fuzz-fake-%d.sock", (int)getpid());
  remove_sockets();
  atexit(remove_sockets);
  snprintf(worker_addr, sizeof worker_addr, "pipe:%s", worker_path);
  snprintf(fake_addr, sizeof fake_addr, "pipe:%s", fake_path);
  CHECK(uvw_worker_open(&loop, &worker) == 0, "worker");
  CHECK(uvw_worker_register(worker, "echo", echo, NULL, 0) == 0, "register");
  CHECK(uvw_worker_register(worker, "stream", stream, NULL, UVW_ROUTINE_STREAM) == 0, "register");
  CHECK(uvw_worker_listen(worker, worker_addr) == 0, "listen %s", worker_addr);
  /* The fake worker the caller side talks to: a plain listening socket. */
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", fake_path);
  fake_listener = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  CHECK(fake_listener >= 0 && bind(fake_listener, (struct sockaddr *)&sa, sizeof sa) == 0 &&
            listen(fake_listener, 16) == 0,
        "fake listener");
}

/* ---- raw streams ---------------------------------------------------------------------- */

typedef struct {
  int fd;
  uint8_t *out;
  size_t n, off, cap;
  uint8_t in[1 << 16];
  size_t have;
  int responses; /* what the peer writes: 1 Responses (worker), 0 Requests (caller) */
  int frames;
} raw_t;

static void out_put(raw_t *r, const void *p, size_t n) {
  if (n == 0) return;
  if (r->n + n > r->cap) {
    r->cap = (r->n + n) * 2;
    r->out = realloc(r->out, r->cap);
    CHECK(r->out != NULL, "oom");
  }
  memcpy(r->out + r->n, p, n);
  r->n += n;
}

static void out_frame(raw_t *r, const void *p, size_t n) {
  uint8_t len[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
  out_put(r, len, 4);
  out_put(r, p, n);
}

static void out_built(raw_t *r, uvw_frame_t *f) {
  void *buf;
  size_t len;
  if (f != NULL && uvw_frame_encode(f, &buf, &len) == 0) {
    out_frame(r, buf, len);
    uvw_free(buf);
  }
  uvw_frame_free(f);
}

/* Every frame the peer wrote must decode: what uvwool sends, uvwool reads. */
static void check_frames(raw_t *r) {
  for (;;) {
    if (r->have < 4) return;
    size_t len = (size_t)r->in[0] << 24 | (size_t)r->in[1] << 16 | (size_t)r->in[2] << 8 | r->in[3];
    CHECK(len <= sizeof r->in - 4, "a frame of %zu bytes from uvwool", len);
    if (r->have < 4 + len) return;
    uvw_frame_t *f = NULL;
    int rc = r->responses ? uvw_frame_decode_response(r->in + 4, len, &f)
                          : uvw_frame_decode_request(r->in + 4, len, &f);
    CHECK(rc == 0, "uvwool wrote a frame it cannot decode (%d)", rc);
    uvw_frame_free(f);
    r->frames++;
    memmove(r->in, r->in + 4 + len, r->have - 4 - len);
    r->have -= 4 + len;
  }
}

/* One round: write what we can, run the loop once without blocking, read
 * what came. Returns non-zero when anything moved. */
static int pump(raw_t *r) {
  int moved = 0;
  if (r->fd >= 0 && r->off < r->n) {
    ssize_t w = send(r->fd, r->out + r->off, r->n - r->off, MSG_NOSIGNAL);
    if (w > 0) {
      r->off += (size_t)w;
      moved = 1;
    } else if (w < 0 && errno != EAGAIN) {
      r->off = r->n; /* the peer dropped us: fine, it may */
    }
  }
  uv_run(&loop, UV_RUN_NOWAIT);
  while (r->fd >= 0 && r->have < sizeof r->in) {
    ssize_t got = recv(r->fd, r->in + r->have, sizeof r->in - r->have, 0);
    if (got <= 0) break;
    r->have += (size_t)got;
    moved = 1;
    check_frames(r);
  }
  return moved;
}

/* Run until nothing moves for a while (every answer here is immediate). */
static void settle(raw_t *r) {
  for (int idle = 0, rounds = 0; idle < 64 && rounds < 20000; rounds++) {
    idle = pump(r) || r->off < r->n ? 0 : idle + 1;
  }
}

/* ---- chunks ------------------------------------------------------------------------- */

static uvw_error_t *chunk_error(const uint8_t *p, size_t n) {
  char msg[64];
  snprintf(msg, sizeof msg, "%.*s", (int)(n < 40 ? n : 40), (const char *)p);
  return uvw_error_new(n && p[0] & 1 ? "ValueError" : "WoolError", -1 - (int)(n ? p[0] : 0), msg);
}

static void to_worker(raw_t *r, uint8_t op, uint64_t id, const uint8_t *p, size_t n) {
  static const char *routines[] = {"echo", "stream", "missing"};
  uvw_frame_t *f = NULL;
  uvw_value_t *v = NULL;
  uvw_error_t *e = NULL;
  switch (op % 6) {
  case 0: out_frame(r, p, n); return;
  case 1:
    f = uvw_frame_new(UVW_FRAME_TASK, id);
    uvw_frame_set_routine(f, routines[n ? p[0] % 3 : 0]);
    v = uvw_value_string(n > 1 ? (const char *)p + 1 : "", n > 1 ? n - 1 : 0);
    uvw_frame_add_arg(f, v);
    if (n && p[0] & 0x80) uvw_frame_set_dispatch_timeout(f, p[0] & 0x7f);
    break;
  case 2:
    f = uvw_frame_new(UVW_FRAME_NEXT, id);
    if (n) uvw_frame_set_manifest_bytes(f, p, n);
    break;
  case 3:
    f = uvw_frame_new(UVW_FRAME_SEND, id);
    v = uvw_value_string((const char *)p, n);
    uvw_frame_set_value(f, v);
    break;
  case 4:
    f = uvw_frame_new(UVW_FRAME_THROW, id);
    e = chunk_error(p, n);
    uvw_frame_set_error(f, e);
    if (n > 1) uvw_frame_set_manifest_bytes(f, p + 1, n - 1);
    break;
  default: out_put(r, p, n); return; /* unframed */
  }
  out_built(r, f);
  uvw_value_unref(v);
  uvw_error_unref(e);
}

static void to_caller(raw_t *r, uint8_t op, uint64_t id, const uint8_t *p, size_t n) {
  uvw_frame_t *f = NULL;
  uvw_value_t *v = NULL;
  uvw_error_t *e = NULL;
  switch (op % 6) {
  case 0: out_frame(r, p, n); return;
  case 1: f = uvw_frame_new(UVW_FRAME_ACK, id); break;
  case 2:
    f = uvw_frame_new(UVW_FRAME_RESULT, id);
    v = uvw_value_string(n > 1 ? (const char *)p + 1 : "", n > 1 ? n - 1 : 0);
    uvw_frame_set_value(f, v);
    uvw_frame_set_done(f, n && p[0] & 1);
    if (n > 1 && p[0] & 2) uvw_frame_set_manifest_bytes(f, p + 1, n - 1);
    break;
  case 3:
    f = uvw_frame_new(UVW_FRAME_EXCEPTION, id);
    e = chunk_error(p, n);
    uvw_frame_set_error(f, e);
    if (n > 1) uvw_frame_set_manifest_bytes(f, p + 1, n - 1);
    break;
  case 4:
    f = uvw_frame_new(UVW_FRAME_NACK, id);
    e = chunk_error(p, n);
    uvw_frame_set_error(f, e);
    break;
  default: out_put(r, p, n); return;
  }
  out_built(r, f);
  uvw_value_unref(v);
  uvw_error_unref(e);
}

typedef void (*chunk_fn)(raw_t *r, uint8_t op, uint64_t id, const uint8_t *p, size_t n);

static void chunks(raw_t *r, const uint8_t *data, size_t size, chunk_fn fn) {
  size_t i = 0;
  while (i + 4 <= size) {
    uint8_t op = data[i], id = data[i + 1];
    size_t n = (size_t)data[i + 2] << 8 | data[i + 3];
    i += 4;
    if (n > size - i) n = size - i;
    fn(r, op, id % 8, data + i, n);
    i += n;
  }
}

/* ---- the health check ------------------------------------------------------------------ */

typedef struct {
  int calls, status;
  char value[64], applied[64];
} reply_t;

static void on_reply(uvw_dispatch_t *d, const uvw_reply_t *reply, void *arg) {
  (void)d;
  reply_t *r = arg;
  r->calls++;
  r->status = reply->status;
  if (reply->status == 0 && uvw_value_kind(reply->value) == UVW_VALUE_STRING)
    snprintf(r->value, sizeof r->value, "%s", uvw_value_as_string(reply->value));
  uvw_value_t *v = NULL;
  if (uvw_get(var, &v) == 0 && uvw_value_kind(v) == UVW_VALUE_STRING)
    snprintf(r->applied, sizeof r->applied, "%s", uvw_value_as_string(v));
}

static void on_closed(void *arg) { *(int *)arg = 1; }

static void run_until(int *flag) {
  for (int i = 0; i < 100000 && !*flag; i++) uv_run(&loop, UV_RUN_NOWAIT);
}

static void health_check(void) {
  static unsigned serial;
  char want[32], applied[40];
  snprintf(want, sizeof want, "hc-%u", ++serial);
  snprintf(applied, sizeof applied, "%s!", want);
  uvw_context_t *ctx = uvw_context_new();
  CHECK(ctx && uvw_context_enter(ctx) == 0, "context");
  CHECK(uvw_set_cstring(var, want, NULL) == 0, "set");
  uvw_conn_t *conn;
  CHECK(uvw_conn_open(&loop, worker_addr, &conn) == 0, "conn");
  uvw_value_t *arg = uvw_value_cstring(want);
  reply_t r = {0};
  CHECK(uvw_conn_dispatch(conn, "echo", &arg, 1, NULL, on_reply, &r, NULL) == 0, "dispatch");
  uvw_value_unref(arg);
  run_until(&r.calls);
  CHECK(r.calls == 1 && r.status == 0, "the worker no longer serves (calls %d, status %d)", r.calls, r.status);
  CHECK(strcmp(r.value, want) == 0 && strcmp(r.applied, applied) == 0, "cross-talk: got %s / %s", r.value,
        r.applied);
  int closed = 0;
  uvw_conn_close(conn, on_closed, &closed);
  run_until(&closed);
  CHECK(closed, "conn close");
  if (getenv("FUZZ_LINK_VERBOSE")) fprintf(stderr, "health: %s -> %s\n", r.value, r.applied);
  uvw_context_exit(ctx);
  uvw_context_unref(ctx);
}

/* ---- the two sides ---------------------------------------------------------------------- */

static void worker_side(const uint8_t *data, size_t size) {
  raw_t *r = calloc(1, sizeof *r);
  CHECK(r != NULL, "oom");
  r->responses = 1;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", worker_path);
  r->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(r->fd >= 0 && connect(r->fd, (struct sockaddr *)&sa, sizeof sa) == 0, "connect: %s", strerror(errno));
  fcntl(r->fd, F_SETFL, O_NONBLOCK);
  chunks(r, data, size, to_worker);
  settle(r);
  close(r->fd);
  r->fd = -1;
  settle(r); /* the worker sees the EOF and drops the connection */
  if (getenv("FUZZ_LINK_VERBOSE")) fprintf(stderr, "worker side: %d frames back\n", r->frames);
  free(r->out);
  free(r);
}

typedef struct {
  reply_t one[2], step;
  uvw_dispatch_t *stream;
} caller_t;

static void caller_side(const uint8_t *data, size_t size) {
  raw_t *r = calloc(1, sizeof *r);
  caller_t c = {0};
  CHECK(r != NULL, "oom");
  r->fd = -1;
  uvw_context_t *ctx = uvw_context_new();
  CHECK(ctx && uvw_context_enter(ctx) == 0, "context");
  CHECK(uvw_set_cstring(var, "caller", NULL) == 0, "set");
  uvw_conn_t *conn;
  CHECK(uvw_conn_open(&loop, fake_addr, &conn) == 0, "conn");
  uvw_value_t *arg = uvw_value_cstring("x");
  for (int i = 0; i < 2; i++)
    CHECK(uvw_conn_dispatch(conn, "echo", &arg, 1, NULL, on_reply, &c.one[i], NULL) == 0, "dispatch");
  CHECK(uvw_conn_dispatch_stream(conn, "stream", &arg, 1, NULL, &c.stream) == 0, "stream");
  CHECK(uvw_dispatch_next(c.stream, on_reply, &c.step) == 0, "next");
  uvw_value_unref(arg);
  for (int i = 0; i < 100000 && r->fd < 0; i++) {
    uv_run(&loop, UV_RUN_NOWAIT);
    r->fd = accept4(fake_listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  }
  CHECK(r->fd >= 0, "the caller never connected");
  chunks(r, data, size, to_caller);
  settle(r);
  int closed = 0;
  uvw_conn_close(conn, on_closed, &closed);
  run_until(&closed);
  CHECK(closed, "conn close");
  for (int i = 0; i < 2; i++) CHECK(c.one[i].calls == 1, "dispatch %d: %d callbacks", i, c.one[i].calls);
  CHECK(c.step.calls == 1, "stream step: %d callbacks", c.step.calls);
  uvw_dispatch_close(c.stream);
  if (getenv("FUZZ_LINK_VERBOSE"))
    fprintf(stderr, "caller side: %d frames back, statuses %d %d %d\n", r->frames, c.one[0].status, c.one[1].status,
            c.step.status);
  close(r->fd);
  uvw_context_exit(ctx);
  uvw_context_unref(ctx);
  free(r->out);
  free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  setup();
  if (size == 0) return 0;
  if (data[0] & 1)
    caller_side(data + 1, size - 1);
  else
    worker_side(data + 1, size - 1);
  health_check();
  return 0;
}
