// CPU convolution kernels: im2col / col2im + GEMM (kernels/cpu/gemm.h). Two strategies:
// per-(image, group) tasks on the threads (kernels/cpu/parallel.h) with single-threaded GEMMs
// (default), and for small output grids (<= 64 pixels) one batched GEMM per group over all
// images with the GEMM's own threads. Formulas, layout, the strategy in full and
// benchmarking: see kernels/cpu/conv.h.
#include "kernels/cpu/conv.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/cpu/avx2.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/loops.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/scratch.h"
#include "kernels/cpu/winograd.h"

namespace sg::kernels::cpu {

namespace {

// Most elements a column buffer holds (per thread); bands of rows are sized to fit.
constexpr int64_t kColBudget = int64_t(1) << 21;
// When a task is split so that every thread gets work, a band keeps at least this many
// columns (a narrower GEMM runs far below peak).
constexpr int64_t kMinBandCols = 256;
// Most elements of a batched column matrix (one, shared by all threads).
constexpr int64_t kSlabBudget = int64_t(1) << 23;
// Output grids of at most this many pixels use the batched path (measured: 4x4 and 8x8
// gain, 16x16 loses).
constexpr int64_t kBatchedMaxPixels = 64;
// Below this many flops a whole call runs on one thread.
constexpr double kParallelFlops = double(1 << 20);

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

int max_threads() { return in_parallel() ? 1 : num_threads(); }

// Rows per band of a grid [grid_h, grid_w] whose column matrix has col_rows rows: the band
// fits kColBudget, and when there are fewer tasks than threads it is split further so every
// thread gets a band (but not below kMinBandCols columns).
int64_t band_rows(int64_t col_rows, int64_t grid_h, int64_t grid_w, int64_t tasks, int threads) {
  const int64_t h = std::max<int64_t>(grid_h, 1);
  int64_t band = std::clamp<int64_t>(kColBudget / std::max<int64_t>(1, col_rows * grid_w), 1, h);
  if (tasks < threads) {
    const int64_t split = ceil_div(h, ceil_div(threads, std::max<int64_t>(tasks, 1)));
    band = std::min(band, std::max(split, ceil_div(kMinBandCols, std::max<int64_t>(grid_w, 1))));
  }
  return std::clamp<int64_t>(band, 1, h);
}

// Scratch kept by each thread between calls (kernels/cpu/scratch.h): the batched paths' column
// and packed matrices (on the calling thread), each task thread's column buffer, the weight
// gradient's extra accumulators, and S2Planes' column-split rows and its weight gradient's
// [taps x Cout] product.
enum ConvSlot { kCols, kPacked, kTaskCols, kExtraAccs, kScaledX, kPlanes, kTapsByOut };
struct ConvScratch;
template <class T>
T* scratch(ConvSlot slot, int64_t n) {
  return thread_scratch<ConvScratch, T>(slot, n);
}

// A pointwise weight gradient with at most this many input channels per group (fromRGB) takes
// dot products instead of a GEMM.
constexpr int64_t kThinK = 4;

template <class T>
T dot(const T* __restrict a, const T* __restrict b, int64_t n) {
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t k = 0; k < n; ++k) s += a[k] * b[k];
  return s;
}

// Valid output columns [lo, hi) for kernel column j: 0 <= ox*s - p + j < W.
inline void valid_cols(int64_t W, int64_t Wo, int64_t s, int64_t p, int64_t j, int64_t& lo, int64_t& hi) {
  const int64_t a = p - j;          // ox*s >= a
  const int64_t b = W - 1 + p - j;  // ox*s <= b
  lo = a <= 0 ? 0 : (a + s - 1) / s;
  hi = b < 0 ? 0 : std::min<int64_t>(Wo, b / s + 1);
  lo = std::min(lo, hi);
}

// dst[k] = src[k * S] for k < n, the stride fixed at compile time so that the loop vectorizes
// (strided loads become permutes); the scatter-add the other way is strided_axpy (loops.h).
template <int64_t S, class T>
void strided_row(const T* __restrict src, T* __restrict dst, int64_t n) {
#pragma omp simd
  for (int64_t k = 0; k < n; ++k) dst[k] = src[k * S];
}

// rows rows of stride-2 gathers: dst[r * Wo + k] = src[r * src_ld + 2 * k] for k < Wo. The row
// width as a template argument where it is one of the small grids' (4, 8, 16: the loop unrolls
// and vectorizes whole), else a runtime width (Wo_ = 0). A call per output row cost more than
// the copy at these widths (small's 4x4 downsampling conv spent half its time in im2col).
template <int64_t Wo_, class T>
void gather_rows_s2(const T* __restrict src, int64_t src_ld, int64_t rows, int64_t wo, T* __restrict dst) {
  const int64_t Wo = Wo_ > 0 ? Wo_ : wo;
  for (int64_t r = 0; r < rows; ++r, src += src_ld, dst += Wo)
#pragma omp simd
    for (int64_t k = 0; k < Wo; ++k) dst[k] = src[2 * k];
}

// The adjoint, for col2im_rows: dst[r * dst_ld + 2 * k] += src[r * Wo + k] for k < Wo.
template <int64_t Wo_, class T>
void scatter_add_rows_s2(const T* __restrict src, int64_t rows, int64_t wo, T* __restrict dst, int64_t dst_ld) {
  const int64_t Wo = Wo_ > 0 ? Wo_ : wo;
  for (int64_t r = 0; r < rows; ++r, src += Wo, dst += dst_ld)
#pragma omp simd
    for (int64_t k = 0; k < Wo; ++k) dst[2 * k] += src[k];
}

// The output rows [ya, yb) within [oy0, oy1) whose kernel row i reads inside the image:
// 0 <= oy*sy - py + i < H.
inline void valid_rows(int64_t H, int64_t sy, int64_t py, int64_t i, int64_t oy0, int64_t oy1, int64_t& ya,
                       int64_t& yb) {
  ya = std::clamp<int64_t>(ceil_div(std::max<int64_t>(py - i, 0), sy), oy0, oy1);
  yb = std::clamp<int64_t>(H - 1 + py - i < 0 ? 0 : (H - 1 + py - i) / sy + 1, ya, oy1);
}

// f(std::integral_constant<int64_t, Wo>) for the row widths the two functions above unroll
// (4, 8, 16), else f(std::integral_constant<int64_t, 0>) (the width at run time).
template <class F>
void with_row_width(int64_t Wo, F&& f) {
  switch (Wo) {
    case 4:
      return f(std::integral_constant<int64_t, 4>{});
    case 8:
      return f(std::integral_constant<int64_t, 8>{});
    case 16:
      return f(std::integral_constant<int64_t, 16>{});
    default:
      return f(std::integral_constant<int64_t, 0>{});
  }
}

#if defined(__x86_64__) || defined(__i386__)
// Stride-2 row gathers and scatter-adds with AVX-512, taken where the GEMM runs its AVX-512
// kernels (gemm_avx512_enabled()). The compiler's code for gather_rows_s2 reads no float past
// the last one used (src[2 Wo - 2]) and so builds a 16-wide gather from a 256-bit permute,
// 128-bit shuffles and scalar inserts. gather16_s2 returns 16 gathered floats, a row of 16 or
// two rows of 8 or four of 4 (rows src_ld apart), as one two-source permute of the even floats
// of two 512-bit registers, filled by loads masked to the floats the rows use (a row of 4 reads
// 7 floats: it fills half a register, the next row the other half). scatter_add_rows_s2_avx512
// spreads a row over the even lanes, adds, and stores them with a mask (the odd floats, another
// tap's, are not written). The same single additions, so the same bits.
template <int64_t Wo_>
SG_AVX512 inline __m512 gather16_s2(const float* src, int64_t src_ld) {
  static_assert(Wo_ == 4 || Wo_ == 8 || Wo_ == 16, "rows 4, 8 or 16 wide");
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  __m512 lo, hi;
  if constexpr (Wo_ == 16) {
    lo = _mm512_loadu_ps(src), hi = _mm512_maskz_loadu_ps(0x7FFF, src + 16);
  } else if constexpr (Wo_ == 8) {
    lo = _mm512_maskz_loadu_ps(0x7FFF, src), hi = _mm512_maskz_loadu_ps(0x7FFF, src + src_ld);
  } else {  // lanes 0-6: row 0, 8-14: row 1 (loaded from 8 floats before it, those lanes masked off); rows 2, 3
    lo = _mm512_mask_loadu_ps(_mm512_maskz_loadu_ps(0x007F, src), 0x7F00, src + src_ld - 8);
    hi = _mm512_mask_loadu_ps(_mm512_maskz_loadu_ps(0x007F, src + 2 * src_ld), 0x7F00, src + 3 * src_ld - 8);
  }
  return _mm512_permutex2var_ps(lo, even, hi);
}

template <int64_t Wo_>
SG_AVX512 void scatter_add_rows_s2_avx512(const float* src, int64_t rows, float* dst, int64_t dst_ld) {
  static_assert(Wo_ == 8 || Wo_ == 16, "rows 8 or 16 wide");
  // lane 2k (and 2k + 1, masked off) takes src[k], src[8 + k] for the second half
  const __m512i spread0 = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  const __m512i spread1 = _mm512_add_epi32(spread0, _mm512_set1_epi32(8));
  const __mmask16 evens = 0x5555;
  for (int64_t r = 0; r < rows; ++r, src += Wo_, dst += dst_ld) {
    const __m512 v = Wo_ == 16 ? _mm512_loadu_ps(src) : _mm512_maskz_loadu_ps(0x00FF, src);
    const __m512 d0 = _mm512_maskz_loadu_ps(Wo_ == 16 ? 0xFFFF : 0x7FFF, dst);
    _mm512_mask_storeu_ps(dst, evens, _mm512_add_ps(d0, _mm512_permutex2var_ps(v, spread0, v)));
    if constexpr (Wo_ == 16) {
      const __m512 d1 = _mm512_maskz_loadu_ps(0x7FFF, dst + 16);
      _mm512_mask_storeu_ps(dst + 16, evens, _mm512_add_ps(d1, _mm512_permutex2var_ps(v, spread1, v)));
    }
  }
}
#endif

// col2im of a 3x3, stride-2, padding-0 conv's column matrix onto its whole image (the data
// gradient of small's 17x17 and 9x9 Ddown convs: grids G = 8 or 4 wide, images 2 G + 1 wide,
// 2 Hg + 1 tall), written rather than scatter-added: each image row is computed once from the
// (at most two) kernel rows that reach it, its even columns E (taps j = 0 and 2, the second
// shifted one lane up) and odd columns O (tap j = 1) in 16-lane registers, then interleaved
// and stored. Every float is the sum of its taps in col2im's order, starting from zero (a
// missing tap adds +0, which changes no sum that starts from +0), so the same bits as
// col2im_rows after zeroing the image; no zeroing pass and no read-modify-write rows.
// col as col2im_rows': rows (c, i, j), leading dimension ld, grid pixel (m, ox) at m G + ox.
template <int64_t G>
SG_AVX512 void col2im_s2k3_avx512(const float* col, int64_t C, int64_t Hg, int64_t ld, float* img) {
  static_assert(G == 4 || G == 8, "grids 4 or 8 wide");
  constexpr int64_t Wi = 2 * G + 1;
  constexpr __mmask16 low = (1u << G) - 1, shifted = low << 1;  // lanes [0, G) and [1, G]
  const __m512i weave = G == 8 ? _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23)
                               : _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 0, 0, 0, 0, 0, 0, 0);
  for (int64_t c = 0; c < C; ++c) {
    const float* cc = col + c * 9 * ld;
    float* plane = img + c * (2 * Hg + 1) * Wi;
    for (int64_t y = 0; y <= 2 * Hg; ++y) {
      __m512 e = _mm512_setzero_ps(), o = _mm512_setzero_ps();
      for (int64_t i = y % 2; i < 3; i += 2) {  // the kernel rows i that reach image row y: row m = (y - i) / 2
        const int64_t m = (y - i) / 2;
        if (y < i || m >= Hg) continue;
        const float* r = cc + i * 3 * ld + m * G;
        e = _mm512_add_ps(e, _mm512_maskz_loadu_ps(low, r));
        o = _mm512_add_ps(o, _mm512_maskz_loadu_ps(low, r + ld));
        e = _mm512_add_ps(e, _mm512_maskz_loadu_ps(shifted, r + 2 * ld - 1));
      }
      float* out = plane + y * Wi;
      const __m512 v = _mm512_permutex2var_ps(e, weave, o);
      if constexpr (G == 8) {
        _mm512_storeu_ps(out, v);
        out[16] = _mm_cvtss_f32(_mm512_maskz_extractf32x4_ps(0xF, e, 2));  // lane 8
      } else {
        _mm512_mask_storeu_ps(out, 0x1FF, v);
      }
    }
  }
}

