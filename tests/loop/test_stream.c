/* Streams on a real loop (docs/testing.md rows 17, 18, 22 for these edges):
 * read_start (with its alloc callback) and listen are multi-shot; write,
 * write2, shutdown, tcp_connect and pipe_connect are one-shot requests;
 * tcp_close_reset is a close. Real sockets throughout: socketpairs under
 * uv_pipe_open, TCP on 127.0.0.1 port 0, a unix socket in a temp dir. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "looptest.h"

LT_FIXTURE(stream)

/* A uv_pipe_t over one end of a socketpair; returns the raw other end. */
static int open_pipe(uv_pipe_t *p, int ipc) {
  int sv[2];
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  cr_assert_eq(uv_pipe_init(&loop, p, ipc), 0);
  cr_assert_eq(uv_pipe_open(p, sv[0]), 0);
  return sv[1];
}

/* A raw (uncaptured) listener that never accepts: libuv parks the pending
 * connection and the kernel completes the handshake anyway. Unreferenced, so
 * the loop ends when the clients are done. */
static void ignore_connection(uv_stream_t *server, int status) {
  (void)server;
  (void)status;
}

static void tcp_server(uv_tcp_t *server, struct sockaddr_storage *addr) {
  struct sockaddr_in any;
  uv_ip4_addr("127.0.0.1", 0, &any);
  cr_assert_eq(uv_tcp_init(&loop, server), 0);
  cr_assert_eq(uv_tcp_bind(server, (const struct sockaddr *)&any, 0), 0);
  int len = sizeof(*addr);
  cr_assert_eq(uv_tcp_getsockname(server, (struct sockaddr *)addr, &len), 0);
}

static void raw_tcp_server(uv_tcp_t *server, struct sockaddr_storage *addr) {
  tcp_server(server, addr);
  cr_assert_eq(uv_listen((uv_stream_t *)server, 8, ignore_connection), 0);
  uv_unref((uv_handle_t *)server);
}

/* ---- read_start --------------------------------------------------------------- */

typedef struct {
  uv_pipe_t pipe;
  int peer; /* raw other end: each read writes the next byte into it */
  long base;
  int fired;
  long seen[3], alloc_seen[3];
  char ids[3][33];
  char buf[16];
} reader_t;

static void reader_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  reader_t *r = h->data;
  (void)size;
  if (r->fired < 3) r->alloc_seen[r->fired] = lt_read(var);
  *buf = uv_buf_init(r->buf, sizeof(r->buf));
}

static void reader_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  reader_t *r = s->data;
  (void)buf;
  cr_assert_geq(n, 0, "read error %zd", n);
  if (n == 0) return; /* EAGAIN */
  r->seen[r->fired] = lt_read(var);
  lt_chain_id(r->ids[r->fired]);
  lt_write(var, r->base + r->fired); /* seen by this registration's next read only */
  if (++r->fired < 3)
    cr_assert_eq(write(r->peer, "x", 1), 1);
  else
    uvw_read_stop(s);
}

static void reader_open(reader_t *r, long base) {
  memset(r, 0, sizeof(*r));
  r->peer = open_pipe(&r->pipe, 0);
  r->pipe.data = r;
  r->base = base;
}

static void reader_close(reader_t *r) {
  uvw_close((uv_handle_t *)&r->pipe, NULL);
  close(r->peer);
}

/* Rows 17 + 18: two registrations, three reads each. */
Test(stream, read_start_reuses_one_capture_per_registration) {
  reader_t a, b;
  reader_open(&a, 100);
  reader_open(&b, 200);
  lt_write(var, 1);
  lt_chain_id(scheduler_id);
  cr_assert_eq(uvw_read_start((uv_stream_t *)&a.pipe, reader_alloc, reader_read), 0);
  cr_assert_eq(uvw_read_start((uv_stream_t *)&b.pipe, reader_alloc, reader_read), 0);
  lt_write(var, 2); /* after registration: not seen */
  cr_assert_eq(write(a.peer, "x", 1), 1);
  cr_assert_eq(write(b.peer, "x", 1), 1);
  uv_run(&loop, UV_RUN_DEFAULT);
  reader_t *rs[] = {&a, &b};
  for (int i = 0; i < 2; i++) {
    reader_t *r = rs[i];
    lt_assert_three_reads(r->fired, r->seen, r->alloc_seen, r->ids, r->base, scheduler_id);
    cr_assert_eq(r->pipe.data, r, "handle->data is the user's");
  }
  cr_assert_eq(lt_read(var), 2, "writes inside the callbacks did not leak back");
  reader_close(&a);
  reader_close(&b);
  finish();
}

