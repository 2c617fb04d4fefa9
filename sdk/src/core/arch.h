/*
 * The table of architectures the SDK runs: for each `general.architecture` value, the loader
 * that reads its hyperparameters and repacks its weights when a model is loaded.
 */
#ifndef SOTTO_ARCH_H
#define SOTTO_ARCH_H

#include "core/model.h"

/* Runs the loader of model->arch. Unknown architectures load as plain containers (for
 * `sotto info`) with no loader; streams then refuse them by name. */
int sotto_arch_load(sotto_model *model, sotto_status *st);

#endif