// scatter_add_rows_s2 with the width unrolled where it is 4, 8 or 16, or its AVX-512 version.
// (im2col_rows keeps the compiler's gathers: with the AVX-512 gathers the weight gradients
// of small's downsampling convs, whose time goes to writing the column matrix, were 1-2%
// slower; the forward's packer, which writes into L1, is 4-10% faster with it.)
template <class T>
void scatter_add_rows_s2_any(const T* src, int64_t rows, int64_t Wo, T* dst, int64_t dst_ld) {
#if defined(__x86_64__) || defined(__i386__)
  if constexpr (std::is_same_v<T, float>)
    if ((Wo == 8 || Wo == 16) && gemm_avx512_enabled())
      return Wo == 16 ? scatter_add_rows_s2_avx512<16>(src, rows, dst, dst_ld)
                      : scatter_add_rows_s2_avx512<8>(src, rows, dst, dst_ld);
#endif
  with_row_width(Wo, [&](auto w) { scatter_add_rows_s2<decltype(w)::value>(src, rows, Wo, dst, dst_ld); });
}

// im2col of C channels (planes H*W apart), rows [oy0, oy1) of the output grid, into a column
// matrix with leading dimension ld: col[(c*kh+i)*kw+j, (oy-oy0)*Wo+ox] = img[c, oy*sy-py+i,
// ox*sx-px+j]. Each tap (i, j)'s geometry is worked out once for all C channels (per channel,
// those divisions cost more than the copies of small grids).
template <class T>
void im2col_rows(const T* img, int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw, int64_t sy, int64_t sx,
                 int64_t py, int64_t px, int64_t Wo, int64_t oy0, int64_t oy1, T* col, int64_t ld) {
  const int64_t cols = (oy1 - oy0) * Wo, HW = H * W, crow = kh * kw * ld;
  for (int64_t i = 0; i < kh; ++i) {
    for (int64_t j = 0; j < kw; ++j) {
      T* const row0 = col + (i * kw + j) * ld;
      int64_t lo, hi;
      valid_cols(W, Wo, sx, px, j, lo, hi);
      if (sy == 1 && sx == 1 && Wo == W) {
        // The row is the plane shifted by off, read as one flat span (rows that fall outside
        // the plane come out zero), then the wrapped-around edge columns are zeroed.
        const int64_t off = (oy0 - py + i) * W + (j - px);
        const int64_t qa = std::clamp<int64_t>(-off, 0, cols), qb = std::clamp<int64_t>(HW - off, qa, cols);
        for (int64_t c = 0; c < C; ++c) {
          T* row = row0 + c * crow;
          std::fill(row, row + qa, T(0));
          std::memcpy(row + qa, img + c * HW + qa + off, sizeof(T) * (qb - qa));
          std::fill(row + qb, row + cols, T(0));
          if (lo > 0 || hi < Wo)
            for (int64_t q = 0; q < cols; q += Wo) {
              std::fill(row + q, row + q + lo, T(0));
              std::fill(row + q + hi, row + q + Wo, T(0));
            }
        }
        continue;
      }
      if (sx == 2 && lo == 0 && hi == Wo) {
        // Every output column reads inside the row (the downsampling convs, padding 0): the
        // valid output rows [ya, yb) as one block of gathers, zero rows around them.
        int64_t ya, yb;
        valid_rows(H, sy, py, i, oy0, oy1, ya, yb);
        const int64_t n = yb - ya, src_ld = sy * W;
        const T* src = n > 0 ? img + (ya * sy - py + i) * W + (j - px) : img;  // (not read when n == 0)
        for (int64_t c = 0; c < C; ++c, src += HW) {
          T* row = row0 + c * crow;
          std::fill(row, row + (ya - oy0) * Wo, T(0));
          std::fill(row + (yb - oy0) * Wo, row + cols, T(0));
          if (n == 0) continue;
          T* dst = row + (ya - oy0) * Wo;
          with_row_width(Wo, [&](auto w) { gather_rows_s2<decltype(w)::value>(src, src_ld, n, Wo, dst); });
        }
        continue;
      }
      int64_t ya, yb;  // the output rows that read inside the image (none when no column does)
      valid_rows(H, sy, py, i, oy0, oy1, ya, yb);
      if (lo >= hi) yb = ya;
      for (int64_t c = 0; c < C; ++c) {
        const T* plane = img + c * HW;
        T* row = row0 + c * crow;
        std::fill(row, row + (ya - oy0) * Wo, T(0));
        std::fill(row + (yb - oy0) * Wo, row + cols, T(0));
        for (int64_t oy = ya; oy < yb; ++oy) {
          T* r = row + (oy - oy0) * Wo;
          // first valid element: plane[iy, lo*sx-px+j]; the next ones are sx apart
          const T* src = plane + (oy * sy - py + i) * W + (lo * sx - px + j);
          std::fill(r, r + lo, T(0));
          if (sx == 1)
            std::memcpy(r + lo, src, sizeof(T) * (hi - lo));
          else if (sx == 2)  // stride 2 (downsampling convs): a fixed stride vectorizes
            strided_row<2>(src, r + lo, hi - lo);
          else
            for (int64_t ox = lo; ox < hi; ++ox) r[ox] = src[(ox - lo) * sx];
          std::fill(r + hi, r + Wo, T(0));
        }
      }
    }
  }
}

// col2im of C channels (the adjoint of im2col_rows): img[c, oy*sy-py+i, ox*sx-px+j] +=
// col[(c*kh+i)*kw+j, (oy-oy0)*Wo+ox], col with leading dimension ld.
template <class T>
void col2im_rows(const T* col, int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw, int64_t sy, int64_t sx,
                 int64_t py, int64_t px, int64_t Wo, int64_t oy0, int64_t oy1, T* img, int64_t ld) {
  const int64_t HW = H * W, crow = kh * kw * ld;
  for (int64_t i = 0; i < kh; ++i) {
    for (int64_t j = 0; j < kw; ++j) {
      const T* const row0 = col + (i * kw + j) * ld;
      int64_t lo, hi;
      valid_cols(W, Wo, sx, px, j, lo, hi);
      if (lo >= hi) continue;
      if (sx == 2 && lo == 0 && hi == Wo) {  // as im2col_rows: the valid rows [ya, yb) as one block
        int64_t ya, yb;
        valid_rows(H, sy, py, i, oy0, oy1, ya, yb);
        const int64_t n = yb - ya, dst_ld = sy * W;
        if (n == 0) continue;
        T* dst = img + (ya * sy - py + i) * W + (j - px);
        for (int64_t c = 0; c < C; ++c, dst += HW) {
          const T* src = row0 + c * crow + (ya - oy0) * Wo;
          scatter_add_rows_s2_any(src, n, Wo, dst, dst_ld);
        }
        continue;
      }
      int64_t ya, yb;  // the output rows that write inside the image
      valid_rows(H, sy, py, i, oy0, oy1, ya, yb);
      for (int64_t c = 0; c < C; ++c) {
        const T* row = row0 + c * crow;
        T* plane = img + c * HW;
        for (int64_t oy = ya; oy < yb; ++oy) {
          const T* r = row + (oy - oy0) * Wo + lo;
          T* dst = plane + (oy * sy - py + i) * W + (lo * sx - px + j);
          const int64_t count = hi - lo;
          if (sx == 1)
            strided_axpy<1, 1>(dst, r, T(1), count);
          else if (sx == 2)  // stride 2 (transposed convs that upsample)
            strided_axpy<2, 1>(dst, r, T(1), count);
          else
            for (int64_t k = 0; k < count; ++k) dst[k * sx] += r[k];
        }
      }
    }
  }
}

bool is_pointwise(int64_t kh, int64_t kw, int64_t sy, int64_t sx, int64_t py, int64_t px) {
  return kh == 1 && kw == 1 && sy == 1 && sx == 1 && py == 0 && px == 0;
}

}  // namespace

template <class T>
void im2col(const T* img, int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw, int64_t sy, int64_t sx, int64_t py,
            int64_t px, int64_t Ho, int64_t Wo, int64_t oy0, int64_t oy1, T* col, bool parallel) {
  const int64_t cols = (oy1 - oy0) * Wo;
  parallel_for(C, parallel, [&](int64_t c0, int64_t c1) {
    im2col_rows(img + c0 * H * W, c1 - c0, H, W, kh, kw, sy, sx, py, px, Wo, oy0, oy1, col + c0 * kh * kw * cols, cols);
  });
}

template <class T>
void col2im(const T* col, int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw, int64_t sy, int64_t sx, int64_t py,
            int64_t px, int64_t Ho, int64_t Wo, int64_t oy0, int64_t oy1, T* img, bool parallel) {
  const int64_t cols = (oy1 - oy0) * Wo;
  parallel_for(C, parallel, [&](int64_t c0, int64_t c1) {
    col2im_rows(col + c0 * kh * kw * cols, c1 - c0, H, W, kh, kw, sy, sx, py, px, Wo, oy0, oy1, img + c0 * H * W, cols);
  });
}

