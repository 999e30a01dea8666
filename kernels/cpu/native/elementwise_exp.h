// exp(x) in float64, evaluated step by step as fdlibm's e_exp.c does (argument reduction
// x = k ln2 + r with ln2 split in two, a degree-5 rational correction in r*r, then scaling by 2^k).
// V8's Math.exp is a port of the same routine, so for every input this returns the same double as
// Math.exp, which tfjs-backend-cpu's Exp and Sigmoid call; the tests compare them on millions of
// float32 inputs. Nothing here may be contracted into fused multiply-adds (the pragmas below).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace sparse {

// fdlibm's constants: ln2 as hi + lo (hi has its low 32 bits zero, so k * hi is exact), 1/ln2, the
// polynomial coefficients, and the thresholds past which exp overflows or underflows.
constexpr double kExpLn2Hi = 6.93147180369123816490e-01;
constexpr double kExpLn2Lo = 1.90821492927058770002e-10;
constexpr double kExpInvLn2 = 1.44269504088896338700e+00;
constexpr double kExpP1 = 1.66666666666666019037e-01;
constexpr double kExpP2 = -2.77777777770155933842e-03;
constexpr double kExpP3 = 6.61375632143793436117e-05;
constexpr double kExpP4 = -1.65339022054652515390e-06;
constexpr double kExpP5 = 4.13813679705723846039e-08;
constexpr double kExpOverflow = 7.09782712893383973096e+02;
constexpr double kExpUnderflow = -7.45133219101941108420e+02;
constexpr double kExpTwoM1000 = 9.33263618503218878990e-302;  // 2^-1000
constexpr double kExpTwo1023 = 8.98846567431157953865e+307;   // 2^1023

inline double twoTo(int e) {  // 2^e for a normal exponent e
  const uint64_t b = static_cast<uint64_t>(0x3ff + e) << 52;
  double d;
  std::memcpy(&d, &b, 8);
  return d;
}

inline double fdlibmExp(double x) {
  const double halF[2] = {0.5, -0.5};
  const double ln2HI[2] = {kExpLn2Hi, -kExpLn2Hi};
  const double ln2LO[2] = {kExpLn2Lo, -kExpLn2Lo};
  uint64_t bits;
  std::memcpy(&bits, &x, 8);
  const uint32_t hx0 = static_cast<uint32_t>(bits >> 32);
  const int xsb = (hx0 >> 31) & 1;
  const uint32_t hx = hx0 & 0x7fffffff;
  double hi = 0, lo = 0;
  int k = 0;
  if (hx >= 0x40862E42) {
    if (hx >= 0x7ff00000) {
      if (((hx & 0xfffff) | static_cast<uint32_t>(bits)) != 0) return x + x;
      return xsb == 0 ? x : 0.0;
    }
    if (x > kExpOverflow) return HUGE_VAL;
    if (x < kExpUnderflow) return 0.0;
  }
  if (hx > 0x3fd62e42) {
    if (hx < 0x3FF0A2B2) {
      hi = x - ln2HI[xsb];
      lo = ln2LO[xsb];
      k = 1 - xsb - xsb;
    } else {
      k = static_cast<int>(kExpInvLn2 * x + halF[xsb]);
      const double t = k;
      hi = x - t * ln2HI[0];
      lo = t * ln2LO[0];
    }
    x = hi - lo;
  } else if (hx < 0x3e300000) {
    return 1.0 + x;
  } else {
    k = 0;
  }
  const double t = x * x;
  const double c = x - t * (kExpP1 + t * (kExpP2 + t * (kExpP3 + t * (kExpP4 + t * kExpP5))));
  if (k == 0) return 1.0 - ((x * c) / (c - 2.0) - x);
  const double y = 1.0 - ((lo - (x * c) / (2.0 - c)) - hi);
  if (k >= -1021) {
    if (k == 1024) return y * 2.0 * kExpTwo1023;
    return y * twoTo(k);
  }
  return y * twoTo(k + 1000) * kExpTwoM1000;
}

}  // namespace sparse

