/* The W3C baggage carrier (https://www.w3.org/TR/baggage/): string-valued
 * variables as `key=value` list members, so context can ride through
 * OpenTelemetry-instrumented hops, and other systems' members ride through
 * uvwool hops.
 *
 * Keys: percent-encoded namespace (every byte but ALPHA DIGIT - _ ~ is
 * encoded, '.' included), then '.', then the percent-encoded name ('.'
 * kept), so a key is always a valid RFC 7230 token. OpenTelemetry decodes
 * keys and re-encodes them without escaping '.', so the decoder
 * (baggage_decode.c) does not rely on the escape: it matches the decoded key
 * against declared variables. Values: bytes outside baggage-octet, and '%',
 * are percent-encoded, as the spec requires. Only strings travel here: other
 * kinds, resets and the chain id need the manifest (text carrier). This
 * file: the shared helpers and the encoder. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "context.h"
#include "error.h"
#include "value.h"
#include "var.h"

#include "baggage_int.h"
#include "wire_int.h"

/* ---- shared helpers --------------------------------------------------------------- */

static uvw_var_t *foreign_var;
static pthread_once_t foreign_once = PTHREAD_ONCE_INIT;

static void declare_foreign(void) {
  uvw_var_t *v = NULL;
  /* A program that declared the key itself shares it: the registry has one
   * variable per key. */
  if (uvw_var_declare("uvwool", "baggage", NULL, &v) != 0) v = uvw_var_find("uvwool", "baggage");
  if (v != NULL) uvw_var_set_policy(v, UVW_PROPAGATE_ALL & ~UVW_PROPAGATE_BAGGAGE);
  foreign_var = v;
}

uvw_var_t *uvw__baggage_var(void) {
  pthread_once(&foreign_once, declare_foreign);
  return foreign_var;
}

/* Declared at load, before any manifest can name it: a peer's manifest then
 * never turns it into a stub. */
__attribute__((constructor)) static void baggage_init(void) { (void)uvw__baggage_var(); }

typedef uvw__sbuf_t sbuf_t;

void uvw__sbuf_put(sbuf_t *b, const char *s, size_t n) {
  if (b->nomem) return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = uvw__realloc(b->s, cap);
    if (p == NULL) {
      b->nomem = 1;
      return;
    }
    b->s = p;
    b->cap = cap;
  }
  memcpy(b->s + b->n, s, n);
  b->n += n;
  b->s[b->n] = '\0';
}

int uvw__utf8_valid(const char *str, size_t n) {
  const unsigned char *s = (const unsigned char *)str;
  for (size_t i = 0; i < n;) {
    unsigned c = s[i];
    size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || i + len > n) return 0;
    unsigned cp = len == 1 ? c : c & (0x7F >> len);
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xC0) != 0x80) return 0;
      cp = cp << 6 | (s[i + k] & 0x3F);
    }
    static const unsigned min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    i += len;
  }
  return 1;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int uvw__pct_decode(const char *s, size_t n, int allow_nul, char **out, size_t *outlen) {
  char *buf = uvw__malloc(n + 1);
  if (buf == NULL) return -1;
  size_t o = 0;
  int ok = 1;
  for (size_t i = 0; i < n && ok; i++) {
    if (s[i] != '%') {
      buf[o++] = s[i];
      continue;
    }
    int hi = 0, lo = 0;
    ok = i + 2 < n && (hi = hexval(s[i + 1])) >= 0 && (lo = hexval(s[i + 2])) >= 0;
    if (ok) buf[o++] = (char)(hi << 4 | lo);
    i += 2;
  }
  ok = ok && (allow_nul || memchr(buf, '\0', o) == NULL) && uvw__utf8_valid(buf, o);
  if (!ok) {
    uvw__free(buf);
    return 0;
  }
  buf[o] = '\0';
  *out = buf;
  if (outlen) *outlen = o;
  return 1;
}

