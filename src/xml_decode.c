/* xml_decode.c: a Planfix XML API response -> Lua tables, losslessly.
 *
 * Two passes. libxml2's SAX2 parser fills a compact node arena in C memory
 * (its callbacks never call Lua, so no Lua error can longjmp through
 * libxml2); then the arena is turned into Lua tables. No DOM is built,
 * which keeps decoding cheaper than libxml2's own xmlReadMemory
 * (bench/run-xml-decode measures it).
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
 * Speed: element names are interned by libxml2 (one pointer per distinct
 * name), so each distinct name gets one entry in a small C table, one Lua
 * string, and one lookup in the caller's list table; repeated siblings
 * are found in C when an element ends.
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
#define PA_ARRAY_MT "planapi.array" /* json.c's mark of an array */

/* One distinct element or attribute name. */
typedef struct {
  const xmlChar *name; /* interned in the parser's dictionary */
  uint32_t len;
  int ref;             /* index of its Lua string in the build's cache, 0 = not yet */
  int attr_ref;        /* index of "@name", 0 = not yet */
  int container;       /* -1 unknown, 0 no, 1 listed by the caller */
  uint32_t stamp, count; /* sibling counting, see on_end */
} xname;

typedef struct {
  uint32_t name;       /* index into names */
  uint32_t attr_first, nattrs;
  uint32_t text_off, text_len;
  int32_t first_child, last_child, next_sibling;
  uint32_t nchildren;
  uint8_t repeated;    /* its name occurs more than once among its siblings */
  uint8_t has_count;   /* it carries count or totalCount: a list */
  uint8_t text_in_input; /* text_off is into the input, not the string arena */
} xnode;

typedef struct {
  uint32_t name, val_off, val_len;
} xattr;

typedef struct {
  pa_buf nodes, attrs, strs, names;
  uint32_t *slots;     /* open addressing: name pointer -> names index + 1 */
  uint32_t nslots;
  int32_t stack[MAX_DEPTH];
  int depth;
  int failed;
  char err[200];
  xmlParserCtxtPtr ctxt;
  const char *input;   /* the caller's bytes, alive for the whole decode */
  size_t input_len;
} xdoc;

#define NODE(d, i) (((xnode *)(d)->nodes.p) + (i))
#define ATTR(d, i) (((xattr *)(d)->attrs.p) + (i))
#define NAME(d, i) (((xname *)(d)->names.p) + (i))
#define NNAMES(d) ((uint32_t)((d)->names.len / sizeof(xname)))
#define TEXT(d, n) ((n)->text_len == 0 ? "" : ((n)->text_in_input ? (d)->input : (d)->strs.p) + (n)->text_off)

static void doc_fail(xdoc *d, const char *msg) {
  if (!d->failed) {
    d->failed = 1;
    snprintf(d->err, sizeof d->err, "%s", msg);
  }
  if (d->ctxt) xmlStopParser(d->ctxt);
}

static uint32_t slot_of(const xmlChar *p, uint32_t mask) {
  uintptr_t h = (uintptr_t)p;
  h ^= h >> 17;
  h *= 0x9E3779B1u;
  return (uint32_t)(h >> 7) & mask;
}

