/* fs.h: file-system helpers shared by the C files (see fs.c). */
#ifndef PLANAPI_FS_H
#define PLANAPI_FS_H

#include "compat.h"

/* nil and a config error for a failed open(2) of path (errno err) that
 * says what to fix: a missing folder named as such, a permission problem
 * with the user who must be able to write (nginx workers run as nobody). */
int pa_fs_open_error(lua_State *L, const char *what, const char *path, int err);
/* core.write_file_durably, open_output, lock_file, try_lock_file, create_exclusive, mkdir, list_dir. */
void pa_fs_open(lua_State *L);

#endif
