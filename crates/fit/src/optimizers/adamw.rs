//! AdamW, after `keras/src/optimizers/adamw.py`: Adam plus the base optimizer's decoupled
//! weight decay (`w -= w · weight_decay · lr` before each update).

use super::adam::{AdamConstants, AdamFamily, AdamRule};
use super::base::BaseOptimizer;
use super::moment_decays::{MomentDecays, MomentOptions};
use super::operand::Operand;
use super::update_rule::{StepScalars, UpdateRule};
use candle_core::Result;

/// Adam's rule under AdamW's name.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AdamWRule(AdamRule);

/// AdamW (Keras defaults: learning rate 1e-3, weight decay 0.004, β1 0.9, β2 0.999, ε 1e-7).
pub type AdamW = BaseOptimizer<AdamWRule>;

impl AdamW {
    /// AdamW with Keras's defaults.
    pub fn new() -> Self {
        Self::with_rule(AdamWRule::default(), 1e-3).weight_decay(0.004)
    }
}

impl Default for AdamW {
    fn default() -> Self {
        Self::new()
    }
}

impl AdamFamily for AdamWRule {
    fn adam_rule(&mut self) -> &mut AdamRule {
        &mut self.0
    }
}

impl MomentOptions for AdamWRule {
    fn moment_decays(&mut self) -> &mut MomentDecays {
        self.0.moment_decays()
    }
}

impl UpdateRule for AdamWRule {
    type Constants = AdamConstants;

    fn name(&self) -> &'static str {
        "adamw"
    }

    fn slot_groups(&self) -> Vec<&'static [&'static str]> {
        self.0.slot_groups()
    }

    fn constants(&self, step: &StepScalars) -> AdamConstants {
        self.0.constants(step)
    }

    #[inline(always)]
    fn update<T: Operand>(
        constants: &AdamConstants,
        weight: &mut T,
        grad: &T,
        slots: &mut [T],
    ) -> Result<()> {
        AdamRule::update(constants, weight, grad, slots)
    }

    fn config(&self) -> serde_json::Map<String, serde_json::Value> {
        self.0.config()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimizers::test_support::{assert_close, run, var};
    use crate::optimizers::Optimizer;
    use crate::Result;

    #[test]
    fn one_step_decays_then_applies_adam() -> Result<()> {
        // lr 0.1, wd 0.004: w = 2 - 2·0.004·0.1 = 1.9992, then Adam's first step with g = 0.5:
        // m = 0.05, v = 0.00025, alpha = 0.1·sqrt(0.001)/0.1, w -= m·alpha/(sqrt(v) + 1e-7)
        let alpha = 0.1 * 0.001f64.sqrt() / 0.1;
        let expected = 1.9992 - 0.05 * alpha / (0.00025f64.sqrt() + 1e-7);
        let w = var(&[2.0])?;
        let mut adamw = AdamW::new().learning_rate(0.1);
        let history = run(&mut adamw, &w, &[&[0.5]])?;
        assert_close(&history[0], &[expected], 1e-6);
        assert_eq!(Optimizer::config(&adamw)["weight_decay"], 0.004);
        assert_eq!(adamw.name(), "adamw");
        Ok(())
    }
}
