/* Error payloads: uvw_error_t <-> uvwool.Error, losslessly (kind, code,
 * message, fields in order, cause, context, warnings), so a ChainContention
 * raised in a worker reaches the caller with every field (docs/testing.md row 16).
 *
 * A class name this process does not know (a Lua or Ruby exception class)
 * becomes WoolError with the name kept in a trailing `wire_type` field;
 * encoding such an error sends that name again and drops the field, so the
 * name survives any number of hops through C. */
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "wire_int.h"

#define WIRE_TYPE_FIELD "wire_type"

void uvw__error_pb_free(Uvwool__Error *pb) {
  if (pb == NULL) return;
  for (size_t i = 0; i < pb->n_fields; i++) uvw__free(pb->fields[i]);
  uvw__free(pb->fields);
  uvw__error_pb_free(pb->cause);
  uvw__error_pb_free(pb->context);
  for (size_t i = 0; i < pb->n_warnings; i++) uvw__error_pb_free(pb->warnings[i]);
  uvw__free(pb->warnings);
  uvw__free(pb);
}

static int to_pb(const uvw_error_t *e, Uvwool__Error **out, int depth) {
  *out = NULL;
  if (depth > UVW__WIRE_MAX_ERROR_DEPTH) {
    uvw__error_set(UVW_ESERIALIZE, UVW_KIND_SERIALIZATION_ERROR,
                   "error payload nests cause/context/warnings deeper than %d levels", UVW__WIRE_MAX_ERROR_DEPTH);
    return UVW_ESERIALIZE;
  }
  Uvwool__Error *pb = uvw__malloc(sizeof(*pb));
  if (pb == NULL) return uvw__error_nomem("error payload");
  uvwool__error__init(pb);
  const char *wire_type = NULL;
  if (e->kind == UVW_KIND_WOOL_ERROR && e->nfields > 0 &&
      strcmp(e->field_names[e->nfields - 1], WIRE_TYPE_FIELD) == 0)
    wire_type = e->field_values[e->nfields - 1];
  const char *kname = uvw_error_kind_name(e->kind);
  pb->type = (char *)(wire_type ? wire_type : kname ? kname : "WoolError");
  pb->message = e->message;
  pb->has_code = e->code != 0;
  pb->code = e->code;
  size_t nf = e->nfields - (wire_type ? 1 : 0);
  int rc = 0;
  if (nf > 0) {
    /* One allocation per field pair: the array, then the structs in it. */
    pb->fields = uvw__calloc(nf, sizeof(*pb->fields));
    if (pb->fields == NULL) rc = uvw__error_nomem("error payload");
    for (size_t i = 0; rc == 0 && i < nf; i++) {
      Uvwool__ErrorField *f = uvw__malloc(sizeof(*f));
      if (f == NULL) {
        rc = uvw__error_nomem("error payload");
        break;
      }
      uvwool__error_field__init(f);
      f->name = e->field_names[i];
      f->value = e->field_values[i];
      pb->fields[pb->n_fields++] = f;
    }
  }
  if (rc == 0 && e->cause) rc = to_pb(e->cause, &pb->cause, depth + 1);
  if (rc == 0 && e->context) rc = to_pb(e->context, &pb->context, depth + 1);
  if (rc == 0 && e->nwarnings > 0) {
    pb->warnings = uvw__calloc(e->nwarnings, sizeof(*pb->warnings));
    if (pb->warnings == NULL) rc = uvw__error_nomem("error payload");
    for (size_t i = 0; rc == 0 && i < e->nwarnings; i++) {
      rc = to_pb(e->warnings[i], &pb->warnings[i], depth + 1);
      if (pb->warnings[i]) pb->n_warnings = i + 1;
    }
  }
  if (rc != 0) {
    uvw__error_pb_free(pb);
    return rc;
  }
  *out = pb;
  return 0;
}

int uvw__error_to_pb(const uvw_error_t *e, Uvwool__Error **out) { return to_pb(e, out, 0); }

/* Records are built by hand rather than through uvw__error_field, which
 * drops a field silently when memory runs out: a decoded error must be
 * complete or the decode must fail. */
static int add_field(uvw_error_t *e, size_t *cap, const char *name, const char *value) {
  if (e->nfields == *cap) { /* doubling: 50,000 fields cost 17 reallocations, not 50,000 */
    size_t grown = *cap ? *cap * 2 : 4;
    char **names = uvw__realloc(e->field_names, grown * sizeof(char *));
    if (names == NULL) return UVW_ENOMEM;
    e->field_names = names;
    char **values = uvw__realloc(e->field_values, grown * sizeof(char *));
    if (values == NULL) return UVW_ENOMEM;
    e->field_values = values;
    *cap = grown;
  }
  char **names = e->field_names, **values = e->field_values;
  char *n = uvw__strndup(name, strlen(name));
  char *v = uvw__strndup(value, strlen(value));
  if (n == NULL || v == NULL) {
    uvw__free(n);
    uvw__free(v);
    return UVW_ENOMEM;
  }
  names[e->nfields] = n;
  values[e->nfields] = v;
  e->nfields++;
  return 0;
}

static int from_pb(const Uvwool__Error *pb, uvw_error_t **out) {
  *out = NULL;
  const char *type = pb->type ? pb->type : "";
  uvw_error_kind_t kind = uvw_error_kind_from_name(type);
  const char *message = pb->message ? pb->message : "";
  uvw_error_t *e = uvw__calloc(1, sizeof(*e));
  if (e == NULL) return UVW_ENOMEM;
  atomic_init(&e->refs, 1);
  e->code = pb->has_code ? pb->code : 0;
  e->kind = kind != UVW_KIND_NONE ? kind : UVW_KIND_WOOL_ERROR;
  int rc = (e->message = uvw__strndup(message, strlen(message))) ? 0 : UVW_ENOMEM;
  size_t cap = 0;
  for (size_t i = 0; rc == 0 && i < pb->n_fields; i++) {
    const Uvwool__ErrorField *f = pb->fields[i];
    rc = add_field(e, &cap, f->name ? f->name : "", f->value ? f->value : "");
  }
  if (rc == 0 && kind == UVW_KIND_NONE && type[0] != '\0') rc = add_field(e, &cap, WIRE_TYPE_FIELD, type);
  if (rc == 0 && pb->cause) rc = from_pb(pb->cause, &e->cause);
  if (rc == 0 && pb->context) rc = from_pb(pb->context, &e->context);
  if (rc == 0 && pb->n_warnings > 0) {
    e->warnings = uvw__calloc(pb->n_warnings, sizeof(*e->warnings));
    if (e->warnings == NULL) rc = UVW_ENOMEM;
    for (size_t i = 0; rc == 0 && i < pb->n_warnings; i++) {
      rc = from_pb(pb->warnings[i], &e->warnings[i]);
      if (e->warnings[i]) e->nwarnings = i + 1;
    }
  }
  if (rc != 0) {
    uvw_error_unref(e);
    return rc;
  }
  *out = e;
  return 0;
}

int uvw__error_from_pb(const Uvwool__Error *pb, uvw_error_t **out) {
  int rc = from_pb(pb, out);
  return rc == 0 ? 0 : uvw__error_nomem("decoded error payload");
}
