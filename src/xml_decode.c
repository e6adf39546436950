/* xml_decode.c: a Planfix XML API response -> Lua tables, losslessly.
 *
 * Two passes. libxml2's SAX2 parser fills a compact node arena in C memory
 * (its callbacks never call Lua, so no Lua error can longjmp through
 * libxml2); then the arena is turned into Lua tables. No DOM is built,
 * which keeps decoding cheaper than libxml2's own xmlReadMemory.
 *
 * The shape (the convention xml_encode.c writes):
 *   <id>0005</id>                 "0005"          text stays a string, exactly
 *   <description/>                ""              empty element
 *   <a x="1">t</a>                { ["@x"] = "1", ["#text"] = "t" }
 *   <task><id>1</id></task>       { id = "1" }
 *   <id>1</id><id>2</id>          id = { "1", "2" }   repeated siblings: an array
 *   <tasks count="1"><task/>...   { [1] = ..., ["@count"] = "1" }  a list container (named by the
 *                                 caller, or carrying count/totalCount): always an array
 *
 * Safety: no DTD is accepted (any DOCTYPE stops the parse), so there are no
 * external entities, no parameter entities and no entity expansion bombs;
 * XML_PARSE_NONET forbids any network access besides. */
#include "xml.h"

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "errors.h"

#define MAX_DEPTH 256

typedef struct {
  uint32_t name_off, name_len;
  uint32_t attr_first, nattrs;
  uint32_t text_off, text_len;
  int32_t first_child, last_child, next_sibling;
  uint32_t nchildren;
} xnode;

typedef struct {
  uint32_t name_off, name_len, val_off, val_len;
} xattr;

typedef struct {
  pa_buf nodes, attrs, strs;
  int32_t stack[MAX_DEPTH];
  int depth;
  int failed;
  char err[200];
  xmlParserCtxtPtr ctxt;
} xdoc;

#define NODE(d, i) (((xnode *)(d)->nodes.p) + (i))
#define ATTR(d, i) (((xattr *)(d)->attrs.p) + (i))

static void doc_fail(xdoc *d, const char *msg) {
  if (!d->failed) {
    d->failed = 1;
    snprintf(d->err, sizeof d->err, "%s", msg);
  }
  if (d->ctxt) xmlStopParser(d->ctxt);
}

/* Append bytes to the string arena; returns the offset, or fails the doc. */
static int add_str(xdoc *d, const char *s, size_t n, uint32_t *off) {
  if (d->strs.len + n > UINT32_MAX) {
    doc_fail(d, "document too large");
    return 0;
  }
  *off = (uint32_t)d->strs.len;
  if (!pa_buf_add(&d->strs, s, n)) {
    doc_fail(d, "out of memory");
    return 0;
  }
  return 1;
}

static void on_start(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri,
                     int nb_namespaces, const xmlChar **namespaces, int nb_attributes,
                     int nb_defaulted, const xmlChar **attributes) {
  xdoc *d = (xdoc *)ctx;
  xnode n;
  int32_t idx;
  int i;
  (void)prefix, (void)uri, (void)nb_namespaces, (void)namespaces, (void)nb_defaulted;
  if (d->failed) return;
  if (d->depth >= MAX_DEPTH) {
    doc_fail(d, "elements nested too deep");
    return;
  }
  memset(&n, 0, sizeof n);
  n.first_child = n.last_child = n.next_sibling = -1;
  if (!add_str(d, (const char *)localname, strlen((const char *)localname), &n.name_off)) return;
  n.name_len = (uint32_t)strlen((const char *)localname);
  n.attr_first = (uint32_t)(d->attrs.len / sizeof(xattr));
  for (i = 0; i < nb_attributes; i++) {
    /* five pointers per attribute: localname, prefix, URI, value, end */
    const xmlChar **a = attributes + i * 5;
    xattr at;
    at.name_len = (uint32_t)strlen((const char *)a[0]);
    at.val_len = (uint32_t)(a[4] - a[3]);
    if (!add_str(d, (const char *)a[0], at.name_len, &at.name_off) ||
        !add_str(d, (const char *)a[3], at.val_len, &at.val_off))
      return;
    if (!pa_buf_add(&d->attrs, (const char *)&at, sizeof at)) {
      doc_fail(d, "out of memory");
      return;
    }
  }
  n.nattrs = (uint32_t)nb_attributes;
  idx = (int32_t)(d->nodes.len / sizeof(xnode));
  if (!pa_buf_add(&d->nodes, (const char *)&n, sizeof n)) {
    doc_fail(d, "out of memory");
    return;
  }
  if (d->depth > 0) {
    xnode *parent = NODE(d, d->stack[d->depth - 1]);
    if (parent->last_child >= 0) NODE(d, parent->last_child)->next_sibling = idx;
    else parent->first_child = idx;
    parent->last_child = idx;
    parent->nchildren++;
  }
  d->stack[d->depth++] = idx;
}

