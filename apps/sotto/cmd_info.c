/*
 * `sotto info FILE`: what a model file or a `.sotto` codec stream holds (told apart by the
 * file's first bytes: "GGUF" or "OggS"). For a stream: the ID header (codec, model identity,
 * rates, pre-skip), duration, packets, groups, average rates and bitrate, damage, vendor and
 * comments; with -m MODEL also whether the stream is that model's. For a model file: what it
 * holds. Prints the GGUF version, architecture, name,
 * every metadata key with its value, a table of tensors (name, dtype, PyTorch-order shape,
 * bytes) and totals; `--json` prints the same as one JSON object, arrays in full. The file is
 * opened with the GGUF reader directly rather than as a sotto_model, so that any valid GGUF
 * (a golden fixture without `general.architecture`, say) can be inspected.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "core/gguf.h"
#include "io/oggmap.h"
#include "sotto/sotto_codec.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: sotto info [--json] [-m MODEL] FILE\n\n"
               "Prints a GGUF model file's version, architecture, name, metadata and tensors,\n"
               "or a .sotto stream's codec, model identity, rates, duration, groups, average\n"
               "frame rate, bitrate, pre-skip, damage and comments.\n\n"
               "  --json           one JSON object instead of text (metadata arrays in full)\n"
               "  -m, --model FILE .sotto only: also say whether the stream is this model's\n"
               "  -h, --help       this help\n\n"
               "Exit codes: 0 ok, 2 bad arguments, 3 the file is missing, unreadable or "
               "malformed,\n4 the model cannot be loaded.\n");
}

static void shape_text(const sotto_gguf_tensor *t, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int d = 0; d < t->n_dims && len + 1 < size; d++) {
        int n = snprintf(buf + len, size - len, "%s%" PRId64, d ? ", " : "[", t->shape[d]);
        if (n < 0) break;
        len += (size_t)n;
    }
    if (len + 1 < size) snprintf(buf + len, size - len, "]");
}

/* ---- text ------------------------------------------------------------------------------- */

static void print_text(const char *path, const sotto_gguf *g)
{
    const sotto_gguf_kv *arch = sotto_gguf_find_kv(g, "general.architecture");
    const sotto_gguf_kv *name = sotto_gguf_find_kv(g, "general.name");
    printf("file:         %s\n", path);
    printf("size:         %" PRIu64 " bytes\n", sotto_gguf_size(g));
    printf("gguf version: %" PRIu32 "\n", sotto_gguf_version(g));
    printf("alignment:    %" PRIu32 "\n", sotto_gguf_alignment(g));
    printf("architecture: %s\n",
           arch && arch->type == SOTTO_GGUF_STRING ? arch->v.str.data : "(none)");
    printf("name:         %s\n",
           name && name->type == SOTTO_GGUF_STRING ? name->v.str.data : "(none)");

    int64_t n_kv = sotto_gguf_kv_count(g);
    printf("\nmetadata (%" PRId64 " keys):\n", n_kv);
    char value[512];
    for (int64_t i = 0; i < n_kv; i++) {
        const sotto_gguf_kv *kv = sotto_gguf_kv_at(g, i);
        printf("  %s = %s\n", kv->key.data, sotto_gguf_kv_format(kv, value, sizeof value));
    }

    int64_t n_t = sotto_gguf_tensor_count(g);
    int w = 4;
    for (int64_t i = 0; i < n_t; i++) {
        size_t len = strlen(sotto_gguf_tensor_at(g, i)->name.data);
        if (len > (size_t)w) w = len > 64 ? 64 : (int)len;
    }
    printf("\ntensors (%" PRId64 "):\n", n_t);
    uint64_t params = 0, bytes = 0;
    if (n_t) printf("  %-*s  %-5s  %-24s  %12s\n", w, "name", "dtype", "shape", "bytes");
    for (int64_t i = 0; i < n_t; i++) {
        const sotto_gguf_tensor *t = sotto_gguf_tensor_at(g, i);
        char shape[128];
        shape_text(t, shape, sizeof shape);
        printf("  %-*s  %-5s  %-24s  %12" PRIu64 "\n", w, t->name.data, sotto_dtype_name(t->dtype),
               shape, t->n_bytes);
        params += (uint64_t)t->n_elems;
        bytes += t->n_bytes;
    }
    printf("\ntotal: %" PRId64 " tensors, %" PRIu64 " parameters, %" PRIu64 " bytes\n", n_t, params,
           bytes);
}

