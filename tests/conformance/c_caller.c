/* The C caller driver of the conformance matrix (tests/conformance/README.md):
 *   uvwool_conformance_caller ADDRESS SCENARIOS_FILE
 * runs every scenario of the file against the worker at ADDRESS over one
 * connection and prints "ok ID" or "not ok ID: WHAT" per scenario.
 *
 * Each scenario runs in a fresh context. Its ops run in order until one
 * dispatches; the rest continue inside that dispatch's reply callback, which
 * runs in the reply's context (after apply-back): that is where `expect var`
 * reads and where the next stream step is made from. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uvwool.h>

#define MAX_WORDS 8
#define MAX_LINES 4096
#define MAX_VARS 64

typedef struct {
  char *word[MAX_WORDS];
  int n;
} line_t;

static line_t lines[MAX_LINES];
static int nlines;
static uvw_var_t *vars[MAX_VARS];
static char *var_names[MAX_VARS];
static int nvars;

static uv_loop_t *loop;
static uvw_conn_t *conn;
static int failures;

/* The scenario being run. */
static struct {
  int start, pc, end; /* its first op, the next op, one past its last */
  uvw_dispatch_t *stream;
  int have_reply, status, done;
  uvw_value_t *value;
  uvw_error_t *error;
  char why[2048];
} sc;

/* ---- the file ---------------------------------------------------------------- */

static int hexval(int c) { return isdigit(c) ? c - '0' : tolower(c) - 'a' + 10; }

/* Percent-decoding in place; returns the length. */
static size_t unpercent(char *s) {
  char *w = s;
  for (char *r = s; *r; r++) {
    if (r[0] == '%' && isxdigit((unsigned char)r[1]) && isxdigit((unsigned char)r[2])) {
      *w++ = (char)(hexval(r[1]) * 16 + hexval(r[2]));
      r += 2;
    } else {
      *w++ = *r;
    }
  }
  *w = 0;
  return (size_t)(w - s);
}

static int load(const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    perror(path);
    return -1;
  }
  char buf[2048];
  while (fgets(buf, sizeof(buf), f) && nlines < MAX_LINES) {
    line_t *l = &lines[nlines];
    l->n = 0;
    for (char *tok = strtok(buf, " \t\r\n"); tok && l->n < MAX_WORDS; tok = strtok(NULL, " \t\r\n")) {
      if (tok[0] == '#') break;
      l->word[l->n++] = strdup(tok);
    }
    if (l->n > 0) nlines++;
  }
  fclose(f);
  return 0;
}

static const uvw_opaque_ops_t no_codec = {"conformance.c_native", NULL};
static int native_object;

/* A value of the file's syntax (README "Values"); NULL for "missing". */
static uvw_value_t *parse_value(const char *text) {
  char *s = strdup(text);
  uvw_value_t *v = NULL;
  if (strcmp(s, "nil") == 0) v = uvw_value_nil();
  else if (strcmp(s, "true") == 0) v = uvw_value_bool(1);
  else if (strcmp(s, "false") == 0) v = uvw_value_bool(0);
  else if (strcmp(s, "opaque") == 0) v = uvw_value_opaque(&native_object, &no_codec);
  else if (strcmp(s, "chain") == 0) {
    char id[33];
    v = uvw_value_cstring(uvw_context_chain_id(uvw_context_current(), id) == 0 ? id : "<unarmed>");
  }
  else if (strncmp(s, "i:", 2) == 0) v = uvw_value_int(strtoll(s + 2, NULL, 10));
  else if (strncmp(s, "f:", 2) == 0) v = uvw_value_double(strtod(s + 2, NULL));
  else if (strncmp(s, "s:", 2) == 0) {
    size_t n = unpercent(s + 2);
    v = uvw_value_string(s + 2, n);
  } else if (strncmp(s, "x:", 2) == 0) {
    size_t n = strlen(s + 2) / 2;
    unsigned char *b = malloc(n + 1);
    for (size_t i = 0; i < n; i++) b[i] = (unsigned char)(hexval(s[2 + 2 * i]) * 16 + hexval(s[3 + 2 * i]));
    v = uvw_value_bytes(b, n);
    free(b);
  }
  free(s);
  return v;
}