/* Row 22. */
Test(stream, read_stop_and_close_release_the_capture) {
  reader_t r;
  reader_open(&r, 0);
  size_t before = tu_released();
  uvw_context_t *ctx = lt_enter_counted(held);
  cr_assert_eq(uvw_read_start((uv_stream_t *)&r.pipe, reader_alloc, reader_read), 0);
  lt_leave(ctx);
  cr_assert_eq(tu_released(), before, "the read's capture holds the value");
  cr_assert_eq(uvw_read_stop((uv_stream_t *)&r.pipe), 0);
  cr_assert_eq(tu_released(), before + 1, "read_stop released it");
  ctx = lt_enter_counted(held);
  cr_assert_eq(uvw_read_start((uv_stream_t *)&r.pipe, reader_alloc, reader_read), 0);
  lt_leave(ctx);
  reader_close(&r);
  cr_assert_eq(tu_released(), before + 2, "close released it");
  finish();
}

Test(stream, read_start_errors_are_libuvs_and_keep_nothing) {
  reader_t r;
  reader_open(&r, 0);
  uv_stream_t *s = (uv_stream_t *)&r.pipe;
  size_t before = tu_released();
  uvw_context_t *ctx = lt_enter_counted(held);
  cr_assert_eq(uvw_read_start(s, reader_alloc, NULL), UV_EINVAL);
  cr_assert_eq(uvw_read_start(s, NULL, reader_read), UV_EINVAL);
  lt_leave(ctx);
  cr_assert_eq(tu_released(), before + 1, "NULL callbacks: nothing captured");
  ctx = lt_enter_counted(held);
  cr_assert_eq(uvw_read_start(s, reader_alloc, reader_read), 0);
  lt_leave(ctx);
  ctx = lt_enter_counted(held);
  cr_assert_eq(uvw_read_start(s, reader_alloc, reader_read), UV_EALREADY);
  lt_leave(ctx);
  cr_assert_eq(tu_released(), before + 2, "the refused start dropped its own capture, not the live one");
  reader_close(&r);
  cr_assert_eq(tu_released(), before + 3);
  ctx = lt_enter_counted(held);
  cr_assert_eq(uvw_read_start(s, reader_alloc, reader_read), UV_EINVAL, "closing handle: libuv refuses");
  lt_leave(ctx);
  cr_assert_eq(tu_released(), before + 4, "nothing captured on a closing handle");
  finish();
}

/* ---- listen --------------------------------------------------------------------- */

typedef struct {
  uv_tcp_t server;
  struct sockaddr_storage addr;
  uv_tcp_t clients[3], accepted[3];
  uv_connect_t connects[3];
  long base;
  int fired;
  long seen[3];
  char ids[3][33];
} server_t;

static void raw_client_connected(uv_connect_t *req, int status) {
  cr_assert_eq(status, 0);
  uv_close((uv_handle_t *)req->handle, NULL);
}

static void raw_connect(server_t *s, int i) {
  uv_tcp_init(&loop, &s->clients[i]);
  cr_assert_eq(uv_tcp_connect(&s->connects[i], &s->clients[i], (struct sockaddr *)&s->addr, raw_client_connected), 0);
}

static void on_connection(uv_stream_t *server, int status) {
  server_t *s = server->data;
  cr_assert_eq(status, 0);
  uv_tcp_init(&loop, &s->accepted[s->fired]);
  cr_assert_eq(uv_accept(server, (uv_stream_t *)&s->accepted[s->fired]), 0);
  uv_close((uv_handle_t *)&s->accepted[s->fired], NULL);
  s->seen[s->fired] = lt_read(var);
  lt_chain_id(s->ids[s->fired]);
  lt_write(var, s->base + s->fired);
  if (++s->fired < 3)
    raw_connect(s, s->fired); /* the next connection only after this one */
  else
    uvw_close((uv_handle_t *)server, NULL);
}

