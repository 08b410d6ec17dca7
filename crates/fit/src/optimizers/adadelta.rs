//! Adadelta, after `keras/src/optimizers/adadelta.py`.

use super::base::BaseOptimizer;
use super::operand::Operand;
use super::update_rule::{slot_mismatch, StepScalars, UpdateRule};
use candle_core::Result;
use serde_json::json;

/// Adadelta's hyper-parameters and update rule:
/// `a = ρ·a + (1-ρ)·g²`; `Δ = sqrt(d + ε)·g / sqrt(a + ε)`; `d = ρ·d + (1-ρ)·Δ²`; `w -= lr·Δ`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdadeltaRule {
    rho: f64,
    epsilon: f64,
}

impl Default for AdadeltaRule {
    fn default() -> Self {
        Self {
            rho: 0.95,
            epsilon: 1e-7,
        }
    }
}

/// Adadelta (Keras defaults: learning rate 1e-3, ρ 0.95, ε 1e-7).
pub type Adadelta = BaseOptimizer<AdadeltaRule>;

impl Adadelta {
    /// Adadelta with Keras's defaults.
    pub fn new() -> Self {
        Self::with_rule(AdadeltaRule::default(), 1e-3)
    }

    /// The decay rate of both running averages.
    pub fn rho(mut self, rho: f64) -> Self {
        self.rule.rho = rho;
        self
    }

    /// The constant added under the square roots.
    pub fn epsilon(mut self, epsilon: f64) -> Self {
        self.rule.epsilon = epsilon;
        self
    }
}

impl Default for Adadelta {
    fn default() -> Self {
        Self::new()
    }
}

/// Adadelta's f32 constants of one step.
#[derive(Debug, Clone, Copy)]
pub struct AdadeltaConstants {
    learning_rate: f32,
    rho: f32,
    one_minus_rho: f32,
    epsilon: f32,
}

impl UpdateRule for AdadeltaRule {
    type Constants = AdadeltaConstants;

    fn name(&self) -> &'static str {
        "adadelta"
    }

    fn slot_groups(&self) -> Vec<&'static [&'static str]> {
        vec![&["accumulated_grad", "accumulated_delta_var"]]
    }

    fn constants(&self, step: &StepScalars) -> AdadeltaConstants {
        AdadeltaConstants {
            learning_rate: step.learning_rate as f32,
            rho: self.rho as f32,
            one_minus_rho: (1.0 - self.rho) as f32,
            epsilon: self.epsilon as f32,
        }
    }

    #[inline(always)]
    fn update<T: Operand>(
        c: &AdadeltaConstants,
        weight: &mut T,
        grad: &T,
        slots: &mut [T],
    ) -> Result<()> {
        let [accumulated_grad, accumulated_delta] = slots else {
            return Err(slot_mismatch("adadelta", slots.len()));
        };
        *accumulated_grad = accumulated_grad
            .scale(c.rho)?
            .add(&grad.square()?.scale(c.one_minus_rho)?)?
            .flush_denormal();
        // Keras's delta_var is minus this; negation is exact, so the rounding is Keras's.
        let delta = accumulated_delta
            .offset(c.epsilon)?
            .sqrt()?
            .mul(grad)?
            .div(&accumulated_grad.offset(c.epsilon)?.sqrt()?)?;
        *accumulated_delta = accumulated_delta
            .scale(c.rho)?
            .add(&delta.square()?.scale(c.one_minus_rho)?)?
            .flush_denormal();
        *weight = weight.sub(&delta.scale(c.learning_rate)?)?;
        Ok(())
    }

    fn config(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut config = serde_json::Map::new();
        config.insert("rho".into(), json!(self.rho));
        config.insert("epsilon".into(), json!(self.epsilon));
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
    fn two_steps_follow_keras_formula() -> Result<()> {
        // lr 1, ρ 0.95, g = 2 then 1 on w = 0:
        // step 1: a = 0.05·4 = 0.2, Δ = sqrt(1e-7)·2 / sqrt(0.2 + 1e-7), d = 0.05·Δ², w = -Δ
        // step 2: a = 0.19 + 0.05 = 0.24, Δ' = sqrt(d + 1e-7)·1 / sqrt(0.24 + 1e-7), w -= Δ'
        let eps = 1e-7f64;
        let delta_1 = eps.sqrt() * 2.0 / (0.2 + eps).sqrt();
        let d = 0.05 * delta_1 * delta_1;
        let delta_2 = (d + eps).sqrt() / (0.24 + eps).sqrt();
        let w = var(&[0.0])?;
        let mut adadelta = Adadelta::new().learning_rate(1.0);
        let history = run(&mut adadelta, &w, &[&[2.0], &[1.0]])?;
        assert_close(&history[0], &[-delta_1], 1e-6);
        assert_close(&history[1], &[-delta_1 - delta_2], 1e-6);
        let names: Vec<String> = adadelta
            .state(std::slice::from_ref(&w))?
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            names,
            [
                "iterations",
                "learning_rate",
                "accumulated_grad/0",
                "accumulated_delta_var/0"
            ]
        );
        Ok(())
    }

    #[test]
    fn host_and_tensor_paths_agree() -> Result<()> {
        let grads: [&[f32]; 3] = [&[0.5, -1.0, 1e-3], &[0.1, 0.3, -2.0], &[-0.7, 0.0, 0.4]];
        assert_paths_agree(&AdadeltaRule::default(), &[1.0, -2.0, 0.5], &grads, 0.5)
    }
}
