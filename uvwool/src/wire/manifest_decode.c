/* ChainManifest decoding (docs/semantics.md §7): pure. It resolves identities and
 * decodes values; it never reads or writes a live context. The only shared
 * state it touches is the variable registry, where an undeclared key gets
 * a stub held by the manifest (and later by the chains it is mounted
 * into): within the decode's budget of new stubs, and freed again when
 * nothing holds it, so a peer cannot fill the registry for anyone else. */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "map.h"
#include "value.h"
#include "var.h"
#include "wire_int.h"

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* 32 hex digits, or the dashed 8-4-4-4-12 layout; either case. */
static const char *parse_id(const char *s, uint8_t id[16]) {
  size_t len = strlen(s);
  int dashed = len == 36;
  if (len != 32 && !dashed) return "a chain id is 32 hex digits (or 36 in the dashed UUID layout)";
  int nibble = 0;
  for (size_t i = 0; i < len; i++) {
    if (dashed && (i == 8 || i == 13 || i == 18 || i == 23)) {
      if (s[i] != '-') return "dashes must sit at the UUID positions 8-4-4-4-12";
      continue;
    }
    int h = hexval(s[i]);
    if (h < 0) return "a chain id holds only hexadecimal digits";
    if (nibble & 1)
      id[nibble / 2] |= (uint8_t)h;
    else
      id[nibble / 2] = (uint8_t)(h << 4);
    nibble++;
  }
  return NULL;
}

static int bad_id(const char *id, const char *reason) {
  uvw_error_t *e = uvw__error_set(UVW_EMALFORMED, UVW_KIND_SERIALIZATION_ERROR, "malformed chain id '%.72s': %s",
                                  id, reason);
  uvw__error_field(e, "what", "chain id");
  uvw__error_field(e, "id", "%.72s", id);
  uvw__error_field(e, "reason", "%s", reason);
  return UVW_EMALFORMED;
}

typedef struct {
  uvw_var_t *var;
  uvw_value_t *value; /* reference held; NULL: reset */
  size_t index;       /* position on the wire: the first of duplicates wins */
} item_t;

static int by_key_then_index(const void *a, const void *b) {
  const item_t *x = a, *y = b;
  int c = strcmp(x->var->ns, y->var->ns);
  if (c == 0) c = strcmp(x->var->name, y->var->name);
  if (c == 0) c = (x->index > y->index) - (x->index < y->index);
  return c;
}

static int key_less(const item_t *x, const item_t *y) {
  int c = strcmp(x->var->ns, y->var->ns);
  return c < 0 || (c == 0 && strcmp(x->var->name, y->var->name) < 0);
}

/* The variable for (ns, name): declared, an existing stub (held), or a new
 * stub (held) while the budget lasts. */
static int resolve(const char *ns, const char *name, size_t *budget, size_t start, uvw_var_t **out) {
  int created = 0;
  int rc = uvw__var_acquire(ns, name, *budget > 0, out, &created);
  if (rc < 0) return rc;
  if (created) --*budget;
  if (rc == 0) return 0;
  uvw_error_t *e = uvw__error_set(UVW_ESTUBCAP, UVW_KIND_SERIALIZATION_ERROR,
                                  "undeclared context variable (%s, %s) would exceed the budget of new stubs",
                                  ns, name);
  uvw__error_field(e, "namespace", "%s", ns);
  uvw__error_field(e, "name", "%s", name);
  uvw__error_field(e, "cap", "%zu", uvw_wire_stub_cap());
  uvw__error_field(e, "budget", "%zu", start); /* what this decode was given (a connection's rest) */
  return UVW_ESTUBCAP;
}

/* Drop the values and the stub holds of items. */
static void items_drop(item_t *items, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uvw__value_unref(items[i].value);
    uvw__var_release(&items[i].var, 1);
  }
  uvw__free(items);
}

/* A key the decoder skips (with a warning), or NULL when it is usable. */
static const char *bad_key(const char *ns, const char *name) {
  if (ns == NULL || name == NULL || ns[0] == '\0' || name[0] == '\0') return "has no namespace or no name";
  if (strnlen(ns, UVW__WIRE_MAX_KEY_BYTES + 1) > UVW__WIRE_MAX_KEY_BYTES ||
      strnlen(name, UVW__WIRE_MAX_KEY_BYTES + 1) > UVW__WIRE_MAX_KEY_BYTES)
    return "has a namespace or name longer than 255 bytes";
  return NULL;
}

/* Resolve and decode the entries into items (n of them); warnings for the
 * skipped ones. On failure the caller drops items[0..n). */