/* A value in the file's syntax, for messages. */
static void show_value(const uvw_value_t *v, char *out, size_t len) {
  if (v == NULL) {
    snprintf(out, len, "missing");
    return;
  }
  switch (uvw_value_kind(v)) {
  case UVW_VALUE_NIL: snprintf(out, len, "nil"); return;
  case UVW_VALUE_BOOL: snprintf(out, len, "%s", uvw_value_as_bool(v) ? "true" : "false"); return;
  case UVW_VALUE_INT: snprintf(out, len, "i:%lld", (long long)uvw_value_as_int(v)); return;
  case UVW_VALUE_DOUBLE: snprintf(out, len, "f:%.17g", uvw_value_as_double(v)); return;
  case UVW_VALUE_STRING: {
    /* Percent-encoded as in the file, so bytes that are not text show. */
    size_t w = (size_t)snprintf(out, len, "s:");
    const unsigned char *b = uvw_value_data(v);
    for (size_t i = 0; i < uvw_value_len(v) && w + 4 < len; i++)
      w += (size_t)(b[i] > 0x20 && b[i] < 0x7f && b[i] != '%' ? snprintf(out + w, len - w, "%c", b[i])
                                                               : snprintf(out + w, len - w, "%%%02X", b[i]));
    return;
  }
  case UVW_VALUE_BYTES: {
    size_t w = (size_t)snprintf(out, len, "x:");
    const unsigned char *b = uvw_value_data(v);
    for (size_t i = 0; i < uvw_value_len(v) && w + 3 < len; i++) w += (size_t)snprintf(out + w, len - w, "%02x", b[i]);
    return;
  }
  case UVW_VALUE_OPAQUE: snprintf(out, len, "opaque"); return;
  default: snprintf(out, len, "kind %d", (int)uvw_value_kind(v)); return;
  }
}

/* A variable named "ns.name" in the file: declared by this caller once. */
static uvw_var_t *var_named(const char *qualified) {
  for (int i = 0; i < nvars; i++)
    if (strcmp(var_names[i], qualified) == 0) return vars[i];
  if (nvars == MAX_VARS) return NULL;
  char *ns = strdup(qualified), *dot = strchr(ns, '.');
  if (dot == NULL) {
    free(ns);
    return NULL;
  }
  *dot = 0;
  uvw_var_t *var = NULL;
  if (uvw_var_declare(ns, dot + 1, NULL, &var) != 0) var = NULL;
  free(ns);
  if (var == NULL) return NULL;
  var_names[nvars] = strdup(qualified);
  vars[nvars++] = var;
  return var;
}

/* ---- running a scenario ------------------------------------------------------ */

static void next_scenario(int start);

static const char *last_message(void) {
  const char *m = uvw_error_message(uvw_last_error());
  return m ? m : "(no detail)";
}
static void run_ops(void);

static const char *status_name(int status) {
  switch (status) {
  case 0: return "ok";
  case UVW_EREMOTE: return "remote";
  case UVW_ENACK: return "nack";
  case UVW_ECANCELED: return "cancelled";
  case UVW_ECONNRESET: return "connreset";
  default: return uvw_err_name(status);
  }
}

static void clear_reply(void) {
  uvw_value_unref(sc.value);
  uvw_error_unref(sc.error);
  sc.value = NULL;
  sc.error = NULL;
  sc.have_reply = 0;
}

static void on_reply(uvw_dispatch_t *d, const uvw_reply_t *reply, void *arg) {
  (void)d;
  (void)arg;
  clear_reply();
  sc.have_reply = 1;
  sc.status = reply->status;
  sc.done = reply->done;
  if (reply->status == 0 && reply->value) sc.value = uvw_value_ref(reply->value);
  if (reply->error) sc.error = uvw_error_ref(reply->error);
  run_ops(); /* in the reply's context */
}

static void args_of(const line_t *l, uvw_value_t **args) {
  for (int i = 2; i < l->n; i++) args[i - 2] = parse_value(l->word[i]);
}

static void free_args(uvw_value_t **args, int n) {
  for (int i = 0; i < n; i++) uvw_value_unref(args[i]);
}

