/* getaddrinfo, getnameinfo and random on a real loop (docs/testing.md rows 17
 * and 22 for these done-callbacks). Numeric hosts only: no network. */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "loop_internal.h"
#include "looptest.h"

static uvw_var_t *var;
static uv_loop_t loop;
static char scheduler_id[33];

static void setup(void) {
  var = tu_var("v", NULL);
  cr_assert_eq(uv_loop_init(&loop), 0);
}
TestSuite(dns, .init = setup);

typedef struct {
  int fired;
  long seen;
  char id[33];
  int status;
  void *data;
} probe_t;

static void probe(probe_t *p, int status, void *data) {
  p->fired++;
  p->seen = lt_read(var);
  lt_chain_id(p->id);
  p->status = status;
  p->data = data;
  lt_write(var, -7); /* must not leak back */
}

static int registered(const void *key) {
  uvw__loop_t *L = uvw__loop_find(&loop);
  return L != NULL && uvw__reg_find(L, key, UVW__SLOT_MAIN) != NULL;
}

/* Submit with 10 current, set 11 after, run; the callback must have seen 10
 * in the scheduler's chain and its write of -7 must not be visible here. */
#define EXPECT_PROPAGATED(p, what)                                                       \
  do {                                                                                   \
    cr_assert_eq((p).fired, 1, "%s: callback ran once", what);                           \
    cr_assert_eq((p).seen, 10, "%s: the value current at submission", what);             \
    cr_assert_str_eq((p).id, scheduler_id, "%s: the scheduler's chain", what);           \
    cr_assert_eq(lt_read(var), 11, "%s: the callback's write did not leak back", what); \
  } while (0)

static void arm(void) {
  lt_write(var, 10);
  lt_chain_id(scheduler_id);
  cr_assert_neq(scheduler_id[0], '\0');
}

static const struct addrinfo numeric_hints = {
    .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
    .ai_family = AF_INET,
    .ai_socktype = SOCK_STREAM,
};

/* ---- getaddrinfo --------------------------------------------------------------- */

static int gai_port;
static void gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  probe(req->data, status, req->data);
  gai_port = -1;
  if (status == 0) {
    cr_assert_not_null(res);
    cr_assert_eq(res->ai_family, AF_INET);
    gai_port = ntohs(((struct sockaddr_in *)res->ai_addr)->sin_port);
  }
  uv_freeaddrinfo(res);
}

Test(dns, getaddrinfo_callback_runs_in_the_context_of_submission) {
  probe_t p = {0};
  uv_getaddrinfo_t req;
  req.data = &p;
  arm();
  cr_assert_eq(uvw_getaddrinfo(&loop, &req, gai_cb, "127.0.0.1", "8080", &numeric_hints), 0);
  lt_write(var, 11);
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_PROPAGATED(p, "getaddrinfo");
  cr_assert_eq(p.status, 0);
  cr_assert_eq(gai_port, 8080);
  cr_assert_eq(p.data, &p, "req->data is the user's");
  cr_assert_not(registered(&req), "the capture was consumed");
  lt_finish(&loop);
}

Test(dns, getaddrinfo_failure_reports_in_the_captured_context) {
  probe_t p = {0};
  uv_getaddrinfo_t req;
  req.data = &p;
  arm();
  /* Not numeric, and AI_NUMERICHOST forbids a lookup: fails without network. */
  cr_assert_eq(uvw_getaddrinfo(&loop, &req, gai_cb, "not-a-number.invalid", NULL, &numeric_hints), 0);
  lt_write(var, 11);
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_PROPAGATED(p, "failing getaddrinfo");
  cr_assert_eq(p.status, UV_EAI_NONAME, "%s", uv_strerror(p.status));
  lt_finish(&loop);
}

Test(dns, getaddrinfo_sync_mode_returns_libuvs_result) {
  uv_getaddrinfo_t req;
  lt_write(var, 3);
  cr_assert_eq(uvw_getaddrinfo(&loop, &req, NULL, "127.0.0.1", "80", &numeric_hints), 0);
  cr_assert_not_null(req.addrinfo);
  uv_freeaddrinfo(req.addrinfo);
  cr_assert_not(registered(&req));
  uv_getaddrinfo_t req2;
  int expect = uv_getaddrinfo(&loop, &req2, NULL, "not-a-number.invalid", NULL, &numeric_hints);
  cr_assert_neq(expect, 0);
  cr_assert_eq(uvw_getaddrinfo(&loop, &req2, NULL, "not-a-number.invalid", NULL, &numeric_hints), expect);
  cr_assert_eq(lt_read(var), 3);
  lt_finish(&loop);
}

