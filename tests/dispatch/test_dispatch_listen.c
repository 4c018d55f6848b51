/* How a worker listens (issue 11, items 5 and 6), on real processes and
 * sockets: a socket left by a killed worker is reclaimed, a live one never
 * taken over; sockets passed the way systemd passes them (the units in
 * docs/dispatch.md); private socket files, peer credentials, loopback-only
 * TCP; peer text escaped in the worker's log lines. */
#include <fcntl.h>
#include <sys/stat.h>

#include "harness.h"

/* ---- spawning a worker with a custom command line ---------------------------------- */

typedef struct spawn_s {
  int pass_fd;          /* >= 0: becomes fd 3, with LISTEN_FDS=1 / LISTEN_PID */
  int set_env;          /* set LISTEN_FDS / LISTEN_PID */
  const char *err_path; /* stderr to this file (NULL: inherited) */
  uid_t uid;            /* != 0: run as this uid (root only) */
} spawn_t;

static pid_t sp_fork(const char *const *argv, const spawn_t *o, int out_fd) {
  pid_t parent = getpid();
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid != 0) return pid;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(1);
  if (out_fd >= 0) dup2(out_fd, 1);
  if (o && o->err_path) {
    int e = open(o->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(e, 2);
  }
  if (o && o->pass_fd >= 0) {
    if (o->pass_fd != 3) {
      dup2(o->pass_fd, 3);
      close(o->pass_fd);
    }
    if (o->set_env) {
      char pid_s[32];
      snprintf(pid_s, sizeof(pid_s), "%d", (int)getpid());
      setenv("LISTEN_FDS", "1", 1);
      setenv("LISTEN_PID", pid_s, 1);
    }
  }
  execv(argv[0], (char *const *)argv);
  _exit(127);
}

/* Start and wait for its "listening on" line: the address in w->addr[0]. */
static void sp_start(dh_worker_t *w, const char *const *argv, const spawn_t *o) {
  int fds[2];
  cr_assert_eq(pipe(fds), 0);
  memset(w, 0, sizeof(*w));
  w->pid = sp_fork(argv, o, fds[1]);
  close(fds[1]);
  w->out_fd = fds[0];
  char buf[1024];
  size_t len = 0;
  const char *tag = "uvwool-worker: listening on ";
  for (;;) {
    struct pollfd p = {w->out_fd, POLLIN, 0};
    cr_assert_gt(poll(&p, 1, 60000), 0, "the worker did not report it was listening");
    ssize_t n = read(w->out_fd, buf + len, sizeof(buf) - 1 - len);
    cr_assert_gt(n, 0, "the worker exited before listening");
    len += (size_t)n;
    buf[len] = '\0';
    char *nl = strchr(buf, '\n');
    if (nl == NULL) continue;
    *nl = '\0';
    cr_assert(strncmp(buf, tag, strlen(tag)) == 0, "unexpected output: %s", buf);
    cr_assert_lt(strlen(buf + strlen(tag)), sizeof(w->addr[0]));
    memcpy(w->addr[0], buf + strlen(tag), strlen(buf + strlen(tag)) + 1);
    w->naddr = 1;
    return;
  }
}

/* Run a worker expected to refuse to start: its exit status. */
static int sp_exit_code(const char *const *argv, const spawn_t *o) {
  int devnull = open("/dev/null", O_WRONLY);
  pid_t pid = sp_fork(argv, o, devnull);
  close(devnull);
  int status = 0;
  for (int waited = 0; waitpid(pid, &status, WNOHANG) == 0; waited += 10) {
    if (waited > 20000) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      cr_assert_fail("the worker started instead of refusing to");
    }
    usleep(10000);
  }
  cr_assert(WIFEXITED(status), "the worker crashed (status %d)", status);
  return WEXITSTATUS(status);
}

#define WORKER_ARGV(...) \
  { UVWOOL_WORKER_PATH, "--routines", UVWOOL_TEST_ROUTINES, __VA_ARGS__, NULL }

