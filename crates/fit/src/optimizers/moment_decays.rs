//! What the optimizers of Adam's family (Adam, AdamW, Adamax, Nadam) share, after
//! `keras/src/optimizers/adam.py`, `adamax.py` and `nadam.py`: the decay rates β1 and β2 with
//! their builders, ε, and the running-average update of a moment.

use super::base::BaseOptimizer;
use super::operand::Operand;
use candle_core::Result;
use serde_json::json;

/// β1, β2 and ε (Keras's defaults: 0.9, 0.999, 1e-7).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MomentDecays {
    pub(crate) beta_1: f64,
    pub(crate) beta_2: f64,
    pub(crate) epsilon: f64,
}

impl Default for MomentDecays {
    fn default() -> Self {
        Self {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
        }
    }
}

impl MomentDecays {
    /// Their entries of Keras's `get_config`.
    pub(crate) fn config(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut config = serde_json::Map::new();
        config.insert("beta_1".into(), json!(self.beta_1));
        config.insert("beta_2".into(), json!(self.beta_2));
        config.insert("epsilon".into(), json!(self.epsilon));
        config
    }
}

/// Update rules that have β1, β2 and ε, which share their builders.
pub trait MomentOptions {
    /// The rule's β1, β2 and ε.
    fn moment_decays(&mut self) -> &mut MomentDecays;
}

impl<R: MomentOptions> BaseOptimizer<R> {
    /// Decay rate of the first moment.
    pub fn beta_1(mut self, beta_1: f64) -> Self {
        self.rule.moment_decays().beta_1 = beta_1;
        self
    }

    /// Decay rate of the second moment (Adamax: of the infinity norm).
    pub fn beta_2(mut self, beta_2: f64) -> Self {
        self.rule.moment_decays().beta_2 = beta_2;
        self
    }

    /// The constant added to the denominator of the update.
    pub fn epsilon(mut self, epsilon: f64) -> Self {
        self.rule.moment_decays().epsilon = epsilon;
        self
    }
}

/// `moment += (value - moment)·(1 - β)`, subnormal results flushed: Keras's update of the first
/// moment (with the gradient) and of the second (with its square).
#[inline(always)]
pub(crate) fn update_moment<T: Operand>(
    moment: &mut T,
    value: &T,
    one_minus_beta: f32,
) -> Result<()> {
    *moment = moment
        .add(&value.sub(moment)?.scale(one_minus_beta)?)?
        .flush_denormal();
    Ok(())
}
