//! Weighted sums of tensors, many at once in one parallel pass: how the gradients of the parts
//! of a batch, computed on separate threads, become the batch's gradients.

use std::borrow::Cow;
use std::mem::MaybeUninit;
use std::ops::Range;

use candle_core::Tensor;

use crate::check::{expect_f32, expect_same_device, expect_same_dims};
use crate::error::OpsError;
use crate::fork_join::{caller_and_pool, worker_threads};
use crate::simd::{vectorized, Kernel};
use crate::storage::CpuView;

/// Name used in messages.
const OP: &str = "weighted_sums";

/// Sums with fewer elements in all than this run on the calling thread.
const PARALLEL_MIN_ELEMENTS: usize = 1 << 15;

/// For each group of `(weight, tensor)` terms, `Σ weight · tensor` (f32 CPU tensors of one shape
/// within a group), without recording a candle graph. All the sums are computed in one pass
/// split evenly over the threads (one fork-join for all of them, whatever their sizes), each
/// written once into its result.
pub fn weighted_sums(groups: &[Vec<(f32, &Tensor)>]) -> candle_core::Result<Vec<Tensor>> {
    let mut views = Vec::with_capacity(groups.len());
    for (index, group) in groups.iter().enumerate() {
        let Some(&(_, first)) = group.first() else {
            return Err(OpsError::Config {
                op: OP,
                reason: format!("group {index} has no terms"),
            }
            .into());
        };
        let mut group_views = Vec::with_capacity(group.len());
        for &(weight, term) in group {
            expect_f32(OP, "term", term)?;
            expect_same_device(OP, first, term)?;
            expect_same_dims(
                OP,
                "the terms of one sum to have one shape",
                ("first term", first.dims()),
                ("term", term.dims()),
            )?;
            group_views.push((weight, CpuView::of(OP, "term", term)?));
        }
        views.push(group_views);
    }
    let data: Vec<Vec<(f32, Cow<'_, [f32]>)>> = views
        .iter()
        .map(|group| {
            group
                .iter()
                .map(|(weight, view)| Ok((*weight, view.f32()?)))
                .collect::<Result<_, OpsError>>()
        })
        .collect::<Result<_, _>>()?;
    let lens: Vec<usize> = groups.iter().map(|group| group[0].1.elem_count()).collect();
    let mut sums: Vec<Vec<f32>> = lens.iter().map(|&len| Vec::with_capacity(len)).collect();
    let total: usize = lens.iter().sum();
    let threads = if total >= PARALLEL_MIN_ELEMENTS {
        worker_threads()
    } else {
        1
    };
    // Each task: pieces `(group, range, output cells)`, about `total / threads` elements in all.
    let mut tasks: Vec<Vec<Piece<'_>>> = (0..threads).map(|_| Vec::new()).collect();
    let per_task = total.div_ceil(threads).max(1);
    let mut position = 0;
    for (group, sum) in sums.iter_mut().enumerate() {
        let mut rest = &mut sum.spare_capacity_mut()[..lens[group]];
        let mut start = 0;
        while !rest.is_empty() {
            let task = position / per_task;
            let take = rest.len().min((task + 1) * per_task - position);
            let (cells, tail) = rest.split_at_mut(take);
            tasks[task].push((group, start..start + take, cells));
            rest = tail;
            start += take;
            position += take;
        }
    }
    caller_and_pool(tasks, |pieces| {
        for (group, range, cells) in pieces {
            vectorized(WeightedRange {
                terms: &data[group],
                range,
                out: cells,
            });
        }
    });
    groups
        .iter()
        .zip(sums)
        .zip(lens)
        .map(|((group, mut sum), len)| {
            // SAFETY: the pieces cover `0..len` of every group, and each writes all its cells.
            unsafe { sum.set_len(len) };
            let first = group[0].1;
            Tensor::from_vec(sum, first.shape(), first.device())
        })
        .collect()
}

/// One task's share of a sum: the group, the element range and the result cells for it.
type Piece<'a> = (usize, Range<usize>, &'a mut [MaybeUninit<f32>]);

/// `out[i] = Σ weight · term[range.start + i]` over the terms of one sum.
struct WeightedRange<'a> {
    terms: &'a [(f32, Cow<'a, [f32]>)],
    range: Range<usize>,
    out: &'a mut [MaybeUninit<f32>],
}

