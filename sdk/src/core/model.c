/*
 * The public sotto_model API: loading a GGUF file or buffer with validated params, the
 * required `general.architecture` key, and introspection for `sotto info`. Architecture code
 * attaches its weights later through the slots in model.h; this file only owns the container.
 */
#include "core/model.h"
#include "core/arch.h"
#include "backend/cuda_probe.h"

#include <string.h>

#define SOTTO_MAX_THREADS 64

sotto_model_params sotto_model_default_params(void)
{
    sotto_model_params p;
    memset(&p, 0, sizeof p);
    p.backend = SOTTO_BACKEND_AUTO;
    p.device = 0;
    p.n_threads = 1;
    p.use_mmap = 1;
    p.cpu_features_mask = ~0u;
    p.allocator = NULL;
    return p;
}

sotto_backend_kind sotto_model_backend(const sotto_model *model)
{
    return model ? model->backend_used : SOTTO_BACKEND_CPU;
}

int sotto_model_f16_arithmetic(const sotto_model *model)
{
    return model ? model->f16_math_used : 0;
}

int sotto_model_params_check(const sotto_model_params *p, sotto_status *st)
{
    if (p->n_threads < 1 || p->n_threads > SOTTO_MAX_THREADS)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "params.n_threads = %d, not in 1..%d",
                                p->n_threads, SOTTO_MAX_THREADS);
    if (p->backend != SOTTO_BACKEND_AUTO && p->backend != SOTTO_BACKEND_CPU &&
        p->backend != SOTTO_BACKEND_CUDA)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "params.backend = %d, not a sotto_backend_kind", (int)p->backend);
    if (p->device < 0)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "params.device = %d, must be >= 0",
                                p->device);
    if (p->f16_arithmetic < 0 || p->f16_arithmetic > 2)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "params.f16_arithmetic = %d, must be 0, 1 or 2", p->f16_arithmetic);
    if (p->gpu_bf16 != 0 && p->gpu_bf16 != 1)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "params.gpu_bf16 = %d, must be 0 or 1",
                                p->gpu_bf16);
    if (p->allocator && (!p->allocator->alloc || !p->allocator->free))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "params.allocator needs both alloc and free");
    return SOTTO_OK;
}

/* Validates params and makes an empty model with its allocator. */
static int model_new(const sotto_model_params *params, sotto_model **out, sotto_status *st)
{
    sotto_model_params p = params ? *params : sotto_model_default_params();
    int rc = sotto_model_params_check(&p, st);
    if (rc) return rc;
    sotto_alloc a;
    sotto_alloc_init(&a, p.allocator);
    sotto_model *m = sotto_calloc(&a, 1, sizeof *m);
    if (!m) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory (model)");
    m->alloc = a;
    m->params = p;
    if (p.allocator) m->params.allocator = &m->alloc.hooks;
    m->cpu_features = sotto_cpu_features() & p.cpu_features_mask;
    m->f16_math = (m->cpu_features & SOTTO_CPU_AVX512FP16) ? p.f16_arithmetic : 0;
    *out = m;
    return SOTTO_OK;
}

/* Before the architecture loads: an explicit CUDA request needs its device to exist (else
 * SOTTO_ERR_DEVICE); AUTO takes the device when one exists, without starting the CUDA runtime
 * on a machine that has no NVIDIA driver at all (starting it costs about 160 MB of resident
 * memory, which a CPU-only machine must not pay). cuda_ok then tells the loader it may use
 * the device. */
static int check_backend(sotto_model *m, sotto_status *st)
{
    const sotto_model_params *p = &m->params;
    m->backend_used = SOTTO_BACKEND_CPU;
    m->cuda_ok = 0;
    if (p->backend == SOTTO_BACKEND_CPU) return SOTTO_OK;
    if (p->backend == SOTTO_BACKEND_AUTO) {
        if (!sotto_cuda_driver_present()) return SOTTO_OK;
        const int n = sotto_cuda_device_count();
        if (p->device < n)
            m->cuda_ok = 1;
        else
            sotto_log(SOTTO_LOG_INFO, "backend AUTO: no CUDA device %d (%d found), using the CPU",
                      p->device, n);
        return SOTTO_OK;
    }
    const int n = sotto_cuda_device_count();
    if (n == 0)
        return sotto_status_set(st, SOTTO_ERR_DEVICE,
                                "params.backend = CUDA, but there is no CUDA device (or "
                                "Sotto was built without the CUDA backend)");
    if (p->device >= n)
        return sotto_status_set(st, SOTTO_ERR_DEVICE,
                                "params.backend = CUDA, device %d: only %d CUDA device%s",
                                p->device, n, n > 1 ? "s" : "");
    m->cuda_ok = 1;
    return SOTTO_OK;
}

int sotto_model_cuda_fallback(sotto_model *m, int rc, sotto_status *st)
{
    if (rc == SOTTO_OK || m->params.backend != SOTTO_BACKEND_AUTO) return rc;
    sotto_log(SOTTO_LOG_WARN, "backend AUTO: %s; this model runs on the CPU",
              st && st->message[0] ? st->message : "the CUDA device could not take the model");
    sotto_status_clear(st);
    m->cuda_path = 0;
    return SOTTO_OK;
}

/* After it loaded: which backend runs the model, said once in the log, never silently.
 * CUDA runs a model when it was asked for (SOTTO_BACKEND_CUDA) or AUTO found a device, and
 * the architecture has a CUDA path for it (cuda_path, set by its loader); otherwise the CPU
 * runs it, with a warning when CUDA was asked for explicitly. */
