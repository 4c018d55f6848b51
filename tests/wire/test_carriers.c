/* Carriers: base64url text, W3C baggage, the UVWOOL_CHAIN environment
 * variable (with a real child process). */
#include <sys/wait.h>
#include <unistd.h>

#include "context.h"
#include "wiretest.h"

/* An independent base64url encoder (RFC 4648 section 5, no padding). */
static char *ref_b64url(const uint8_t *p, size_t n) {
  static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  char *out = malloc(n * 2 + 4);
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    acc = acc << 8 | p[i];
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out[o++] = a[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out[o++] = a[(acc << (6 - bits)) & 63];
  out[o] = '\0';
  return out;
}

Test(carriers, text_round_trip) {
  uvw_var_t *a = tu_var("a", NULL), *b = tu_var("b", NULL);
  uvw_context_t *sender = wt_enter_new();
  wt_set(a, uvw_value_cstring("hello, world"));
  wt_set(b, uvw_value_int(-77));
  char *text;
  cr_assert_eq(uvw_text_encode(NULL, &text), 0);
  void *bytes;
  size_t len;
  cr_assert_eq(uvw_manifest_encode(NULL, &bytes, &len), 0);
  char *want = ref_b64url(bytes, len);
  cr_assert_str_eq(text, want);
  cr_assert_null(strchr(text, '='));
  char sid[33];
  uvw_context_chain_id(sender, sid);
  wt_leave(sender);
  uvw_manifest_t *m;
  cr_assert_eq(uvw_text_decode(text, strlen(text), &m), 0);
  uvw_context_t *receiver = wt_enter_new();
  cr_assert_eq(uvw_manifest_mount(m), 0);
  char rid[33];
  uvw_context_chain_id(receiver, rid);
  cr_assert_str_eq(rid, sid);
  cr_assert_str_eq(uvw_value_as_string(uvw_context_lookup(receiver, a)), "hello, world");
  cr_assert_eq(uvw_value_as_int(uvw_context_lookup(receiver, b)), -77);
  wt_leave(receiver);
  uvw_manifest_free(m);
  /* Padding is tolerated. */
  size_t tl = strlen(text);
  char *padded = malloc(tl + 3);
  memcpy(padded, text, tl);
  size_t pad = (4 - tl % 4) % 4;
  memset(padded + tl, '=', pad);
  cr_assert_eq(uvw_text_decode(padded, tl + pad, &m), 0);
  uvw_manifest_free(m);
  free(padded);
  free(want);
  uvw_free(bytes);
  uvw_free(text);
}

Test(carriers, text_rejects_bad_characters_and_lengths) {
  uvw_manifest_t *m;
  cr_assert_eq(uvw_text_decode("abc+", 4, &m), UVW_EMALFORMED, "'+' is base64, not base64url");
  cr_assert_str_eq(uvw_error_field(uvw_last_error(), "offset"), "3");
  cr_assert_eq(uvw_text_decode("ab cd", 5, &m), UVW_EMALFORMED);
  cr_assert_eq(uvw_text_decode("abcde", 5, &m), UVW_EMALFORMED, "5 characters cannot be base64url");
  cr_assert_eq(uvw_text_decode("", 0, &m), 0, "empty text: an empty manifest");
  cr_assert_eq(uvw_manifest_entry_count(m), 0);
  uvw_manifest_free(m);
  cr_assert_eq(uvw_text_decode("____", 4, &m), UVW_EMALFORMED, "valid base64url, not a manifest");
}

Test(carriers, baggage_rendering_follows_the_w3c_encoding) {
  uvw_var_t *s, *n, *o;
  cr_assert_eq(uvw_var_declare("svc.a", "user id", NULL, &s), 0);
  cr_assert_eq(uvw_var_declare("svc.a", "num", NULL, &n), 0);
  cr_assert_eq(uvw_var_declare("b", "x.y", NULL, &o), 0);
  uvw_context_t *ctx = wt_enter_new();
  wt_set(s, uvw_value_cstring("a b,c;d%\xc3\xa9\"q"));
  wt_set(n, uvw_value_int(3)); /* not a string: not in baggage */
  wt_set(o, uvw_value_cstring("plain=ok"));
  char *text;
  cr_assert_eq(uvw_baggage_encode(NULL, &text), 0);
  cr_assert_str_eq(text, "b.x.y=plain=ok,svc%2Ea.user%20id=a%20b%2Cc%3Bd%25%C3%A9%22q");
  wt_leave(ctx);
  uvw_manifest_t *m;
  cr_assert_eq(uvw_baggage_decode(text, strlen(text), &m), 0);
  cr_assert_eq(uvw_manifest_entry_count(m), 2);
  cr_assert_eq(uvw_manifest_entry_var(m, 0), o);
  cr_assert_str_eq(uvw_value_as_string(uvw_manifest_entry_value(m, 0)), "plain=ok");
  cr_assert_eq(uvw_manifest_entry_var(m, 1), s);
  cr_assert_str_eq(uvw_value_as_string(uvw_manifest_entry_value(m, 1)), "a b,c;d%\xc3\xa9\"q");
  cr_assert_eq(uvw_manifest_id(m, (char[33]){0}), UVW_EINVAL, "baggage carries no chain id");
  /* Mounted into an unarmed context: arms with a fresh id. */
  ctx = wt_enter_new();
  cr_assert_eq(uvw_manifest_mount(m), 0);
  cr_assert(uvw_context_is_armed(ctx));
  cr_assert_str_eq(uvw_value_as_string(uvw_context_lookup(ctx, s)), "a b,c;d%\xc3\xa9\"q");
  wt_leave(ctx);
  uvw_manifest_free(m);
  uvw_free(text);
}

/* Other systems' members are kept, as received (properties included), in
 * the ("uvwool", "baggage") entry; a key seen twice: the last one wins, as
 * in OpenTelemetry. */
Test(carriers, baggage_parsing_keeps_other_systems_and_their_properties) {
  const char *hdr = "userId=alice, svc%2Ea.user%20id = a%20b ;prop=1;flag , bad.esc=%zz,serverNode=DF%2028,"
                    "lone.k=v1,lone.k=v2";
  uvw_var_t *s, *l, *bad;
  cr_assert_eq(uvw_var_declare("svc.a", "user id", NULL, &s), 0);
  cr_assert_eq(uvw_var_declare("lone", "k", NULL, &l), 0);
  cr_assert_eq(uvw_var_declare("bad", "esc", NULL, &bad), 0);
  uvw_var_t *foreign = uvw_var_find("uvwool", "baggage");
  cr_assert_not_null(foreign);
  wt_capture();
  uvw_manifest_t *m;
  cr_assert_eq(uvw_baggage_decode(hdr, strlen(hdr), &m), 0);
  cr_assert_eq(uvw_manifest_entry_count(m), 3, "svc.a/user id, lone/k (last wins) and the foreign members");
  cr_assert_eq(uvw_manifest_entry_var(m, 0), l);
  cr_assert_str_eq(uvw_value_as_string(uvw_manifest_entry_value(m, 0)), "v2");
  cr_assert_eq(uvw_manifest_entry_var(m, 1), s);
  cr_assert_str_eq(uvw_value_as_string(uvw_manifest_entry_value(m, 1)), "a b");
  cr_assert_eq(uvw_manifest_entry_var(m, 2), foreign);
  cr_assert_str_eq(uvw_value_as_string(uvw_manifest_entry_value(m, 2)), "userId=alice,serverNode=DF%2028");
  cr_assert_eq(wt_nwarnings, 1, "the bad escape in a value of ours");
  cr_assert_str_eq(uvw_error_field(wt_warnings[0], "name"), "esc");
  cr_assert_null(uvw_var_find("userId", ""), "a key without a dot is another system's");
  uvw_manifest_free(m);
  wt_release();
}

Test(carriers, baggage_respects_the_w3c_size_limit) {
  const char *ns = tu_namespace();
  uvw_context_t *ctx = wt_enter_new();
  char big[3000];
  memset(big, 'v', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  for (int i = 0; i < 4; i++) {
    char name[32];
    snprintf(name, sizeof name, "k%d", i);
    uvw_var_t *v;
    cr_assert_eq(uvw_var_declare(ns, name, NULL, &v), 0);
    wt_set(v, uvw_value_cstring(big));
  }
  wt_capture();
  char *text;
  cr_assert_eq(uvw_baggage_encode(NULL, &text), 0);
  cr_assert_leq(strlen(text), 8192);
  cr_assert_eq(wt_nwarnings, 2, "two of four 3 KB members fit in 8192 bytes");
  cr_assert_str_eq(uvw_error_field(wt_warnings[0], "name"), "k2");
  uvw_free(text);
  wt_release();
  wt_leave(ctx);
}

Test(carriers, env_carrier_reaches_a_child_process) {
  uvw_var_t *a = tu_var("a", NULL), *r = tu_var("r", NULL);
  uvw_context_t *ctx = wt_enter_new();
  wt_set(a, uvw_value_cstring("for the child"));
  wt_set_reset(r);
  char *env;
  cr_assert_eq(uvw_env_encode(NULL, &env), 0);
  cr_assert_eq(strncmp(env, "UVWOOL_CHAIN=", 13), 0);
  char pid_id[33];
  uvw_context_chain_id(ctx, pid_id);
  pid_t pid = fork();
  if (pid == 0) {
    /* The child: a fresh process image would start here. */
    putenv(env);
    uvw_context_t *c = uvw_context_new();
    uvw_context_enter(c);
    int ok = uvw_env_mount() == 0;
    char cid[33];
    ok = ok && uvw_context_chain_id(c, cid) == 0 && strcmp(cid, pid_id) != 0;   /* own id */
    uvw_value_t *v = uvw_context_lookup(c, a);
    ok = ok && v && strcmp(uvw_value_as_string(v), "for the child") == 0;
    ok = ok && uvw_context_pending_reset_count(c) == 0;                         /* like a fork */
    _exit(ok ? 0 : 1);
  }
  int status;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child mounted the parent's values");
  uvw_free(env);
  wt_leave(ctx);
  /* Unarmed: nothing to render; absent variable: nothing to mount. */
  ctx = wt_enter_new();
  cr_assert_eq(uvw_env_encode(NULL, &env), 0);
  cr_assert_null(env);
  unsetenv(UVW_ENV_CHAIN);
  cr_assert_eq(uvw_env_mount(), 0);
  cr_assert(!uvw_context_is_armed(ctx));
  setenv(UVW_ENV_CHAIN, "!!", 1);
  cr_assert_eq(uvw_env_mount(), UVW_EMALFORMED);
  cr_assert(!uvw_context_is_armed(ctx));
  wt_leave(ctx);
}

/* Regression (found by fuzz_text): many members of ours with bad values
 * overflowed the decoder's string bookkeeping. */
Test(carriers, many_bad_baggage_values_are_counted_in_one_summary) {
  char hdr[4096] = "";
  uvw_var_t *v;
  for (int i = 0; i < 100; i++) {
    char m[64];
    snprintf(m, sizeof m, "k%d", i);
    cr_assert_eq(uvw_var_declare("ns", m, NULL, &v), 0); /* ours: undeclared keys are foreign */
    snprintf(m, sizeof m, "%sns.k%d=%%z", i ? "," : "", i);
    strcat(hdr, m);
  }
  cr_assert_eq(uvw_var_declare("ns", "ok", NULL, &v), 0);
  strcat(hdr, ",ns.ok=fine");
  wt_capture();
  uvw_manifest_t *m;
  cr_assert_eq(uvw_baggage_decode(hdr, strlen(hdr), &m), 0);
  /* The first eight, then one summary counting the other 92 (a header of
   * thousands of bad members must not write thousands of log lines). */
  cr_assert_eq(wt_nwarnings, 9, "the first few and a summary");
  cr_assert_str_eq(uvw_error_field(wt_warnings[8], "suppressed"), "92");
  cr_assert_eq(uvw_manifest_entry_count(m), 1);
  cr_assert_str_eq(uvw_value_as_string(uvw_manifest_entry_value(m, 0)), "fine");
  uvw_manifest_free(m);
  wt_release();
}
