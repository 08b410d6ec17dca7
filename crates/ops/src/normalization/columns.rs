//! Batch normalization's CPU kernels over a `(rows, C)` matrix, one channel per column: the
//! columns' moments (one pass), the per-column affine map (one pass), and the backward pass
//! (one pass for its column sums, one for the input gradient). Each pass splits the rows over
//! threads when large (see `crate::dense::parallel`); every function here takes `cols > 0`.

use std::mem::MaybeUninit;

use super::sums::{column_sums, ColumnSums};
use crate::dense::{in_row_chunks, write_rows};
use crate::simd::{vectorized, Kernel};

/// The moments of each column over some rows, in the form that combines across parts of a
/// batch (Chan, Golub and LeVeque's pairwise update): the row count, each column's mean and
/// its sum of squared deviations from that mean.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Moments {
    pub rows: f64,
    pub mean: Vec<f64>,
    pub squared_deviations: Vec<f64>,
}

impl Moments {
    /// The moments of the row-major `x` (`rows > 0` rows of `cols`), in one pass: the sums of
    /// `x - k` and `(x - k)²` with `k` the first row, an estimate of the mean, so that the
    /// squared deviations `Σ(x-k)² - (Σ(x-k))² / n` lose little to cancellation.
    pub(super) fn of(x: &[f32], cols: usize) -> Moments {
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
        let mut squared_deviations = Vec::with_capacity(cols);
        for ((&k, s), s2) in shift.iter().zip(sum).zip(sum_sq) {
            mean.push(k as f64 + s / n);
            squared_deviations.push((s2 - s * s / n).max(0.0));
        }
        Moments {
            rows: n,
            mean,
            squared_deviations,
        }
    }

    /// The moments of the rows of `self` and `other` together.
    pub(super) fn merged(self, other: &Moments) -> Moments {
        let rows = self.rows + other.rows;
        let weight = other.rows / rows;
        let cross = self.rows * weight;
        let columns = self.mean.iter().zip(&self.squared_deviations);
        let (mean, squared_deviations) = columns
            .zip(other.mean.iter().zip(&other.squared_deviations))
            .map(|((&mean, &m2), (&other_mean, &other_m2))| {
                let delta = other_mean - mean;
                (mean + delta * weight, m2 + other_m2 + delta * delta * cross)
            })
            .unzip();
        Moments {
            rows,
            mean,
            squared_deviations,
        }
    }

    /// Each column's mean and biased variance (squared deviations over the count; never negative,
    /// as [`Moments::of`] clamps them and merging adds non-negative terms).
    pub(super) fn mean_and_variance(&self) -> (Vec<f32>, Vec<f32>) {
        let mean = self.mean.iter().map(|&m| m as f32).collect();
        let variance = self
            .squared_deviations
            .iter()
            .map(|&m2| (m2 / self.rows) as f32)
            .collect();
        (mean, variance)
    }

    /// The moments as one list of numbers (the count, the means, the squared deviations), for
    /// a meeting of the parts of a batch.
    pub(super) fn to_values(&self) -> Vec<f64> {
        let mut values = Vec::with_capacity(1 + 2 * self.mean.len());
        values.push(self.rows);
        values.extend(&self.mean);
        values.extend(&self.squared_deviations);
        values
    }

    /// The moments [`Moments::to_values`] listed, for `cols` columns; `None` for a list of
    /// another length.
    pub(super) fn from_values(values: &[f64], cols: usize) -> Option<Moments> {
        let (&rows, rest) = values.split_first()?;
        (rest.len() == 2 * cols).then(|| Moments {
            rows,
            mean: rest[..cols].to_vec(),
            squared_deviations: rest[cols..].to_vec(),
        })
    }
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

/// The column sums of `dy` and of `dy · x̂`, where `x̂ = (x - mean) · inv_std`, over the
/// row-major `x` and `dy` (the gradients of beta and gamma): one pass.
pub(super) fn gradient_sums(
    x: &[f32],
    dy: &[f32],
    stats: &ColumnStatistics<'_>,
    cols: usize,
) -> ColumnSums {
    let parts = in_row_chunks(x.len() / cols, cols, |range| {
        let span = range.start * cols..range.end * cols;
        vectorized(GradientSums {
            x: &x[span.clone()],
            dy: &dy[span],
            mean: stats.mean,
            inv_std: stats.inv_std,
            cols,
        })
    });
    ColumnSums::total(parts, cols)
}

/// The input gradient of `y = x · scale + shift` with `stats`, from the row-major `x` and `dy`
/// and the sums of `dy` and `dy · x̂` ([`gradient_sums`]) taken over `rows` rows.
///
/// With the batch's statistics, `dx = scale · (dy - Σdy / rows - x̂ · Σ(dy·x̂) / rows)`; with
/// constants, `dx = scale · dy`. One pass, written as `dy · scale + x · r + q` with per-column
/// `r` and `q`. (For a part of a batch whose statistics were the whole batch's, the sums are
/// the whole batch's, weighted to this part's scale: see `batch_normalization_backward`.)
pub(super) fn input_gradient(
    x: &[f32],
    dy: &[f32],
    stats: &ColumnStatistics<'_>,
    (sums, rows): (&ColumnSums, usize),
    cols: usize,
) -> Vec<f32> {
    if !stats.from_batch {
        return affine(dy, stats.scale, None, &vec![0.0; cols], cols);
    }
    let ColumnSums(sum_dy, sum_dy_xhat) = sums;
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