/* ---- getnameinfo --------------------------------------------------------------- */

static char gni_host[64], gni_service[32];
static void gni_cb(uv_getnameinfo_t *req, int status, const char *hostname, const char *service) {
  probe(req->data, status, req->data);
  if (status == 0) {
    snprintf(gni_host, sizeof gni_host, "%s", hostname);
    snprintf(gni_service, sizeof gni_service, "%s", service);
  }
}

static struct sockaddr_in localhost_80(void) {
  struct sockaddr_in sin;
  cr_assert_eq(uv_ip4_addr("127.0.0.1", 80, &sin), 0);
  return sin;
}

Test(dns, getnameinfo_callback_runs_in_the_context_of_submission) {
  probe_t p = {0};
  uv_getnameinfo_t req;
  req.data = &p;
  struct sockaddr_in sin = localhost_80();
  arm();
  cr_assert_eq(uvw_getnameinfo(&loop, &req, gni_cb, (struct sockaddr *)&sin, NI_NUMERICHOST | NI_NUMERICSERV), 0);
  lt_write(var, 11);
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_PROPAGATED(p, "getnameinfo");
  cr_assert_eq(p.status, 0);
  cr_assert_str_eq(gni_host, "127.0.0.1");
  cr_assert_str_eq(gni_service, "80");
  cr_assert_eq(p.data, &p);
  cr_assert_not(registered(&req));
  lt_finish(&loop);
}

Test(dns, getnameinfo_sync_mode_returns_libuvs_result) {
  uv_getnameinfo_t req;
  struct sockaddr_in sin = localhost_80();
  lt_write(var, 3);
  cr_assert_eq(uvw_getnameinfo(&loop, &req, NULL, (struct sockaddr *)&sin, NI_NUMERICHOST | NI_NUMERICSERV), 0);
  cr_assert_str_eq(req.host, "127.0.0.1");
  cr_assert_str_eq(req.service, "80");
  cr_assert_not(registered(&req));
  cr_assert_eq(lt_read(var), 3);
  lt_finish(&loop);
}

/* ---- random ------------------------------------------------------------------------ */

static unsigned char rnd[32];
static void random_cb(uv_random_t *req, int status, void *buf, size_t buflen) {
  probe(req->data, status, req->data);
  cr_assert_eq(buf, rnd);
  cr_assert_eq(buflen, sizeof rnd);
}

static int all_zero(const unsigned char *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (b[i]) return 0;
  return 1;
}

Test(dns, random_callback_runs_in_the_context_of_submission) {
  probe_t p = {0};
  uv_random_t req;
  req.data = &p;
  memset(rnd, 0, sizeof rnd);
  arm();
  cr_assert_eq(uvw_random(&loop, &req, rnd, sizeof rnd, 0, random_cb), 0);
  lt_write(var, 11);
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_PROPAGATED(p, "random");
  cr_assert_eq(p.status, 0);
  cr_assert_not(all_zero(rnd, sizeof rnd), "the buffer was filled");
  cr_assert_not(registered(&req));
  lt_finish(&loop);
}

Test(dns, random_sync_mode_returns_libuvs_result) {
  unsigned char buf[16] = {0};
  uv_random_t req;
  cr_assert_eq(uvw_random(&loop, &req, buf, sizeof buf, 0, NULL), 0);
  cr_assert_not(all_zero(buf, sizeof buf));
  cr_assert_eq(uvw_random(NULL, NULL, buf, sizeof buf, 0, NULL), 0, "libuv allows no loop in sync mode");
  cr_assert_not(registered(&req));
  lt_finish(&loop);
}

