/* xml_quiet.c: libxml2 reports some errors (a failed encoding conversion,
 * an I/O error) through its generic error handler, which writes to stderr,
 * whatever the parser options say. A library must not write to its host's
 * stderr: around each of our parses the handlers (thread-local in libxml2)
 * point to a no-op, and are put back after. The parse's own outcome still
 * says what went wrong. */
#include "xml.h"

#include <libxml/globals.h>

static void ignore_generic(void *ctx, const char *msg, ...) {
  (void)ctx;
  (void)msg;
}

static void ignore_structured(void *ctx, xmlErrorPtr error) {
  (void)ctx;
  (void)error;
}

void pa_xml_quiet(pa_xml_handlers *saved) {
  saved->generic = xmlGenericError;
  saved->generic_ctx = xmlGenericErrorContext;
  saved->structured = xmlStructuredError;
  saved->structured_ctx = xmlStructuredErrorContext;
  xmlSetGenericErrorFunc(NULL, ignore_generic);
  xmlSetStructuredErrorFunc(NULL, ignore_structured);
}

void pa_xml_restore(const pa_xml_handlers *saved) {
  xmlSetGenericErrorFunc(saved->generic_ctx, saved->generic);
  xmlSetStructuredErrorFunc(saved->structured_ctx, saved->structured);
}
