/*
 * fuzz_manifest.c -- libFuzzer target for mv_manifest_parse.
 *
 * Each input is tried twice: as is (so the checksum and size checks are
 * exercised), and with the recorded file size and the CRC-32C recomputed
 * first, so that mutations reach the checks of counts, names, kinds and
 * positions behind the checksum.  The corpus files are manifests written
 * by mv_generation_publish (shared/fuzz/corpus/fuzz_manifest/, made by
 * gen_manifest_corpus).
 *
 * When a buffer parses, what it describes is used the way the reader uses
 * it, and every promise of the parser checked: 1..MV_GEN_MAX_SEGMENTS
 * segments, each name a valid file name of at most MV_GEN_NAME_MAX bytes
 * (no '/', not starting with '.'), items first and user kinds after, every
 * position's stream name NUL-terminated.  A broken promise traps; a read
 * outside the buffer or the copy is an ASan report.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "generation_format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
check_parsed(const mv_manifest_input_t *in)
{
    size_t    len;
    uint32_t  i;

    if (in->n_segments == 0 || in->n_segments > MV_GEN_MAX_SEGMENTS
        || in->n_positions > MV_SNAPSHOT_MAX_POSITIONS || in->dim == 0)
    {
        __builtin_trap();
    }
    for (i = 0; i < in->n_segments; i++) {
        len = strnlen(in->segments[i], MV_GEN_NAME_MAX + 1);
        if (len > MV_GEN_NAME_MAX || !mv_gen_name_valid(in->segments[i], len)
            || strchr(in->segments[i], '/') != NULL)
        {
            __builtin_trap();
        }
        if ((i == 0) != (in->kinds[i] == MV_GEN_SEGMENT_ITEMS)
            || (i > 0 && in->kinds[i] != MV_GEN_SEGMENT_USER_BASE
                && in->kinds[i] != MV_GEN_SEGMENT_USER_DELTA))
        {
            __builtin_trap();
        }
    }
    for (i = 0; i < in->n_positions; i++) {
        if (memchr(in->positions[i].stream, '\0',
                   sizeof(in->positions[i].stream)) == NULL)
        {
            __builtin_trap();
        }
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mv_manifest_input_t  in;
    uint8_t             *buf;
    uint64_t             file_size = size;
    uint32_t             crc;
    void                *mem;
    int                  pass;

    buf = malloc(size + 1);
    if (buf == NULL) {
        return 0;
    }

    for (pass = 0; pass < 2; pass++) {
        memcpy(buf, data, size);
        if (pass == 1) {
            if (size < MV_GEN_HEADER_SIZE) {
                break;
            }
            memcpy(buf + offsetof(mv_gen_header_t, file_size), &file_size,
                   sizeof(file_size));
            crc = mv_gen_manifest_crc(buf, size);
            memcpy(buf + offsetof(mv_gen_header_t, crc), &crc, sizeof(crc));
        }
        if (mv_manifest_parse(buf, size, &in, &mem, NULL) == MV_OK) {
            check_parsed(&in);
            free(mem);
        } else if (mem != NULL) {
            __builtin_trap();
        }
    }

    free(buf);
    return 0;
}