/* One echo over a fresh connection to address: the reply's status. */
static int echo_status(const char *address) {
  uvw_conn_t *c;
  cr_assert_eq(uvw_conn_open(&loop, address, &c), 0);
  dh_reply_t r = {0};
  uvw_value_t *v = uvw_value_cstring("ping");
  cr_assert_eq(uvw_conn_dispatch(c, "echo", &v, 1, NULL, dh_record, &r, NULL), 0);
  uvw_value_unref(v);
  dh_run_until(&loop, &r.calls, 1, 30000);
  int status = r.status;
  if (status == 0) cr_assert_str_eq(r.value, "ping");
  dh_reply_clear(&r);
  int closed = 0;
  uvw_conn_close(c, dh_conn_closed, &closed);
  dh_run_until(&loop, &closed, 1, 30000);
  return status;
}

static void loop_open(void) {
  dh_declare();
  uv_loop_init(&loop);
}

/* ---- stale sockets ---------------------------------------------------------------------- */

Test(listen, a_worker_killed_with_sigkill_starts_again_on_the_socket_it_left) {
  loop_open();
  char addr[200];
  dh_pipe_address(addr, sizeof(addr));
  const char *l[] = {addr, NULL};
  dh_start(&worker, l, NULL);
  dh_kill(&worker);
  cr_assert_eq(access(addr + 5, F_OK), 0, "SIGKILL leaves the socket file behind");
  dh_start(&worker, l, NULL);
  cr_assert_eq(echo_status(addr), 0);
  dh_finish(&loop, NULL);
  dh_stop(&worker);
}

Test(listen, a_socket_a_live_worker_answers_on_is_never_taken_over) {
  loop_open();
  char addr[200];
  dh_pipe_address(addr, sizeof(addr));
  const char *l[] = {addr, NULL};
  dh_start(&worker, l, NULL);
  const char *argv[] = WORKER_ARGV("--listen", addr);
  cr_assert_neq(sp_exit_code(argv, NULL), 0, "a second worker took over a live socket");
  cr_assert_eq(echo_status(addr), 0, "the first worker still serves");
  dh_finish(&loop, NULL);
  dh_stop(&worker);
}

/* ---- socket activation ------------------------------------------------------------------- */

/* A listening unix socket at path with mode bits `mode`, as systemd makes it. */
static int listening_socket(const char *path, mode_t mode) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  strcpy(sa.sun_path, path);
  remove(path);
  cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  cr_assert_eq(chmod(path, mode), 0);
  cr_assert_eq(listen(fd, 16), 0);
  return fd;
}

/* The text of the ```ini block of docs/dispatch.md that starts with `head`. */
static void unit_text(const char *head, char *out, size_t len) {
  FILE *f = fopen(UVWOOL_DOCS_DIR "/dispatch.md", "r");
  cr_assert_not_null(f);
  char line[512];
  size_t used = 0;
  int in = 0;
  out[0] = '\0';
  while (fgets(line, sizeof(line), f)) {
    if (!in && strncmp(line, head, strlen(head)) == 0) in = 1;
    if (in && strncmp(line, "```", 3) == 0) break;
    if (in && used + strlen(line) < len) used += (size_t)snprintf(out + used, len - used, "%s", line);
  }
  fclose(f);
  cr_assert(in, "docs/dispatch.md has no unit starting with %s", head);
}

/* The value of `key=` in a unit's text (first occurrence). */
static void unit_value(const char *unit, const char *key, char *out, size_t len) {
  const char *p = strstr(unit, key);
  cr_assert_not_null(p, "the unit has no %s", key);
  p += strlen(key);
  size_t n = strcspn(p, "\n");
  cr_assert_lt(n, len);
  memcpy(out, p, n);
  out[n] = '\0';
}

Test(listen, socket_activation_as_systemd_does_it) {
  loop_open();
  char sock_unit[2048], svc_unit[2048], mode_s[16], exec[512];
  unit_text("# /etc/systemd/system/uvwool-worker@.socket", sock_unit, sizeof(sock_unit));
  unit_text("# /etc/systemd/system/uvwool-worker@.service", svc_unit, sizeof(svc_unit));
  unit_value(sock_unit, "SocketMode=", mode_s, sizeof(mode_s));
  unit_value(svc_unit, "ExecStart=", exec, sizeof(exec));
  cr_assert_not_null(strstr(sock_unit, "ListenStream=/run/uvwool/worker-%i.sock"));
  /* The documented command line, with this build's binary and routines. */
  const char *argv[16];
  int argc = 0;
  for (char *tok = strtok(exec, " "); tok && argc < 15; tok = strtok(NULL, " ")) {
    if (strcmp(tok, "/usr/local/bin/uvwool-worker") == 0) tok = UVWOOL_WORKER_PATH;
    if (strcmp(tok, "/usr/local/lib/myapp/routines.so") == 0) tok = UVWOOL_TEST_ROUTINES;
    argv[argc++] = tok;
  }
  argv[argc] = NULL;
  cr_assert_str_eq(argv[0], UVWOOL_WORKER_PATH);

  char addr[200];
  dh_pipe_address(addr, sizeof(addr));
  int fd = listening_socket(addr + 5, (mode_t)strtol(mode_s, NULL, 8));
  spawn_t o = {.pass_fd = fd, .set_env = 1};
  sp_start(&worker, argv, &o);
  close(fd);
  cr_assert_str_eq(worker.addr[0], addr, "the worker names the socket it was passed");
  cr_assert_eq(echo_status(addr), 0);
  dh_finish(&loop, NULL);
  dh_stop(&worker);
  cr_assert_eq(access(addr + 5, F_OK), 0, "the supervisor's socket file is not the worker's to remove");
  remove(addr + 5);
}

