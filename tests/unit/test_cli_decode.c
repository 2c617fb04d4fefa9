/*
 * `sotto decode` and `sotto info` on `.sotto` files end to end, with the small FlexiCodec
 * model: a file of random codes written through the public writer decodes (float WAV) to
 * exactly the API's direct decode of the same groups, trimmed the same way, at exactly the
 * original length; `sotto info` reports the header, rates, groups and comments, and still
 * describes GGUF models; a file of another model, a missing file, a file that is not a
 * .sotto stream and bad arguments give the documented exit codes; a damaged or truncated
 * file decodes partially with a loss report (exit 7) and no crash. Skips (77) when the apps
 * are not built.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda_probe.h"
#include "io/oggmap.h"
#include "sotto/sotto.h"
#include "sotto/sotto_audio.h"
#include "sotto/sotto_codec.h"
#include "testutil.h"

#ifdef SOTTO_CLI_PATH
#define MODEL "flexicodec/decode-small.gguf"
#define G 90
#define S 3
#define PRE 240

static char tmpdir[512], model_path[600];
static sotto_model *model;
static int32_t len[G], fsq[G], rvq[G * S];
static float *ref; /* direct decode, untrimmed */
static int64_t n_ref, length;

static void run(const char *args, tu_cli_result *r)
{
    tu_cli_run(SOTTO_CLI_PATH, tmpdir, args, r);
}

static void setup_groups(void)
{
    tu_rng r;
    tu_rng_init(&r, tu_seed());
    for (int g = 0; g < G; g++) {
        len[g] = 1 + (int32_t)(tu_rng_u32(&r) % 4);
        fsq[g] = (int32_t)(tu_rng_u32(&r) % 32768);
        for (int q = 0; q < S; q++)
            rvq[g * S + q] = (int32_t)(tu_rng_u32(&r) % 64);
    }
    sotto_decoder_params dp = sotto_decoder_default_params();
    dp.max_frames = 4 * G;
    sotto_decoder *d = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_decoder_create(model, &dp, &d, NULL), SOTTO_OK);
    CU_ASSERT_EQUAL_FATAL(sotto_decoder_push(d, len, fsq, rvq, G, S), SOTTO_OK);
    size_t cap = sotto_decoder_output_samples(d);
    ref = malloc(cap * sizeof *ref);
    n_ref = sotto_decoder_flush(d, ref, cap);
    CU_ASSERT_EQUAL_FATAL(n_ref, (int64_t)cap);
    sotto_decoder_free(d);
    length = n_ref - PRE - 1000; /* an original length that ends inside the last packet */
}

