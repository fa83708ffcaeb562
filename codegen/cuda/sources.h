/* sources.h - texts the CUDA code generator needs at run time, embedded at
 * build time by codegen/cuda/embed.cmake: prelude.cuh (every module
 * starts with it) and emu.h (the emulator compiles modules with it). */
#ifndef HSAC_CODEGEN_CUDA_SOURCES_H
#define HSAC_CODEGEN_CUDA_SOURCES_H

extern const char cg_cuda_prelude_text[];
extern const char cg_cuda_emu_text[];

#endif
