/* utf8.h: UTF-8 validation shared by the JSON and XML encoders. */
#ifndef PLANAPI_UTF8_H
#define PLANAPI_UTF8_H

#include <stddef.h>

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if it is invalid:
 * overlong forms, surrogates and code points past U+10FFFF are refused. */
size_t pa_utf8_seq(const unsigned char *s, size_t left);

#endif
