/*
 * sotto_decoder_decode_batch on the CPU: every item equals, bit for bit, what a fresh decoder
 * with the same parameters gives for its groups (push, then flush): the golden codes of the
 * small FlexiCodec fixtures cut and tiled to items of 1 group up to three times the fixture,
 * with 0, some and all RVQ stages, an empty item, and a decoder with fewer decoded stages and
 * segment windows; the decoder still works afterwards; bad items (NULL buffers, an index, code
 * or length out of range, too many frames, a short capacity) report their own error while the
 * others run, and the call returns the first one's with its detail.
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sotto/sotto.h"
#include "sotto/sotto_codec.h"
#include "testutil.h"

/* On the CPU even where a device exists (AUTO would take it): this is the CPU path's test;
 * tests/gpu/test_backend_cuda.c checks the device's. */
static sotto_model *load(const char *rel)
{
    sotto_model *m = NULL;
    sotto_status st;
    sotto_model_params p = sotto_model_default_params();
    p.backend = SOTTO_BACKEND_CPU;
    int rc = sotto_model_load_file(tu_data_path(rel), &p, &m, &st);
    if (rc) fprintf(stderr, "load %s: %s\n", rel, st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    return m;
}

/* The golden codes of a fixture. */
typedef struct codes {
    sotto_gguf *g;
    const int32_t *len, *fsq, *rvq;
    int G, nq;
} codes;

static const int32_t *ints(const sotto_gguf *g, const char *name, int64_t *n0, int64_t *n1)
{
    const sotto_gguf_tensor *t = sotto_gguf_find_tensor(g, name);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL_FATAL(t->dtype, SOTTO_DTYPE_I32);
    if (n0) *n0 = t->shape[0];
    if (n1) *n1 = t->n_dims > 1 ? t->shape[1] : 1;
    return t->data;
}

/* The golden file's codes; decode-small's name them "fsq", "rvq", "lengths". */
static void codes_open(codes *c, const char *golden)
{
    c->g = tu_golden_open(golden);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c->g);
    int64_t G, nq;
    const int short_names = sotto_gguf_find_tensor(c->g, "fsq_index") == NULL;
    c->fsq = ints(c->g, short_names ? "fsq" : "fsq_index", &G, NULL);
    c->rvq = ints(c->g, short_names ? "rvq" : "rvq_codes", NULL, &nq);
    c->len = ints(c->g, short_names ? "lengths" : "token_lengths", NULL, NULL);
    c->G = (int)G;
    c->nq = (int)nq;
}

/* An item of n groups: the golden groups from o on, wrapping, with their first `stages` codes;
 * its arrays malloc'd (freed by item_free), its output sized for its frames. */
static void item_make(const codes *c, int o, int n, int stages, sotto_decoder_item *it)
{
    memset(it, 0, sizeof *it);
    int32_t *len = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    int32_t *fsq = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    int32_t *rvq = malloc(sizeof(int32_t) * (size_t)(n * stages > 0 ? n * stages : 1));
    CU_ASSERT_FATAL(len && fsq && rvq);
    int64_t T = 0;
    for (int k = 0; k < n; k++) {
        const int g = (o + k) % c->G;
        len[k] = c->len[g];
        fsq[k] = c->fsq[g];
        for (int q = 0; q < stages; q++)
            rvq[k * stages + q] = c->rvq[(int64_t)g * c->nq + q];
        T += len[k];
    }
    it->lengths = len;
    it->fsq = fsq;
    it->rvq = rvq;
    it->n_groups = n;
    it->n_stages = stages;
    it->capacity = (size_t)(T * 1280 + 1280); /* above hop·T − trim for any fixture hop ≤ 1280 */
    it->out = malloc(sizeof(float) * it->capacity);
    CU_ASSERT_PTR_NOT_NULL_FATAL(it->out);
    it->result = 12345;
}

static void item_free(sotto_decoder_item *it)
{
    free((void *)it->lengths);
    free((void *)it->fsq);
    free((void *)it->rvq);
    free(it->out);
}

