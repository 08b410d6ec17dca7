//! Nadam, after `keras/src/optimizers/nadam.py`.

use super::base::BaseOptimizer;
use super::moment_decays::{update_moment, MomentDecays, MomentOptions};
use super::operand::Operand;
use super::update_rule::{slot_mismatch, StepScalars, UpdateRule};
use candle_core::Result;

/// Nadam's hyper-parameters and update rule, Adam with Nesterov momentum and the momentum
/// schedule `μ_t = β1·(1 - 0.5·0.96^t)`, `Π_t = μ_1···μ_t` (Keras's `u_product`):
/// `m += (g-m)(1-β1)`; `v += (g²-v)(1-β2)`;
/// `m̂ = μ_{t+1}·m / (1 - Π_t·μ_{t+1}) + (1-μ_t)·g / (1 - Π_t)`; `v̂ = v / (1-β2^t)`;
/// `w -= m̂·lr / (sqrt(v̂) + ε)`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct NadamRule(MomentDecays);

/// Nadam (Keras defaults: learning rate 1e-3, β1 0.9, β2 0.999, ε 1e-7).
pub type Nadam = BaseOptimizer<NadamRule>;

impl Nadam {
    /// Nadam with Keras's defaults.
    pub fn new() -> Self {
        Self::with_rule(NadamRule::default(), 1e-3)
    }
}

impl MomentOptions for NadamRule {
    fn moment_decays(&mut self) -> &mut MomentDecays {
        &mut self.0
    }
}

impl Default for Nadam {
    fn default() -> Self {
        Self::new()
    }
}

impl NadamRule {
    /// The momentum of step `t`, `β1·(1 - 0.5·0.96^t)`.
    fn momentum_at(&self, t: u64) -> f64 {
        self.0.beta_1 * (1.0 - 0.5 * 0.96f64.powf(t as f64))
    }

    /// Keras's `u_product` after `t` updates: the product of the momenta of steps 1 to `t`.
    fn momentum_product(&self, t: u64) -> f64 {
        (1..=t).map(|i| self.momentum_at(i)).product()
    }
}

/// Nadam's f32 constants of one step.
#[derive(Debug, Clone, Copy)]
pub struct NadamConstants {
    learning_rate: f32,
    one_minus_beta_1: f32,
    one_minus_beta_2: f32,
    epsilon: f32,
    next_momentum: f32,
    one_minus_next_product: f32,
    one_minus_momentum: f32,
    one_minus_product: f32,
    one_minus_beta_2_power: f32,
}

impl UpdateRule for NadamRule {
    type Constants = NadamConstants;

