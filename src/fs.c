/* fs.c: what a store shared by several processes needs from the file
 * system, with the guarantees (or the calls) Lua's io library lacks:
 *   core.lock_file(path) -> lock   an exclusive flock(2) on path (created if
 *                                  missing); lock:unlock(), also on __gc and
 *                                  __close. The kernel drops the lock if the
 *                                  process dies, so nothing stays locked.
 *   core.try_lock_file(path) -> lock | false | nil, err
 *                                  the same without waiting: false while
 *                                  another open file holds the lock.
 *   core.create_exclusive(path) -> true | false | nil, err
 *                                  O_CREAT|O_EXCL: true for the one caller
 *                                  that created it, false if it existed.
 *   core.mkdir(path) -> true | false (existed) | nil, err
 *   core.list_dir(path) -> { names } | nil, err   ("." and ".." left out)
 *   core.write_file_durably(path, text) -> true | nil, err
 *                                  a temporary file of its own beside path
 *                                  written in full, fsync'd, renamed
 *                                  over path, and the folder fsync'd: after
 *                                  true the new content survives a crash or a
 *                                  power loss; after nil, err path still holds
 *                                  its previous content (disk full, EFBIG...).
 *   core.open_output(path[, keep]) -> out | nil, err
 *                                  an export's output: created (or emptied)
 *                                  without keep; with keep, cut to its first
 *                                  keep bytes (what a saved cursor vouches
 *                                  for) and appended to. out:write(s),
 *                                  out:sync(), out:close() -> true | nil, err;
 *                                  out:size() -> the bytes written so far.
 *   core.isatty(fd) -> bool         isatty(3), for the command line: asking a
 *                                  child (`test -t`) would have system(3)
 *                                  ignore Ctrl-C while it runs. */
#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "compat.h"
#include "errors.h"
#include "fs.h"
#include "luax.h"

#define PA_LOCK_MT "planapi.file_lock"
#define PA_OUTPUT_MT "planapi.output_file"

/* nil and an io error (a runtime failure of the file system, never
 * the caller's mistake) "cannot <what> <path>: <strerror(err)>". */
static int io_failure(lua_State *L, const char *what, const char *path, int err) {
  char msg[320];
  snprintf(msg, sizeof msg, "cannot %s %.200s: %s", what, path, strerror(err));
  return pa_error_return(L, "io", msg);
}

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

/* An exclusive flock on path; with LOCK_NB in how, false when another
 * holds it (a cache's waiters poll, so nginx's worker is never blocked). */
static int lock_file(lua_State *L, int how) {
  const char *path = luaL_checkstring(L, 1);
  pa_lock *k = (pa_lock *)lua_newuserdatauv(L, sizeof *k, 0);
  int r;
  k->fd = -1;
  luaL_setmetatable(L, PA_LOCK_MT);
  k->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (k->fd < 0) return io_failure(L, "open the lock file", path, errno);
  do {
    r = flock(k->fd, how);
  } while (r != 0 && errno == EINTR);
  if (r != 0) {
    int err = errno;
    close(k->fd);
    k->fd = -1;
    if (err == EWOULDBLOCK) {
      lua_pushboolean(L, 0);
      return 1;
    }
    return io_failure(L, "lock", path, err);
  }
  return 1;
}

static int l_lock_file(lua_State *L) { return lock_file(L, LOCK_EX); }

static int l_try_lock_file(lua_State *L) { return lock_file(L, LOCK_EX | LOCK_NB); }

/* true when made, false when it was there already, else nil and the error. */
static int made_or_there(lua_State *L, int made, const char *what, const char *path) {
  if (made || errno == EEXIST) {
    lua_pushboolean(L, made);
    return 1;
  }
  return io_failure(L, what, path, errno);
}

static int l_create_exclusive(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) close(fd);
  return made_or_there(L, fd >= 0, "create", path);
}

static int l_isatty(lua_State *L) {
  lua_Integer fd = luaL_checkinteger(L, 1);
  lua_pushboolean(L, fd >= 0 && fd <= INT_MAX && isatty((int)fd));
  return 1;
}

static int l_mkdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  return made_or_there(L, mkdir(path, 0700) == 0, "create the directory", path);
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
  if (dir == NULL) return io_failure(L, "list", path, errno);
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