/* A fresh decoder's output for the item: push, then flush. */
static float *fresh(const sotto_model *m, const sotto_decoder_params *p,
                    const sotto_decoder_item *it, int *n)
{
    sotto_decoder *d = NULL;
    sotto_status st;
    CU_ASSERT_EQUAL_FATAL(sotto_decoder_create(m, p, &d, &st), SOTTO_OK);
    CU_ASSERT_EQUAL_FATAL(
        sotto_decoder_push(d, it->lengths, it->fsq, it->rvq, it->n_groups, it->n_stages), SOTTO_OK);
    const size_t cap = sotto_decoder_output_samples(d);
    float *y = malloc(sizeof(float) * (cap ? cap : 1));
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    *n = sotto_decoder_flush(d, y, cap);
    CU_ASSERT_EQUAL_FATAL(*n, (int)cap);
    sotto_decoder_free(d);
    return y;
}

/* Batches items of every kind on a decoder with params p and checks each against a fresh
 * decoder, bit for bit. */
static void check_equal(const char *model, const char *golden, const sotto_decoder_params *p)
{
    sotto_model *m = load(model);
    codes c;
    codes_open(&c, golden);
    const int nq = c.nq;
    /* (first group, groups, stages) */
    const int spec[][3] = {{0, c.G, nq}, {1, 1, 0},        {2, 3, 1},
                           {0, 0, 0},    {3, 3 * c.G, nq}, {5, c.G / 2 + 1, nq - 1},
                           {0, c.G, 0},  {4, 2, nq},       {c.G - 1, 7, nq > 1 ? 2 : 1}};
    enum { N = sizeof spec / sizeof spec[0] };
    sotto_decoder_item items[N];
    for (int i = 0; i < N; i++)
        item_make(&c, spec[i][0], spec[i][1], spec[i][2], &items[i]);
    sotto_decoder *d = NULL;
    sotto_status st;
    CU_ASSERT_EQUAL_FATAL(sotto_decoder_create(m, p, &d, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_decoder_batch_gap_frames(d), 0); /* the CPU packs nothing */
    /* something buffered before: the batch starts from a reset */
    CU_ASSERT_EQUAL(sotto_decoder_push(d, c.len, c.fsq, c.rvq, 2, nq), SOTTO_OK);
    const int rc = sotto_decoder_decode_batch(d, items, N);
    if (rc) fprintf(stderr, "batch: %s\n", sotto_decoder_last_error(d));
    CU_ASSERT_EQUAL(rc, SOTTO_OK);
    for (int i = 0; i < N; i++) {
        int n = 0;
        float *ref = fresh(m, p, &items[i], &n);
        CU_ASSERT_EQUAL(items[i].result, n);
        if (items[i].result == n)
            CU_ASSERT(n == 0 || !memcmp(ref, items[i].out, sizeof(float) * (size_t)n));
        free(ref);
    }
    /* the decoder was reset and still decodes */
    CU_ASSERT_EQUAL(sotto_decoder_buffered_frames(d), 0);
    CU_ASSERT_EQUAL(sotto_decoder_push(d, items[0].lengths, items[0].fsq, items[0].rvq,
                                       items[0].n_groups, items[0].n_stages),
                    SOTTO_OK);
    const size_t cap = sotto_decoder_output_samples(d);
    float *y = malloc(sizeof(float) * cap);
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    CU_ASSERT_EQUAL(sotto_decoder_flush(d, y, cap), (int)cap);
    CU_ASSERT(!memcmp(y, items[0].out, sizeof(float) * cap));
    free(y);
    /* no items: nothing to do */
    CU_ASSERT_EQUAL(sotto_decoder_decode_batch(d, NULL, 0), SOTTO_OK);
    printf("  %s: %d items of %d groups and %d stages at most, bit-identical\n", model, N, 3 * c.G,
           nq);
    for (int i = 0; i < N; i++)
        item_free(&items[i]);
    sotto_decoder_free(d);
    sotto_gguf_close(c.g);
    sotto_model_free(m);
}

static void test_equal(void)
{
    sotto_decoder_params p = sotto_decoder_default_params();
    check_equal("flexicodec/small.gguf", "flexicodec/small_golden.gguf", &p);
    check_equal("flexicodec/decode-small.gguf", "flexicodec/decode-small_golden.gguf", &p);
}

/* Fewer decoded stages (pushed stages beyond them dropped) and segment windows: the items the
 * decoder would segment are segmented in the batch too. */
static void test_params(void)
{
    sotto_decoder_params p = sotto_decoder_default_params();
    p.max_stages = 1;
    p.segment_frames = 8;
    p.overlap_frames = 2;
    p.max_frames = 400;
    check_equal("flexicodec/small.gguf", "flexicodec/small_golden.gguf", &p);
}

static void test_errors(void)
{
    sotto_model *m = load("flexicodec/small.gguf");
    codes c;
    codes_open(&c, "flexicodec/small_golden.gguf");
    sotto_decoder_params p = sotto_decoder_default_params();
    p.max_frames = 64;
    sotto_decoder *d = NULL;
    sotto_status st;
    CU_ASSERT_EQUAL_FATAL(sotto_decoder_create(m, &p, &d, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_decoder_decode_batch(NULL, NULL, 0), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_decoder_decode_batch(d, NULL, 1), SOTTO_ERR_INVALID_ARG);
    sotto_decoder_item one;
    item_make(&c, 0, 2, 1, &one);
    CU_ASSERT_EQUAL(sotto_decoder_decode_batch(d, &one, -1), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(one.result, 12345); /* untouched */
    item_free(&one);

    enum { N = 9 };
    sotto_decoder_item it[N];
    for (int i = 0; i < N; i++)
        item_make(&c, i, 3, c.nq, &it[i]);
    free(it[1].out); /* 1: NULL output */
    it[1].out = NULL;
    ((int32_t *)it[2].fsq)[1] = sotto_decoder_fsq_size(d);      /* 2: FSQ index out of range */
    ((int32_t *)it[3].lengths)[0] = 0;                          /* 3: length 0 */
    ((int32_t *)it[4].rvq)[0] = sotto_decoder_codebook_size(d); /* 4: code out of range */
    it[5].capacity = 10;                                        /* 5: short capacity */
    item_free(&it[6]);                                          /* 6: beyond max_frames */
    item_make(&c, 0, 70, 0, &it[6]);
    it[7].n_stages = sotto_decoder_max_stages(d) + 1; /* 7: too many stages */
    const int rc = sotto_decoder_decode_batch(d, it, N);
    CU_ASSERT_EQUAL(rc, SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(sotto_decoder_last_error(d), "batch item 1"));
    printf("  error: %s\n", sotto_decoder_last_error(d));
    const int want[N] = {0,
                         SOTTO_ERR_INVALID_ARG,
                         SOTTO_ERR_INVALID_ARG,
                         SOTTO_ERR_INVALID_ARG,
                         SOTTO_ERR_INVALID_ARG,
                         SOTTO_ERR_BUFFER_TOO_SMALL,
                         SOTTO_ERR_BUFFER_TOO_SMALL,
                         SOTTO_ERR_INVALID_ARG,
                         0};
    for (int i = 0; i < N; i++) {
        if (want[i]) {
            CU_ASSERT_EQUAL(it[i].result, want[i]);
            continue;
        }
        int n = 0;
        float *ref = fresh(m, &p, &it[i], &n);
        CU_ASSERT_EQUAL(it[i].result, n);
        if (it[i].result == n) CU_ASSERT(!memcmp(ref, it[i].out, sizeof(float) * (size_t)n));
        free(ref);
    }
    /* the first failing item's error is returned, whichever it is */
    CU_ASSERT_EQUAL(sotto_decoder_decode_batch(d, it + 5, 2), SOTTO_ERR_BUFFER_TOO_SMALL);
    CU_ASSERT_PTR_NOT_NULL(strstr(sotto_decoder_last_error(d), "batch item 0"));
    it[7].n_stages = c.nq;
    for (int i = 0; i < N; i++)
        item_free(&it[i]);
    sotto_decoder_free(d);
    sotto_gguf_close(c.g);
    sotto_model_free(m);
}

int main(void)
{
    static const tu_test tests[] = {{"each item as a fresh decoder", test_equal},
                                    {"decoded stages and segments", test_params},
                                    {"errors", test_errors},
                                    {NULL, NULL}};
    return tu_run_suite("codec_batch", tests);
}
