/* A Node addon that hashes a file off the JS thread and keeps the caller's
 * uvwool context on every step: hashFile(path, done) opens and reads the
 * file with uvwool's fs wrappers on Node's loop, hashes each chunk on the
 * thread pool (uvw_to_thread), and calls done(err, result) back in the
 * context of the hashFile call. Each step writes a trace entry tagged with
 * the request id it reads from uvwool (the variable sample.hash/request_id,
 * declared in index.js), so a log line of any step names the request that
 * caused it, with nothing passed by hand.
 *
 * The hash is 64-bit FNV-1a (hex), chosen because a test can recompute it
 * in a few lines of JavaScript; a real addon would use its own. */
#include <fcntl.h>
#include <inttypes.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <uvwool/loop.h>
#include <uvwool/node.h>

#define CHUNK (64 * 1024)
#define TRACE_MAX 64 /* steps recorded; a longer file keeps counting, not recording */

typedef struct {
  uv_fs_t fs;           /* open, read, close: one at a time */
  uv_work_t work;       /* the pool step of the chunk just read */
  uv_loop_t *loop;      /* Node's */
  napi_env env;
  uvw_node_callback_t *done; /* done(err, result), in the hashFile call's context */
  uv_file file;
  int64_t offset;       /* bytes read so far */
  ssize_t chunk_len;    /* bytes in buf for the pool step */
  uint64_t hash;        /* FNV-1a state, touched by one step at a time */
  int err;              /* the first libuv error, 0 if none */
  const char *err_step; /* where it happened */
  size_t ntrace, steps;
  char trace[TRACE_MAX][96];
  char path[1024];
  char buf[CHUNK];
} hash_job_t;

static const uint64_t fnv_offset = 14695981039346656037ULL, fnv_prime = 1099511628211ULL;

/* Appends "<step>:<request id>" as the current context sees it. Runs on the
 * loop and on the pool thread (one step at a time, so no lock). */
static void trace(hash_job_t *job, const char *step) {
  char id[64];
  size_t len;
  uvw_var_t *var = uvw_var_find("sample.hash", "request_id");
  if (var == NULL || uvw_get_string(var, id, sizeof id, &len) < 0) snprintf(id, sizeof id, "-");
  job->steps++;
  if (job->ntrace < TRACE_MAX) snprintf(job->trace[job->ntrace++], sizeof job->trace[0], "%s:%s", step, id);
}

static void read_next(hash_job_t *job);
static void finish(hash_job_t *job);

/* Keeps the first error (err < 0) and where it happened. */
static void fail(hash_job_t *job, const char *step, int err) {
  if (job->err == 0 && err < 0) {
    job->err = err;
    job->err_step = step;
  }
}

static void closed(uv_fs_t *req) {
  hash_job_t *job = req->data;
  trace(job, "close");
  fail(job, "close", (int)req->result);
  uv_fs_req_cleanup(req);
  finish(job);
}

/* Ends the job, failed at `step` when err < 0: closes the file if it is
 * open, then finishes. */
static void stop(hash_job_t *job, const char *step, int err) {
  fail(job, step, err);
  if (job->file < 0) {
    finish(job);
    return;
  }
  int rc = uvw_fs_close(job->loop, &job->fs, job->file, closed);
  job->file = -1;
  if (rc < 0) {
    fail(job, "close", rc);
    finish(job);
  }
}

/* On a pool thread, in a detached fork of the read callback's context: the
 * request id is visible, and nothing written here reaches the caller. */
static void hash_chunk(uv_work_t *req) {
  hash_job_t *job = req->data;
  uint64_t h = job->hash;
  for (ssize_t i = 0; i < job->chunk_len; i++) {
    h ^= (unsigned char)job->buf[i];
    h *= fnv_prime;
  }
  job->hash = h;
  trace(job, "hash");
}

/* Back on the loop, in the context captured when the chunk was queued. */
static void chunk_hashed(uv_work_t *req, int status) {
  hash_job_t *job = req->data;
  if (status < 0) stop(job, "hash", status);
  else read_next(job);
}

static void chunk_read(uv_fs_t *req) {
  hash_job_t *job = req->data;
  ssize_t n = req->result;
  uv_fs_req_cleanup(req);
  trace(job, "read");
  if (n <= 0) {
    stop(job, "read", (int)n); /* 0: the end of the file */
    return;
  }
  job->offset += n;
  job->chunk_len = n;
  int rc = uvw_to_thread(job->loop, &job->work, hash_chunk, chunk_hashed);
  if (rc < 0) stop(job, "hash", rc);
}

static void read_next(hash_job_t *job) {
  uv_buf_t b = uv_buf_init(job->buf, sizeof job->buf);
  int rc = uvw_fs_read(job->loop, &job->fs, job->file, &b, 1, job->offset, chunk_read);
  if (rc < 0) stop(job, "read", rc);
}

static void opened(uv_fs_t *req) {
  hash_job_t *job = req->data;
  ssize_t fd = req->result;
  uv_fs_req_cleanup(req);
  trace(job, "open");
  if (fd < 0) {
    stop(job, "open", (int)fd);
    return;
  }
  job->file = (uv_file)fd;
  read_next(job);
}

