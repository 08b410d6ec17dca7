//! Adamax, after `keras/src/optimizers/adamax.py`.

use super::base::BaseOptimizer;
use super::moment_decays::{update_moment, MomentDecays, MomentOptions};
use super::operand::Operand;
use super::update_rule::{slot_mismatch, StepScalars, UpdateRule};
use candle_core::Result;

/// Adamax's hyper-parameters and update rule, Adam with the infinity norm:
/// `m += (g-m)(1-β1)`; `u = max(β2·u, |g|)`; `w -= lr·m / ((1-β1^t)(u+ε))`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AdamaxRule(MomentDecays);

/// Adamax (Keras defaults: learning rate 1e-3, β1 0.9, β2 0.999, ε 1e-7).
pub type Adamax = BaseOptimizer<AdamaxRule>;

impl Adamax {
    /// Adamax with Keras's defaults.
    pub fn new() -> Self {
        Self::with_rule(AdamaxRule::default(), 1e-3)
    }
}

impl MomentOptions for AdamaxRule {
    fn moment_decays(&mut self) -> &mut MomentDecays {
        &mut self.0
    }
}

impl Default for Adamax {
    fn default() -> Self {
        Self::new()
    }
}

/// Adamax's f32 constants of one step.
#[derive(Debug, Clone, Copy)]
pub struct AdamaxConstants {
    learning_rate: f32,
    one_minus_beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    bias_correction: f32,
}

impl UpdateRule for AdamaxRule {
    type Constants = AdamaxConstants;

    fn name(&self) -> &'static str {
        "adamax"
    }

    fn slot_groups(&self) -> Vec<&'static [&'static str]> {
        vec![&["momentum", "norm"]]
    }

    fn constants(&self, step: &StepScalars) -> AdamaxConstants {
        let MomentDecays {
            beta_1,
            beta_2,
            epsilon,
        } = self.0;
        AdamaxConstants {
            learning_rate: step.learning_rate as f32,
            one_minus_beta_1: (1.0 - beta_1) as f32,
            beta_2: beta_2 as f32,
            epsilon: epsilon as f32,
            bias_correction: (1.0 - beta_1.powf(step.step as f64)) as f32,
        }
    }

    #[inline(always)]
    fn update<T: Operand>(
        c: &AdamaxConstants,
        weight: &mut T,
        grad: &T,
        slots: &mut [T],
    ) -> Result<()> {
        let [m, u] = slots else {
            return Err(slot_mismatch("adamax", slots.len()));
        };
        update_moment(m, grad, c.one_minus_beta_1)?;
        *u = u.scale(c.beta_2)?.maximum(&grad.abs()?)?.flush_denormal();
        let denominator = u.offset(c.epsilon)?.scale(c.bias_correction)?;
        *weight = weight.sub(&m.scale(c.learning_rate)?.div(&denominator)?)?;
        Ok(())
    }

    fn config(&self) -> serde_json::Map<String, serde_json::Value> {
        self.0.config()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimizers::test_support::{assert_close, assert_paths_agree, run, var};
    use crate::optimizers::Optimizer;
    use crate::Result;

    #[test]
    fn two_steps_follow_keras_formula() -> Result<()> {
        // lr 0.01, g = 0.5 then -2 on w = 1:
        // step 1: m = 0.05, u = 0.5, w = 1 - 0.01·0.05 / (0.1·(0.5 + 1e-7))
        // step 2: m = 0.045 - 0.2 = -0.155, u = max(0.4995, 2) = 2,
        //         w -= 0.01·(-0.155) / ((1 - 0.81)·(2 + 1e-7))
        let w1 = 1.0 - 0.01 * 0.05 / (0.1 * (0.5 + 1e-7));
        let w2 = w1 + 0.01 * 0.155 / (0.19 * (2.0 + 1e-7));
        let w = var(&[1.0])?;
        let mut adamax = Adamax::new().learning_rate(0.01);
        let history = run(&mut adamax, &w, &[&[0.5], &[-2.0]])?;
        assert_close(&history[0], &[w1], 1e-6);
        assert_close(&history[1], &[w2], 1e-6);
        // The norm decays by β2 when the gradient is smaller: u = max(0.999·2, 0.1) = 1.998.
        let state = adamax.state(std::slice::from_ref(&w))?;
        let names: Vec<&str> = state.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["iterations", "learning_rate", "momentum/0", "norm/0"]
        );
        run(&mut adamax, &w, &[&[0.1]])?;
        let norm = adamax.state(std::slice::from_ref(&w))?[3]
            .1
            .to_vec1::<f32>()?;
        assert_close(&norm, &[1.998], 1e-7);
        assert_eq!(adamax.variable_count(5), 2 + 2 * 5);
        Ok(())
    }

    #[test]
    fn host_and_tensor_paths_agree() -> Result<()> {
        let grads: [&[f32]; 3] = [&[0.5, -1.0, 1e-3], &[0.1, 0.3, -2.0], &[-0.7, 0.0, 0.4]];
        assert_paths_agree(&AdamaxRule::default(), &[1.0, -2.0, 0.5], &grads, 0.01)
    }
}
