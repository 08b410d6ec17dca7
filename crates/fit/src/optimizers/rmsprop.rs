//! RMSprop, after `keras/src/optimizers/rmsprop.py`.

use super::base::BaseOptimizer;
use super::operand::Operand;
use super::update_rule::{slot_mismatch, StepScalars, UpdateRule};
use candle_core::Result;
use serde_json::json;

/// RMSprop's hyper-parameters and update rule:
/// `v = ρ·v + (1-ρ)·g²`; centered: `a = ρ·a + (1-ρ)·g`, `d = v - a² + ε`, else `d = v + ε`;
/// `inc = lr·g / sqrt(d)`; with momentum `μ = momentum·μ + inc`, `w -= μ`, else `w -= inc`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RmsPropRule {
    rho: f64,
    momentum: f64,
    epsilon: f64,
    centered: bool,
}

impl Default for RmsPropRule {
    fn default() -> Self {
        Self {
            rho: 0.9,
            momentum: 0.0,
            epsilon: 1e-7,
            centered: false,
        }
    }
}

/// RMSprop (Keras defaults: learning rate 1e-3, ρ 0.9, momentum 0, ε 1e-7, not centered).
pub type RMSprop = BaseOptimizer<RmsPropRule>;

impl RMSprop {
    /// RMSprop with Keras's defaults.
    pub fn new() -> Self {
        Self::with_rule(RmsPropRule::default(), 1e-3)
    }

    /// Discounting factor of the squared-gradient average.
    pub fn rho(mut self, rho: f64) -> Self {
        self.rule.rho = rho;
        self
    }

    /// Momentum of the increments; 0 keeps no momentum.
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.rule.momentum = momentum;
        self
    }

    /// The constant added under the square root.
    pub fn epsilon(mut self, epsilon: f64) -> Self {
        self.rule.epsilon = epsilon;
        self
    }

    /// Whether to normalise by the estimated variance rather than the second moment.
    pub fn centered(mut self, centered: bool) -> Self {
        self.rule.centered = centered;
        self
    }
}

impl Default for RMSprop {
    fn default() -> Self {
        Self::new()
    }
}

/// RMSprop's f32 constants of one step.
#[derive(Debug, Clone, Copy)]
pub struct RmsPropConstants {
    learning_rate: f32,
    rho: f32,
    one_minus_rho: f32,
    momentum: f32,
    epsilon: f32,
    centered: bool,
}

impl UpdateRule for RmsPropRule {
    type Constants = RmsPropConstants;

    fn name(&self) -> &'static str {
        "rmsprop"
    }

    fn slot_groups(&self) -> Vec<&'static [&'static str]> {
        let mut groups: Vec<&'static [&'static str]> = vec![&["velocity"]];
        if self.momentum > 0.0 {
            groups.push(&["momentum"]);
        }
        if self.centered {
            groups.push(&["average_gradient"]);
        }
        groups
    }

    fn constants(&self, step: &StepScalars) -> RmsPropConstants {
        RmsPropConstants {
            learning_rate: step.learning_rate as f32,
            rho: self.rho as f32,
            one_minus_rho: (1.0 - self.rho) as f32,
            momentum: self.momentum as f32,
            epsilon: self.epsilon as f32,
            centered: self.centered,
        }
    }

    #[inline(always)]
    fn update<T: Operand>(
        c: &RmsPropConstants,
        weight: &mut T,
        grad: &T,
        slots: &mut [T],
    ) -> Result<()> {
        // The slots are the velocity, then the momentum and the average gradient where used.
        let (velocity, momenta, averages) = match slots {
            [v] => (v, None, None),
            [v, a] if c.centered => (v, None, Some(a)),
            [v, m] => (v, Some(m), None),
            [v, m, a] => (v, Some(m), Some(a)),
            other => return Err(slot_mismatch("rmsprop", other.len())),
        };
        *velocity = velocity
            .scale(c.rho)?
            .add(&grad.square()?.scale(c.one_minus_rho)?)?
            .flush_denormal();
        let denominator = match averages {
            Some(a) => {
                *a = a.scale(c.rho)?.add(&grad.scale(c.one_minus_rho)?)?;
                velocity.sub(&a.square()?)?.offset(c.epsilon)?
            }
            None => velocity.offset(c.epsilon)?,
        };
        let increment = grad.scale(c.learning_rate)?.div(&denominator.sqrt()?)?;
        *weight = match momenta {
            Some(m) => {
                *m = m.scale(c.momentum)?.add(&increment)?.flush_denormal();
                weight.sub(m)?
            }
            None => weight.sub(&increment)?,
        };
        Ok(())
    }

    fn config(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut config = serde_json::Map::new();
        config.insert("rho".into(), json!(self.rho));
        config.insert("momentum".into(), json!(self.momentum));
        config.insert("epsilon".into(), json!(self.epsilon));
        config.insert("centered".into(), json!(self.centered));
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
    fn one_step_with_keras_defaults() -> Result<()> {
        // v = 0.1·g² ; w -= lr·g / sqrt(v + 1e-7), lr = 1e-3, g = [2, -0.5]
        let w = var(&[1.0, 1.0])?;
        let history = run(&mut RMSprop::new(), &w, &[&[2.0, -0.5]])?;
        let step = |g: f64| 1e-3 * g / (0.1 * g * g + 1e-7).sqrt();
        assert_close(&history[0], &[1.0 - step(2.0), 1.0 - step(-0.5)], 1e-6);
        Ok(())
    }

    #[test]
    fn keras_docstring_example() -> Result<()> {
        // keras: RMSprop(0.1) on var 10 with gradient 10 gives 9.683772
        let w = var(&[10.0])?;
        let history = run(&mut RMSprop::new().learning_rate(0.1), &w, &[&[10.0]])?;
        assert_close(&history[0], &[9.683772], 1e-6);
        Ok(())
    }

    #[test]
    fn centered_with_momentum_and_paths_agree() -> Result<()> {
        // ρ 0.9, momentum 0.5, lr 0.01, g = 1 then -1:
        // v1 = 0.1, a1 = 0.1, inc1 = 0.01 / sqrt(0.1 - 0.01 + 1e-7), μ1 = inc1, w1 = -μ1
        // v2 = 0.19, a2 = 0.09 - 0.1 = -0.01, inc2 = -0.01 / sqrt(0.19 - 1e-4 + 1e-7), μ2 = 0.5μ1 + inc2
        let inc1 = 0.01 / (0.1f64 - 0.01 + 1e-7).sqrt();
        let inc2 = -0.01 / (0.19f64 - 1e-4 + 1e-7).sqrt();
        let mu2 = 0.5 * inc1 + inc2;
        let w = var(&[0.0])?;
        let mut rmsprop = RMSprop::new()
            .learning_rate(0.01)
            .momentum(0.5)
            .centered(true);
        let history = run(&mut rmsprop, &w, &[&[1.0], &[-1.0]])?;
        assert_close(&history[0], &[-inc1], 1e-6);
        assert_close(&history[1], &[-inc1 - mu2], 1e-6);
        assert_eq!(rmsprop.variable_count(4), 2 + 3 * 4);
        let grads: [&[f32]; 3] = [&[1.0, -0.2], &[-1.0, 0.4], &[0.3, 0.3]];
        assert_paths_agree(&rmsprop.rule, &[0.0, 1.0], &grads, 0.01)?;
        assert_paths_agree(&RmsPropRule::default(), &[0.0, 1.0], &grads, 0.01)
    }
}
