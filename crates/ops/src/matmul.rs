//! A bounds-checked f32 matrix product on top of the `gemm` crate.

use std::mem::MaybeUninit;

use gemm::Parallelism;

/// A read-only strided view of a matrix stored in a slice.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A row-major `rows` x `cols` matrix at the start of `data`.
    pub(crate) fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols, 1)
    }

    /// A column-major `rows` x `cols` matrix at the start of `data`.
    pub(crate) fn col_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, 1, rows)
    }

    /// A matrix whose element (r, c) is `data[r * row_stride + c * col_stride]`.
    ///
    /// Panics if the view reaches past the end of `data` (an internal invariant, never user input).
    fn strided(
        data: &'a [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Self {
        if rows > 0 && cols > 0 {
            let last = (rows - 1) * row_stride + (cols - 1) * col_stride;
            assert!(
                last < data.len(),
                "matrix view {rows}x{cols} (strides {row_stride}, {col_stride}) overruns {} elements",
                data.len()
            );
        }
        Self {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }

    /// The rows `range` of the view (no copy).
    ///
    /// Panics if the range reaches past the last row (an internal invariant).
    pub(crate) fn rows(self, range: std::ops::Range<usize>) -> Self {
        assert!(
            range.start <= range.end && range.end <= self.rows,
            "rows {range:?} of a {}-row matrix",
            self.rows
        );
        let offset = (range.start * self.row_stride).min(self.data.len());
        Self {
            data: &self.data[offset..],
            rows: range.len(),
            ..self
        }
    }

    /// The transposed view (no copy).
    pub(crate) fn t(self) -> Self {
        Self {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }
}

/// A mutable strided view of a matrix stored in a slice.
#[derive(Debug)]
pub(crate) struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatMut<'a> {
    /// A row-major `rows` x `cols` matrix at the start of `data`.
    pub(crate) fn row_major(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols, 1)
    }

    /// A column-major `rows` x `cols` matrix at the start of `data`.
    pub(crate) fn col_major(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, 1, rows)
    }

    /// A matrix whose element (r, c) is `data[r * row_stride + c * col_stride]`; the strides
    /// must not make two elements share a cell.
    ///
    /// Panics if the view reaches past the end of `data` (an internal invariant, never user input).
    fn strided(
        data: &'a mut [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Self {
        MatRef::strided(data, rows, cols, row_stride, col_stride);
        Self {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }
}

/// Whether a product overwrites its destination or adds to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accumulate {
    /// `dst = lhs * rhs`.
    Overwrite,
    /// `dst += lhs * rhs`.
    Add,
}

/// `dst (=|+=) lhs * rhs`, using `threads` threads inside the product (1 when the caller already
/// runs products in parallel).
///
/// Panics if the shapes do not chain (an internal invariant).
pub(crate) fn matmul(
    dst: MatMut<'_>,
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
    accumulate: Accumulate,
    threads: usize,
) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert_eq!(k, rhs.rows, "matmul: inner dimensions differ");
    assert_eq!(
        (m, n),
        (dst.rows, dst.cols),
        "matmul: destination shape differs"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if accumulate == Accumulate::Overwrite {
            for r in 0..m {
                for c in 0..n {
                    dst.data[r * dst.row_stride + c * dst.col_stride] = 0.0;
                }
            }
        }
        return;
    }
    let parallelism = if threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    let read_dst = accumulate == Accumulate::Add;
    // SAFETY: every view was bounds-checked when it was built (so every index the product
    // touches is inside its slice), and `dst` (a unique borrow) cannot alias `lhs` or `rhs`.
    unsafe {
        gemm_into(
            dst.data.as_mut_ptr(),
            (dst.row_stride, dst.col_stride),
            lhs,
            rhs,
            read_dst,
            parallelism,
        );
    }
}