/* ---- JSON ------------------------------------------------------------------------------- */

static void json_string(const char *s, uint64_t len)
{
    putchar('"');
    for (uint64_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void json_double(double v, int is_f32)
{
    if (!isfinite(v))
        printf("null"); /* JSON has no inf or NaN */
    else
        printf(is_f32 ? "%.9g" : "%.17g", v);
}

static uint64_t rd_le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void json_elem(int type, const uint8_t *p)
{
    switch (type) {
    case SOTTO_GGUF_UINT8:
    case SOTTO_GGUF_UINT16:
    case SOTTO_GGUF_UINT32:
    case SOTTO_GGUF_UINT64: {
        static const size_t sz[] = {1, 0, 2, 0, 4, 0, 0, 0, 0, 0, 8};
        printf("%" PRIu64, rd_le(p, sz[type]));
        break;
    }
    case SOTTO_GGUF_INT8:
        printf("%d", (int8_t)p[0]);
        break;
    case SOTTO_GGUF_INT16:
        printf("%d", (int16_t)rd_le(p, 2));
        break;
    case SOTTO_GGUF_INT32:
        printf("%" PRId32, (int32_t)rd_le(p, 4));
        break;
    case SOTTO_GGUF_INT64:
        printf("%" PRId64, (int64_t)rd_le(p, 8));
        break;
    case SOTTO_GGUF_BOOL:
        printf("%s", p[0] ? "true" : "false");
        break;
    case SOTTO_GGUF_FLOAT32: {
        uint32_t u = (uint32_t)rd_le(p, 4);
        float f;
        memcpy(&f, &u, 4);
        json_double(f, 1);
        break;
    }
    case SOTTO_GGUF_FLOAT64: {
        uint64_t u = rd_le(p, 8);
        double d;
        memcpy(&d, &u, 8);
        json_double(d, 0);
        break;
    }
    default:
        printf("null");
        break;
    }
}

static size_t elem_size(int type)
{
    switch (type) {
    case SOTTO_GGUF_UINT8:
    case SOTTO_GGUF_INT8:
    case SOTTO_GGUF_BOOL:
        return 1;
    case SOTTO_GGUF_UINT16:
    case SOTTO_GGUF_INT16:
        return 2;
    case SOTTO_GGUF_UINT32:
    case SOTTO_GGUF_INT32:
    case SOTTO_GGUF_FLOAT32:
        return 4;
    default:
        return 8;
    }
}

static void json_value(const sotto_gguf_kv *kv)
{
    switch (kv->type) {
    case SOTTO_GGUF_UINT8:
    case SOTTO_GGUF_UINT16:
    case SOTTO_GGUF_UINT32:
    case SOTTO_GGUF_UINT64:
        printf("%" PRIu64, kv->v.u64);
        break;
    case SOTTO_GGUF_INT8:
    case SOTTO_GGUF_INT16:
    case SOTTO_GGUF_INT32:
    case SOTTO_GGUF_INT64:
        printf("%" PRId64, kv->v.i64);
        break;
    case SOTTO_GGUF_FLOAT32:
        json_double(kv->v.f64, 1);
        break;
    case SOTTO_GGUF_FLOAT64:
        json_double(kv->v.f64, 0);
        break;
    case SOTTO_GGUF_BOOL:
        printf("%s", kv->v.u64 ? "true" : "false");
        break;
    case SOTTO_GGUF_STRING:
        json_string(kv->v.str.data, kv->v.str.len);
        break;
    case SOTTO_GGUF_ARRAY:
        putchar('[');
        for (uint64_t i = 0; i < kv->arr_n; i++) {
            if (i) printf(", ");
            if (kv->arr_type == SOTTO_GGUF_STRING) {
                const sotto_gguf_str *s = &((const sotto_gguf_str *)kv->v.arr)[i];
                json_string(s->data, s->len);
            } else {
                json_elem(kv->arr_type, (const uint8_t *)kv->v.arr + i * elem_size(kv->arr_type));
            }
        }
        putchar(']');
        break;
    default:
        printf("null");
        break;
    }
}

static void json_opt_string(const sotto_gguf_kv *kv)
{
    if (kv && kv->type == SOTTO_GGUF_STRING)
        json_string(kv->v.str.data, kv->v.str.len);
    else
        printf("null");
}

static void print_json(const char *path, const sotto_gguf *g)
{
    printf("{\n  \"file\": ");
    json_string(path, strlen(path));
    printf(",\n  \"size\": %" PRIu64 ",\n  \"version\": %" PRIu32 ",\n  \"alignment\": %" PRIu32
           ",\n  \"architecture\": ",
           sotto_gguf_size(g), sotto_gguf_version(g), sotto_gguf_alignment(g));
    json_opt_string(sotto_gguf_find_kv(g, "general.architecture"));
    printf(",\n  \"name\": ");
    json_opt_string(sotto_gguf_find_kv(g, "general.name"));
    printf(",\n  \"metadata\": [");
    for (int64_t i = 0; i < sotto_gguf_kv_count(g); i++) {
        const sotto_gguf_kv *kv = sotto_gguf_kv_at(g, i);
        printf("%s\n    {\"key\": ", i ? "," : "");
        json_string(kv->key.data, kv->key.len);
        printf(", \"type\": \"%s", sotto_gguf_type_name(kv->type));
        if (kv->type == SOTTO_GGUF_ARRAY) printf("[%s]", sotto_gguf_type_name(kv->arr_type));
        printf("\", \"value\": ");
        json_value(kv);
        putchar('}');
    }
    printf("\n  ],\n  \"tensors\": [");
    uint64_t params = 0, bytes = 0;
    int64_t n_t = sotto_gguf_tensor_count(g);
    for (int64_t i = 0; i < n_t; i++) {
        const sotto_gguf_tensor *t = sotto_gguf_tensor_at(g, i);
        char shape[128];
        shape_text(t, shape, sizeof shape);
        printf("%s\n    {\"name\": ", i ? "," : "");
        json_string(t->name.data, t->name.len);
        printf(", \"dtype\": \"%s\", \"shape\": %s, \"bytes\": %" PRIu64 ", \"offset\": %" PRIu64
               "}",
               sotto_dtype_name(t->dtype), shape, t->n_bytes, t->offset);
        params += (uint64_t)t->n_elems;
        bytes += t->n_bytes;
    }
    printf("\n  ],\n  \"totals\": {\"tensors\": %" PRId64 ", \"parameters\": %" PRIu64
           ", \"bytes\": %" PRIu64 "}\n}\n",
           n_t, params, bytes);
}

/* ---- .sotto streams ----------------------------------------------------------------------- */

/* Vendor and comments straight from the headers (the public info carries only the count). */
static void sotto_tags(const char *path, int json)
{
    FILE *f = fopen(path, "rb");
    sotto_oggmap_reader *r = NULL;
    if (!f || sotto_oggmap_reader_open_file(f, NULL, &r, NULL) != SOTTO_OK) {
        if (f) fclose(f);
        printf(json ? "null, \"comments\": []" : "\n");
        return;
    }
    const char *vendor = sotto_oggmap_reader_vendor(r);
    const int n = sotto_oggmap_reader_comment_count(r);
    if (json) {
        json_string(vendor, strlen(vendor));
        printf(", \"comments\": [");
        for (int i = 0; i < n; i++) {
            const char *c = sotto_oggmap_reader_comment(r, i);
            printf("%s", i ? ", " : "");
            json_string(c ? c : "", c ? strlen(c) : 0);
        }
        putchar(']');
    } else {
        printf("%s\ncomments:     %d\n", vendor, n);
        for (int i = 0; i < n; i++) {
            const char *c = sotto_oggmap_reader_comment(r, i);
            printf("  %s\n", c ? c : "");
        }
    }
    sotto_oggmap_reader_free(r);
    fclose(f);
}

static int info_sotto(const char *path, const char *model_path, int json)
{
    sotto_model *model = NULL;
    sotto_status st;
    if (model_path && sotto_model_load_file(model_path, NULL, &model, &st) != SOTTO_OK) {
        cli_error("info", "%s: %s", model_path, st.message);
        return CLI_ERR_MODEL;
    }
    sotto_codec_file_info fi;
    int rc = sotto_codec_probe_file(path, model, &fi, &st);
    sotto_model_free(model);
    if (rc != SOTTO_OK) {
        cli_error("info", "%s", st.message);
        return rc == SOTTO_ERR_OUT_OF_MEMORY ? CLI_ERR_RUNTIME : CLI_ERR_INPUT;
    }
    char id[65];
    for (int i = 0; i < 32; i++)
        snprintf(id + 2 * i, 3, "%02x", fi.model_identity[i]);
    const char *match = fi.identity_matches < 0 ? NULL : fi.identity_matches ? "yes" : "no";
    const int damaged = fi.n_problems > 0 || fi.truncated;
    if (json) {
        printf("{\n  \"file\": ");
        json_string(path, strlen(path));
        printf(",\n  \"type\": \"sotto\",\n  \"codec\": ");
        json_string(fi.codec, strlen(fi.codec));
        printf(",\n  \"version\": %d,\n  \"model_identity\": \"%s\",\n  \"model_matches\": %s,"
               "\n  \"sample_rate_hz\": %d,\n  \"input_rate_hz\": %d,\n  \"frame_rate_hz\": %.6g,"
               "\n  \"pre_skip\": %lld,\n  \"samples\": %lld,\n  \"seconds\": %.6f,"
               "\n  \"packets\": %lld,\n  \"groups\": %lld,\n  \"frames\": %lld,"
               "\n  \"groups_per_second\": %.4f,\n  \"frames_per_second\": %.4f,"
               "\n  \"stages\": [%d, %d],\n  \"bytes\": %lld,\n  \"bitrate_bps\": %.1f,"
               "\n  \"damaged\": %s,\n  \"problems\": %d,\n  \"lost_samples\": %lld,"
               "\n  \"bad_packets\": %lld,\n  \"lost_pages\": %lld,\n  \"damaged_pages\": %lld,"
               "\n  \"truncated\": %s,\n  \"first_problem\": ",
               fi.version, id, match ? (fi.identity_matches ? "true" : "false") : "null",
               fi.sample_rate_hz, fi.input_rate_hz, fi.frame_rate_hz, (long long)fi.pre_skip,
               (long long)fi.samples, fi.duration_s, (long long)fi.packets, (long long)fi.groups,
               (long long)fi.frames, fi.groups_per_s, fi.frames_per_s, fi.min_stages, fi.max_stages,
               (long long)fi.file_bytes, fi.bitrate_bps, damaged ? "true" : "false", fi.n_problems,
               (long long)fi.lost_samples, (long long)fi.bad_packets, (long long)fi.holes,
               (long long)fi.damaged_pages, fi.truncated ? "true" : "false");
        json_string(fi.first_problem, strlen(fi.first_problem));
        printf(",\n  \"vendor\": ");
        sotto_tags(path, 1);
        printf("\n}\n");
    } else {
        printf("file:         %s\n", path);
        printf("type:         .sotto codec stream (mapping version %d)\n", fi.version);
        printf("codec:        %s\n", fi.codec);
        printf("model:        %s%s%s\n", id, match ? "  matches -m model: " : "",
               match ? match : "");
        printf("sample rate:  %d Hz (input %d Hz%s)\n", fi.sample_rate_hz, fi.input_rate_hz,
               fi.input_rate_hz ? "" : ": unknown");
        printf("frame rate:   %.4g Hz\n", fi.frame_rate_hz);
        printf("pre-skip:     %lld samples\n", (long long)fi.pre_skip);
        printf("duration:     %.3f s (%lld samples)\n", fi.duration_s, (long long)fi.samples);
        printf("packets:      %lld\n", (long long)fi.packets);
        printf("groups:       %lld (%lld frames)\n", (long long)fi.groups, (long long)fi.frames);
        printf("average rate: %.3f groups/s, %.3f frames/s\n", fi.groups_per_s, fi.frames_per_s);
        printf("stages:       %d..%d RVQ stages per packet\n", fi.min_stages, fi.max_stages);
        printf("size:         %lld bytes\n", (long long)fi.file_bytes);
        printf("bitrate:      %.1f bps (file size / duration)\n", fi.bitrate_bps);
        if (damaged)
            printf("damage:       %d problem%s, %lld samples lost, %lld bad packets, %lld lost "
                   "pages, %lld damaged pages%s; first: %s\n",
                   fi.n_problems, fi.n_problems == 1 ? "" : "s", (long long)fi.lost_samples,
                   (long long)fi.bad_packets, (long long)fi.holes, (long long)fi.damaged_pages,
                   fi.truncated ? ", truncated" : "", fi.first_problem);
        else
            printf("damage:       none\n");
        printf("vendor:       ");
        sotto_tags(path, 0);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("info", "cannot write the output");
        return CLI_ERR_OUTPUT;
    }
    return CLI_OK;
}

/* 1 when the file starts with "OggS" (a .sotto stream), 0 otherwise or unreadable. */
static int is_ogg(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char m[4] = {0};
    size_t n = fread(m, 1, 4, f);
    fclose(f);
    return n == 4 && !memcmp(m, "OggS", 4);
}

int cmd_info(int argc, char **argv)
{
    const char *path = NULL, *model_path = NULL;
    int json = 0, only_files = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_files && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
            usage(stdout);
            return CLI_OK;
        } else if (!only_files && !strcmp(a, "--json")) {
            json = 1;
        } else if (!only_files && (!strcmp(a, "-m") || !strcmp(a, "--model")) && i + 1 < argc) {
            model_path = argv[++i];
        } else if (!only_files && !strcmp(a, "--")) {
            only_files = 1;
        } else if (!only_files && a[0] == '-' && a[1]) {
            cli_error("info", "unknown option '%s' (see 'sotto info --help')", a);
            return CLI_ERR_USAGE;
        } else if (path) {
            cli_error("info", "one FILE only (got '%s' and '%s')", path, a);
            return CLI_ERR_USAGE;
        } else {
            path = a;
        }
    }
    if (!path) {
        cli_error("info", "missing FILE (see 'sotto info --help')");
        return CLI_ERR_USAGE;
    }
    if (is_ogg(path)) return info_sotto(path, model_path, json);
    sotto_gguf *g = NULL;
    sotto_status st;
    int rc = sotto_gguf_open_file(path, 1, NULL, &g, &st);
    if (rc != SOTTO_OK) {
        /* I/O messages already name the file; format messages name the culprit inside it. */
        if (strstr(st.message, path))
            cli_error("info", "%s", st.message);
        else
            cli_error("info", "%s: %s", path, st.message);
        return rc == SOTTO_ERR_OUT_OF_MEMORY ? CLI_ERR_RUNTIME : CLI_ERR_INPUT;
    }
    if (json)
        print_json(path, g);
    else
        print_text(path, g);
    sotto_gguf_close(g);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("info", "cannot write the output");
        return CLI_ERR_OUTPUT;
    }
    return CLI_OK;
}
