/*
 * png.h — writes an 8-bit RGB image as a PNG file: signature, IHDR, one IDAT (zlib's
 * compress2 over the rows, each with filter type 0) and IEND, each chunk with its CRC-32.
 */
#ifndef PIPELINE_PNG_H
#define PIPELINE_PNG_H

#include <stddef.h>

/* Writes path atomically (a temporary file in the same directory, then rename), so a
 * failed run never leaves half a picture. Returns 0, or -1 with a message on stderr. */
int png_write_rgb(const char *path, const unsigned char *rgb, int width, int height);

#endif /* PIPELINE_PNG_H */