/* The folder part of path into dir ("." when there is none). */
static void parent_of(const char *path, char *dir, size_t size) {
  const char *slash = strrchr(path, '/');
  size_t n;
  if (slash == NULL) {
    snprintf(dir, size, ".");
    return;
  }
  n = slash == path ? 1 : (size_t)(slash - path);
  if (n >= size) n = size - 1;
  memcpy(dir, path, n);
  dir[n] = '\0';
}

int pa_fs_open_error(lua_State *L, const char *what, const char *path, int err) {
  static const char who[] = "every process that shares it (nginx workers run as nobody unless nginx.conf has a "
                            "user line)";
  char dir[PATH_MAX], msg[720];
  struct stat st;
  parent_of(path, dir, sizeof dir);
  if (err == ENOENT && stat(dir, &st) != 0) {
    snprintf(msg, sizeof msg, "cannot create %s %.160s: the folder %.160s does not exist; create it, writable by %s",
             what, path, dir, who);
  } else if (err == EACCES || err == EPERM || err == EROFS) {
    snprintf(msg, sizeof msg, "cannot open %s %.160s as uid %ld: %s; the folder %.160s must be writable, and the "
             "file readable and writable, by %s", what, path, (long)geteuid(), strerror(err), dir, who);
  } else {
    snprintf(msg, sizeof msg, "cannot open %s %.160s: %s", what, path, strerror(err));
  }
  return pa_error_return(L, "config", msg);
}


/* The whole buffer or -1 with errno: write(2) may write less than asked
 * (a file that reaches RLIMIT_FSIZE or a full disk takes what fits). */