/* The index of an interned name, adding it on first sight; UINT32_MAX on failure. */
static uint32_t intern(xdoc *d, const xmlChar *name) {
  uint32_t i, n = NNAMES(d);
  xname e;
  if (d->nslots == 0 || n * 2 >= d->nslots) { /* grow and rehash */
    uint32_t cap = d->nslots ? d->nslots * 2 : 64, k;
    uint32_t *slots = (uint32_t *)calloc(cap, sizeof *slots);
    if (slots == NULL) return UINT32_MAX;
    for (k = 0; k < n; k++) {
      uint32_t s = slot_of(NAME(d, k)->name, cap - 1);
      while (slots[s]) s = (s + 1) & (cap - 1);
      slots[s] = k + 1;
    }
    free(d->slots);
    d->slots = slots;
    d->nslots = cap;
  }
  for (i = slot_of(name, d->nslots - 1); d->slots[i]; i = (i + 1) & (d->nslots - 1))
    if (NAME(d, d->slots[i] - 1)->name == name) return d->slots[i] - 1;
  memset(&e, 0, sizeof e);
  e.name = name;
  e.len = (uint32_t)strlen((const char *)name);
  e.container = -1;
  if (!pa_buf_add(&d->names, (const char *)&e, sizeof e)) return UINT32_MAX;
  d->slots[i] = n + 1;
  return n;
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
  n.first_child = n.last_child = n.next_sibling = -1;
  n.text_off = n.text_len = n.nchildren = 0;
  n.repeated = n.has_count = n.text_in_input = 0;
  n.name = intern(d, localname);
  if (n.name == UINT32_MAX) {
    doc_fail(d, "out of memory");
    return;
  }
  n.attr_first = (uint32_t)(d->attrs.len / sizeof(xattr));
  for (i = 0; i < nb_attributes; i++) {
    /* five pointers per attribute: localname, prefix, URI, value, end */
    const xmlChar **a = attributes + (size_t)i * 5;
    xattr at;
    at.name = intern(d, a[0]);
    at.val_len = (uint32_t)(a[4] - a[3]);
    if (at.name == UINT32_MAX || !add_str(d, (const char *)a[3], at.val_len, &at.val_off) ||
        !pa_buf_add(&d->attrs, (const char *)&at, sizeof at)) {
      doc_fail(d, "out of memory");
      return;
    }
    if (strcmp((const char *)a[0], "count") == 0 || strcmp((const char *)a[0], "totalCount") == 0)
      n.has_count = 1;
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

/* When an element ends all its children are known: mark the ones whose
 * name occurs more than once (each name's stamp and count are reused per
 * parent, which is safe because this runs to completion per element). */
static void on_end(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri) {
  xdoc *d = (xdoc *)ctx;
  int32_t self, c;
  uint32_t stamp;
  (void)localname, (void)prefix, (void)uri;
  if (d->failed || d->depth == 0) return;
  self = d->stack[--d->depth];
  if (NODE(d, self)->nchildren < 2) return;
  stamp = (uint32_t)self + 1;
  for (c = NODE(d, self)->first_child; c >= 0; c = NODE(d, c)->next_sibling) {
    xname *e = NAME(d, NODE(d, c)->name);
    if (e->stamp != stamp) {
      e->stamp = stamp;
      e->count = 0;
    }
    e->count++;
  }
  for (c = NODE(d, self)->first_child; c >= 0; c = NODE(d, c)->next_sibling)
    NODE(d, c)->repeated = NAME(d, NODE(d, c)->name)->count > 1;
}

/* Text usually arrives as one run pointing into the input (the memory
 * parser hands it over in place): then only its position is kept, and Lua
 * copies it once. Text that libxml2 decoded (an entity, a character
 * reference) or that arrives in pieces is copied into the string arena. */
static void on_text(void *ctx, const xmlChar *ch, int len) {
  xdoc *d = (xdoc *)ctx;
  xnode *n;
  const char *p = (const char *)ch;
  uint32_t off;
  if (d->failed || d->depth == 0 || len <= 0) return;
  n = NODE(d, d->stack[d->depth - 1]);
  if (p >= d->input && p + len <= d->input + d->input_len) {
    if (n->text_len == 0) {
      n->text_off = (uint32_t)(p - d->input);
      n->text_len = (uint32_t)len;
      n->text_in_input = 1;
      return;
    }
    if (n->text_in_input && d->input + n->text_off + n->text_len == p) {
      n->text_len += (uint32_t)len; /* the next piece of the same run */
      return;
    }
  }
  if (n->text_in_input) { /* move the run so far into the arena */
    if (!add_str(d, d->input + n->text_off, n->text_len, &off)) return;
    n = NODE(d, d->stack[d->depth - 1]);
    n->text_off = off;
    n->text_in_input = 0;
  } else if (n->text_len > 0 && n->text_off + n->text_len != d->strs.len) {
    /* The node's text was interrupted by a child's: move it to the end so
     * it stays one run (mixed content is rare in API responses). */
    uint32_t old_off = n->text_off, old_len = n->text_len;
    if (!pa_buf_reserve(&d->strs, old_len)) {
      doc_fail(d, "out of memory");
      return;
    }
    memcpy(d->strs.p + d->strs.len, d->strs.p + old_off, old_len);
    n->text_off = (uint32_t)d->strs.len;
    d->strs.len += old_len;
  }
  if (!add_str(d, p, (size_t)len, &off)) return;
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

/* Parse into the arena, leaving the parser context (which owns the
 * interned names) in d->ctxt for the build; 1 on success. */
static int parse_doc(xdoc *d, const char *s, size_t len) {
  xmlParserCtxtPtr ctxt;
  xmlSAXHandler *sax;
  if (len > INT32_MAX) {
    doc_fail(d, "document too large");
    return 0;
  }
  if (len == 0) {
    doc_fail(d, "empty document");
    return 0;
  }
  /* A memory parser reads the caller's bytes in place (a push parser would
   * copy them, and refuses one chunk over 10 MB). */
  d->input = s;
  d->input_len = len;
  /* Presize the arenas from the input (an element takes at least ~7 bytes
   * of markup) so they do not re-grow and copy themselves mid-parse. */
  if (!pa_buf_reserve(&d->nodes, (len / 16 + 16) * sizeof(xnode))) {
    doc_fail(d, "out of memory");
    return 0;
  }
  ctxt = xmlCreateMemoryParserCtxt(s, (int)len);
  if (ctxt == NULL) {
    doc_fail(d, "out of memory");
    return 0;
  }
  d->ctxt = ctxt;
  ctxt->userData = d;
  /* XML_PARSE_NOENT: without it libxml2 hands an attribute value that had
   * &amp; or &#38; over with "&#38;" in it (for its tree builder to re-parse).
   * Only predefined entities and character references can be substituted:
   * a DOCTYPE, where other entities would be declared, stops the parse. */
  xmlCtxtUseOptions(ctxt, XML_PARSE_NONET | XML_PARSE_NOENT | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  sax = ctxt->sax; /* the context's own handler: replace every callback */
  memset(sax, 0, sizeof *sax);
  sax->initialized = XML_SAX2_MAGIC;
  sax->startElementNs = on_start;
  sax->endElementNs = on_end;
  sax->characters = on_text;
  sax->cdataBlock = on_text;
  sax->internalSubset = on_dtd;
  sax->externalSubset = on_dtd;
  sax->getEntity = on_entity;
  sax->getParameterEntity = on_entity;
  sax->serror = on_error;
  {
    pa_xml_handlers saved;
    pa_xml_quiet(&saved);
    xmlParseDocument(ctxt);
    pa_xml_restore(&saved);
  }
  if (!d->failed && (!ctxt->wellFormed || ctxt->errNo != 0)) doc_fail(d, "invalid XML");
  if (!d->failed && d->nodes.len == 0) doc_fail(d, "no root element");
  return !d->failed;
}

static int is_space_only(const char *s, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') return 0;
  return 1;
}

typedef struct {
  lua_State *L;
  xdoc *d;
  int lists;  /* stack index of the caller's list table */
  int cache;  /* stack index of the name-string cache */
  int array_mt; /* stack index of the planapi.array metatable */
  int next;   /* next free cache index */
} builder;

/* Push the Lua string of a name ("@name" for an attribute), cached. */
static void push_name(builder *b, uint32_t ni, int attr) {
  lua_State *L = b->L;
  xname *e = NAME(b->d, ni);
  int *ref = attr ? &e->attr_ref : &e->ref;
  if (*ref) {
    lua_rawgeti(L, b->cache, *ref);
    return;
  }
  if (attr) {
    luaL_Buffer lb;
    luaL_buffinit(L, &lb);
    luaL_addchar(&lb, '@');
    luaL_addlstring(&lb, (const char *)e->name, e->len);
    luaL_pushresult(&lb);
  } else {
    lua_pushlstring(L, (const char *)e->name, e->len);
  }
  lua_pushvalue(L, -1);
  *ref = ++b->next;
  lua_rawseti(L, b->cache, *ref);
}

static int is_container(builder *b, xnode *n) {
  xname *e = NAME(b->d, n->name);
  if (n->has_count) return 1;
  if (e->container < 0) {
    push_name(b, n->name, 0);
    lua_rawget(b->L, b->lists);
    e->container = lua_toboolean(b->L, -1);
    lua_pop(b->L, 1);
  }
  return e->container;
}

static void build(builder *b, int32_t ni) {
  lua_State *L = b->L;
  xdoc *d = b->d;
  xnode *n = NODE(d, ni);
  int t, container = is_container(b, n);
  uint32_t i;
  int32_t c;

  if (!container && n->nchildren == 0 && n->nattrs == 0) {
    lua_pushlstring(L, TEXT(d, n), n->text_len);
    return;
  }
  luaL_checkstack(L, 8, "XML decode");
  lua_createtable(L, container ? (int)n->nchildren : 0, (int)n->nattrs + (container ? 0 : (int)n->nchildren));
  t = lua_gettop(L);
  for (i = 0; i < n->nattrs; i++) {
    xattr *a = ATTR(d, n->attr_first + i);
    push_name(b, a->name, 1);
    lua_pushlstring(L, d->strs.p + a->val_off, a->val_len);
    lua_rawset(L, t);
  }
  if (container) {
    lua_Integer k = 0;
    /* Marked, so an empty one still prints and encodes as an array. */
    lua_pushvalue(L, b->array_mt);
    lua_setmetatable(L, t);
    for (c = n->first_child; c >= 0; c = NODE(d, c)->next_sibling) {
      build(b, c);
      lua_rawseti(L, t, ++k);
    }
    return;
  }
  for (c = n->first_child; c >= 0; c = NODE(d, c)->next_sibling) {
    xnode *ch = NODE(d, c);
    push_name(b, ch->name, 0);
    if (!ch->repeated && ch->nchildren == 0 && ch->nattrs == 0 && NAME(d, ch->name)->container == 0) {
      /* the common case, a plain leaf: its text, without a call */
      lua_pushlstring(L, TEXT(d, ch), ch->text_len);
      lua_rawset(L, t);
      continue;
    }
    if (ch->repeated) {
      lua_pushvalue(L, -1);
      lua_rawget(L, t);
      if (lua_isnil(L, -1)) { /* first occurrence: the array */
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, b->array_mt);
        lua_setmetatable(L, -2);
        lua_pushvalue(L, -2);
        lua_pushvalue(L, -2);
        lua_rawset(L, t);
      }
      build(b, c);
      lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
      lua_pop(L, 2); /* the array and the name */
    } else {
      build(b, c);
      lua_rawset(L, t);
    }
  }
  if (n->text_len && (n->nchildren == 0 || !is_space_only(TEXT(d, n), n->text_len))) {
    lua_pushlstring(L, TEXT(d, n), n->text_len);
    lua_setfield(L, t, "#text");
  }
}

static void doc_free(xdoc *d) {
  if (d->ctxt) {
    xmlFreeParserCtxt(d->ctxt);
    d->ctxt = NULL;
  }
  pa_buf_free(&d->nodes);
  pa_buf_free(&d->attrs);
  pa_buf_free(&d->strs);
  pa_buf_free(&d->names);
  free(d->slots);
  d->slots = NULL;
  d->nslots = 0;
}

static int doc_gc(lua_State *L) {
  doc_free((xdoc *)lua_touserdata(L, 1));
  return 0;
}

int pa_xml_decode(lua_State *L, const char *s, size_t len, int lists) {
  xdoc *d;
  builder b;
  lists = lua_absindex(L, lists);
  d = (xdoc *)lua_newuserdatauv(L, sizeof *d, 0);
  memset(d, 0, sizeof *d);
  /* The arena and parser are freed by __gc if building the tables raises. */
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, doc_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  if (!parse_doc(d, s, len)) {
    doc_free(d);
    lua_pushstring(L, d->err);
    lua_remove(L, -2);
    return 0;
  }
  luaL_getmetatable(L, PA_ARRAY_MT);
  b.array_mt = lua_gettop(L);
  lua_newtable(L); /* the name cache */
  b.L = L;
  b.d = d;
  b.lists = lists;
  b.cache = lua_gettop(L);
  b.next = 0;
  build(&b, 0);
  doc_free(d); /* give the memory back now, not at the next GC */
  lua_replace(L, -4); /* result over the arena; drop the metatable and the cache */
  lua_pop(L, 2);
  return 1;
}

void pa_xml_init(void) {
  xmlInitParser();
}
