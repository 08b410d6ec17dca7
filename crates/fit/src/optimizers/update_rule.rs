//! The per-variable half of an optimizer: what Keras's `update_step` does to one variable.

use candle_core::{Result, Tensor};

/// The scalars of one update, shared by every variable.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepScalars {
    /// The learning rate of this update (after the schedule).
    pub learning_rate: f64,
    /// Keras's `local_step`: the number of this update, counting from 1.
    pub step: u64,
}

/// An optimizer's update formula, written twice with the same rounding: over host `f32` slices
/// (one fused pass, no allocation) and over tensors (any device, any float dtype).
pub trait UpdateRule: Send + Sync {
    /// The optimizer's name, e.g. "adam".
    fn name(&self) -> &'static str;

    /// The names of the per-variable slots, in groups. Keras creates each group with one
    /// `add_optimizer_variables` call, interleaving the names of a group per variable; the
    /// flattened groups give the order of the `slots` arguments below.
    fn slot_groups(&self) -> Vec<&'static [&'static str]>;

    /// The value every slot starts from.
    fn initial_slot_value(&self) -> f64 {
        0.0
    }

    /// Updates `weights` and `slots` in place from `grads` (all of one length).
    fn update_host(
        &self,
        step: &StepScalars,
        weights: &mut [f32],
        grads: &[f32],
        slots: &mut [Vec<f32>],
    ) -> Result<()>;

    /// Returns the updated weights and replaces `slots` by their updated values.
    fn update_tensor(
        &self,
        step: &StepScalars,
        weights: &Tensor,
        grads: &Tensor,
        slots: &mut [Tensor],
    ) -> Result<Tensor>;

    /// The rule's entries of Keras's `get_config`.
    fn config(&self) -> serde_json::Map<String, serde_json::Value>;
}

/// The number of slots of `rule` per variable.
pub(crate) fn slot_count(rule: &dyn UpdateRule) -> usize {
    rule.slot_groups().iter().map(|group| group.len()).sum()
}

/// The error for a slot list whose length does not fit the rule (an internal inconsistency).
pub(crate) fn slot_mismatch(rule: &str, got: usize) -> candle_core::Error {
    candle_core::Error::Msg(format!(
        "{rule}: unexpected number of optimizer slots ({got})"
    ))
}

/// Zero for a subnormal value, for optimizer slots. Moments of weights whose gradient stays zero
/// (the corner pixels of MNIST) decay into the subnormal range, where every arithmetic
/// instruction costs ~100 cycles: the update of a batch-16 step took a third of the step.
/// TensorFlow runs its CPU kernels with denormals flushed to zero, so Keras's moments do the
/// same. On x86-64 the host update also runs under [`rkeras_ops::FlushDenormals`], which flushes
/// the intermediate results too; elsewhere this keeps at least the stored moments as Keras's.
#[inline]
pub(crate) fn flush_denormal(x: f32) -> f32 {
    if x.abs() < f32::MIN_POSITIVE {
        0.0
    } else {
        x
    }
}

#[cfg(test)]
mod flush_tests {
    use super::flush_denormal;

    #[test]
    fn subnormals_become_zero_and_normals_stay() {
        assert_eq!(flush_denormal(f32::MIN_POSITIVE / 2.0), 0.0);
        assert_eq!(flush_denormal(-1e-40), 0.0);
        assert_eq!(flush_denormal(f32::MIN_POSITIVE), f32::MIN_POSITIVE);
        assert_eq!(flush_denormal(-0.5), -0.5);
    }
}
