//! Splitting arrays into batches: rows in order, or in a shuffled order that continues across
//! epochs when `steps_per_epoch` stops an epoch early.

use std::ops::Range;

use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rkeras_layers::session::epoch_rng;

use crate::arrays::Arrays;
use crate::Result;

/// Row indices handed out batch by batch; reshuffled each time they run out.
pub(crate) struct BatchOrder {
    order: Vec<u32>,
    position: usize,
    shuffle: bool,
    epoch: usize,
}

impl BatchOrder {
    /// An order over `rows` rows.
    pub fn new(rows: usize, shuffle: bool) -> Self {
        BatchOrder {
            order: (0..rows as u32).collect(),
            position: rows,
            shuffle,
            epoch: 0,
        }
    }

    /// Starts a new pass over the rows of `epoch` (shuffled when asked, see
    /// [`epoch_rng`]: a seeded run resumed at an epoch shuffles as the uninterrupted one).
    pub fn restart(&mut self, epoch: usize) {
        if self.shuffle {
            // From the identity each time, so the order depends on the epoch alone.
            for (i, row) in self.order.iter_mut().enumerate() {
                *row = i as u32;
            }
            self.order.shuffle(&mut epoch_rng(epoch));
        }
        self.position = 0;
        self.epoch = epoch;
    }

    /// Whether the current pass is over.
    pub fn exhausted(&self) -> bool {
        self.position >= self.order.len()
    }

    /// The next batch of at most `size` rows: contiguous `(start, len)` without shuffling,
    /// explicit indices with it.
    pub fn next(&mut self, size: usize) -> Rows<'_> {
        if self.exhausted() {
            self.restart(self.epoch + 1);
        }
        let start = self.position;
        let len = size.min(self.order.len() - start);
        self.position += len;
        if self.shuffle {
            Rows::Indices(&self.order[start..start + len])
        } else {
            Rows::Range(start, len)
        }
    }
}

/// Which rows make a batch.
pub(crate) enum Rows<'a> {
    /// `len` rows from `start`.
    Range(usize, usize),
    /// These rows.
    Indices(&'a [u32]),
}

impl<'a> Rows<'a> {
    /// Rows `part` of these rows (positions within the batch).
    pub fn sub(&self, part: &Range<usize>) -> Rows<'a> {
        match *self {
            Rows::Range(start, _) => Rows::Range(start + part.start, part.len()),
            Rows::Indices(ids) => Rows::Indices(&ids[part.clone()]),
        }
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        match self {
            Rows::Range(_, len) => *len,
            Rows::Indices(ids) => ids.len(),
        }
    }

    /// The batch of `data` (rows along axis 0), on `device`.
    pub fn take(&self, data: &Tensor, device: &Device) -> Result<Tensor> {
        let batch = match self {
            Rows::Range(start, len) => data.narrow(0, *start, *len)?,
            Rows::Indices(ids) => rkeras_ops::gather_rows(data, ids)?,
        };
        Ok(batch.to_device(device)?)
    }

    /// The batches of every array of `x` and `y`: one gather for a target that is an input
    /// too (an autoencoder's).
    pub fn take_arrays(
        &self,
        x: &Arrays,
        y: &Arrays,
        device: &Device,
    ) -> Result<(Vec<Tensor>, Vec<Tensor>)> {
        let xs = x
            .tensors()
            .iter()
            .map(|t| self.take(t, device))
            .collect::<Result<Vec<_>>>()?;
        let ys = y
            .tensors()
            .iter()
            .map(
                |t| match x.tensors().iter().position(|input| input.id() == t.id()) {
                    Some(at) => Ok(xs[at].clone()),
                    None => self.take(t, device),
                },
            )
            .collect::<Result<_>>()?;
        Ok((xs, ys))
    }
}

