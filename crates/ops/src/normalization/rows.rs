//! Layer normalization's CPU kernels over a `(rows, cols)` matrix, each row one sample's
//! normalized values: the forward pass (per row, its moments then the output, in cache) and
//! the backward pass (per row, the input gradient, and the column sums for gamma and beta).
//! Rows are split over threads when large; every function here takes `cols > 0`.

use std::mem::MaybeUninit;

use super::sums::{column_sums, lane_sum, ColumnSums};
use crate::dense::{in_row_chunks, write_rows};
use crate::simd::{vectorized, Kernel};

/// What [`forward`] returns: the output, and each row's mean and `1 / sqrt(var + epsilon)`.
pub(super) struct RowsNormalized {
    pub y: Vec<f32>,
    pub mean: Vec<f32>,
    pub inv_std: Vec<f32>,
}

/// `(x - mean) · inv_std · gamma + beta` row by row, the mean and (biased) variance taken over
/// each row; `gamma` and `beta` are `cols` long (ones and zeros for none).
pub(super) fn forward(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    epsilon: f32,
    cols: usize,
) -> RowsNormalized {
    // SAFETY: `x` holds whole rows and `ForwardRows` writes every cell of its rows.
    let (y, parts) = unsafe {
        write_rows(x.len(), cols, |rows, out| {
            vectorized(ForwardRows {
                x: &x[rows.start * cols..rows.end * cols],
                gamma,
                beta,
                epsilon,
                out,
                cols,
            })
        })
    };
    let (mut mean, mut inv_std) = (Vec::new(), Vec::new());
    for (m, s) in parts {
        mean.extend(m);
        inv_std.extend(s);
    }
    RowsNormalized { y, mean, inv_std }
}

/// [`forward`] over some whole rows; returns their means and inverse deviations.
struct ForwardRows<'a> {
    x: &'a [f32],
    gamma: &'a [f32],
    beta: &'a [f32],
    epsilon: f32,
    out: &'a mut [MaybeUninit<f32>],
    cols: usize,
}

impl Kernel for ForwardRows<'_> {
    type Output = (Vec<f32>, Vec<f32>);

    #[inline(always)]
    fn run(self) -> (Vec<f32>, Vec<f32>) {
        let Self {
            x,
            gamma,
            beta,
            epsilon,
            out,
            cols,
        } = self;
        let n = cols as f32;
        let rows = x.len() / cols;
        let (mut means, mut inv_stds) = (Vec::with_capacity(rows), Vec::with_capacity(rows));
        for (x_row, out_row) in x.chunks_exact(cols).zip(out.chunks_exact_mut(cols)) {
            // Two passes over the row, which stays in cache: the variance from the deviations.
            let mean = lane_sum(x_row, x_row, |v, _| v) / n;
            let variance = lane_sum(x_row, x_row, |v, _| (v - mean) * (v - mean)) / n;
            let inv_std = 1.0 / (variance + epsilon).sqrt();
            let cells = out_row.iter_mut().zip(x_row).zip(gamma).zip(beta);
            for (((o, &v), &g), &b) in cells {
                o.write((v - mean) * inv_std * g + b);
            }
            means.push(mean);
            inv_stds.push(inv_std);
        }
        (means, inv_stds)
    }
}

/// What [`backward`] returns: the input gradient (when asked), and the column sums of
/// `dy · x̂` and of `dy` (the gradients of gamma and beta).
pub(super) struct RowGradients {
    pub x: Option<Vec<f32>>,
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

/// The backward pass of [`forward`] given `x`, the output gradient `dy`, the rows' `mean` and
/// `inv_std` and `gamma` (ones for none): per row, with `g = dy · gamma` and
/// `x̂ = (x - mean) · inv_std`, `dx = inv_std · (g - mean(g) - x̂ · mean(g · x̂))`.
pub(super) fn backward(
    x: &[f32],
    dy: &[f32],
    (mean, inv_std): (&[f32], &[f32]),
    gamma: &[f32],
    cols: usize,
    want_x: bool,
) -> RowGradients {
    let task = |rows: std::ops::Range<usize>, out: Option<&mut [MaybeUninit<f32>]>| {
        let span = rows.start * cols..rows.end * cols;
        vectorized(BackwardRows {
            x: &x[span.clone()],
            dy: &dy[span],
            mean: &mean[rows.clone()],
            inv_std: &inv_std[rows],
            gamma,
            out,
            cols,
        })
    };
    let (grad_x, parts) = if want_x {
        // SAFETY: `x` holds whole rows and `BackwardRows` writes every cell of its output.
        let (grad_x, parts) =
            unsafe { write_rows(x.len(), cols, |rows, out| task(rows, Some(out))) };
        (Some(grad_x), parts)
    } else {
        (
            None,
            in_row_chunks(x.len() / cols, cols, |rows| task(rows, None)),
        )
    };
    let ColumnSums(grad_gamma, grad_beta) = ColumnSums::total(parts, cols);
    let narrow = |sums: Vec<f64>| sums.into_iter().map(|s| s as f32).collect();
    RowGradients {
        x: grad_x,
        gamma: narrow(grad_gamma),
        beta: narrow(grad_beta),
    }
}

/// [`backward`] over some whole rows: writes `dx` into `out` (when given) and returns the
/// column sums of `dy · x̂` and `dy`.
struct BackwardRows<'a> {
    x: &'a [f32],
    dy: &'a [f32],
    mean: &'a [f32],
    inv_std: &'a [f32],
    gamma: &'a [f32],
    out: Option<&'a mut [MaybeUninit<f32>]>,
    cols: usize,
}

impl Kernel for BackwardRows<'_> {
    type Output = ColumnSums;

    #[inline(always)]
    fn run(self) -> ColumnSums {
        let Self {
            x,
            dy,
            mean,
            inv_std,
            gamma,
            mut out,
            cols,
        } = self;
        let n = cols as f32;
        let mut g = vec![0.0f32; cols];
        column_sums(x.len() / cols, cols, |row, sum_dy_xhat, sum_dy| {
            let span = row * cols..(row + 1) * cols;
            let (x_row, dy_row) = (&x[span.clone()], &dy[span.clone()]);
            let (m, s) = (mean[row], inv_std[row]);
            let cells = sum_dy_xhat
                .iter_mut()
                .zip(sum_dy.iter_mut())
                .zip(x_row)
                .zip(dy_row);
            for (((a, b), &v), &d) in cells {
                *a += d * ((v - m) * s);
                *b += d;
            }
            let Some(out) = out.as_deref_mut() else {
                return;
            };
            for ((gi, &d), &w) in g.iter_mut().zip(dy_row).zip(gamma) {
                *gi = d * w;
            }
            let mean_g = lane_sum(&g, &g, |u, _| u) / n;
            let mean_g_xhat = lane_sum(&g, x_row, |u, v| u * (v - m)) * s / n;
            for ((o, &gi), &v) in out[span].iter_mut().zip(&g).zip(x_row) {
                o.write(s * (gi - mean_g - (v - m) * s * mean_g_xhat));
            }
        })
    }
}
