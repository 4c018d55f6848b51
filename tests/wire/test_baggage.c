/* The W3C baggage carrier as an OpenTelemetry citizen (docs/wire.md,
 * "W3C baggage"): OTel's limits, other systems' members kept through a
 * uvwool hop, no stubs from foreign keys, dotted namespaces, UTF-8,
 * last-wins duplicates, and the UVW_PROPAGATE_BAGGAGE policy. The
 * cross-checks against OpenTelemetry JS itself are tests/otel/. */
#include "var.h"
#include "wiretest.h"

/* A fresh namespace without dots (tu_namespace's have one), and variables
 * in it. */
static const char *plain_ns(void) {
  static char buf[32];
  snprintf(buf, sizeof buf, "%s", tu_namespace());
  for (char *p = buf; *p; p++)
    if (*p == '.') *p = '_';
  return buf;
}
static uvw_var_t *var_in(const char *ns, const char *name) {
  uvw_var_t *v;
  cr_assert_eq(uvw_var_declare(ns, name, NULL, &v), 0);
  return v;
}

static char *header_of(int members, const char *ns) {
  char *h = malloc((size_t)members * 48 + 1);
  h[0] = '\0';
  size_t o = 0;
  for (int i = 0; i < members; i++) o += (size_t)sprintf(h + o, "%s%s.k%d=v%d", i ? "," : "", ns, i, i);
  return h;
}

static uvw_manifest_t *decode(const char *hdr) {
  uvw_manifest_t *m = NULL;
  cr_assert_eq(uvw_baggage_decode(hdr, strlen(hdr), &m), 0, "decode of '%.60s'", hdr);
  return m;
}

/* Rendering of the current context after mounting m into a fresh one. */
static char *reencode(const uvw_manifest_t *m) {
  uvw_context_t *ctx = wt_enter_new();
  cr_assert_eq(uvw_manifest_mount(m), 0);
  char *text = NULL;
  cr_assert_eq(uvw_baggage_encode(NULL, &text), 0);
  wt_leave(ctx);
  return text;
}

Test(baggage, decoding_stops_at_180_members_with_one_warning) {
  const char *ns = tu_namespace();
  for (int i = 0; i < 500; i++) {
    char name[16];
    snprintf(name, sizeof name, "k%d", i);
    uvw_var_t *v;
    cr_assert_eq(uvw_var_declare(ns, name, NULL, &v), 0);
  }
  char *hdr = header_of(500, ns);
  wt_capture();
  uvw_manifest_t *m = decode(hdr);
  cr_assert_eq(uvw_manifest_entry_count(m), 180, "OpenTelemetry's limit");
  cr_assert_eq(wt_nwarnings, 1, "one warning for the whole truncation");
  cr_assert_str_eq(uvw_error_field(wt_warnings[0], "dropped"), "320");
  cr_assert_not_null(uvw_var_find(ns, "k179"));
  for (size_t i = 0; i < uvw_manifest_entry_count(m); i++) {
    int k = atoi(uvw_var_name(uvw_manifest_entry_var(m, i)) + 1);
    cr_assert_lt(k, 180, "the first 180 members are the ones kept, not k%d", k);
  }
  uvw_manifest_free(m);
  wt_release();
  free(hdr);
}

Test(baggage, decoding_keeps_8192_bytes_and_skips_members_over_4096) {
  const char *ns = plain_ns();
  uvw_var_t *b = var_in(ns, "b"), *c = var_in(ns, "c");
  var_in(ns, "a");
  var_in(ns, "d");
  size_t klen = strlen(ns) + 3; /* "<ns>.a=" */
  char *hdr = malloc(32768);
  char *big = malloc(8000);
  memset(big, 'x', 7999);
  big[7999] = '\0';
  /* a: 4097 bytes (skipped), b and c: 3000 bytes each, d: 3000 more would
   * pass 8192 in all: reading stops there. */
  int n = sprintf(hdr, "%s.a=%.*s,", ns, (int)(4097 - klen), big);
  n += sprintf(hdr + n, "%s.b=%.*s,", ns, (int)(3000 - klen), big);
  n += sprintf(hdr + n, "%s.c=%.*s,", ns, (int)(3000 - klen), big);
  n += sprintf(hdr + n, "%s.d=%.*s,%s.a=small", ns, (int)(3000 - klen), big, ns);
  wt_capture();
  uvw_manifest_t *m = decode(hdr);
  cr_assert_eq(uvw_manifest_entry_count(m), 2);
  cr_assert_eq(uvw_manifest_entry_var(m, 0), b);
  cr_assert_eq(uvw_manifest_entry_var(m, 1), c);
  cr_assert_eq(wt_nwarnings, 1);
  cr_assert_str_eq(uvw_error_field(wt_warnings[0], "dropped"), "3", "a (too big), d (past 8192) and what follows");
  uvw_manifest_free(m);
  wt_release();
  /* Strict mode: the truncation is a loss, so it fails. */
  uvw_set_strict(1);
  uvw_manifest_t *none = NULL;
  cr_assert_eq(uvw_baggage_decode(hdr, strlen(hdr), &none), UVW_ECHAINSERIALIZE);
  cr_assert_null(none);
  uvw_set_strict(0);
  free(big);
  free(hdr);
}

