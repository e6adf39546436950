/* limiter_shm.c: the GCRA limiter shared by every process on a host.
 *
 *   core.shm_limiter{ path = "/run/myapp/planapi.limits", key = "planfix_rest:acme",
 *                     rate = 1, per = 1, burst = 1, margin = 0 }
 *
 * The state lives in a small file mapped into every process (MAP_SHARED):
 * a table of slots, one per key (an API and an account). Each slot's TAT and
 * its daily request counter are single 64-bit words changed only by atomic
 * compare-and-swap, so there is no lock: a process that dies mid-wait, or
 * even mid-update, leaves nothing locked and nothing half-written.
 * CLOCK_MONOTONIC is the same clock in every process of a host, so "now"
 * from any of them can be compared.
 *
 * Methods are those of the local limiter (reserve, confirm, settle, release, info)
 * plus count(day) / used(day) for the shared daily quota. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compat.h"
#include "errors.h"
#include "fs.h"
#include "limiter.h"
#include "luax.h"

#define PA_SHM_MT "planapi.shm_limiter"
#define SHM_MAGIC 0x3149504E414C5000ULL /* "\0PLANPI1" */
#define SHM_SLOTS 64
#define SHM_KEY_MAX 96

typedef struct {
  uint32_t state; /* 0 free, 1 being claimed, 2 ready: changed by CAS only */
  uint32_t key_len;
  char key[SHM_KEY_MAX];
  int64_t tat_ns;    /* theoretical arrival time, CLOCK_MONOTONIC ns */
  uint64_t day_used; /* day (high 32 bits, YYYYMMDD) and requests that day (low 32) */
  /* The TAT of the moments requests are written (confirm). It took the
   * place of padding that files made before it hold as zero: a time long
   * past, so such a file keeps working. */
  int64_t send_tat_ns;
} shm_slot; /* 128 bytes: two cache lines */

typedef struct {
  uint64_t magic;
  uint32_t version, nslots;
  char pad[128 - 16];
  shm_slot slots[SHM_SLOTS];
} shm_file;

typedef struct {
  shm_file *map;
  shm_slot *slot;
  int64_t interval_ns, tolerance_ns;
} pa_shm;

typedef char shm_slot_is_128_bytes[sizeof(shm_slot) == 128 ? 1 : -1];

static int64_t to_ns(double s) { return (int64_t)(s * 1e9); }

static int64_t load64(int64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }

static int cas64(int64_t *p, int64_t *expected, int64_t desired) {
  return __atomic_compare_exchange_n(p, expected, desired, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/* Find the slot of key, or claim a free one; NULL if the table is full. */
static shm_slot *find_slot(shm_file *f, const char *key, size_t klen) {
  int i;
  for (i = 0; i < SHM_SLOTS; i++) {
    shm_slot *s = &f->slots[i];
    uint32_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
    if (st == 0) {
      uint32_t expected = 0;
      if (__atomic_compare_exchange_n(&s->state, &expected, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        memcpy(s->key, key, klen);
        s->key_len = (uint32_t)klen;
        __atomic_store_n(&s->state, 2, __ATOMIC_RELEASE);
        return s;
      }
      st = expected;
    }
    while (st == 1) { /* another process is writing this slot's key: a few instructions */
      st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
    }
    if (s->key_len == klen && memcmp(s->key, key, klen) == 0) return s;
  }
  return NULL;
}

static pa_shm *check_shm(lua_State *L) {
  pa_shm *h = (pa_shm *)luaL_checkudata(L, 1, PA_SHM_MT);
  if (h->map == NULL) pa_error_raise(L, "the shared limiter is closed");
  return h;
}

static double opt_number(lua_State *L, const char *name, double dflt, double min) {
  double v = dflt;
  lua_getfield(L, 1, name);
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TNUMBER || !(lua_tonumber(L, -1) >= min))
      pa_error_raise(L, "shm limiter option '%s' must be a number >= %f", name, min);
    v = (double)lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

/* The one idempotent destroy: close, __gc, __close and failed opens. */
static void shm_unmap(pa_shm *h) {
  if (h->map != NULL) {
    munmap(h->map, sizeof(shm_file));
    h->map = NULL;
    h->slot = NULL;
  }
}

static int shm_close(lua_State *L) {
  shm_unmap((pa_shm *)luaL_checkudata(L, 1, PA_SHM_MT));
  return 0;
}

/* A file or folder of ours alone: owned by this user, nothing for group
 * or others. NULL, or what is wrong with it. */
static const char *not_private(const struct stat *st) {
  if (st->st_uid != geteuid()) return "is owned by another user";
  if ((st->st_mode & 077) != 0) return "is open to other users (its mode must be 0700 or 0600)";
  return NULL;
}

/* core.private_dir(path) -> true | nil, err: create path (0700) unless it
 * exists, and refuse it unless it is a real folder (not a symlink) owned by
 * this user and closed to others. Only its last component is created. */
static int l_private_dir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1), *why = NULL;
  struct stat st;
  char msg[400];
  if (mkdir(path, 0700) != 0 && errno != EEXIST) {
    snprintf(msg, sizeof msg, "cannot create the folder %.200s: %s", path, strerror(errno));
    return pa_error_return(L, "config", msg);
  }
  if (lstat(path, &st) != 0) why = strerror(errno);
  else if (S_ISLNK(st.st_mode)) why = "is a symbolic link";
  else if (!S_ISDIR(st.st_mode)) why = "is not a folder";
  else why = not_private(&st);
  if (why != NULL) {
    snprintf(msg, sizeof msg, "refusing the folder %.200s: it %s", path, why);
    return pa_error_return(L, "config", msg);
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int l_getuid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)geteuid());
  return 1;
}

static int shm_new(lua_State *L) {
  const char *path, *key;
  size_t klen;
  double rate, per, burst, margin;
  int fd, private_file;
  struct stat st;
  void *map;
  pa_shm *h;
  char msg[300];

  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "path");
  path = lua_tostring(L, -1);
  lua_getfield(L, 1, "key");
  key = lua_tolstring(L, -1, &klen);
  if (path == NULL || path[0] == '\0') pa_error_raise(L, "shm limiter needs a file path");
  if (key == NULL || klen == 0 || klen > SHM_KEY_MAX) pa_error_raise(L, "shm limiter key must be 1 to %d bytes", SHM_KEY_MAX);
  rate = opt_number(L, "rate", 1, 1e-9);
  per = opt_number(L, "per", 1, 1e-9);
  burst = opt_number(L, "burst", 1, 1);
  margin = opt_number(L, "margin", 0, 0);
  lua_getfield(L, 1, "private");
  private_file = lua_toboolean(L, -1);
  lua_pop(L, 1);

  h = (pa_shm *)lua_newuserdatauv(L, sizeof *h, 0);
  memset(h, 0, sizeof *h);
  luaL_setmetatable(L, PA_SHM_MT);
  h->interval_ns = to_ns(per / rate + margin);
  h->tolerance_ns = to_ns((per / rate + margin) * (burst - 1.0));

  /* private: the default scope's file in the user's runtime folder, which
   * must be a regular file of ours (never a symlink someone planted). */
  fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | (private_file ? O_NOFOLLOW : 0), 0600);
  if (fd < 0) {
    return pa_fs_open_error(L, "the shared limiter file", path, errno);
  }
  if (private_file) {
    const char *why = NULL;
    if (fstat(fd, &st) != 0) why = strerror(errno);
    else if (!S_ISREG(st.st_mode)) why = "is not a regular file";
    else why = not_private(&st);
    if (why != NULL) {
      close(fd);
      snprintf(msg, sizeof msg, "refusing the shared limiter file %.200s: it %s", path, why);
      return pa_error_return(L, "config", msg);
    }
  }
  /* Every process extends the file to the same size; a second ftruncate
   * to that size changes nothing, so the race is harmless. */
  if (fstat(fd, &st) != 0 || (st.st_size < (off_t)sizeof(shm_file) && ftruncate(fd, sizeof(shm_file)) != 0)) {
    snprintf(msg, sizeof msg, "cannot size the shared limiter file %.200s: %s", path, strerror(errno));
    close(fd);
    return pa_error_return(L, "config", msg);
  }
  map = mmap(NULL, sizeof(shm_file), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd); /* the mapping stays valid */
  if (map == MAP_FAILED) {
    snprintf(msg, sizeof msg, "cannot map the shared limiter file %.200s: %s", path, strerror(errno));
    return pa_error_return(L, "config", msg);
  }
  h->map = (shm_file *)map;
  {
    uint64_t expected = 0;
    if (!__atomic_compare_exchange_n(&h->map->magic, &expected, SHM_MAGIC, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE) &&
        expected != SHM_MAGIC) {
      shm_unmap(h);
      snprintf(msg, sizeof msg, "%.200s is not a planapi limiter file", path);
      return pa_error_return(L, "config", msg);
    }
  }
  h->slot = find_slot(h->map, key, klen);
  if (h->slot == NULL) {
    shm_unmap(h);
    snprintf(msg, sizeof msg, "the shared limiter file %.200s has no free slot (%d keys)", path, SHM_SLOTS);
    return pa_error_return(L, "config", msg);
  }
  return 1;
}