namespace {

// ---- batched ("slab") machinery ------------------------------------------------------------
// A slab is a piece of the output grid of one group: either whole images [n0, n1) or a band
// of rows [oy0, oy1) of a single image. Its column matrix is [rows, (n1-n0) * (oy1-oy0) * Wo],
// image n's columns starting at (n - n0) * (oy1 - oy0) * Wo.
struct Slab {
  int64_t n0, n1, oy0, oy1;
};

// Slabs covering N images of an output grid [Ho, Wo] whose column matrix has col_rows rows:
// as few as fit kSlabBudget elements, balanced; one image too big is cut into bands of rows.
std::vector<Slab> make_slabs(int64_t N, int64_t Ho, int64_t Wo, int64_t col_rows) {
  std::vector<Slab> slabs;
  const int64_t per_image = std::max<int64_t>(1, col_rows * Ho * Wo);
  if (per_image <= kSlabBudget) {
    const int64_t parts = ceil_div(N * per_image, kSlabBudget), nb = ceil_div(N, parts);
    for (int64_t n0 = 0; n0 < N; n0 += nb) slabs.push_back({n0, std::min(N, n0 + nb), 0, Ho});
  } else {
    const int64_t parts = ceil_div(per_image, kSlabBudget), band = ceil_div(Ho, parts);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t oy0 = 0; oy0 < Ho; oy0 += band) slabs.push_back({n, n + 1, oy0, std::min(Ho, oy0 + band)});
  }
  return slabs;
}

// im2col of a slab: img points at channel 0 of the group in image 0 (images img_stride
// apart), col gets [C*kh*kw, cols]. Parallel over (image, channel).
template <class T>
void im2col_slab(const T* img, int64_t img_stride, const Slab& s, int64_t C, int64_t H, int64_t W, int64_t kh,
                 int64_t kw, int64_t sy, int64_t sx, int64_t py, int64_t px, int64_t Ho, int64_t Wo, T* col) {
  const int64_t nb = s.n1 - s.n0, per = (s.oy1 - s.oy0) * Wo, ld = nb * per;
  parallel_for(nb * C, ld * C * kh * kw > 16384, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0, cnt; i < i1; i += cnt) {  // the channels [c, c + cnt) of image n in one call
      const int64_t n = i / C, c = i % C;
      cnt = std::min(i1 - i, C - c);
      im2col_rows(img + (s.n0 + n) * img_stride + c * H * W, cnt, H, W, kh, kw, sy, sx, py, px, Wo, s.oy0, s.oy1,
                  col + c * kh * kw * ld + n * per, ld);
    }
  });
}

// dst[n][r, :] = src[r, n*per : (n+1)*per] for the images of a slab (src [rows, nb*per],
// dst images dst_stride apart, rows ld_dst apart), or the reverse when to_src.
template <class T>
void scatter_slab(T* packed, T* img, int64_t img_stride, int64_t ld_img, int64_t rows, int64_t nb, int64_t per,
                  bool to_packed) {
  parallel_for(nb * rows, nb * rows * per > 32768, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t n = i / rows, r = i % rows;
      T* p = packed + r * nb * per + n * per;
      T* q = img + n * img_stride + r * ld_img;
      if (to_packed)
        std::memcpy(p, q, sizeof(T) * per);
      else
        std::memcpy(q, p, sizeof(T) * per);
    }
  });
}

// Each group's weights as the GEMMs' op(A) [M, K]: the forward's W_g [Cgo, K], or (trans) a
// pointwise conv_transpose2d's W_g^T, W_g stored [Cg, Cgo]. In f32, when each group's weights
// meet more than one GEMM (uses > 1) and all fit in kMaxPrepackedFloats, packed once
// (kernels/cpu/gemm.h PackedA) for all the tasks and slabs, rather than once per GEMM;
// otherwise (f64, a grouped conv whose every group is one GEMM, or too many groups) the plain
// gemm, which packs as it goes.
//
// The packed matrices live in a buffer per calling thread and `slot` (the call sites, which never
// run inside one another on a thread), repacked in place by the next call: as large a pack needs
// no allocation, and the buffer is not zeroed first. (A fresh vector per call cost a memset and
// the page faults of 576 KiB at 384 channels: 2-3% of seed32's 4x4 skip forward, perf.)
// The task loops make one inside their region, so that each thread multiplies by its own copy:
// the same wall time as one thread packing while the others wait, and no packed weights read
// from another core's cache (seed32's 4x4 skip 7-15% faster,
// bench/results/cpu_conv_s2_region_2026-12-03.txt).
enum class WeightSlot { kForwardBatched, kForwardTasks, kTransposed, kForwardSmallS2, kCount };
template <class T>
struct GroupWeights {
  const T* w;
  int64_t M, K;
  bool trans;
  std::span<const PackedA> packed;
  // Whether the constructor packs (then implicit_ok()), known before any is made.
  static bool packs(int64_t groups, int64_t M, int64_t K, int64_t uses) {
    return std::is_same_v<T, float> && uses > 1 && groups * M * K <= kMaxPrepackedFloats && gemm_packs_a();
  }
  GroupWeights(WeightSlot slot, const T* w_, int64_t groups, int64_t M_, int64_t K_, int64_t uses, bool trans_ = false)
      : w(w_), M(M_), K(K_), trans(trans_) {
    if constexpr (std::is_same_v<T, float>)
      if (packs(groups, M, K, uses)) {
        thread_local std::vector<PackedA> kept[(int)WeightSlot::kCount];
        std::vector<PackedA>& mine = kept[(int)slot];
        if ((int64_t)mine.size() < groups) mine.resize((size_t)groups);
        for (int64_t g = 0; g < groups; ++g) gemm_pack_a(mine[(size_t)g], trans, M, K, w + g * M * K, trans ? M : K);
        packed = std::span<const PackedA>(mine.data(), (size_t)groups);
      }
  }
  // C[M, n] = op(A_g) @ B (beta 0).
  void gemm(int64_t g, int64_t n, const T* B, int64_t ldb, T* C, int64_t ldc) const {
    if constexpr (std::is_same_v<T, float>)
      if (!packed.empty()) return gemm_prepacked(packed[(size_t)g], false, n, 1.f, B, ldb, 0.f, C, ldc);
    cpu::gemm<T>(trans, false, M, n, K, T(1), w + g * M * K, trans ? M : K, B, ldb, T(0), C, ldc);
  }
  // Whether gemm_implicit can run: f32 weights packed for the packed kernel.
  bool implicit_ok() const { return !packed.empty(); }
  // C[M, n] = op(A_g) @ op(B), op(B) packed by b (kernels/cpu/gemm.h ImplicitB); implicit_ok().
  void gemm_implicit(int64_t g, int64_t n, const ImplicitB& b, T* C, int64_t ldc) const {
    if constexpr (std::is_same_v<T, float>) gemm_prepacked_implicit(packed[(size_t)g], n, b, 1.f, 0.f, C, ldc);
  }
  // C[M, n] = op(A_g) @ op(B), op(B) read in place through b (kernels/cpu/gemm.h RowTable);
  // implicit_ok() and the AVX-512 kernels on.
  void gemm_row_table(int64_t g, int64_t n, const RowTable& b, T* C, int64_t ldc,
                      int64_t c_sliver_stride = kPackNR) const {
    if constexpr (std::is_same_v<T, float>) gemm_prepacked_row_table(packed[(size_t)g], n, b, C, ldc, c_sliver_stride);
  }
};

// A pointwise conv on 4x4 grids (seed32's 384-channel skip, and the data gradient's
// conv_transpose2d of it) is a GEMM per image [M, K] @ [K, 16]: one sliver of B, so the 12x16
// kernel, which streams all of the packed weights (576 KiB at 384 channels) from L2 for every
// image. Two images at a time instead: B's two slivers read in place from the two images
// (gemm_prepacked_row_table: row k at k * 16 in each), each of C's to its own image, through the
// 6x32 kernel: half the weight traffic, the same FMAs in the same order (the same bits).
// Measured on an Intel Xeon (2 threads, alternating): seed32's 4x4 skip forward 1.06-1.22x,
// data gradient 1.07-1.26x (bench/results/cpu_gemm_intel_2026-12-03.txt). Where gemm_serial
// takes 12x32 tiles (Intel's cores), so does the row table: forward 0.55-0.58 -> 0.51-0.53 ms,
// data gradient 0.55-0.59 -> 0.52-0.55 (bench/results/cpu_conv_pointwise_implicit_2026-12-03.txt).
struct PointwisePairs {
  std::vector<int32_t> off;  // row k of an image's [K, 16] at k * 16
  static bool applies(bool pointwise, int64_t HW, int64_t N, bool implicit) {
    return pointwise && HW == kPackNR && N >= 2 && implicit && gemm_avx512_enabled();
  }
  explicit PointwisePairs(int64_t K) : off((size_t)K) {
    for (int64_t k = 0; k < K; ++k) off[(size_t)k] = (int32_t)(k * kPackNR);
  }
  // Task t: images 2 (t / groups) and the next (if any), group t % groups, of x [N, Cin, 4, 4]
  // (Cg channels per group) into y [N, Cout, 4, 4] (Cgo per group).
  void run(const GroupWeights<float>& wg, int64_t t, int64_t groups, int64_t N, const float* x, int64_t Cin, int64_t Cg,
           float* y, int64_t Cout, int64_t Cgo) const {
    const int64_t n = 2 * (t / groups), g = t % groups, HW = kPackNR;
    const float* xg = x + (n * Cin + g * Cg) * HW;
    float* yg = y + (n * Cout + g * Cgo) * HW;
    if (n + 1 < N)
      wg.gemm_row_table(g, 2 * HW, RowTable{const_cast<float*>(xg), Cin * HW, off.data()}, yg, HW, Cout * HW);
    else
      wg.gemm(g, HW, xg, HW, yg, HW);
  }
};