Test(stream, listen_reuses_one_capture_per_registration) {
  server_t a = {.base = 100}, b = {.base = 200};
  server_t *ss[] = {&a, &b};
  lt_write(var, 1);
  lt_chain_id(scheduler_id);
  for (int i = 0; i < 2; i++) {
    tcp_server(&ss[i]->server, &ss[i]->addr);
    ss[i]->server.data = ss[i];
    cr_assert_eq(uvw_listen((uv_stream_t *)&ss[i]->server, 8, on_connection), 0);
  }
  lt_write(var, 2);
  raw_connect(&a, 0);
  raw_connect(&b, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  for (int i = 0; i < 2; i++) {
    server_t *s = ss[i];
    cr_assert_eq(s->fired, 3);
    cr_assert_eq(s->seen[0], 1, "the value current at listen");
    cr_assert_eq(s->seen[1], s->base, "the previous connection's write, and not the other server's");
    cr_assert_eq(s->seen[2], s->base + 1);
    for (int k = 0; k < 3; k++) cr_assert_str_eq(s->ids[k], scheduler_id);
    cr_assert_eq(s->server.data, s);
  }
  cr_assert_eq(lt_read(var), 2);
  finish();
}

Test(stream, close_and_close_reset_release_the_listen_capture) {
  server_t a = {0}, b = {0};
  tcp_server(&a.server, &a.addr);
  tcp_server(&b.server, &b.addr);
  size_t before = tu_released();
  uvw_context_t *ctx = lt_enter_counted(held);
  cr_assert_eq(uvw_listen((uv_stream_t *)&a.server, 8, on_connection), 0);
  lt_leave(ctx);
  ctx = lt_enter_counted(held); /* a value of its own: the captures must not share one */
  cr_assert_eq(uvw_listen((uv_stream_t *)&b.server, 8, on_connection), 0);
  lt_leave(ctx);
  cr_assert_eq(tu_released(), before, "both captures hold the value");
  cr_assert_eq(uvw_tcp_close_reset(&b.server, NULL), 0);
  cr_assert_eq(tu_released(), before + 1, "tcp_close_reset released the listen capture");
  /* Listen lives in its own slot (stream.c SLOT_LISTEN): uvw_close releases
   * it only once uvw__handle_release covers that slot (see the report). */
  uvw_close((uv_handle_t *)&a.server, NULL);
  cr_assert_eq(tu_released(), before + 2, "uvw_close released the listen capture");
  finish();
}

Test(stream, listen_errors_are_libuvs_and_keep_nothing) {
  server_t a = {0};
  tcp_server(&a.server, &a.addr);
  size_t before = tu_released();
  uvw_context_t *ctx = lt_enter_counted(held);
  /* libuv accepts a NULL connection callback (and would call it): the
   * wrapper passes it through uncaptured. No client connects here. */
  cr_assert_eq(uvw_listen((uv_stream_t *)&a.server, 8, NULL), 0);
  lt_leave(ctx);
  cr_assert_eq(tu_released(), before + 1, "NULL callback: nothing captured");
  uvw_close((uv_handle_t *)&a.server, NULL);
  uv_pipe_t unbound;
  uv_pipe_init(&loop, &unbound, 0);
  ctx = lt_enter_counted(held);
  cr_assert_eq(uvw_listen((uv_stream_t *)&a.server, 8, on_connection), UV_EINVAL, "closing handle");
  cr_assert_eq(uvw_listen((uv_stream_t *)&unbound, 8, on_connection), UV_EINVAL, "unbound pipe");
  lt_leave(ctx);
  cr_assert_eq(tu_released(), before + 2, "refused listens captured nothing");
  uvw_close((uv_handle_t *)&unbound, NULL);
  finish();
}

/* ---- tcp_connect, and a write registered from its callback ---------------------- */

typedef struct {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_write_t write;
  long base;
  int connect_status;
  long connect_seen, write_seen;
  char connect_id[33], write_id[33];
} client_t;

static void client_wrote(uv_write_t *req, int status) {
  client_t *c = req->data;
  cr_assert_eq(status, 0);
  c->write_seen = lt_read(var);
  lt_chain_id(c->write_id);
  uvw_close((uv_handle_t *)req->handle, NULL);
}

static void client_connected(uv_connect_t *req, int status) {
  client_t *c = req->data;
  c->connect_status = status;
  c->connect_seen = lt_read(var);
  lt_chain_id(c->connect_id);
  if (status != 0) {
    uvw_close((uv_handle_t *)req->handle, NULL);
    return;
  }
  lt_write(var, c->base); /* flows forward into the write registered next */
  uv_buf_t buf = uv_buf_init("hi", 2);
  c->write.data = c;
  cr_assert_eq(uvw_write(&c->write, req->handle, &buf, 1, client_wrote), 0);
  lt_write(var, c->base + 1); /* after the write's registration: not seen by it */
}

static void client_init(client_t *c, long base) {
  memset(c, 0, sizeof(*c));
  c->base = base;
  c->connect.data = c;
  c->connect_status = 1; /* not called yet */
  cr_assert_eq(uv_tcp_init(&loop, &c->tcp), 0);
}

Test(stream, tcp_connect_callback_runs_in_the_context_of_its_request) {
  uv_tcp_t server;
  struct sockaddr_storage addr;
  raw_tcp_server(&server, &addr);
  client_t a, b;
  client_init(&a, 100);
  client_init(&b, 200);
  lt_write(var, 1);
  lt_chain_id(scheduler_id);
  cr_assert_eq(uvw_tcp_connect(&a.connect, &a.tcp, (struct sockaddr *)&addr, client_connected), 0);
  cr_assert_eq(uvw_tcp_connect(&b.connect, &b.tcp, (struct sockaddr *)&addr, client_connected), 0);
  lt_write(var, 2);
  uv_run(&loop, UV_RUN_DEFAULT);
  client_t *cs[] = {&a, &b};
  for (int i = 0; i < 2; i++) {
    client_t *c = cs[i];
    cr_assert_eq(c->connect_status, 0);
    cr_assert_eq(c->connect_seen, 1, "the value at connect; not the sibling's write");
    cr_assert_eq(c->write_seen, c->base, "the connect callback's write flowed into its write request");
    cr_assert_str_eq(c->connect_id, scheduler_id);
    cr_assert_str_eq(c->write_id, scheduler_id);
    cr_assert_eq(c->connect.data, c, "req->data is the user's");
  }
  cr_assert_eq(lt_read(var), 2, "no write leaked back");
  uv_close((uv_handle_t *)&server, NULL);
  finish();
}

Test(stream, tcp_connect_capture_is_released_after_its_callback_and_refusals_keep_nothing) {
  uv_tcp_t server;
  struct sockaddr_storage addr;
  raw_tcp_server(&server, &addr);
  client_t a, b;
  client_init(&a, 0);
  client_init(&b, 0);
  size_t before = tu_released();
  uvw_context_t *ctx = lt_enter_counted(held);
  cr_assert_eq(uvw_tcp_connect(&a.connect, &a.tcp, (struct sockaddr *)&addr, client_connected), 0);
  lt_leave(ctx);
  struct sockaddr bad = {.sa_family = AF_UNIX};
  ctx = lt_enter_counted(held);
  cr_assert_eq(uvw_tcp_connect(&b.connect, &b.tcp, &bad, client_connected), UV_EINVAL, "libuv's answer");
  lt_leave(ctx);
  cr_assert_eq(tu_released(), before + 1, "the refused connect captured nothing; the pending one holds");
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(a.connect_status, 0);
  cr_assert_eq(tu_released(), before + 2, "released after the callback");
  uv_close((uv_handle_t *)&b.tcp, NULL);
  uv_close((uv_handle_t *)&server, NULL);
  finish();
}

/* ---- write ------------------------------------------------------------------------ */

typedef struct {
  uv_write_t req;
  long base;
  int again; /* resubmit the same request from its callback this many times */
  int fired;
  int status[2];
  long seen[2];
  char ids[2][33];
} writer_t;

static void on_write(uv_write_t *req, int status) {
  writer_t *w = (writer_t *)req;
  w->status[w->fired] = status;
  w->seen[w->fired] = lt_read(var);
  lt_chain_id(w->ids[w->fired]);
  lt_write(var, w->base + w->fired);
  w->fired++;
  if (w->again-- > 0) {
    uv_buf_t buf = uv_buf_init("b", 1);
    cr_assert_eq(uvw_write(req, req->handle, &buf, 1, on_write), 0); /* the same request again */
  }
}

Test(stream, write_callbacks_run_in_the_context_of_their_request) {
  uv_pipe_t p;
  int peer = open_pipe(&p, 0);
  writer_t a = {.base = 100, .again = 1}, b = {.base = 200};
  uv_buf_t buf = uv_buf_init("a", 1);
  lt_write(var, 1);
  lt_chain_id(scheduler_id);
  cr_assert_eq(uvw_write(&a.req, (uv_stream_t *)&p, &buf, 1, on_write), 0);
  cr_assert_eq(uvw_write(&b.req, (uv_stream_t *)&p, &buf, 1, on_write), 0);
  lt_write(var, 2);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(a.fired, 2);
  cr_assert_eq(b.fired, 1);
  cr_assert_eq(a.status[0], 0);
  cr_assert_eq(b.status[0], 0);
  cr_assert_eq(a.seen[0], 1, "the value at submission");
  cr_assert_eq(b.seen[0], 1, "a sibling's write is not seen");
  cr_assert_eq(a.seen[1], 100, "resubmitted from its callback: captured the callback's context");
  cr_assert_str_eq(a.ids[0], scheduler_id);
  cr_assert_str_eq(a.ids[1], scheduler_id);
  cr_assert_str_eq(b.ids[0], scheduler_id);
  cr_assert_eq(lt_read(var), 2);
  char got[8];
  cr_assert_eq(read(peer, got, sizeof(got)), 3, "the three writes arrived");
  uvw_close((uv_handle_t *)&p, NULL);
  close(peer);
  finish();
}

Test(stream, write_capture_is_released_after_its_callback_and_refusals_keep_nothing) {
  uv_pipe_t p;
  int peer = open_pipe(&p, 0);
  writer_t a = {0}, b = {0}, c = {0};
  uv_buf_t buf = uv_buf_init("a", 1);
  size_t before = tu_released();
  uvw_context_t *ctx = lt_enter_counted(held);
  cr_assert_eq(uvw_write(&a.req, (uv_stream_t *)&p, &buf, 1, on_write), 0);
  cr_assert_eq(uvw_write(&b.req, (uv_stream_t *)&p, &buf, 1, NULL), 0, "NULL callback: libuv's answer");
  /* write2 with a handle to send needs an IPC pipe: libuv refuses. */
  cr_assert_eq(uvw_write2(&c.req, (uv_stream_t *)&p, &buf, 1, (uv_stream_t *)&p, on_write), UV_EINVAL);
  lt_leave(ctx);
  cr_assert_eq(tu_released(), before, "the pending write holds the value");
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(a.fired, 1);
  cr_assert_eq(c.fired, 0);
  cr_assert_eq(tu_released(), before + 1, "released after the callback; the others captured nothing");
  uvw_close((uv_handle_t *)&p, NULL);
  ctx = lt_enter_counted(held);
  cr_assert_eq(uvw_write(&a.req, (uv_stream_t *)&p, &buf, 1, on_write), UV_EBADF, "closing handle");
  cr_assert_eq(uvw_write2(&a.req, (uv_stream_t *)&p, &buf, 1, NULL, on_write), UV_EBADF, "closing handle");
  lt_leave(ctx);
  cr_assert_eq(tu_released(), before + 2);
  close(peer);
  finish();
}

/* A pending write's callback still runs, in its own context, when the close
 * cancels it. */
Test(stream, write_cancelled_by_close_runs_in_its_context) {
  uv_pipe_t p;
  int peer = open_pipe(&p, 0);
  writer_t a = {.base = 100};
  uv_buf_t buf = uv_buf_init("a", 1);
  lt_write(var, 1);
  /* Fill the socket buffer so the write stays queued in libuv. */
  static char big[1 << 20];
  uv_buf_t bigbuf = uv_buf_init(big, sizeof(big));
  writer_t filler = {.base = 300};
  cr_assert_eq(uvw_write(&filler.req, (uv_stream_t *)&p, &bigbuf, 1, on_write), 0);
  lt_write(var, 2);
  cr_assert_eq(uvw_write(&a.req, (uv_stream_t *)&p, &buf, 1, on_write), 0);
  uvw_close((uv_handle_t *)&p, NULL);
  lt_write(var, 3);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(a.fired, 1);
  cr_assert_eq(a.status[0], UV_ECANCELED);
  cr_assert_eq(a.seen[0], 2, "the context of its submission");
  cr_assert_eq(filler.seen[0], 1);
  cr_assert_eq(lt_read(var), 3);
  close(peer);
  finish();
}

/* ---- write2: sending a TCP handle over an IPC pipe -------------------------------- */

typedef struct {
  uv_pipe_t pipe;
  uv_tcp_t received;
  int pending_type;
  char buf[64];
} ipc_reader_t;

static void ipc_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  ipc_reader_t *r = h->data;
  (void)size;
  *buf = uv_buf_init(r->buf, sizeof(r->buf));
}

