/* errors.h: the one error type every planapi layer returns.
 * An error is a plain Lua table with the metatable "planapi.error":
 * kind, message, status, code, retryable, retry_after, operation, remaining. */
#ifndef PLANAPI_ERRORS_H
#define PLANAPI_ERRORS_H

#include "compat.h"

#define PA_ERROR_MT "planapi.error"

/* Push a new error table with kind, message and retryable = false. */
void pa_error_push(lua_State *L, const char *kind, const char *message);
/* Push nil and a new error: the `return nil, err` convention. Returns 2. */
int pa_error_return(lua_State *L, const char *kind, const char *message);
/* Static analysers cannot see that lua_error never returns; this tells
 * clang's analyser (cppcheck learns it from tools/lint/planapi.cfg). */
#if defined(__clang_analyzer__)
#define PA_ANALYZER_NORETURN __attribute__((analyzer_noreturn))
#else
#define PA_ANALYZER_NORETURN
#endif

/* Raise a "config" error object: an argument mistake. Never returns. */
int pa_error_raise(lua_State *L, const char *fmt, ...) PA_ANALYZER_NORETURN;
/* 1 when kind is one of the documented kinds. */
int pa_error_kind_valid(const char *kind);
/* Register the metatable and put error(), is_error() and kinds into the table on top. */
void pa_errors_open(lua_State *L);

#endif