    fn name(&self) -> &'static str {
        "nadam"
    }

    fn slot_groups(&self) -> Vec<&'static [&'static str]> {
        vec![&["momentum", "velocity"]]
    }

    fn constants(&self, step: &StepScalars) -> NadamConstants {
        let MomentDecays {
            beta_1,
            beta_2,
            epsilon,
        } = self.0;
        let t = step.step;
        let product = self.momentum_product(t);
        let next_momentum = self.momentum_at(t + 1);
        NadamConstants {
            learning_rate: step.learning_rate as f32,
            one_minus_beta_1: (1.0 - beta_1) as f32,
            one_minus_beta_2: (1.0 - beta_2) as f32,
            epsilon: epsilon as f32,
            next_momentum: next_momentum as f32,
            one_minus_next_product: (1.0 - product * next_momentum) as f32,
            one_minus_momentum: (1.0 - self.momentum_at(t)) as f32,
            one_minus_product: (1.0 - product) as f32,
            one_minus_beta_2_power: (1.0 - beta_2.powf(t as f64)) as f32,
        }
    }

    fn scalar_variables(&self, iterations: u64) -> Vec<(&'static str, f32)> {
        vec![("u_product", self.momentum_product(iterations) as f32)]
    }

    #[inline(always)]
    fn update<T: Operand>(
        c: &NadamConstants,
        weight: &mut T,
        grad: &T,
        slots: &mut [T],
    ) -> Result<()> {
        let [m, v] = slots else {
            return Err(slot_mismatch("nadam", slots.len()));
        };
        update_moment(m, grad, c.one_minus_beta_1)?;
        update_moment(v, &grad.square()?, c.one_minus_beta_2)?;
        let m_hat = m
            .scale(c.next_momentum)?
            .divide_by(c.one_minus_next_product)?
            .add(
                &grad
                    .scale(c.one_minus_momentum)?
                    .divide_by(c.one_minus_product)?,
            )?;
        let v_hat = v.divide_by(c.one_minus_beta_2_power)?;
        let denominator = v_hat.sqrt()?.offset(c.epsilon)?;
        *weight = weight.sub(&m_hat.scale(c.learning_rate)?.div(&denominator)?)?;
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
    use candle_core::{Device, Tensor};

    /// Keras's Nadam in f64, step by step, with its `u_product` variable.
    fn reference(w0: f64, grads: &[f64], lr: f64) -> Vec<f64> {
        let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-7f64);
        let (mut w, mut m, mut v, mut u_product) = (w0, 0.0, 0.0, 1.0);
        let mut history = Vec::new();
        for (i, g) in grads.iter().enumerate() {
            let t = (i + 1) as f64;
            u_product *= b1 * (1.0 - 0.5 * 0.96f64.powf(t));
            let u_t = b1 * (1.0 - 0.5 * 0.96f64.powf(t));
            let u_t_1 = b1 * (1.0 - 0.5 * 0.96f64.powf(t + 1.0));
            m += (g - m) * (1.0 - b1);
            v += (g * g - v) * (1.0 - b2);
            let m_hat = u_t_1 * m / (1.0 - u_product * u_t_1) + (1.0 - u_t) * g / (1.0 - u_product);
            let v_hat = v / (1.0 - b2.powf(t));
            w -= m_hat * lr / (v_hat.sqrt() + eps);
            history.push(w);
        }
        history
    }

    #[test]
    fn three_steps_follow_keras_formula() -> Result<()> {
        // Step 1 by hand: μ1 = 0.9·(1 - 0.48) = 0.468, μ2 = 0.9·(1 - 0.5·0.9216) = 0.48528,
        // m = 0.1·g, v = 0.001·g², m̂ = μ2·0.1g / (1 - μ1·μ2) + (1 - μ1)·g / (1 - μ1),
        // v̂ = g²: with g = 0.5, w = 1 - lr·m̂ / (0.5 + 1e-7).
        let (mu1, mu2) = (0.468f64, 0.48528f64);
        let m_hat = mu2 * 0.05 / (1.0 - mu1 * mu2) + 0.5;
        let step_1 = 1.0 - 0.01 * m_hat / (0.5 + 1e-7);
        let grads = [0.5, -1.0, 0.25];
        let expected = reference(1.0, &grads, 0.01);
        assert!((expected[0] - step_1).abs() < 1e-12);
        let w = var(&[1.0])?;
        let mut nadam = Nadam::new().learning_rate(0.01);
        let history = run(&mut nadam, &w, &[&[0.5], &[-1.0], &[0.25]])?;
        for (got, want) in history.iter().zip(&expected) {
            assert_close(got, &[*want], 1e-6);
        }
        Ok(())
    }

    #[test]
    fn u_product_is_counted_and_saved_after_the_slots() -> Result<()> {
        let w = var(&[1.0, 2.0])?;
        let mut nadam = Nadam::new();
        run(&mut nadam, &w, &[&[0.5, 0.5], &[0.1, 0.2]])?;
        let vars = std::slice::from_ref(&w);
        let state = nadam.state(vars)?;
        let names: Vec<&str> = state.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "iterations",
                "learning_rate",
                "momentum/0",
                "velocity/0",
                "u_product"
            ]
        );
        // μ1·μ2 = 0.468 · 0.48528
        let u_product = state[4].1.to_scalar::<f32>()?;
        assert!(
            (u_product as f64 - 0.468 * 0.48528).abs() < 1e-7,
            "{u_product}"
        );
        // iterations, learning rate, u_product and two slots per weight, as Keras counts.
        assert_eq!(nadam.variable_count(7), 3 + 2 * 7);
        let copy = var(&w.to_vec1::<f32>()?)?;
        let mut restored = Nadam::new();
        restored.load_state(std::slice::from_ref(&copy), &state)?;
        let next = Tensor::new(&[-0.3f32, 0.7], &Device::Cpu)?;
        nadam.apply_gradients(&[(&w, &next)])?;
        restored.apply_gradients(&[(&copy, &next)])?;
        assert_eq!(w.to_vec1::<f32>()?, copy.to_vec1::<f32>()?);
        let without: Vec<_> = state.into_iter().take(4).collect();
        assert!(restored
            .load_state(std::slice::from_ref(&copy), &without)
            .is_err());
        Ok(())
    }

    #[test]
    fn host_and_tensor_paths_agree() -> Result<()> {
        let grads: [&[f32]; 3] = [&[0.5, -1.0, 1e-3], &[0.1, 0.3, -2.0], &[-0.7, 0.0, 0.4]];
        assert_paths_agree(&NadamRule::default(), &[1.0, -2.0, 0.5], &grads, 0.01)
    }
}
