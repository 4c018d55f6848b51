/* Decoding a W3C baggage header the way OpenTelemetry JS's
 * W3CBaggagePropagator reads it, so both see the same members:
 *   - a member is the text between commas; its key and value are the
 *     trimmed text before and after its first '=' (properties, after the
 *     first ';', excluded), both percent-decoded; a member with no key, no
 *     '=', a bad escape or invalid UTF-8 is skipped;
 *   - limits truncate, they never fail the header: a member over 4096 bytes
 *     is skipped, reading stops at the member that would take the accepted
 *     total past 8192 bytes and after 180 accepted members (one
 *     SerializationWarning says how many were left out);
 *   - a key seen twice: the last one wins.
 * A decoded key names one of our variables when, split at one of its dots
 * (the first dot first), it is a declared variable's (namespace, name):
 * OpenTelemetry re-encodes keys without our %2E, so the escape cannot be
 * relied on. Every other accepted member belongs to another system and is
 * kept as received (leading whitespace removed) in the ("uvwool", "baggage") entry, so re-encoding
 * re-emits it. No stub is ever created here. */
#include <string.h>

#include "alloc.h"
#include "baggage_int.h"
#include "error.h"
#include "value.h"
#include "var.h"
#include "wire_int.h"

typedef struct {
  const char *raw; /* into the header */
  size_t len;
  char *key; /* decoded, for last-wins */
} foreign_t;

typedef struct {
  Uvwool__Entry *entries;
  Uvwool__Value *values;
  Uvwool__Entry **ptrs;
  uvw_var_t **vars;
  char **values_text; /* decoded values, owned */
  size_t n, cap;
  foreign_t *foreign;
  size_t nforeign, fcap;
  uvw__warnlist_t warnings;
  size_t dropped; /* members left out by the limits */
} members_t;

static void members_free(members_t *m) {
  for (size_t i = 0; i < m->n; i++) uvw__free(m->values_text[i]);
  for (size_t i = 0; i < m->nforeign; i++) uvw__free(m->foreign[i].key);
  uvw__free(m->entries);
  uvw__free(m->values);
  uvw__free(m->ptrs);
  uvw__free(m->vars);
  uvw__free(m->values_text);
  uvw__free(m->foreign);
  uvw__warnlist_drop(&m->warnings);
}

static int grow(void **p, size_t *cap, size_t n, size_t size) {
  if (n < *cap) return 0;
  size_t c = *cap ? *cap * 2 : 8;
  void *q = uvw__realloc(*p, c * size);
  if (q == NULL) return UVW_ENOMEM;
  *p = q;
  *cap = c;
  return 0;
}

static int ours_grow(members_t *m) {
  size_t cap = m->cap;
  int rc = grow((void **)&m->entries, &cap, m->n, sizeof(*m->entries));
  cap = m->cap;
  if (rc == 0) rc = grow((void **)&m->values, &cap, m->n, sizeof(*m->values));
  cap = m->cap;
  if (rc == 0) rc = grow((void **)&m->ptrs, &cap, m->n, sizeof(*m->ptrs));
  cap = m->cap;
  if (rc == 0) rc = grow((void **)&m->vars, &cap, m->n, sizeof(*m->vars));
  cap = m->cap;
  if (rc == 0) rc = grow((void **)&m->values_text, &cap, m->n, sizeof(*m->values_text));
  if (rc == 0) m->cap = cap;
  return rc;
}

static int ows(char c) { return c == ' ' || c == '\t'; }
static void trim(const char **s, const char **e) {
  while (*s < *e && ows(**s)) (*s)++;
  while (*e > *s && ows((*e)[-1])) (*e)--;
}

/* The declared variable the decoded key names, or NULL. */
static uvw_var_t *resolve(char *key, size_t klen) {
  int splits = 0;
  for (char *dot = memchr(key, '.', klen); dot && splits < UVW__BAGGAGE_MAX_SPLITS;
       dot = memchr(dot + 1, '.', klen - (size_t)(dot + 1 - key)), splits++) {
    if (dot == key || dot + 1 == key + klen) continue;
    *dot = '\0';
    uvw_var_t *v = uvw_var_find(key, dot + 1);
    *dot = '.';
    if (v != NULL && !uvw_var_is_stub(v)) return v;
  }
  return NULL;
}