static int write_all(int fd, const char *p, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) {
      errno = ENOSPC;
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* fsync the folder that holds path, so a rename in it is on disk too. A
 * file system that cannot sync a folder (EINVAL) has nothing more to do. */
static int sync_parent(const char *path) {
  char dir[PATH_MAX];
  const char *slash = strrchr(path, '/');
  int fd, r, saved;
  if (slash == NULL) {
    strcpy(dir, ".");
  } else if (slash == path) {
    strcpy(dir, "/");
  } else {
    size_t n = (size_t)(slash - path);
    if (n >= sizeof dir) {
      errno = ENAMETOOLONG;
      return -1;
    }
    memcpy(dir, path, n);
    dir[n] = '\0';
  }
  fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  r = fsync(fd);
  saved = errno;
  close(fd);
  if (r != 0 && saved == EINVAL) r = 0;
  errno = saved;
  return r;
}

static int l_write_file_durably(lua_State *L) {
  size_t plen, len;
  const char *path = luaL_checklstring(L, 1, &plen);
  const char *text = luaL_checklstring(L, 2, &len);
  char tmp[PATH_MAX];
  int fd, err;
  if (plen == 0) return pa_error_raise(L, "write_file_durably needs a path");
  /* A name of its own for each writer (mkstemp: O_EXCL, mode 0600): two
   * processes saving the same file at once never write into one temporary
   * file, and the last rename wins whole. */
  if (snprintf(tmp, sizeof tmp, "%s.XXXXXX", path) >= (int)sizeof tmp)
    return io_failure(L, "write", path, ENAMETOOLONG);
  fd = mkstemp(tmp);
  if (fd < 0) return io_failure(L, "write", path, errno);
  (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
  /* Every step is checked: a short write, a failed fsync (the data may be
   * lost) or close (NFS reports late) leaves path as it was. */
  if (write_all(fd, text, len) != 0 || fsync(fd) != 0) {
    err = errno;
    close(fd);
    unlink(tmp);
    return io_failure(L, "write", path, err);
  }
  if (close(fd) != 0) {
    err = errno;
    unlink(tmp);
    return io_failure(L, "write", path, err);
  }
  if (rename(tmp, path) != 0) {
    err = errno;
    unlink(tmp);
    return io_failure(L, "replace", path, err);
  }
  if (sync_parent(path) != 0) return io_failure(L, "sync the folder of", path, errno);
  lua_pushboolean(L, 1);
  return 1;
}

typedef struct {
  int fd;
  long long size; /* bytes in the file: where the next write lands */
} pa_output;

static pa_output *check_output(lua_State *L) {
  pa_output *o = (pa_output *)luaL_checkudata(L, 1, PA_OUTPUT_MT);
  if (o->fd < 0) pa_error_raise(L, "the output file is closed");
  return o;
}

static int l_open_output(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int keep_given = !lua_isnoneornil(L, 2);
  lua_Number keep = keep_given ? luaL_checknumber(L, 2) : 0;
  pa_output *o;
  struct stat st;
  if (keep_given && !(keep >= 0 && keep <= 9007199254740992.0 && keep == (lua_Number)(long long)keep))
    return pa_error_raise(L, "open_output: keep must be a whole number of bytes >= 0");
  o = (pa_output *)lua_newuserdatauv(L, sizeof *o, 0);
  o->fd = -1;
  o->size = 0;
  luaL_setmetatable(L, PA_OUTPUT_MT);
  /* 0666 and the umask, as a shell's > would create it. */
  o->fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (keep_given ? 0 : O_TRUNC), 0666);
  if (o->fd < 0) return io_failure(L, "open", path, errno);
  if (keep_given) {
    if (fstat(o->fd, &st) != 0) return io_failure(L, "read the size of", path, errno);
    if ((long long)st.st_size < (long long)keep) {
      char msg[320];
      snprintf(msg, sizeof msg, "%.200s has %lld bytes, fewer than the %lld its cursor records", path,
               (long long)st.st_size, (long long)keep);
      close(o->fd);
      o->fd = -1;
      return pa_error_return(L, "config", msg);
    }
    /* What follows keep was written after the last saved cursor (a line
     * cut by a crash, or lines the resumed run writes again): drop it. */
    if (ftruncate(o->fd, (off_t)keep) != 0) return io_failure(L, "truncate", path, errno);
    o->size = (long long)keep;
  }
  if (lseek(o->fd, (off_t)o->size, SEEK_SET) < 0) return io_failure(L, "seek in", path, errno);
  return 1;
}

static int output_write(lua_State *L) {
  pa_output *o = check_output(L);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  if (write_all(o->fd, s, len) != 0) {
    int err = errno;
    /* Where the file ends is now unknown: the next cursor must not
     * vouch for bytes of a half-written line, so find out. */
    off_t end = lseek(o->fd, 0, SEEK_END);
    if (end >= 0) o->size = (long long)end;
    return io_failure(L, "write", "the output", err);
  }
  o->size += (long long)len;
  lua_pushboolean(L, 1);
  return 1;
}

static int output_sync(lua_State *L) {
  pa_output *o = check_output(L);
  if (fsync(o->fd) != 0) return io_failure(L, "sync", "the output", errno);
  lua_pushboolean(L, 1);
  return 1;
}

static int output_size(lua_State *L) {
  pa_output *o = (pa_output *)luaL_checkudata(L, 1, PA_OUTPUT_MT);
  lua_pushnumber(L, (lua_Number)o->size);
  return 1;
}

static int output_close(lua_State *L) {
  pa_output *o = (pa_output *)luaL_checkudata(L, 1, PA_OUTPUT_MT);
  int r = 0;
  if (o->fd >= 0) { /* idempotent: close and __gc both end here */
    r = close(o->fd);
    o->fd = -1;
  }
  if (r != 0) return io_failure(L, "close", "the output", errno);
  lua_pushboolean(L, 1);
  return 1;
}

void pa_fs_open(lua_State *L) {
  static const luaL_Reg lock_methods[] = {{"unlock", lock_release}, {NULL, NULL}};
  static const pa_class lock_class = {PA_LOCK_MT, lock_methods, lock_release, lock_release, NULL};
  static const luaL_Reg output_methods[] = {{"write", output_write}, {"sync", output_sync},
                                            {"size", output_size},   {"close", output_close},
                                            {NULL, NULL}};
  static const pa_class output_class = {PA_OUTPUT_MT, output_methods, output_close, NULL, NULL};
  static const luaL_Reg fns[] = {{"write_file_durably", l_write_file_durably}, {"open_output", l_open_output},
                                 {"lock_file", l_lock_file}, {"try_lock_file", l_try_lock_file},
                                 {"create_exclusive", l_create_exclusive},
                                 {"mkdir", l_mkdir},         {"list_dir", l_list_dir},
                                 {"isatty", l_isatty},       {NULL, NULL}};
  pa_class_register(L, &lock_class);
  pa_class_register(L, &output_class);
  luaL_setfuncs(L, fns, 0);
}