static void ipc_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  ipc_reader_t *r = s->data;
  (void)buf;
  if (n <= 0) return;
  uv_pipe_t *p = (uv_pipe_t *)s;
  if (uv_pipe_pending_count(p) > 0) {
    r->pending_type = uv_pipe_pending_type(p);
    uv_tcp_init(&loop, &r->received);
    cr_assert_eq(uv_accept(s, (uv_stream_t *)&r->received), 0);
    uv_close((uv_handle_t *)&r->received, NULL);
    uv_read_stop(s);
  }
}

Test(stream, write2_callback_runs_in_the_context_of_its_request) {
  int sv[2];
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  uv_pipe_t sender;
  ipc_reader_t receiver = {0};
  uv_pipe_init(&loop, &sender, 1);
  uv_pipe_init(&loop, &receiver.pipe, 1);
  cr_assert_eq(uv_pipe_open(&sender, sv[0]), 0);
  cr_assert_eq(uv_pipe_open(&receiver.pipe, sv[1]), 0);
  receiver.pipe.data = &receiver;
  cr_assert_eq(uv_read_start((uv_stream_t *)&receiver.pipe, ipc_alloc, ipc_read), 0);
  uv_tcp_t sent;
  struct sockaddr_storage addr;
  tcp_server(&sent, &addr); /* a bound socket: something to send */

  writer_t a = {.base = 100}, b = {.base = 200};
  uv_buf_t buf = uv_buf_init("h", 1);
  lt_write(var, 1);
  lt_chain_id(scheduler_id);
  cr_assert_eq(uvw_write2(&a.req, (uv_stream_t *)&sender, &buf, 1, (uv_stream_t *)&sent, on_write), 0);
  /* send_handle NULL: libuv treats it as a plain write. */
  cr_assert_eq(uvw_write2(&b.req, (uv_stream_t *)&sender, &buf, 1, NULL, on_write), 0);
  lt_write(var, 2);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(receiver.pending_type, UV_TCP, "the handle was really sent");
  cr_assert_eq(a.fired, 1);
  cr_assert_eq(b.fired, 1);
  cr_assert_eq(a.status[0], 0);
  cr_assert_eq(a.seen[0], 1, "the value at submission");
  cr_assert_eq(b.seen[0], 1, "not the sibling's write");
  cr_assert_str_eq(a.ids[0], scheduler_id);
  cr_assert_str_eq(b.ids[0], scheduler_id);
  cr_assert_eq(lt_read(var), 2);
  uv_close((uv_handle_t *)&sent, NULL);
  uv_close((uv_handle_t *)&sender, NULL);
  uv_close((uv_handle_t *)&receiver.pipe, NULL);
  finish();
}

