/* fs.c: what a store shared by several processes needs from the file
 * system, with the guarantees (or the calls) Lua's io library lacks:
 *   core.lock_file(path) -> lock   an exclusive flock(2) on path (created if
 *                                  missing); lock:unlock(), also on __gc and
 *                                  __close. The kernel drops the lock if the
 *                                  process dies, so nothing stays locked.
 *   core.create_exclusive(path) -> true | false | nil, err
 *                                  O_CREAT|O_EXCL: true for the one caller
 *                                  that created it, false if it existed.
 *   core.mkdir(path) -> true | false (existed) | nil, err
 *   core.list_dir(path) -> { names } | nil, err   ("." and ".." left out) */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
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

static int l_mkdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  if (mkdir(path, 0700) == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (errno == EEXIST) {
    lua_pushboolean(L, 0);
    return 1;
  }
  {
    char msg[256];
    snprintf(msg, sizeof msg, "cannot create directory %.160s: %s", path, strerror(errno));
    return pa_error_return(L, "config", msg);
  }
}

static int l_list_dir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  pa_buf *names = pa_buf_push_owned(L);
  DIR *dir;
  struct dirent *e;
  size_t pos;
  lua_Integer n = 0;
  int ok = 1;
  dir = opendir(path);
  if (dir == NULL) {
    char msg[256];
    snprintf(msg, sizeof msg, "cannot list %.180s: %s", path, strerror(errno));
    return pa_error_return(L, "config", msg);
  }
  /* Names go into C memory first and the directory is closed before any
   * Lua call, so a memory error in Lua cannot leak the DIR. */
  while (ok && (e = readdir(dir)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    ok = pa_buf_add(names, e->d_name, strlen(e->d_name) + 1);
  }
  closedir(dir);
  if (!ok) return luaL_error(L, "out of memory");
  lua_newtable(L);
  for (pos = 0; pos < names->len; pos += strlen(names->p + pos) + 1) {
    lua_pushstring(L, names->p + pos);
    lua_rawseti(L, -2, ++n);
  }
  return 1;
}

void pa_fs_open(lua_State *L);
void pa_fs_open(lua_State *L) {
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
  lua_pushcfunction(L, l_mkdir);
  lua_setfield(L, -2, "mkdir");
  lua_pushcfunction(L, l_list_dir);
  lua_setfield(L, -2, "list_dir");
}
