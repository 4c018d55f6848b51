/* The main demo: context crossing a process boundary.
 *
 * Starts a uvwool-worker process serving demo_routines.c, binds a request
 * id, a tenant and a deadline in the caller, then:
 *   1. a one-shot dispatch: the routine sees the caller's values; its change
 *      comes back (apply-back);
 *   2. a streaming dispatch, step by step (next, next, send, next);
 *   3. a routine that offloads with plain uv_queue_work and touches the
 *      context: ChainContention, caught here with its fields;
 *   4. the same work through uvw_to_thread: it succeeds;
 * and shuts the worker down with SIGTERM. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uvwool.h>

static uv_loop_t *loop;
static uv_process_t worker;
static uv_pipe_t worker_out;
static uvw_conn_t *conn;
static uvw_var_t *request_id, *tenant, *deadline, *audit, *progress;
static char socket_path[108];
static int failed;

static const char *str_of(uvw_var_t *var) {
  uvw_value_t *v = NULL;
  return uvw_get_or(var, NULL, &v) == 0 && v && uvw_value_kind(v) == UVW_VALUE_STRING ? uvw_value_as_string(v)
                                                                                      : "(unbound)";
}

static void set_str(uvw_var_t *var, const char *s) {
  uvw_value_t *v = uvw_value_cstring(s);
  uvw_set(var, v, NULL);
  uvw_value_unref(v);
}

static void caller_view(const char *when) {
  char chain[33] = "(unarmed)";
  uvw_context_chain_id(uvw_context_current(), chain);
  printf("  caller | %s\n", when);
  printf("         |   request_id=%s tenant=%s audit=%s progress=%s\n", str_of(request_id), str_of(tenant),
         str_of(audit), str_of(progress));
  printf("         |   chain %s\n", chain);
}

static int check(const uvw_reply_t *r, const char *what) {
  if (r->status == 0) return 1;
  printf("  caller | %s failed: %s: %s\n", what, uvw_err_name(r->status), uvw_error_message(r->error));
  failed = 1;
  return 0;
}

static void finish(void);

/* ---- 4. the same work through to_thread ---------------------------------------- */

static void on_thumbnail_right(uvw_dispatch_t *d, const uvw_reply_t *r, void *arg) {
  (void)d;
  (void)arg;
  if (check(r, "thumbnail_right")) printf("  worker | %s\n", uvw_value_as_string(r->value));
  finish();
}

/* ---- 3. ChainContention from a routine that offloaded wrongly ---------------------- */

static void on_thumbnail_wrong(uvw_dispatch_t *d, const uvw_reply_t *r, void *arg) {
  (void)d;
  (void)arg;
  if (r->status == UVW_EREMOTE && uvw_error_kind(r->error) == UVW_KIND_CHAIN_CONTENTION) {
    printf("  caller | caught %s from the routine: %s\n", uvw_error_kind_name(uvw_error_kind(r->error)),
           uvw_error_message(r->error));
    for (size_t i = 0; i < uvw_error_field_count(r->error); i++)
      printf("         |   %-16s = %s\n", uvw_error_field_name(r->error, i), uvw_error_field_value(r->error, i));
  } else {
    printf("  caller | expected ChainContention, got %s\n", uvw_err_name(r->status));
    failed = 1;
  }
  printf("\n== 4. the same work offloaded with uvw_to_thread (a detached fork the thread owns)\n");
  uvw_conn_dispatch(conn, "thumbnail_right", NULL, 0, NULL, on_thumbnail_right, NULL, NULL);
}

/* ---- 2. a streaming routine, step by step ------------------------------------------ */

static void on_step(uvw_dispatch_t *d, const uvw_reply_t *r, void *arg) {
  int step = (int)(intptr_t)arg;
  if (!check(r, "export_report step")) {
    uvw_dispatch_close(d);
    finish();
    return;
  }
  printf("  worker | %s\n", uvw_value_as_string(r->value));
  caller_view("after apply-back of this step:");
  if (r->done) {
    uvw_dispatch_close(d);
    printf("\n== 3. a routine offloads with plain uv_queue_work and touches the context\n");
    uvw_conn_dispatch(conn, "thumbnail_wrong", NULL, 0, NULL, on_thumbnail_wrong, NULL, NULL);
    return;
  }
  if (step == 1) {
    set_str(request_id, "req-7f3a/part-2");
    printf("  caller | sets request_id=req-7f3a/part-2 before step 2\n");
  }
  if (step == 2) {
    uvw_value_t *fmt = uvw_value_cstring("csv");
    printf("  caller | -> send(\"csv\")\n");
    uvw_dispatch_send(d, fmt, on_step, (void *)(intptr_t)(step + 1));
    uvw_value_unref(fmt);
  } else {
    printf("  caller | -> next\n");
    uvw_dispatch_next(d, on_step, (void *)(intptr_t)(step + 1));
  }
}

/* ---- 1. a one-shot routine ------------------------------------------------------------ */