/* check_shm for the methods the call loop uses on every request, which
 * hold the metatable as their upvalue (see pa_limiter_shm_open). */
static pa_shm *check_shm_hot(lua_State *L) {
  pa_shm *h = (pa_shm *)pa_udata_with_mt(L, 1, lua_upvalueindex(1));
  if (h == NULL || h->map == NULL) return check_shm(L); /* its error */
  return h;
}

/* The time argument of reserve and settle: left out, CLOCK_MONOTONIC read
 * here (the call loop's clock when it is core.monotime: no call to read it). */
static int64_t now_arg(lua_State *L) {
  return to_ns(lua_isnoneornil(L, 2) ? pa_monotime() : (double)luaL_checknumber(L, 2));
}

static int shm_reserve(lua_State *L) {
  pa_shm *h = check_shm_hot(L);
  int64_t now = now_arg(L);
  int64_t old = load64(&h->slot->tat_ns), tat, allowed;
  do {
    tat = old > now ? old : now;
    allowed = tat - h->tolerance_ns;
  } while (!cas64(&h->slot->tat_ns, &old, tat + h->interval_ns));
  lua_pushnumber(L, allowed > now ? (lua_Number)(allowed - now) / 1e9 : 0);
  return 1;
}

static int shm_settle(lua_State *L) {
  pa_shm *h = check_shm_hot(L);
  int64_t want = now_arg(L) + h->interval_ns;
  int64_t old = load64(&h->slot->tat_ns);
  while (old < want && !cas64(&h->slot->tat_ns, &old, want)) {
  }
  return 0;
}

static int shm_release(lua_State *L) {
  pa_shm *h = check_shm(L);
  int64_t now = to_ns((double)luaL_checknumber(L, 2));
  int64_t old = load64(&h->slot->tat_ns), next;
  do {
    next = old - h->interval_ns;
    if (next < now) next = now;
  } while (!cas64(&h->slot->tat_ns, &old, next));
  return 0;
}

/* GCRA on the moments requests are written (see pa_gcra_confirm): 0 and
 * the send recorded, atomically against every other process, or the
 * seconds to wait first (nothing recorded). */
static double shm_confirm_at(pa_shm *h, int64_t now) {
  int64_t old = load64(&h->slot->send_tat_ns), sent;
  do {
    sent = old > now ? old : now;
    if (sent - h->tolerance_ns > now) return (double)(sent - h->tolerance_ns - now) / 1e9;
  } while (!cas64(&h->slot->send_tat_ns, &old, sent + h->interval_ns));
  /* The slots lag the sends by one interval at most (see pa_gcra_confirm). */
  old = load64(&h->slot->tat_ns);
  while (old < sent && !cas64(&h->slot->tat_ns, &old, sent)) {
  }
  return 0.0;
}