static void settle_backend(sotto_model *m)
{
    const sotto_model_params *p = &m->params;
    const char *how = p->backend == SOTTO_BACKEND_AUTO ? " (backend AUTO)" : "";
    if (m->cuda_ok && m->cuda_path) {
        m->backend_used = SOTTO_BACKEND_CUDA;
        sotto_log(SOTTO_LOG_INFO,
                  "%s model runs on CUDA device %d%s (docs/gpu.md says which parts)", m->arch,
                  p->device, how);
    } else if (m->cuda_ok) {
        sotto_log(p->backend == SOTTO_BACKEND_CUDA ? SOTTO_LOG_WARN : SOTTO_LOG_INFO,
                  "%s models of this kind have no CUDA path yet: this model runs on the CPU%s "
                  "(docs/gpu.md)",
                  m->arch, how);
    }
}

/* Reads the general keys of an opened file; on failure frees m. */
static int model_finish(sotto_model *m, sotto_model **out, sotto_status *st)
{
    const sotto_gguf_kv *kv = sotto_gguf_find_kv(m->gguf, "general.architecture");
    int rc = SOTTO_OK;
    if (!kv)
        rc = sotto_status_set(st, SOTTO_ERR_FORMAT, "missing required key 'general.architecture'");
    else if (kv->type != SOTTO_GGUF_STRING || kv->v.str.len == 0)
        rc = sotto_status_set(st, SOTTO_ERR_FORMAT,
                              "key 'general.architecture' must be a non-empty string (is %s)",
                              sotto_gguf_type_name(kv->type));
    else
        m->arch = kv->v.str.data;
    if (!rc) {
        kv = sotto_gguf_find_kv(m->gguf, "general.name");
        if (kv && kv->type != SOTTO_GGUF_STRING)
            rc = sotto_status_set(st, SOTTO_ERR_FORMAT, "key 'general.name' is %s, expected string",
                                  sotto_gguf_type_name(kv->type));
        m->name = kv && !rc ? kv->v.str.data : "";
    }
    /* The architecture's own loader checks and repacks its weights now, so streams made
     * later find a complete, read-only model. */
    if (!rc) rc = check_backend(m, st);
    if (!rc) rc = sotto_arch_load(m, st);
    if (!rc) settle_backend(m);
    if (rc) {
        sotto_model_free(m);
        return rc;
    }
    sotto_log(SOTTO_LOG_INFO, "loaded %s model '%s': %lld tensors, %lld keys", m->arch, m->name,
              (long long)sotto_gguf_tensor_count(m->gguf), (long long)sotto_gguf_kv_count(m->gguf));
    sotto_status_clear(st);
    *out = m;
    return SOTTO_OK;
}

int sotto_model_load_file(const char *path, const sotto_model_params *params, sotto_model **out,
                          sotto_status *status)
{
    if (out) *out = NULL;
    if (!path || !out)
        return sotto_status_set(status, SOTTO_ERR_INVALID_ARG, "sotto_model_load_file: NULL %s",
                                path ? "out" : "path");
    sotto_model *m = NULL;
    int rc = model_new(params, &m, status);
    if (rc) return rc;
    rc = sotto_gguf_open_file(path, m->params.use_mmap, &m->alloc, &m->gguf, status);
    if (rc) {
        sotto_model_free(m);
        return rc;
    }
    return model_finish(m, out, status);
}

int sotto_model_load_buffer(const void *data, size_t size, int copy,
                            const sotto_model_params *params, sotto_model **out,
                            sotto_status *status)
{
    if (out) *out = NULL;
    if (!out || !data)
        return sotto_status_set(status, SOTTO_ERR_INVALID_ARG, "sotto_model_load_buffer: NULL %s",
                                out ? "data" : "out");
    sotto_model *m = NULL;
    int rc = model_new(params, &m, status);
    if (rc) return rc;
    rc = sotto_gguf_open_buffer(data, size, copy, &m->alloc, &m->gguf, status);
    if (rc) {
        sotto_model_free(m);
        return rc;
    }
    return model_finish(m, out, status);
}

void sotto_model_free(sotto_model *model)
{
    if (!model) return;
    if (model->arch_free) model->arch_free(model);
    sotto_gguf_close(model->gguf);
    sotto_alloc a = model->alloc;
    sotto_free(&a, model);
}

const char *sotto_model_architecture(const sotto_model *model)
{
    return model && model->arch ? model->arch : "";
}

const char *sotto_model_name(const sotto_model *model)
{
    return model && model->name ? model->name : "";
}

int64_t sotto_model_meta_count(const sotto_model *model)
{
    return model ? sotto_gguf_kv_count(model->gguf) : 0;
}

const char *sotto_model_meta(const sotto_model *model, int64_t i, char *value, size_t value_size)
{
    if (value && value_size) value[0] = '\0';
    const sotto_gguf_kv *kv = model ? sotto_gguf_kv_at(model->gguf, i) : NULL;
    if (!kv) return NULL;
    sotto_gguf_kv_format(kv, value, value_size);
    return kv->key.data;
}

int64_t sotto_model_tensor_count(const sotto_model *model)
{
    return model ? sotto_gguf_tensor_count(model->gguf) : 0;
}

int sotto_model_tensor_info(const sotto_model *model, int64_t i, sotto_tensor_info *info)
{
    const sotto_gguf_tensor *t = model ? sotto_gguf_tensor_at(model->gguf, i) : NULL;
    if (!t || !info) return SOTTO_ERR_INVALID_ARG;
    info->name = t->name.data;
    info->dtype = sotto_dtype_name(t->dtype);
    info->n_dims = t->n_dims;
    for (int d = 0; d < 4; d++)
        info->shape[d] = t->shape[d];
    info->n_bytes = t->n_bytes;
    return SOTTO_OK;
}
