//! Optimizers, as Keras 3 defines them (`keras/src/optimizers/`).
//!
//! Every optimizer is a [`BaseOptimizer`] around an [`UpdateRule`], whose formula is written once
//! over an [`Operand`]. On the CPU, contiguous `f32` variables are updated in place by one fused
//! pass per variable (a candle `InplaceOp2`) running the formula on each element, with the
//! optimizer's moments kept in host vectors; other variables run it on whole tensors and are
//! written back with `Var::set`. Both paths round identically.
//!
//! ```
//! use candle_core::{Device, Tensor, Var};
//! use rkeras_fit::optimizers::{Optimizer, SGD};
//!
//! let w = Var::new(&[1f32, 2.], &Device::Cpu)?;
//! let grad = Tensor::new(&[10f32, -10.], &Device::Cpu)?;
//! let mut sgd = SGD::new().learning_rate(0.1);
//! sgd.apply_gradients(&[(&w, &grad)])?;
//! assert_eq!(w.to_vec1::<f32>()?, [0., 3.]);
//! assert_eq!(sgd.iterations(), 1);
//! # Ok::<(), rkeras_fit::Error>(())
//! ```

mod adadelta;
mod adagrad;
mod adam;
mod adamax;
mod adamw;
mod base;
pub mod clipping;
mod host_kernel;
mod moment_decays;
mod nadam;
mod operand;
mod rmsprop;
mod saved_state;
pub mod schedules;
mod sgd;
mod slots;
#[cfg(test)]
mod test_support;
mod threaded_update;
mod update_rule;
mod weight_decay;

pub use adadelta::{Adadelta, AdadeltaConstants, AdadeltaRule};
pub use adagrad::{Adagrad, AdagradConstants, AdagradRule};
pub use adam::{Adam, AdamConstants, AdamFamily, AdamRule};
pub use adamax::{Adamax, AdamaxConstants, AdamaxRule};
pub use adamw::{AdamW, AdamWRule};
pub use base::BaseOptimizer;
pub use moment_decays::{MomentDecays, MomentOptions};
pub use nadam::{Nadam, NadamConstants, NadamRule};
pub use operand::Operand;
pub use rmsprop::{RMSprop, RmsPropConstants, RmsPropRule};
pub use schedules::{ExponentialDecay, LearningRate, LearningRateSchedule};
pub use sgd::{SgdConstants, SgdRule, SGD};
pub use update_rule::{StepScalars, UpdateRule};

use crate::{Error, Result};
use candle_core::{Tensor, Var};

/// A training optimizer: turns gradients into variable updates.
pub trait Optimizer: Send {
    /// The optimizer's name, e.g. "adam".
    fn name(&self) -> &str;
    /// One update of every (variable, gradient) pair; state (moments) is created on first use, keyed by the variable (candle `Var`'s tensor id), and the iteration counter advances by one per call.
    fn apply_gradients(&mut self, params_and_grads: &[(&Var, &Tensor)]) -> Result<()>;
    /// The current value (after the schedule).
    fn learning_rate(&self) -> f64;
    /// Callbacks use this (ReduceLROnPlateau); replaces a schedule by a constant.
    fn set_learning_rate(&mut self, lr: f64);
    /// The number of updates applied so far.
    fn iterations(&self) -> u64;
    /// Number of scalar optimizer variables Keras would report in summary() ("Optimizer params"):
    /// the iteration counter, the learning rate unless it is a schedule, and each slot per parameter.
    fn variable_count(&self, trainable_params: usize) -> usize;
    /// Optimizer state for checkpoints, in the order of `vars`: named tensors ("iterations",
    /// "learning_rate", then "`<slot>/<index of the variable>`" in Keras's variable order).
    fn state(&self, vars: &[Var]) -> Result<Vec<(String, Tensor)>>;
    /// The inverse of [`state`](Self::state): restores the counter, the learning rate and the slots.
    fn load_state(&mut self, vars: &[Var], state: &[(String, Tensor)]) -> Result<()>;
    /// Keras's `get_config`.
    fn config(&self) -> serde_json::Value;
}

/// The identifiers [`get`] accepts.
pub const KNOWN_OPTIMIZERS: &[&str] = &[
    "adam", "sgd", "adamw", "rmsprop", "adagrad", "adamax", "nadam", "adadelta",
];

/// The optimizer Keras's `optimizers.get(name)` returns, with its default options.
pub fn get(name: &str) -> Result<Box<dyn Optimizer>> {
    Ok(match name {
        "adam" => Box::new(Adam::new()),
        "sgd" => Box::new(SGD::new()),
        "adamw" => Box::new(AdamW::new()),
        "rmsprop" => Box::new(RMSprop::new()),
        "adagrad" => Box::new(Adagrad::new()),
        "adamax" => Box::new(Adamax::new()),
        "nadam" => Box::new(Nadam::new()),
        "adadelta" => Box::new(Adadelta::new()),
        other => {
            return Err(Error::Config(format!(
                "unknown optimizer {other:?}; expected one of: {}",
                KNOWN_OPTIMIZERS.join(", ")
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::{get, KNOWN_OPTIMIZERS};
    use crate::Result;

    #[test]
    fn get_knows_every_optimizer() -> Result<()> {
        for name in KNOWN_OPTIMIZERS {
            assert_eq!(get(name)?.name(), *name);
        }
        let message = get("lion").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("adagrad"), "{message}");
        Ok(())
    }
}
