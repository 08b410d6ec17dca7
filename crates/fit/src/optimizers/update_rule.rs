//! The per-variable half of an optimizer: what Keras's `update_step` does to one variable.

use super::operand::Operand;
use candle_core::Result;

/// The scalars of one update, shared by every variable.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepScalars {
    /// The learning rate of this update (after the schedule).
    pub learning_rate: f64,
    /// Keras's `local_step`: the number of this update, counting from 1.
    pub step: u64,
}

/// An optimizer's update formula, written once over an [`Operand`]: the host kernel runs it on
/// each `f32` element of a variable (one fused, vectorised pass), the other variables run it on
/// whole tensors (any device, any float dtype), with the same rounding.
pub trait UpdateRule: Send + Sync {
    /// What the formula reads besides the variable and its slots, computed once per update (in
    /// `f32`, as Keras computes it in the variable's dtype).
    type Constants: Send + Sync;

    /// The optimizer's name, e.g. "adam".
    fn name(&self) -> &'static str;

    /// The names of the per-variable slots, in groups. Keras creates each group with one
    /// `add_optimizer_variables` call, interleaving the names of a group per variable; the
    /// flattened groups give the order of the `slots` of [`update`](Self::update).
    fn slot_groups(&self) -> Vec<&'static [&'static str]>;

    /// The value every slot starts from.
    fn initial_slot_value(&self) -> f64 {
        0.0
    }

    /// The constants of the update `step`.
    fn constants(&self, step: &StepScalars) -> Self::Constants;

    /// The scalar optimizer variables Keras keeps besides the slots (Nadam's `u_product`), with
    /// their values after `iterations` updates: counted in the summary and saved after the
    /// slots. Each is a function of the iteration count, so the rule computes it rather than
    /// keeps it, and reading a state back only checks that it is there.
    fn scalar_variables(&self, iterations: u64) -> Vec<(&'static str, f32)> {
        let _ = iterations;
        Vec::new()
    }

    /// Updates `weight` and its `slots` in place from `grad`.
    fn update<T: Operand>(
        constants: &Self::Constants,
        weight: &mut T,
        grad: &T,
        slots: &mut [T],
    ) -> Result<()>;

    /// The rule's entries of Keras's `get_config`.
    fn config(&self) -> serde_json::Map<String, serde_json::Value>;
}

/// The number of slots of `rule` per variable.
pub(crate) fn slot_count<R: UpdateRule>(rule: &R) -> usize {
    rule.slot_groups().iter().map(|group| group.len()).sum()
}

/// The error for a slot list whose length does not fit the rule (an internal inconsistency).
pub(crate) fn slot_mismatch(rule: &str, got: usize) -> candle_core::Error {
    candle_core::Error::Msg(format!(
        "{rule}: unexpected number of optimizer slots ({got})"
    ))
}