/* Resubmitting the same request from its own callback captures anew. */
typedef struct {
  int fired;
  long seen[2];
} again_t;
static void random_again_cb(uv_random_t *req, int status, void *buf, size_t buflen) {
  again_t *a = req->data;
  cr_assert_eq(status, 0);
  a->seen[a->fired] = lt_read(var);
  if (++a->fired == 2) return;
  lt_write(var, 20);
  cr_assert_eq(uvw_random(req->loop, req, buf, buflen, 0, random_again_cb), 0);
  lt_write(var, 21);
}

Test(dns, random_resubmitted_from_its_callback_captures_anew) {
  again_t a = {0};
  uv_random_t req;
  req.data = &a;
  lt_write(var, 1);
  cr_assert_eq(uvw_random(&loop, &req, rnd, sizeof rnd, 0, random_again_cb), 0);
  lt_write(var, 2);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(a.fired, 2);
  cr_assert_eq(a.seen[0], 1);
  cr_assert_eq(a.seen[1], 20);
  cr_assert_eq(lt_read(var), 2);
  cr_assert_not(registered(&req));
  lt_finish(&loop);
}

/* ---- release and refusal (row 22) --------------------------------------------------- */


static void quiet_gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  (void)req;
  (void)status;
  uv_freeaddrinfo(res);
}
static void quiet_gni_cb(uv_getnameinfo_t *req, int status, const char *h, const char *s) {
  (void)req, (void)status, (void)h, (void)s;
}
static void quiet_random_cb(uv_random_t *req, int status, void *buf, size_t len) {
  (void)req, (void)status, (void)buf, (void)len;
}

Test(dns, captures_are_released_after_their_callbacks) {
  uv_getaddrinfo_t gai;
  uv_getnameinfo_t gni;
  uv_random_t rq;
  struct sockaddr_in sin = localhost_80();
  size_t before = tu_released();
  uvw_context_t *ctx = lt_enter_counted(var);
  cr_assert_eq(uvw_getaddrinfo(&loop, &gai, quiet_gai_cb, "127.0.0.1", NULL, &numeric_hints), 0);
  lt_leave(ctx);
  ctx = lt_enter_counted(var);
  cr_assert_eq(uvw_getnameinfo(&loop, &gni, quiet_gni_cb, (struct sockaddr *)&sin, NI_NUMERICHOST), 0);
  lt_leave(ctx);
  ctx = lt_enter_counted(var);
  cr_assert_eq(uvw_random(&loop, &rq, rnd, sizeof rnd, 0, quiet_random_cb), 0);
  lt_leave(ctx);
  cr_assert_eq(tu_released(), before, "each request's capture holds its value");
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(tu_released(), before + 3, "all three released once their callbacks ran");
  lt_finish(&loop);
}

Test(dns, refused_requests_return_libuvs_code_and_keep_nothing) {
  uv_getaddrinfo_t gai;
  uv_getnameinfo_t gni;
  uv_random_t rq;
  struct sockaddr bad = {.sa_family = AF_UNIX};
  int e_gai = uv_getaddrinfo(&loop, &gai, quiet_gai_cb, NULL, NULL, NULL);
  int e_gni = uv_getnameinfo(&loop, &gni, quiet_gni_cb, &bad, 0);
  int e_rnd = uv_random(&loop, &rq, rnd, sizeof rnd, 1, quiet_random_cb);
  cr_assert_eq(e_gai, UV_EINVAL);
  cr_assert_eq(e_gni, UV_EINVAL);
  cr_assert_eq(e_rnd, UV_EINVAL);
  size_t before = tu_released();
  uvw_context_t *ctx = lt_enter_counted(var);
  cr_assert_eq(uvw_getaddrinfo(&loop, &gai, quiet_gai_cb, NULL, NULL, NULL), e_gai);
  cr_assert_eq(uvw_getnameinfo(&loop, &gni, quiet_gni_cb, &bad, 0), e_gni);
  cr_assert_eq(uvw_random(&loop, &rq, rnd, sizeof rnd, 1, quiet_random_cb), e_rnd);
  lt_leave(ctx);
  cr_assert_eq(tu_released(), before + 1, "the refused requests kept no capture");
  cr_assert_not(registered(&gai));
  cr_assert_not(registered(&gni));
  cr_assert_not(registered(&rq));
  lt_finish(&loop);
}
