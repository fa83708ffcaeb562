/* half.h - conversions between f32 and the 16-bit float types hsac stores:
 * bf16 (the top half of an f32) and IEEE binary16 (f16).  Both directions
 * from f32 round to nearest even; a NaN stays a quiet NaN; f16 overflows
 * to infinity and keeps subnormals.  Used by the weights reader and
 * writer, the reference interpreter's 16-bit stores and the CPU backend's
 * 16-bit weight panels, so every one rounds the same way. */
#ifndef HSAC_UTIL_HALF_H
#define HSAC_UTIL_HALF_H

#include <stdint.h>

float ut_bf16_to_f32(uint16_t h);
uint16_t ut_f32_to_bf16(float f); /* round to nearest even */
float ut_f16_to_f32(uint16_t h);
uint16_t ut_f32_to_f16(float f);  /* round to nearest even */

#endif
