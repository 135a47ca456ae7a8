// The elementwise math, written once: one functor per op, compiled for the host (the CPU
// loops in kernels/cpu/loops.h) and, by nvcc, for the device (kernels/cuda/elementwise.cu).
// Both backends call the same operator(), so the CPU and CUDA results differ only where the
// math library does (glibc's expf against CUDA's libdevice expf: a few ulp).
//
//   unary   y = f(x; params)      Neg Exp Log Sqrt Rsqrt Pow Square Abs Sign Tanh Sigmoid
//                                 Softplus Softsign LeakyRelu LeakyReluSlope Clamp ClampMask AddScalar
//                                 MulScalar GtScalar LtScalar NanToNum IsFinite
//   binary  y = f(a, b)           Add Sub Mul Div Gt Lt Ge Le
//
// Scalar parameters are stored as double and converted to T where the op says (T)p, exactly
// as the engine's ops document (engine/ops.h). Comparisons with a scalar are made in double.
// min/max follow std::min/std::max: (a < b) ? b : a, so a NaN first argument propagates.
//
// Adding an elementwise op: its functor here, its name in SG_UNARY_FUNCTORS (or
// SG_BINARY_FUNCTORS), which instantiates the CUDA kernels for it; then the engine op
// (docs/architecture.md, "Adding an op").
#pragma once
#include <cmath>

#if defined(__CUDACC__)
#define SG_HD __host__ __device__ __forceinline__
#else
#define SG_HD inline
#endif

