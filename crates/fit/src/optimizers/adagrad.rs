//! Adagrad, after `keras/src/optimizers/adagrad.py`.

use super::base::BaseOptimizer;
use super::operand::Operand;
use super::update_rule::{slot_mismatch, StepScalars, UpdateRule};
use candle_core::Result;
use serde_json::json;

/// Adagrad's hyper-parameters and update rule: `acc += g²`; `w -= lr·g / sqrt(acc + ε)`, with
/// the accumulator starting at `initial_accumulator_value`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdagradRule {
    initial_accumulator_value: f64,
    epsilon: f64,
}

impl Default for AdagradRule {
    fn default() -> Self {
        Self {
            initial_accumulator_value: 0.1,
            epsilon: 1e-7,
        }
    }
}

/// Adagrad (Keras defaults: learning rate 1e-3, initial accumulator 0.1, ε 1e-7).
pub type Adagrad = BaseOptimizer<AdagradRule>;

impl Adagrad {
    /// Adagrad with Keras's defaults.
    pub fn new() -> Self {
        Self::with_rule(AdagradRule::default(), 1e-3)
    }

    /// The value the accumulators start from (non-negative).
    pub fn initial_accumulator_value(mut self, value: f64) -> Self {
        self.rule.initial_accumulator_value = value;
        self
    }

    /// The constant added under the square root.
    pub fn epsilon(mut self, epsilon: f64) -> Self {
        self.rule.epsilon = epsilon;
        self
    }
}

impl Default for Adagrad {
    fn default() -> Self {
        Self::new()
    }
}

/// Adagrad's f32 constants of one step.
#[derive(Debug, Clone, Copy)]
pub struct AdagradConstants {
    learning_rate: f32,
    epsilon: f32,
}

impl UpdateRule for AdagradRule {
    type Constants = AdagradConstants;

    fn name(&self) -> &'static str {
        "adagrad"
    }

    fn slot_groups(&self) -> Vec<&'static [&'static str]> {
        vec![&["accumulator"]]
    }

    fn initial_slot_value(&self) -> f64 {
        self.initial_accumulator_value
    }

    fn constants(&self, step: &StepScalars) -> AdagradConstants {
        AdagradConstants {
            learning_rate: step.learning_rate as f32,
            epsilon: self.epsilon as f32,
        }
    }

    #[inline(always)]
    fn update<T: Operand>(
        c: &AdagradConstants,
        weight: &mut T,
        grad: &T,
        slots: &mut [T],
    ) -> Result<()> {
        let [accumulator] = slots else {
            return Err(slot_mismatch("adagrad", slots.len()));
        };
        *accumulator = accumulator.add(&grad.square()?)?;
        let denominator = accumulator.offset(c.epsilon)?.sqrt()?;
        *weight = weight.sub(&grad.scale(c.learning_rate)?.div(&denominator)?)?;
        Ok(())
    }

    fn config(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut config = serde_json::Map::new();
        config.insert(
            "initial_accumulator_value".into(),
            json!(self.initial_accumulator_value),
        );
        config.insert("epsilon".into(), json!(self.epsilon));
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimizers::test_support::{assert_close, assert_paths_agree, run, var};
    use crate::Result;

    #[test]
    fn one_step_from_the_initial_accumulator() -> Result<()> {
        // acc = 0.1 + g², w -= 1e-3·g / sqrt(acc + 1e-7); g = [1, -3]
        let w = var(&[0.5, 0.5])?;
        let history = run(&mut Adagrad::new(), &w, &[&[1.0, -3.0]])?;
        let step = |g: f64| 1e-3 * g / (0.1 + g * g + 1e-7).sqrt();
        assert_close(&history[0], &[0.5 - step(1.0), 0.5 - step(-3.0)], 1e-6);
        let grads: [&[f32]; 2] = [&[1.0, -3.0], &[0.2, 0.0]];
        assert_paths_agree(&AdagradRule::default(), &[0.5, 0.5], &grads, 0.01)
    }
}
