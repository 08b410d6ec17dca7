//! Batch normalization's CPU kernels over a `(rows, C)` matrix, one channel per column: the
//! columns' moments (one pass), the per-column affine map (one pass), and the backward pass
//! (one pass for its column sums, one for the input gradient). Each pass splits the rows over
//! threads when large (see `crate::dense::parallel`); every function here takes `cols > 0`.

use std::mem::MaybeUninit;

use super::sums::{column_sums, ColumnSums};
use crate::dense::{in_row_chunks, write_rows};
use crate::simd::{vectorized, Kernel};

/// The mean and biased variance of each column of the row-major `x` (`rows > 0` rows of `cols`).
///
/// One pass: the sums of `x - k` and `(x - k)²` with `k` the first row, an estimate of the
/// mean, so that the variance `E[(x-k)²] - E[x-k]²` loses little to cancellation.
pub(super) fn moments(x: &[f32], cols: usize) -> (Vec<f32>, Vec<f32>) {
    let rows = x.len() / cols;
    let shift = &x[..cols];
    let parts = in_row_chunks(rows, cols, |range| {
        vectorized(ShiftedSums {
            x: &x[range.start * cols..range.end * cols],
            shift,
            cols,
        })
    });
    let ColumnSums(sum, sum_sq) = ColumnSums::total(parts, cols);
    let n = rows as f64;
    let mut mean = Vec::with_capacity(cols);
    let mut variance = Vec::with_capacity(cols);
    for ((&k, s), s2) in shift.iter().zip(sum).zip(sum_sq) {
        let offset = s / n;
        mean.push((k as f64 + offset) as f32);
        variance.push((s2 / n - offset * offset).max(0.0) as f32);
    }
    (mean, variance)
}

/// Column sums of `x - shift` and of its square over some whole rows.
struct ShiftedSums<'a> {
    x: &'a [f32],
    shift: &'a [f32],
    cols: usize,
}

impl Kernel for ShiftedSums<'_> {
    type Output = ColumnSums;

    #[inline(always)]
    fn run(self) -> ColumnSums {
        let Self { x, shift, cols } = self;
        column_sums(x.len() / cols, cols, |row, sum, sum_sq| {
            let values = &x[row * cols..(row + 1) * cols];
            let cells = sum.iter_mut().zip(sum_sq.iter_mut()).zip(values).zip(shift);
            for (((s, s2), &v), &k) in cells {
                let d = v - k;
                *s += d;
                *s2 += d * d;
            }
        })
    }
}

/// `x · scale + shift` column by column, into a fresh buffer.
pub(super) fn scale_shift(x: &[f32], scale: &[f32], shift: &[f32], cols: usize) -> Vec<f32> {
    affine(x, scale, None, shift, cols)
}

/// `u · a + v · b + c` column by column (`v · b` left out for no `v`), into a fresh buffer
/// written once, split over threads when large.
fn affine(u: &[f32], a: &[f32], v: Option<(&[f32], &[f32])>, c: &[f32], cols: usize) -> Vec<f32> {
    // SAFETY: `u` (and `v`) hold whole rows, and `AffineRows` writes every cell of its rows.
    let (out, _) = unsafe {
        write_rows(u.len(), cols, |rows, out| {
            let span = rows.start * cols..rows.end * cols;
            vectorized(AffineRows {
                u: &u[span.clone()],
                a,
                v: v.map(|(v, b)| (&v[span], b)),
                c,
                out,
                cols,
            })
        })
    };
    out
}

/// [`affine`] over some whole rows.
struct AffineRows<'a> {
    u: &'a [f32],
    a: &'a [f32],
    v: Option<(&'a [f32], &'a [f32])>,
    c: &'a [f32],
    out: &'a mut [MaybeUninit<f32>],
    cols: usize,
}

impl Kernel for AffineRows<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Self {
            u,
            a,
            v,
            c,
            out,
            cols,
        } = self;
        let rows = out.chunks_exact_mut(cols).zip(u.chunks_exact(cols));
        match v {
            None => {
                for (out_row, u_row) in rows {
                    let cells = out_row.iter_mut().zip(u_row).zip(a).zip(c);
                    for (((o, &u), &a), &c) in cells {
                        o.write(u * a + c);
                    }
                }
            }
            Some((v, b)) => {
                for ((out_row, u_row), v_row) in rows.zip(v.chunks_exact(cols)) {
                    let cells = out_row
                        .iter_mut()
                        .zip(u_row)
                        .zip(a)
                        .zip(v_row)
                        .zip(b)
                        .zip(c);
                    for (((((o, &u), &a), &v), &b), &c) in cells {
                        o.write(u * a + v * b + c);
                    }
                }
            }
        }
    }
}

