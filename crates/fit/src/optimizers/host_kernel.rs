//! The CPU fast path: one in-place pass over a variable's `f32` storage per update, as a candle
//! `InplaceOp2` (the variable is updated in place, the gradient is read), running the rule's
//! formula on each element.

use super::clipping::GradientAdjustment;
use super::threaded_update::SharedStep;
use super::update_rule::UpdateRule;
use candle_core::{bail, CpuStorage, InplaceOp2, Layout, Result};
use rkeras_ops::simd::{vectorized, Kernel};
use std::cell::RefCell;

/// One variable's update on the host.
pub(crate) struct HostUpdate<'a, R: UpdateRule> {
    pub(crate) step: &'a SharedStep<R>,
    pub(crate) adjustment: GradientAdjustment,
    pub(crate) slots: RefCell<&'a mut Vec<Vec<f32>>>,
    pub(crate) scratch: RefCell<&'a mut Vec<f32>>,
}

fn contiguous_f32<'s>(storage: &'s CpuStorage, layout: &Layout, what: &str) -> Result<&'s [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (CpuStorage::F32(data), Some((start, end))) => Ok(&data[start..end]),
        _ => bail!("optimizer host update: the {what} must be a contiguous f32 tensor"),
    }
}

impl<R: UpdateRule> InplaceOp2 for HostUpdate<'_, R> {
    fn name(&self) -> &'static str {
        "optimizer-host-update"
    }

    fn cpu_fwd(
        &self,
        weights: &mut CpuStorage,
        wl: &Layout,
        grads: &CpuStorage,
        gl: &Layout,
    ) -> Result<()> {
        let grads = contiguous_f32(grads, gl, "gradient")?;
        let weights = match (weights, wl.contiguous_offsets()) {
            (CpuStorage::F32(data), Some((start, end))) => &mut data[start..end],
            _ => bail!("optimizer host update: the variable must be a contiguous f32 tensor"),
        };
        let mut slots = self.slots.borrow_mut();
        let n = weights.len();
        if let Some(len) = std::iter::once(grads.len())
            .chain(slots.iter().map(Vec::len))
            .find(|&len| len != n)
        {
            bail!("optimizer host update: {n} weights but {len} gradients or slot values");
        }
        let mut scratch = self.scratch.borrow_mut();
        let grads = self.adjustment.apply_host(grads, &mut scratch)?;
        if let Some(decay) = self.step.weight_decay {
            for w in weights.iter_mut() {
                *w = decay.apply(w)?;
            }
        }
        update_elements::<R>(&self.step.constants, weights, grads, &mut slots)
    }
}

/// Runs `R`'s formula on every element of `weights` and `slots` (each of the weights' length)
/// with the gradients `grads`, in one vectorised pass.
pub(crate) fn update_elements<R: UpdateRule>(
    constants: &R::Constants,
    weights: &mut [f32],
    grads: &[f32],
    slots: &mut [Vec<f32>],
) -> Result<()> {
    match slots.len() {
        0 => element_loop::<R, 0>(constants, weights, grads, slots),
        1 => element_loop::<R, 1>(constants, weights, grads, slots),
        2 => element_loop::<R, 2>(constants, weights, grads, slots),
        3 => element_loop::<R, 3>(constants, weights, grads, slots),
        more => bail!("optimizer host update: {more} slots per variable, at most 3 supported"),
    }
}

/// [`ElementLoop`] over `slots`, which must be `N` vectors of the weights' length.
fn element_loop<R: UpdateRule, const N: usize>(
    constants: &R::Constants,
    weights: &mut [f32],
    grads: &[f32],
    slots: &mut [Vec<f32>],
) -> Result<()> {
    let Ok(slots) = <&mut [Vec<f32>; N]>::try_from(slots) else {
        bail!("optimizer host update: expected {N} slots");
    };
    vectorized(ElementLoop::<R, N> {
        constants,
        weights,
        grads,
        slots: slots.each_mut().map(Vec::as_mut_slice),
    })
}

/// The rule's formula on every element of a variable, run through [`vectorized`]: an indexed
/// loop over slices of one length with the slots copied to an array of `N` per element, so that
/// the compiler drops the bounds checks and vectorises the square roots and divisions (a zip of
/// four iterators stayed scalar and took a third of a batch-16 step).
struct ElementLoop<'a, R: UpdateRule, const N: usize> {
    constants: &'a R::Constants,
    weights: &'a mut [f32],
    grads: &'a [f32],
    slots: [&'a mut [f32]; N],
}

impl<R: UpdateRule, const N: usize> Kernel for ElementLoop<'_, R, N> {
    type Output = Result<()>;

    #[inline(always)]
    fn run(self) -> Result<()> {
        let Self {
            constants,
            weights,
            grads,
            slots,
        } = self;
        let n = weights.len();
        let grads = &grads[..n];
        let mut slots = slots.map(|slot| &mut slot[..n]);
        for i in 0..n {
            let mut element: [f32; N] = std::array::from_fn(|k| slots[k][i]);
            R::update(constants, &mut weights[i], &grads[i], &mut element)?;
            for (slot, value) in slots.iter_mut().zip(element) {
                slot[i] = value;
            }
        }
        Ok(())
    }
}
