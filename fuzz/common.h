/* common.h: what the five libFuzzer targets share (fuzz/common.c).
 *
 * A fuzz target is a Lua host: it links liblua (the module never does),
 * creates one lua_State, opens the C core into package.loaded["planapi.core"]
 * with luaL_requiref, and per input calls into it under lua_pcall. */
#ifndef PLANAPI_FUZZ_COMMON_H
#define PLANAPI_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The one Lua state of the process, made on first use: standard libraries,
 * package.path to <repo>/lua, package.cpath with lua-cjson's directory, and
 * the core opened as "planapi.core". The repository root is $PLANAPI_ROOT,
 * else the path compiled in by tools/run-fuzz (-DPA_FUZZ_ROOT=...). */
lua_State *fz_state(void);

/* Load a Lua chunk (the target's oracle), call it with the core table and
 * return a registry reference to the function it returns. Aborts on error. */
int fz_chunk(lua_State *L, const char *name, const char *source);

/* Call the function under registry reference fn with nargs arguments
 * already pushed; an error raised by it is a finding: print it and abort(). */
void fz_call_or_abort(lua_State *L, int fn, int nargs, const char *what);

/* End of one input: drop the stack, and every FZ_GC_EVERY inputs run a full
 * collection so that the heap stays flat over millions of inputs. Every
 * input, because libFuzzer counts mallocs and frees per input: when they
 * differ it re-runs the input under LeakSanitizer (a whole-heap scan, ~8 ms)
 * up to 1000 times and then gives up leak detection for the run. Collecting
 * the input's garbage before it ends keeps the counts equal, so leak
 * detection stays on for the whole run at a small cost (the live heap is a
 * few hundred kB). */
#ifndef FZ_GC_EVERY
#define FZ_GC_EVERY 1
#endif
void fz_done(lua_State *L);

/* One input of a target whose oracle takes the input's bytes as a string:
 * call the oracle under reference fn with them, then fz_done. Returns 0. */
int fz_feed_bytes(int fn, const uint8_t *data, size_t size, const char *what);

/* Print a message and abort(): libFuzzer saves the input as a crash. */
void fz_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* Lua line coverage as libFuzzer extra counters (liblua itself carries no
 * coverage instrumentation, so without this a target whose logic is in Lua
 * looks flat to the fuzzer). Edges between (source, line) pairs of the
 * Lua files loaded (not of chunks given as strings, like the oracles). */
void fz_lua_coverage(lua_State *L);

/* A FuzzedDataProvider in C: integral values from the front, so that the
 * structure of a generated value stays stable while the fuzzer mutates the
 * bytes it consumes. Past the end everything reads as zero. */
typedef struct {
  const uint8_t *p;
  size_t left;
} fz_bytes;

uint8_t fz_u8(fz_bytes *b);
int fz_bool(fz_bytes *b);
uint64_t fz_u64(fz_bytes *b);
/* An integer in [0, n) (n > 0). */
unsigned fz_below(fz_bytes *b, unsigned n);
/* Up to max bytes: the length first, then the bytes (fewer at the end). */
const char *fz_take(fz_bytes *b, size_t max, size_t *len);

#endif