/* ---- the answer to JavaScript --------------------------------------------- */

static napi_value js_string(napi_env env, const char *s) {
  napi_value v;
  napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  return v;
}

/* An Error like Node's fs errors: message "<CODE>: <text>, <step> '<path>'",
 * with code, errno, syscall and path. */
static napi_value js_error(hash_job_t *job) {
  napi_env env = job->env;
  char msg[1200];
  napi_value err, errnum;
  snprintf(msg, sizeof msg, "%s: %s, %s '%s'", uv_err_name(job->err), uv_strerror(job->err), job->err_step, job->path);
  napi_create_error(env, js_string(env, uv_err_name(job->err)), js_string(env, msg), &err);
  napi_create_int32(env, job->err, &errnum);
  napi_set_named_property(env, err, "errno", errnum);
  napi_set_named_property(env, err, "syscall", js_string(env, job->err_step));
  napi_set_named_property(env, err, "path", js_string(env, job->path));
  return err;
}

/* {digest, bytes, steps, trace}: trace is the first TRACE_MAX steps. */
static napi_value js_result(hash_job_t *job) {
  napi_env env = job->env;
  char digest[17];
  napi_value out, v, list;
  snprintf(digest, sizeof digest, "%016" PRIx64, job->hash);
  napi_create_object(env, &out);
  napi_set_named_property(env, out, "digest", js_string(env, digest));
  napi_create_int64(env, job->offset, &v);
  napi_set_named_property(env, out, "bytes", v);
  napi_create_uint32(env, (uint32_t)job->steps, &v);
  napi_set_named_property(env, out, "steps", v);
  napi_create_array_with_length(env, job->ntrace, &list);
  for (size_t i = 0; i < job->ntrace; i++) napi_set_element(env, list, (uint32_t)i, js_string(env, job->trace[i]));
  napi_set_named_property(env, out, "trace", list);
  return out;
}

/* On the loop: done(err, result) in the hashFile call's context (uvwool's
 * and every AsyncLocalStorage store of that call), then the job ends. */
static void finish(hash_job_t *job) {
  napi_handle_scope hs;
  napi_value argv[2];
  napi_open_handle_scope(job->env, &hs);
  if (job->err != 0) {
    argv[0] = js_error(job);
    napi_get_undefined(job->env, &argv[1]);
  } else {
    napi_get_null(job->env, &argv[0]);
    argv[1] = js_result(job);
  }
  uvw_node_callback_call(job->done, 2, argv, NULL);
  napi_close_handle_scope(job->env, hs);
  uvw_node_callback_free(job->done);
  free(job);
}

/* hashFile(path, done): starts the job and returns undefined; bad arguments
 * throw TypeError here, file errors reach done. */
static napi_value hash_file(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  size_t argc = 2, len;
  napi_valuetype t0, t1;
  uv_loop_t *loop;
  uvw_node_scope_t scope;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_typeof(env, argv[0], &t0) != napi_ok || napi_typeof(env, argv[1], &t1) != napi_ok ||
      t0 != napi_string || t1 != napi_function) {
    napi_throw_type_error(env, "UVW_EINVAL", "hashFile(path, done): path must be a string and done a function");
    return NULL;
  }
  hash_job_t *job = calloc(1, sizeof *job);
  if (job == NULL) {
    napi_throw_error(env, "UVW_ENOMEM", "hashFile: out of memory");
    return NULL;
  }
  if (napi_get_value_string_utf8(env, argv[0], job->path, sizeof job->path, &len) != napi_ok ||
      len >= sizeof job->path - 1 || napi_get_uv_event_loop(env, &loop) != napi_ok) {
    free(job);
    napi_throw_type_error(env, "UVW_EINVAL", "hashFile: path too long");
    return NULL;
  }
  job->loop = loop;
  job->env = env;
  job->file = -1;
  job->hash = fnv_offset;
  job->fs.data = job->work.data = job;
  /* Inside the scope the JS context is the C context: the callback and the
   * open capture it, and every later step is registered from a callback
   * running in what its registration captured. */
  int rc = uvw_node_scope_open(env, &scope);
  if (rc == 0) {
    rc = uvw_node_callback_new(env, argv[1], "uvwool.sample.hashFile", &job->done);
    if (rc == 0 && (rc = uvw_fs_open(loop, &job->fs, job->path, O_RDONLY, 0, opened)) < 0)
      uvw_node_callback_free(job->done);
    uvw_node_scope_close(&scope);
  }
  if (rc < 0) {
    const uvw_error_t *e = uvw_last_error();
    napi_throw_error(env, uvw_err_name(rc), e ? uvw_error_message(e) : uvw_strerror(rc));
    free(job);
  }
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value f;
  if (napi_create_function(env, "hashFile", NAPI_AUTO_LENGTH, hash_file, NULL, &f) != napi_ok ||
      napi_set_named_property(env, exports, "hashFile", f) != napi_ok)
    return NULL;
  return exports;
}
