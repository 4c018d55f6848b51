/* Lossless text form of an error tree, for logs, tests and text carriers.
 *
 * One line per record, preorder:
 *   DEPTH \t RELATION \t KIND \t CODE \t MESSAGE [\t NAME=VALUE]... \n
 * RELATION is root|cause|context|warning and names how the record hangs off
 * the nearest preceding record one level up. '%', TAB, LF, CR and '=' are
 * written as %XX so every field stays on its line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"

#define MAX_DEPTH 64

typedef struct {
  char *buf;
  size_t len, cap;
  int failed;
} sbuf_t;

static void put(sbuf_t *b, const char *s, size_t n) {
  if (b->failed) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 256;
    while (cap < b->len + n + 1) cap *= 2;
    char *p = uvw__realloc(b->buf, cap);
    if (p == NULL) {
      b->failed = 1;
      return;
    }
    b->buf = p;
    b->cap = cap;
  }
  memcpy(b->buf + b->len, s, n);
  b->len += n;
  b->buf[b->len] = '\0';
}

static void put_escaped(sbuf_t *b, const char *s) {
  for (; *s; s++) {
    if (*s == '%' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '=') {
      char esc[4];
      snprintf(esc, sizeof(esc), "%%%02X", (unsigned char)*s);
      put(b, esc, 3);
    } else {
      put(b, s, 1);
    }
  }
}

static void put_record(sbuf_t *b, const uvw_error_t *e, int depth, const char *relation) {
  char head[64];
  int n = snprintf(head, sizeof(head), "%d\t%s\t%s\t%d\t", depth, relation, uvw_error_kind_name(e->kind),
                   e->code);
  put(b, head, (size_t)n);
  put_escaped(b, e->message);
  for (size_t i = 0; i < e->nfields; i++) {
    put(b, "\t", 1);
    put_escaped(b, e->field_names[i]);
    put(b, "=", 1);
    put_escaped(b, e->field_values[i]);
  }
  put(b, "\n", 1);
  if (depth + 1 >= MAX_DEPTH) return; /* deeper chains are cut, as the reader refuses them */
  if (e->cause) put_record(b, e->cause, depth + 1, "cause");
  if (e->context) put_record(b, e->context, depth + 1, "context");
  for (size_t i = 0; i < e->nwarnings; i++) put_record(b, e->warnings[i], depth + 1, "warning");
}

char *uvw_error_serialize(const uvw_error_t *e) {
  if (e == NULL) {
    uvw__error_arg(__func__, "e", "is NULL");
    return NULL;
  }
  sbuf_t b = {0};
  put_record(&b, e, 0, "root");
  if (b.failed) {
    uvw__free(b.buf);
    uvw__error_nomem("error text");
    return NULL;
  }
  return b.buf;
}

/* ---- reading ------------------------------------------------------------- */

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/* Unescape [s, s+n) into a new string; NULL with *bad set on a bad escape. */
static char *unescape(const char *s, size_t n, int *bad) {
  char *out = uvw__malloc(n + 1), *o = out;
  if (out == NULL) return NULL;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%') {
      int hi = i + 2 < n ? hexval(s[i + 1]) : -1, lo = i + 2 < n ? hexval(s[i + 2]) : -1;
      if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
        *bad = 1;
        uvw__free(out);
        return NULL;
      }
      *o++ = (char)(hi * 16 + lo);
      i += 2;
    } else if (s[i] == '\0') {
      *bad = 1;
      uvw__free(out);
      return NULL;
    } else {
      *o++ = s[i];
    }
  }
  *o = '\0';
  return out;
}

typedef struct {
  const char *p, *end;
} cursor_t;

/* Next TAB-separated field of the current line; 0 at end of line. */
static int next_field(cursor_t *c, const char **start, size_t *n) {
  if (c->p >= c->end || *c->p == '\n') return 0;
  const char *s = c->p;
  while (c->p < c->end && *c->p != '\t' && *c->p != '\n') c->p++;
  *start = s;
  *n = (size_t)(c->p - s);
  if (c->p < c->end && *c->p == '\t') c->p++;
  return 1;
}

