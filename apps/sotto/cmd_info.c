/*
 * `sotto info FILE`: what a model file holds. Prints the GGUF version, architecture, name,
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

static void usage(FILE *f)
{
    fprintf(f, "usage: sotto info [--json] FILE\n\n"
               "Prints a GGUF model file's version, architecture, name, metadata and tensors.\n\n"
               "  --json     one JSON object instead of text (metadata arrays in full)\n"
               "  -h, --help this help\n\n"
               "Exit codes: 0 ok, 2 bad arguments, 3 the file is missing, unreadable or "
               "malformed.\n");
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

int cmd_info(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0, only_files = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_files && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
            usage(stdout);
            return CLI_OK;
        } else if (!only_files && !strcmp(a, "--json")) {
            json = 1;
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