// The im2col columns of a stride-2, padding-0 conv with output rows Wo = 4, 8 or 16 wide (the
// downsampling convs: every tap reads inside every output row, no bounds to test) as the GEMM's
// implicit B: its packing step gathers each 16-column sliver (16 / Wo whole output rows of one
// image) straight from the image, tap by tap with gather_rows_s2, instead of im2col writing the
// column matrix and the GEMM packing it again. The same values in the same layout, so the same
// bits. Columns j = n * per + (oy - oy0) * Wo + ox for the images n of a slab (or one task's
// band of rows: per = its columns); per must be a multiple of 16.
struct S2Geometry {
  const float* img;  // channel 0 of the group in the first image; images img_stride apart
  int64_t img_stride, H, W, kh, kw, Wo, per, oy0;
  // Where the image rows of column (pixel) j start: image j / per, output row oy0 + j % per / Wo.
  const float* rows_of(int64_t j) const { return img + j / per * img_stride + 2 * (oy0 + j % per / Wo) * W; }
};
struct S2Columns : S2Geometry {
  static bool applies(int64_t sy, int64_t sx, int64_t py, int64_t px, int64_t Wo, int64_t per) {
    return sy == 2 && sx == 2 && py == 0 && px == 0 && (Wo == 4 || Wo == 8 || Wo == 16) && per % kPackNR == 0;
  }
  // off[k]: where tap k0 + k (channel c, kernel row i, column jj) starts, c H W + i W + jj.
  static void tap_offsets(const S2Columns& s, int64_t k0, int64_t kc, int64_t* off) {
    for (int64_t k = 0, c = k0 / (s.kh * s.kw), i = k0 % (s.kh * s.kw) / s.kw, jj = k0 % s.kw; k < kc; ++k) {
      off[k] = (c * s.H + i) * s.W + jj;
      if (++jj == s.kw) jj = 0, i == s.kh - 1 ? (i = 0, ++c) : ++i;
    }
  }
  // One sliver's rows for taps off[0 .. count): the compiler's gathers, or (where the GEMM runs
  // its AVX-512 kernels) gather16_s2, which needs a function compiled for AVX-512 to inline; with
  // the compiler's code for gather_rows_s2<16> this packer was 18% of small's 33x33 downsampling
  // conv (perf, 1 thread), 15% with gather16_s2.
  template <int64_t Wo_>
  static void gather_taps(const float* base, const int64_t* off, int64_t count, int64_t src_ld, float* dst) {
    for (int64_t k = 0; k < count; ++k)
      gather_rows_s2<Wo_>(base + off[k], src_ld, kPackNR / Wo_, Wo_, dst + k * kPackNR);
  }
#if defined(__x86_64__) || defined(__i386__)
  template <int64_t Wo_>
  SG_AVX512 static void gather_taps_avx512(const float* base, const int64_t* off, int64_t count, int64_t src_ld,
                                           float* dst) {
    for (int64_t k = 0; k < count; ++k) _mm512_storeu_ps(dst + k * kPackNR, gather16_s2<Wo_>(base + off[k], src_ld));
  }
#endif
  template <int64_t Wo_>
  static void pack_slivers(const S2Columns& s, int64_t j0, int64_t n, int64_t k0, int64_t kc, float* dst) {
    auto gather = gather_taps<Wo_>;
#if defined(__x86_64__) || defined(__i386__)
    if (gemm_avx512_enabled()) gather = gather_taps_avx512<Wo_>;
#endif
    int64_t off[kPackKC];
    tap_offsets(s, k0, kc, off);
    // 8 taps at a time across all the slivers (the order of pack<16>'s rows, gemm_avx2.cpp):
    // each tap's rows are read along the image, and each sliver's 8 rows written in one run.
    for (int64_t kb = 0; kb < kc; kb += 8)
      for (int64_t sl = 0; sl < n / kPackNR; ++sl)
        gather(s.rows_of(j0 + sl * kPackNR), off + kb, std::min<int64_t>(8, kc - kb), 2 * s.W,
               dst + (sl * kc + kb) * kPackNR);
  }
  static void pack(const void* ctx, int64_t j0, int64_t n, int64_t k0, int64_t kc, float* dst) {
    const S2Columns& s = *static_cast<const S2Columns*>(ctx);
    with_row_width(s.Wo, [&](auto w) {
      if constexpr (w.value > 0) pack_slivers<w.value>(s, j0, n, k0, kc, dst);
    });
  }
  ImplicitB operand() const { return {&S2Columns::pack, this}; }
};

#if defined(__x86_64__) || defined(__i386__)
// The forward of a stride-2, padding-0 3x3 conv whose output rows are 16 wide (small's 33x33
// downsampling conv) with nothing packed: each input row of the task's band is split into its
// even and odd columns (`split`: two two-source permutes per row), after which tap (c, i, j) of
// output row oy is 16 contiguous floats, at row 2 oy + i of channel c, column j / 2 of the even
// half (j even) or of the odd half (j odd); the GEMM reads them in place through a table of
// those offsets (kernels/cpu/gemm.h RowTable), two output rows per 6x32 micro-tile. The same
// products added in the same order as S2Columns' packed slivers, so the same bits (tested).
// `merge` is the inverse of `split`, for the data gradient (conv_transpose2d_forward below).
// It replaces the packer's gathers and the writing and reading back of the packed panel (15% of
// the call, perf) with one pass over the band's rows. Measured (small's 33x33 Ddown, kernels
// alone, the builds alternating, 5 rounds; bench/results/cpu_conv_s2_planes_2026-12-03.txt):
// 1.08-1.14x on 1 thread, 1.08-1.15x on 2 (0.78-0.83 -> 0.72 ms); through the engine, 1
// thread each side by side (bench/pair_ab.sh shapes), 1.15x and 1.34x.
struct S2Planes {
  static constexpr int64_t kLd = 40, kOdd = 20;  // a split row: even columns from 0, odd from kOdd
  static bool applies(int64_t kh, int64_t kw, int64_t sy, int64_t sx, int64_t py, int64_t px, int64_t W, int64_t Wo) {
    return kh == 3 && kw == 3 && sy == 2 && sx == 2 && py == 0 && px == 0 && Wo == 16 && (W == 33 || W == 34) &&
           gemm_avx512_enabled();
  }
  // off[k] for tap k = (c, i, j) of a band whose split rows are stored rows_per_channel per channel.
  static std::vector<int32_t> offsets(int64_t Cg, int64_t rows_per_channel) {
    std::vector<int32_t> off((size_t)(Cg * 9));
    for (int64_t c = 0; c < Cg; ++c)
      for (int64_t i = 0; i < 3; ++i)
        for (int64_t j = 0; j < 3; ++j)
          off[(size_t)(c * 9 + i * 3 + j)] = (int32_t)((c * rows_per_channel + i) * kLd + (j % 2 ? kOdd : 0) + j / 2);
    return off;
  }
  // Rows r0 .. r0 + nr - 1 of the Cg channels of img ([Cg][H][W], W = 33 or 34) into
  // planes[c][r - r0][kLd]: even columns 0, 2, .., 32 at 0 .. 16, odd columns 1, 3, .., 31 at
  // kOdd .. kOdd + 15 (the only ones a 16-wide output row reads), each 16 the stride-2 row
  // gather of S2Columns' packer (gather16_s2).
  SG_AVX512 static void split(const float* img, int64_t Cg, int64_t H, int64_t W, int64_t r0, int64_t nr,
                              int64_t rows_per_channel, float* planes) {
    for (int64_t c = 0; c < Cg; ++c)
      for (int64_t r = 0; r < nr; ++r) {
        const float* src = img + (c * H + r0 + r) * W;
        float* dst = planes + (c * rows_per_channel + r) * kLd;
        _mm512_storeu_ps(dst, gather16_s2<16>(src, 0));
        dst[16] = src[32];
        _mm512_storeu_ps(dst + kOdd, gather16_s2<16>(src + 1, 0));
      }
  }
  // The inverse for the data gradient: the C channels of img ([C][H][W], W = 33 or 34) from
  // planes[c][r][kLd] (H rows per channel), columns interleaved back.
  SG_AVX512 static void merge(const float* planes, int64_t C, int64_t H, int64_t W, float* img) {
    const __m512i lo_idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi_idx = _mm512_add_epi32(lo_idx, _mm512_set1_epi32(8));
    for (int64_t c = 0; c < C; ++c)
      for (int64_t r = 0; r < H; ++r) {
        const float* src = planes + (c * H + r) * kLd;
        float* dst = img + (c * H + r) * W;
        const __m512 e = _mm512_loadu_ps(src), o = _mm512_loadu_ps(src + kOdd);
        _mm512_storeu_ps(dst, _mm512_permutex2var_ps(e, lo_idx, o));
        _mm512_storeu_ps(dst + 16, _mm512_permutex2var_ps(e, hi_idx, o));
        dst[32] = src[16];
        if (W == 34) dst[33] = src[kOdd + 16];
      }
  }
};

// dst[j * K + k] += src[k * n + j] (src [K][n], dst [n][K], n a multiple of 16): 16 x 16 blocks
// through a register transpose (avx2.h transpose16x16), the last K % 16 rows one by one.
SG_AVX512 void add_transposed16(const float* src, int64_t K, int64_t n, float* dst) {
  const int64_t K16 = K / 16 * 16;
  for (int64_t j0 = 0; j0 < n; j0 += 16) {
    for (int64_t k0 = 0; k0 < K16; k0 += 16) {
      __m512 r[16];
      for (int64_t i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + (k0 + i) * n + j0);
      transpose16x16(r);  // r[j] = column j0 + j of rows k0 .. k0 + 15
      for (int64_t j = 0; j < 16; ++j) {
        float* d = dst + (j0 + j) * K + k0;
        _mm512_storeu_ps(d, _mm512_add_ps(_mm512_loadu_ps(d), r[j]));
      }
    }
    for (int64_t k = K16; k < K; ++k)
      for (int64_t j = 0; j < 16; ++j) dst[(j0 + j) * K + k] += src[k * n + j0 + j];
  }
}

// The weight gradient's operand col^T of a stride-2, padding-0 conv with output rows Wo = 4, 8
// or 16 wide, as the GEMM's implicit B (dW = dY @ col^T: B's rows k are output pixels, its columns
// j the taps (c, i, jj)), with AVX-512. Each 16 x 16 block of a sliver (16 pixels: one output
// row, or two of 8, or four of 4; 16 taps) is 16 gather16_s2, one per tap, turned into
// pixel-major order by a register transpose: no column matrix is written and read back, as
// im2col + the GEMM's transposing packer do.
// Columns j = the taps of one group, a multiple of 16 of them; rows k = n * per + (oy - oy0) *
// Wo + ox for the images n of the call (per pixels each, a multiple of 16). The same values in
// the same layout as packing im2col's matrix, so the same bits.
struct S2ColumnsT : S2Geometry {
  static bool applies(const Conv2dParams& p, int64_t Wo, int64_t per, int64_t taps) {
    return p.sy == 2 && p.sx == 2 && p.py == 0 && p.px == 0 && (Wo == 4 || Wo == 8 || Wo == 16) && per % kPackNR == 0 &&
           taps % kPackNR == 0 && gemm_avx512_enabled();
  }
  template <int64_t Wo_>
  SG_AVX512 static void pack_slivers(const S2ColumnsT& s, int64_t j0, int64_t n, int64_t k0, int64_t kc, float* dst) {
    for (int64_t sl = 0; sl < n / kPackNR; ++sl) {
      int64_t off[kPackNR];  // tap j0 + 16 sl + t (channel c, kernel row i, column jj): at c H W + i W + jj
      for (int64_t t = 0; t < kPackNR; ++t) {
        const int64_t j = j0 + sl * kPackNR + t, c = j / (s.kh * s.kw), i = j % (s.kh * s.kw) / s.kw;
        off[t] = (c * s.H + i) * s.W + j % s.kw;
      }
      float* d = dst + sl * kc * kPackNR;
      for (int64_t k = 0; k < kc; k += kPackNR) {  // 16 pixels: one output row, or 2 or 4
        const float* base = s.rows_of(k0 + k);
        __m512 r[kPackNR];
        for (int64_t t = 0; t < kPackNR; ++t) r[t] = gather16_s2<Wo_>(base + off[t], 2 * s.W);
        transpose16x16(r);
        for (int64_t t = 0; t < kPackNR; ++t) _mm512_storeu_ps(d + (k + t) * kPackNR, r[t]);
      }
    }
  }
  static void pack(const void* ctx, int64_t j0, int64_t n, int64_t k0, int64_t kc, float* dst) {
    const S2ColumnsT& s = *static_cast<const S2ColumnsT*>(ctx);
    with_row_width(s.Wo, [&](auto w) {
      if constexpr (w.value > 0) pack_slivers<w.value>(s, j0, n, k0, kc, dst);
    });
  }
  ImplicitB operand() const { return {&S2ColumnsT::pack, this}; }
};

