//! Categorical cross-entropy of `softmax(logits)` computed from the logits, with its gradient
//! with respect to the logits, in one pass over each row: what Keras does on TensorFlow when the
//! predictions come from a softmax (`keras/src/backend/tensorflow/nn.py`: the cross-entropies
//! read the softmax's `_keras_logits` and call `tf.nn.softmax_cross_entropy_with_logits` or its
//! sparse form).

use std::mem::MaybeUninit;

use candle_core::Tensor;

use super::parallel::write_rows;
use crate::check::{expect_f32, expect_same_device};
use crate::error::OpsError;
use crate::math::{exp, ln};
use crate::storage::CpuView;

/// Name used in messages.
const OP: &str = "softmax_cross_entropy";

/// The targets of each row: weights over the classes, or one class index.
enum Targets<'a> {
    Weights(&'a [f32]),
    Classes(&'a [u32]),
}

/// The mean over rows (every axis but the last) of `logsumexp(z) - Σ y·z`, the cross-entropy of
/// `softmax(z)` against the targets `y`, and its gradient with respect to the logits `z`,
/// `(softmax(z)·Σy - y) / rows`, for callers that run their own backward pass. `y_true` has the
/// shape of `logits`. CPU only.
pub fn softmax_cross_entropy_with_gradient(
    y_true: &Tensor,
    logits: &Tensor,
) -> candle_core::Result<(Tensor, Tensor)> {
    expect_f32(OP, "y_true", y_true)?;
    expect_same_device(OP, y_true, logits)?;
    if y_true.shape() != logits.shape() {
        return Err(OpsError::ShapeMismatch {
            op: OP,
            expected: "the targets and the logits must have the same shape",
            lhs_name: "y_true",
            lhs: y_true.shape().clone(),
            rhs_name: "logits",
            rhs: logits.shape().clone(),
        }
        .into());
    }
    let view = CpuView::of(OP, "y_true", y_true)?;
    let targets = view.f32()?;
    with_targets(Targets::Weights(&targets), logits)
}

/// [`softmax_cross_entropy_with_gradient`] against one class per row, `labels[row]` (each below
/// the number of classes). CPU only.
pub fn sparse_softmax_cross_entropy_with_gradient(
    labels: &[u32],
    logits: &Tensor,
) -> candle_core::Result<(Tensor, Tensor)> {
    let classes = logits.dims().last().copied().unwrap_or(0);
    let rows = logits.elem_count().checked_div(classes).unwrap_or(0);
    if labels.len() != rows || labels.iter().any(|&l| l as usize >= classes) {
        return Err(candle_core::Error::Msg(format!(
            "{OP}: {} labels below {classes} expected for logits of shape {:?}",
            rows,
            logits.dims()
        )));
    }
    with_targets(Targets::Classes(labels), logits)
}

fn with_targets(targets: Targets<'_>, logits: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
    expect_f32(OP, "logits", logits)?;
    let classes = logits.dims().last().copied().unwrap_or(0);
    if classes == 0 || logits.elem_count() == 0 {
        return Err(candle_core::Error::Msg(format!(
            "{OP}: logits of shape {:?} have no class or no row",
            logits.dims()
        )));
    }
    let view = CpuView::of(OP, "logits", logits)?;
    let z = view.f32()?;
    let rows = z.len() / classes;
    let scale = 1.0 / rows as f32;
    // SAFETY: `rows_loss` writes every cell of the rows it is given.
    let (grad, sums) = unsafe {
        write_rows(z.len(), classes, |range, out| {
            rows_loss(&targets, &z, classes, range, out, scale)
        })
    };
    let total: f64 = sums.iter().sum();
    Ok((
        Tensor::new((total / rows as f64) as f32, logits.device())?,
        Tensor::from_vec(grad, logits.shape(), logits.device())?,
    ))
}

/// The summed loss of rows `range`, writing their gradient (scaled by `scale`) into `out`.
fn rows_loss(
    targets: &Targets<'_>,
    z: &[f32],
    classes: usize,
    range: std::ops::Range<usize>,
    out: &mut [MaybeUninit<f32>],
    scale: f32,
) -> f64 {
    let mut total = 0.0f64;
    for (row, out_row) in range.zip(out.chunks_exact_mut(classes)) {
        let z_row = &z[row * classes..(row + 1) * classes];
        let max = z_row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let sum: f32 = z_row.iter().map(|&v| exp(v - max)).sum();
        let log_sum = ln(sum);
        // Σy and Σ y·(z - max), over the row's targets.
        let (weight, dot) = match targets {
            Targets::Weights(y) => {
                let y_row = &y[row * classes..(row + 1) * classes];
                y_row
                    .iter()
                    .zip(z_row)
                    .fold((0.0f32, 0.0f32), |(w, d), (&y, &v)| {
                        (w + y, d + y * (v - max))
                    })
            }
            Targets::Classes(labels) => (1.0, z_row[labels[row] as usize] - max),
        };
        total += (weight * log_sum - dot) as f64;
        for (j, (cell, &v)) in out_row.iter_mut().zip(z_row).enumerate() {
            let target = match targets {
                Targets::Weights(y) => y[row * classes + j],
                Targets::Classes(labels) => f32::from(labels[row] as usize == j),
            };
            cell.write((exp(v - max - log_sum) * weight - target) * scale);
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The loss and gradient by naive loops in f64.
    fn naive(y: &[f64], z: &[f64], classes: usize) -> (f64, Vec<f64>) {
        let rows = z.len() / classes;
        let (mut loss, mut grad) = (0.0, vec![0.0; z.len()]);
        for r in 0..rows {
            let zr = &z[r * classes..(r + 1) * classes];
            let yr = &y[r * classes..(r + 1) * classes];
            let lse = zr.iter().map(|v| v.exp()).sum::<f64>().ln();
            let weight: f64 = yr.iter().sum();
            loss += yr.iter().zip(zr).map(|(y, z)| y * (lse - z)).sum::<f64>();
            for j in 0..classes {
                grad[r * classes + j] = ((zr[j] - lse).exp() * weight - yr[j]) / rows as f64;
            }
        }
        (loss / rows as f64, grad)
    }

    fn close(got: &[f32], want: &[f64]) {
        for (g, w) in got.iter().zip(want) {
            assert!(
                (*g as f64 - w).abs() < 1e-5 * (1.0 + w.abs()),
                "{got:?} vs {want:?}"
            );
        }
    }

    #[test]
    fn dense_and_sparse_targets_match_naive_loops() -> candle_core::Result<()> {
        let z: Vec<f32> = (0..12)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.7)
            .collect();
        let labels = [2u32, 0, 3];
        let mut onehot = [0f32; 12];
        for (r, &l) in labels.iter().enumerate() {
            onehot[r * 4 + l as usize] = 1.0;
        }
        let logits = Tensor::from_slice(&z, (3, 4), &Device::Cpu)?;
        let z64: Vec<f64> = z.iter().map(|&v| v as f64).collect();
        let (want_loss, want_grad) = naive(
            &onehot.iter().map(|&v| v as f64).collect::<Vec<_>>(),
            &z64,
            4,
        );
        let (loss, grad) = sparse_softmax_cross_entropy_with_gradient(&labels, &logits)?;
        close(&[loss.to_scalar::<f32>()?], &[want_loss]);
        close(&grad.flatten_all()?.to_vec1()?, &want_grad);
        // Soft targets that do not sum to 1.
        let soft: Vec<f32> = (0..12).map(|i| (i % 5) as f32 * 0.1).collect();
        let (want_loss, want_grad) =
            naive(&soft.iter().map(|&v| v as f64).collect::<Vec<_>>(), &z64, 4);
        let y = Tensor::from_slice(&soft, (3, 4), &Device::Cpu)?;
        let (loss, grad) = softmax_cross_entropy_with_gradient(&y, &logits)?;
        close(&[loss.to_scalar::<f32>()?], &[want_loss]);
        close(&grad.flatten_all()?.to_vec1()?, &want_grad);
        Ok(())
    }

    #[test]
    fn huge_logits_stay_finite_and_bad_labels_are_errors() -> candle_core::Result<()> {
        let logits = Tensor::new(&[[1000f32, -1000.0, 0.0]], &Device::Cpu)?;
        let (loss, grad) = sparse_softmax_cross_entropy_with_gradient(&[1], &logits)?;
        // -log softmax(z)[1] = 2000 exactly in the limit.
        assert!((loss.to_scalar::<f32>()? - 2000.0).abs() < 1e-2);
        assert!(grad
            .flatten_all()?
            .to_vec1::<f32>()?
            .iter()
            .all(|g| g.is_finite()));
        assert!(sparse_softmax_cross_entropy_with_gradient(&[3], &logits).is_err());
        assert!(sparse_softmax_cross_entropy_with_gradient(&[0, 1], &logits).is_err());
        let y = Tensor::new(&[[1f32, 0.0]], &Device::Cpu)?;
        assert!(softmax_cross_entropy_with_gradient(&y, &logits).is_err());
        Ok(())
    }
}
