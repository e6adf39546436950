/* sign.c: the Planfix XML API request signature (Planfix's XML API documentation, signature), md5
 * from OpenSSL's libcrypto.
 *
 * The signature is computed over the encoded request itself, read back
 * with libxml2, so it follows the reference algorithm for whatever XML is
 * sent (not a second, table-based reading that could drift from it):
 *   method attribute, then the children of <request> except <signature>,
 *   sorted by tag name in byte order (stable: repeated names keep document
 *   order), each flattened: an element with children gives its attribute
 *   values then its sorted children; a leaf with non-blank text gives the
 *   text; a blank leaf gives its attribute values; then the private key.
 *   signature = lower-case hex md5 of those UTF-8 bytes. */
#include "xml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "errors.h"
#include "luax.h"

#define MAX_DEPTH 64

static int blank(const xmlChar *s) {
  for (; s && *s; s++)
    if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') return 0;
  return 1;
}

static int has_element_child(xmlNodePtr n) {
  xmlNodePtr c;
  for (c = n->children; c; c = c->next)
    if (c->type == XML_ELEMENT_NODE) return 1;
  return 0;
}

static int add_attr_values(pa_buf *out, xmlNodePtr n) {
  xmlAttrPtr a;
  for (a = n->properties; a; a = a->next) {
    xmlChar *v = xmlNodeListGetString(n->doc, a->children, 1);
    int ok = v == NULL || pa_buf_add(out, (const char *)v, strlen((const char *)v));
    xmlFree(v);
    if (!ok) return 0;
  }
  return 1;
}

/* Stable order by tag name in byte order: insertion sort keeps equal names
 * in document order (request elements have few children). */
static xmlNodePtr *sorted_children(xmlNodePtr n, size_t *count, int skip_signature) {
  xmlNodePtr c, *v;
  size_t k = 0, i;
  for (c = n->children; c; c = c->next)
    if (c->type == XML_ELEMENT_NODE) k++;
  v = (xmlNodePtr *)malloc((k ? k : 1) * sizeof(xmlNodePtr));
  if (v == NULL) return NULL;
  k = 0;
  for (c = n->children; c; c = c->next) {
    if (c->type != XML_ELEMENT_NODE) continue;
    if (skip_signature && strcmp((const char *)c->name, "signature") == 0) continue;
    for (i = k; i > 0 && strcmp((const char *)v[i - 1]->name, (const char *)c->name) > 0; i--)
      v[i] = v[i - 1];
    v[i] = c;
    k++;
  }
  *count = k;
  return v;
}

static int flatten(pa_buf *out, xmlNodePtr n, int depth) {
  if (depth > MAX_DEPTH) return 0;
  if (has_element_child(n)) {
    size_t k, i;
    xmlNodePtr *kids;
    if (!add_attr_values(out, n)) return 0;
    kids = sorted_children(n, &k, 0);
    if (kids == NULL) return 0;
    for (i = 0; i < k; i++)
      if (!flatten(out, kids[i], depth + 1)) {
        free(kids);
        return 0;
      }
    free(kids);
    return 1;
  } else {
    xmlChar *text = xmlNodeGetContent(n);
    int ok;
    if (text != NULL && !blank(text)) ok = pa_buf_add(out, (const char *)text, strlen((const char *)text));
    else ok = add_attr_values(out, n);
    xmlFree(text);
    return ok;
  }
}

