/*
 * CPU feature detection. Computed on each call (a few cpuid instructions) so there is no
 * cached global; callers detect once at creation and keep the result.
 */
#include "sotto/sotto.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static unsigned long long xgetbv0(void)
{
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

unsigned sotto_cpu_features(void)
{
    unsigned a, b, c, d, f = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
    /* The OS must save YMM state (XCR0 bits 1 and 2) for any AVX use. */
    if (!osxsave || !avx || (xgetbv0() & 6) != 6) return 0;
    if (fma) f |= SOTTO_CPU_FMA;
    if (f16c) f |= SOTTO_CPU_F16C;
    if (__get_cpuid_max(0, NULL) >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        if ((b >> 5) & 1) f |= SOTTO_CPU_AVX2;
        /* AVX-512F, and the OS saves opmask, upper ZMM and ZMM16-31 (XCR0 bits 5-7) */
        if (((b >> 16) & 1) && (xgetbv0() & 0xE6) == 0xE6) {
            f |= SOTTO_CPU_AVX512;
            /* AVX512-FP16 (EDX bit 23) with AVX512-BW (EBX bit 30) */
            if (((d >> 23) & 1) && ((b >> 30) & 1)) f |= SOTTO_CPU_AVX512FP16;
        }
    }
    return f;
}
#else
unsigned sotto_cpu_features(void)
{
    return 0;
}
#endif
