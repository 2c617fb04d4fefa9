/* Device probe when Sotto is built without its CUDA backend: there are no devices. */
#include "backend/cuda_probe.h"

#ifndef SOTTO_HAVE_CUDA
int sotto_cuda_driver_present(void)
{
    return 0;
}

int sotto_cuda_device_count(void)
{
    return 0;
}

int sotto_cuda_device_name(int device, char *buf, int size)
{
    (void)device;
    if (buf && size > 0) buf[0] = '\0';
    return -1;
}
#endif
