/*
 * CUDA device discovery (backend/cuda_probe.h): where a device exists, the probe must count
 * it, name it, and refuse device indices out of range. Where none exists (no driver, no GPU,
 * or Sotto built without nvcc), the test reports SKIP (exit code 77), never a pass.
 */
#include <stdio.h>
#include <string.h>

#include "backend/cuda_probe.h"
#include "testutil.h"

static void test_probe(void)
{
    int n = sotto_cuda_device_count();
    CU_ASSERT_TRUE_FATAL(n >= 1);
    for (int d = 0; d < n; d++) {
        char name[256];
        memset(name, 'x', sizeof name);
        CU_ASSERT_EQUAL(sotto_cuda_device_name(d, name, (int)sizeof name), 0);
        CU_ASSERT_TRUE(strlen(name) > 0 && strlen(name) < sizeof name);
        printf("device %d: %s\n", d, name);
    }
    char buf[8] = "abc";
    CU_ASSERT_EQUAL(sotto_cuda_device_name(n, buf, (int)sizeof buf), -1);
    CU_ASSERT_EQUAL(buf[0], '\0');
    CU_ASSERT_EQUAL(sotto_cuda_device_name(-1, buf, (int)sizeof buf), -1);
    CU_ASSERT_EQUAL(sotto_cuda_device_name(0, NULL, 16), -1);
}

int main(void)
{
    if (sotto_cuda_device_count() == 0) {
        printf("SKIP: no CUDA device (or Sotto built without the CUDA backend)\n");
        return 77;
    }
    static const tu_test tests[] = {{"probe", test_probe}, {NULL, NULL}};
    return tu_run_suite("cuda_device", tests);
}