/* ---- shutdown ---------------------------------------------------------------------- */

typedef struct {
  uv_shutdown_t req;
  long base;
  int fired, status;
  long seen;
  char id[33];
} shutdown_probe_t;

static void on_shutdown(uv_shutdown_t *req, int status) {
  shutdown_probe_t *s = (shutdown_probe_t *)req;
  s->fired++;
  s->status = status;
  s->seen = lt_read(var);
  lt_chain_id(s->id);
  lt_write(var, s->base);
}

Test(stream, shutdown_callback_runs_in_the_context_of_its_request) {
  uv_pipe_t p1, p2;
  int peer1 = open_pipe(&p1, 0), peer2 = open_pipe(&p2, 0);
  shutdown_probe_t a = {.base = 100}, b = {.base = 200};
  lt_write(var, 1);
  lt_chain_id(scheduler_id);
  cr_assert_eq(uvw_shutdown(&a.req, (uv_stream_t *)&p1, on_shutdown), 0);
  cr_assert_eq(uvw_shutdown(&b.req, (uv_stream_t *)&p2, on_shutdown), 0);
  lt_write(var, 2);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(a.fired, 1);
  cr_assert_eq(b.fired, 1);
  cr_assert_eq(a.status, 0);
  cr_assert_eq(a.seen, 1);
  cr_assert_eq(b.seen, 1, "not the sibling's write");
  cr_assert_str_eq(a.id, scheduler_id);
  cr_assert_str_eq(b.id, scheduler_id);
  cr_assert_eq(lt_read(var), 2);
  char c;
  cr_assert_eq(read(peer1, &c, 1), 0, "the peer saw the shutdown (EOF)");
  uvw_close((uv_handle_t *)&p1, NULL);
  uvw_close((uv_handle_t *)&p2, NULL);
  close(peer1);
  close(peer2);
  finish();
}