static void write_sotto(const char *path)
{
    static const char *const comments[] = {"TITLE=cli test", "LANGUAGE=en"};
    sotto_codec_write_params wp = sotto_codec_default_write_params();
    wp.pre_skip = PRE;
    wp.length = length;
    wp.page_ms = 1000;
    wp.comments = comments;
    wp.n_comments = 2;
    sotto_status st;
    int rc = sotto_codec_write_file(model, path, len, fsq, rvq, G, S, &wp, &st);
    if (rc) fprintf(stderr, "%s: %s\n", path, st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
}

static float *read_wav(const char *path, int64_t *n)
{
    float *x = NULL;
    sotto_audio_info info;
    sotto_status st;
    int rc = sotto_audio_read_file(path, NULL, &x, n, &info, &st);
    if (rc) fprintf(stderr, "%s: %s\n", path, st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    CU_ASSERT_EQUAL(info.out_rate_hz, 16000);
    return x;
}

static void test_decode(void)
{
    tu_cli_result *r = malloc(sizeof *r);
    char in[600], out[600], args[2048];
    snprintf(in, sizeof in, "%s/a.sotto", tmpdir);
    snprintf(out, sizeof out, "%s/a.wav", tmpdir);
    write_sotto(in);

    snprintf(args, sizeof args, "decode '%s' -o '%s' -m '%s' --float", in, out, model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 0);
    TU_ASSERT_HAS(r->err, "RTF");
    TU_ASSERT_HAS(r->err, "0 lost frames");
    int64_t n = 0;
    float *x = read_wav(out, &n);
    CU_ASSERT_EQUAL(n, length); /* exactly the original length */
    if (n == length) TU_ASSERT_CLOSE("sotto decode vs direct", x, ref + PRE, n, 1e-6, -1);
    sotto_audio_free(x, NULL);

    /* --json summary, 2 threads: same samples within parity */
    snprintf(args, sizeof args, "decode '%s' -o '%s' -m '%s' --float --json -t 2", in, out,
             model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 0);
    char want[128];
    snprintf(want, sizeof want, "\"samples\":%lld", (long long)length);
    TU_ASSERT_HAS(r->out, want);
    TU_ASSERT_HAS(r->out, "\"damaged\":false");
    TU_ASSERT_HAS(r->out, "\"groups\":90");
    TU_ASSERT_HAS(r->out, "\"f16_arithmetic\":0");

    /* --f16-arithmetic on an f32 model is ignored, and the summary says so: same samples */
    snprintf(args, sizeof args, "decode '%s' -o '%s' -m '%s' --float --f16-arithmetic", in, out,
             model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 0);
    TU_ASSERT_HAS(r->err, "f32 arithmetic: no AVX512-FP16 or no f16 weights");
    x = read_wav(out, &n);
    CU_ASSERT_EQUAL(n, length);
    if (n == length) TU_ASSERT_CLOSE("--f16-arithmetic on an f32 model", x, ref + PRE, n, 1e-6, -1);
    sotto_audio_free(x, NULL);

    /* sotto info on the stream, with and without the model */
    snprintf(args, sizeof args, "info '%s' -m '%s'", in, model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 0);
    TU_ASSERT_HAS(r->out, "codec:        flexicodec");
    TU_ASSERT_HAS(r->out, "matches -m model: yes");
    TU_ASSERT_HAS(r->out, "sample rate:  16000 Hz");
    TU_ASSERT_HAS(r->out, "frame rate:   12.5 Hz");
    snprintf(want, sizeof want, "pre-skip:     %d samples", PRE);
    TU_ASSERT_HAS(r->out, want);
    snprintf(want, sizeof want, "(%lld samples)", (long long)length);
    TU_ASSERT_HAS(r->out, want);
    TU_ASSERT_HAS(r->out, "groups:       90 (");
    TU_ASSERT_HAS(r->out, "groups/s");
    TU_ASSERT_HAS(r->out, "bitrate:");
    TU_ASSERT_HAS(r->out, "TITLE=cli test");
    TU_ASSERT_HAS(r->out, "damage:       none");
    uint8_t id[32];
    char hx[65];
    CU_ASSERT_EQUAL_FATAL(sotto_model_identity(model, id), SOTTO_OK);
    for (int i = 0; i < 32; i++)
        snprintf(hx + 2 * i, 3, "%02x", id[i]);
    TU_ASSERT_HAS(r->out, hx);
    snprintf(args, sizeof args, "info --json '%s'", in);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 0);
    TU_ASSERT_HAS(r->out, "\"type\": \"sotto\"");
    TU_ASSERT_HAS(r->out, "\"model_matches\": null");
    TU_ASSERT_HAS(r->out, "\"LANGUAGE=en\"");
    TU_ASSERT_HAS(r->out, hx);
    /* a GGUF model is still described as before */
    snprintf(args, sizeof args, "info '%s'", model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 0);
    TU_ASSERT_HAS(r->out, "architecture: flexicodec");
    free(r);
}

static void test_errors(void)
{
    tu_cli_result *r = malloc(sizeof *r);
    char in[600], out[600], args[2048];
    snprintf(in, sizeof in, "%s/b.sotto", tmpdir);
    snprintf(out, sizeof out, "%s/b.wav", tmpdir);
    write_sotto(in);

    /* a model of the wrong kind, a model file that is missing */
    snprintf(args, sizeof args, "decode '%s' -o '%s' -m '%s'", in, out,
             tu_data_path("vocos/mel-small.gguf"));
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 4);
    TU_ASSERT_HAS(r->err, "not a codec");
    snprintf(args, sizeof args, "decode '%s' -o '%s' -m '%s/none.gguf'", in, out, tmpdir);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 4);

    /* a stream of another model (same codec, another identity) */
    char other[600];
    snprintf(other, sizeof other, "%s/other.sotto", tmpdir);
    {
        sotto_oggmap_head h;
        memset(&h, 0, sizeof h);
        snprintf(h.codec, sizeof h.codec, "flexicodec");
        memset(h.model_id, 0xab, sizeof h.model_id);
        h.sample_rate = 16000;
        h.frame_rate_num = 25;
        h.frame_rate_den = 2;
        CU_ASSERT_EQUAL_FATAL(sotto_packet_layout_init(&h.layout, 32768, 64, 4, 8, 16, NULL),
                              SOTTO_OK);
        FILE *f = fopen(other, "wb");
        sotto_oggmap_writer *w = NULL;
        CU_ASSERT_EQUAL_FATAL(sotto_oggmap_writer_open_file(&h, NULL, f, &w, NULL), SOTTO_OK);
        uint8_t pk[256];
        size_t bytes;
        CU_ASSERT_EQUAL_FATAL(
            sotto_codec_pack_packet(model, len, fsq, rvq, 16, S, pk, sizeof pk, &bytes, NULL),
            SOTTO_OK);
        CU_ASSERT_EQUAL_FATAL(sotto_oggmap_writer_packet(w, pk, bytes, NULL), SOTTO_OK);
        CU_ASSERT_EQUAL_FATAL(sotto_oggmap_writer_finish(w, -1, NULL), SOTTO_OK);
        sotto_oggmap_writer_free(w);
        fclose(f);
    }
    snprintf(args, sizeof args, "decode '%s' -o '%s' -m '%s'", other, out, model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 4);
    TU_ASSERT_HAS(r->err, "another model");
    TU_ASSERT_HAS(r->err, "abababab");
    snprintf(args, sizeof args, "info '%s' -m '%s'", other, model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 0);
    TU_ASSERT_HAS(r->out, "matches -m model: no");

    /* a missing input, an input that is not a .sotto stream */
    snprintf(args, sizeof args, "decode '%s/missing.sotto' -o '%s' -m '%s'", tmpdir, out,
             model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 3);
    TU_ASSERT_HAS(r->err, "missing.sotto");
    snprintf(args, sizeof args, "decode '%s' -o '%s' -m '%s'", model_path, out, model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 3);
    TU_ASSERT_HAS(r->err, "not a .sotto file");
    snprintf(args, sizeof args, "info '%s/missing.sotto'", tmpdir);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 3);

    /* bad arguments, help, an output that cannot be written */
    snprintf(args, sizeof args, "decode '%s' -o '%s'", in, out); /* no -m */
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 2);
    run("decode --bogus", r);
    CU_ASSERT_EQUAL(r->code, 2);
    run("decode a.sotto -o b.wav -m c.gguf --threads 0", r);
    CU_ASSERT_EQUAL(r->code, 2);
    run("decode --help", r);
    CU_ASSERT_EQUAL(r->code, 0);
    TU_ASSERT_HAS(r->out, "usage: sotto decode");
    snprintf(args, sizeof args, "decode '%s' -o '%s/no/such/dir/x.wav' -m '%s'", in, tmpdir,
             model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 5);

    /* --gpu: a bad index is a usage error; without the device exit 8 with the reason */
    snprintf(args, sizeof args, "decode '%s' -o '%s' -m '%s' --gpu -1", in, out, model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 2);
    TU_ASSERT_HAS(r->err, "--gpu");
    snprintf(args, sizeof args, "decode '%s' -o '%s' -m '%s' --gpu 0", in, out, model_path);
    run(args, r);
    if (sotto_cuda_device_count() > 0) {
        CU_ASSERT_EQUAL(r->code, 0);
        TU_ASSERT_HAS(r->err, "on CUDA device 0");
    } else {
        CU_ASSERT_EQUAL(r->code, 8);
        TU_ASSERT_HAS(r->err, "no CUDA device");
    }
    free(r);
}

