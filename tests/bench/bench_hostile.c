/* The worst stall one hostile frame can cause a worker at the default
 * limits (issue 11, item 3). A worker runs on its own thread; a hostile
 * peer writes one frame, and a well-behaved peer's ping dispatch (sent as
 * soon as the hostile frame is written) measures how long the worker's
 * loop was unavailable. Prints one line per attack and the worst.
 *
 *   bench_hostile [ROUNDS]     (default 3: each figure is the worst of them)
 *
 * Not a test: the figure depends on the machine. docs/dispatch.md quotes it. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <uvwool.h>

#define MIB ((size_t)1 << 20)

typedef struct {
  uint8_t *p;
  size_t n, cap;
} buf_t;

static void put(buf_t *b, const void *d, size_t n) {
  if (b->n + n > b->cap) {
    b->cap = (b->n + n) * 2;
    b->p = realloc(b->p, b->cap);
  }
  memcpy(b->p + b->n, d, n);
  b->n += n;
}
static void varint(buf_t *b, uint64_t v) {
  uint8_t t[10];
  size_t k = 0;
  do {
    t[k++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>= 7;
  } while (v);
  put(b, t, k);
}
static void field(buf_t *b, unsigned num, const void *d, size_t n) {
  varint(b, (uint64_t)num << 3 | 2);
  varint(b, n);
  put(b, d, n);
}
static void field_varint(buf_t *b, unsigned num, uint64_t v) {
  varint(b, (uint64_t)num << 3);
  varint(b, v);
}
/* A framed Request: dispatch id, one kind member (number, bytes), manifest. */
static void request(buf_t *out, uint64_t id, unsigned kind, const buf_t *member, const buf_t *manifest) {
  buf_t r = {0};
  field_varint(&r, 1, id);
  field(&r, kind, member ? member->p : NULL, member ? member->n : 0);
  if (manifest) field(&r, 15, manifest->p, manifest->n);
  uint8_t h[4] = {(uint8_t)(r.n >> 24), (uint8_t)(r.n >> 16), (uint8_t)(r.n >> 8), (uint8_t)r.n};
  put(out, h, 4);
  put(out, r.p, r.n);
  free(r.p);
}
static void task(buf_t *out, uint64_t id, const char *routine, const buf_t *args) {
  buf_t t = {0};
  field(&t, 1, routine, strlen(routine));
  if (args) put(&t, args->p, args->n);
  request(out, id, 2, &t, NULL);
  free(t.p);
}

/* ---- the attacks: each fills one frame up to the 16 MiB default ---------------- */

static size_t room(void) { return uvw_wire_max_size() - 64; }

static void empty_entries(buf_t *m) {
  while (m->n + 2 <= room()) put(m, "\x12\x00", 2);
}
static void string_values(buf_t *m) { /* 4096 undeclared keys with 4 KB strings */
  char *s = malloc(4000);
  memset(s, 'v', 4000);
  for (int i = 0; i < 4096 && m->n + 4100 < room(); i++) {
    buf_t e = {0}, v = {0};
    char name[32];
    int k = snprintf(name, sizeof name, "k%d", i);
    field(&v, 5, s, 4000);
    field(&e, 1, "h", 1);
    field(&e, 2, name, (size_t)k);
    field(&e, 3, v.p, v.n);
    field(m, 2, e.p, e.n);
    free(e.p);
    free(v.p);
  }
  free(s);
}
static void attack_next_unknown(buf_t *out) {
  buf_t m = {0};
  empty_entries(&m);
  request(out, 999999, 3, NULL, &m);
  free(m.p);
}
static void attack_next_empty_entries(buf_t *out) {
  task(out, 1, "noop", NULL);
  buf_t m = {0};
  empty_entries(&m);
  request(out, 1, 3, NULL, &m);
  free(m.p);
}
static void attack_next_string_values(buf_t *out) {
  task(out, 1, "noop", NULL);
  buf_t m = {0};
  string_values(&m);
  request(out, 1, 3, NULL, &m);
  free(m.p);
}
static void attack_task_int_args(buf_t *out) {
  buf_t a = {0};
  while (a.n + 4 <= room()) put(&a, "\x12\x02\x18\x02", 4); /* args: Value{int_value: 1} */
  task(out, 1, "noop", &a);
  free(a.p);
}
static void attack_throw_fields(buf_t *out) {
  task(out, 1, "noop_stream", NULL);
  request(out, 1, 3, NULL, NULL); /* first step: Next */
  buf_t e = {0}, t = {0};
  field(&e, 1, "X", 1);
  while (e.n + 6 <= room()) put(&e, "\x22\x04\x0a\x00\x12\x00", 6); /* fields: {name "", value ""} */
  field(&t, 1, e.p, e.n);
  request(out, 1, 5, &t, NULL);
  free(e.p);
  free(t.p);
}

