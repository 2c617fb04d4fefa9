/*
 * Sotto codec packets (sdk/src/io/packet.c): layouts, exact sizes, a bit pattern worked out by
 * hand, random round trips over every FlexiCodec stage count 0..23 and group length 1..8,
 * bitrate switching between packets, and every malformed case the unpacker must refuse
 * (truncation at every byte, trailing bytes, lying counts, out-of-range fields, non-zero
 * padding), each on an exact-size heap copy so a read past the end is caught by ASan.
 */
#include <stdlib.h>
#include <string.h>

#include "io/packet.h"
#include "testutil.h"

#define FLEXI_STAGES 23

static sotto_packet_layout flexi(void)
{
    sotto_packet_layout l;
    sotto_status st;
    CU_ASSERT_EQUAL_FATAL(sotto_packet_layout_flexicodec(&l, FLEXI_STAGES, &st), SOTTO_OK);
    return l;
}

/* Unpacks from an exact-size heap copy of p[0..n). */
static int unpack_exact(const sotto_packet_layout *l, const uint8_t *p, size_t n, int32_t *lens,
                        int32_t *sem, int32_t *ac, int max_groups, int ldc, sotto_packet_info *info,
                        sotto_status *st)
{
    uint8_t *copy = malloc(n ? n : 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
    if (n) memcpy(copy, p, n);
    int rc = sotto_packet_unpack(l, n ? copy : NULL, n, lens, sem, ac, max_groups, ldc, info, st);
    free(copy);
    return rc;
}

static void expect_format(const sotto_packet_layout *l, const uint8_t *p, size_t n,
                          const char *needle)
{
    int32_t lens[64], sem[64], ac[64 * 64];
    sotto_status st;
    st.message[0] = '\0';
    int rc = unpack_exact(l, p, n, lens, sem, ac, 64, 64, NULL, &st);
    CU_ASSERT_EQUAL(rc, SOTTO_ERR_FORMAT);
    CU_ASSERT_EQUAL(st.code, SOTTO_ERR_FORMAT);
    CU_ASSERT(st.message[0] != '\0');
    if (needle) TU_ASSERT_HAS(st.message, needle);
    /* validation-only mode reaches the same verdict */
    CU_ASSERT_EQUAL(unpack_exact(l, p, n, NULL, NULL, NULL, 0, 0, NULL, NULL), SOTTO_ERR_FORMAT);
}

static void test_bits_for(void)
{
    CU_ASSERT_EQUAL(sotto_packet_bits_for(0), 0);
    CU_ASSERT_EQUAL(sotto_packet_bits_for(1), 1);
    CU_ASSERT_EQUAL(sotto_packet_bits_for(7), 3);
    CU_ASSERT_EQUAL(sotto_packet_bits_for(8), 4);
    CU_ASSERT_EQUAL(sotto_packet_bits_for(23), 5);
    CU_ASSERT_EQUAL(sotto_packet_bits_for(4095), 12);
    CU_ASSERT_EQUAL(sotto_packet_bits_for(32767), 15);
    CU_ASSERT_EQUAL(sotto_packet_bits_for(0xffffffffu), 32);
}

static void test_layout(void)
{
    sotto_packet_layout l = flexi();
    CU_ASSERT_EQUAL(l.sem_size, 32768);
    CU_ASSERT_EQUAL(l.sem_bits, 15);
    CU_ASSERT_EQUAL(l.ac_size, 4096);
    CU_ASSERT_EQUAL(l.ac_bits, 12);
    CU_ASSERT_EQUAL(l.max_stages, 23);
    CU_ASSERT_EQUAL(l.max_group_len, 8);
    CU_ASSERT_EQUAL(l.max_groups, SOTTO_PACKET_FLEXICODEC_GROUPS);

    /* a 500-entry k-means codec (9 bits) without acoustic stages or merging */
    sotto_status st;
    CU_ASSERT_EQUAL(sotto_packet_layout_init(&l, 500, 0, 0, 1, 50, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(l.sem_bits, 9);
    CU_ASSERT_EQUAL(l.ac_bits, 0);

    /* each field out of range */
    const sotto_packet_layout good = flexi();
    struct {
        const char *field;
        sotto_packet_layout l;
    } bad[12];
    int n = 0;
    for (int i = 0; i < 12; i++)
        bad[i].l = good;
    bad[n].field = "semantic codebook";
    bad[n++].l.sem_size = 0;
    bad[n].field = "semantic codebook";
    bad[n++].l.sem_size = (1 << 24) + 1;
    bad[n].field = "bits per semantic";
    bad[n++].l.sem_bits = 14;
    bad[n].field = "bits per semantic";
    bad[n++].l.sem_bits = 25;
    bad[n].field = "acoustic codebook";
    bad[n++].l.ac_size = 0;
    bad[n].field = "bits per acoustic";
    bad[n++].l.ac_bits = 11;
    bad[n].field = "acoustic stages";
    bad[n++].l.max_stages = -1;
    bad[n].field = "acoustic stages";
    bad[n++].l.max_stages = SOTTO_PACKET_MAX_STAGES + 1;
    bad[n].field = "group length";
    bad[n++].l.max_group_len = 0;
    bad[n].field = "group length";
    bad[n++].l.max_group_len = SOTTO_PACKET_MAX_GROUP_LEN + 1;
    bad[n].field = "groups per packet";
    bad[n++].l.max_groups = 0;
    bad[n].field = "groups per packet";
    bad[n++].l.max_groups = SOTTO_PACKET_MAX_GROUPS + 1;
    for (int i = 0; i < n; i++) {
        st.message[0] = '\0';
        CU_ASSERT_EQUAL(sotto_packet_layout_check(&bad[i].l, SOTTO_ERR_FORMAT, &st),
                        SOTTO_ERR_FORMAT);
        TU_ASSERT_HAS(st.message, bad[i].field);
        /* and nothing packs or unpacks with it */
        size_t bytes;
        CU_ASSERT_EQUAL(sotto_packet_size(&bad[i].l, 1, 0, &bytes), SOTTO_ERR_INVALID_ARG);
        uint8_t b[4] = {0};
        CU_ASSERT_EQUAL(sotto_packet_unpack(&bad[i].l, b, 4, NULL, NULL, NULL, 0, 0, NULL, NULL),
                        SOTTO_ERR_INVALID_ARG);
    }
    CU_ASSERT_EQUAL(sotto_packet_layout_check(NULL, SOTTO_ERR_FORMAT, NULL), SOTTO_ERR_INVALID_ARG);
}

/* Sizes follow 9 + G·(3 + 15 + 12k) bits for FlexiCodec (4-bit group count, 5-bit stages). */
static void test_sizes(void)
{
    sotto_packet_layout l = flexi();
    size_t bytes = 99;
    CU_ASSERT_EQUAL(sotto_packet_size(&l, 0, 7, &bytes), SOTTO_OK);
    CU_ASSERT_EQUAL(bytes, 0);
    for (int g = 1; g <= 16; g++) {
        for (int k = 0; k <= 23; k++) {
            int64_t bits = 9 + (int64_t)g * (3 + 15 + 12 * k);
            CU_ASSERT_EQUAL(sotto_packet_bits(&l, g, k), bits);
            CU_ASSERT_EQUAL(sotto_packet_size(&l, g, k, &bytes), SOTTO_OK);
            CU_ASSERT_EQUAL(bytes, (size_t)((bits + 7) / 8));
        }
    }
    /* the figures docs/bitstream.md quotes */
    CU_ASSERT_EQUAL(sotto_packet_bits(&l, 16, 7), 1641);
    CU_ASSERT_EQUAL(sotto_packet_size(&l, 16, 7, &bytes), SOTTO_OK);
    CU_ASSERT_EQUAL(bytes, 206);
    CU_ASSERT_EQUAL(sotto_packet_size(&l, 16, 23, &bytes), SOTTO_OK);
    CU_ASSERT_EQUAL(bytes, 590);
    CU_ASSERT_EQUAL(sotto_packet_size(&l, 1, 0, &bytes), SOTTO_OK);
    CU_ASSERT_EQUAL(bytes, 4);
    /* out of range counts */
    CU_ASSERT_EQUAL(sotto_packet_size(&l, 17, 0, &bytes), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_packet_size(&l, 1, 24, &bytes), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_packet_size(&l, -1, 0, &bytes), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_packet_size(&l, 1, 0, NULL), SOTTO_ERR_INVALID_ARG);
}

/* A tiny layout whose packet can be worked out by hand:
 * 2-bit count, 2-bit stages, 2-bit lengths, 2-bit semantic, 3-bit acoustic. */
static void test_bit_pattern(void)
{
    sotto_packet_layout l;
    CU_ASSERT_EQUAL_FATAL(sotto_packet_layout_init(&l, 4, 8, 2, 4, 4, NULL), SOTTO_OK);
    const int32_t lens[2] = {1, 4}, sem[2] = {2, 3}, ac[2] = {5, 6};
    uint8_t out[8];
    memset(out, 0xee, sizeof out);
    size_t n = 0;
    CU_ASSERT_EQUAL(sotto_packet_pack(&l, 2, 1, lens, sem, ac, 1, out, sizeof out, &n, NULL),
                    SOTTO_OK);
    /* 01 01 | 00 11 | 10 11 | 101 110 | 000000 */
    const uint8_t want[3] = {0x53, 0xbb, 0x80};
    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT_EQUAL(memcmp(out, want, 3), 0);
    CU_ASSERT_EQUAL(out[3], 0xee); /* nothing written past the packet */
    int32_t l2[4], s2[4], a2[8];
    sotto_packet_info info;
    CU_ASSERT_EQUAL(unpack_exact(&l, want, 3, l2, s2, a2, 4, 2, &info, NULL), SOTTO_OK);
    CU_ASSERT_EQUAL(info.n_groups, 2);
    CU_ASSERT_EQUAL(info.n_stages, 1);
    CU_ASSERT_EQUAL(info.n_frames, 5);
    CU_ASSERT(l2[0] == 1 && l2[1] == 4 && s2[0] == 2 && s2[1] == 3);
    CU_ASSERT(a2[0] == 5 && a2[2] == 6); /* group-major with stride 2 */
}

static void random_groups(tu_rng *r, const sotto_packet_layout *l, int g, int k, int32_t *lens,
                          int32_t *sem, int32_t *ac, int ldc)
{
    for (int i = 0; i < g; i++) {
        lens[i] = 1 + (int32_t)(tu_rng_u32(r) % (uint32_t)l->max_group_len);
        sem[i] = (int32_t)(tu_rng_u32(r) % (uint32_t)l->sem_size);
        for (int s = 0; s < k; s++)
            ac[i * ldc + s] = (int32_t)(tu_rng_u32(r) % (uint32_t)l->ac_size);
    }
    /* the extremes appear in every packet */
    lens[0] = 1;
    lens[g - 1] = l->max_group_len;
    sem[0] = l->sem_size - 1;
    if (k > 0) ac[(g - 1) * ldc + k - 1] = l->ac_size - 1;
}

static void test_roundtrip(void)
{
    tu_rng r;
    tu_rng_init(&r, tu_seed());
    sotto_packet_layout l = flexi();
    int32_t lens[16], sem[16], ac[16 * 23], l2[16], s2[16], a2[16 * 23];
    uint8_t buf[600];
    int checked = 0;
    for (int k = 0; k <= 23; k++) {
        for (int rep = 0; rep < 8; rep++) {
            int g = 1 + (int)(tu_rng_u32(&r) % 16u);
            if (rep == 0) g = 1;
            if (rep == 1) g = 16;
            random_groups(&r, &l, g, k, lens, sem, ac, 23);
            size_t n = 0, want;
            CU_ASSERT_EQUAL_FATAL(
                sotto_packet_pack(&l, g, k, lens, sem, ac, 23, buf, sizeof buf, &n, NULL),
                SOTTO_OK);
            CU_ASSERT_EQUAL(sotto_packet_size(&l, g, k, &want), SOTTO_OK);
            CU_ASSERT_EQUAL(n, want);
            sotto_packet_info info;
            memset(a2, 0xff, sizeof a2);
            CU_ASSERT_EQUAL_FATAL(unpack_exact(&l, buf, n, l2, s2, a2, 16, 23, &info, NULL),
                                  SOTTO_OK);
            CU_ASSERT_EQUAL(info.n_groups, g);
            CU_ASSERT_EQUAL(info.n_stages, k);
            int frames = 0;
            for (int i = 0; i < g; i++) {
                frames += lens[i];
                CU_ASSERT_EQUAL(l2[i], lens[i]);
                CU_ASSERT_EQUAL(s2[i], sem[i]);
                for (int s = 0; s < k; s++)
                    CU_ASSERT_EQUAL(a2[i * 23 + s], ac[i * 23 + s]);
            }
            CU_ASSERT_EQUAL(info.n_frames, frames);
            /* a tight stride (ldc = k) unpacks the same codes */
            if (k > 0) {
                CU_ASSERT_EQUAL(unpack_exact(&l, buf, n, NULL, NULL, a2, 16, k, NULL, NULL),
                                SOTTO_OK);
                for (int i = 0; i < g; i++)
                    for (int s = 0; s < k; s++)
                        CU_ASSERT_EQUAL(a2[i * k + s], ac[i * 23 + s]);
            }
            checked++;
        }
    }
    CU_ASSERT_EQUAL(checked, 24 * 8);
    /* every group length 1..8 in one packet */
    for (int i = 0; i < 8; i++) {
        lens[i] = i + 1;
        sem[i] = i;
    }
    size_t n;
    CU_ASSERT_EQUAL(sotto_packet_pack(&l, 8, 0, lens, sem, NULL, 0, buf, sizeof buf, &n, NULL),
                    SOTTO_OK);
    sotto_packet_info info;
    CU_ASSERT_EQUAL(unpack_exact(&l, buf, n, l2, s2, NULL, 16, 0, &info, NULL), SOTTO_OK);
    CU_ASSERT_EQUAL(info.n_frames, 36);
    for (int i = 0; i < 8; i++)
        CU_ASSERT_EQUAL(l2[i], i + 1);
}

/* Packets of different stage counts back to back, each unpacked on its own. */
static void test_bitrate_switching(void)
{
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 1);
    sotto_packet_layout l = flexi();
    enum { N = 40 };
    uint8_t stream[N * 600];
    size_t off[N + 1];
    int ks[N], gs[N];
    int32_t lens[N][16], sem[N][16], ac[N][16 * 23];
    off[0] = 0;
    for (int p = 0; p < N; p++) {
        ks[p] = (int)(tu_rng_u32(&r) % 24u);
        gs[p] = 1 + (int)(tu_rng_u32(&r) % 16u);
        random_groups(&r, &l, gs[p], ks[p], lens[p], sem[p], ac[p], 23);
        size_t n;
        CU_ASSERT_EQUAL_FATAL(sotto_packet_pack(&l, gs[p], ks[p], lens[p], sem[p], ac[p], 23,
                                                stream + off[p], sizeof stream - off[p], &n, NULL),
                              SOTTO_OK);
        off[p + 1] = off[p] + n;
    }
    for (int p = 0; p < N; p++) {
        int32_t l2[16], s2[16], a2[16 * 23];
        sotto_packet_info info;
        CU_ASSERT_EQUAL_FATAL(
            unpack_exact(&l, stream + off[p], off[p + 1] - off[p], l2, s2, a2, 16, 23, &info, NULL),
            SOTTO_OK);
        CU_ASSERT_EQUAL(info.n_stages, ks[p]);
        CU_ASSERT_EQUAL(info.n_groups, gs[p]);
        CU_ASSERT_EQUAL(memcmp(l2, lens[p], (size_t)gs[p] * 4), 0);
        CU_ASSERT_EQUAL(memcmp(s2, sem[p], (size_t)gs[p] * 4), 0);
        for (int i = 0; i < gs[p]; i++)
            for (int s = 0; s < ks[p]; s++)
                CU_ASSERT_EQUAL(a2[i * 23 + s], ac[p][i * 23 + s]);
    }
}

static void test_empty_packet(void)
{
    sotto_packet_layout l = flexi();
    size_t n = 7;
    CU_ASSERT_EQUAL(sotto_packet_pack(&l, 0, 0, NULL, NULL, NULL, 0, NULL, 0, &n, NULL), SOTTO_OK);
    CU_ASSERT_EQUAL(n, 0);
    sotto_packet_info info = {5, 5, 5};
    CU_ASSERT_EQUAL(sotto_packet_unpack(&l, NULL, 0, NULL, NULL, NULL, 0, 0, &info, NULL),
                    SOTTO_OK);
    CU_ASSERT(info.n_groups == 0 && info.n_stages == 0 && info.n_frames == 0);
}

/* A valid packet cut at every byte, and with one byte too many. */
static void test_truncated(void)
{
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 2);
    sotto_packet_layout l = flexi();
    int32_t lens[16], sem[16], ac[16 * 23];
    uint8_t buf[601];
    for (int k = 0; k <= 23; k += 23) {
        random_groups(&r, &l, 16, k, lens, sem, ac, 23);
        size_t n;
        CU_ASSERT_EQUAL_FATAL(sotto_packet_pack(&l, 16, k, lens, sem, ac, 23, buf, 600, &n, NULL),
                              SOTTO_OK);
        for (size_t cut = 1; cut < n; cut++)
            expect_format(&l, buf, cut, cut < 2 ? "header" : "needs");
        buf[n] = 0;
        expect_format(&l, buf, n + 1, "needs");
    }
}

/* Hand-made packets whose fields lie. */
static void test_lying_fields(void)
{
    uint8_t b[64];
    sotto_bitwriter w;
    sotto_packet_layout l = flexi();

    /* stage count 31 > 23 */
    sotto_bitwriter_init(&w, b, sizeof b);
    sotto_bitwriter_put(&w, 0, 4);
    sotto_bitwriter_put(&w, 31, 5);
    expect_format(&l, b, 64, "acoustic stages");

    /* group count 16 > 10 */
    sotto_packet_layout l10;
    CU_ASSERT_EQUAL_FATAL(sotto_packet_layout_init(&l10, 32768, 4096, 23, 8, 10, NULL), SOTTO_OK);
    sotto_bitwriter_init(&w, b, sizeof b);
    sotto_bitwriter_put(&w, 15, 4);
    sotto_bitwriter_put(&w, 0, 5);
    expect_format(&l10, b, 64, "16 groups");

    /* group length 8 > 6 (3-bit field) */
    sotto_packet_layout l6;
    CU_ASSERT_EQUAL_FATAL(sotto_packet_layout_init(&l6, 32768, 4096, 23, 6, 16, NULL), SOTTO_OK);
    sotto_bitwriter_init(&w, b, sizeof b);
    sotto_bitwriter_put(&w, 0, 4); /* one group */
    sotto_bitwriter_put(&w, 0, 5); /* no stages */
    sotto_bitwriter_put(&w, 7, 3); /* length 8 */
    sotto_bitwriter_put(&w, 0, 15);
    expect_format(&l6, b, 4, "8 frames");

    /* semantic index 30000 ≥ 20000 */
    sotto_packet_layout ls;
    CU_ASSERT_EQUAL_FATAL(sotto_packet_layout_init(&ls, 20000, 3000, 23, 8, 16, NULL), SOTTO_OK);
    CU_ASSERT_EQUAL(ls.sem_bits, 15);
    CU_ASSERT_EQUAL(ls.ac_bits, 12);
    sotto_bitwriter_init(&w, b, sizeof b);
    sotto_bitwriter_put(&w, 0, 4);
    sotto_bitwriter_put(&w, 0, 5);
    sotto_bitwriter_put(&w, 0, 3);
    sotto_bitwriter_put(&w, 30000, 15);
    expect_format(&ls, b, 4, "semantic index 30000");

    /* acoustic index 4000 ≥ 3000 in stage 1 of group 1 */
    sotto_bitwriter_init(&w, b, sizeof b);
    sotto_bitwriter_put(&w, 1, 4); /* two groups */
    sotto_bitwriter_put(&w, 2, 5); /* two stages */
    sotto_bitwriter_put(&w, 0, 3);
    sotto_bitwriter_put(&w, 0, 3);
    sotto_bitwriter_put(&w, 1, 15);
    sotto_bitwriter_put(&w, 1, 15);
    sotto_bitwriter_put(&w, 5, 12); /* stage 0, group 0 */
    sotto_bitwriter_put(&w, 5, 12); /* stage 0, group 1 */
    sotto_bitwriter_put(&w, 5, 12); /* stage 1, group 0 */
    sotto_bitwriter_put(&w, 4000, 12);
    size_t n;
    CU_ASSERT_EQUAL(sotto_packet_size(&ls, 2, 2, &n), SOTTO_OK);
    CU_ASSERT_EQUAL(n, (size_t)((w.pos + 7) / 8));
    expect_format(&ls, b, n, "group 1 stage 1 index 4000");

    /* non-zero padding: a valid one-group packet (27 bits) with its last bit set */
    int32_t lens[1] = {1}, sem[1] = {0};
    CU_ASSERT_EQUAL(sotto_packet_pack(&l, 1, 0, lens, sem, NULL, 0, b, sizeof b, &n, NULL),
                    SOTTO_OK);
    CU_ASSERT_EQUAL(n, 4);
    CU_ASSERT_EQUAL(unpack_exact(&l, b, n, NULL, NULL, NULL, 0, 0, NULL, NULL), SOTTO_OK);
    b[3] |= 1;
    expect_format(&l, b, n, "padding");

    /* a flipped group count makes the size lie */
    int32_t lens2[2] = {2, 3}, sem2[2] = {4, 5};
    CU_ASSERT_EQUAL(sotto_packet_pack(&l, 2, 0, lens2, sem2, NULL, 0, b, sizeof b, &n, NULL),
                    SOTTO_OK);
    b[0] ^= 0x80;
    expect_format(&l, b, n, "needs");
}

static void test_capacity_and_args(void)
{
    sotto_packet_layout l = flexi();
    int32_t lens[16], sem[16], ac[16 * 23];
    for (int i = 0; i < 16; i++) {
        lens[i] = 1;
        sem[i] = 0;
        for (int s = 0; s < 23; s++)
            ac[i * 23 + s] = 0;
    }
    uint8_t b[600];
    size_t n;
    sotto_status st;
    CU_ASSERT_EQUAL(sotto_packet_pack(&l, 16, 5, lens, sem, ac, 23, b, sizeof b, &n, NULL),
                    SOTTO_OK);
    int32_t l2[16], s2[16], a2[16 * 23];
    CU_ASSERT_EQUAL(unpack_exact(&l, b, n, l2, s2, a2, 15, 23, NULL, &st),
                    SOTTO_ERR_BUFFER_TOO_SMALL);
    CU_ASSERT_EQUAL(unpack_exact(&l, b, n, l2, s2, a2, 16, 4, NULL, &st),
                    SOTTO_ERR_BUFFER_TOO_SMALL);
    CU_ASSERT_EQUAL(unpack_exact(&l, b, n, l2, s2, NULL, 16, 0, NULL, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(unpack_exact(&l, b, n, l2, s2, a2, 0, 23, NULL, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_packet_unpack(&l, NULL, 3, NULL, NULL, NULL, 0, 0, NULL, &st),
                    SOTTO_ERR_INVALID_ARG);

    /* packing: too small a buffer writes nothing */
    memset(b, 0xaa, sizeof b);
    CU_ASSERT_EQUAL(sotto_packet_pack(&l, 16, 5, lens, sem, ac, 23, b, n - 1, &n, &st),
                    SOTTO_ERR_BUFFER_TOO_SMALL);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(b[0], 0xaa);
    /* values out of range, each named */
    struct {
        int32_t *where, value;
        const char *needle;
    } bad[] = {
        {&lens[3], 0, "group 3 length 0"},
        {&lens[3], 9, "group 3 length 9"},
        {&sem[4], -1, "semantic index -1"},
        {&sem[4], 32768, "semantic index 32768"},
        {&ac[2 * 23 + 1], 4096, "stage 1 index 4096"},
        {&ac[2 * 23 + 1], -5, "index -5"},
    };
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(bad); i++) {
        int32_t keep = *bad[i].where;
        *bad[i].where = bad[i].value;
        st.message[0] = '\0';
        CU_ASSERT_EQUAL(sotto_packet_pack(&l, 16, 5, lens, sem, ac, 23, b, sizeof b, &n, &st),
                        SOTTO_ERR_INVALID_ARG);
        TU_ASSERT_HAS(st.message, bad[i].needle);
        *bad[i].where = keep;
    }
    /* a bad value beyond the stages packed is not looked at */
    ac[0 * 23 + 10] = 99999;
    CU_ASSERT_EQUAL(sotto_packet_pack(&l, 16, 5, lens, sem, ac, 23, b, sizeof b, &n, &st),
                    SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_packet_pack(&l, 17, 5, lens, sem, ac, 23, b, sizeof b, &n, &st),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_packet_pack(&l, 16, 24, lens, sem, ac, 23, b, sizeof b, &n, &st),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_packet_pack(&l, 16, 5, lens, sem, ac, 4, b, sizeof b, &n, &st),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_packet_pack(&l, 16, 5, lens, sem, NULL, 23, b, sizeof b, &n, &st),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_packet_pack(&l, 16, 5, lens, sem, ac, 23, b, sizeof b, NULL, &st),
                    SOTTO_ERR_INVALID_ARG);
}

static void test_bitreader_bounds(void)
{
    const uint8_t b[2] = {0xa5, 0x0f};
    sotto_bitreader r;
    sotto_bitreader_init(&r, b, 2);
    CU_ASSERT_EQUAL(sotto_bitreader_get(&r, 4), 0xa);
    CU_ASSERT_EQUAL(sotto_bitreader_get(&r, 12), 0x50f);
    CU_ASSERT_EQUAL(r.overrun, 0);
    CU_ASSERT_EQUAL(sotto_bitreader_get(&r, 1), 0);
    CU_ASSERT_EQUAL(r.overrun, 1);
    sotto_bitreader_init(&r, b, 2);
    CU_ASSERT_EQUAL(sotto_bitreader_get(&r, 17), 0);
    CU_ASSERT_EQUAL(r.overrun, 1);

    uint8_t o[2] = {0xff, 0xff};
    sotto_bitwriter w;
    sotto_bitwriter_init(&w, o, 1);
    sotto_bitwriter_put(&w, 0x5, 3);
    CU_ASSERT_EQUAL(o[0], 0xa0);
    sotto_bitwriter_put(&w, 0x3f, 6);
    CU_ASSERT_EQUAL(w.overflow, 1);
    CU_ASSERT_EQUAL(o[1], 0xff);
}

int main(void)
{
    static const tu_test tests[] = {
        {"bits_for", test_bits_for},
        {"layout", test_layout},
        {"sizes", test_sizes},
        {"bit_pattern", test_bit_pattern},
        {"roundtrip_all_stage_counts", test_roundtrip},
        {"bitrate_switching", test_bitrate_switching},
        {"empty_packet", test_empty_packet},
        {"truncated_every_byte", test_truncated},
        {"lying_fields", test_lying_fields},
        {"capacity_and_args", test_capacity_and_args},
        {"bitreader_bounds", test_bitreader_bounds},
        {NULL, NULL},
    };
    return tu_run_suite("packet", tests);
}