namespace sg::kernels {

// ---- math: the C library's float and double versions, on the host and on the device -----
SG_HD float m_exp(float x) { return ::expf(x); }
SG_HD double m_exp(double x) { return ::exp(x); }
SG_HD float m_log(float x) { return ::logf(x); }
SG_HD double m_log(double x) { return ::log(x); }
SG_HD float m_sqrt(float x) { return ::sqrtf(x); }
SG_HD double m_sqrt(double x) { return ::sqrt(x); }
SG_HD float m_tanh(float x) { return ::tanhf(x); }
SG_HD double m_tanh(double x) { return ::tanh(x); }
SG_HD float m_log1p(float x) { return ::log1pf(x); }
SG_HD double m_log1p(double x) { return ::log1p(x); }
SG_HD float m_pow(float x, float p) { return ::powf(x, p); }
SG_HD double m_pow(double x, double p) { return ::pow(x, p); }
SG_HD float m_abs(float x) { return ::fabsf(x); }
SG_HD double m_abs(double x) { return ::fabs(x); }
template <class T>
SG_HD T m_max(T a, T b) {
  return (a < b) ? b : a;
}
template <class T>
SG_HD T m_min(T a, T b) {
  return (b < a) ? b : a;
}
template <class T>
SG_HD bool m_isnan(T x) {
  return x != x;
}
template <class T>
SG_HD bool m_isinf(T x) {
  return m_abs(x) == (T)INFINITY;
}

// ---- unary ------------------------------------------------------------------------------
struct Neg {
  template <class T>
  SG_HD T operator()(T x) const {
    return -x;
  }
};
struct Exp {
  template <class T>
  SG_HD T operator()(T x) const {
    return m_exp(x);
  }
};
struct Log {
  template <class T>
  SG_HD T operator()(T x) const {
    return m_log(x);
  }
};
struct Sqrt {
  template <class T>
  SG_HD T operator()(T x) const {
    return m_sqrt(x);
  }
};
struct Rsqrt {  // IEEE division and sqrt, not the approximate rsqrt instruction
  template <class T>
  SG_HD T operator()(T x) const {
    return T(1) / m_sqrt(x);
  }
};
struct Pow {
  double p;
  template <class T>
  SG_HD T operator()(T x) const {
    return m_pow(x, (T)p);
  }
};
struct Square {
  template <class T>
  SG_HD T operator()(T x) const {
    return x * x;
  }
};
struct Abs {
  template <class T>
  SG_HD T operator()(T x) const {
    return m_abs(x);
  }
};
struct Sign {
  template <class T>
  SG_HD T operator()(T x) const {
    return (T)((x > T(0)) - (x < T(0)));
  }
};
struct Tanh {
  template <class T>
  SG_HD T operator()(T x) const {
    return m_tanh(x);
  }
};
struct Sigmoid {
  template <class T>
  SG_HD T operator()(T x) const {
    return T(1) / (T(1) + m_exp(-x));
  }
};
struct Softplus {  // log(1 + e^x), computed stably
  template <class T>
  SG_HD T operator()(T x) const {
    return m_max(x, T(0)) + m_log1p(m_exp(-m_abs(x)));
  }
};
struct Softsign {  // x / (1 + |x|)
  template <class T>
  SG_HD T operator()(T x) const {
    return x / (T(1) + m_abs(x));
  }
};
struct LeakyRelu {  // alpha = 0: relu
  double alpha;
  template <class T>
  SG_HD T operator()(T x) const {
    return x > T(0) ? x : x * (T)alpha;
  }
};
struct LeakyReluSlope {  // the derivative of LeakyRelu
  double alpha;
  template <class T>
  SG_HD T operator()(T x) const {
    return x > T(0) ? T(1) : (T)alpha;
  }
};
struct Clamp {
  double lo, hi;
  template <class T>
  SG_HD T operator()(T x) const {
    return m_min(m_max(x, (T)lo), (T)hi);
  }
};
struct ClampMask {  // the derivative of Clamp: lo < x < hi, compared in double
  double lo, hi;
  template <class T>
  SG_HD T operator()(T x) const {
    return (T)((double)x > lo && (double)x < hi);
  }
};
struct AddScalar {
  double s;
  template <class T>
  SG_HD T operator()(T x) const {
    return x + (T)s;
  }
};
struct MulScalar {
  double s;
  template <class T>
  SG_HD T operator()(T x) const {
    return x * (T)s;
  }
};
struct GtScalar {
  double s;
  template <class T>
  SG_HD T operator()(T x) const {
    return (T)((double)x > s);
  }
};
struct LtScalar {
  double s;
  template <class T>
  SG_HD T operator()(T x) const {
    return (T)((double)x < s);
  }
};
struct NanToNum {
  double nan, posinf, neginf;
  template <class T>
  SG_HD T operator()(T x) const {
    if (m_isnan(x)) return (T)nan;
    if (m_isinf(x)) return x > T(0) ? (T)posinf : (T)neginf;
    return x;
  }
};
struct IsFinite {  // 1 where x is finite, 0 for NaN and +-inf
  template <class T>
  SG_HD T operator()(T x) const {
    return (T)(m_abs(x) < (T)INFINITY);
  }
};

// ---- binary -----------------------------------------------------------------------------
struct Add {
  template <class T>
  SG_HD T operator()(T a, T b) const {
    return a + b;
  }
};
struct Sub {
  template <class T>
  SG_HD T operator()(T a, T b) const {
    return a - b;
  }
};
struct Mul {
  template <class T>
  SG_HD T operator()(T a, T b) const {
    return a * b;
  }
};
struct Div {
  template <class T>
  SG_HD T operator()(T a, T b) const {
    return a / b;
  }
};
struct Gt {
  template <class T>
  SG_HD T operator()(T a, T b) const {
    return (T)(a > b);
  }
};
struct Lt {
  template <class T>
  SG_HD T operator()(T a, T b) const {
    return (T)(a < b);
  }
};
struct Ge {
  template <class T>
  SG_HD T operator()(T a, T b) const {
    return (T)(a >= b);
  }
};
struct Le {
  template <class T>
  SG_HD T operator()(T a, T b) const {
    return (T)(a <= b);
  }
};

// Every functor above; X(name) once each. kernels/cuda/elementwise.cu instantiates its
// kernels for each (f32 and f64), so the engine can call them with any of these.
// clang-format off
#define SG_UNARY_FUNCTORS(X)                                                                   \
  X(Neg) X(Exp) X(Log) X(Sqrt) X(Rsqrt) X(Pow) X(Square) X(Abs) X(Sign) X(Tanh) X(Sigmoid)     \
  X(Softplus) X(Softsign) X(LeakyRelu) X(LeakyReluSlope) X(Clamp) X(ClampMask) X(AddScalar) X(MulScalar)   \
  X(GtScalar) X(LtScalar) X(NanToNum) X(IsFinite)
// clang-format on
#define SG_BINARY_FUNCTORS(X) X(Add) X(Sub) X(Mul) X(Div) X(Gt) X(Lt) X(Ge) X(Le)

}  // namespace sg::kernels
