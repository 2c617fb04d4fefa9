/*
 * Whether CUDA devices exist. With the CUDA backend built these query the runtime; without
 * it (no nvcc at build time) they are the stubs in cuda_probe.c that report none.
 */
#ifndef SOTTO_CUDA_PROBE_H
#define SOTTO_CUDA_PROBE_H

#ifdef __cplusplus
extern "C" {
#endif

/* Whether an NVIDIA driver is installed (its device nodes or /proc entry exist): a cheap test
 * that starts nothing, so SOTTO_BACKEND_AUTO only starts the CUDA runtime where a device can
 * exist. Always 0 without the CUDA backend. */
int sotto_cuda_driver_present(void);
/* Number of usable CUDA devices (0 when the driver or runtime is missing). */
int sotto_cuda_device_count(void);
/* The device's name into buf; 0 on success, -1 otherwise. */
int sotto_cuda_device_name(int device, char *buf, int size);

#ifdef __cplusplus
}
#endif

#endif
