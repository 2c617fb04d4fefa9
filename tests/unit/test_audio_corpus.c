/*
 * Regression run of the audio fuzz corpus without libFuzzer: every file in
 * tests/fuzz/corpus/audio is read with the default (strict) parameters and must give the
 * outcome its name promises: ok_* read, with finite samples and the declared count; bad_*
 * fail with an error code and a message. Every file is also read leniently (truncation
 * allowed, non-finite samples zeroed, resampled to 16 kHz) and must either read or fail
 * cleanly, so an input the fuzzer once crashed on stays fixed in every build.
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sotto/sotto_audio.h"
#include "testutil.h"

static const char *corpus_dir(void)
{
    static char dir[4096];
    const char *data = getenv("SOTTO_TEST_DATA");
    snprintf(dir, sizeof dir, "%s/../fuzz/corpus/audio", data && *data ? data : "data");
    return dir;
}

static int read_one(const char *path, int lenient, sotto_status *st)
{
    sotto_audio_read_params p = sotto_audio_default_read_params();
    p.max_frames = 1 << 18;
    if (lenient) {
        p.allow_truncated = 1;
        p.nonfinite = SOTTO_AUDIO_NONFINITE_ZERO;
        p.target_rate_hz = 16000;
    }
    float *x = NULL;
    int64_t n = -1;
    sotto_audio_info info;
    int rc = sotto_audio_read_file(path, &p, &x, &n, &info, st);
    if (rc == SOTTO_OK) {
        CU_ASSERT_PTR_NOT_NULL(x);
        CU_ASSERT_EQUAL(n, info.out_samples);
        int64_t bad = 0;
        for (int64_t i = 0; x && i < n; i++) bad += !isfinite(x[i]);
        CU_ASSERT_EQUAL(bad, 0);
    } else {
        CU_ASSERT_PTR_NULL(x);
        CU_ASSERT_TRUE(rc < 0);
        CU_ASSERT_EQUAL(st->code, rc);
        CU_ASSERT_TRUE(st->message[0] != '\0');
    }
    sotto_audio_free(x, NULL);
    return rc;
}

static void test_corpus(void)
{
    DIR *d = opendir(corpus_dir());
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    int n_ok = 0, n_bad = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const int ok = !strncmp(e->d_name, "ok_", 3), bad = !strncmp(e->d_name, "bad_", 4);
        if (!ok && !bad) continue;
        char path[4352];
        snprintf(path, sizeof path, "%s/%s", corpus_dir(), e->d_name);
        sotto_status st;
        int rc = read_one(path, 0, &st);
        if (ok && rc != SOTTO_OK) fprintf(stderr, "%s: %s\n", e->d_name, st.message);
        if (bad && rc == SOTTO_OK) fprintf(stderr, "%s: read without error\n", e->d_name);
        CU_ASSERT_EQUAL(rc == SOTTO_OK, ok);
        (void)read_one(path, 1, &st);
        n_ok += ok;
        n_bad += bad;
    }
    closedir(d);
    printf("corpus: %d ok, %d bad files\n", n_ok, n_bad);
    CU_ASSERT_TRUE(n_ok >= 8);
    CU_ASSERT_TRUE(n_bad >= 10);
}

int main(void)
{
    static const tu_test tests[] = {{"corpus", test_corpus}, {NULL, NULL}};
    return tu_run_suite("audio_corpus", tests);
}
