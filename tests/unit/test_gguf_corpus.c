/*
 * Regression run of the GGUF fuzz corpus without libFuzzer: every file in
 * tests/fuzz/corpus/gguf is parsed (borrowed, copied, and through sotto_model_load_buffer)
 * and must give the outcome its name promises: ok_*.gguf open, bad_*.gguf fail with an error
 * code and a message. On success every value is formatted and every tensor converted, as the
 * fuzz target does, so a crash found by fuzzing stays fixed in every build.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/gguf.h"
#include "testutil.h"

static const char *corpus_dir(void)
{
    static char dir[4096];
    const char *data = getenv("SOTTO_TEST_DATA");
    /* tests run with cwd = tests/, and SOTTO_TEST_DATA is tests/data */
    snprintf(dir, sizeof dir, "%s/../fuzz/corpus/gguf", data && *data ? data : "data");
    return dir;
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint8_t *p = NULL;
    size_t cap = 0, len = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 4096;
            uint8_t *q = realloc(p, cap);
            if (!q) break;
            p = q;
        }
        size_t r = fread(p + len, 1, cap - len, f);
        len += r;
        if (r == 0) break;
    }
    fclose(f);
    *n = len;
    return p;
}

/* What the fuzz target does with a file that opens. */
static void touch_everything(const sotto_gguf *g)
{
    char text[256];
    for (int64_t i = 0; i < sotto_gguf_kv_count(g); i++) {
        const sotto_gguf_kv *kv = sotto_gguf_kv_at(g, i);
        sotto_gguf_kv_format(kv, text, sizeof text);
        CU_ASSERT_TRUE(strlen(text) < sizeof text);
    }
    for (int64_t i = 0; i < sotto_gguf_tensor_count(g); i++) {
        const sotto_gguf_tensor *t = sotto_gguf_tensor_at(g, i);
        float *v = malloc((size_t)t->n_elems * sizeof(float));
        CU_ASSERT_PTR_NOT_NULL_FATAL(v);
        CU_ASSERT_EQUAL(sotto_gguf_tensor_to_f32(t, v), SOTTO_OK);
        free(v);
    }
}

static void test_corpus(void)
{
    const char *dir = corpus_dir();
    struct dirent **list = NULL;
    int n_files = scandir(dir, &list, NULL, alphasort);
    if (n_files < 0) {
        fprintf(stderr, "cannot open corpus folder %s\n", dir);
        CU_FAIL_FATAL("corpus folder missing");
        return;
    }
    int n_ok = 0, n_bad = 0, failures = 0;
    for (int k = 0; k < n_files; k++) {
        const char *name = list[k]->d_name;
        if (name[0] == '.') continue;
        int want_ok = !strncmp(name, "ok_", 3);
        if (!want_ok && strncmp(name, "bad_", 4)) {
            fprintf(stderr, "%s: name must start with ok_ or bad_\n", name);
            failures++;
            continue;
        }
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        size_t n = 0;
        uint8_t *bytes = slurp(path, &n);
        if (!bytes && n) {
            fprintf(stderr, "%s: unreadable\n", name);
            failures++;
            continue;
        }
        for (int copy = 0; copy <= 1; copy++) {
            sotto_gguf *g = NULL;
            sotto_status st = {0, ""};
            int rc = sotto_gguf_open_buffer(n ? bytes : NULL, n, copy, NULL, &g, &st);
            if (want_ok != (rc == SOTTO_OK) || (rc != SOTTO_OK && !st.message[0])) {
                fprintf(stderr, "%s: rc %d (%s), expected %s\n", name, rc, st.message,
                        want_ok ? "success" : "an error");
                failures++;
            } else if (copy) {
                fprintf(stderr, "%-32s %s\n", name, rc ? st.message : "ok");
            }
            if (g) touch_everything(g);
            sotto_gguf_close(g);
        }
        sotto_model *m = NULL;
        sotto_status st;
        if (sotto_model_load_buffer(bytes, n, 0, NULL, &m, &st) == SOTTO_OK) {
            char v[64];
            for (int64_t i = 0; i < sotto_model_meta_count(m); i++)
                CU_ASSERT_PTR_NOT_NULL(sotto_model_meta(m, i, v, sizeof v));
            sotto_model_free(m);
        }
        free(bytes);
        if (want_ok)
            n_ok++;
        else
            n_bad++;
    }
    for (int k = 0; k < n_files; k++)
        free(list[k]);
    free(list);
    fprintf(stderr, "%d ok_ and %d bad_ files\n", n_ok, n_bad);
    CU_ASSERT_EQUAL(failures, 0);
    CU_ASSERT_TRUE(n_ok > 0 && n_bad > 0);
}

int main(void)
{
    static const tu_test tests[] = {
        {"fuzz corpus outcomes", test_corpus},
        {NULL, NULL},
    };
    return tu_run_suite("gguf_corpus", tests);
}
