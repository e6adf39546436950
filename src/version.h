/* version.h: the one place the planapi version is written (the rockspec,
 * lua/planapi/init.lua and the User-Agent read it from here or core.version). */
#ifndef PLANAPI_VERSION_H
#define PLANAPI_VERSION_H
#define PLANAPI_VERSION "0.1.0"
#endif
