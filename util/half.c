/* half.c - f32 <-> bf16 and IEEE f16 conversions (see half.h). */
#include "util/half.h"

#include <math.h>
#include <string.h>

float ut_bf16_to_f32(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

uint16_t ut_f32_to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* NaN */
  u += 0x7fffu + ((u >> 16) & 1);
  return (uint16_t)(u >> 16);
}

float ut_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  float f;
  if (exp == 0) {
    f = ldexpf((float)man, -24);
  } else if (exp == 31) {
    f = man ? NAN : INFINITY;
  } else {
    f = ldexpf((float)(man | 0x400), (int)exp - 25);
  }
  uint32_t u;
  memcpy(&u, &f, 4);
  u |= sign;
  memcpy(&f, &u, 4);
  return f;
}

uint16_t ut_f32_to_f16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
  float a = fabsf(f);
  if (isnan(f)) return sign | 0x7e00;
  if (a >= 65520.0f) return sign | 0x7c00; /* rounds to infinity */
  if (a < 6.103515625e-05f) {              /* subnormal: multiples of 2^-24 */
    float q = a * 16777216.0f;
    uint16_t m = (uint16_t)lrintf(q);      /* round to nearest even */
    return sign | m;
  }
  int e;
  float m = frexpf(a, &e);                 /* a = m * 2^e, m in [0.5, 1) */
  uint32_t mant = (uint32_t)lrintf(ldexpf(m, 11)); /* 11 significant bits */
  if (mant == 2048) {
    mant = 1024;
    e++;
  }
  uint32_t exp = (uint32_t)(e - 1 + 15);
  if (exp >= 31) return sign | 0x7c00;
  return (uint16_t)(sign | exp << 10 | (mant & 0x3ff));
}