/* The string to be hashed (without the key): 1, or 0 with err set. */
static int sign_string(const char *xml, size_t len, pa_buf *out, const char **err) {
  xmlDocPtr doc;
  xmlNodePtr root, *kids;
  xmlChar *method;
  size_t k, i;
  int ok = 1;
  if (len > 0x7fffffff) {
    *err = "request too large";
    return 0;
  }
  /* Our own request: still parsed with no network and no entity expansion. */
  {
    pa_xml_handlers saved;
    pa_xml_quiet(&saved);
    doc = xmlReadMemory(xml, (int)len, NULL, "UTF-8",
                        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    pa_xml_restore(&saved);
  }
  if (doc == NULL) {
    *err = "the request is not well-formed XML";
    return 0;
  }
  root = xmlDocGetRootElement(doc);
  method = root ? xmlGetProp(root, (const xmlChar *)"method") : NULL;
  if (root == NULL || strcmp((const char *)root->name, "request") != 0 || method == NULL) {
    xmlFree(method);
    xmlFreeDoc(doc);
    *err = "the request must be <request method=\"...\">";
    return 0;
  }
  ok = pa_buf_add(out, (const char *)method, strlen((const char *)method));
  xmlFree(method);
  kids = ok ? sorted_children(root, &k, 1) : NULL;
  if (kids == NULL) ok = 0;
  for (i = 0; ok && i < k; i++) ok = flatten(out, kids[i], 1);
  free(kids);
  xmlFreeDoc(doc);
  if (!ok) *err = "out of memory or nested too deep";
  return ok;
}

int pa_md5_hex(const char *s, size_t len, char hex[33]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  size_t i;
  static const char digits[] = "0123456789abcdef";
  if (!EVP_Digest(s, len, md, &n, EVP_md5(), NULL) || n != 16) return 0;
  for (i = 0; i < n; i++) {
    hex[2 * i] = digits[md[i] >> 4];
    hex[2 * i + 1] = digits[md[i] & 15];
  }
  hex[32] = '\0';
  return 1;
}

int pa_xml_signature(lua_State *L, const char *xml, size_t len, const char *key, size_t klen,
                     char hex[33]) {
  pa_buf *b = pa_buf_push_owned(L);
  const char *err = NULL;
  if (!sign_string(xml, len, b, &err)) {
    lua_pop(L, 1);
    return pa_error_raise(L, "cannot sign the request: %s", err);
  }
  if (!pa_buf_add(b, key, klen) || !pa_md5_hex(b->p, b->len, hex)) {
    lua_pop(L, 1);
    return luaL_error(L, "out of memory");
  }
  lua_pop(L, 1);
  return 1;
}

/* core.xml_sign_string(xml) -> the string the signature hashes (no key). */
static int l_sign_string(lua_State *L) {
  size_t len;
  const char *xml = luaL_checklstring(L, 1, &len), *err = NULL;
  pa_buf *b = pa_buf_push_owned(L);
  if (!sign_string(xml, len, b, &err)) return pa_error_raise(L, "cannot sign the request: %s", err);
  lua_pushlstring(L, b->p ? b->p : "", b->len);
  return 1;
}

/* core.xml_signature(xml, key) -> lower-case hex md5 */
static int l_signature(lua_State *L) {
  size_t len, klen;
  const char *xml = luaL_checklstring(L, 1, &len);
  const char *key = luaL_checklstring(L, 2, &klen);
  char hex[33];
  pa_xml_signature(L, xml, len, key, klen, hex);
  lua_pushstring(L, hex);
  return 1;
}

static int l_md5(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  char hex[33];
  if (!pa_md5_hex(s, len, hex)) return luaL_error(L, "md5 failed");
  lua_pushstring(L, hex);
  return 1;
}

/* core.base64(s): for HTTP Basic credentials. */
static int l_base64(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  pa_buf *b = pa_buf_push_owned(L);
  int n;
  if (len > 0x3ffffff0 || !pa_buf_reserve(b, 4 * ((len + 2) / 3) + 1)) return luaL_error(L, "out of memory");
  n = EVP_EncodeBlock((unsigned char *)b->p, (const unsigned char *)s, (int)len);
  lua_pushlstring(L, b->p, (size_t)n);
  return 1;
}

void pa_sign_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"xml_sign_string", l_sign_string}, {"xml_signature", l_signature},
                                 {"md5_hex", l_md5},                 {"base64", l_base64},
                                 {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
