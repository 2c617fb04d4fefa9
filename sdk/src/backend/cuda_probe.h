/*
 * Whether CUDA devices exist. With the CUDA backend built these query the runtime; without
 * it (no nvcc at build time) they are the stubs in cuda_probe.c that report none.
 */
#ifndef SOTTO_CUDA_PROBE_H
#define SOTTO_CUDA_PROBE_H

#ifdef __cplusplus
extern "C" {
#endif

/* Number of usable CUDA devices (0 when the driver or runtime is missing). */
int sotto_cuda_device_count(void);
/* The device's name into buf; 0 on success, -1 otherwise. */
int sotto_cuda_device_name(int device, char *buf, int size);

#ifdef __cplusplus
}
#endif

#endif