/* A member kept for re-encoding travels as it came: only printable ASCII,
 * so re-emitting it can never forge a header line. */
static int printable(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!((unsigned char)s[i] >= 0x20 && (unsigned char)s[i] <= 0x7E) && s[i] != '\t') return 0;
  return 1;
}

static int add_ours(members_t *m, uvw_var_t *var, char *value, size_t vlen) {
  size_t i = 0;
  while (i < m->n && m->vars[i] != var) i++;
  if (i == m->n) {
    if (ours_grow(m) != 0) {
      uvw__free(value);
      return uvw__error_nomem("baggage");
    }
    m->n++;
  } else {
    uvw__free(m->values_text[i]); /* the last one wins */
  }
  m->vars[i] = var;
  m->values_text[i] = value;
  Uvwool__Value *v = &m->values[i];
  uvwool__value__init(v);
  v->kind_case = UVWOOL__VALUE__KIND_STRING_VALUE;
  v->string_value.data = (uint8_t *)value;
  v->string_value.len = vlen;
  return 0;
}

static int add_foreign(members_t *m, const char *raw, size_t len, char *key) {
  for (size_t i = 0; i < m->nforeign; i++) {
    if (strcmp(m->foreign[i].key, key) == 0) { /* the last one wins, in its own place */
      uvw__free(m->foreign[i].key);
      memmove(&m->foreign[i], &m->foreign[i + 1], (m->nforeign - i - 1) * sizeof(*m->foreign));
      m->nforeign--;
      break;
    }
  }
  if (grow((void **)&m->foreign, &m->fcap, m->nforeign, sizeof(*m->foreign)) != 0) {
    uvw__free(key);
    return uvw__error_nomem("baggage");
  }
  m->foreign[m->nforeign++] = (foreign_t){raw, len, key};
  return 0;
}

/* One member, s..e untrimmed. Returns 1 when accepted (counted against the
 * limits), 0 when skipped, or a negative error. */
static int member(members_t *m, const char *s, const char *e) {
  const char *semi = memchr(s, ';', (size_t)(e - s));
  const char *kv_end = semi ? semi : e;
  const char *eq = memchr(s, '=', (size_t)(kv_end - s));
  if (eq == NULL || eq == s) return 0;
  const char *ks = s, *ke = eq, *vs = eq + 1, *ve = kv_end;
  trim(&ks, &ke);
  trim(&vs, &ve);
  char *key = NULL, *value = NULL;
  size_t klen = 0, vlen = 0;
  int a = ks < ke ? uvw__pct_decode(ks, (size_t)(ke - ks), 0, &key, &klen) : 0;
  if (a <= 0) return a < 0 ? uvw__error_nomem("baggage") : 0;
  uvw_var_t *var = resolve(key, klen);
  int b = uvw__pct_decode(vs, (size_t)(ve - vs), 1, &value, &vlen);
  if (b < 0) {
    uvw__free(key);
    return uvw__error_nomem("baggage");
  }
  if (var != NULL) { /* ours */
    uvw__free(key);
    if (b == 0)
      return uvw__warnlist_add(&m->warnings, uvw__wire_warning(var->ns, var->name,
                                                              "bad percent-encoding or invalid UTF-8 in the "
                                                              "baggage value of (%s, %s)",
                                                              var->ns, var->name));
    unsigned need = UVW_PROPAGATE_WIRE | UVW_PROPAGATE_BAGGAGE;
    if ((uvw_var_policy(var) & need) != need) { /* never bound from public baggage */
      uvw__free(value);
      return 1;
    }
    int rc = add_ours(m, var, value, vlen);
    return rc ? rc : 1;
  }
  uvw__free(value);
  /* Leading whitespace only: trailing whitespace is part of the properties
   * as OpenTelemetry reads them (metadata is an opaque string). */
  const char *ms = s, *me = e;
  while (ms < me && ows(*ms)) ms++;
  /* OpenTelemetry drops members without a value; unprintable ones are not
   * ours to forward. */
  if (b == 0 || vs == ve || !printable(ms, (size_t)(me - ms))) {
    uvw__free(key);
    return 0;
  }
  int rc = add_foreign(m, ms, (size_t)(me - ms), key);
  return rc ? rc : 1;
}