Test(baggage, foreign_keys_never_become_stubs) {
  const char *ns = tu_namespace();
  size_t stubs = uvw__var_stub_count();
  char *hdr = header_of(100, ns);
  uvw_manifest_t *m = decode(hdr);
  cr_assert_eq(uvw__var_stub_count(), stubs, "no stub for an undeclared key");
  cr_assert_null(uvw_var_find(ns, "k0"));
  cr_assert_eq(uvw_manifest_entry_count(m), 1, "the foreign members only");
  cr_assert_str_eq(uvw_var_namespace(uvw_manifest_entry_var(m, 0)), "uvwool");
  cr_assert_str_eq(uvw_value_as_string(uvw_manifest_entry_value(m, 0)), hdr);
  uvw_manifest_free(m);
  free(hdr);
}

/* A uvwool hop forwards what it does not own: directly, and through the
 * binary manifest to another process (a worker) that renders baggage. */
Test(baggage, a_uvwool_hop_keeps_other_members_and_their_properties) {
  const char *ns = plain_ns();
  var_in(ns, "user");
  char hdr[512], want[512];
  snprintf(hdr, sizeof hdr, " vendor=a%%20b ;ttl=10;secure ,%s.user=alice;p=1,sampled=true", ns);
  snprintf(want, sizeof want, "%s.user=alice,vendor=a%%20b ;ttl=10;secure ,sampled=true", ns);
  uvw_manifest_t *m = decode(hdr);
  char *text = reencode(m);
  cr_assert_str_eq(text, want, "ours (sorted) first, then the others as received");
  uvw_free(text);

  /* Through a manifest: mount, encode binary, decode, mount elsewhere. */
  uvw_context_t *ctx = wt_enter_new();
  cr_assert_eq(uvw_manifest_mount(m), 0);
  void *bin;
  size_t len;
  cr_assert_eq(uvw_manifest_encode(NULL, &bin, &len), 0);
  wt_leave(ctx);
  uvw_manifest_t *m2;
  cr_assert_eq(uvw_manifest_decode(bin, len, &m2), 0);
  text = reencode(m2);
  cr_assert_str_eq(text, want);
  uvw_free(text);
  uvw_free(bin);
  uvw_manifest_free(m2);
  uvw_manifest_free(m);
}

Test(baggage, a_foreign_key_declared_later_does_not_repeat_ours) {
  const char *ns = plain_ns();
  char hdr[128], want[128];
  snprintf(hdr, sizeof hdr, "%s.late=old,other=1", ns);
  uvw_manifest_t *m = decode(hdr);
  uvw_var_t *late;
  cr_assert_eq(uvw_var_declare(ns, "late", NULL, &late), 0);
  uvw_context_t *ctx = wt_enter_new();
  cr_assert_eq(uvw_manifest_mount(m), 0);
  wt_set(late, uvw_value_cstring("new"));
  char *text;
  cr_assert_eq(uvw_baggage_encode(NULL, &text), 0);
  snprintf(want, sizeof want, "%s.late=new,other=1", ns);
  cr_assert_str_eq(text, want);
  uvw_free(text);
  wt_leave(ctx);
  uvw_manifest_free(m);
}

/* OpenTelemetry renders ("com.example", "user") as com.example.user; the
 * receiver finds the declared variable whichever dot splits it. */
Test(baggage, dotted_namespaces_survive_an_opentelemetry_hop) {
  char ns[96];
  snprintf(ns, sizeof ns, "com.%s", plain_ns());
  uvw_var_t *v;
  cr_assert_eq(uvw_var_declare(ns, "user", NULL, &v), 0);
  char otel[160], ours[160];
  snprintf(otel, sizeof otel, "%s.user=alice", ns); /* as OTel re-encodes it */
  uvw_manifest_t *m = decode(otel);
  cr_assert_eq(uvw_manifest_entry_count(m), 1);
  cr_assert_eq(uvw_manifest_entry_var(m, 0), v);
  char *text = reencode(m);
  snprintf(ours, sizeof ours, "com%%2E%s.user=alice", ns + 4);
  cr_assert_str_eq(text, ours, "uvwool still escapes the namespace's dots");
  uvw_manifest_free(m);
  m = decode(text);
  cr_assert_eq(uvw_manifest_entry_var(m, 0), v, "and reads its own form back");
  uvw_manifest_free(m);
  uvw_free(text);
}