/// A batch: rows of the arrays, gathered (moved to the model's device) where they are used,
/// whole or a part at a time, so that each thread of a split step gathers its own part.
pub(crate) struct Batch<'a> {
    x: &'a Arrays,
    y: &'a Arrays,
    sample_weight: Option<&'a Arrays>,
    rows: Rows<'a>,
    device: Device,
}

/// A part of a batch on the model's device: inputs, targets and, when weighted, each output's
/// sample weights.
pub(crate) type PartData = (Vec<Tensor>, Vec<Tensor>, Option<Vec<Tensor>>);

impl<'a> Batch<'a> {
    /// Rows `rows` of `x` and `y`, for a model on `device`.
    pub fn new(x: &'a Arrays, y: &'a Arrays, rows: Rows<'a>, device: &Device) -> Self {
        Batch {
            x,
            y,
            sample_weight: None,
            rows,
            device: device.clone(),
        }
    }

    /// The batch with each output's sample weights (rows along axis 0, as `x` and `y`), if any.
    pub fn weighted(mut self, sample_weight: Option<&'a Arrays>) -> Self {
        self.sample_weight = sample_weight;
        self
    }

    /// All rows of `x` and `y`, gathered onto `device`.
    pub fn whole(x: &'a Arrays, y: &'a Arrays, device: &Device) -> Self {
        let rows = x.tensors().first().and_then(|t| t.dims().first().copied());
        Batch::new(x, y, Rows::Range(0, rows.unwrap_or(0)), device)
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Rows `part` of the batch (positions within it) of every array of `x`, `y` and the
    /// sample weights.
    pub fn take_part(&self, part: &Range<usize>) -> Result<PartData> {
        let rows = self.rows.sub(part);
        let (x, y) = rows.take_arrays(self.x, self.y, &self.device)?;
        let weights = self
            .sample_weight
            .map(|w| {
                w.tensors()
                    .iter()
                    .map(|t| rows.take(t, &self.device))
                    .collect::<Result<Vec<_>>>()
            })
            .transpose()?;
        Ok((x, y, weights))
    }
}

/// The number of batches of `size` in `rows` rows (the last may be partial).
pub(crate) fn batch_count(rows: usize, size: usize) -> usize {
    rows.div_ceil(size.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_batches_cover_every_row_once_with_a_partial_last() {
        let mut order = BatchOrder::new(10, false);
        let lens: Vec<(usize, usize)> = (0..3)
            .map(|_| match order.next(4) {
                Rows::Range(s, l) => (s, l),
                Rows::Indices(_) => unreachable!("not shuffled"),
            })
            .collect();
        assert_eq!(lens, vec![(0, 4), (4, 4), (8, 2)]);
        assert!(order.exhausted());
        assert_eq!(batch_count(10, 4), 3);
    }

    #[test]
    fn shuffled_batches_are_a_permutation() {
        rkeras_layers::session::set_random_seed(1);
        let mut order = BatchOrder::new(9, true);
        let mut seen: Vec<u32> = Vec::new();
        for _ in 0..3 {
            if let Rows::Indices(ids) = order.next(3) {
                seen.extend_from_slice(ids);
            }
        }
        assert_ne!(seen, (0..9).collect::<Vec<u32>>());
        seen.sort_unstable();
        assert_eq!(seen, (0..9).collect::<Vec<u32>>());
    }

    #[test]
    fn take_selects_rows() {
        let data = Tensor::arange(0f32, 12.0, &Device::Cpu)
            .unwrap()
            .reshape((6, 2))
            .unwrap();
        let rows = Rows::Indices(&[4, 1]);
        let got: Vec<Vec<f32>> = rows.take(&data, &Device::Cpu).unwrap().to_vec2().unwrap();
        assert_eq!(got, vec![vec![8.0, 9.0], vec![2.0, 3.0]]);
        let got: Vec<Vec<f32>> = Rows::Range(5, 1)
            .take(&data, &Device::Cpu)
            .unwrap()
            .to_vec2()
            .unwrap();
        assert_eq!(got, vec![vec![10.0, 11.0]]);
    }
}