/// gemm's `dst (=|+=) lhs * rhs` (adding when `read_dst`) into the `lhs.rows x rhs.cols`
/// matrix whose element (r, c) is at `dst + r * row_stride + c * col_stride`.
///
/// # Safety
///
/// Every element of that matrix must lie in one allocation the caller may write, that does not
/// overlap `lhs` or `rhs`; when `read_dst`, every element must be initialised.
unsafe fn gemm_into(
    dst: *mut f32,
    (row_stride, col_stride): (usize, usize),
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
    read_dst: bool,
    parallelism: Parallelism,
) {
    // SAFETY: the caller's contract covers the destination; `lhs` and `rhs` were bounds-checked
    // when they were built.
    unsafe {
        gemm::gemm(
            lhs.rows,
            rhs.cols,
            lhs.cols,
            dst,
            col_stride as isize,
            row_stride as isize,
            read_dst,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// `lhs * rhs` written into `dst`, the row-major cells of a `lhs.rows x rhs.cols` result that
/// need not be initialised, and returned as floats: no zero fill first.
///
/// On x86-64, gemm's overwriting product (`read_dst = false`) reads none of its destination:
/// gemm 0.19.0 (pinned for this) then scales the old value by zero, and every one of its x86
/// kernels, vector products and small-matrix paths skips the load when the scale is zero
/// (`product_overwrites_without_reading_what_was_there` checks the paths this machine's CPU
/// takes, over NaN-filled destinations of many shapes). gemm gets a raw pointer to the cells;
/// they are viewed as floats only once written. Elsewhere the cells are zeroed first.
///
/// Panics if `dst` does not hold exactly the result (an internal invariant).
pub(crate) fn matmul_uninit<'d>(
    dst: &'d mut [MaybeUninit<f32>],
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
) -> &'d mut [f32] {
    let (rows, cols) = (lhs.rows, rhs.cols);
    assert_eq!(lhs.cols, rhs.rows, "matmul: inner dimensions differ");
    assert_eq!(dst.len(), rows * cols, "matmul: destination length differs");
    if !cfg!(target_arch = "x86_64") || lhs.cols == 0 {
        for cell in dst.iter_mut() {
            cell.write(0.0);
        }
    }
    if rows > 0 && cols > 0 && lhs.cols > 0 {
        // SAFETY: `dst` holds exactly the row-major result, is uniquely borrowed (so it
        // overlaps neither operand), and is not read: gemm overwrites (see above).
        unsafe {
            gemm_into(
                dst.as_mut_ptr().cast::<f32>(),
                (cols, 1),
                lhs,
                rhs,
                false,
                Parallelism::None,
            );
        }
    }
    // SAFETY: every cell is now written (by the zero fill or the product), and
    // `MaybeUninit<f32>` has the layout of `f32`.
    unsafe { std::slice::from_raw_parts_mut(dst.as_mut_ptr().cast::<f32>(), dst.len()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `lhs * rhs` by naive loops over the views, row-major.
    fn naive(lhs: MatRef<'_>, rhs: MatRef<'_>) -> Vec<f32> {
        let at = |v: MatRef<'_>, r: usize, c: usize| v.data[r * v.row_stride + c * v.col_stride];
        let mut c = vec![0.0; lhs.rows * rhs.cols];
        for i in 0..lhs.rows {
            for j in 0..rhs.cols {
                c[i * rhs.cols + j] = (0..lhs.cols).map(|p| at(lhs, i, p) * at(rhs, p, j)).sum();
            }
        }
        c
    }

    #[test]
    fn product_matches_naive_loops() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let mut c = vec![f32::NAN; m * n];
        matmul(
            MatMut::row_major(&mut c, m, n),
            MatRef::row_major(&a, m, k),
            MatRef::row_major(&b, k, n),
            Accumulate::Overwrite,
            1,
        );
        for (x, y) in c.iter().zip(naive(
            MatRef::row_major(&a, m, k),
            MatRef::row_major(&b, k, n),
        )) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
    }

    #[test]
    fn product_overwrites_without_reading_what_was_there() {
        // Shapes on every path of gemm (vector products, small horizontal kernels, partial and
        // full tiles, several depth blocks), in every orientation, into NaN-filled cells.
        let sizes = [1, 2, 3, 15, 16, 17, 33, 64, 65, 130];
        for m in sizes {
            for n in sizes {
                for k in [1, 2, 3, 7, 33, 600] {
                    for (transpose_a, transpose_b) in
                        [(false, false), (true, false), (false, true), (true, true)]
                    {
                        let a: Vec<f32> = (0..m * k).map(|i| (i % 13) as f32 * 0.1 - 0.5).collect();
                        let b: Vec<f32> = (0..k * n).map(|i| (i % 11) as f32 * 0.1 - 0.4).collect();
                        let lhs = if transpose_a {
                            MatRef::row_major(&a, k, m).t()
                        } else {
                            MatRef::row_major(&a, m, k)
                        };
                        let rhs = if transpose_b {
                            MatRef::row_major(&b, n, k).t()
                        } else {
                            MatRef::row_major(&b, k, n)
                        };
                        let mut cells = vec![MaybeUninit::new(f32::NAN); m * n];
                        let product = matmul_uninit(&mut cells, lhs, rhs);
                        for (got, want) in product.iter().zip(&naive(lhs, rhs)) {
                            assert!(
                                (got - want).abs() <= 1e-3 * (1.0 + want.abs()),
                                "{m}x{k}x{n} transposes {transpose_a} {transpose_b}: {got} vs {want}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn transposed_views_and_accumulation() {
        // c = 1 + a^T^T * (b^T)^T with a, b stored transposed.
        let (m, k, n) = (4, 6, 2);
        let a: Vec<f32> = (0..m * k).map(|i| i as f32 * 0.5 - 3.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| 1.0 - i as f32 * 0.25).collect();
        let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
        let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        let mut c = vec![1.0; m * n];
        matmul(
            MatMut::col_major(&mut c, m, n),
            MatRef::row_major(&at, k, m).t(),
            MatRef::row_major(&bt, n, k).t(),
            Accumulate::Add,
            2,
        );
        let expected = naive(MatRef::row_major(&a, m, k), MatRef::row_major(&b, k, n));
        for i in 0..m {
            for j in 0..n {
                let (x, y) = (c[j * m + i], expected[i * n + j] + 1.0);
                assert!((x - y).abs() < 1e-4, "{x} vs {y}");
            }
        }
    }

    #[test]
    fn empty_inner_dimension_zeroes_or_keeps() {
        let mut c = vec![5.0; 4];
        let (lhs, rhs) = (MatRef::row_major(&[], 2, 0), MatRef::row_major(&[], 0, 2));
        matmul(
            MatMut::row_major(&mut c, 2, 2),
            lhs,
            rhs,
            Accumulate::Add,
            1,
        );
        assert_eq!(c, vec![5.0; 4]);
        matmul(
            MatMut::row_major(&mut c, 2, 2),
            lhs,
            rhs,
            Accumulate::Overwrite,
            1,
        );
        assert_eq!(c, vec![0.0; 4]);
    }

    #[test]
    fn a_row_range_of_a_plain_or_transposed_view() {
        // a = [[0, 1, 2], [3, 4, 5]]; a^T = [[0, 3], [1, 4], [2, 5]].
        let a: Vec<f32> = (0..6).map(|v| v as f32).collect();
        let identity = [1.0, 0.0, 0.0, 1.0];
        let mut out = vec![0.0; 4];
        // Rows 1..3 of a^T times the 2x2 identity: [[1, 4], [2, 5]].
        matmul(
            MatMut::row_major(&mut out, 2, 2),
            MatRef::row_major(&a, 2, 3).t().rows(1..3),
            MatRef::row_major(&identity, 2, 2),
            Accumulate::Overwrite,
            1,
        );
        assert_eq!(out, vec![1.0, 4.0, 2.0, 5.0]);
        let mut row = vec![0.0; 3];
        matmul(
            MatMut::row_major(&mut row, 1, 3),
            MatRef::row_major(&identity[..2], 1, 2),
            MatRef::row_major(&a, 2, 3).rows(0..2),
            Accumulate::Overwrite,
            1,
        );
        assert_eq!(row, vec![0.0, 1.0, 2.0]);
        assert_eq!(MatRef::row_major(&a, 2, 3).rows(2..2).rows, 0);
    }

    #[test]
    #[should_panic(expected = "overruns")]
    fn overrunning_view_is_refused() {
        let _ = MatRef::row_major(&[0.0; 5], 2, 3);
    }
}