/* Checks one expect line against the reply; 0 or -1 with sc.why filled. */
static int check(const line_t *l) {
  char want[400], got[400];
  const char *what = l->word[1];
  if (!sc.have_reply) return snprintf(sc.why, sizeof(sc.why), "%s: no reply to check", what), -1;
  if (strcmp(what, "status") == 0) {
    if (strcmp(status_name(sc.status), l->word[2]) == 0) return 0;
    snprintf(sc.why, sizeof(sc.why), "status: want %s, got %s (%s)", l->word[2], status_name(sc.status),
             sc.error ? uvw_error_message(sc.error) : "");
    return -1;
  }
  if (strcmp(what, "done") == 0) return sc.done ? 0 : (snprintf(sc.why, sizeof(sc.why), "done: not the last"), -1);
  if (strcmp(what, "result") == 0 || strcmp(what, "var") == 0) {
    int is_var = what[0] == 'v';
    uvw_value_t *expected = parse_value(l->word[is_var ? 3 : 2]);
    uvw_value_t *actual = sc.value;
    if (is_var) {
      actual = NULL;
      uvw_var_t *var = var_named(l->word[2]);
      if (var == NULL || uvw_get_or(var, NULL, &actual) != 0) actual = NULL;
    }
    int same = expected == NULL ? actual == NULL : actual != NULL && uvw_value_equal(expected, actual);
    show_value(expected, want, sizeof(want));
    show_value(actual, got, sizeof(got));
    uvw_value_unref(expected);
    if (same) return 0;
    snprintf(sc.why, sizeof(sc.why), "%s%s%s: want %s, got %s", what, is_var ? " " : "", is_var ? l->word[2] : "",
             want, got);
    return -1;
  }
  if (strncmp(what, "error.", 6) == 0) {
    if (sc.error == NULL) return snprintf(sc.why, sizeof(sc.why), "%s: no error", what), -1;
    const char *actual, *expected = l->n > 2 ? l->word[l->n - 1] : "";
    snprintf(want, sizeof(want), "%s", expected);
    unpercent(want);
    if (strcmp(what, "error.message") == 0) {
      actual = uvw_error_message(sc.error);
      if (actual && strstr(actual, want)) return 0;
    } else if (strcmp(what, "error.code") == 0) {
      actual = uvw_err_name(uvw_error_code(sc.error));
      if (strcmp(actual, want) == 0) return 0;
    } else {
      actual = uvw_error_field(sc.error, l->word[2]);
      if (actual && strcmp(actual, want) == 0) return 0;
    }
    snprintf(sc.why, sizeof(sc.why), "%s%s%s: want %s, got %s", what, l->n > 3 ? " " : "", l->n > 3 ? l->word[2] : "",
             want, actual ? actual : "(none)");
    return -1;
  }
  return snprintf(sc.why, sizeof(sc.why), "unknown expectation %s", what), -1;
}

/* Makes one dispatch or stream step; 0 when a reply will come. */
static int step(const line_t *l) {
  const char *op = l->word[0];
  uvw_value_t *args[MAX_WORDS] = {0};
  int nargs = l->n > 2 ? l->n - 2 : 0, rc;
  if (strcmp(op, "call") == 0 || strcmp(op, "stream") == 0) {
    args_of(l, args);
    if (op[0] == 'c') {
      uvw_dispatch_t *d = NULL;
      rc = uvw_conn_dispatch(conn, l->word[1], args, (size_t)nargs, NULL, on_reply, NULL, &d);
      if (rc == 0 && sc.pc < sc.end && strcmp(lines[sc.pc].word[0], "cancel") == 0) {
        sc.pc++;
        rc = uvw_dispatch_cancel(d);
      }
    } else {
      rc = uvw_conn_dispatch_stream(conn, l->word[1], args, (size_t)nargs, NULL, &sc.stream);
    }
    free_args(args, nargs);
    if (rc == 0 && op[0] == 's') return 1; /* opened: no reply yet */
  } else if (sc.stream == NULL) {
    snprintf(sc.why, sizeof(sc.why), "%s: no open stream", op);
    return -1;
  } else if (strcmp(op, "next") == 0) {
    rc = uvw_dispatch_next(sc.stream, on_reply, NULL);
  } else if (strcmp(op, "send") == 0) {
    uvw_value_t *v = parse_value(l->word[1]);
    rc = uvw_dispatch_send(sc.stream, v, on_reply, NULL);
    uvw_value_unref(v);
  } else {
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", l->word[1]);
    unpercent(msg);
    uvw_error_t *e = uvw_error_new("Error", 0, msg);
    rc = uvw_dispatch_throw(sc.stream, e, on_reply, NULL);
    uvw_error_unref(e);
  }
  if (rc != 0) snprintf(sc.why, sizeof(sc.why), "%s %s: %s", op, l->n > 1 ? l->word[1] : "", last_message());
  return rc == 0 ? 0 : -1;
}

