/*
 * CUDA device discovery for backend selection. Every runtime call is checked; a machine
 * without a driver or device simply reports zero devices (never an abort).
 */
#include <cuda_runtime.h>
#include <unistd.h>

#include "backend/cuda_probe.h"

extern "C" int sotto_cuda_driver_present(void)
{
#ifdef SOTTO_CUDA_EMULATED
    return 1; /* the emulator's device (tests/cudaemu) needs no driver */
#else
    return access("/dev/nvidiactl", F_OK) == 0 || access("/proc/driver/nvidia/version", F_OK) == 0;
#endif
}

extern "C" int sotto_cuda_device_count(void)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); /* clear the sticky-free error so later calls start clean */
        return 0;
    }
    return n;
}

extern "C" int sotto_cuda_device_name(int device, char *buf, int size)
{
    if (!buf || size <= 0) return -1;
    buf[0] = '\0';
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
        (void)cudaGetLastError();
        return -1;
    }
    int i = 0;
    for (; i < size - 1 && prop.name[i]; i++) buf[i] = prop.name[i];
    buf[i] = '\0';
    return 0;
}