Test(listen, listen_fd_adopts_a_passed_socket_without_the_environment) {
  loop_open();
  char addr[200];
  dh_pipe_address(addr, sizeof(addr));
  int fd = listening_socket(addr + 5, 0600);
  spawn_t o = {.pass_fd = fd, .set_env = 0};
  const char *argv[] = WORKER_ARGV("--listen", "fd:3");
  sp_start(&worker, argv, &o);
  close(fd);
  cr_assert_eq(echo_status(addr), 0);
  dh_finish(&loop, NULL);
  dh_stop(&worker);
  remove(addr + 5);
}

Test(listen, systemd_analyze_accepts_the_documented_units) {
  if (access("/usr/bin/systemd-analyze", X_OK) != 0) cr_skip_test("systemd-analyze is not installed");
  char dir[] = "/tmp/uvwool-units-XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  const char *heads[] = {"# /etc/systemd/system/uvwool-worker@.socket", "# /etc/systemd/system/uvwool-worker@.service"};
  const char *names[] = {"uvwool-worker@.socket", "uvwool-worker@.service"};
  for (int i = 0; i < 2; i++) {
    char text[2048], path[256];
    unit_text(heads[i], text, sizeof(text));
    snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    /* This build's binary and routines; no user "myapp" here. */
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
      if (strncmp(line, "User=", 5) == 0 || (strncmp(line, "Socket", 6) == 0 && strstr(line, "User="))) continue;
      if (strncmp(line, "SocketGroup=", 12) == 0) continue;
      if (strncmp(line, "ExecStart=", 10) == 0)
        fprintf(f, "ExecStart=%s --routines %s\n", UVWOOL_WORKER_PATH, UVWOOL_TEST_ROUTINES);
      else
        fprintf(f, "%s\n", line);
    }
    fclose(f);
  }
  char cmd[1024], out[2048] = "";
  snprintf(cmd, sizeof(cmd), "cd %s && systemd-analyze verify --man=no ./%s ./%s 2>&1", dir, names[0], names[1]);
  FILE *p = popen(cmd, "r");
  size_t n = fread(out, 1, sizeof(out) - 1, p);
  out[n] = '\0';
  int status = pclose(p);
  for (int i = 0; i < 2; i++) {
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
    remove(path);
  }
  rmdir(dir);
  cr_assert_eq(status, 0, "systemd-analyze verify: %s", out);
  cr_assert_eq(n, 0, "systemd-analyze verify: %s", out);
}

/* ---- who may connect ----------------------------------------------------------------------- */

static mode_t socket_mode_of(const char *flag_mode) {
  char addr[200];
  dh_pipe_address(addr, sizeof(addr));
  mode_t old = umask(0); /* the old code's 0777 & ~umask would show */
  const char *a[] = WORKER_ARGV("--listen", addr, flag_mode ? "--socket-mode" : NULL, flag_mode);
  spawn_t o = {.pass_fd = -1};
  sp_start(&worker, a, &o);
  umask(old);
  struct stat st;
  cr_assert_eq(stat(addr + 5, &st), 0);
  dh_stop(&worker);
  return st.st_mode & 0777;
}

Test(listen, a_unix_socket_is_private_by_default_and_its_mode_is_settable) {
  cr_assert_eq(socket_mode_of(NULL), 0600, "default mode %o", socket_mode_of(NULL));
  cr_assert_eq(socket_mode_of("0660"), 0660);
}