static unsigned char *slurp(const char *path, long *size)
{
    FILE *f = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, 0, SEEK_END);
    *size = ftell(f);
    rewind(f);
    unsigned char *b = malloc((size_t)*size);
    CU_ASSERT_EQUAL_FATAL(fread(b, 1, (size_t)*size, f), (size_t)*size);
    fclose(f);
    return b;
}

static void spit(const char *path, const unsigned char *b, long size)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL_FATAL(fwrite(b, 1, (size_t)size, f), (size_t)size);
    fclose(f);
}

static void test_damaged(void)
{
    tu_cli_result *r = malloc(sizeof *r);
    char in[600], bad[600], out[600], args[2048];
    snprintf(in, sizeof in, "%s/c.sotto", tmpdir);
    snprintf(bad, sizeof bad, "%s/c-bad.sotto", tmpdir);
    snprintf(out, sizeof out, "%s/c.wav", tmpdir);
    write_sotto(in);
    long size;
    unsigned char *b = slurp(in, &size);
    long at[64];
    int np = 0;
    for (long i = 0; i + 4 <= size && np < 64; i++)
        if (!memcmp(b + i, "OggS", 4)) at[np++] = i;
    CU_ASSERT_FATAL(np >= 5);

    /* a corrupted middle page: exit 7, the full length written, the loss reported */
    unsigned char *c = malloc((size_t)size);
    memcpy(c, b, (size_t)size);
    c[(at[3] + at[4]) / 2] ^= 0xff;
    spit(bad, c, size);
    free(c);
    snprintf(args, sizeof args, "decode '%s' -o '%s' -m '%s' --float", bad, out, model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 7);
    TU_ASSERT_HAS(r->err, "damaged");
    TU_ASSERT_HAS(r->err, "CRC");
    int64_t n = 0;
    float *x = read_wav(out, &n);
    CU_ASSERT_EQUAL(n, length);
    sotto_audio_free(x, NULL);
    snprintf(args, sizeof args, "decode '%s' -o '%s' -m '%s' --json -q", bad, out, model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 7);
    TU_ASSERT_HAS(r->out, "\"damaged\":true");
    TU_ASSERT_HAS(r->out, "\"damaged_pages\":1");
    snprintf(args, sizeof args, "info '%s'", bad);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 0);
    TU_ASSERT_HAS(r->out, "damage:       1 problem");

    /* truncated in the middle of a page: exit 7, what it holds written, shorter */
    spit(bad, b, (at[3] + at[4]) / 2);
    snprintf(args, sizeof args, "decode '%s' -o '%s' -m '%s' --float", bad, out, model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 7);
    TU_ASSERT_HAS(r->err, "truncated");
    x = read_wav(out, &n);
    CU_ASSERT_TRUE(n > 0 && n < length);
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) {
            CU_FAIL("non-finite sample");
            break;
        }
    sotto_audio_free(x, NULL);
    /* truncated inside the headers: not decodable at all */
    spit(bad, b, at[1] + 5);
    snprintf(args, sizeof args, "decode '%s' -o '%s' -m '%s'", bad, out, model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 3);
    free(b);
    free(r);
}

int main(void)
{
    if (tu_make_tmpdir("sotto_cli_decode", tmpdir, sizeof tmpdir)) {
        fprintf(stderr, "no usable temporary folder\n");
        return 1;
    }
    snprintf(model_path, sizeof model_path, "%s", tu_data_path(MODEL));
    sotto_status st;
    if (sotto_model_load_file(model_path, NULL, &model, &st)) {
        fprintf(stderr, "%s: %s\n", model_path, st.message);
        return 1;
    }
    static const tu_test tests[] = {
        {"decode and info of a .sotto file", test_decode},
        {"decode errors and exit codes", test_errors},
        {"damaged and truncated files", test_damaged},
        {NULL, NULL},
    };
    static const tu_test setup[] = {{"groups and direct decode", setup_groups}, {NULL, NULL}};
    int rc = tu_run_suite("cli_decode_setup", setup);
    if (!rc) rc = tu_run_suite("cli_decode", tests);
    free(ref);
    sotto_model_free(model);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return rc;
}
#else
int main(void)
{
    fprintf(stderr, "the sotto app is not built (SOTTO_APPS=OFF): skipping\n");
    return TU_SKIP;
}
#endif