static int parse_int(const char *s, size_t n, long lo, long hi, long *out) {
  char tmp[24];
  if (n == 0 || n >= sizeof(tmp)) return -1;
  memcpy(tmp, s, n);
  tmp[n] = '\0';
  char *endp;
  long v = strtol(tmp, &endp, 10);
  if (*endp != '\0' || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

static int malformed(int line, const char *why) {
  uvw_error_t *e = uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "malformed error text, line %d: %s", line, why);
  uvw__error_field(e, "line", "%d", line);
  return UVW_EINVAL;
}

static int attach(uvw_error_t *parent, const char *rel, size_t rn, uvw_error_t *child) {
  if (rn == 5 && memcmp(rel, "cause", 5) == 0 && parent->cause == NULL) {
    uvw__error_set_cause(parent, child);
  } else if (rn == 7 && memcmp(rel, "context", 7) == 0 && parent->context == NULL) {
    uvw__error_set_context(parent, child);
  } else if (rn == 7 && memcmp(rel, "warning", 7) == 0) {
    if (uvw__error_add_warning(parent, child) != 0) return UVW_ENOMEM;
  } else {
    return UVW_EINVAL;
  }
  return 0;
}

/* Parse one line into a new record; fields after MESSAGE are NAME=VALUE. */
static int parse_record(cursor_t *c, int line, long *depth, const char **rel, size_t *rn, uvw_error_t **out) {
  const char *f[5];
  size_t n[5];
  for (int i = 0; i < 4; i++)
    if (!next_field(c, &f[i], &n[i])) return malformed(line, "too few fields");
  if (!next_field(c, &f[4], &n[4])) { /* an empty message ends the line early */
    f[4] = "";
    n[4] = 0;
  }
  long code;
  if (parse_int(f[0], n[0], 0, MAX_DEPTH - 1, depth) != 0) return malformed(line, "bad depth");
  if (parse_int(f[3], n[3], -2147483647L, 2147483647L, &code) != 0) return malformed(line, "bad code");
  char kname[64];
  if (n[2] >= sizeof(kname)) return malformed(line, "unknown kind");
  memcpy(kname, f[2], n[2]);
  kname[n[2]] = '\0';
  uvw_error_kind_t kind = uvw_error_kind_from_name(kname);
  if (kind == UVW_KIND_NONE) return malformed(line, "unknown kind");
  int bad = 0;
  char *msg = unescape(f[4], n[4], &bad);
  if (msg == NULL) return bad ? malformed(line, "bad escape") : uvw__error_nomem("error text");
  uvw_error_t *e = uvw__error_new((int)code, kind, "%s", msg);
  uvw__free(msg);
  if (e->immortal) return uvw__error_nomem("error text");
  const char *fs;
  size_t fn;
  while (next_field(c, &fs, &fn)) {
    const char *eq = memchr(fs, '=', fn);
    char *name = eq ? unescape(fs, (size_t)(eq - fs), &bad) : NULL;
    char *value = eq && name ? unescape(eq + 1, fn - (size_t)(eq - fs) - 1, &bad) : NULL;
    if (value == NULL || name[0] == '\0') {
      uvw__free(name);
      uvw__free(value);
      uvw_error_unref(e);
      return (eq == NULL || bad || (name && name[0] == '\0')) ? malformed(line, "bad field")
                                                               : uvw__error_nomem("error text");
    }
    uvw__error_field(e, name, "%s", value);
    uvw__free(name);
    uvw__free(value);
  }
  *rel = f[1];
  *rn = n[1];
  *out = e;
  return 0;
}

int uvw_error_deserialize(const char *text, size_t len, uvw_error_t **out) {
  if (text == NULL) return uvw__error_arg(__func__, "text", "is NULL");
  if (out == NULL) return uvw__error_arg(__func__, "out", "is NULL");
  uvw_error_t *stack[MAX_DEPTH] = {0};
  cursor_t c = {text, text + len};
  int line = 0, rc = 0;
  while (c.p < c.end) {
    line++;
    long depth = 0;
    const char *rel = NULL;
    size_t rn = 0;
    uvw_error_t *e = NULL;
    if ((rc = parse_record(&c, line, &depth, &rel, &rn, &e)) != 0) break;
    if (c.p >= c.end || *c.p != '\n') {
      uvw_error_unref(e);
      rc = malformed(line, "missing end of line");
      break;
    }
    c.p++;
    int is_root = rn == 4 && memcmp(rel, "root", 4) == 0;
    if ((depth == 0) != is_root || (depth == 0 && stack[0] != NULL) || (depth > 0 && stack[depth - 1] == NULL)) {
      uvw_error_unref(e);
      rc = malformed(line, "record out of place");
      break;
    }
    if (depth > 0) {
      if ((rc = attach(stack[depth - 1], rel, rn, e)) != 0) {
        if (rc != UVW_ENOMEM) uvw_error_unref(e); /* a failed add_warning already dropped it */
        rc = rc == UVW_ENOMEM ? uvw__error_nomem("error text") : malformed(line, "bad relation");
        break;
      }
    }
    stack[depth] = e;
    for (long d = depth + 1; d < MAX_DEPTH; d++) stack[d] = NULL;
  }
  if (rc == 0 && stack[0] == NULL) rc = malformed(line, "no record");
  if (rc != 0) {
    uvw_error_unref(stack[0]);
    return rc;
  }
  *out = stack[0];
  return 0;
}