// A 1x1 conv's weight gradient over the batch (dW_g = dY_g @ X_g^T, the batch's pixels along
// k): X_g^T as the GEMM's implicit B, read from the images in place. Rows k = n * HW + pixel,
// columns j = the group's input channels; each 16 x 16 block of a sliver is 16 channels' rows
// of 16 pixels of one image, turned pixel-major by a register transpose. With dY_g packed by
// gemm_pack_a_segments, nothing is copied out first (the batched path wrote both operands out
// as [rows, N * HW] matrices, then packed them with transposes). The same values in the same
// layout, so the same bits. Needs HW and the group's channels multiples of 16, and AVX-512.
struct PointwiseColsT {
  const float* x;      // the group's first channel of image 0
  int64_t img_stride;  // Cin * HW
  int64_t HW;
  static bool applies(int64_t HW, int64_t Cg) {
    return HW % kPackNR == 0 && Cg % kPackNR == 0 && gemm_avx512_enabled();
  }
  SG_AVX512 static void pack(const void* ctx, int64_t j0, int64_t n, int64_t k0, int64_t kc, float* dst) {
    const PointwiseColsT& s = *static_cast<const PointwiseColsT*>(ctx);
    for (int64_t sl = 0; sl < n / kPackNR; ++sl) {
      float* d = dst + sl * kc * kPackNR;
      for (int64_t k = 0; k < kc; k += kPackNR) {  // 16 pixels of one image (HW % 16 == 0)
        const int64_t img = (k0 + k) / s.HW, pix = (k0 + k) % s.HW;
        const float* src = s.x + img * s.img_stride + (j0 + sl * kPackNR) * s.HW + pix;
        __m512 r[kPackNR];
        for (int64_t t = 0; t < kPackNR; ++t) r[t] = _mm512_loadu_ps(src + t * s.HW);
        transpose16x16(r);
        for (int64_t t = 0; t < kPackNR; ++t) _mm512_storeu_ps(d + (k + t) * kPackNR, r[t]);
      }
    }
  }
  ImplicitB operand() const { return {&PointwiseColsT::pack, this}; }
};

// dW_g = dY_g @ X_g^T (beta 0), or += (beta 1), over images [n0, n0 + nb) of a 1x1 conv, both
// operands packed from the images (gemm_pack_a_segments, PointwiseColsT); dw_g [Cgo, Cg]. False,
// nothing done, where the packed kernel is not in use (SG_CPU_GEMM=eigen).
bool pointwise_wgrad_images(const float* dy, const float* x, int64_t n0, int64_t nb, int64_t g, int64_t Cin,
                            int64_t Cout, int64_t Cg, int64_t Cgo, int64_t HW, float beta, float* dw_g) {
  thread_local PackedA a;  // (its memory kept between calls)
  if (!gemm_pack_a_segments(a, Cgo, nb * HW, dy + (n0 * Cout + g * Cgo) * HW, HW, HW, Cout * HW)) return false;
  const PointwiseColsT b{x + (n0 * Cin + g * Cg) * HW, Cin * HW, HW};
  gemm_prepacked_implicit(a, Cg, b.operand(), 1.f, beta, dw_g, Cg);
  return true;
}
#endif

// The batched path pays off when a per-image GEMM would be narrow (small output grids).
bool use_batched(int64_t N, int64_t HoWo, int64_t kh, int64_t kw, int64_t sy, int64_t sx, int64_t py, int64_t px) {
  return N > 1 && HoWo <= kBatchedMaxPixels && !is_pointwise(kh, kw, sy, sx, py, px);
}

// A 1x1 conv's weight gradient as per-image GEMMs reads and writes its [M, K] result once per
// image (K = HW there), where the batched path copies each image's M + K rows of HW once and
// runs one GEMM: it pays where M K / (M + K) is well above HW. Measured (the kernels alone, 2
// threads, the two builds alternating, bench/results/cpu_conv_pointwise_wgrad_2026-12-03.txt):
// seed32's 384-channel skip at 4x4 (192 against 16 x 8) 0.45-0.46 -> 0.39-0.40 ms, while its
// 192 -> 384 skip at 8x8 (128 against 64 x 8), small's 64-channel skips and the toRGB convs
// (M = 3) were slower batched. (The forward and data gradient, whose per-image GEMMs only read
// the prepacked weights, gained nothing there: 1.01x and 0.96x.)
bool pointwise_batched(int64_t N, int64_t HW, int64_t M, int64_t K) { return N > 1 && M * K >= 8 * HW * (M + K); }

}  // namespace

template <class T>
void conv2d_forward_batched(const T* x, const T* w, T* y, int64_t N, int64_t Cin, int64_t H, int64_t W, int64_t Cout,
                            int64_t kh, int64_t kw, int64_t sy, int64_t sx, int64_t py, int64_t px, int64_t groups) {
  const int64_t Cg = Cin / groups, Cgo = Cout / groups, K = Cg * kh * kw;
  const int64_t Ho = (H + 2 * py - kh) / sy + 1, Wo = (W + 2 * px - kw) / sx + 1;
  const int64_t HW = H * W, HoWo = Ho * Wo;
  if (N * groups * HoWo == 0) return;
  const bool pointwise = is_pointwise(kh, kw, sy, sx, py, px);  // then Ho == H, Wo == W
  const auto slabs = make_slabs(N, Ho, Wo, K);
#if defined(__x86_64__) || defined(__i386__)
  // The stride-2 convs with implicit columns on small grids (small's 9x9 and 17x17 Ddown) in
  // one region: each thread packs its own copy of the weights, multiplies its share of the
  // images and scatters its own results. Sharing one pack made by the calling thread cost
  // 11.5 us per call where one thread packs them in 6 (the lines the other core read last call
  // are invalidated), and the GEMM read half the packed weights from the other core; the scatter
  // on two threads (7.3 us) moved C between them and took longer than on one (3.5): timers in
  // the 9x9 forward, bench/results/cpu_conv_s2_region_2026-12-03.txt.
  if constexpr (std::is_same_v<T, float>)
    if (max_threads() > 1 && slabs.size() == 1 && N > 1 && S2Columns::applies(sy, sx, py, px, Wo, HoWo) &&
        2.0 * N * Cout * HoWo * K >= kParallelFlops && GroupWeights<float>::packs(groups, Cgo, K, 2)) {
      parallel_region((int)std::min<int64_t>(N, max_threads()), [&](int tid, int team) {
        const GroupWeights<float> own(WeightSlot::kForwardSmallS2, w, groups, Cgo, K, 2);
        const int64_t n0 = N * tid / team, nb = N * (tid + 1) / team - n0, cols = nb * HoWo;
        float* const out = scratch<float>(kPacked, Cgo * cols);
        for (int64_t g = 0; g < groups; ++g) {
          const S2Columns b{x + (n0 * Cin + g * Cg) * HW, Cin * HW, H, W, kh, kw, Wo, HoWo, 0};
          own.gemm_implicit(g, cols, b.operand(), out, cols);
          scatter_slab(out, y + (n0 * Cout + g * Cgo) * HoWo, Cout * HoWo, HoWo, Cgo, nb, HoWo, false);
        }
      });
      return;
    }
#endif
  const int64_t max_cols =
      slabs[0].n1 - slabs[0].n0 == 1 ? (slabs[0].oy1 - slabs[0].oy0) * Wo : (slabs[0].n1 - slabs[0].n0) * HoWo;
  T* colp = scratch<T>(kCols, K * max_cols);
  T* outp = scratch<T>(kPacked, slabs[0].n1 - slabs[0].n0 > 1 ? Cgo * max_cols : 0);
  // The implicit columns need the weights packed, even for one slab (which packs them once either way).
  const bool s2 = S2Columns::applies(sy, sx, py, px, Wo, (slabs[0].oy1 - slabs[0].oy0) * Wo);
  const GroupWeights<T> wgs(WeightSlot::kForwardBatched, w, groups, Cgo, K, (int64_t)slabs.size() + (s2 ? 1 : 0));
  for (int64_t g = 0; g < groups; ++g) {
    for (const Slab& s : slabs) {
      const int64_t nb = s.n1 - s.n0, per = (s.oy1 - s.oy0) * Wo, cols = nb * per;
      const T* xg = x + (s.n0 * Cin + g * Cg) * HW;
      T* yg = y + (s.n0 * Cout + g * Cgo) * HoWo + s.oy0 * Wo;
      if (wgs.implicit_ok() && S2Columns::applies(sy, sx, py, px, Wo, per)) {
        if constexpr (std::is_same_v<T, float>) {
          const S2Columns cols_b{xg, Cin * HW, H, W, kh, kw, Wo, per, s.oy0};
          if (nb == 1) {
            wgs.gemm_implicit(g, cols, cols_b.operand(), yg, HoWo);
          } else {
            wgs.gemm_implicit(g, cols, cols_b.operand(), outp, cols);
            scatter_slab(outp, yg, Cout * HoWo, HoWo, Cgo, nb, per, false);
          }
          continue;
        }
      }
      const T* b = colp;
      if (pointwise && nb == 1)
        b = xg + s.oy0 * Wo;  // the image is the column matrix
      else
        im2col_slab(xg, Cin * HW, {0, nb, s.oy0, s.oy1}, Cg, H, W, kh, kw, sy, sx, py, px, Ho, Wo, colp);
      if (nb == 1) {
        wgs.gemm(g, cols, b, nb == 1 && pointwise ? HW : cols, yg, HoWo);
      } else {
        wgs.gemm(g, cols, b, cols, outp, cols);
        scatter_slab(outp, yg, Cout * HoWo, HoWo, Cgo, nb, per, false);
      }
    }
  }
}