Test(listen, bad_access_flags_are_refused) {
  const char *a[] = WORKER_ARGV("--listen", "pipe:/tmp/uvwool-never.sock", "--socket-mode", "999");
  cr_assert_eq(sp_exit_code(a, NULL), 2);
  const char *b[] = WORKER_ARGV("--listen", "pipe:/tmp/uvwool-never.sock", "--allow-uid", "x");
  cr_assert_eq(sp_exit_code(b, NULL), 2);
}

/* As uid 65534, connect to address and send a Task: 0 when an Ack came,
 * 1 when the worker closed the connection first. */
static int task_as_nobody(const char *address) {
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    signal(SIGPIPE, SIG_IGN); /* the worker may close before the write */
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(3);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, address + 5);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) _exit(4);
    uvw_frame_t *f = uvw_frame_new(UVW_FRAME_TASK, 1);
    uvw_frame_set_routine(f, "echo");
    void *buf;
    size_t len;
    uvw_frame_encode(f, &buf, &len);
    uint8_t h[4] = {0, 0, (uint8_t)(len >> 8), (uint8_t)len};
    if (write(fd, h, 4) != 4 || write(fd, buf, len) != (ssize_t)len) _exit(1); /* closed already */
    uint8_t got[4];
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 10000) <= 0) _exit(5);
    _exit(read(fd, got, 4) == 4 ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  cr_assert(WIFEXITED(status));
  return WEXITSTATUS(status);
}

Test(listen, a_peer_whose_uid_is_not_allowed_is_closed_and_an_allowed_one_served) {
  if (geteuid() != 0) cr_skip_test("needs root to connect as another uid");
  char addr[200], err[200];
  dh_pipe_address(addr, sizeof(addr));
  snprintf(err, sizeof(err), "/tmp/uvwool-dt-%d-peer.err", (int)getpid());
  spawn_t o = {.pass_fd = -1, .err_path = err};
  const char *a[] = WORKER_ARGV("--listen", addr, "--socket-mode", "0666");
  sp_start(&worker, a, &o);
  cr_assert_eq(task_as_nobody(addr), 1, "a peer of another uid was served");
  dh_stop(&worker);
  FILE *f = fopen(err, "r");
  char text[4096] = "";
  size_t n = fread(text, 1, sizeof(text) - 1, f);
  text[n] = '\0';
  fclose(f);
  cr_assert_not_null(strstr(text, "refused a peer: uid 65534"), "log: %s", text);

  const char *b[] = WORKER_ARGV("--listen", addr, "--socket-mode", "0666", "--allow-uid", "65534");
  sp_start(&worker, b, &o);
  cr_assert_eq(task_as_nobody(addr), 0, "an allowed uid was refused");
  dh_stop(&worker);
  remove(err);
}

Test(listen, tcp_beyond_loopback_needs_allow_remote) {
  const char *a[] = WORKER_ARGV("--listen", "tcp:0.0.0.0:0");
  cr_assert_eq(sp_exit_code(a, NULL), 1, "a worker listened on every interface without --allow-remote");
  const char *b[] = WORKER_ARGV("--listen", "tcp:0.0.0.0:0", "--allow-remote");
  spawn_t o = {.pass_fd = -1};
  sp_start(&worker, b, &o);
  cr_assert_eq(strncmp(worker.addr[0], "tcp:0.0.0.0:", 12), 0, "%s", worker.addr[0]);
  dh_stop(&worker);
  const char *c[] = WORKER_ARGV("--listen", "tcp:127.0.0.1:0");
  sp_start(&worker, c, &o);
  dh_stop(&worker);
}

/* ---- peer text in the worker's log ----------------------------------------------------------- */