static int unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c == '~';
}
static void put(sbuf_t *b, const char *s, size_t n) { uvw__sbuf_put(b, s, n); }

static int baggage_octet(unsigned char c) {
  return c == 0x21 || (c >= 0x23 && c <= 0x2b) || (c >= 0x2d && c <= 0x3a) || (c >= 0x3c && c <= 0x5b) ||
         (c >= 0x5d && c <= 0x7e);
}

/* mode 0: namespace, 1: name, 2: value */
static void put_pct(sbuf_t *b, const char *s, size_t n, int mode) {
  static const char hex[] = "0123456789ABCDEF";
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    int keep = mode == 2 ? baggage_octet(c) && c != '%' : unreserved(c) || (mode == 1 && c == '.');
    if (keep) {
      put(b, (const char *)&c, 1);
    } else {
      char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
      put(b, esc, 3);
    }
  }
}

/* ---- encode ----------------------------------------------------------------------- */

typedef struct {
  uvw_var_t *var;
  uvw_value_t *value; /* borrowed from the map snapshot */
} pair_t;

typedef struct {
  pair_t *v;
  size_t n, cap;
  int nomem;
} strs_t;

static int on_baggage(const uvw_var_t *var) {
  unsigned need = UVW_PROPAGATE_WIRE | UVW_PROPAGATE_BAGGAGE;
  return (uvw_var_policy(var) & need) == need;
}

static void collect(const void *key, uvw_value_t *value, void *arg) {
  strs_t *c = arg;
  uvw_var_t *var = (uvw_var_t *)key;
  if (c->nomem || value->kind != UVW_VALUE_STRING || !on_baggage(var)) return;
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 16;
    pair_t *v = uvw__realloc(c->v, cap * sizeof(*v));
    if (v == NULL) {
      c->nomem = 1;
      return;
    }
    c->v = v;
    c->cap = cap;
  }
  c->v[c->n++] = (pair_t){var, value};
}

static int pair_order(const void *a, const void *b) {
  const uvw_var_t *x = ((const pair_t *)a)->var, *y = ((const pair_t *)b)->var;
  int c = strcmp(x->ns, y->ns);
  return c ? c : strcmp(x->name, y->name);
}

typedef struct {
  sbuf_t b;
  size_t members;
  uvw__warnlist_t warnings;
  int rc;
} render_t;

/* Keep the member appended since `mark` if it fits the limits, else roll it
 * back. Returns 1 when kept. */
static int fits(render_t *r, size_t mark) {
  size_t size = r->b.n - mark - (r->members ? 1 : 0);
  if (size <= UVW__BAGGAGE_MAX_MEMBER && r->b.n <= UVW__BAGGAGE_MAX_BYTES &&
      r->members < UVW__BAGGAGE_MAX_MEMBERS) {
    r->members++;
    return 1;
  }
  r->b.n = mark;
  r->b.s[mark] = '\0';
  return 0;
}

static void too_big(render_t *r, const char *ns, const char *name, const char *what) {
  if (r->rc == 0)
    r->rc = uvw__warnlist_add(&r->warnings,
                              uvw__wire_warning(ns, name,
                                                "%s left out of baggage: over the limit of %d bytes per member, "
                                                "%d bytes or %d members",
                                                what, UVW__BAGGAGE_MAX_MEMBER, UVW__BAGGAGE_MAX_BYTES,
                                                UVW__BAGGAGE_MAX_MEMBERS));
}

static void render_ours(render_t *r, const pair_t *p) {
  const uvw_var_t *var = p->var;
  size_t mark = r->b.n;
  if (r->members) put(&r->b, ",", 1);
  put_pct(&r->b, var->ns, strlen(var->ns), 0);
  put(&r->b, ".", 1);
  put_pct(&r->b, var->name, strlen(var->name), 1);
  put(&r->b, "=", 1);
  put_pct(&r->b, p->value->data, p->value->len, 2);
  if (r->b.nomem || fits(r, mark)) return;
  char what[600];
  snprintf(what, sizeof what, "(%.256s, %.256s)", var->ns, var->name);
  too_big(r, var->ns, var->name, what);
}