Test(baggage, invalid_utf8_is_refused) {
  const char *ns = plain_ns();
  var_in(ns, "v");
  char hdr[256];
  /* ours: a lone continuation byte, an overlong '/', a surrogate; others:
   * dropped like OpenTelemetry drops them; valid UTF-8 passes. */
  snprintf(hdr, sizeof hdr, "%s.v=%%80,%s.v=%%C0%%AF,%s.v=%%ED%%A0%%80,x=%%FF,y=%%C3%%A9", ns, ns, ns);
  wt_capture();
  uvw_manifest_t *m = decode(hdr);
  cr_assert_eq(wt_nwarnings, 3, "one per bad value of ours");
  cr_assert_eq(uvw_manifest_entry_count(m), 1);
  cr_assert_str_eq(uvw_value_as_string(uvw_manifest_entry_value(m, 0)), "y=%C3%A9", "x=%%FF dropped");
  uvw_manifest_free(m);
  wt_release();
}

Test(baggage, unprintable_foreign_members_are_not_forwarded) {
  const char *hdr = "a=1\r\nx-injected: 1,b=2,c=\xc3\xa9";
  uvw_manifest_t *m = decode(hdr);
  cr_assert_eq(uvw_manifest_entry_count(m), 1);
  cr_assert_str_eq(uvw_value_as_string(uvw_manifest_entry_value(m, 0)), "b=2");
  uvw_manifest_free(m);
}

Test(baggage, a_secret_stays_off_the_header_but_not_off_the_manifest) {
  const char *ns = plain_ns();
  uvw_var_t *secret = var_in(ns, "token"), *pub = var_in(ns, "tenant");
  cr_assert_eq(uvw_var_policy(secret), UVW_PROPAGATE_ALL);
  cr_assert(UVW_PROPAGATE_ALL & UVW_PROPAGATE_BAGGAGE, "on by default");
  cr_assert_eq(uvw_var_set_policy(secret, UVW_PROPAGATE_ALL & ~UVW_PROPAGATE_BAGGAGE), 0);
  uvw_context_t *ctx = wt_enter_new();
  wt_set(secret, uvw_value_cstring("s3cr3t"));
  wt_set(pub, uvw_value_cstring("acme"));
  char *text, want[128];
  cr_assert_eq(uvw_baggage_encode(NULL, &text), 0);
  snprintf(want, sizeof want, "%s.tenant=acme", ns);
  cr_assert_str_eq(text, want);
  uvw_free(text);
  void *bin;
  size_t len;
  cr_assert_eq(uvw_manifest_encode(NULL, &bin, &len), 0);
  wt_leave(ctx);
  uvw_manifest_t *m;
  cr_assert_eq(uvw_manifest_decode(bin, len, &m), 0);
  cr_assert_eq(uvw_manifest_entry_count(m), 2, "the manifest carries the secret");
  uvw_manifest_free(m);
  uvw_free(bin);
  /* Nor can a public header set it. */
  char hdr[128];
  snprintf(hdr, sizeof hdr, "%s.token=forged,%s.tenant=x", ns, ns);
  m = decode(hdr);
  cr_assert_eq(uvw_manifest_entry_count(m), 1);
  cr_assert_eq(uvw_manifest_entry_var(m, 0), pub);
  uvw_manifest_free(m);
  /* A restriction off the fork edges does not make forks filter. */
  cr_assert_not(uvw__var_any_restricted());
}

Test(baggage, encoding_follows_the_same_limits) {
  const char *ns = plain_ns();
  uvw_context_t *ctx = wt_enter_new();
  for (int i = 0; i < 200; i++) {
    char name[16];
    snprintf(name, sizeof name, "k%03d", i);
    uvw_var_t *v;
    cr_assert_eq(uvw_var_declare(ns, name, NULL, &v), 0);
    wt_set(v, uvw_value_cstring("v"));
  }
  uvw_var_t *big = var_in(ns, "big");
  char *s = malloc(5000);
  memset(s, 'b', 4999);
  s[4999] = '\0';
  wt_set(big, uvw_value_cstring(s));
  wt_capture();
  char *text;
  cr_assert_eq(uvw_baggage_encode(NULL, &text), 0);
  size_t members = 1;
  for (const char *p = text; *p; p++) members += *p == ',';
  cr_assert_eq(members, 180);
  /* The 4 KB member and 20 past 180: 21 warnings, reported as the first 8
   * and one summary counting the other 13 (warnings are bounded per
   * operation). */
  cr_assert_eq(wt_nwarnings, 9);
  cr_assert_str_eq(uvw_error_field(wt_warnings[8], "suppressed"), "13");
  cr_assert_null(strstr(text, "bbbb"));
  uvw_free(text);
  wt_release();
  free(s);
  wt_leave(ctx);
}