Test(stream, shutdown_capture_is_released_after_its_callback_and_refusals_keep_nothing) {
  uv_pipe_t p1, p2;
  int peer1 = open_pipe(&p1, 0), peer2 = open_pipe(&p2, 0);
  shutdown_probe_t a = {0}, again = {0}, nocb = {0};
  size_t before = tu_released();
  uvw_context_t *ctx = lt_enter_counted(held);
  cr_assert_eq(uvw_shutdown(&a.req, (uv_stream_t *)&p1, on_shutdown), 0);
  cr_assert_eq(uvw_shutdown(&again.req, (uv_stream_t *)&p1, on_shutdown), UV_ENOTCONN, "already shutting");
  cr_assert_eq(uvw_shutdown(&nocb.req, (uv_stream_t *)&p2, NULL), 0, "NULL callback: libuv's answer");
  lt_leave(ctx);
  cr_assert_eq(tu_released(), before, "the pending shutdown holds the value");
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(a.fired, 1);
  cr_assert_eq(again.fired, 0);
  cr_assert_eq(tu_released(), before + 1, "released after the callback; the others captured nothing");
  uvw_close((uv_handle_t *)&p1, NULL);
  ctx = lt_enter_counted(held);
  cr_assert_eq(uvw_shutdown(&again.req, (uv_stream_t *)&p1, on_shutdown), UV_ENOTCONN, "closing handle");
  lt_leave(ctx);
  cr_assert_eq(tu_released(), before + 2);
  uvw_close((uv_handle_t *)&p2, NULL);
  close(peer1);
  close(peer2);
  finish();
}