static int collect(const Uvwool__ChainManifest *pb, size_t *budget, item_t *items, size_t *count,
                   uvw__warnlist_t *warnings, int *sorted) {
  size_t n = 0, start = *budget;
  int rc = 0;
  *sorted = 1;
  for (size_t i = 0; rc == 0 && i < pb->n_entries; i++) {
    const Uvwool__Entry *e = pb->entries[i];
    const char *ns = e->namespace_, *name = e->name, *why = bad_key(ns, name);
    if (why != NULL) {
      /* No key in the warning: it may be megabytes long. */
      rc = uvw__warnlist_add(warnings, uvw__wire_warning(NULL, NULL, "manifest entry %zu %s", i, why));
      continue;
    }
    uvw_value_t *value = NULL;
    if (e->value != NULL) {
      char whyv[160];
      rc = uvw__value_from_pb(e->value, &value, whyv, sizeof(whyv));
      if (rc < 0 && rc != -1) break; /* UVW_ENOMEM */
      if (rc == -1) {
        /* Skipped without a reset: the receiver keeps what it has. */
        rc = uvw__warnlist_add(warnings, uvw__wire_warning(ns, name, "bad value for (%s, %s): %s", ns, name, whyv));
        continue;
      }
    }
    uvw_var_t *var;
    if ((rc = resolve(ns, name, budget, start, &var)) != 0) {
      uvw__value_unref(value);
      break;
    }
    if (!(uvw_var_policy(var) & UVW_PROPAGATE_WIRE)) { /* this process keeps it off the wire */
      uvw__value_unref(value);
      uvw__var_release(&var, 1);
      continue;
    }
    items[n] = (item_t){var, value, i};
    if (n > 0 && *sorted && !key_less(&items[n - 1], &items[n])) *sorted = 0;
    n++;
  }
  *count = n;
  return rc;
}

/* Keep the first of each run of equal keys (items sorted). */
static int dedup(item_t *items, size_t n, size_t *kept_out, uvw__warnlist_t *warnings) {
  size_t kept = 0;
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    if (rc == 0 && kept > 0 && items[kept - 1].var == items[i].var) {
      const uvw_var_t *v = items[i].var;
      rc = uvw__warnlist_add(warnings, uvw__wire_warning(v->ns, v->name,
                                                         "duplicate manifest entry for (%s, %s) at %zu: the "
                                                         "first one wins",
                                                         v->ns, v->name, items[i].index));
    }
    if (kept > 0 && items[kept - 1].var == items[i].var) {
      uvw__value_unref(items[i].value);
      uvw__var_release(&items[i].var, 1);
      continue;
    }
    items[kept++] = items[i];
  }
  *kept_out = kept;
  return rc;
}

static int too_many_entries(void) {
  uvw_error_t *e = uvw__error_set(UVW_ETOOBIG, UVW_KIND_SERIALIZATION_ERROR,
                                  "manifest has more than %d entries, the limit", UVW__WIRE_MAX_ENTRIES);
  uvw__error_field(e, "limit", "%d", UVW__WIRE_MAX_ENTRIES);
  return UVW_ETOOBIG;
}

int uvw__manifest_from_pb_budget(const Uvwool__ChainManifest *pb, size_t stub_budget, uvw_manifest_t **out,
                                 size_t *created) {
  if (created) *created = 0;
  if (pb->n_entries > UVW__WIRE_MAX_ENTRIES) return too_many_entries();
  uvw_manifest_t *m = uvw__calloc(1, sizeof(*m));
  if (m == NULL) return uvw__error_nomem("manifest");
  if (pb->id != NULL && pb->id[0] != '\0') {
    const char *why = parse_id(pb->id, m->id);
    if (why != NULL) {
      uvw__free(m);
      return bad_id(pb->id, why);
    }
    m->has_id = 1;
  }
  item_t *items = uvw__malloc((pb->n_entries ? pb->n_entries : 1) * sizeof(*items));
  if (items == NULL) {
    uvw__free(m);
    return uvw__error_nomem("manifest");
  }
  uvw__warnlist_t warnings = {0};
  size_t n = 0, kept = 0, budget = stub_budget;
  int sorted;
  int rc = collect(pb, &budget, items, &n, &warnings, &sorted);
  if (rc == 0 && !sorted) qsort(items, n, sizeof(*items), by_key_then_index);
  /* Equal keys are now adjacent, the first on the wire leading its run. */
  if (rc == 0) rc = dedup(items, n, &kept, &warnings);
  else kept = n;
  if (rc == 0) rc = uvw__wire_settle_list(&warnings, "manifest decode");
  uvw__warnlist_drop(&warnings);
  if (rc == 0 && (m->entries = uvw__malloc((kept ? kept : 1) * sizeof(*m->entries))) == NULL)
    rc = uvw__error_nomem("manifest");
  if (rc != 0) {
    /* Nothing stays behind: the stubs this decode made go with their holds. */
    items_drop(items, kept);
    uvw__free(m);
    return rc;
  }
  for (size_t i = 0; i < kept; i++) m->entries[i] = (uvw__mentry_t){items[i].var, items[i].value};
  m->n = kept;
  uvw__free(items);
  if (created) *created = stub_budget - budget;
  *out = m;
  return 0;
}

