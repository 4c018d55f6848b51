/* The W3C baggage carrier (https://www.w3.org/TR/baggage/): string-valued
 * variables as `key=value` list members, so context can ride through
 * OpenTelemetry-instrumented hops that forward `baggage` unchanged.
 *
 * Keys: percent-encoded namespace (every byte but ALPHA DIGIT - _ ~ is
 * encoded, '.' included), then '.', then the percent-encoded name ('.'
 * kept). The first '.' of a key therefore always separates namespace from
 * name, and a key is always a valid RFC 7230 token. Values: bytes outside
 * baggage-octet, and '%', are percent-encoded, as the spec requires.
 * Only strings travel here: other kinds, resets and the chain id need the
 * manifest (text carrier). */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "context.h"
#include "error.h"
#include "value.h"
#include "var.h"
#include "wire_int.h"

#define BAGGAGE_MAX_BYTES 8192
#define BAGGAGE_MAX_MEMBERS 64

/* ---- a small growable string ------------------------------------------------- */

typedef struct {
  char *s;
  size_t n, cap;
  int nomem;
} sbuf_t;

static void put(sbuf_t *b, const char *s, size_t n) {
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

static int unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c == '~';
}
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

static void collect(const void *key, uvw_value_t *value, void *arg) {
  strs_t *c = arg;
  uvw_var_t *var = (uvw_var_t *)key;
  if (c->nomem || value->kind != UVW_VALUE_STRING || !(uvw_var_policy(var) & UVW_PROPAGATE_WIRE)) return;
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
  sbuf_t b = {0};
  uvw__warnlist_t warnings = {0};
  int rc = 0;
  put(&b, "", 0);
  if (c.nomem || b.nomem) {
    rc = uvw__error_nomem("baggage");
  } else {
    if (c.n > 1) qsort(c.v, c.n, sizeof(*c.v), pair_order);
    size_t members = 0;
    for (size_t i = 0; i < c.n && rc == 0; i++) {
      const uvw_var_t *var = c.v[i].var;
      const uvw_value_t *v = c.v[i].value;
      size_t mark = b.n;
      if (members) put(&b, ",", 1);
      put_pct(&b, var->ns, strlen(var->ns), 0);
      put(&b, ".", 1);
      put_pct(&b, var->name, strlen(var->name), 1);
      put(&b, "=", 1);
      put_pct(&b, v->data, v->len, 2);
      if (b.nomem) break;
      if (b.n > BAGGAGE_MAX_BYTES || members + 1 > BAGGAGE_MAX_MEMBERS) {
        b.n = mark; /* roll the member back */
        b.s[b.n] = '\0';
        rc = uvw__warnlist_add(&warnings, uvw__wire_warning(var->ns, var->name,
                                                            "(%s, %s) left out of baggage: over the W3C limit of "
                                                            "%d bytes or %d members",
                                                            var->ns, var->name, BAGGAGE_MAX_BYTES,
                                                            BAGGAGE_MAX_MEMBERS));
        continue;
      }
      members++;
    }
    if (rc == 0 && b.nomem) rc = uvw__error_nomem("baggage");
    if (rc == 0) {
      rc = uvw__wire_settle_list(&warnings, "baggage encode");
      warnings.n = 0; /* consumed; otherwise dropped below */
    }
  }
  uvw__warnlist_drop(&warnings);
  uvw__free(c.v);
  uvw__map_unref(map);
  if (rc != 0) {
    uvw__free(b.s);
    return rc;
  }
  *out = b.s;
  return 0;
}

/* ---- decode ----------------------------------------------------------------------- */

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Percent-decode into a new NUL-terminated buffer. Returns 1 on success, 0 for
 * a bad escape (or a NUL where a C string is needed), -1 out of memory. */
static int pct_decode(const char *s, size_t n, int allow_nul, char **out, size_t *outlen) {
  char *buf = uvw__malloc(n + 1);
  if (buf == NULL) return -1;
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] != '%') {
      buf[o++] = s[i];
      continue;
    }
    int hi, lo;
    if (i + 2 >= n || (hi = hexval(s[i + 1])) < 0 || (lo = hexval(s[i + 2])) < 0) {
      uvw__free(buf);
      return 0;
    }
    char c = (char)(hi << 4 | lo);
    if (c == '\0' && !allow_nul) {
      uvw__free(buf);
      return 0;
    }
    buf[o++] = c;
    i += 2;
  }
  buf[o] = '\0';
  *out = buf;
  if (outlen) *outlen = o;
  return 1;
}

static int ows(char c) { return c == ' ' || c == '\t'; }
static void trim(const char **s, const char **e) {
  while (*s < *e && ows(**s)) (*s)++;
  while (*e > *s && ows((*e)[-1])) (*e)--;
}

typedef struct {
  Uvwool__Entry *entries;
  Uvwool__Entry **ptrs;
  Uvwool__Value *values;
  char **strings; /* every buffer we allocated, freed at the end */
  size_t n, cap, nstrings, scap;
} members_t;

static void members_free(members_t *m) {
  for (size_t i = 0; i < m->nstrings; i++) uvw__free(m->strings[i]);
  uvw__free(m->strings);
  uvw__free(m->entries);
  uvw__free(m->ptrs);
  uvw__free(m->values);
}

