# Turns one CUDA source into host C++ for the CUDA emulator (tests/cudaemu/README.md):
#   name<<<grid, block[, shmem[, stream]]>>>(args)  ->  ::emu::launch_t(grid, block, ...)("name", name, args)
# Line numbers are kept (and a #line directive names the original file).
# usage: cmake -DIN=file.cu -DOUT=file.cpp -P rewrite.cmake
file(READ "${IN}" src)
string(REPLACE "`" "@SOTTO_CUDAEMU_BACKTICK@" src "${src}") # backticks of comments
string(REPLACE ">>>" "`" src "${src}")
string(REGEX REPLACE
       "([A-Za-z_][A-Za-z_0-9]*(<[A-Za-z_0-9:, ]*>)?)[ \t\r\n]*<<<([^`]*)`[ \t\r\n]*\\("
       "::emu::launch_t(\\3)(\"\\1\", \\1, " src "${src}")
string(FIND "${src}" "`" left)
if(NOT left EQUAL -1)
    message(FATAL_ERROR "${IN}: a kernel launch the emulator's rewrite does not understand")
endif()
string(REPLACE "@SOTTO_CUDAEMU_BACKTICK@" "`" src "${src}")
file(WRITE "${OUT}.tmp" "#line 1 \"${IN}\"\n${src}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