static void on_end(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri) {
  xdoc *d = (xdoc *)ctx;
  (void)localname, (void)prefix, (void)uri;
  if (!d->failed && d->depth > 0) d->depth--;
}

static void on_text(void *ctx, const xmlChar *ch, int len) {
  xdoc *d = (xdoc *)ctx;
  xnode *n;
  uint32_t off;
  if (d->failed || d->depth == 0 || len <= 0) return;
  n = NODE(d, d->stack[d->depth - 1]);
  if (n->text_len > 0 && n->text_off + n->text_len != d->strs.len) {
    /* The node's text was interrupted by a child's: move it to the end so
     * it stays one run (mixed content is rare in API responses). */
    uint32_t old_off = n->text_off, old_len = n->text_len;
    if (!pa_buf_reserve(&d->strs, old_len)) {
      doc_fail(d, "out of memory");
      return;
    }
    n = NODE(d, d->stack[d->depth - 1]);
    memcpy(d->strs.p + d->strs.len, d->strs.p + old_off, old_len);
    n->text_off = (uint32_t)d->strs.len;
    d->strs.len += old_len;
  }
  if (!add_str(d, (const char *)ch, (size_t)len, &off)) return;
  n = NODE(d, d->stack[d->depth - 1]);
  if (n->text_len == 0) n->text_off = off;
  n->text_len += (uint32_t)len;
}

static void on_dtd(void *ctx, const xmlChar *name, const xmlChar *external_id, const xmlChar *system_id) {
  (void)name, (void)external_id, (void)system_id;
  doc_fail((xdoc *)ctx, "a DOCTYPE is not accepted (no DTDs, no entities)");
}

static xmlEntityPtr on_entity(void *ctx, const xmlChar *name) {
  (void)name;
  doc_fail((xdoc *)ctx, "entity references other than the predefined ones are not accepted");
  return NULL;
}

static void on_error(void *ctx, xmlErrorPtr err) {
  xdoc *d = (xdoc *)ctx;
  if (!d->failed && err != NULL && err->level >= XML_ERR_ERROR) {
    char msg[200];
    size_t n;
    snprintf(msg, sizeof msg, "invalid XML at line %d: %s", err->line,
             err->message ? err->message : "parse error");
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) msg[--n] = '\0';
    doc_fail(d, msg);
  }
}

