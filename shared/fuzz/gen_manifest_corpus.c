/*
 * gen_manifest_corpus.c -- writes the seed corpus of fuzz_manifest: valid
 * manifests as mv_generation_publish writes them, over small segments in
 * a scratch directory: one segment and no positions, an items segment
 * with a base and deltas and positions, and the largest shape (64
 * segments, 64 positions).  Run by `make fuzz-corpus` whenever the format
 * changes, so the fuzzer starts from files the current parser accepts.
 *
 *   gen_manifest_corpus DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files.h"
#include "generation.h"
#include "snapshot.h"


#define SEED_DIM  2


/* Writes scratch/name: a snapshot of generation gen, no items, n users. */
static int
write_segment(const char *scratch, const char *name, uint64_t gen,
    uint32_t n_users)
{
    mv_snapshot_input_t  in;
    char                 path[4096], ids[8][8];
    const char          *id_ptrs[8];
    float                vectors[8 * SEED_DIM];
    mv_err_t             err;
    uint32_t             i;

    for (i = 0; i < n_users && i < 8; i++) {
        snprintf(ids[i], sizeof(ids[i]), "u%u", i);
        id_ptrs[i] = ids[i];
        vectors[i * SEED_DIM] = (float) gen;
        vectors[i * SEED_DIM + 1] = (float) i;
    }
    memset(&in, 0, sizeof(in));
    in.generation = gen;
    in.dim = SEED_DIM;
    in.metric = MV_METRIC_L2;
    in.n_users = n_users;
    in.user_ids = id_ptrs;
    in.user_vectors = vectors;
    snprintf(path, sizeof(path), "%s/%s", scratch, name);
    if (mv_snapshot_write(path, &in, &err) != MV_OK) {
        fprintf(stderr, "%s: %s\n", path, err.msg);
        return 1;
    }
    return 0;
}


/* Publishes generation gen over n segments and copies its manifest. */
static int
write_seed(const char *scratch, const char *out, const char *seed_name,
    uint64_t gen, uint32_t n_segments, uint32_t n_positions)
{
    static char          names[MV_GEN_MAX_SEGMENTS][MV_GEN_NAME_MAX + 1];
    const char          *ptrs[MV_GEN_MAX_SEGMENTS];
    uint32_t             kinds[MV_GEN_MAX_SEGMENTS], i;
    mv_stream_pos_t      pos[MV_SNAPSHOT_MAX_POSITIONS];
    mv_manifest_input_t  m;
    mv_err_t             err;
    char                 from[4096], to[4096], buf[1 << 16];
    size_t               len;
    FILE                *fp;
    int                  rc = 0;

    mv_gen_items_name(gen, names[0], sizeof(names[0]));
    kinds[0] = MV_GEN_SEGMENT_ITEMS;
    rc |= write_segment(scratch, names[0], gen, 1);
    for (i = 1; i < n_segments; i++) {
        if (i == 1) {
            mv_gen_base_name(gen * 100 + i, names[i], sizeof(names[i]));
            kinds[i] = MV_GEN_SEGMENT_USER_BASE;
        } else {
            mv_gen_delta_name(gen * 100 + i, names[i], sizeof(names[i]));
            kinds[i] = MV_GEN_SEGMENT_USER_DELTA;
        }
        rc |= write_segment(scratch, names[i], gen * 100 + i, i % 4);
    }
    for (i = 0; i < n_segments; i++) {
        ptrs[i] = names[i];
    }
    memset(pos, 0, sizeof(pos));
    for (i = 0; i < n_positions; i++) {
        snprintf(pos[i].stream, sizeof(pos[i].stream), "user_actions");
        pos[i].partition = i;
        pos[i].offset = 1000 + i;
    }

    memset(&m, 0, sizeof(m));
    m.generation = gen * 100 + MV_GEN_MAX_SEGMENTS;
    m.created_at_ms = 1234;
    m.dim = SEED_DIM;
    m.metric = MV_METRIC_L2;
    m.n_users = 4;
    m.n_segments = n_segments;
    m.segments = ptrs;
    m.kinds = kinds;
    m.n_positions = n_positions;
    m.positions = pos;
    if (rc != 0 || mv_generation_publish(scratch, &m, 100, &err) != MV_OK) {
        fprintf(stderr, "%s: %s\n", seed_name, rc ? "segments" : err.msg);
        return 1;
    }

    snprintf(from, sizeof(from), "%s/%s", scratch,
             mv_gen_manifest_name(m.generation, to, sizeof(to)));
    snprintf(to, sizeof(to), "%s/%s.mvm", out, seed_name);
    fp = fopen(from, "rb");
    if (fp == NULL) {
        return 1;
    }
    len = fread(buf, 1, sizeof(buf), fp);
    fclose(fp);
    fp = fopen(to, "wb");
    if (fp == NULL || fwrite(buf, 1, len, fp) != len) {
        fprintf(stderr, "cannot write %s\n", to);
        if (fp != NULL) {
            fclose(fp);
        }
        return 1;
    }
    fclose(fp);
    return 0;
}


int
main(int argc, char **argv)
{
    char  scratch[] = "/tmp/milvuso-manifest-corpus-XXXXXX";
    char  cmd[4200];
    int   rc = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: gen_manifest_corpus DIR\n");
        return 2;
    }
    if (mkdtemp(scratch) == NULL) {
        perror("mkdtemp");
        return 1;
    }

    rc |= write_seed(scratch, argv[1], "one-segment", 1, 1, 0);
    rc |= write_seed(scratch, argv[1], "base-deltas", 2, 4, 2);
    rc |= write_seed(scratch, argv[1], "largest", 3, MV_GEN_MAX_SEGMENTS,
                     MV_SNAPSHOT_MAX_POSITIONS);

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
    if (system(cmd) != 0) {
        rc = 1;
    }
    return rc;
}
