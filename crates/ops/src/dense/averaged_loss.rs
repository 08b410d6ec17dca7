//! What every elementwise loss averaged over all its elements shares: the argument checks, the
//! vectorised sum (f32 lanes per block, blocks in f64), the loss-and-gradient pass written once
//! into a fresh buffer, and the gradient alone. A loss supplies one element's value and slope.

use std::marker::PhantomData;
use std::mem::MaybeUninit;

use candle_core::Tensor;

use super::parallel::{in_row_chunks, map_pairs, write_rows};
use crate::check::{expect_f32, expect_same_device};
use crate::error::OpsError;
use crate::simd::{vectorized, Kernel};
use crate::storage::CpuView;

/// One element of a loss averaged over every element.
pub(crate) trait ElementLoss {
    /// The loss of prediction `x` against target `y` (in f32, as Keras computes it) and its
    /// gradient with respect to `x` before the `1/N` of the mean. Callers that use one of the
    /// two leave the other to the optimiser to drop.
    fn element(y: f32, x: f32) -> (f32, f32);

    /// Whether [`element_of_zero_target`](Self::element_of_zero_target) is cheaper than
    /// [`element`](Self::element): the passes only look for all-zero targets when it is.
    const HAS_ZERO_TARGET_FORM: bool = false;

    /// [`element`](Self::element) for a target of exactly 0 (the background of an image), for
    /// losses that have a cheaper form there; the same results bit for bit.
    #[inline(always)]
    fn element_of_zero_target(x: f32) -> (f32, f32) {
        Self::element(0.0, x)
    }
}

/// Elements per parallel unit of the passes (a row of the flattened input).
const UNIT: usize = 1024;

/// Independent accumulators of the sum: enough lanes for the widest vectors.
const LANES: usize = 16;

/// Elements summed in f32 lanes before the lanes are added to the f64 totals: converting every
/// element's loss to f64 made the kernel 2.3 times slower, and 64 f32 additions per lane lose
/// nothing visible in an f32 mean.
const BLOCK: usize = 1024;

/// Checks that `y_true` and the predictions (named `pred_name` in messages of `op`) are f32
/// tensors of one non-empty shape on one device.
pub(crate) fn check_operands(
    op: &'static str,
    pred_name: &'static str,
    y_true: &Tensor,
    y_pred: &Tensor,
) -> candle_core::Result<()> {
    expect_f32(op, "y_true", y_true)?;
    expect_f32(op, pred_name, y_pred)?;
    expect_same_device(op, y_true, y_pred)?;
    if y_true.shape() != y_pred.shape() || y_pred.elem_count() == 0 {
        return Err(OpsError::ShapeMismatch {
            op,
            expected: "the targets and the predictions must have the same, non-empty shape",
            lhs_name: "y_true",
            lhs: y_true.shape().clone(),
            rhs_name: pred_name,
            rhs: y_pred.shape().clone(),
        }
        .into());
    }
    Ok(())
}

/// The mean loss and its gradient with respect to `x` (the predictions, named `pred_name` in
/// messages of `op`) in one pass, the gradient written once into a fresh tensor: for callers
/// that run their own backward pass (the loss's own gradient taken as 1). CPU only.
pub(super) fn loss_and_gradient<E: ElementLoss>(
    op: &'static str,
    pred_name: &'static str,
    y_true: &Tensor,
    x: &Tensor,
) -> candle_core::Result<(Tensor, Tensor)> {
    check_operands(op, pred_name, y_true, x)?;
    let (y_view, x_view) = (
        CpuView::of(op, "y_true", y_true)?,
        CpuView::of(op, pred_name, x)?,
    );
    let (y, x_data) = (y_view.f32()?, x_view.f32()?);
    let n = x_data.len();
    let scale = 1.0 / n as f32;
    // SAFETY: `LossSum` with a gradient writes every cell of its slice.
    let (grad, partial_sums) = unsafe {
        write_rows(n, UNIT, |units, out| {
            let span = units.start * UNIT..units.start * UNIT + out.len();
            vectorized(LossSum::<E> {
                y: &y[span.clone()],
                x: &x_data[span],
                grad: Some((out, scale)),
                element: PhantomData,
            })
        })
    };
    Ok((
        Tensor::new(mean(&partial_sums, n), x.device())?,
        Tensor::from_vec(grad, x.shape(), x.device())?,
    ))
}