static int parse(members_t *m, const char *text, size_t len) {
  const char *p = text, *end = text + len;
  size_t count = 0, total = 0;
  while (p < end) {
    const char *comma = memchr(p, ',', (size_t)(end - p));
    const char *e = comma ? comma : end;
    size_t size = (size_t)(e - p);
    if (count == UVW__BAGGAGE_MAX_MEMBERS) {
      m->dropped++;
    } else if (size > UVW__BAGGAGE_MAX_MEMBER) {
      m->dropped++;
    } else if (total + size + (count ? 1 : 0) > UVW__BAGGAGE_MAX_BYTES) {
      count = UVW__BAGGAGE_MAX_MEMBERS; /* stop here, as OpenTelemetry does */
      m->dropped++;
    } else {
      int rc = member(m, p, e);
      if (rc < 0) return rc;
      if (rc > 0) {
        total += size + (count ? 1 : 0);
        count++;
      }
    }
    p = comma ? comma + 1 : end;
  }
  if (m->dropped == 0) return 0;
  uvw_error_t *w = uvw__wire_warning(NULL, NULL,
                                     "baggage truncated: %zu member(s) left out (limits: %d members, %d bytes per "
                                     "member, %d bytes in all)",
                                     m->dropped, UVW__BAGGAGE_MAX_MEMBERS, UVW__BAGGAGE_MAX_MEMBER,
                                     UVW__BAGGAGE_MAX_BYTES);
  uvw__error_field(w, "dropped", "%zu", m->dropped);
  return uvw__warnlist_add(&m->warnings, w);
}

/* The manifest: our entries, then the foreign members as one string entry. */
static int build(members_t *m, uvw_manifest_t **out) {
  uvw__sbuf_t joined = {0};
  for (size_t i = 0; i < m->nforeign; i++) {
    if (i) uvw__sbuf_put(&joined, ",", 1);
    uvw__sbuf_put(&joined, m->foreign[i].raw, m->foreign[i].len);
  }
  uvw_var_t *fv = m->nforeign ? uvw__baggage_var() : NULL;
  int rc = 0;
  if (joined.nomem || (m->nforeign && (fv == NULL || ours_grow(m) != 0))) rc = uvw__error_nomem("baggage");
  size_t n = m->n;
  if (rc == 0 && m->nforeign) {
    Uvwool__Value *v = &m->values[n];
    uvwool__value__init(v);
    v->kind_case = UVWOOL__VALUE__KIND_STRING_VALUE;
    v->string_value.data = (uint8_t *)joined.s;
    v->string_value.len = joined.n;
    m->vars[n++] = fv;
  }
  for (size_t i = 0; rc == 0 && i < n; i++) {
    uvwool__entry__init(&m->entries[i]);
    m->entries[i].namespace_ = m->vars[i]->ns;
    m->entries[i].name = m->vars[i]->name;
    m->entries[i].value = &m->values[i];
    m->ptrs[i] = &m->entries[i];
  }
  if (rc == 0) {
    Uvwool__ChainManifest pb = UVWOOL__CHAIN_MANIFEST__INIT;
    pb.n_entries = n;
    pb.entries = m->ptrs;
    rc = uvw__manifest_from_pb(&pb, out);
  }
  uvw__free(joined.s);
  return rc;
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
  int rc = parse(&m, text, len);
  if (rc == 0) {
    rc = uvw__wire_settle_list(&m.warnings, "baggage decode");
    m.warnings.n = 0; /* consumed; otherwise dropped below */
  }
  if (rc == 0) rc = build(&m, out);
  members_free(&m);
  return rc;
}