/* ---- pipe_connect ------------------------------------------------------------------ */

Test(stream, pipe_connect_callback_runs_in_the_context_of_its_request) {
  char dir[] = "/tmp/uvw-stream-XXXXXX", path[64], missing[64];
  cr_assert_not_null(mkdtemp(dir));
  snprintf(path, sizeof(path), "%s/s.sock", dir);
  snprintf(missing, sizeof(missing), "%s/missing.sock", dir);
  uv_pipe_t server;
  uv_pipe_init(&loop, &server, 0);
  cr_assert_eq(uv_pipe_bind(&server, path), 0);
  cr_assert_eq(uv_listen((uv_stream_t *)&server, 8, ignore_connection), 0);
  uv_unref((uv_handle_t *)&server);

  uv_pipe_t ok, ko;
  uv_connect_t ok_req, ko_req;
  client_t a, b; /* only the connect half of client_t is used */
  memset(&a, 0, sizeof(a));
  memset(&b, 0, sizeof(b));
  a.connect_status = b.connect_status = 1;
  ok_req.data = &a;
  ko_req.data = &b;
  uv_pipe_init(&loop, &ok, 0);
  uv_pipe_init(&loop, &ko, 0);
  lt_write(var, 1);
  lt_chain_id(scheduler_id);
  a.base = 100;
  b.base = 200;
  uvw_pipe_connect(&ok_req, &ok, path, client_connected);
  uvw_pipe_connect(&ko_req, &ko, missing, client_connected); /* fails through its callback */
  lt_write(var, 2);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(a.connect_status, 0);
  cr_assert_eq(b.connect_status, UV_ENOENT);
  cr_assert_eq(a.connect_seen, 1, "the value at connect");
  cr_assert_eq(b.connect_seen, 1, "the failure too; not the sibling's write");
  cr_assert_eq(a.write_seen, 100, "the callback's write flowed into its write request");
  cr_assert_str_eq(a.connect_id, scheduler_id);
  cr_assert_str_eq(b.connect_id, scheduler_id);
  cr_assert_eq(lt_read(var), 2);

  /* The capture is released after the callback. */
  size_t before = tu_released();
  uv_pipe_init(&loop, &ko, 0);
  uvw_context_t *ctx = lt_enter_counted(held);
  uvw_pipe_connect(&ko_req, &ko, missing, client_connected);
  lt_leave(ctx);
  cr_assert_eq(tu_released(), before, "the pending connect holds the value");
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(tu_released(), before + 1, "released after the callback");

  uv_close((uv_handle_t *)&server, NULL);
  finish();
  unlink(path);
  rmdir(dir);
}

