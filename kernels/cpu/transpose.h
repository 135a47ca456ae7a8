// A 2-D transpose, the layout change behind transpose / permute of a matrix (and of the last two
// dims of a batch of them): strided_copy (kernels/cpu/loops.h) hands it the views that swap
// them.
//
//   out[j * ldo + i] = a[i * lda + j]    i < rows, j < cols   (a [rows, cols] -> out [cols, rows])
//
// f32 with AVX2: 8x8 blocks through registers (kernels/cpu/avx2.h, transpose8x8), the edges one
// element at a time; f64 and machines without AVX2: 8x8 blocks element by element. Rows of
// blocks are split over the threads for large matrices. A copy: the same bits either way.
// Measured (bench/results/cpu_transpose_2026-12-03.txt): a [192, 384] f32 weight 68 -> 18 us,
// where the strided copy read a column per output row.
#pragma once
#include <cstdint>

namespace sg::kernels::cpu {

template <class T>
void transpose2d(const T* a, int64_t rows, int64_t cols, int64_t lda, T* out, int64_t ldo);

}  // namespace sg::kernels::cpu