/* Non-zero when a foreign member's decoded key is one of ours rendered
 * above (declared after the header arrived): the current value wins. */
static int shadowed(const char *member, size_t n, const strs_t *c) {
  const char *eq = memchr(member, '=', n);
  char *key = NULL;
  size_t klen = 0;
  if (eq == NULL || uvw__pct_decode(member, (size_t)(eq - member), 0, &key, &klen) != 1) return 0;
  while (klen && (key[klen - 1] == ' ' || key[klen - 1] == '\t')) klen--;
  int hit = 0;
  for (size_t i = 0; i < c->n && !hit; i++) {
    const uvw_var_t *v = c->v[i].var;
    size_t nl = strlen(v->ns);
    hit = klen == nl + 1 + strlen(v->name) && memcmp(key, v->ns, nl) == 0 && key[nl] == '.' &&
          memcmp(key + nl + 1, v->name, klen - nl - 1) == 0;
  }
  uvw__free(key);
  return hit;
}

/* Other systems' members, as received, after ours. */
static void render_foreign(render_t *r, const uvw_value_t *v, const strs_t *ours) {
  const char *p = v->data, *end = p + v->len;
  while (p < end && r->rc == 0 && !r->b.nomem) {
    const char *comma = memchr(p, ',', (size_t)(end - p));
    const char *e = comma ? comma : end;
    size_t n = (size_t)(e - p), mark = r->b.n;
    if (n > 0 && !shadowed(p, n, ours)) {
      if (r->members) put(&r->b, ",", 1);
      put(&r->b, p, n);
      if (!r->b.nomem && !fits(r, mark)) {
        char what[80];
        snprintf(what, sizeof what, "another system's member '%.40s'", p);
        too_big(r, NULL, NULL, what);
      }
    }
    p = comma ? comma + 1 : end;
  }
}

int uvw_baggage_encode(uvw_context_t *ctx, char **out) {
  if (out == NULL) {
    uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "uvw_baggage_encode: out is NULL");
    return UVW_EINVAL;
  }
  *out = NULL;
  if (ctx == NULL) {
    uvw__thread_t *t = uvw__thread();
    ctx = t->current;
    int rc = ctx ? uvw__guard_op(ctx->chain, t, "serialize", NULL) : 0;
    if (rc != 0) return rc;
  }
  uvw__map_t *map = NULL;
  uvw__chain_t *chain = NULL;
  if (ctx) uvw__context_snapshot(ctx, &map, &chain); /* ctx may be another thread's */
  uvw__chain_unref(chain);
  strs_t c = {0};
  uvw__map_foreach(map, collect, &c);
  render_t r = {0};
  put(&r.b, "", 0);
  if (!c.nomem && !r.b.nomem) {
    if (c.n > 1) qsort(c.v, c.n, sizeof(*c.v), pair_order);
    for (size_t i = 0; i < c.n && r.rc == 0 && !r.b.nomem; i++) render_ours(&r, &c.v[i]);
    uvw_var_t *fv = uvw__baggage_var();
    const uvw_value_t *foreign = fv ? uvw__map_get(map, fv) : NULL;
    if (foreign != NULL && foreign->kind == UVW_VALUE_STRING && r.rc == 0) render_foreign(&r, foreign, &c);
  }
  int rc = r.rc;
  if (rc == 0 && (c.nomem || r.b.nomem)) rc = uvw__error_nomem("baggage");
  if (rc == 0) {
    rc = uvw__wire_settle_list(&r.warnings, "baggage encode");
    r.warnings.n = 0; /* consumed; otherwise dropped below */
  }
  uvw__warnlist_drop(&r.warnings);
  uvw__free(c.v);
  uvw__map_unref(map);
  if (rc != 0) {
    uvw__free(r.b.s);
    return rc;
  }
  *out = r.b.s;
  return 0;
}
