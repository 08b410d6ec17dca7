//! The matrix products of a Dense layer's forward and backward passes, outside candle's graph,
//! split over threads in one fork-join.
//!
//! candle's CPU matmul hands the whole product to gemm's own threading, which forks and joins
//! for every block of the inner dimension; on a small machine each hand-off costs a few
//! microseconds of context switches, a noticeable share of a 50-100 us product. Here a large
//! product is cut into one band of result rows per thread, each a single-threaded gemm.

use std::mem::MaybeUninit;

use candle_core::Tensor;

use crate::check::{expect_f32_rank, expect_same_device};
use crate::error::OpsError;
use crate::fork_join::{caller_and_pool, worker_threads};
use crate::matmul::{matmul_uninit, MatRef};
use crate::storage::CpuView;

/// Name used in messages.
const OP: &str = "matmul_2d";

/// Products with fewer multiply-adds than this run on the calling thread.
const PARALLEL_MIN_MACS: usize = 1 << 20;

/// `a · b` for 2-D f32 CPU tensors, reading `a` as `aᵀ` when `transpose_a` and `b` as `bᵀ`
/// when `transpose_b` (no copy for the transposes), without recording a candle graph: the
/// result tracks no gradient. For products whose operands need none, such as a Dense layer's
/// own backward pass or inference.
pub fn matmul_2d(
    a: &Tensor,
    transpose_a: bool,
    b: &Tensor,
    transpose_b: bool,
) -> candle_core::Result<Tensor> {
    let a_dims = expect_f32_rank(OP, "a", a, 2)?;
    let b_dims = expect_f32_rank(OP, "b", b, 2)?;
    expect_same_device(OP, a, b)?;
    let (m, k) = oriented(a_dims, transpose_a);
    let (k_b, n) = oriented(b_dims, transpose_b);
    if k != k_b {
        return Err(OpsError::ShapeMismatch {
            op: OP,
            expected: "the inner dimensions of a and b (after the transposes asked for) to agree",
            lhs_name: "a",
            lhs: a.shape().clone(),
            rhs_name: "b",
            rhs: b.shape().clone(),
        }
        .into());
    }
    let (a_view, b_view) = (CpuView::of(OP, "a", a)?, CpuView::of(OP, "b", b)?);
    let (a_data, b_data) = (a_view.f32()?, b_view.f32()?);
    let lhs = view(&a_data, a_dims, transpose_a);
    let rhs = view(&b_data, b_dims, transpose_b);
    let mut out: Vec<f32> = Vec::with_capacity(m * n);
    let cells = &mut out.spare_capacity_mut()[..m * n];
    let threads = if m * n * k >= PARALLEL_MIN_MACS {
        worker_threads().min(m)
    } else {
        1
    };
    if threads <= 1 {
        matmul_uninit(cells, lhs, rhs);
    } else {
        let band = m.div_ceil(threads);
        let parts = cells.chunks_mut(band * n).enumerate().collect();
        caller_and_pool(
            parts,
            |(index, rows_out): (usize, &mut [MaybeUninit<f32>])| {
                let first = index * band;
                matmul_uninit(rows_out, lhs.rows(first..first + rows_out.len() / n), rhs);
            },
        );
    }
    // SAFETY: `matmul_uninit` wrote every cell of the bands, which cover `0..m * n`.
    unsafe { out.set_len(m * n) };
    Tensor::from_vec(out, (m, n), a.device())
}

/// (rows, cols) of a 2-D operand as the product reads it.
fn oriented(dims: &[usize], transpose: bool) -> (usize, usize) {
    if transpose {
        (dims[1], dims[0])
    } else {
        (dims[0], dims[1])
    }
}

/// The row-major matrix of `dims` in `data`, transposed when asked.
fn view<'a>(data: &'a [f32], dims: &[usize], transpose: bool) -> MatRef<'a> {
    let matrix = MatRef::row_major(data, dims[0], dims[1]);
    if transpose {
        matrix.t()
    } else {
        matrix
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_close, random_tensor, values, Lcg};
    use candle_core::{DType, Device};

    /// `a · b` of row-major `m x k` and `k x n` by naive loops in f64.
    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k)
                    .map(|p| a[i * k + p] as f64 * b[p * n + j] as f64)
                    .sum();
            }
        }
        c
    }

    /// The row-major transpose of an `rows x cols` matrix.
    fn transposed(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        (0..cols * rows)
            .map(|i| data[(i % rows) * cols + i / rows])
            .collect()
    }

    #[test]
    fn every_orientation_matches_naive_loops_small_and_split() {
        let mut rng = Lcg::new(43);
        // The last two shapes are large enough to be split over threads.
        for (m, k, n) in [
            (1, 1, 1),
            (3, 5, 2),
            (7, 1, 4),
            (256, 784, 49),
            (784, 256, 49),
        ] {
            let a = values(&random_tensor(&mut rng, &[m, k]));
            let b = values(&random_tensor(&mut rng, &[k, n]));
            let want = naive(&a, &b, m, k, n);
            for (transpose_a, transpose_b) in
                [(false, false), (true, false), (false, true), (true, true)]
            {
                let stored_a = if transpose_a {
                    transposed(&a, m, k)
                } else {
                    a.clone()
                };
                let stored_b = if transpose_b {
                    transposed(&b, k, n)
                } else {
                    b.clone()
                };
                let a_dims = if transpose_a { [k, m] } else { [m, k] };
                let b_dims = if transpose_b { [n, k] } else { [k, n] };
                let product = matmul_2d(
                    &Tensor::from_vec(stored_a, &a_dims, &Device::Cpu).unwrap(),
                    transpose_a,
                    &Tensor::from_vec(stored_b, &b_dims, &Device::Cpu).unwrap(),
                    transpose_b,
                )
                .unwrap();
                assert_eq!(product.dims(), &[m, n]);
                let what = format!("{m}x{k}x{n} transposes {transpose_a} {transpose_b}");
                assert_close(&what, &values(&product), &want, 1e-4);
            }
        }
    }

    #[test]
    fn shapes_ranks_and_dtypes_are_checked() {
        let zeros = |dims: &[usize], dtype| Tensor::zeros(dims, dtype, &Device::Cpu).unwrap();
        let (a, b) = (zeros(&[2, 3], DType::F32), zeros(&[2, 3], DType::F32));
        let message = matmul_2d(&a, false, &b, false).unwrap_err().to_string();
        assert!(message.contains("inner dimensions"), "{message}");
        assert!(matmul_2d(&a, false, &b, true).is_ok());
        assert!(matmul_2d(&zeros(&[6], DType::F32), false, &b, false).is_err());
        assert!(matmul_2d(&a, false, &zeros(&[3, 2], DType::U32), false).is_err());
    }
}