template <class T>
void conv2d_forward_tasks(const T* x, const T* w, T* y, int64_t N, int64_t Cin, int64_t H, int64_t W, int64_t Cout,
                          int64_t kh, int64_t kw, int64_t sy, int64_t sx, int64_t py, int64_t px, int64_t groups) {
  const int64_t Cg = Cin / groups, Cgo = Cout / groups, K = Cg * kh * kw;
  const int64_t Ho = (H + 2 * py - kh) / sy + 1, Wo = (W + 2 * px - kw) / sx + 1;
  const int64_t HW = H * W, HoWo = Ho * Wo;
  if (N * groups * HoWo == 0) return;
  const bool pointwise = is_pointwise(kh, kw, sy, sx, py, px);  // then Ho == H, Wo == W
  const int threads = max_threads();
  // Tasks: (n, group, band of output rows), or pairs of images (PointwisePairs).
  const int64_t band = band_rows(pointwise ? 0 : K, Ho, Wo, N * groups, threads);
  const int64_t bands = ceil_div(Ho, band), tasks = N * groups * bands;
  const double flops = 2.0 * N * Cout * HoWo * K;
  const bool implicit = GroupWeights<T>::packs(groups, Cgo, K, N * bands);
  // PointwisePairs: tasks of two images (the last alone where N is odd).
  const bool pairs = std::is_same_v<T, float> && bands == 1 && PointwisePairs::applies(pointwise, HW, N, implicit);
  const PointwisePairs pair_rows(pairs ? K : 0);
  const int64_t ntasks = pairs ? ceil_div(N, 2) * groups : tasks;
  const int team = flops < kParallelFlops ? 1 : (int)std::min<int64_t>(threads, ntasks);
#if defined(__x86_64__) || defined(__i386__)
  // S2Planes: the band's input rows split per channel (bands of an even number of output rows).
  const bool planes = std::is_same_v<T, float> && implicit && S2Planes::applies(kh, kw, sy, sx, py, px, W, Wo);
  const int64_t plane_rows = 2 * band + 1;
  const std::vector<int32_t> plane_off = planes ? S2Planes::offsets(Cg, plane_rows) : std::vector<int32_t>();
#endif

  std::atomic<int64_t> next{0};  // tasks handed out one at a time to whichever thread is free
  parallel_region(team, [&](int, int) {
    const GroupWeights<T> wgs(WeightSlot::kForwardTasks, w, groups, Cgo, K, N * bands);  // this thread's copy
    T* const col = scratch<T>(kTaskCols, pointwise ? 0 : K * band * Wo);
#if defined(__x86_64__) || defined(__i386__)
    T* const split = scratch<T>(kPlanes, planes ? Cg * plane_rows * S2Planes::kLd : 0);
#endif
    for (int64_t t; (t = next.fetch_add(1, std::memory_order_relaxed)) < ntasks;) {
      if (pairs) {
        if constexpr (std::is_same_v<T, float>) pair_rows.run(wgs, t, groups, N, x, Cin, Cg, y, Cout, Cgo);
        continue;
      }
      const int64_t ng = t / bands, n = ng / groups, g = ng % groups;
      const int64_t oy0 = (t % bands) * band, oy1 = std::min(Ho, oy0 + band), cols = (oy1 - oy0) * Wo;
      const T* xg = x + (n * Cin + g * Cg) * HW;
      T* yb = y + (n * Cout + g * Cgo) * HoWo + oy0 * Wo;
#if defined(__x86_64__) || defined(__i386__)
      if constexpr (std::is_same_v<T, float>)
        if (planes && (oy1 - oy0) % 2 == 0) {
          S2Planes::split(xg, Cg, H, W, 2 * oy0, 2 * (oy1 - oy0) + 1, plane_rows, split);
          wgs.gemm_row_table(g, cols, RowTable{split, 2 * S2Planes::kLd, plane_off.data()}, yb, HoWo);
          continue;
        }
#endif
      if (pointwise) {  // the image is already the column matrix [Cg, H*W]
        wgs.gemm(g, cols, xg + oy0 * Wo, HW, yb, HoWo);
      } else if (implicit && S2Columns::applies(sy, sx, py, px, Wo, cols)) {
        if constexpr (std::is_same_v<T, float>) {
          const S2Columns cols_b{xg, HW, H, W, kh, kw, Wo, cols, oy0};  // one image: img_stride unused
          wgs.gemm_implicit(g, cols, cols_b.operand(), yb, HoWo);
        }
      } else {
        im2col<T>(xg, Cg, H, W, kh, kw, sy, sx, py, px, Ho, Wo, oy0, oy1, col, false);
        wgs.gemm(g, cols, col, cols, yb, HoWo);
      }
    }
  });
}

template <class T>
void conv2d_forward(const Conv2dParams& p, const T* x, const T* w, T* y) {
  const int64_t N = p.N, Cin = p.Cin, H = p.H, W = p.W, Cout = p.Cout, kh = p.kh, kw = p.kw;
  const int64_t sy = p.sy, sx = p.sx, py = p.py, px = p.px, groups = p.groups;
  const int64_t Ho = (H + 2 * py - kh) / sy + 1, Wo = (W + 2 * px - kw) / sx + 1;
  if (std::is_same_v<T, float> && winograd_applies(p, false))
    conv2d_winograd(p, x, w, y, false);
  else if (use_batched(N, Ho * Wo, kh, kw, sy, sx, py, px))
    conv2d_forward_batched(x, w, y, N, Cin, H, W, Cout, kh, kw, sy, sx, py, px, groups);
  else
    conv2d_forward_tasks(x, w, y, N, Cin, H, W, Cout, kh, kw, sy, sx, py, px, groups);
}

template <class T>
void conv2d_forward_scaled(const Conv2dParams& p, const T* x, const T* w, T* y, const T* x_scale, const T* y_scale) {
  if (std::is_same_v<T, float> && winograd_fuses_scales(p, false))
    return conv2d_winograd(p, x, w, y, false, 0, x_scale, y_scale);
  const int64_t N = p.N, Cin = p.Cin, HW = p.H * p.W, Cout = p.Cout;
  const int64_t HoWo = ((p.H + 2 * p.py - p.kh) / p.sy + 1) * ((p.W + 2 * p.px - p.kw) / p.sx + 1);
  const T* xs = x;
  if (x_scale) {  // three passes: x * x_scale into scratch, the conv, y *= y_scale
    T* t = scratch<T>(kScaledX, N * Cin * HW);
    parallel_for(N * Cin, N * Cin * HW > 32768, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t k = 0; k < HW; ++k) t[i * HW + k] = x[i * HW + k] * x_scale[i];
    });
    xs = t;
  }
  conv2d_forward(p, xs, w, y);
  if (y_scale)
    parallel_for(N * Cout, N * Cout * HoWo > 32768, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t k = 0; k < HoWo; ++k) y[i * HoWo + k] *= y_scale[i];
    });
}

#if defined(__x86_64__) || defined(__i386__)
// conv_weight_sq_sums' sums for output channel o and input channels [0, C16) (C16 a multiple of
// 16), 16 channels per step, one in each lane: each tap gathered (stride kh kw), squared in f32,
// added in f64 in the scalar loop's order (0 + the row's taps in order, 0 + the rows in order),
// rounded to f32 and stored into wsq's column o (stride O). The same bits as the scalar
// loop (one chain of dependent f64 adds per channel): seed32's 384 x 384 3x3 weights 0.76 ->
// 0.46 ms on one thread, 0.41 -> 0.24 on two; seed32's G forward 1.02-1.08x (an Intel Xeon,
// bench/results/cpu_conv_weight_sq_sums_2026-12-03.txt).
SG_AVX512 void weight_sq_sums16(const float* wo, int64_t C16, int64_t O, int64_t kh, int64_t kw, float* wsq_o) {
  const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i in_idx = _mm512_mullo_epi32(lanes, _mm512_set1_epi32((int)(kh * kw)));
  alignas(32) float sums[16];
  for (int64_t c0 = 0; c0 < C16; c0 += 16) {
    const float* k = wo + c0 * kh * kw;
    __m512d total_lo = _mm512_setzero_pd(), total_hi = _mm512_setzero_pd();
    for (int64_t i = 0; i < kh; ++i) {
      __m512d row_lo = _mm512_setzero_pd(), row_hi = _mm512_setzero_pd();
      for (int64_t j = 0; j < kw; ++j) {
        const __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), 0xFFFF, in_idx, k + i * kw + j, 4);
        const __m512d sq = _mm512_castps_pd(_mm512_mul_ps(v, v));
        row_lo = _mm512_add_pd(
            row_lo, _mm512_maskz_cvtps_pd(0xFF, _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xFF, sq, 0))));
        row_hi = _mm512_add_pd(
            row_hi, _mm512_maskz_cvtps_pd(0xFF, _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xFF, sq, 1))));
      }
      total_lo = _mm512_add_pd(total_lo, row_lo), total_hi = _mm512_add_pd(total_hi, row_hi);
    }
    _mm256_store_ps(sums, _mm512_maskz_cvtpd_ps(0xFF, total_lo));
    _mm256_store_ps(sums + 8, _mm512_maskz_cvtpd_ps(0xFF, total_hi));
    for (int64_t l = 0; l < 16; ++l) wsq_o[(c0 + l) * O] = sums[l];
  }
}
#endif

template <class T>
void conv_weight_sq_sums(const T* w, int64_t O, int64_t C, int64_t kh, int64_t kw, T* wsq) {
  if (kw > 4)  // reduce_sum adds wider rows in vector lanes: another order
    throw std::invalid_argument("conv_weight_sq_sums: kernel width " + std::to_string(kw) + " (at most 4)");
  // Channels [0, C16) 16 at a time where the AVX-512 kernels are on (f32), the rest one by one.
  int64_t C16 = 0;
#if defined(__x86_64__) || defined(__i386__)
  if (std::is_same_v<T, float> && gemm_avx512_enabled()) C16 = C / 16 * 16;
#endif
  parallel_for(O, O * C * kh * kw > 32768, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
#if defined(__x86_64__) || defined(__i386__)
      if constexpr (std::is_same_v<T, float>)
        if (C16 > 0) weight_sq_sums16(w + o * C * kh * kw, C16, O, kh, kw, wsq + o);
#endif
      for (int64_t c = C16; c < C; ++c) {
        const T* k = w + (o * C + c) * kh * kw;
        double total = 0;
        for (int64_t i = 0; i < kh; ++i) {
          double row = 0;
          for (int64_t j = 0; j < kw; ++j) {
            const T sq = k[i * kw + j] * k[i * kw + j];
            row += (double)sq;
          }
          total += row;
        }
        wsq[c * O + o] = (T)total;
      }
    }
  });
}

