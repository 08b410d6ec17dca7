//! Adam, after `keras/src/optimizers/adam.py`.

use super::base::BaseOptimizer;
use super::moment_decays::{update_moment, MomentDecays, MomentOptions};
use super::operand::Operand;
use super::update_rule::{slot_mismatch, StepScalars, UpdateRule};
use candle_core::Result;
use serde_json::json;

/// Adam's hyper-parameters and update rule. Keras's formula, with epsilon applied to the
/// bias-uncorrected second moment ("epsilon hat"):
/// `alpha = lr·sqrt(1-β2^t)/(1-β1^t)`; `m += (g-m)(1-β1)`; `v += (g²-v)(1-β2)`;
/// with amsgrad `v̂ = max(v̂, v)` replaces `v` below; `w -= m·alpha/(sqrt(v)+ε)`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AdamRule {
    decays: MomentDecays,
    amsgrad: bool,
}

/// Adam (Keras defaults: learning rate 1e-3, β1 0.9, β2 0.999, ε 1e-7, no amsgrad).
pub type Adam = BaseOptimizer<AdamRule>;

impl Adam {
    /// Adam with Keras's defaults.
    pub fn new() -> Self {
        Self::with_rule(AdamRule::default(), 1e-3)
    }
}

impl Default for Adam {
    fn default() -> Self {
        Self::new()
    }
}

/// Optimizers built on Adam's rule (Adam, AdamW), which share its hyper-parameter builders
/// (β1, β2 and ε through [`MomentOptions`]).
pub trait AdamFamily: MomentOptions {
    /// The Adam rule inside.
    fn adam_rule(&mut self) -> &mut AdamRule;
}

impl AdamFamily for AdamRule {
    fn adam_rule(&mut self) -> &mut AdamRule {
        self
    }
}

impl MomentOptions for AdamRule {
    fn moment_decays(&mut self) -> &mut MomentDecays {
        &mut self.decays
    }
}

impl<R: AdamFamily> BaseOptimizer<R> {
    /// Whether to use the running maximum of `v` (AMSGrad).
    pub fn amsgrad(mut self, amsgrad: bool) -> Self {
        self.rule.adam_rule().amsgrad = amsgrad;
        self
    }
}

/// The f32 constants of one step, computed once as Keras does in the variable's dtype.
#[derive(Debug, Clone, Copy)]
pub struct AdamConstants {
    alpha: f32,
    one_minus_beta_1: f32,
    one_minus_beta_2: f32,
    epsilon: f32,
}

impl UpdateRule for AdamRule {
    type Constants = AdamConstants;