static const struct {
  const char *name;
  void (*build)(buf_t *);
} attacks[] = {
    {"Next for an unknown dispatch, 16 MiB manifest of empty entries", attack_next_unknown},
    {"Next for a live dispatch, 16 MiB manifest of empty entries", attack_next_empty_entries},
    {"Next for a live dispatch, 4096 undeclared keys with 4 KB values", attack_next_string_values},
    {"Task with 16 MiB of integer arguments", attack_task_int_args},
    {"Throw with an error of 16 MiB of fields", attack_throw_fields},
};

/* ---- worker thread -------------------------------------------------------------- */

static char address[128];
static uv_loop_t wloop;
static uvw_worker_t *worker;
static uv_async_t stop_async;

static void noop(uvw_call_t *call, void *arg) {
  (void)arg;
  uvw_call_return(call, NULL);
}
static void noop_stream(uvw_call_t *call, void *arg) {
  (void)arg;
  if (uvw_call_step(call) == UVW_STEP_THROW)
    uvw_call_return(call, NULL);
  else
    uvw_call_yield(call, NULL);
}
static void quiet(uvw_worker_t *w, const uvw_error_t *e, void *arg) {
  (void)w, (void)e, (void)arg;
}
static void on_stop(uv_async_t *a) {
  uv_close((uv_handle_t *)a, NULL);
  uvw_worker_close(worker, NULL, NULL);
}
static pthread_barrier_t ready;

/* Answers are made on the worker's loop thread: the worker is opened here. */
static void *worker_main(void *arg) {
  (void)arg;
  uv_loop_init(&wloop);
  if (uvw_worker_open(&wloop, &worker) != 0 || uvw_worker_register(worker, "noop", noop, NULL, 0) != 0 ||
      uvw_worker_register(worker, "noop_stream", noop_stream, NULL, UVW_ROUTINE_STREAM) != 0 ||
      uvw_worker_listen(worker, address) != 0) {
    fprintf(stderr, "worker: %s\n", uvw_error_message(uvw_last_error()));
    exit(1);
  }
  uvw_worker_on_error(worker, quiet, NULL);
  uv_async_init(&wloop, &stop_async, on_stop);
  pthread_barrier_wait(&ready);
  uv_run(&wloop, UV_RUN_DEFAULT);
  uvw_loop_close(&wloop);
  return NULL;
}

static int dial(void) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  strcpy(sa.sun_path, address + 5);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    perror("connect");
    exit(1);
  }
  return fd;
}
static void write_all(int fd, const uint8_t *p, size_t n) {
  while (n) {
    ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
    if (k <= 0) return; /* the worker dropped the peer: fine */
    p += k;
    n -= (size_t)k;
  }
}
static void read_n(int fd, size_t n) {
  uint8_t b[4096];
  while (n) {
    ssize_t k = read(fd, b, n < sizeof b ? n : sizeof b);
    if (k <= 0) {
      fprintf(stderr, "ping connection lost\n");
      exit(1);
    }
    n -= (size_t)k;
  }
}
/* One noop dispatch on fd: Task+Next, then Ack and Result. */
static void ping(int fd, uint64_t id) {
  buf_t b = {0};
  task(&b, id, "noop", NULL);
  request(&b, id, 3, NULL, NULL);
  write_all(fd, b.p, b.n);
  free(b.p);
  for (int i = 0; i < 2; i++) {
    uint8_t h[4];
    size_t got = 0;
    while (got < 4) {
      ssize_t k = read(fd, h + got, 4 - got);
      if (k <= 0) exit(1);
      got += (size_t)k;
    }
    read_n(fd, (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3]);
  }
}
static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 3;
  uvw_set_warning_sink(NULL, NULL);
  snprintf(address, sizeof address, "pipe:/tmp/uvwool-bench-hostile-%d.sock", (int)getpid());
  pthread_barrier_init(&ready, NULL, 2);
  pthread_t th;
  pthread_create(&th, NULL, worker_main, NULL);
  pthread_barrier_wait(&ready);

  int good = dial();
  uint64_t id = 1;
  double base = 1e9;
  for (int i = 0; i < 200; i++) {
    double t0 = now_ms();
    ping(good, id++);
    double d = now_ms() - t0;
    if (d < base) base = d;
  }
  printf("bench_hostile (%s build): a ping's round trip on an idle worker: %.3f ms\n",
         UVWOOL_BENCH_BUILD_TYPE, base);
  double worst = 0;
  for (size_t a = 0; a < sizeof attacks / sizeof attacks[0]; a++) {
    buf_t frame = {0};
    attacks[a].build(&frame);
    double most = 0;
    for (int r = 0; r < rounds; r++) {
      int evil = dial();
      write_all(evil, frame.p, frame.n);
      double t0 = now_ms();
      ping(good, id++);
      double d = now_ms() - t0;
      if (d > most) most = d;
      close(evil);
      usleep(100000); /* let the worker drop it */
    }
    printf("  %-66s %8.1f ms (%zu-byte frame)\n", attacks[a].name, most, frame.n);
    if (most > worst) worst = most;
    free(frame.p);
  }
  printf("worst stall one hostile frame caused: %.1f ms\n", worst);
  close(good);
  uv_async_send(&stop_async);
  pthread_join(th, NULL);
  return 0;
}
