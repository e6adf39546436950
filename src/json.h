/* json.h: JSON encode (ours, deterministic) and decode (private lua-cjson). */
#ifndef PLANAPI_JSON_H
#define PLANAPI_JSON_H

#include "buf.h"
#include "compat.h"

/* Append the JSON form of the value at idx to out; raises a config error
 * naming the path of a value that has no JSON form. */
void pa_json_encode(lua_State *L, int idx, pa_buf *out);
/* Decode the string at idx: push the decoded value and return 1, or push a
 * message and return 0.
 * Every array is marked (planapi.array), empty ones too; integral floats
 * are integers; a null member of an object is left out unless keep_nulls
 * (null items of arrays stay planapi.null: their positions matter). */
int pa_json_decode(lua_State *L, int idx, int keep_nulls);
/* The same for a caller that keeps what every decode needs at hand (as
 * upvalues, say), so that no decode looks them up by name in the registry:
 * array_mt and cjson_decode are where it keeps the two values that
 * pa_json_push_decoders pushes (the array metatable, then cjson's decode). */
int pa_json_decode_with(lua_State *L, int idx, int keep_nulls, int array_mt, int cjson_decode);
void pa_json_push_decoders(lua_State *L);
/* The nulls option at idx (nil, "absent", "keep" or a table with .nulls):
 * 1 to keep nulls; raises a config error for anything else. */
int pa_json_keep_nulls(lua_State *L, int idx);
/* Register json_encode, json_decode, array, is_array, array_mt and null
 * into the module table on top of the stack. */
void pa_json_open(lua_State *L);

#endif