    fn name(&self) -> &'static str {
        "adam"
    }

    fn slot_groups(&self) -> Vec<&'static [&'static str]> {
        let mut groups: Vec<&'static [&'static str]> = vec![&["momentum", "velocity"]];
        if self.amsgrad {
            groups.push(&["velocity_hat"]);
        }
        groups
    }

    fn constants(&self, step: &StepScalars) -> AdamConstants {
        let MomentDecays {
            beta_1,
            beta_2,
            epsilon,
        } = self.decays;
        let t = step.step as f64;
        let alpha = step.learning_rate * (1.0 - beta_2.powf(t)).sqrt() / (1.0 - beta_1.powf(t));
        AdamConstants {
            alpha: alpha as f32,
            one_minus_beta_1: (1.0 - beta_1) as f32,
            one_minus_beta_2: (1.0 - beta_2) as f32,
            epsilon: epsilon as f32,
        }
    }

    #[inline(always)]
    fn update<T: Operand>(
        c: &AdamConstants,
        weight: &mut T,
        grad: &T,
        slots: &mut [T],
    ) -> Result<()> {
        let (m, v, v_hat) = match slots {
            [m, v] => (m, v, None),
            [m, v, v_hat] => (m, v, Some(v_hat)),
            other => return Err(slot_mismatch("adam", other.len())),
        };
        update_moment(m, grad, c.one_minus_beta_1)?;
        update_moment(v, &grad.square()?, c.one_minus_beta_2)?;
        let second_moment = match v_hat {
            Some(v_hat) => {
                *v_hat = v_hat.maximum(v)?;
                v_hat
            }
            None => v,
        };
        let denominator = second_moment.sqrt()?.offset(c.epsilon)?;
        *weight = weight.sub(&m.scale(c.alpha)?.div(&denominator)?)?;
        Ok(())
    }

    fn config(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut config = self.decays.config();
        config.insert("amsgrad".into(), json!(self.amsgrad));
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimizers::test_support::{assert_close, assert_paths_agree, run, var};
    use crate::optimizers::Optimizer;
    use crate::test_threads::on_two_threads;
    use crate::Result;
    use candle_core::Tensor;

    /// Keras's Adam in f64, step by step.
    fn reference(w0: &[f64], grads: &[&[f32]], lr: f64, b2: f64, amsgrad: bool) -> Vec<Vec<f64>> {
        let (b1, eps) = (0.9f64, 1e-7f64);
        let mut w = w0.to_vec();
        let (mut m, mut v, mut v_hat) = (
            vec![0.0; w.len()],
            vec![0.0; w.len()],
            vec![0.0f64; w.len()],
        );
        let mut history = Vec::new();
        for (t, g) in grads.iter().enumerate() {
            let t = (t + 1) as i32;
            let alpha = lr * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
            for i in 0..w.len() {
                let g = g[i] as f64;
                m[i] += (g - m[i]) * (1.0 - b1);
                v[i] += (g * g - v[i]) * (1.0 - b2);
                v_hat[i] = v_hat[i].max(v[i]);
                let second = if amsgrad { v_hat[i] } else { v[i] };
                w[i] -= m[i] * alpha / (second.sqrt() + eps);
            }
            history.push(w.clone());
        }
        history
    }

    #[test]
    fn two_steps_follow_keras_formula() -> Result<()> {
        let grads: [&[f32]; 2] = [&[0.5, -1.0, 0.0], &[0.1, 0.3, 2.0]];
        let w = var(&[1.0, -2.0, 0.5])?;
        let mut adam = Adam::new().learning_rate(0.01);
        let history = run(&mut adam, &w, &grads)?;
        // Step 1 moves every non-zero-gradient weight by ~lr against its gradient's sign.
        assert_close(&history[0], &[0.99, -1.99, 0.5], 1e-6);
        let expected = reference(&[1.0, -2.0, 0.5], &grads, 0.01, 0.999, false);
        assert_close(&history[0], &expected[0], 1e-6);
        assert_close(&history[1], &expected[1], 1e-6);
        assert_eq!(adam.iterations(), 2);
        Ok(())
    }

    #[test]
    fn a_large_variable_on_a_thread_pool_follows_keras_formula() -> Result<()> {
        // Large enough for the optimizer's threaded path (one group on a two-thread pool), with
        // and without amsgrad's running maximum.
        let n = (1 << 16) + 7;
        let w0: Vec<f32> = (0..n).map(|i| ((i % 13) as f32 - 6.0) * 0.1).collect();
        let g1: Vec<f32> = (0..n).map(|i| ((i % 7) as f32 - 3.0) * 0.2).collect();
        let g2: Vec<f32> = (0..n).map(|i| ((i % 5) as f32 - 2.0) * 0.3).collect();
        let grads: [&[f32]; 2] = [&g1, &g2];
        for amsgrad in [false, true] {
            let w = var(&w0)?;
            let mut adam = Adam::new().learning_rate(0.01).amsgrad(amsgrad);
            let history = on_two_threads(|| run(&mut adam, &w, &grads))?;
            let w0: Vec<f64> = w0.iter().map(|&v| v as f64).collect();
            let expected = reference(&w0, &grads, 0.01, 0.999, amsgrad);
            assert_close(&history[1], &expected[1], 1e-6);
        }
        Ok(())
    }

    #[test]
    fn variables_updated_in_groups_on_threads_each_follow_keras_formula() -> Result<()> {
        // Several variables, more than PARALLEL_MIN_WEIGHTS weights in all, on a two-thread
        // pool: each keeps its own moments.
        let sizes = [40_000, 7, 30_000, 1];
        let w0: Vec<Vec<f32>> = sizes
            .iter()
            .enumerate()
            .map(|(v, &n)| (0..n).map(|i| ((i + v) % 11) as f32 * 0.1 - 0.5).collect())
            .collect();
        let g: Vec<Vec<f32>> = sizes
            .iter()
            .enumerate()
            .map(|(v, &n)| {
                (0..n)
                    .map(|i| ((i * 3 + v) % 7) as f32 * 0.2 - 0.6)
                    .collect()
            })
            .collect();
        let vars: Vec<candle_core::Var> = w0.iter().map(|w| var(w)).collect::<Result<_>>()?;
        let grads: Vec<Tensor> = g
            .iter()
            .map(|g| Tensor::new(g.as_slice(), &candle_core::Device::Cpu))
            .collect::<candle_core::Result<_>>()?;
        let pairs: Vec<(&candle_core::Var, &Tensor)> = vars.iter().zip(&grads).collect();
        let mut adam = Adam::new().learning_rate(0.01);
        on_two_threads(|| adam.apply_gradients(&pairs))?;
        on_two_threads(|| adam.apply_gradients(&pairs))?;
        for ((var, w0), g) in vars.iter().zip(&w0).zip(&g) {
            let w0: Vec<f64> = w0.iter().map(|&v| v as f64).collect();
            let expected = reference(&w0, &[g, g], 0.01, 0.999, false);
            assert_close(&var.to_vec1::<f32>()?, &expected[1], 1e-6);
        }
        // A variable listed twice is updated twice, in order, both at step 1 (as Keras's loop
        // does): alpha = 0.01·sqrt(0.001)/0.1; m = 0.05 then 0.095, v = 0.00025 then
        // 0.00049975; w = 1 - 0.05·alpha/sqrt(0.00025) - 0.095·alpha/sqrt(0.00049975).
        let twice = var(&[1.0])?;
        let grad = Tensor::new(&[0.5f32], &candle_core::Device::Cpu)?;
        let mut adam = Adam::new().learning_rate(0.01);
        adam.apply_gradients(&[(&twice, &grad), (&twice, &grad)])?;
        let alpha = 0.01 * 0.001f64.sqrt() / 0.1;
        let expected = 1.0
            - 0.05 * alpha / (0.00025f64.sqrt() + 1e-7)
            - 0.095 * alpha / (0.00049975f64.sqrt() + 1e-7);
        assert_close(&twice.to_vec1::<f32>()?, &[expected], 1e-6);
        Ok(())
    }

    #[test]
    fn amsgrad_uses_the_running_maximum_of_v() -> Result<()> {
        // A large then small gradients with β2 = 0.5: v shrinks fast but v̂ keeps the maximum.
        let grads: [&[f32]; 3] = [&[3.0, -1.0], &[0.01, 0.02], &[0.01, 0.02]];
        let w = var(&[0.0, 0.0])?;
        let mut adam = Adam::new().learning_rate(0.1).beta_2(0.5).amsgrad(true);
        let history = run(&mut adam, &w, &grads)?;
        let expected = reference(&[0.0, 0.0], &grads, 0.1, 0.5, true);
        let plain = reference(&[0.0, 0.0], &grads, 0.1, 0.5, false);
        assert!(
            (expected[2][0] - plain[2][0]).abs() > 1e-4,
            "the test must tell amsgrad apart"
        );
        for (got, want) in history.iter().zip(&expected) {
            assert_close(got, want, 1e-6);
        }
        Ok(())
    }

    #[test]
    fn host_and_tensor_paths_agree() -> Result<()> {
        let grads: [&[f32]; 3] = [&[0.5, -1.0, 1e-3], &[0.1, 0.3, -2.0], &[-0.7, 0.0, 0.4]];
        assert_paths_agree(&AdamRule::default(), &[1.0, -2.0, 0.5], &grads, 0.01)?;
        let amsgrad = Adam::new().amsgrad(true).rule;
        assert_paths_agree(&amsgrad, &[1.0, -2.0, 0.5], &grads, 0.01)
    }

    /// TensorFlow runs Keras's update ops with subnormal results flushed to zero (see
    /// `rkeras_ops::FlushDenormals`), intermediate results included: from m = 2e-38 and a zero
    /// gradient, `(g - m) · (1 - β1)` = -2e-39 is subnormal, so m stays 2e-38 rather than
    /// becoming 1.8e-38.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn subnormal_intermediate_results_are_flushed_as_tensorflow_does() -> Result<()> {
        let w = var(&[1.0])?;
        let vars = std::slice::from_ref(&w);
        let mut adam = Adam::new().learning_rate(0.01);
        let mut state = adam.state(vars)?;
        for (name, tensor) in &mut state {
            if name == "momentum/0" {
                *tensor = Tensor::new(&[2e-38f32], &candle_core::Device::Cpu)?;
            } else if name == "velocity/0" {
                *tensor = Tensor::new(&[1.0f32], &candle_core::Device::Cpu)?;
            }
        }
        adam.load_state(vars, &state)?;
        run(&mut adam, &w, &[&[0.0]])?;
        let after = adam.state(vars)?;
        let slot = |wanted: &str| -> Result<Vec<f32>> {
            match after.iter().find(|(name, _)| name == wanted) {
                Some((_, tensor)) => Ok(tensor.to_vec1::<f32>()?),
                None => panic!("no {wanted} in the optimizer's state"),
            }
        };
        assert_eq!(slot("momentum/0")?, [2e-38]);
        // v = 1 + (0 - 1) · 0.001, and the weight's step m·α/(√v + ε) ≈ 6e-41 flushes too.
        assert_eq!(slot("velocity/0")?, [0.999]);
        assert_eq!(w.to_vec1::<f32>()?, [1.0]);
        Ok(())
    }

    #[test]
    fn config_and_variable_count() {
        let adam = Adam::new().beta_1(0.5);
        let config = Optimizer::config(&adam);
        assert_eq!(config["name"], "adam");
        assert_eq!(config["beta_1"], 0.5);
        assert_eq!(config["epsilon"], 1e-7);
        assert_eq!(config["learning_rate"], 1e-3);
        // keras-behaviours.md: 2 × 9 + 2 = 20.
        assert_eq!(adam.variable_count(9), 20);
        assert_eq!(Adam::new().amsgrad(true).variable_count(9), 29);
    }
}
