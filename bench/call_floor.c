/* call_floor.c: the per-call floor for bench/percall.lua. The least a
 * program can do for one API call over keep-alive: libcurl on one reused
 * easy handle with every option and the request body set once, then parse
 * the whole answer:
 *   xml   libxml2's DOM parse (xmlReadMemory + xmlFreeDoc)
 *   json  lua-cjson's decode into Lua tables, in a Lua 5.4 state embedded
 *         here (the same decoder planapi uses; the bytes-to-tables floor)
 *   none  no parse: libcurl alone
 * After WARMUP calls (the TLS handshake, the caches), CALLS calls are timed.
 * Prints "cpu_us <CPU microseconds per call> wall_us <...> bytes <answer size>".
 *   call_floor PARSE METHOD URL CAFILE CALLS BODYFILE|- [HEADER...]
 * The process's CPU time is CLOCK_PROCESS_CPUTIME_ID (all threads). */
#include <curl/curl.h>
#include <libxml/parser.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WARMUP 3

struct buf {
  char *data;
  size_t len, cap;
};

static size_t on_data(char *p, size_t size, size_t n, void *ud) {
  struct buf *b = ud;
  size_t add = size * n;
  if (b->len + add + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->len + add + 1) cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) return 0;
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, add);
  b->len += add;
  return add;
}

static double now(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *slurp(const char *path, long *len) {
  FILE *f = fopen(path, "rb");
  char *d;
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  *len = ftell(f);
  fseek(f, 0, SEEK_SET);
  d = malloc((size_t)*len + 1);
  if (!d || fread(d, 1, (size_t)*len, f) != (size_t)*len) {
    fclose(f);
    free(d);
    return NULL;
  }
  fclose(f);
  return d;
}

int main(int argc, char **argv) {
  const char *parse, *method, *url, *ca;
  int calls, i;
  char *body = NULL;
  long body_len = 0, status = 0;
  struct curl_slist *headers = NULL;
  struct buf b = { NULL, 0, 0 };
  lua_State *L = NULL;
  int decode_ref = LUA_NOREF;
  CURL *h;
  double c0 = 0, w0 = 0;

  if (argc < 7) {
    fprintf(stderr, "usage: call_floor PARSE METHOD URL CAFILE CALLS BODYFILE|- [HEADER...]\n");
    return 2;
  }
  parse = argv[1], method = argv[2], url = argv[3], ca = argv[4];
  calls = atoi(argv[5]);
  if (strcmp(argv[6], "-") != 0 && !(body = slurp(argv[6], &body_len))) {
    fprintf(stderr, "call_floor: cannot read %s\n", argv[6]);
    return 1;
  }
  for (i = 7; i < argc; i++) headers = curl_slist_append(headers, argv[i]);

  if (strcmp(parse, "xml") == 0) {
    xmlInitParser();
  } else if (strcmp(parse, "json") == 0) {
    L = luaL_newstate();
    luaL_openlibs(L);
    if (luaL_dostring(L, "return require('cjson').new().decode") != LUA_OK) {
      fprintf(stderr, "call_floor: %s\n", lua_tostring(L, -1));
      return 1;
    }
    decode_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  } else if (strcmp(parse, "none") != 0) {
    fprintf(stderr, "call_floor: PARSE is xml, json or none\n");
    return 2;
  }

  curl_global_init(CURL_GLOBAL_DEFAULT);
  h = curl_easy_init();
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_CAINFO, ca);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  if (body) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, body_len);
  }
  if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);

  for (i = 0; i < WARMUP + calls; i++) {
    CURLcode rc;
    if (i == WARMUP) {
      c0 = now(CLOCK_PROCESS_CPUTIME_ID);
      w0 = now(CLOCK_MONOTONIC);
    }
    b.len = 0;
    rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
      fprintf(stderr, "call_floor: %s\n", curl_easy_strerror(rc));
      return 1;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
      fprintf(stderr, "call_floor: HTTP %ld\n", status);
      return 1;
    }
    if (L) {
      lua_rawgeti(L, LUA_REGISTRYINDEX, decode_ref);
      lua_pushlstring(L, b.data, b.len);
      if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_istable(L, -1)) {
        fprintf(stderr, "call_floor: decode failed\n");
        return 1;
      }
      lua_pop(L, 1);
    } else if (strcmp(parse, "xml") == 0) {
      xmlDocPtr doc = xmlReadMemory(b.data, (int)b.len, NULL, NULL, XML_PARSE_NONET);
      if (!doc) {
        fprintf(stderr, "call_floor: XML parse failed\n");
        return 1;
      }
      xmlFreeDoc(doc);
    }
  }
  printf("cpu_us %.1f wall_us %.1f bytes %zu\n", (now(CLOCK_PROCESS_CPUTIME_ID) - c0) / calls * 1e6,
         (now(CLOCK_MONOTONIC) - w0) / calls * 1e6, b.len);
  curl_easy_cleanup(h);
  curl_slist_free_all(headers);
  if (L) lua_close(L);
  free(b.data);
  free(body);
  return 0;
}
