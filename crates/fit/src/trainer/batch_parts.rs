//! A batch cut into parts that run on separate threads, and the parts' results put back
//! together.
//!
//! Splitting each kernel of a training step over the threads costs a fork-join per kernel:
//! dozens per step, each a few microseconds of thread wake-ups, for kernels of 20-100 us. Running
//! one part of the batch per thread through the whole forward and backward pass costs one
//! fork-join per step instead, and keeps each part's activations in its own core's cache. It is
//! exact when the loss is a mean over samples ([`Loss::averages_over_samples`]) and no layer
//! mixes the samples of a batch ([`Layer::mixes_samples`]), or each one that does meets the
//! other parts to combine their statistics ([`Layer::meets_other_parts`], batch
//! normalization): the batch's loss is then the size-weighted mean of the parts' losses, and
//! since gradients are linear in the loss, the batch's gradients are the same weighted sums of
//! the parts' gradients. Random draws come from a stream per part, keyed by the part's first
//! row, so they do not depend on the thread.
//!
//! [`Layer::mixes_samples`]: rkeras_layers::Layer::mixes_samples
//! [`Layer::meets_other_parts`]: rkeras_layers::Layer::meets_other_parts
//! [`Loss::averages_over_samples`]: crate::losses::Loss::averages_over_samples

use std::ops::Range;

use super::head::Head;
use crate::Result;
use candle_core::Tensor;
use rkeras_ops::BatchPart;

/// The fewest samples a part gets: below this a part's kernels are too small to pay for the
/// hand-off to another thread. Measured on the 2-core machine (`everyday_speed --batch-size`),
/// one part against two: at batch 32 the MLP's epoch took 0.35 s against 0.46 s and the
/// convnet's 3.7-4.1 s against 4.8 s in parts of 16; at batch 64 the convnet's took 4.3 s
/// against 3.2 s in parts of 32 (the MLP's about the same either way).
const MIN_PART_ROWS: usize = 32;

/// The row ranges a batch of `rows` samples is cut into for `threads` threads: one part per
/// thread, but no part under [`MIN_PART_ROWS`] rows (so at least one part), sizes differing by
/// at most one row, in order.
fn part_ranges(rows: usize, threads: usize) -> Vec<Range<usize>> {
    let parts = threads.min(rows / MIN_PART_ROWS).max(1);
    let (size, larger) = (rows / parts, rows % parts);
    let mut start = 0;
    (0..parts)
        .map(|part| {
            let len = size + usize::from(part < larger);
            start += len;
            start - len..start
        })
        .collect()
}

/// The row ranges `head`'s model may run a batch of `rows` samples in: one part per thread when
/// every loss averages over the samples, the model does not fix its batch size, and its layers
/// that mix samples (if any) meet the other parts, which then run at once; else the whole
/// batch.
pub(crate) fn batch_parts(head: &Head, rows: usize) -> Vec<Range<usize>> {
    let model = head.model();
    let fixed_batch = model
        .input_shapes()
        .iter()
        .any(|shape| shape.batch().is_some());
    if fixed_batch || !head.averages_over_samples() {
        return part_ranges(rows, 1);
    }
    let ranges = part_ranges(rows, rkeras_ops::worker_threads());
    let layer = model.as_layer();
    let parts_meet =
        || layer.meets_other_parts(&model.device()) && rkeras_ops::parts_can_meet(ranges.len());
    if layer.mixes_samples() && !parts_meet() {
        return part_ranges(rows, 1);
    }
    ranges
}

/// Each part's share of a batch of `rows` samples: its weight in the batch's mean.
fn share(range: &Range<usize>, rows: usize) -> f64 {
    range.len() as f64 / rows as f64
}

/// One part of a batch: its share of the rows, its loss (a scalar tensor) and the rest of what
/// it computed.
pub(crate) type Part<T> = (f32, Tensor, T);

/// `run(rows, part)` for each part of a batch of `rows` samples (see [`batch_parts`]): the
/// whole batch on this thread, its kernels free to use every thread, or one part per thread,
/// each with its seat at the meetings of the parts (which a model whose layers mix samples
/// needs in training); the parts in row order.
pub(crate) fn over_parts<T: Send>(
    head: &Head,
    rows: usize,
    run: impl Fn(&Range<usize>, Option<BatchPart>) -> Result<(Tensor, T)> + Sync,
) -> Result<Vec<Part<T>>> {
    match batch_parts(head, rows)[..] {
        [] => unreachable!("batch_parts returns at least one part"),
        [ref whole] => {
            let (loss, rest) = run(whole, None)?;
            Ok(vec![(1.0, loss, rest)])
        }
        ref ranges => {
            let shares: Vec<f64> = ranges.iter().map(|r| share(r, rows)).collect();
            let parts = ranges.iter().cloned().zip(BatchPart::all(&shares));
            rkeras_ops::on_own_threads(parts.collect(), |(range, part)| {
                let part_share = part.share() as f32;
                let (loss, rest) = run(&range, Some(part))?;
                Ok((part_share, loss, rest))
            })
            .into_iter()
            .collect()
        }
    }
}

/// The batch's loss from its parts': the share-weighted sum (the mean over the batch), or the
/// one part's own loss.
pub(crate) fn combined_loss<T>(parts: &[Part<T>]) -> Result<Tensor> {
    match parts {
        [(_, loss, _)] => Ok(loss.clone()),
        _ => {
            let mut sum = 0.0f32;
            for (part_share, loss, _) in parts {
                sum += part_share * loss.to_scalar::<f32>()?;
            }
            // Not the one-part arm, and `over_parts` returns at least one part.
            let device = parts[0].1.device();
            Ok(Tensor::new(sum, device)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_batch_in_order_with_sizes_one_apart() {
        assert_eq!(part_ranges(256, 2), vec![0..128, 128..256]);
        assert_eq!(part_ranges(100, 3), vec![0..34, 34..67, 67..100]);
        assert_eq!(part_ranges(256, 1), vec![0..256]);
        // No part below 32 rows, and always one part.
        assert_eq!(part_ranges(80, 8), vec![0..40, 40..80]);
        assert_eq!(part_ranges(63, 2), vec![0..63]);
        assert_eq!(part_ranges(31, 2), vec![0..31]);
        assert_eq!(part_ranges(5, 4), vec![0..5]);
        assert_eq!(part_ranges(0, 2), vec![0..0]);
    }
}