static void on_quote(uvw_dispatch_t *d, const uvw_reply_t *r, void *arg) {
  (void)d;
  (void)arg;
  if (!check(r, "quote")) {
    finish();
    return;
  }
  printf("  worker | %s\n", uvw_value_as_string(r->value));
  caller_view("after apply-back (the routine's audit note is here; same chain id):");
  printf("\n== 2. a streaming routine: next, next, send, next\n");
  uvw_dispatch_t *s;
  if (uvw_conn_dispatch_stream(conn, "export_report", NULL, 0, NULL, &s) != 0) {
    failed = 1;
    finish();
    return;
  }
  printf("  caller | -> next\n");
  uvw_dispatch_next(s, on_step, (void *)(intptr_t)1);
}

static void start_dispatching(const char *address) {
  printf("  worker ready at %s\n", address);
  if (uvw_conn_open(loop, address, &conn) != 0) {
    printf("cannot connect: %s\n", uvw_error_message(uvw_last_error()));
    failed = 1;
    return;
  }
  /* One request's context: what a server would bind on receiving it. */
  uvw_context_t *request = uvw_context_new();
  uvw_context_enter(request);
  set_str(request_id, "req-7f3a");
  set_str(tenant, "acme");
  uv_timeval64_t now;
  uv_gettimeofday(&now);
  uvw_value_t *dl = uvw_value_int(now.tv_sec * 1000 + now.tv_usec / 1000 + 5000);
  uvw_set(deadline, dl, NULL);
  uvw_value_unref(dl);
  printf("\n== 1. a one-shot routine\n");
  caller_view("binds request_id, tenant and a deadline 5 s away:");
  uvw_value_t *sku = uvw_value_cstring("WIDGET-9");
  printf("  caller | -> dispatch quote(\"WIDGET-9\")\n");
  uvw_conn_dispatch(conn, "quote", &sku, 1, NULL, on_quote, NULL, NULL);
  uvw_value_unref(sku);
  /* The dispatch captured the context: this one can go. */
  uvw_context_exit(request);
  uvw_context_unref(request);
}

/* ---- the worker process ------------------------------------------------------------------ */

static void on_worker_exit(uv_process_t *p, int64_t status, int signal) {
  printf("\n  worker exited (status %d%s%s)\n", (int)status, signal ? ", signal " : "",
         signal ? strsignal(signal) : "");
  if (status != 0 || signal != 0) failed = 1;
  uv_close((uv_handle_t *)p, NULL);
}

static void closed_conn(void *arg) {
  (void)arg;
  uv_process_kill(&worker, SIGTERM);
}

static void finish(void) {
  printf("\n== done: closing the connection, SIGTERM to the worker\n");
  uvw_conn_close(conn, closed_conn, NULL);
}

static char out_buf[4096];
static size_t out_len;

static void out_alloc(uv_handle_t *h, size_t n, uv_buf_t *b) {
  (void)h;
  (void)n;
  *b = uv_buf_init(out_buf + out_len, (unsigned)(sizeof(out_buf) - 1 - out_len));
}

static void out_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  if (n < 0) {
    uv_close((uv_handle_t *)s, NULL);
    return;
  }
  out_len += (size_t)n;
  out_buf[out_len] = '\0';
  const char *tag = "uvwool-worker: listening on ";
  char *line = strstr(out_buf, tag), *nl = line ? strchr(line, '\n') : NULL;
  if (nl == NULL) return;
  *nl = '\0';
  uv_read_stop(s);
  uv_close((uv_handle_t *)s, NULL);
  start_dispatching(line + strlen(tag));
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0); /* interleave sensibly with the worker's stderr */
  loop = uv_default_loop();
  if (uvw_var_declare("demo", "request_id", NULL, &request_id) || uvw_var_declare("demo", "tenant", NULL, &tenant) ||
      uvw_var_declare("demo", "deadline", NULL, &deadline) || uvw_var_declare("demo", "audit", NULL, &audit) ||
      uvw_var_declare("demo", "progress", NULL, &progress))
    return 1;
  snprintf(socket_path, sizeof(socket_path), "pipe:/tmp/uvwool-demo-%d.sock", (int)getpid());
  printf("uvwool demo: context variables across a process boundary\n\n");
  printf("== starting a worker process:\n  %s --routines %s --listen %s\n", UVWOOL_WORKER_PATH, UVWOOL_DEMO_ROUTINES,
         socket_path);

  char *args[] = {UVWOOL_WORKER_PATH, "--routines", UVWOOL_DEMO_ROUTINES, "--listen", socket_path, NULL};
  uv_pipe_init(loop, &worker_out, 0);
  uv_stdio_container_t stdio[3] = {
      {.flags = UV_IGNORE},
      {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&worker_out},
      {.flags = UV_INHERIT_FD, .data.fd = 2},
  };
  uv_process_options_t opts = {.exit_cb = on_worker_exit, .file = args[0], .args = args, .stdio_count = 3,
                               .stdio = stdio};
  int rc = uv_spawn(loop, &worker, &opts);
  if (rc != 0) {
    fprintf(stderr, "cannot start %s: %s\n", args[0], uv_strerror(rc));
    return 1;
  }
  uv_read_start((uv_stream_t *)&worker_out, out_alloc, out_read);
  uv_run(loop, UV_RUN_DEFAULT);
  uvw_loop_close(loop);
  printf("%s\n", failed ? "demo FAILED" : "demo finished");
  return failed;
}