template <class T>
void conv_transpose2d_forward(const Conv2dParams& p, const T* x, const T* w, T* y) {
  const int64_t N = p.N, Cin = p.Cin, H = p.H, W = p.W, Cout = p.Cout, kh = p.kh, kw = p.kw;
  const int64_t sy = p.sy, sx = p.sx, py = p.py, px = p.px, opy = p.opy, opx = p.opx, groups = p.groups;
  const int64_t Cg = Cin / groups, Cgo = Cout / groups, K = Cgo * kh * kw, khw = kh * kw;
  const int64_t Ho = (H - 1) * sy - 2 * py + kh + opy, Wo = (W - 1) * sx - 2 * px + kw + opx;
  const int64_t HW = H * W, HoWo = Ho * Wo;
  if (N * groups * HoWo == 0) return;
  if (std::is_same_v<T, float> && winograd_applies(p, true)) return conv2d_winograd(p, x, w, y, true);
  const bool pointwise = is_pointwise(kh, kw, sy, sx, py, px);  // then Ho == H, Wo == W
  if (use_batched(N, HW, kh, kw, sy, sx, py, px) && (int64_t)Cg * N * HW <= kSlabBudget && K * N * HW <= kSlabBudget) {
    // Small input grids: per group one GEMM over all images, col [K, N*H*W] = W_g^T @ X_g,
    // X_g packed [Cg, N*H*W]; then col2im per (image, output channel).
    // 3x3, stride 2, padding 0, grids 8 or 4 wide, no output padding: col2im_s2k3_avx512.
    const bool s2k3 = std::is_same_v<T, float> && kh == 3 && kw == 3 && sy == 2 && sx == 2 && py == 0 && px == 0 &&
                      (W == 8 || W == 4) && Ho == 2 * H + 1 && Wo == 2 * W + 1 && gemm_avx512_enabled();
#if defined(__x86_64__) || defined(__i386__)
    // Those (small's 17x17 and 9x9 Ddown) in one region on more than one thread: each thread
    // gathers, multiplies and writes back its own share of the images (its GEMM packs its own
    // copy of the weights), where three regions split the gather by rows, the GEMM by columns
    // and col2im by images, and moved X and col between the cores in between
    // (bench/results/cpu_conv_s2_region_2026-12-03.txt). The packed kernel's sums do not depend
    // on how the columns are split: the same bits (Eigen's GEMM, SG_CPU_GEMM=eigen, blocks by
    // the matrix sizes: the path below).
    if constexpr (std::is_same_v<T, float>)
      if (s2k3 && max_threads() > 1 && gemm_packs_a()) {
        parallel_region((int)std::min<int64_t>(N, max_threads()), [&](int tid, int team) {
          const int64_t n0 = N * tid / team, nb = N * (tid + 1) / team - n0, cols = nb * HW;
          float *const xq = scratch<float>(kPacked, Cg * cols), *const col = scratch<float>(kCols, K * cols);
          for (int64_t g = 0; g < groups; ++g) {
            scatter_slab(xq, const_cast<float*>(x) + (n0 * Cin + g * Cg) * HW, Cin * HW, HW, Cg, nb, HW, true);
            gemm<float>(true, false, K, cols, Cg, 1.f, w + g * Cg * K, K, xq, cols, 0.f, col, cols);
            for (int64_t n = 0; n < nb; ++n) {
              float* const yn = y + ((n0 + n) * Cout + g * Cgo) * HoWo;
              if (W == 8)
                col2im_s2k3_avx512<8>(col + n * HW, Cgo, H, cols, yn);
              else
                col2im_s2k3_avx512<4>(col + n * HW, Cgo, H, cols, yn);
            }
          }
        });
        return;
      }
#endif
    T* xp = scratch<T>(kPacked, Cg * N * HW);
    T* colp = scratch<T>(kCols, K * N * HW);
    const int64_t cols = N * HW;
    for (int64_t g = 0; g < groups; ++g) {
      scatter_slab(xp, const_cast<T*>(x) + g * Cg * HW, Cin * HW, HW, Cg, N, HW, true);
      gemm<T>(true, false, K, cols, Cg, T(1), w + g * Cg * K, K, xp, cols, T(0), colp, cols);
      parallel_for(N * Cgo, true, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0, cnt; i < i1; i += cnt) {  // the channels [c, c + cnt) of image n in one call
          const int64_t n = i / Cgo, c = i % Cgo;
          cnt = std::min(i1 - i, Cgo - c);
          T* yc = y + (n * Cout + g * Cgo + c) * HoWo;
#if defined(__x86_64__) || defined(__i386__)
          if constexpr (std::is_same_v<T, float>)
            if (s2k3) {
              const float* cc = colp + c * khw * cols + n * HW;
              if (W == 8)
                col2im_s2k3_avx512<8>(cc, cnt, H, cols, yc);
              else
                col2im_s2k3_avx512<4>(cc, cnt, H, cols, yc);
              continue;
            }
#endif
          std::fill(yc, yc + cnt * HoWo, T(0));
          col2im_rows(colp + c * khw * cols + n * HW, cnt, Ho, Wo, kh, kw, sy, sx, py, px, W, 0, H, yc, cols);
        }
      });
    }
    return;
  }
  const int threads = max_threads();
  // Tasks: (n, group, chunk of output channels). Bands of input rows would scatter into
  // overlapping output rows; chunks of output channels never overlap.
  const int64_t chunks0 = N * groups >= threads ? 1 : std::min(Cgo, ceil_div(threads, N * groups));
  const int64_t chunk = ceil_div(Cgo, chunks0), chunks = ceil_div(Cgo, chunk), tasks = N * groups * chunks;
  // The column matrix of a chunk lives on the input grid [H, W] (the adjoint conv's output).
  const int64_t band = band_rows(chunk * khw, H, W, threads, threads);
  const double flops = 2.0 * N * Cin * HW * K;
  // A pointwise one whose tasks take whole groups multiplies every image by the same W_g^T:
  // packed once (at 384 channels on 4x4 grids, packing it per image cost more than the GEMMs).
  const int64_t uses = pointwise && chunks == 1 ? N : 1;
  // PointwisePairs (above): tasks of two images (the last alone where N is odd).
  const bool pairs = std::is_same_v<T, float> && chunks == 1 &&
                     PointwisePairs::applies(pointwise, HW, N, GroupWeights<T>::packs(groups, Cgo, Cg, uses));
  const PointwisePairs pair_rows(pairs ? Cg : 0);
  const int64_t ntasks = pairs ? ceil_div(N, 2) * groups : tasks;
  const int team = flops < kParallelFlops ? 1 : (int)std::min<int64_t>(threads, ntasks);
#if defined(__x86_64__) || defined(__i386__)
  // The adjoint of S2Planes' forward (3x3, stride 2, padding 0, output rows 33 or 34 wide from a
  // grid 16 wide; whole images and groups per task, at most kPackKC input channels): no column
  // matrix. The GEMM's rows (taps, in order) are added straight into the output's column-split
  // rows, which are then interleaved into the image: the same additions in the same order as
  // col2im's (starting from zero, taps in order for each output float), so the same bits.
  // Measured (small's 33x33 Ddown, kernels alone, alternating, 5 rounds): 1.23-1.28x on 1
  // thread, 1.20-1.26x on 2 (0.90-0.92 -> 0.73-0.75 ms); through the engine, side by side,
  // 1.15x (bench/results/cpu_conv_s2_planes_2026-12-03.txt).
  std::vector<PackedA> wt_planes;
  if constexpr (std::is_same_v<T, float>)
    if (S2Planes::applies(kh, kw, sy, sx, py, px, Wo, W) && chunks == 1 && band >= H && Cg <= kPackKC)
      for (int64_t g = 0; g < groups; ++g) {
        wt_planes.push_back(gemm_pack_a(true, K, Cg, w + g * Cg * K, K));
        if (wt_planes.back().data.empty()) {  // Eigen's GEMM in use: col2im
          wt_planes.clear();
          break;
        }
      }
  const std::vector<int32_t> out_off = wt_planes.empty() ? std::vector<int32_t>() : S2Planes::offsets(Cgo, Ho);
#endif

  std::atomic<int64_t> next{0};  // tasks handed out one at a time to whichever thread is free
  parallel_region(team, [&](int, int) {
    const GroupWeights<T> wt(WeightSlot::kTransposed, w, groups, Cgo, Cg, uses, true);  // this thread's copy
    T* const col = scratch<T>(kTaskCols, pointwise ? 0 : chunk * khw * band * W);
#if defined(__x86_64__) || defined(__i386__)
    T* const split = scratch<T>(kPlanes, wt_planes.empty() ? 0 : Cgo * Ho * S2Planes::kLd);
#endif
    for (int64_t t; (t = next.fetch_add(1, std::memory_order_relaxed)) < ntasks;) {
      if (pairs) {
        if constexpr (std::is_same_v<T, float>) pair_rows.run(wt, t, groups, N, x, Cin, Cg, y, Cout, Cgo);
        continue;
      }
      const int64_t ng = t / chunks, n = ng / groups, g = ng % groups;
      const int64_t c0 = (t % chunks) * chunk, cc = std::min(Cgo, c0 + chunk) - c0;
      const T* xg = x + (n * Cin + g * Cg) * HW;
      const T* wc = w + g * Cg * K + c0 * khw;  // columns [c0*khw, (c0+cc)*khw) of [Cg, K]
      T* yc = y + (n * Cout + g * Cgo + c0) * HoWo;
#if defined(__x86_64__) || defined(__i386__)
      if constexpr (std::is_same_v<T, float>)
        if (!wt_planes.empty()) {
          std::fill(split, split + Cgo * Ho * S2Planes::kLd, 0.f);
          gemm_prepacked_scatter_add(wt_planes[(size_t)g], HW, xg, HW,
                                     RowTable{split, 2 * S2Planes::kLd, out_off.data()});
          S2Planes::merge(split, Cgo, Ho, Wo, yc);
          continue;
        }
#endif
      if (pointwise) {
        if (chunks == 1)
          wt.gemm(g, HW, xg, HW, yc, HoWo);
        else
          gemm<T>(true, false, cc, HW, Cg, T(1), wc, K, xg, HW, T(0), yc, HoWo);
        continue;
      }
      std::fill(yc, yc + cc * HoWo, T(0));
      for (int64_t h0 = 0; h0 < H; h0 += band) {
        const int64_t h1 = std::min(H, h0 + band), cols = (h1 - h0) * W;
        gemm<T>(true, false, cc * khw, cols, Cg, T(1), wc, K, xg + h0 * W, HW, T(0), col, cols);
        col2im<T>(col, cc, Ho, Wo, kh, kw, sy, sx, py, px, H, W, h0, h1, yc, false);
      }
    }
  });
}

