//! The CPU fast path: one in-place pass over a variable's `f32` storage per update, as a candle
//! `InplaceOp2` (the variable is updated in place, the gradient is read).

use super::clipping::GradientAdjustment;
use super::update_rule::{StepScalars, UpdateRule};
use candle_core::{bail, CpuStorage, InplaceOp2, Layout, Result};
use std::cell::RefCell;

/// One variable's update on the host.
pub(crate) struct HostUpdate<'a> {
    pub(crate) rule: &'a dyn UpdateRule,
    pub(crate) step: StepScalars,
    pub(crate) adjustment: GradientAdjustment,
    pub(crate) weight_decay: Option<f64>,
    pub(crate) slots: RefCell<&'a mut Vec<Vec<f32>>>,
    pub(crate) scratch: RefCell<&'a mut Vec<f32>>,
}

fn contiguous_f32<'s>(storage: &'s CpuStorage, layout: &Layout, what: &str) -> Result<&'s [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (CpuStorage::F32(data), Some((start, end))) => Ok(&data[start..end]),
        _ => bail!("optimizer host update: the {what} must be a contiguous f32 tensor"),
    }
}

impl InplaceOp2 for HostUpdate<'_> {
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
        if weights.len() != grads.len() {
            bail!(
                "optimizer host update: {} weights but {} gradients",
                weights.len(),
                grads.len()
            );
        }
        let mut scratch = self.scratch.borrow_mut();
        let grads = self.adjustment.apply_host(grads, &mut scratch);
        if let Some(decay) = self.weight_decay {
            // Keras: variable - variable * wd * lr
            let (decay, lr) = (decay as f32, self.step.learning_rate as f32);
            for w in weights.iter_mut() {
                *w -= *w * decay * lr;
            }
        }
        let mut slots = self.slots.borrow_mut();
        self.rule
            .update_host(&self.step, weights, grads, &mut slots)
    }
}