impl Kernel for WeightedRange<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Self { terms, range, out } = self;
        let (first_weight, first) = (terms[0].0, &terms[0].1[range.clone()]);
        match terms.get(1) {
            // The common case, two parts of a batch: one pass.
            Some((second_weight, second)) => {
                let second = &second[range.clone()];
                for ((out, &a), &b) in out.iter_mut().zip(first).zip(second) {
                    out.write(first_weight.mul_add(a, second_weight * b));
                }
            }
            None => {
                for (out, &a) in out.iter_mut().zip(first) {
                    out.write(first_weight * a);
                }
            }
        }
        // SAFETY: every cell was written above.
        let out: &mut [f32] = unsafe { &mut *(out as *mut [MaybeUninit<f32>] as *mut [f32]) };
        for (weight, term) in terms.iter().skip(2) {
            for (out, &value) in out.iter_mut().zip(&term[range.clone()]) {
                *out = weight.mul_add(value, *out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    fn values(len: usize, scale: f32) -> Tensor {
        Tensor::arange(0f32, len as f32, &Device::Cpu)
            .and_then(|t| t.affine(scale as f64, 1.0))
            .unwrap()
    }

    #[test]
    fn weighs_and_adds_every_element_of_every_group() -> candle_core::Result<()> {
        let a = Tensor::new(&[[1f32, 2.], [3., 4.]], &Device::Cpu)?;
        let b = Tensor::new(&[[10f32, 20.], [30., 40.]], &Device::Cpu)?;
        let c = Tensor::new(&[5f32], &Device::Cpu)?;
        let sums = weighted_sums(&[
            vec![(0.5, &a), (0.25, &b)],
            vec![(2.0, &c)],
            vec![(1.0, &a), (1.0, &a), (-1.0, &b)],
            // A strided view is read in its logical order.
            vec![(1.0, &a.t()?)],
        ])?;
        assert_eq!(
            sums[0].to_vec2::<f32>()?,
            vec![vec![3.0, 6.0], vec![9.0, 12.0]]
        );
        assert_eq!(sums[1].to_vec1::<f32>()?, vec![10.0]);
        assert_eq!(
            sums[2].to_vec2::<f32>()?,
            vec![vec![-8.0, -16.0], vec![-24.0, -32.0]]
        );
        assert_eq!(
            sums[3].to_vec2::<f32>()?,
            vec![vec![1.0, 3.0], vec![2.0, 4.0]]
        );
        Ok(())
    }

    #[test]
    fn large_sums_split_over_threads_match_element_by_element() -> candle_core::Result<()> {
        // Sizes that put task boundaries inside groups, on a two-thread pool.
        let lens = [70_001, 3, 40_000, 1];
        let parts: Vec<(Tensor, Tensor)> = lens
            .iter()
            .map(|&len| (values(len, 0.5), values(len, -0.25)))
            .collect();
        let groups: Vec<Vec<(f32, &Tensor)>> = parts
            .iter()
            .map(|(a, b)| vec![(0.75, a), (0.25, b)])
            .collect();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .expect("a two-thread pool");
        let sums = pool.install(|| weighted_sums(&groups))?;
        for ((sum, (a, b)), &len) in sums.iter().zip(&parts).zip(&lens) {
            let (sum, a, b) = (
                sum.to_vec1::<f32>()?,
                a.to_vec1::<f32>()?,
                b.to_vec1::<f32>()?,
            );
            assert_eq!(sum.len(), len);
            for i in 0..len {
                let want = 0.75 * a[i] as f64 + 0.25 * b[i] as f64;
                assert!(
                    (sum[i] as f64 - want).abs() <= 1e-6 * want.abs().max(1.0),
                    "{i}"
                );
            }
        }
        Ok(())
    }

    #[test]
    fn refuses_empty_groups_different_shapes_and_dtypes() -> candle_core::Result<()> {
        let a = Tensor::zeros((2, 3), DType::F32, &Device::Cpu)?;
        let err = weighted_sums(&[vec![]]).unwrap_err().to_string();
        assert!(err.contains("no terms"), "{err}");
        let reshaped = a.reshape((3, 2))?;
        let err = weighted_sums(&[vec![(1.0, &a), (1.0, &reshaped)]]).unwrap_err();
        assert!(err.to_string().contains("one shape"), "{err}");
        let wide = a.to_dtype(DType::F64)?;
        let err = weighted_sums(&[vec![(1.0, &a), (1.0, &wide)]]).unwrap_err();
        assert!(err.to_string().contains("weighted_sums"), "{err}");
        Ok(())
    }
}
