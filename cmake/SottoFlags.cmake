# Compiler flags for our own code (third-party headers come in as SYSTEM includes through the
# imported targets, so -Werror applies to Sotto only).
set(SOTTO_WARNINGS -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter -Werror)
set(SOTTO_CXX_WARNINGS -Wall -Wextra -Wno-unused-parameter -Werror)

if(SOTTO_SANITIZE)
    add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                        -fno-sanitize-recover=undefined)
    add_link_options(-fsanitize=address,undefined)
endif()
if(SOTTO_NATIVE)
    add_compile_options(-march=native)
endif()

# Files named *_avx2.c are built for AVX2 + FMA + F16C, *_avx512.c for AVX-512F as well; the
# CPU is checked at run time before any of their functions is called.
set(SOTTO_AVX2_FLAGS -mavx2 -mfma -mf16c)
set(SOTTO_AVX512_FLAGS -mavx512f -mavx2 -mfma -mf16c)
# *_avx512fp16.c: binary16 arithmetic (GCC 12 / Clang 14 and later); with an older compiler
# the file builds empty and the scalar reference stays in the table.
include(CheckCCompilerFlag)
check_c_compiler_flag(-mavx512fp16 SOTTO_CC_HAS_AVX512FP16)
if(SOTTO_CC_HAS_AVX512FP16)
    set(SOTTO_AVX512FP16_FLAGS ${SOTTO_AVX512_FLAGS} -mavx512bw -mavx512vl -mavx512fp16)
else()
    set(SOTTO_AVX512FP16_FLAGS "")
endif()

function(sotto_target_warnings tgt)
    target_compile_options(${tgt} PRIVATE $<$<COMPILE_LANGUAGE:C>:${SOTTO_WARNINGS}>
                                          $<$<COMPILE_LANGUAGE:CXX>:${SOTTO_CXX_WARNINGS}>)
endfunction()

# ---- fuzzing (SOTTO_FUZZ) ----------------------------------------------------------------
# Everything is built with libFuzzer's coverage instrumentation and ASan + UBSan (UB aborts,
# so the fuzzer stops on it); only the fuzz targets in tests/fuzz link -fsanitize=fuzzer.
# CUDA sources are left alone. Configure with CC=clang CXX=clang++.
if(SOTTO_FUZZ)
    if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang" OR NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
        message(FATAL_ERROR "SOTTO_FUZZ=ON needs clang: configure with CC=clang CXX=clang++")
    endif()
    set(SOTTO_FUZZ_FLAGS -fsanitize=fuzzer-no-link,address,undefined
                         -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g)
    add_compile_options("$<$<COMPILE_LANGUAGE:C,CXX>:${SOTTO_FUZZ_FLAGS}>")
    add_link_options(-fsanitize=address,undefined)
endif()
