/* fslock.c: what a store shared by several processes needs from the file
 * system, with the guarantees Lua's io library cannot give:
 *   core.lock_file(path) -> lock   an exclusive flock(2) on path (created if
 *                                  missing); lock:unlock(), also on __gc and
 *                                  __close. The kernel drops the lock if the
 *                                  process dies, so nothing stays locked.
 *   core.create_exclusive(path) -> true | false | nil, err
 *                                  O_CREAT|O_EXCL: true for the one caller
 *                                  that created it, false if it existed. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "compat.h"
#include "errors.h"

#define PA_LOCK_MT "planapi.file_lock"

typedef struct {
  int fd;
} pa_lock;

static int lock_release(lua_State *L) {
  pa_lock *k = (pa_lock *)luaL_checkudata(L, 1, PA_LOCK_MT);
  if (k->fd >= 0) { /* idempotent: unlock, __gc and __close all end here */
    flock(k->fd, LOCK_UN);
    close(k->fd);
    k->fd = -1;
  }
  return 0;
}

static int l_lock_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  pa_lock *k = (pa_lock *)lua_newuserdatauv(L, sizeof *k, 0);
  int r;
  k->fd = -1;
  luaL_setmetatable(L, PA_LOCK_MT);
  k->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (k->fd < 0) {
    char msg[256];
    snprintf(msg, sizeof msg, "cannot open lock file %.180s: %s", path, strerror(errno));
    return pa_error_return(L, "config", msg);
  }
  do {
    r = flock(k->fd, LOCK_EX);
  } while (r != 0 && errno == EINTR);
  if (r != 0) {
    char msg[256];
    snprintf(msg, sizeof msg, "cannot lock %.180s: %s", path, strerror(errno));
    close(k->fd);
    k->fd = -1;
    return pa_error_return(L, "config", msg);
  }
  return 1;
}

static int l_create_exclusive(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    close(fd);
    lua_pushboolean(L, 1);
    return 1;
  }
  if (errno == EEXIST) {
    lua_pushboolean(L, 0);
    return 1;
  }
  {
    char msg[256];
    snprintf(msg, sizeof msg, "cannot create %.180s: %s", path, strerror(errno));
    return pa_error_return(L, "config", msg);
  }
}

void pa_fslock_open(lua_State *L);
void pa_fslock_open(lua_State *L) {
  luaL_newmetatable(L, PA_LOCK_MT);
  lua_pushcfunction(L, lock_release);
  lua_setfield(L, -2, "__gc");
#if LUA_VERSION_NUM >= 504
  lua_pushcfunction(L, lock_release);
  lua_setfield(L, -2, "__close");
#endif
  lua_newtable(L);
  lua_pushcfunction(L, lock_release);
  lua_setfield(L, -2, "unlock");
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_pushcfunction(L, l_lock_file);
  lua_setfield(L, -2, "lock_file");
  lua_pushcfunction(L, l_create_exclusive);
  lua_setfield(L, -2, "create_exclusive");
}
