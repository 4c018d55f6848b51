/* The C side of the OpenTelemetry interop test (tests/otel/interop.js).
 *
 *   otel_baggage encode   prints the baggage header of a fixed context
 *                         (after mounting the header read from stdin, so
 *                         other systems' members ride along);
 *   otel_baggage decode   reads a header from stdin, prints as JSON what
 *                         uvwool decoded: our entries, the kept foreign
 *                         members, the warnings count, and the header a
 *                         context mounted from it re-encodes to.
 *
 * Both declare the same variables, so the script knows which keys are
 * ours. Exit status 0 unless a call fails unexpectedly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uvwool.h"

static uvw_var_t *user, *dotted, *spaced, *secret, *count, *k[200];
static int warnings;

static void sink(const uvw_error_t *w, void *arg) {
  (void)w;
  (void)arg;
  warnings++;
}

static void declare(void) {
  int rc = uvw_var_declare("app", "user", NULL, &user) | uvw_var_declare("com.example", "user", NULL, &dotted) |
           uvw_var_declare("svc", "request id", NULL, &spaced) | uvw_var_declare("app", "secret", NULL, &secret) |
           uvw_var_declare("app", "count", NULL, &count);
  for (int i = 0; i < 200; i++) {
    char name[16];
    snprintf(name, sizeof name, "k%03d", i);
    rc |= uvw_var_declare("bulk", name, NULL, &k[i]);
  }
  rc |= uvw_var_set_policy(secret, UVW_PROPAGATE_ALL & ~UVW_PROPAGATE_BAGGAGE);
  if (rc != 0) {
    fprintf(stderr, "declare failed\n");
    exit(2);
  }
}

static char *read_stdin(size_t *len) {
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  size_t r;
  while (buf && (r = fread(buf + n, 1, cap - n - 1, stdin)) > 0) {
    n += r;
    if (n + 1 == cap) buf = realloc(buf, cap *= 2);
  }
  if (buf == NULL) exit(2);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) n--; /* the shell's, not the header's */
  buf[n] = '\0';
  *len = n;
  return buf;
}

static void json_string(const char *s, size_t n) {
  putchar('"');
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\')
      printf("\\%c", c);
    else if (c < 0x20)
      printf("\\u%04x", c);
    else
      putchar(c);
  }
  putchar('"');
}

static void set_string(uvw_var_t *v, const char *s) {
  if (uvw_set_cstring(v, s, NULL) != 0) exit(2);
}

static int encode(void) {
  size_t len;
  char *in = read_stdin(&len);
  uvw_context_t *ctx = uvw_context_new();
  uvw_context_enter(ctx);
  uvw_manifest_t *m;
  if (uvw_baggage_decode(in, len, &m) != 0 || uvw_manifest_mount(m) != 0) return 2;
  uvw_manifest_free(m);
  set_string(user, "alice");
  set_string(dotted, "bob");
  set_string(spaced, "a b,c;d%\xc3\xa9\"q=\xe2\x82\xac");
  set_string(secret, "s3cr3t");
  uvw_value_t *three = uvw_value_int(3);
  uvw_set(count, three, NULL);
  uvw_value_unref(three);
  char *text;
  if (uvw_baggage_encode(NULL, &text) != 0) return 2;
  puts(text);
  uvw_free(text);
  uvw_context_exit(ctx);
  uvw_context_unref(ctx);
  free(in);
  return 0;
}

static int decode(void) {
  size_t len;
  char *in = read_stdin(&len);
  uvw_manifest_t *m;
  int rc = uvw_baggage_decode(in, len, &m);
  if (rc != 0) {
    printf("{\"error\":%d}\n", rc);
    return 0;
  }
  uvw_var_t *foreign = uvw_var_find("uvwool", "baggage");
  printf("{\"ours\":[");
  int first = 1;
  const char *kept = "";
  size_t kept_len = 0;
  for (size_t i = 0; i < uvw_manifest_entry_count(m); i++) {
    uvw_var_t *v = uvw_manifest_entry_var(m, i);
    uvw_value_t *val = uvw_manifest_entry_value(m, i);
    if (v == foreign) {
      kept = uvw_value_as_string(val);
      kept_len = uvw_value_len(val);
      continue;
    }
    printf("%s{\"ns\":", first ? "" : ",");
    json_string(uvw_var_namespace(v), strlen(uvw_var_namespace(v)));
    printf(",\"name\":");
    json_string(uvw_var_name(v), strlen(uvw_var_name(v)));
    printf(",\"value\":");
    json_string(uvw_value_as_string(val), uvw_value_len(val));
    putchar('}');
    first = 0;
  }
  printf("],\"foreign\":");
  json_string(kept, kept_len);
  uvw_context_t *ctx = uvw_context_new();
  uvw_context_enter(ctx);
  char *text = NULL;
  if (uvw_manifest_mount(m) != 0 || uvw_baggage_encode(NULL, &text) != 0) return 2;
  printf(",\"reencoded\":");
  json_string(text, strlen(text));
  printf(",\"warnings\":%d}\n", warnings);
  uvw_free(text);
  uvw_context_exit(ctx);
  uvw_context_unref(ctx);
  uvw_manifest_free(m);
  free(in);
  return 0;
}

int main(int argc, char **argv) {
  declare();
  uvw_set_warning_sink(sink, NULL);
  if (argc == 2 && strcmp(argv[1], "encode") == 0) return encode();
  if (argc == 2 && strcmp(argv[1], "decode") == 0) return decode();
  fprintf(stderr, "usage: otel_baggage encode|decode < header\n");
  return 2;
}