/* Room for one more member: an entry and up to three strings. Members with
 * a bad value keep their two key strings without adding an entry, so the
 * string array grows on its own count (the fuzzer found the overflow when
 * it grew with the entries). */
static int members_grow(members_t *m) {
  if (m->nstrings + 3 > m->scap) {
    size_t scap = m->scap ? m->scap * 2 : 24;
    char **s = uvw__realloc(m->strings, scap * sizeof(*s));
    if (s == NULL) return UVW_ENOMEM;
    m->strings = s;
    m->scap = scap;
  }
  if (m->n < m->cap) return 0;
  size_t cap = m->cap ? m->cap * 2 : 8;
  Uvwool__Entry *e = uvw__realloc(m->entries, cap * sizeof(*e));
  if (e) m->entries = e;
  Uvwool__Value *v = e ? uvw__realloc(m->values, cap * sizeof(*v)) : NULL;
  if (v) m->values = v;
  Uvwool__Entry **p = v ? uvw__realloc(m->ptrs, cap * sizeof(*p)) : NULL;
  if (p) m->ptrs = p;
  if (!p) return UVW_ENOMEM;
  m->cap = cap;
  return 0;
}

int uvw_baggage_decode(const char *text, size_t len, uvw_manifest_t **out) {
  if (out == NULL || (text == NULL && len != 0)) {
    uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "uvw_baggage_decode: NULL argument");
    return UVW_EINVAL;
  }
  *out = NULL;
  if (len > uvw_wire_max_size()) {
    uvw_error_t *e = uvw__error_set(UVW_ETOOBIG, UVW_KIND_SERIALIZATION_ERROR,
                                    "baggage of %zu bytes is over the wire size limit of %zu bytes", len,
                                    uvw_wire_max_size());
    uvw__error_field(e, "size", "%zu", len);
    return UVW_ETOOBIG;
  }
  members_t m = {0};
  uvw__warnlist_t warnings = {0};
  int rc = 0;
  const char *p = text, *end = text + len;
  while (rc == 0 && p < end) {
    const char *comma = memchr(p, ',', (size_t)(end - p));
    const char *mend = comma ? comma : end;
    const char *semi = memchr(p, ';', (size_t)(mend - p)); /* properties: ignored */
    const char *kv_end = semi ? semi : mend;
    const char *eq = memchr(p, '=', (size_t)(kv_end - p));
    const char *ks = p, *ke = eq ? eq : kv_end;
    p = comma ? comma + 1 : end;
    if (eq == NULL) continue; /* not a key=value member: not ours to judge */
    trim(&ks, &ke);
    const char *dot = memchr(ks, '.', (size_t)(ke - ks));
    if (dot == NULL || dot == ks || dot + 1 == ke) continue; /* another system's key */
    char *ns = NULL, *name = NULL, *value = NULL;
    size_t vlen = 0;
    int a = pct_decode(ks, (size_t)(dot - ks), 0, &ns, NULL);
    int b = a == 1 ? pct_decode(dot + 1, (size_t)(ke - dot - 1), 0, &name, NULL) : a;
    if (a == 1 && b != 1) uvw__free(ns);
    if (a < 0 || b < 0) {
      rc = uvw__error_nomem("baggage");
      break;
    }
    if (a == 0 || b == 0) continue; /* a key that is not our encoding */
    const char *vs = eq + 1, *ve = kv_end;
    trim(&vs, &ve);
    int c = pct_decode(vs, (size_t)(ve - vs), 1, &value, &vlen);
    if (c < 0 || (rc = members_grow(&m)) != 0) {
      uvw__free(ns);
      uvw__free(name);
      if (c > 0) uvw__free(value);
      rc = uvw__error_nomem("baggage");
      break;
    }
    m.strings[m.nstrings++] = ns;
    m.strings[m.nstrings++] = name;
    if (c == 0) {
      rc = uvw__warnlist_add(&warnings, uvw__wire_warning(ns, name, "bad percent-encoding in the baggage value of (%s, %s)", ns, name));
      continue;
    }
    m.strings[m.nstrings++] = value;
    Uvwool__Entry *e = &m.entries[m.n];
    Uvwool__Value *v = &m.values[m.n];
    uvwool__entry__init(e);
    uvwool__value__init(v);
    v->kind_case = UVWOOL__VALUE__KIND_STRING_VALUE;
    v->string_value.data = (uint8_t *)value;
    v->string_value.len = vlen;
    e->namespace_ = ns;
    e->name = name;
    e->value = v;
    m.n++;
  }
  if (rc == 0) {
    rc = uvw__wire_settle_list(&warnings, "baggage decode");
    warnings.n = 0; /* consumed; otherwise dropped below */
  }
  uvw__warnlist_drop(&warnings);
  if (rc == 0) {
    /* Pointers are taken only now: the arrays may have moved while growing. */
    for (size_t i = 0; i < m.n; i++) {
      m.entries[i].value = &m.values[i];
      m.ptrs[i] = &m.entries[i];
    }
    Uvwool__ChainManifest pb = UVWOOL__CHAIN_MANIFEST__INIT;
    pb.n_entries = m.n;
    pb.entries = m.ptrs;
    rc = uvw__manifest_from_pb(&pb, out);
  }
  members_free(&m);
  return rc;
}