/* ---- tcp_close_reset --------------------------------------------------------------- */

static long close_seen;
static char close_id[33];
static void on_close(uv_handle_t *h) {
  (void)h;
  close_seen = lt_read(var);
  lt_chain_id(close_id);
  lt_write(var, 77);
}

static void raw_connected(uv_connect_t *req, int status) {
  (void)req;
  cr_assert_eq(status, 0);
}

Test(stream, tcp_close_reset_releases_the_stream_and_captures_its_close_callback) {
  uv_tcp_t server, c1, c2;
  struct sockaddr_storage addr;
  raw_tcp_server(&server, &addr);
  uv_connect_t r1, r2;
  uv_tcp_init(&loop, &c1);
  uv_tcp_init(&loop, &c2);
  cr_assert_eq(uv_tcp_connect(&r1, &c1, (struct sockaddr *)&addr, raw_connected), 0);
  cr_assert_eq(uv_tcp_connect(&r2, &c2, (struct sockaddr *)&addr, raw_connected), 0);
  uv_run(&loop, UV_RUN_DEFAULT); /* both connected */

  reader_t probe = {0}; /* its callbacks are never reached: nothing is sent */
  c1.data = c2.data = &probe;
  size_t before = tu_released();
  uvw_context_t *ctx = lt_enter_counted(held);
  cr_assert_eq(uvw_read_start((uv_stream_t *)&c1, reader_alloc, reader_read), 0);
  lt_leave(ctx);
  ctx = lt_enter_counted(held);
  cr_assert_eq(uvw_read_start((uv_stream_t *)&c2, reader_alloc, reader_read), 0);
  lt_leave(ctx);

  /* Refused: c1 is shutting down. Nothing captured, the reads keep theirs. */
  shutdown_probe_t sh = {0};
  lt_write(var, 9);
  cr_assert_eq(uvw_shutdown(&sh.req, (uv_stream_t *)&c1, on_shutdown), 0);
  ctx = lt_enter_counted(held);
  cr_assert_eq(uvw_tcp_close_reset(&c1, on_close), UV_EINVAL, "libuv refuses while shutting down");
  lt_leave(ctx);
  cr_assert_eq(tu_released(), before + 1, "the refused reset captured nothing and released nothing");

  lt_write(var, 5);
  lt_chain_id(scheduler_id);
  cr_assert_eq(uvw_tcp_close_reset(&c2, on_close), 0);
  cr_assert_eq(tu_released(), before + 2, "the reset released the read's capture");
  lt_write(var, 6);
  uvw_close((uv_handle_t *)&c1, NULL); /* cancels the pending shutdown */
  cr_assert_eq(tu_released(), before + 3);
  uv_close((uv_handle_t *)&server, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(close_seen, 5, "the close callback runs in the context of the reset");
  cr_assert_str_eq(close_id, scheduler_id);
  cr_assert_eq(sh.fired, 1, "the cancelled shutdown still reached its callback");
  cr_assert_eq(sh.seen, 9, "in its own context");
  cr_assert_eq(lt_read(var), 6, "no callback's write leaked back");

  /* A closing (closed) stream: libuv's EBADF, nothing captured. */
  ctx = lt_enter_counted(held);
  cr_assert_eq(uvw_tcp_close_reset(&c2, on_close), UV_EBADF);
  lt_leave(ctx);
  cr_assert_eq(tu_released(), before + 4);
  finish();
}