/// What [`backward`] returns: the input gradient (when asked) and the column sums of `dy` and
/// of `dy · x̂`, where `x̂ = (x - mean) · inv_std` (the gradients of beta and gamma).
pub(super) struct ColumnGradients {
    pub x: Option<Vec<f32>>,
    pub sum_dy: Vec<f32>,
    pub sum_dy_xhat: Vec<f32>,
}

/// What a batch normalization's forward pass computed its output with, per column:
/// `y = (x - mean) · inv_std · gamma + beta = x · scale + shift`.
pub(super) struct ColumnStatistics<'a> {
    pub mean: &'a [f32],
    pub inv_std: &'a [f32],
    /// `gamma · inv_std` (just `inv_std` without a gamma).
    pub scale: &'a [f32],
    /// Whether `mean` and `inv_std` are the batch's own (training), so that the gradient flows
    /// through them too, or constants (the moving statistics, in inference).
    pub from_batch: bool,
}

/// The backward pass of `y = x · scale + shift` with `stats` from the row-major `x` and `dy`.
///
/// With the batch's statistics, `dx = scale · (dy - mean(dy) - x̂ · mean(dy · x̂))` (means over
/// the rows); with constants, `dx = scale · dy`. One pass for the column sums, then (if
/// `want_x`) one for `dx`, written as `dy · scale + x · r + q` with per-column `r` and `q`.
pub(super) fn backward(
    x: &[f32],
    dy: &[f32],
    stats: &ColumnStatistics<'_>,
    cols: usize,
    want_x: bool,
) -> ColumnGradients {
    let rows = x.len() / cols;
    let parts = in_row_chunks(rows, cols, |range| {
        let span = range.start * cols..range.end * cols;
        vectorized(GradientSums {
            x: &x[span.clone()],
            dy: &dy[span],
            mean: stats.mean,
            inv_std: stats.inv_std,
            cols,
        })
    });
    let ColumnSums(sum_dy, sum_dy_xhat) = ColumnSums::total(parts, cols);
    let grad_x = want_x.then(|| {
        if !stats.from_batch {
            return affine(dy, stats.scale, None, &vec![0.0; cols], cols);
        }
        let n = rows as f64;
        let (mut r, mut q) = (Vec::with_capacity(cols), Vec::with_capacity(cols));
        for c in 0..cols {
            let (scale, inv) = (stats.scale[c] as f64, stats.inv_std[c] as f64);
            // -scale · x̂ · mean(dy·x̂) = x · r - mean · r, with r = -scale · inv · mean(dy·x̂).
            let rc = -scale * inv * sum_dy_xhat[c] / n;
            r.push(rc as f32);
            q.push((-scale * sum_dy[c] / n - rc * stats.mean[c] as f64) as f32);
        }
        affine(dy, stats.scale, Some((x, &r)), &q, cols)
    });
    let narrow = |sums: Vec<f64>| sums.into_iter().map(|s| s as f32).collect();
    ColumnGradients {
        x: grad_x,
        sum_dy: narrow(sum_dy),
        sum_dy_xhat: narrow(sum_dy_xhat),
    }
}

/// Column sums of `dy` and `dy · (x - mean) · inv_std` over some whole rows.
struct GradientSums<'a> {
    x: &'a [f32],
    dy: &'a [f32],
    mean: &'a [f32],
    inv_std: &'a [f32],
    cols: usize,
}

impl Kernel for GradientSums<'_> {
    type Output = ColumnSums;

    #[inline(always)]
    fn run(self) -> ColumnSums {
        let Self {
            x,
            dy,
            mean,
            inv_std,
            cols,
        } = self;
        column_sums(x.len() / cols, cols, |row, sum_dy, sum_dy_xhat| {
            let span = row * cols..(row + 1) * cols;
            let cells = sum_dy
                .iter_mut()
                .zip(sum_dy_xhat.iter_mut())
                .zip(&x[span.clone()])
                .zip(&dy[span])
                .zip(mean)
                .zip(inv_std);
            for (((((s, s2), &v), &d), &m), &inv) in cells {
                *s += d;
                *s2 += d * ((v - m) * inv);
            }
        })
    }
}
