/* xml.h: the Planfix XML API's XML: request encoding (xml_encode.c),
 * response decoding (xml_decode.c) and request signing (sign.c). */
#ifndef PLANAPI_XML_H
#define PLANAPI_XML_H

#include <libxml/xmlerror.h>

#include "buf.h"
#include "compat.h"

/* libxml2's global (thread-local) error handlers, saved while a parse of
 * ours runs with them silenced (xml_quiet.c): nothing goes to stderr. */
typedef struct {
  xmlGenericErrorFunc generic;
  void *generic_ctx;
  xmlStructuredErrorFunc structured;
  void *structured_ctx;
} pa_xml_handlers;
void pa_xml_quiet(pa_xml_handlers *saved);
void pa_xml_restore(const pa_xml_handlers *saved);

/* Append <request method="..."> with the params table at idx; raises a
 * config error on a value or name that has no XML form. */
void pa_xml_encode_request(lua_State *L, const char *method, size_t mlen, int params, pa_buf *out);
/* Push the decoded root element and return 1, or push a message and
 * return 0. lists: index of a table whose keys name list containers. */
int pa_xml_decode(lua_State *L, const char *s, size_t len, int lists);
/* The signature of a request document with the private key; raises a
 * config error if the document cannot be read. */
int pa_xml_signature(lua_State *L, const char *xml, size_t len, const char *key, size_t klen,
                     char hex[33]);
int pa_md5_hex(const char *s, size_t len, char hex[33]);
void pa_xml_init(void);
void pa_xml_open(lua_State *L);
void pa_sign_open(lua_State *L);

#endif