static double shm_confirm_fn(void *state, double now) {
  pa_shm *h = (pa_shm *)state;
  return h->map == NULL ? 0.0 : shm_confirm_at(h, to_ns(now));
}

int pa_shm_pacer_get(lua_State *L, int idx, pa_pacer *p) {
  pa_shm *h = (pa_shm *)luaL_testudata(L, idx, PA_SHM_MT);
  if (h == NULL || h->map == NULL) return 0;
  p->confirm = shm_confirm_fn;
  p->state = h;
  return 1;
}

static int shm_confirm(lua_State *L) {
  pa_shm *h = check_shm(L);
  lua_pushnumber(L, (lua_Number)shm_confirm_at(h, to_ns((double)luaL_checknumber(L, 2))));
  return 1;
}

/* Requests counted on `day` in a packed day_used word: a new day starts from zero. */
static uint32_t used_on(uint64_t packed, uint32_t day) {
  return (uint32_t)(packed >> 32) == day ? (uint32_t)packed : 0;
}

static uint32_t day_used(pa_shm *h, uint32_t day) {
  return used_on(__atomic_load_n(&h->slot->day_used, __ATOMIC_ACQUIRE), day);
}

/* Count one more request on `day`, atomically; returns the new count. */
static uint32_t day_count(pa_shm *h, uint32_t day) {
  uint64_t old = __atomic_load_n(&h->slot->day_used, __ATOMIC_ACQUIRE), next;
  uint32_t used;
  do {
    used = used_on(old, day) + 1;
    next = ((uint64_t)day << 32) | used;
  } while (!__atomic_compare_exchange_n(&h->slot->day_used, &old, next, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE));
  return used;
}

static int shm_count(lua_State *L) {
  pa_shm *h = check_shm(L);
  lua_pushinteger(L, (lua_Integer)day_count(h, (uint32_t)luaL_checkinteger(L, 2)));
  return 1;
}

static int shm_used(lua_State *L) {
  pa_shm *h = check_shm(L);
  lua_pushinteger(L, (lua_Integer)day_used(h, (uint32_t)luaL_checkinteger(L, 2)));
  return 1;
}

static int shm_info(lua_State *L) {
  pa_shm *h = check_shm(L);
  lua_createtable(L, 0, 4);
  lua_pushliteral(L, "shm");
  lua_setfield(L, -2, "kind");
  lua_pushnumber(L, (lua_Number)h->interval_ns / 1e9);
  lua_setfield(L, -2, "interval");
  lua_pushnumber(L, (lua_Number)h->tolerance_ns / (lua_Number)h->interval_ns + 1.0);
  lua_setfield(L, -2, "burst");
  lua_pushnumber(L, (lua_Number)load64(&h->slot->tat_ns) / 1e9);
  lua_setfield(L, -2, "tat");
  lua_pushnumber(L, (lua_Number)load64(&h->slot->send_tat_ns) / 1e9);
  lua_setfield(L, -2, "send_tat");
  return 1;
}

void pa_limiter_shm_open(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"release", shm_release}, {"count", shm_count}, {"used", shm_used},
    {"info", shm_info},       {"close", shm_close}, {"confirm", shm_confirm}, {NULL, NULL}
  };
  /* each with the metatable as its upvalue (check_shm_hot) */
  static const luaL_Reg hot_methods[] = {{"reserve", shm_reserve}, {"settle", shm_settle}, {NULL, NULL}};
  static const pa_class shm_class = {PA_SHM_MT, methods, shm_close, shm_close, NULL};
  static const luaL_Reg fns[] = {
      {"shm_limiter", shm_new}, {"private_dir", l_private_dir}, {"getuid", l_getuid}, {NULL, NULL}};
  pa_class_register(L, &shm_class);
  pa_class_push_methods(L, PA_SHM_MT);
  luaL_getmetatable(L, PA_SHM_MT);
  luaL_setfuncs(L, hot_methods, 1);
  lua_pushliteral(L, "shm"); /* the Lua side tells the scopes apart by kind */
  lua_setfield(L, -2, "kind");
  lua_pop(L, 1);
  luaL_setfuncs(L, fns, 0);
}
