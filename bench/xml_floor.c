/* xml_floor.c: the baselines for XML decoding, in the same run as planapi:
 * libxml2's DOM parse (xmlReadMemory + xmlFreeDoc) and a bare SAX2 pass
 * with empty callbacks, over the same bytes. Prints CPU microseconds per
 * parse: "dom <us>" and "sax <us>".
 *   xml_floor FILE ITERATIONS */
#include <libxml/parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_start(void *ctx, const xmlChar *l, const xmlChar *p, const xmlChar *u, int nn,
                     const xmlChar **ns, int na, int nd, const xmlChar **a) {
  (void)ctx, (void)l, (void)p, (void)u, (void)nn, (void)ns, (void)na, (void)nd, (void)a;
}
static void on_end(void *ctx, const xmlChar *l, const xmlChar *p, const xmlChar *u) {
  (void)ctx, (void)l, (void)p, (void)u;
}
static void on_text(void *ctx, const xmlChar *ch, int len) { (void)ctx, (void)ch, (void)len; }

int main(int argc, char **argv) {
  FILE *f;
  char *buf;
  long len;
  int i, n;
  double t0;
  xmlSAXHandler sax;
  if (argc < 3) return 2;
  f = fopen(argv[1], "rb");
  if (!f) return 1;
  fseek(f, 0, SEEK_END);
  len = ftell(f);
  fseek(f, 0, SEEK_SET);
  buf = malloc((size_t)len);
  if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) return 1;
  fclose(f);
  n = atoi(argv[2]);
  xmlInitParser();

  t0 = cpu_now();
  for (i = 0; i < n; i++) {
    xmlDocPtr doc = xmlReadMemory(buf, (int)len, NULL, NULL, XML_PARSE_NONET);
    if (!doc) return 1;
    xmlFreeDoc(doc);
  }
  printf("dom %.1f\n", (cpu_now() - t0) / n * 1e6);

  memset(&sax, 0, sizeof sax);
  sax.initialized = XML_SAX2_MAGIC;
  sax.startElementNs = on_start;
  sax.endElementNs = on_end;
  sax.characters = on_text;
  t0 = cpu_now();
  for (i = 0; i < n; i++) {
    xmlParserCtxtPtr ctxt = xmlCreatePushParserCtxt(&sax, NULL, NULL, 0, NULL);
    xmlCtxtUseOptions(ctxt, XML_PARSE_NONET);
    xmlParseChunk(ctxt, buf, (int)len, 1);
    xmlFreeParserCtxt(ctxt);
  }
  printf("sax %.1f\n", (cpu_now() - t0) / n * 1e6);
  free(buf);
  return 0;
}
