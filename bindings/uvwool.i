/* The language-neutral SWIG interface of uvwool's public C API: the wrapped
 * declarations, the names they take in every language and who owns each
 * object. No language code lives here: each language's file
 * (bindings/<lang>/uvwool_<lang>.i) declares the module, the typemaps that
 * turn uvwool values, status codes and out-parameters into that language's
 * values, return values and exceptions, then includes this file. */

%{
#include "uvwool.h"
%}

/* The C prefix is redundant in a module: core.get, core.set, ... */
%rename("%(strip:[uvw_])s") "";

/* ---- opaque types and who owns them -------------------------------------------
 * Variables live for the process: the language never owns them. Tokens and
 * contexts are owned by the language object that holds them; its collector
 * runs these destructors. */
typedef struct uvw_var_s uvw_var_t;
typedef struct uvw_token_s uvw_token_t;
%nodefaultctor uvw_token_s;
struct uvw_token_s {};
%extend uvw_token_s {
  ~uvw_token_s() { uvw_token_free($self); }
}
typedef struct uvw_context_s uvw_context_t;
%nodefaultctor uvw_context_s;
struct uvw_context_s {};
%extend uvw_context_s {
  ~uvw_context_s() { uvw_context_unref($self); }
}

/* ---- the wrapped subset of uvwool.h ------------------------------------- */
const char *uvw_version_string(void);

typedef enum uvw_error_kind_e uvw_error_kind_t;
uvw_error_kind_t uvw_error_kind_from_name(const char *name);
int uvw_error_kind_is(uvw_error_kind_t kind, uvw_error_kind_t ancestor);

int uvw_var_declare(const char *ns, const char *name, uvw_value_t *default_value, uvw_var_t **out);
/* Borrowed (variables live for the process), NULL when (ns, name) is unknown:
 * how another interpreter state of the process reaches a variable that one
 * state declared, without a collision. */
uvw_var_t *uvw_var_find(const char *ns, const char *name);
const char *uvw_var_namespace(const uvw_var_t *var);
const char *uvw_var_name(const uvw_var_t *var);
int uvw_get(uvw_var_t *var, uvw_value_t **out);
int uvw_get_or(uvw_var_t *var, uvw_value_t *fallback, uvw_value_t **out);
int uvw_set(uvw_var_t *var, uvw_value_t *value, uvw_token_t **token_out);
int uvw_reset(uvw_var_t *var, uvw_token_t *token);

uvw_context_t *uvw_context_new(void);
uvw_context_t *uvw_context_copy_current(void);