/* Parse into the arena; 1 on success. */
static int parse_doc(xdoc *d, const char *s, size_t len) {
  xmlSAXHandler sax;
  xmlParserCtxtPtr ctxt;
  if (len > INT32_MAX) {
    doc_fail(d, "document too large");
    return 0;
  }
  memset(&sax, 0, sizeof sax);
  sax.initialized = XML_SAX2_MAGIC;
  sax.startElementNs = on_start;
  sax.endElementNs = on_end;
  sax.characters = on_text;
  sax.cdataBlock = on_text;
  sax.internalSubset = on_dtd;
  sax.externalSubset = on_dtd;
  sax.getEntity = on_entity;
  sax.getParameterEntity = on_entity;
  sax.serror = on_error;
  ctxt = xmlCreatePushParserCtxt(&sax, d, NULL, 0, NULL);
  if (ctxt == NULL) {
    doc_fail(d, "out of memory");
    return 0;
  }
  d->ctxt = ctxt;
  xmlCtxtUseOptions(ctxt, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  xmlParseChunk(ctxt, s, (int)len, 1);
  if (!d->failed && (!ctxt->wellFormed || ctxt->errNo != 0)) doc_fail(d, "invalid XML");
  if (!d->failed && d->nodes.len == 0) doc_fail(d, "no root element");
  d->ctxt = NULL;
  xmlFreeParserCtxt(ctxt);
  return !d->failed;
}

static int is_space_only(const char *s, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') return 0;
  return 1;
}

static int has_count_attr(xdoc *d, xnode *n) {
  uint32_t i;
  for (i = 0; i < n->nattrs; i++) {
    xattr *a = ATTR(d, n->attr_first + i);
    const char *name = d->strs.p + a->name_off;
    if ((a->name_len == 5 && memcmp(name, "count", 5) == 0) ||
        (a->name_len == 10 && memcmp(name, "totalCount", 10) == 0))
      return 1;
  }
  return 0;
}

static void push_attrs(lua_State *L, xdoc *d, xnode *n, int t) {
  uint32_t i;
  char key[256];
  for (i = 0; i < n->nattrs; i++) {
    xattr *a = ATTR(d, n->attr_first + i);
    size_t kl = a->name_len < sizeof key - 1 ? a->name_len : sizeof key - 2;
    key[0] = '@';
    memcpy(key + 1, d->strs.p + a->name_off, kl);
    lua_pushlstring(L, key, kl + 1);
    lua_pushlstring(L, d->strs.p + a->val_off, a->val_len);
    lua_rawset(L, t);
  }
}

/* Push the Lua value of node ni. lists: index of the caller's table of
 * list-container names. */
static void build(lua_State *L, xdoc *d, int32_t ni, int lists) {
  xnode *n = NODE(d, ni);
  int t, container;
  int32_t c;
  luaL_checkstack(L, 6, "XML decode");
  lua_pushlstring(L, d->strs.p + n->name_off, n->name_len);
  lua_rawget(L, lists);
  container = lua_toboolean(L, -1) || has_count_attr(d, n);
  lua_pop(L, 1);

  if (!container && n->nchildren == 0 && n->nattrs == 0) {
    lua_pushlstring(L, n->text_len ? d->strs.p + n->text_off : "", n->text_len);
    return;
  }
  lua_createtable(L, container ? (int)n->nchildren : 0, (int)n->nattrs + (container ? 0 : (int)n->nchildren));
  t = lua_gettop(L);
  push_attrs(L, d, n, t);
  if (container) {
    lua_Integer i = 0;
    for (c = n->first_child; c >= 0; c = NODE(d, c)->next_sibling) {
      build(L, d, c, lists);
      lua_rawseti(L, t, ++i);
    }
    return;
  }
  if (n->nchildren > 0) {
    /* First pass: how often each child name occurs, so a repeated one is an
     * array from its first occurrence (and a single one never is). */
    int counts = 0;
    if (n->nchildren > 1) {
      lua_createtable(L, 0, (int)n->nchildren);
      counts = lua_gettop(L);
      for (c = n->first_child; c >= 0; c = NODE(d, c)->next_sibling) {
        xnode *ch = NODE(d, c);
        lua_pushlstring(L, d->strs.p + ch->name_off, ch->name_len);
        lua_pushvalue(L, -1);
        lua_rawget(L, counts);
        lua_pushinteger(L, lua_tointeger(L, -1) + 1);
        lua_remove(L, -2);
        lua_rawset(L, counts);
      }
    }
    for (c = n->first_child; c >= 0; c = NODE(d, c)->next_sibling) {
      xnode *ch = NODE(d, c);
      int repeated = 0;
      lua_pushlstring(L, d->strs.p + ch->name_off, ch->name_len); /* key */
      if (counts) {
        lua_pushvalue(L, -1);
        lua_rawget(L, counts);
        repeated = lua_tointeger(L, -1) > 1;
        lua_pop(L, 1);
      }
      if (repeated) {
        lua_pushvalue(L, -1);
        lua_rawget(L, t);
        if (lua_isnil(L, -1)) { /* first occurrence: make the array */
          lua_pop(L, 1);
          lua_newtable(L);
          lua_pushvalue(L, -2);
          lua_pushvalue(L, -2);
          lua_rawset(L, t);
        }
        build(L, d, c, lists);
        lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
        lua_pop(L, 2); /* the array and the key */
      } else {
        build(L, d, c, lists);
        lua_rawset(L, t);
      }
    }
    if (counts) lua_remove(L, counts);
    if (n->text_len && !is_space_only(d->strs.p + n->text_off, n->text_len)) {
      lua_pushlstring(L, d->strs.p + n->text_off, n->text_len);
      lua_setfield(L, t, "#text");
    }
  } else if (n->text_len) {
    lua_pushlstring(L, d->strs.p + n->text_off, n->text_len);
    lua_setfield(L, t, "#text");
  }
}

static int doc_gc(lua_State *L) {
  xdoc *d = (xdoc *)lua_touserdata(L, 1);
  pa_buf_free(&d->nodes);
  pa_buf_free(&d->attrs);
  pa_buf_free(&d->strs);
  return 0;
}

int pa_xml_decode(lua_State *L, const char *s, size_t len, int lists) {
  xdoc *d;
  lists = lua_absindex(L, lists);
  d = (xdoc *)lua_newuserdatauv(L, sizeof *d, 0);
  memset(d, 0, sizeof *d);
  /* The arena is freed by __gc if building the tables raises (no memory). */
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, doc_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  if (!parse_doc(d, s, len)) {
    lua_pushstring(L, d->err);
    lua_remove(L, -2);
    return 0;
  }
  build(L, d, 0, lists);
  pa_buf_free(&d->nodes); /* give the memory back now, not at the next GC */
  pa_buf_free(&d->attrs);
  pa_buf_free(&d->strs);
  lua_remove(L, -2);
  return 1;
}

void pa_xml_init(void) {
  xmlInitParser();
}
