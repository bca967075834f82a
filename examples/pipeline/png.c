/* png.c — see png.h. */
#include "examples/pipeline/png.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* length, type, data, CRC-32 of type and data. Returns 0 or -1 (errno set by stdio). */
static int write_chunk(FILE *f, const char type[4], const unsigned char *data, size_t size) {
    unsigned char head[8], tail[4];
    put_be32(head, (uint32_t)size);
    memcpy(head + 4, type, 4);
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, (const Bytef *)type, 4);
    if (size)
        crc = crc32(crc, data, (uInt)size);
    put_be32(tail, (uint32_t)crc);
    if (fwrite(head, 1, 8, f) != 8 || (size && fwrite(data, 1, size, f) != size) ||
        fwrite(tail, 1, 4, f) != 4)
        return -1;
    return 0;
}

int png_write_rgb(const char *path, const unsigned char *rgb, int width, int height) {
    size_t stride = (size_t)width * 3;
    size_t raw_size = (stride + 1) * (size_t)height;
    unsigned char *raw = malloc(raw_size);
    uLongf packed_size = compressBound((uLong)raw_size);
    unsigned char *packed = malloc(packed_size);
    char *tmp = malloc(strlen(path) + 16);
    if (!raw || !packed || !tmp) {
        fprintf(stderr, "pipeline: out of host memory writing %s\n", path);
        free(raw), free(packed), free(tmp);
        return -1;
    }
    for (int y = 0; y < height; y++) {
        raw[(size_t)y * (stride + 1)] = 0; /* filter type: none */
        memcpy(raw + (size_t)y * (stride + 1) + 1, rgb + (size_t)y * stride, stride);
    }
    int rc = -1;
    int z = compress2(packed, &packed_size, raw, (uLong)raw_size, Z_BEST_COMPRESSION);
    if (z != Z_OK) {
        fprintf(stderr, "pipeline: compressing %s failed (zlib error %d)\n", path, z);
        goto out;
    }
    unsigned char ihdr[13];
    put_be32(ihdr, (uint32_t)width);
    put_be32(ihdr + 4, (uint32_t)height);
    ihdr[8] = 8;  /* bits per sample */
    ihdr[9] = 2;  /* colour type: RGB */
    ihdr[10] = 0; /* deflate */
    ihdr[11] = 0; /* adaptive filtering */
    ihdr[12] = 0; /* no interlace */
    static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

    sprintf(tmp, "%s.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, "pipeline: cannot create %s: %s\n", tmp, strerror(errno));
        goto out;
    }
    mode_t mask = umask(0); /* mkstemp makes 0600; give the picture the usual 0666 & ~umask */
    umask(mask);
    fchmod(fd, 0666 & ~mask);
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        unlink(tmp);
        goto out;
    }
    int bad = fwrite(signature, 1, sizeof signature, f) != sizeof signature ||
              write_chunk(f, "IHDR", ihdr, sizeof ihdr) ||
              write_chunk(f, "IDAT", packed, packed_size) || write_chunk(f, "IEND", NULL, 0);
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        fprintf(stderr, "pipeline: cannot write %s: %s\n", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    rc = 0;
out:
    free(raw), free(packed), free(tmp);
    return rc;
}
