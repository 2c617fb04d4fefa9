/*
 * CPU backend context: picks the kernel table once from the allowed features and the CPU's
 * real ones, and answers the capability query. The tables themselves are built per context
 * (a struct copy), so there is no process-wide dispatch state to race on.
 */
#include <cblas.h>
#include <ctype.h>
#include <string.h>

#include "backend/cpu/cpu.h"

static const char *const op_names[SOTTO_OP_COUNT] = {
    "linear",           "linear_f16", "pad1d",     "conv1d",  "conv1d_depthwise",
    "conv_transpose1d", "conv2d",     "layernorm", "rmsnorm", "groupnorm",
    "channel_affine",   "gelu_erf",   "gelu_tanh", "silu",    "elu",
    "leaky_relu",       "snake",      "tanh",      "softmax", "embedding"};

const char *sotto_op_name(int op)
{
    return op >= 0 && op < SOTTO_OP_COUNT ? op_names[op] : "?";
}

/* OpenBLAS's name for the core it dispatched to (declared by OpenBLAS's cblas.h). */
static int blas_core_is_pre_avx2(void)
{
    static const char *const old[] = {"prescott", "core2", "penryn", "dunnington", "nehalem",
                                      "sandybridge", "atom", "katmai", "coppermine", "northwood",
                                      "banias", "opteron", "barcelona", "bobcat", "bulldozer"};
    const char *name = openblas_get_corename();
    char low[32];
    size_t n = 0;
    for (; name && name[n] && n + 1 < sizeof low; n++)
        low[n] = (char)tolower((unsigned char)name[n]);
    low[n] = 0;
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(old); i++)
        if (strstr(low, old[i])) return 1;
    return 0;
}

void sotto_cpu_init(sotto_cpu *cpu, unsigned features, sotto_threadpool *tp)
{
    /* Never trust the mask alone: a caller may pass "all bits" on a CPU without them. */
    const unsigned f = features & sotto_cpu_features();
    sotto_cpu_kernels_ref(&cpu->k);
    sotto_cpu_kernels_avx2(&cpu->k, f);
    sotto_cpu_kernels_avx512(&cpu->k, f); /* over the AVX2 entries */
    sotto_cpu_kernels_avx512fp16(&cpu->k, f);
    cpu->features = cpu->k.isa;
    cpu->tp = tp;
    const unsigned fma = SOTTO_CPU_AVX2 | SOTTO_CPU_FMA;
    cpu->blas_large = !((cpu->features & fma) == fma && blas_core_is_pre_avx2());
    /* Our pool splits large GEMMs; OpenBLAS's own threads would oversubscribe the cores
     * (see cpu.h). The call only stores a count once OpenBLAS's pool exists. */
    openblas_set_num_threads(1);
}

int sotto_cpu_supports(const sotto_cpu *cpu, int op)
{
    (void)cpu;
    return op >= 0 && op < SOTTO_OP_COUNT;
}