static void finish(int ok) {
  const char *id = lines[sc.start].word[1];
  if (ok) {
    printf("ok %s\n", id);
  } else {
    printf("not ok %s: %s\n", id, sc.why);
    failures++;
  }
  fflush(stdout);
  if (sc.stream) uvw_dispatch_close(sc.stream);
  sc.stream = NULL;
  clear_reply();
  next_scenario(sc.end);
}

static void run_ops(void) {
  while (sc.pc < sc.end) {
    const line_t *l = &lines[sc.pc++];
    const char *op = l->word[0];
    if (strcmp(op, "expect") == 0) {
      if (l->n < 2 || check(l) != 0) {
        finish(0);
        return;
      }
      continue;
    }
    if (strcmp(op, "set") == 0) {
      uvw_var_t *var = var_named(l->word[1]);
      uvw_value_t *v = parse_value(l->word[2]);
      int rc = var ? uvw_set(var, v, NULL) : UVW_EINVAL;
      uvw_value_unref(v);
      if (rc != 0) {
        snprintf(sc.why, sizeof(sc.why), "set %s: %s", l->word[1], last_message());
        finish(0);
        return;
      }
      continue;
    }
    /* A new step: an unchecked earlier reply must have been ok. */
    if (sc.have_reply && sc.status != 0 && strcmp(op, "call") != 0) {
      snprintf(sc.why, sizeof(sc.why), "status: want ok, got %s", status_name(sc.status));
      finish(0);
      return;
    }
    int rc = step(l);
    if (rc < 0) {
      finish(0);
      return;
    }
    if (rc == 0) return; /* the reply callback goes on */
  }
  finish(1);
}

/* ---- the run ----------------------------------------------------------------- */

static void scenario_body(void *arg) {
  (void)arg;
  run_ops();
}

static uv_timer_t starter;

static void start_scenario(uv_timer_t *t) {
  (void)t;
  uvw_context_t *ctx = uvw_context_new();
  if (uvw_context_run(ctx, scenario_body, NULL) != 0) {
    snprintf(sc.why, sizeof(sc.why), "run: %s", last_message());
    finish(0);
  }
  uvw_context_unref(ctx);
}

/* From a timer, never inside a reply callback: each scenario starts with
 * nothing of the previous one current. */
static void next_scenario(int start) {
  while (start < nlines && strcmp(lines[start].word[0], "scenario") != 0) start++;
  if (start >= nlines) {
    uvw_conn_close(conn, NULL, NULL);
    uv_close((uv_handle_t *)&starter, NULL);
    return;
  }
  memset(&sc, 0, sizeof(sc));
  sc.start = start;
  sc.pc = start + 1;
  sc.end = start + 1;
  while (sc.end < nlines && strcmp(lines[sc.end].word[0], "scenario") != 0) sc.end++;
  uv_timer_start(&starter, start_scenario, 0, 0);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s ADDRESS SCENARIOS_FILE\n", argv[0]);
    return 2;
  }
  if (load(argv[2]) != 0) return 2;
  loop = uv_default_loop();
  if (uvw_conn_open(loop, argv[1], &conn) != 0) {
    fprintf(stderr, "connect %s: %s\n", argv[1], last_message());
    return 2;
  }
  uv_timer_init(loop, &starter);
  next_scenario(0);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  return failures ? 1 : 0;
}
