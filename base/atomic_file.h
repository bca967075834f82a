/*
 * atomic_file.h — write a whole file so readers see the old one or the new one, never half.
 *
 * The bytes go to a temporary file created next to the target with O_CREAT|O_EXCL|
 * O_NOFOLLOW (a symlink planted there is never followed), then rename(2) replaces the
 * target — which replaces a symlink at the target itself rather than writing through it.
 */
#ifndef OFFLOAD_ATOMIC_FILE_H
#define OFFLOAD_ATOMIC_FILE_H

#include <stddef.h>

/* Returns 0, or -1 with errno set (the temporary file is removed). */
int atomic_file_write(const char *path, const char *data, size_t len);

#endif /* OFFLOAD_ATOMIC_FILE_H */
