//! Stochastic gradient descent, after `keras/src/optimizers/sgd.py`.

use super::base::BaseOptimizer;
use super::operand::Operand;
use super::update_rule::{slot_mismatch, StepScalars, UpdateRule};
use candle_core::Result;
use serde_json::json;

/// SGD's hyper-parameters and update rule. Without momentum `w -= lr·g`; with it
/// `m = momentum·m - lr·g`, then `w += m`, or with Nesterov `w += momentum·m - lr·g`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SgdRule {
    momentum: f64,
    nesterov: bool,
}

/// SGD (Keras defaults: learning rate 0.01, momentum 0, no Nesterov).
pub type SGD = BaseOptimizer<SgdRule>;

impl SGD {
    /// SGD with Keras's defaults.
    pub fn new() -> Self {
        Self::with_rule(SgdRule::default(), 0.01)
    }

    /// The momentum, in `[0, 1]`; 0 keeps no velocity.
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.rule.momentum = momentum;
        self
    }

    /// Whether to use Nesterov momentum.
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.rule.nesterov = nesterov;
        self
    }
}

impl Default for SGD {
    fn default() -> Self {
        Self::new()
    }
}

/// SGD's f32 constants of one step.
#[derive(Debug, Clone, Copy)]
pub struct SgdConstants {
    learning_rate: f32,
    momentum: f32,
    nesterov: bool,
}

impl UpdateRule for SgdRule {
    type Constants = SgdConstants;

    fn name(&self) -> &'static str {
        "sgd"
    }

    fn slot_groups(&self) -> Vec<&'static [&'static str]> {
        if self.momentum != 0.0 {
            vec![&["momentum"]]
        } else {
            Vec::new()
        }
    }

    fn constants(&self, step: &StepScalars) -> SgdConstants {
        SgdConstants {
            learning_rate: step.learning_rate as f32,
            momentum: self.momentum as f32,
            nesterov: self.nesterov,
        }
    }

    #[inline(always)]
    fn update<T: Operand>(
        c: &SgdConstants,
        weight: &mut T,
        grad: &T,
        slots: &mut [T],
    ) -> Result<()> {
        let scaled_grad = grad.scale(c.learning_rate)?;
        *weight = match slots {
            [] => weight.sub(&scaled_grad)?,
            [m] => {
                *m = m.scale(c.momentum)?.sub(&scaled_grad)?.flush_denormal();
                if c.nesterov {
                    weight.add(&m.scale(c.momentum)?.sub(&scaled_grad)?)?
                } else {
                    weight.add(m)?
                }
            }
            other => return Err(slot_mismatch("sgd", other.len())),
        };
        Ok(())
    }

    fn config(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut config = serde_json::Map::new();
        config.insert("momentum".into(), json!(self.momentum));
        config.insert("nesterov".into(), json!(self.nesterov));
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimizers::test_support::{assert_close, assert_paths_agree, run, var};
    use crate::optimizers::Optimizer;
    use crate::Result;

    #[test]
    fn plain_sgd_steps_against_the_gradient() -> Result<()> {
        let w = var(&[1.0, -1.0])?;
        let history = run(&mut SGD::new(), &w, &[&[2.0, -4.0]])?;
        // w - 0.01 g = [1 - 0.02, -1 + 0.04]
        assert_close(&history[0], &[0.98, -0.96], 1e-7);
        Ok(())
    }

    #[test]
    fn two_momentum_steps() -> Result<()> {
        // lr 0.1, momentum 0.9, w0 = 1, g = 1 then 2:
        // m1 = -0.1, w1 = 0.9; m2 = 0.9·(-0.1) - 0.2 = -0.29, w2 = 0.61
        let w = var(&[1.0])?;
        let mut sgd = SGD::new().learning_rate(0.1).momentum(0.9);
        let history = run(&mut sgd, &w, &[&[1.0], &[2.0]])?;
        assert_close(&history[0], &[0.9], 1e-7);
        assert_close(&history[1], &[0.61], 1e-7);
        assert_eq!(sgd.variable_count(5), 7);
        Ok(())
    }

    #[test]
    fn two_nesterov_steps() -> Result<()> {
        // m1 = -0.1, w1 = 1 + 0.9·(-0.1) - 0.1 = 0.81
        // m2 = -0.29, w2 = 0.81 + 0.9·(-0.29) - 0.2 = 0.349
        let w = var(&[1.0])?;
        let mut sgd = SGD::new().learning_rate(0.1).momentum(0.9).nesterov(true);
        let history = run(&mut sgd, &w, &[&[1.0], &[2.0]])?;
        assert_close(&history[0], &[0.81], 1e-7);
        assert_close(&history[1], &[0.349], 1e-6);
        Ok(())
    }

    #[test]
    fn host_and_tensor_paths_agree() -> Result<()> {
        let grads: [&[f32]; 2] = [&[0.3, -1.7], &[2.1, 0.05]];
        for rule in [
            SGD::new().rule,
            SGD::new().momentum(0.9).rule,
            SGD::new().momentum(0.8).nesterov(true).rule,
        ] {
            assert_paths_agree(&rule, &[0.7, -0.2], &grads, 0.05)?;
        }
        Ok(())
    }
}