int uvw__manifest_from_pb(const Uvwool__ChainManifest *pb, uvw_manifest_t **out) {
  return uvw__manifest_from_pb_budget(pb, uvw_wire_stub_cap(), out, NULL);
}

static int varint(const uint8_t *p, size_t n, size_t *i, uint64_t *out) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64 && *i < n; shift += 7) {
    uint8_t b = p[(*i)++];
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return 1;
    }
  }
  return 0;
}

size_t uvw__manifest_entry_fields(const uint8_t *p, size_t n) {
  size_t i = 0, count = 0;
  uint64_t key, v;
  while (i < n && count <= UVW__WIRE_MAX_ENTRIES && varint(p, n, &i, &key)) {
    switch (key & 7) {
      case 0:
        if (!varint(p, n, &i, &v)) return count;
        break;
      case 1:
        i += 8;
        break;
      case 5:
        i += 4;
        break;
      case 2:
        if (!varint(p, n, &i, &v) || v > n - i) return count;
        i += (size_t)v;
        count += (key >> 3) == 2;
        break;
      default:
        return count;
    }
  }
  return count;
}

int uvw__manifest_decode_budget(const void *data, size_t len, size_t stub_budget, uvw_manifest_t **out,
                                size_t *created) {
  if (out == NULL) {
    uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "uvw_manifest_decode: out is NULL");
    return UVW_EINVAL;
  }
  *out = NULL;
  if (created) *created = 0;
  if (data != NULL && len <= uvw_wire_max_size()) {
    size_t nentries = uvw__manifest_entry_fields(data, len);
    if (nentries > UVW__WIRE_MAX_ENTRIES) return too_many_entries();
    uvw__mscan_t *scan;
    const Uvwool__ChainManifest *pb;
    int rc = uvw__manifest_scan(data, len, nentries, &scan, &pb);
    if (rc < 0) return rc;
    if (rc == 1) {
      rc = uvw__manifest_from_pb_budget(pb, stub_budget, out, created);
      uvw__mscan_free(scan);
      return rc;
    }
  }
  ProtobufCMessage *msg;
  uvw__arena_t *arena;
  int rc = uvw__wire_unpack(&uvwool__chain_manifest__descriptor, data, len, "chain manifest", &msg, &arena);
  if (rc != 0) return rc;
  rc = uvw__manifest_from_pb_budget((const Uvwool__ChainManifest *)msg, stub_budget, out, created);
  uvw__arena_free(arena);
  return rc;
}

int uvw_manifest_decode(const void *data, size_t len, uvw_manifest_t **out) {
  return uvw__manifest_decode_budget(data, len, uvw_wire_stub_cap(), out, NULL);
}

void uvw_manifest_free(uvw_manifest_t *m) {
  if (m == NULL) return;
  for (size_t i = 0; i < m->n; i++) {
    uvw__value_unref(m->entries[i].value);
    uvw__var_release(&m->entries[i].var, 1);
  }
  uvw__free(m->entries);
  uvw__map_unref(m->map);
  uvw__free(m);
}

int uvw_manifest_id(const uvw_manifest_t *m, char out[33]) {
  if (m == NULL || out == NULL || !m->has_id) {
    uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "manifest has no chain id");
    return UVW_EINVAL;
  }
  static const char hex[] = "0123456789abcdef";
  for (int i = 0; i < 16; i++) {
    out[2 * i] = hex[m->id[i] >> 4];
    out[2 * i + 1] = hex[m->id[i] & 15];
  }
  out[32] = '\0';
  return 0;
}

size_t uvw_manifest_entry_count(const uvw_manifest_t *m) { return m ? m->n : 0; }
uvw_var_t *uvw_manifest_entry_var(const uvw_manifest_t *m, size_t i) {
  return m && i < m->n ? m->entries[i].var : NULL;
}
uvw_value_t *uvw_manifest_entry_value(const uvw_manifest_t *m, size_t i) {
  return m && i < m->n ? m->entries[i].value : NULL;
}