template <class T>
void conv2d_weight_grad(const Conv2dParams& p, const T* dy, const T* x, T* dw) {
  const int64_t N = p.N, Cin = p.Cin, H = p.H, W = p.W, Cout = p.Cout, kh = p.kh, kw = p.kw;
  const int64_t sy = p.sy, sx = p.sx, py = p.py, px = p.px, groups = p.groups;
  const int64_t Cg = Cin / groups, Cgo = Cout / groups, K = Cg * kh * kw;
  const int64_t Ho = (H + 2 * py - kh) / sy + 1, Wo = (W + 2 * px - kw) / sx + 1;
  const int64_t HW = H * W, HoWo = Ho * Wo, dw_size = Cout * K;
  const bool pointwise = is_pointwise(kh, kw, sy, sx, py, px);
  const int threads = max_threads();
  const double flops = 2.0 * N * Cout * HoWo * K;
  if (std::is_same_v<T, float> && winograd_applies(p, false)) return conv2d_weight_grad_winograd(p, dy, x, dw);
  if (N * HoWo == 0) return std::fill(dw, dw + dw_size, T(0));
  // dw is zeroed where it is added to (the task paths below), not here: the batched GEMMs write
  // it with beta 0, and a serial memset of a 384 x 384 dw was 3% of seed32's 4x4 skip weight
  // gradient with the other thread idle (perf).
  if ((use_batched(N, HoWo, kh, kw, sy, sx, py, px) || (pointwise && pointwise_batched(N, HoWo, Cgo, K))) &&
      K * N * HoWo <= kSlabBudget && Cgo * N * HoWo <= kSlabBudget) {
    // Small output grids: per group one GEMM over all images, dW_g = dY_g @ col^T with
    // col [K, N*Ho*Wo] and dY_g packed [Cgo, N*Ho*Wo].
    const int64_t cols = N * HoWo;
#if defined(__x86_64__) || defined(__i386__)
    if constexpr (std::is_same_v<T, float>)
      if (pointwise && PointwiseColsT::applies(HW, Cg)) {  // neither operand written out: both packed from the images
        int64_t g = 0;
        while (g < groups && pointwise_wgrad_images(dy, x, 0, N, g, Cin, Cout, Cg, Cgo, HW, 0.f, dw + g * Cgo * K)) ++g;
        if (g == groups) return;  // (none done where Eigen's GEMM is in use: the paths below)
      }
#endif
    T* dyp = scratch<T>(kPacked, Cgo * N * HoWo);
#if defined(__x86_64__) || defined(__i386__)
    if constexpr (std::is_same_v<T, float>)
      if (S2ColumnsT::applies(p, Wo, HoWo, K)) {  // no column matrix: the GEMM packs col^T from the images
        thread_local PackedA dyg;                 // (its memory kept between calls)
        for (int64_t g = 0; g < groups; ++g) {
          scatter_slab(dyp, const_cast<T*>(dy) + g * Cgo * HoWo, Cout * HoWo, HoWo, Cgo, N, HoWo, true);
          gemm_pack_a(dyg, false, Cgo, cols, dyp, cols);
          if (dyg.data.empty()) break;  // Eigen's GEMM in use (SG_CPU_GEMM=eigen): im2col below
          const S2ColumnsT b{x + g * Cg * HW, Cin * HW, H, W, kh, kw, Wo, HoWo, 0};
          gemm_prepacked_implicit(dyg, K, b.operand(), 1.f, 0.f, dw + g * Cgo * K, K);
          if (g == groups - 1) return;
        }
      }
#endif
    T* colp = scratch<T>(kCols, K * N * HoWo);
    for (int64_t g = 0; g < groups; ++g) {
      im2col_slab(x + g * Cg * HW, Cin * HW, {0, N, 0, Ho}, Cg, H, W, kh, kw, sy, sx, py, px, Ho, Wo, colp);
      scatter_slab(dyp, const_cast<T*>(dy) + g * Cgo * HoWo, Cout * HoWo, HoWo, Cgo, N, HoWo, true);
      gemm<T>(false, true, Cgo, K, cols, T(1), dyp, cols, colp, cols, T(0), dw + g * Cgo * K, K);
    }
    return;
  }

#if defined(__x86_64__) || defined(__i386__)
  // S2Planes' convs (3x3, stride 2, inputs 33 or 34 wide: output rows of 16): per image,
  // dW_g^T = col @ dY^T with col read in place from the column-split image (its rows, the taps,
  // are an output row's 16 pixels at a time: gemm_row_table_a), then added into the accumulator
  // transposed, 16 x 16 at a time: no column matrix and no packing of col^T (S2ColumnsT's gathers
  // and transposes, 21% of the call, perf), only dY^T [pixels x Cgo]. The same FMAs in the same
  // order and the same addition into the accumulator as S2ColumnsT's GEMM (one k block per
  // image), so the same bits. Measured (small's 33x33 Ddown, kernels alone, alternating):
  // 1.12-1.27x on 1 thread, 1.09-1.21x on 2; through the engine, side by side, 1.11x
  // (bench/results/cpu_conv_s2_planes_2026-12-03.txt, with two variants that lost: the
  // transposed add as a scalar loop, and accumulating transposed, where GCC spilled the kernel).
  const bool planes =
      std::is_same_v<T, float> && S2Planes::applies(kh, kw, sy, sx, py, px, W, Wo) && HoWo <= kPackKC && Cgo % 32 == 0;
  const std::vector<int32_t> plane_off = planes ? S2Planes::offsets(Cg, H) : std::vector<int32_t>();
#endif
  // acc (laid out like dw) += the contribution of batch element n, rows [oy0, oy1), to group g.
  auto run_task = [&](int64_t n, int64_t g, int64_t oy0, int64_t oy1, T* acc, T* col) {
    const int64_t cols = (oy1 - oy0) * Wo;
    const T* xg = x + (n * Cin + g * Cg) * HW;
    const T* dyb = dy + (n * Cout + g * Cgo) * HoWo + oy0 * Wo;
    T* ag = acc + g * Cgo * K;  // [Cgo, K]
    if (pointwise && K <= kThinK) {
      // A thin input (fromRGB): dW [Cgo, K] is Cgo * K dot products of length cols, cheaper
      // than a GEMM whose N (= K, 1 to 3) fills 3-19% of its 16-wide micro-tile.
      for (int64_t o = 0; o < Cgo; ++o)
        for (int64_t c = 0; c < K; ++c) ag[o * K + c] += dot(dyb + o * HoWo, xg + c * HW + oy0 * Wo, cols);
    } else if (pointwise) {
      gemm<T>(false, true, Cgo, K, cols, T(1), dyb, HoWo, xg + oy0 * Wo, HW, T(1), ag, K);
    } else {
#if defined(__x86_64__) || defined(__i386__)
      if constexpr (std::is_same_v<T, float>)
        if (planes && cols == HoWo) {
          T* const split = scratch<T>(kPlanes, Cg * H * S2Planes::kLd);
          T* const taps_by_out = scratch<T>(kTapsByOut, K * Cgo);
          S2Planes::split(xg, Cg, H, W, 0, H, H, split);
          gemm_row_table_a(K, Cgo, cols, RowTable{split, 2 * S2Planes::kLd, plane_off.data()}, dyb, HoWo, true,
                           taps_by_out, Cgo);
          return add_transposed16(taps_by_out, K, Cgo, ag);
        }
      if constexpr (std::is_same_v<T, float>)
        if (S2ColumnsT::applies(p, Wo, cols, K)) {  // as the batched path above: col^T packed from the image
          thread_local PackedA dyb_packed;
          gemm_pack_a(dyb_packed, false, Cgo, cols, dyb, HoWo);
          if (!dyb_packed.data.empty()) {
            const S2ColumnsT b{xg, HW, H, W, kh, kw, Wo, cols, oy0};  // one image: img_stride unused
            return gemm_prepacked_implicit(dyb_packed, K, b.operand(), 1.f, 1.f, ag, K);
          }
        }
#endif
      im2col<T>(xg, Cg, H, W, kh, kw, sy, sx, py, px, Ho, Wo, oy0, oy1, col, false);
      gemm<T>(false, true, Cgo, K, cols, T(1), dyb, HoWo, col, cols, T(1), ag, K);
    }
  };

  if (threads > 1 && groups >= threads && flops >= kParallelFlops) {
    // Each thread owns whole groups of dw: no reduction (the fused modulated conv).
    std::fill(dw, dw + dw_size, T(0));
    const int64_t band = band_rows(pointwise ? 0 : K, Ho, Wo, groups, threads);
    std::atomic<int64_t> next{0};  // groups handed out one at a time
    parallel_region(threads, [&](int, int) {
      T* const col = scratch<T>(kTaskCols, pointwise ? 0 : K * band * Wo);
      for (int64_t g; (g = next.fetch_add(1, std::memory_order_relaxed)) < groups;)
        for (int64_t n = 0; n < N; ++n)
          for (int64_t oy0 = 0; oy0 < Ho; oy0 += band) run_task(n, g, oy0, std::min(Ho, oy0 + band), dw, col);
    });
    return;
  }
  // Tasks: (n, group, band of output rows), each thread summing into its own accumulator
  // (thread 0 into dw itself), reduced at the end.
  // A 1x1 conv with few pixels per image and a large [Cgo, K] result (seed32's 192 -> 384 skip
  // at 8x8): a task is a run of images that fills one k block of the GEMM, both operands packed
  // from the images as in the batched path above, so each thread reads and writes its
  // accumulator once per kPackKC pixels, not once per image. Measured (bench_cpu_conv --shapes,
  // 2 threads, alternating with per-image tasks): 192 -> 384 at 8x8 1.12-1.16 -> 1.06-1.10 ms;
  // small's 64-channel skip at 4x4 (a [64, 64] result) was slower, 0.022 -> 0.027 ms.
  int64_t per_task = 1;  // images per task
#if defined(__x86_64__) || defined(__i386__)
  if constexpr (std::is_same_v<T, float>)
    if (pointwise && Cgo * K >= (int64_t(1) << 15) && HW < kPackKC && PointwiseColsT::applies(HW, Cg))
      per_task = kPackKC / HW;
#endif
  auto run_images = [&](int64_t n0, int64_t g, T* acc) {
#if defined(__x86_64__) || defined(__i386__)
    if constexpr (std::is_same_v<T, float>) {
      const int64_t nb = std::min(per_task, N - n0);
      if (!pointwise_wgrad_images(dy, x, n0, nb, g, Cin, Cout, Cg, Cgo, HW, 1.f, acc + g * Cgo * K))
        for (int64_t n = n0; n < n0 + nb; ++n) run_task(n, g, 0, Ho, acc, nullptr);  // Eigen's GEMM in use
    }
#endif
  };
  const int64_t band = per_task > 1 ? Ho : band_rows(pointwise ? 0 : K, Ho, Wo, N * groups, threads);
  const int64_t bands = ceil_div(Ho, band), tasks = ceil_div(N, per_task) * groups * bands;
  const int team = flops < kParallelFlops ? 1 : (int)std::min<int64_t>(threads, tasks);
  T* const extra = scratch<T>(kExtraAccs, dw_size * (team - 1));
  int got = 1;  // the team the region really got (1 when another thread holds the pool)
  parallel_region(team, [&](int tid, int nt) {
    if (tid == 0) got = nt;
    T* acc = tid == 0 ? dw : extra + (tid - 1) * dw_size;
    std::fill(acc, acc + dw_size, T(0));  // (each thread its own, dw too)
    T* const col = scratch<T>(kTaskCols, pointwise ? 0 : K * band * Wo);
    for (int64_t t = tasks * tid / nt; t < tasks * (tid + 1) / nt; ++t) {
      const int64_t ng = t / bands, oy0 = (t % bands) * band;
      if (per_task > 1)
        run_images(ng / groups * per_task, ng % groups, acc);
      else
        run_task(ng / groups, ng % groups, oy0, std::min(Ho, oy0 + band), acc, col);
    }
  });
  if (got > 1)  // sum the threads' accumulators into dw
    parallel_for(dw_size, dw_size > kParallelGrain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        T s = dw[i];
        for (int k = 1; k < got; ++k) s += extra[(k - 1) * dw_size + i];
        dw[i] = s;
      }
    });
}

#define SG_INSTANTIATE_CONV(T)                                                                                       \
  template void im2col<T>(const T*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, \
                          int64_t, int64_t, int64_t, int64_t, T*, bool);                                             \
  template void col2im<T>(const T*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, \
                          int64_t, int64_t, int64_t, int64_t, T*, bool);                                             \
  template void conv2d_forward<T>(const Conv2dParams&, const T*, const T*, T*);                                      \
  template void conv2d_forward_scaled<T>(const Conv2dParams&, const T*, const T*, T*, const T*, const T*);           \
  template void conv_weight_sq_sums<T>(const T*, int64_t, int64_t, int64_t, int64_t, T*);                            \
  template void conv_transpose2d_forward<T>(const Conv2dParams&, const T*, const T*, T*);                            \
  template void conv2d_weight_grad<T>(const Conv2dParams&, const T*, const T*, T*);

SG_INSTANTIATE_CONV(float)
SG_INSTANTIATE_CONV(double)
#undef SG_INSTANTIATE_CONV

}  // namespace sg::kernels::cpu