Test(listen, a_newline_in_a_routine_name_cannot_forge_a_log_line) {
  char addr[200], err[200];
  dh_pipe_address(addr, sizeof(addr));
  snprintf(err, sizeof(err), "/tmp/uvwool-dt-%d-log.err", (int)getpid());
  spawn_t o = {.pass_fd = -1, .err_path = err};
  const char *a[] = WORKER_ARGV("--listen", addr);
  sp_start(&worker, a, &o);
  int fd = dh_raw_connect(addr);
  /* A live dispatch 1, then a second Task under id 1: the worker reports
   * the reused id with the routine name. */
  const char *names[] = {"hang", "evil\nuvwool-worker: forged line"};
  for (int i = 0; i < 2; i++) {
    uvw_frame_t *f = uvw_frame_new(UVW_FRAME_TASK, 1);
    cr_assert_eq(uvw_frame_set_routine(f, names[i]), 0);
    dh_raw_send_frame(fd, f);
    uvw_frame_free(f);
    uvw_frame_t *r = dh_raw_recv_frame(fd);
    cr_assert_eq(uvw_frame_kind(r), i == 0 ? UVW_FRAME_ACK : UVW_FRAME_NACK);
    uvw_frame_free(r);
  }
  close(fd);
  dh_stop(&worker);
  FILE *f = fopen(err, "r");
  char line[1024];
  int escaped = 0;
  while (fgets(line, sizeof(line), f)) {
    cr_assert_neq(strncmp(line, "uvwool-worker: forged", 21), 0, "a peer forged a log line");
    escaped |= strstr(line, "evil\\x0auvwool-worker: forged line") != NULL;
  }
  fclose(f);
  remove(err);
  cr_assert(escaped, "the routine name was not logged escaped");
}

/* ---- names with an embedded NUL ------------------------------------------------------------ */

/* Append a length-delimited field (lengths < 128 here). */
static size_t pb_field(uint8_t *out, size_t at, unsigned field, const void *data, size_t len) {
  cr_assert_lt(len, 128);
  out[at++] = (uint8_t)(field << 3 | 2);
  out[at++] = (uint8_t)len;
  memcpy(out + at, data, len);
  return at + len;
}

static void raw_send_bytes(int fd, const uint8_t *msg, size_t len) {
  uint8_t h[4] = {0, 0, 0, (uint8_t)len};
  dh_raw_send(fd, h, 4);
  dh_raw_send(fd, msg, len);
}

static void raw_worker(char *addr, size_t len) {
  dh_pipe_address(addr, len);
  const char *l[] = {addr, NULL};
  dh_start(&worker, l, NULL);
}

Test(listen, a_routine_name_with_an_embedded_nul_is_refused_not_cut_short) {
  char addr[200];
  raw_worker(addr, sizeof(addr));
  int fd = dh_raw_connect(addr);
  /* Request{dispatch_id: 1, task: Task{routine: "echo\0x"}} */
  uint8_t task[32], msg[64];
  size_t tl = pb_field(task, 0, 1, "echo\0x", 6);
  size_t n = 0;
  msg[n++] = 1 << 3;
  msg[n++] = 1;
  n = pb_field(msg, n, 2, task, tl);
  raw_send_bytes(fd, msg, n);
  uint8_t h[4];
  cr_assert_eq(dh_raw_read(fd, h, 4), 0, "the worker answered a Task for \"echo\\0x\" (it ran \"echo\")");
  close(fd);
  dh_stop(&worker);
}

Test(listen, a_variable_name_with_an_embedded_nul_binds_nothing) {
  char addr[200];
  raw_worker(addr, sizeof(addr));
  int fd = dh_raw_connect(addr);
  uvw_frame_t *t = uvw_frame_new(UVW_FRAME_TASK, 1);
  cr_assert_eq(uvw_frame_set_routine(t, "read_and_mutate"), 0);
  dh_raw_send_frame(fd, t);
  uvw_frame_free(t);
  /* Entry{namespace: "t\0x", name: "request_id\0y", value: {string: "forged"}} */
  uint8_t value[16], entry[64], manifest[80], msg[128];
  size_t vl = pb_field(value, 0, 5, "forged", 6);
  size_t el = pb_field(entry, 0, 1, "t\0x", 3);
  el = pb_field(entry, el, 2, "request_id\0y", 12);
  el = pb_field(entry, el, 3, value, vl);
  size_t ml = pb_field(manifest, 0, 2, entry, el);
  size_t n = 0;
  msg[n++] = 1 << 3;
  msg[n++] = 1;
  n = pb_field(msg, n, 3, "", 0);
  n = pb_field(msg, n, 15, manifest, ml);
  raw_send_bytes(fd, msg, n);
  uvw_frame_t *ack = dh_raw_recv_frame(fd);
  cr_assert_eq(uvw_frame_kind(ack), UVW_FRAME_ACK);
  uvw_frame_free(ack);
  uvw_frame_t *r = dh_raw_recv_frame(fd);
  if (uvw_frame_kind(r) == UVW_FRAME_RESULT)
    cr_assert_fail("the routine ran and saw %s", uvw_value_as_string(uvw_frame_value(r)));
  cr_assert_eq(uvw_frame_kind(r), UVW_FRAME_EXCEPTION);
  cr_assert_eq(uvw_error_code(uvw_frame_error(r)), UVW_EMALFORMED, "%s", uvw_error_message(uvw_frame_error(r)));
  cr_assert_not_null(strstr(uvw_error_message(uvw_frame_error(r)), "NUL"));
  uvw_frame_free(r);
  close(fd);
  dh_stop(&worker);
}