/// The mean loss of `y` and `x` (slices of one length).
pub(crate) fn mean_loss<E: ElementLoss>(y: &[f32], x: &[f32]) -> f32 {
    let n = x.len();
    let partial_sums = in_row_chunks(n.div_ceil(UNIT), UNIT, |units| {
        let span = units.start * UNIT..n.min(units.end * UNIT);
        vectorized(LossSum::<E> {
            y: &y[span.clone()],
            x: &x[span],
            grad: None,
            element: PhantomData,
        })
    });
    mean(&partial_sums, n)
}

/// Every element's gradient times `scale` (slices of one length).
pub(crate) fn scaled_gradient<E: ElementLoss>(y: &[f32], x: &[f32], scale: f32) -> Vec<f32> {
    map_pairs(y, x, |y, x| E::element(y, x).1 * scale)
}

/// The mean of `n` elements from the chunks' partial sums, rounded to f32.
fn mean(partial_sums: &[f64], n: usize) -> f32 {
    (partial_sums.iter().sum::<f64>() / n as f64) as f32
}

/// The sum of the per-element losses of `y` and `x` and, with `grad = Some((out, scale))`,
/// every element's gradient times `scale` written into `out`. The sum runs in [`LANES`]
/// independent f32 accumulators over blocks of [`BLOCK`] elements, so the loop vectorises, and
/// the blocks' sums add up in f64.
struct LossSum<'a, E> {
    y: &'a [f32],
    x: &'a [f32],
    grad: Option<(&'a mut [MaybeUninit<f32>], f32)>,
    element: PhantomData<fn() -> E>,
}

impl<E: ElementLoss> Kernel for LossSum<'_, E> {
    type Output = f64;

    #[inline(always)]
    fn run(self) -> f64 {
        let Self { y, x, grad, .. } = self;
        let mut lanes = [0.0f64; LANES];
        let whole = x.len() / LANES * LANES;
        let blocks = y[..whole].chunks(BLOCK).zip(x[..whole].chunks(BLOCK));
        match grad {
            None => {
                for (y, x) in blocks {
                    let mut block_lanes = [0.0f32; LANES];
                    for (y, x) in y.chunks_exact(LANES).zip(x.chunks_exact(LANES)) {
                        each_element::<E>(y, x, |lane, (loss, _)| block_lanes[lane] += loss);
                    }
                    add_block(&mut lanes, block_lanes);
                }
            }
            Some((out, scale)) => {
                let (head, tail) = out.split_at_mut(whole);
                for ((y, x), out) in blocks.zip(head.chunks_mut(BLOCK)) {
                    let mut block_lanes = [0.0f32; LANES];
                    let rows = y.chunks_exact(LANES).zip(x.chunks_exact(LANES));
                    for ((y, x), out) in rows.zip(out.chunks_exact_mut(LANES)) {
                        each_element::<E>(y, x, |lane, (loss, slope)| {
                            block_lanes[lane] += loss;
                            out[lane].write(slope * scale);
                        });
                    }
                    add_block(&mut lanes, block_lanes);
                }
                for ((&y, &x), out) in y[whole..].iter().zip(&x[whole..]).zip(tail) {
                    out.write(E::element(y, x).1 * scale);
                }
            }
        }
        let tail: f64 = y[whole..]
            .iter()
            .zip(&x[whole..])
            .map(|(&y, &x)| E::element(y, x).0 as f64)
            .sum();
        lanes.iter().sum::<f64>() + tail
    }
}

/// `each(lane, (loss, slope))` for the [`LANES`] elements of `y` and `x`, in the loss's cheaper
/// zero-target form when it has one and every target is 0 (or -0), as most of an image's
/// background is.
#[inline(always)]
fn each_element<E: ElementLoss>(y: &[f32], x: &[f32], mut each: impl FnMut(usize, (f32, f32))) {
    let (y, x) = (&y[..LANES], &x[..LANES]);
    if E::HAS_ZERO_TARGET_FORM && y.iter().fold(true, |all, &t| all & (t == 0.0)) {
        for (lane, &x) in x.iter().enumerate() {
            each(lane, E::element_of_zero_target(x));
        }
    } else {
        for (lane, (&y, &x)) in y.iter().zip(x).enumerate() {
            each(lane, E::element(y, x));
        }
    }
}

/// Adds a block's f32 lane sums to the f64 lane totals.
#[inline(always)]
fn add_block(totals: &mut [f64; LANES], block: [f32; LANES]) {
    for (total, block) in totals.iter_mut().zip(block) {
        *total += block as f64;
    }
}
