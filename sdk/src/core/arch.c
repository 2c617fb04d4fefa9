/* Architecture table; see arch.h. */
#include "core/arch.h"

#include <string.h>

#include "codecs/flexicodec/flexicodec.h"
#include "vocoder/vocos/vocos.h"

typedef struct arch_entry {
    const char *name;
    int (*load)(sotto_model *model, sotto_status *st);
} arch_entry;

static const arch_entry archs[] = {
    {"vocos", sotto_vocos_load},
    {"flexicodec", sotto_flexicodec_load},
};

int sotto_arch_load(sotto_model *model, sotto_status *st)
{
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(archs); i++)
        if (!strcmp(model->arch, archs[i].name)) return archs[i].load(model, st);
    return SOTTO_OK;
}
