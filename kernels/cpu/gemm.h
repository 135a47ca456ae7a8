// C = alpha * op(A) @ op(B) + beta * C, row-major (multithreaded on the kernels' threads,
// kernels/cpu/parallel.h, when called outside a parallel region, single-threaded inside one).
//   op(A) is [M, K] (A stored [M, K] with leading dim lda, or [K, M] when trans_a)
//   op(B) is [K, N] (B stored [K, N] with leading dim ldb, or [N, K] when trans_b)
// beta == 0 overwrites C without reading it.
// Two implementations (kernels/cpu/gemm.cpp picks):
//   f32 on a CPU with AVX2 + FMA (checked at run time): our packed GEMM with a 6x16 register
//     micro-kernel, kernels/cpu/gemm_avx2.cpp (its header explains the blocking);
//   otherwise (f64, or no AVX2, or SG_CPU_GEMM=eigen in the environment): Eigen's GEMM.
// Benchmark: build/bench_cpu_gemm (bench/bench_cpu_gemm.cpp) times both on the shapes the conv
// kernels use, against the FMA roofline measured in the same run; build/bench_cpu_conv times
// the convolutions built on them.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

namespace sg::kernels::cpu {

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc);

// The two implementations, callable directly (tests, benchmarks). gemm_f32_avx2 requires
// gemm_avx2_available().
template <class T>
void gemm_eigen(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                const T* B, int64_t ldb, T beta, T* C, int64_t ldc);
bool gemm_avx2_available();
// The CPU also has AVX-512F: the packed kernel then runs its AVX-512 micro-kernels (6x32, 12x16
// and 12x32 tiles), which give the same bits as the 256-bit one (SG_CPU_GEMM=avx2 keeps that one).
bool gemm_avx512_available();
// Switches the AVX-512 micro-kernels on or off (on: only where available) and returns the
// previous setting: for the tests, which compare the two kernels' bits, and benchmarks. Not
// while another thread runs a GEMM.
bool gemm_use_avx512(bool on);
// Whether the AVX-512 kernels are on (available, and not switched off): for callers whose own
// AVX-512 code follows the same switch (conv.cpp's stride-2 column packer), and benchmarks.
bool gemm_avx512_enabled();
// Whether the AVX-512 12x16 kernel broadcasts three of A's values per k from a register
// (default: on AMD's cores, where that measured faster) instead of from memory (elsewhere:
// Intel's cores run register broadcasts on an FMA port); SG_CPU_SPREAD=0/1 fixes the default.
// The same bits either way. Switches it and returns the previous setting, as gemm_use_avx512.
bool gemm_spread_broadcasts(bool on);
// Whether the packed GEMM runs a 12x32 AVX-512 kernel (two slivers of A against two of B)
// where it can, instead of the 6x32 one (default: off on AMD's cores, where it gained nothing,
// on elsewhere; SG_CPU_12X32=0/1 fixes the default). The same bits either way. Switches it and
// returns the previous setting, as gemm_use_avx512.
bool gemm_tall_wide(bool on);
void gemm_f32_avx2(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                   int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// op(A) packed once for many products with it (f32), e.g. the Winograd convolution's
// transformed weights, multiplied by every chunk of tiles: the packed kernel then skips A's
// packing, which for a narrow B (a 16-tile chunk against 384 x 384 weights) costs as much
// as the multiply-adds. `src` stays the operand (it must outlive the handle): where the
// packed kernel is not in use (Eigen's GEMM, see gemm()), `data` is empty and gemm_prepacked
// multiplies with src. data: for each k block of KC, the MR-row slivers [kc][MR] of all M
// rows (zero past M), the layout gemm_avx2.cpp packs Ap in.
struct PackedA {
  bool trans = false;
  int64_t M = 0, K = 0, lda = 0;
  const float* src = nullptr;
  std::vector<float> data;
};
PackedA gemm_pack_a(bool trans_a, int64_t M, int64_t K, const float* A, int64_t lda);
// Whether gemm_pack_a packs (the packed kernel is in use): false under SG_CPU_GEMM=eigen, where
// it keeps the operand and packs nothing.
bool gemm_packs_a();
// The same into p, reusing the memory of p.data: no allocation when p packed as large an operand
// before (the Winograd convolution keeps its packed weights per thread this way).
void gemm_pack_a(PackedA& p, bool trans_a, int64_t M, int64_t K, const float* A, int64_t lda);
// The most floats a conv call keeps packed this way (32 MiB: a 512-channel layer's 16 Winograd
// matrices); beyond (grouped convs with many groups) it packs as it goes, as before.
inline constexpr int64_t kMaxPrepackedFloats = int64_t(1) << 23;
// op(A) written straight into the packed layout by its producer (the Winograd weight
// transform, which would otherwise write the matrix and then pack it): gemm_packed_a_prepare
// sizes p.data for an [M, K] operand and zeroes its padding rows, then the caller writes
// element (i, k) of op(A) at p.data[packed_a_offset(p, i, k)] for every i < M, k < K. Returns
// false where the packed kernel is not in use (Eigen's GEMM; p is left empty): pack from
// memory with gemm_pack_a instead. kPackMR and kPackKC are gemm_avx2.cpp's MR and KC: within
// one k block, k and k + 1 are kPackMR floats apart.
inline constexpr int64_t kPackMR = 6, kPackKC = 256;
bool gemm_packed_a_prepare(PackedA& p, int64_t M, int64_t K);
inline int64_t packed_a_offset(const PackedA& p, int64_t i, int64_t k) {
  const int64_t Mpad = (p.M + kPackMR - 1) / kPackMR * kPackMR, pc = k / kPackKC * kPackKC;
  const int64_t kc = std::min(kPackKC, p.K - pc);
  return pc * Mpad + (i / kPackMR) * kPackMR * kc + (k - pc) * kPackMR + i % kPackMR;
}
// op(A) [M, K] stored as segments of `seg` columns, seg_stride apart: element (i, k) is
// A[(k / seg) * seg_stride + i * lda + k % seg]. A batch of images side by side without copying
// them: a 1x1 conv's dY, [Cout, HW] per image, as [Cout, N * HW] (seg = lda = HW, seg_stride =
// Cout * HW). Packs as gemm_pack_a would pack the matrix written out (the same floats in the same
// places), on the kernels' threads when called outside a parallel region. Returns false, p left
// empty, where the packed kernel is not in use (Eigen's GEMM): write the matrix out instead.
bool gemm_pack_a_segments(PackedA& p, int64_t M, int64_t K, const float* A, int64_t lda, int64_t seg,
                          int64_t seg_stride);
// C = alpha * op(A) @ op(B) + beta * C with op(A) from gemm_pack_a: the same contract as gemm.
void gemm_prepacked(const PackedA& A, bool trans_b, int64_t N, float alpha, const float* B, int64_t ldb, float beta,
                    float* C, int64_t ldc);
// The same for rows row0 .. row0 + rows - 1 of op(A) only (row0 a multiple of kPackMR), on the
// calling thread; C holds those rows. A must be packed for the packed kernel (gemm_pack_a or
// gemm_packed_a_prepare returned true), else std::logic_error. The same bits as those rows of
// gemm_prepacked.
void gemm_prepacked_rows(const PackedA& A, int64_t row0, int64_t rows, bool trans_b, int64_t N, float alpha,
                         const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
// op(B) that its consumer writes straight into the packed kernel's layout instead of reading
// it from memory (an implicit operand: a convolution's im2col columns, which are then never
// written out and read back). pack(ctx, j0, n, k0, kc, dst) writes columns j0 .. j0 + n - 1 and
// rows k0 .. k0 + kc - 1 of op(B) as kPackNR-wide slivers, [kc][kPackNR] each:
//   dst[(j / kPackNR) * kc * kPackNR + k * kPackNR + j % kPackNR] = op(B)(k0 + k, j0 + j),
// zeros in the last sliver's columns past n. It runs on the GEMM's threads, concurrently.
inline constexpr int64_t kPackNR = 16;
struct ImplicitB {
  void (*pack)(const void* ctx, int64_t j0, int64_t n, int64_t k0, int64_t kc, float* dst) = nullptr;
  const void* ctx = nullptr;
};
// C = alpha * op(A) @ op(B) + beta * C, op(A) [A.M, A.K] prepacked, op(B) [A.K, N] from b: the
// contract of gemm. Requires the packed kernel's operand (A.data not empty: gemm_pack_a packed it
// with gemm_avx2_available()), else std::logic_error.
void gemm_prepacked_implicit(const PackedA& A, int64_t N, const ImplicitB& b, float alpha, float beta, float* C,
                             int64_t ldc);
// A matrix in place through a table of row offsets: row r of its 16-wide sliver s (columns
// 16 s .. 16 s + 15) is the 16 floats at base + s * sliver_stride + off[r]. For the stride-2
// convs whose output rows are 16 wide (kernels/cpu/conv.cpp S2Planes: each tap of an output row
// is 16 contiguous floats of a column-split image).
struct RowTable {
  float* base = nullptr;
  int64_t sliver_stride = 0;
  const int32_t* off = nullptr;
};
// C[A.M, N] = op(A) @ op(B) (beta 0) on the calling thread, op(B) [A.K, N] read in place through
// b (A.K rows), with the AVX-512 6x32 kernel: the bits of gemm_prepacked on the same matrix.
// C's sliver s (its columns [16 s, 16 s + 16)) starts at C + s * c_sliver_stride (by default
// beside the one before; a pointwise conv's batch of 4x4 images: one image's output each).
// Requires A packed for the packed kernel, gemm_avx512_enabled() and N a multiple of 32, else
// std::logic_error.
void gemm_prepacked_row_table(const PackedA& A, int64_t N, const RowTable& b, float* C, int64_t ldc,
                              int64_t c_sliver_stride = kPackNR);
// The product op(A) @ B (B [A.K, N] row-major, ldb) added into memory through c (A.M rows): row
// i's sliver s to the 16 floats at c.base + s * c.sliver_stride + c.off[i], rows in increasing
// order (so a float that several rows meet gets them in row order, starting from its value), on
// the calling thread, with the AVX-512 6x32 kernel: the bits of gemm_prepacked into a matrix
// whose rows are then added in order. Requires A packed, gemm_avx512_enabled(), N a multiple of
// 32 and A.K <= kPackKC (one k block: the products are summed before they are added), else
// std::logic_error.
void gemm_prepacked_scatter_add(const PackedA& A, int64_t N, const float* B, int64_t ldb, const RowTable& c);
// C[M, N] = op(A) @ op(B) (beta 0) on the calling thread with op(A) read in place through a
// (A's rows i, k along them in runs of 16: element (i, k) is a.base[a.off[i] + (k / 16) *
// a.sliver_stride + k % 16]) and op(B) [K, N] from B (ldb, trans_b as gemm), with the AVX-512
// 6x32 kernel: the bits of gemm on the same matrices. The stride-2 weight gradient's col (taps
// down, an output row's 16 pixels along k) times dY^T. Requires gemm_avx512_enabled(), N a
// multiple of 32, K a multiple of 16 and at most kPackKC, else std::logic_error.
void gemm_row_table_a(int64_t M, int64_t N, int64_t K, const RowTable& a, const float* B, int64_t ldb, bool trans_b,
                      float* C, int64_t ldc);
// The same two with the packed kernel whatever gemm() would pick (requires gemm_avx2_available()).
PackedA gemm_pack_a_avx2(bool trans_a, int64_t M, int64_t K, const float* A, int64_t lda);
void gemm_pack_a_avx2(PackedA& p, bool trans_a, int64_t M, int64_t K, const float* A, int64_t lda);
void gemm_packed_a_prepare_avx2(PackedA& p, int64_t M, int64_t K);
void gemm_pack_a_segments_avx2(PackedA& p, int64_t M, int64_t K, const float* A, int64_t lda, int64_t seg,
                               int64_t seg_stride);
void gemm_prepacked_avx2(const PackedA& A, bool trans_b, int64_t N, float alpha, const float* B, int64_t ldb,
                         float beta, float* C, int64_t ldc);

}  // namespace sg::kernels::cpu