/* ---- a connect flood ------------------------------------------------------------------------- */

static int flood_listen_fd;
static char flood_addr[200];

static void start_worker_on_flooded_socket(uv_timer_t *t) {
  (void)t;
  spawn_t o = {.pass_fd = flood_listen_fd, .set_env = 0};
  const char *argv[] = WORKER_ARGV("--listen", "fd:3");
  sp_start(&worker, argv, &o);
}

Test(listen, a_connect_refused_for_a_full_backlog_is_retried_within_the_handshake_bound) {
  loop_open();
  dh_pipe_address(flood_addr, sizeof(flood_addr));
  flood_listen_fd = listening_socket(flood_addr + 5, 0600);
  cr_assert_eq(listen(flood_listen_fd, 0), 0); /* the smallest backlog */
  /* Fill the backlog until the kernel refuses with EAGAIN. */
  int flood[64], nflood = 0, refused = 0;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  strcpy(sa.sun_path, flood_addr + 5);
  while (nflood < 64 && !refused) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
      flood[nflood++] = fd;
      continue;
    }
    refused = errno == EAGAIN;
    close(fd);
  }
  cr_assert(refused, "the backlog never filled");
  uvw_conn_t *c;
  cr_assert_eq(uvw_conn_open(&loop, flood_addr, &c), 0);
  dh_reply_t r = {0};
  uvw_value_t *v = uvw_value_cstring("through");
  cr_assert_eq(uvw_conn_dispatch(c, "echo", &v, 1, NULL, dh_record, &r, NULL), 0);
  uvw_value_unref(v);
  /* The worker starts (and drains the backlog) 300 ms later. */
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  uv_timer_start(&t, start_worker_on_flooded_socket, 300, 0);
  dh_run_until(&loop, &r.calls, 1, 30000);
  cr_assert_eq(r.status, 0, "got %s: %s", uvw_err_name(r.status), r.error_msg);
  cr_assert_str_eq(r.value, "through");
  dh_reply_clear(&r);
  uv_close((uv_handle_t *)&t, NULL);
  close(flood_listen_fd);
  for (int i = 0; i < nflood; i++) close(flood[i]);
  dh_finish(&loop, c);
  dh_stop(&worker);
  remove(flood_addr + 5);
}

static void ref_worker_closed(void *arg) { ++*(int *)arg; }

Test(listen, an_unrefd_worker_lets_its_loop_end_for_listeners_made_before_and_after) {
  uv_loop_t l;
  uv_loop_init(&l);
  uvw_worker_t *w;
  cr_assert_eq(uvw_worker_open(&l, &w), 0);
  char a1[200], a2[200];
  dh_pipe_address(a1, sizeof a1);
  dh_pipe_address(a2, sizeof a2);
  cr_assert_eq(uvw_worker_listen(w, a1), 0);
  cr_assert_neq(uv_run(&l, UV_RUN_NOWAIT), 0, "by default a listener keeps the loop alive");
  cr_assert_eq(uvw_worker_set_ref(w, 0), 0);
  cr_assert_eq(uv_run(&l, UV_RUN_NOWAIT), 0, "unref'd, the listener holds nothing");
  cr_assert_eq(uvw_worker_listen(w, a2), 0);
  cr_assert_eq(uv_run(&l, UV_RUN_NOWAIT), 0, "a listener made after the call is unref'd too");
  cr_assert_eq(uvw_worker_set_ref(w, 1), 0);
  cr_assert_neq(uv_run(&l, UV_RUN_NOWAIT), 0, "ref'd again");
  int closed = 0;
  uvw_worker_close(w, ref_worker_closed, &closed);
  uv_run(&l, UV_RUN_DEFAULT);
  cr_assert_eq(closed, 1);
  cr_assert_eq(uvw_loop_close(&l), 0);
}
