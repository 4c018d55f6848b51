/* Allocation-failure injection across the wire layer: with any one
 * allocation failing, every call returns UVW_ENOMEM (never a crash, never
 * a half result) and no live context changes. */
#include "context.h"
#include "wiretest.h"

typedef int (*op_fn)(void *arg);

/* Runs op with the Nth allocation failing, for N = 1.. until it succeeds. */
static void sweep(op_fn op, void *arg, uvw_context_t *live, const char *what) {
  const void *chain = live ? uvw_context_chain(live) : NULL;
  size_t size = live ? uvw_context_size(live) : 0;
  for (long n = 1; n < 5000; n++) {
    tu_fail_alloc_after(n);
    int rc = op(arg);
    tu_restore_alloc();
    if (live) {
      cr_assert_eq(uvw_context_chain(live), chain, "%s, allocation %ld: live chain untouched", what, n);
      cr_assert_eq(uvw_context_size(live), size);
    }
    if (rc == 0) return;
    cr_assert_eq(rc, UVW_ENOMEM, "%s, allocation %ld: rc %d (%s)", what, n, rc,
                 uvw_error_message(uvw_last_error()));
  }
  cr_assert_fail("%s never succeeded", what);
}

static void *g_bytes;
static size_t g_len;

static int op_decode(void *arg) {
  (void)arg;
  uvw_manifest_t *m;
  int rc = uvw_manifest_decode(g_bytes, g_len, &m);
  if (rc == 0) uvw_manifest_free(m);
  return rc;
}
static int op_encode(void *arg) {
  void *p;
  size_t len;
  int rc = uvw_manifest_encode(arg, &p, &len);
  if (rc == 0) uvw_free(p);
  return rc;
}
static int op_frame(void *arg) {
  uvw_frame_t *f;
  int rc = arg ? uvw_frame_decode_response(g_bytes, g_len, &f) : uvw_frame_decode_request(g_bytes, g_len, &f);
  if (rc == 0) uvw_frame_free(f);
  return rc;
}
static int op_text(void *arg) {
  uvw_manifest_t *m;
  int rc = uvw_text_decode(arg, strlen(arg), &m);
  if (rc == 0) uvw_manifest_free(m);
  return rc;
}
static int op_baggage(void *arg) {
  uvw_manifest_t *m;
  int rc = uvw_baggage_decode(arg, strlen(arg), &m);
  if (rc == 0) uvw_manifest_free(m);
  return rc;
}
static int op_baggage_encode(void *arg) {
  char *s;
  int rc = uvw_baggage_encode(arg, &s);
  if (rc == 0) uvw_free(s);
  return rc;
}

Test(wire_alloc, encode_decode_frames_and_carriers) {
  uvw_var_t *a = tu_var("a", NULL), *b = tu_var("b", NULL), *c = tu_var("c", NULL);
  const char *ns = uvw_var_namespace(a);
  uvw_context_t *ctx = wt_enter_new();
  wt_set(a, uvw_value_cstring("alpha"));
  wt_set(b, uvw_value_int(2));
  wt_set_reset(c);
  cr_assert_eq(uvw_context_exit(ctx), 0);
  sweep(op_encode, ctx, ctx, "manifest encode");
  sweep(op_baggage_encode, ctx, ctx, "baggage encode");

  /* The live context the decodes must not touch. */
  cr_assert_eq(uvw_context_enter(ctx), 0);
  wt_manifest_t w;
  wt_init(&w, "0123456789abcdef0123456789abcdef");
  wt_string(wt_entry(&w, ns, "a", 1), "x");
  wt_entry(&w, ns, "b", 0);
  wt_string(wt_entry(&w, ns, "new_stub", 1), "y");
  wt_string(wt_entry(&w, ns, "a", 1), "dup"); /* a warning to build */
  g_bytes = wt_pack_manifest(&w, &g_len);
  wt_capture();
  sweep(op_decode, NULL, ctx, "manifest decode");
  char *text = NULL;
  {
    uint8_t *bytes = g_bytes;
    static const char a64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    text = malloc(g_len * 2 + 4);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < g_len; i++) {
      acc = acc << 8 | bytes[i];
      bits += 8;
      while (bits >= 6) text[o++] = a64[(acc >> (bits -= 6)) & 63];
    }
    if (bits) text[o++] = a64[(acc << (6 - bits)) & 63];
    text[o] = '\0';
  }
  sweep(op_text, text, ctx, "text decode");
  char bag[256];
  snprintf(bag, sizeof bag, "%s.a=v%%20w,%s.q=%%zz,%s.a=dup,other=1", ns, ns, ns);
  sweep(op_baggage, bag, ctx, "baggage decode");
  free(text);
  free(g_bytes);

  /* Frames: an Exception with an error chain and a manifest. */
  uvw_frame_t *f = uvw_frame_new(UVW_FRAME_EXCEPTION, 9);
  uvw_error_t *e = uvw_error_ref(NULL);
  cr_assert_eq(uvw_get(uvw_var_find("nope", "nope") ? a : tu_var("unbound", NULL), &(uvw_value_t *){0}),
               UVW_ELOOKUP);
  e = uvw_error_ref(uvw_last_error());
  uvw_frame_set_error(f, e);
  uvw_frame_set_manifest(f, NULL);
  cr_assert_eq(uvw_frame_encode(f, &g_bytes, &g_len), 0);
  sweep(op_frame, (void *)1, ctx, "response frame decode");
  uvw_free(g_bytes);
  /* The same with a broken manifest: the deferred error is built too. */
  static const uint8_t junk[] = {0x0a, 0x01, 'x'};
  uvw_frame_set_manifest_bytes(f, junk, sizeof junk);
  cr_assert_eq(uvw_frame_encode(f, &g_bytes, &g_len), 0);
  sweep(op_frame, (void *)1, ctx, "response frame decode, bad manifest");
  uvw_free(g_bytes);
  uvw_frame_free(f);
  uvw_error_unref(e);
  f = uvw_frame_new(UVW_FRAME_TASK, 1);
  uvw_frame_set_routine(f, "r");
  uvw_value_t *arg = uvw_value_cstring("arg");
  uvw_frame_add_arg(f, arg);
  uvw_frame_add_arg(f, arg);
  cr_assert_eq(uvw_frame_encode(f, &g_bytes, &g_len), 0);
  sweep(op_frame, NULL, ctx, "request frame decode");
  uvw_free(g_bytes);
  uvw_frame_free(f);
  uvw_value_unref(arg);
  wt_release();
  wt_leave(ctx);
}
