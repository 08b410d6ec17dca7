//! What every optimizer shares, after `keras/src/optimizers/base_optimizer.py`: the iteration
//! counter, the learning rate or its schedule, gradient clipping, weight decay, the checks on
//! gradients, and the counter and learning rate in the state saved in checkpoints. The slots
//! live in [`SlotStore`], the update itself in [`update_variables`].

use super::clipping::GradientClipping;
use super::saved_state::SavedState;
use super::schedules::{LearningRate, LearningRateSchedule};
use super::slots::{slot_names, SlotStore};
use super::threaded_update::{update_variables, GradientOf, SharedStep};
use super::update_rule::{slot_count, StepScalars, UpdateRule};
use super::weight_decay::WeightDecay;
use super::Optimizer;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, Var};
use serde_json::json;

/// An optimizer: an [`UpdateRule`] plus everything Keras's base optimizer adds to it.
///
/// The builder method [`learning_rate`](Self::learning_rate) shadows the trait getter of the same
/// name on concrete types; call the getter as `Optimizer::learning_rate(&optimizer)`.
#[derive(Debug)]
pub struct BaseOptimizer<R> {
    pub(crate) rule: R,
    learning_rate: LearningRate,
    clipping: GradientClipping,
    weight_decay: Option<f64>,
    iterations: u64,
    slots: SlotStore,
    scratch: Vec<f32>,
}

impl<R: UpdateRule> BaseOptimizer<R> {
    pub(crate) fn with_rule(rule: R, learning_rate: f64) -> Self {
        Self {
            rule,
            learning_rate: LearningRate::Constant(learning_rate),
            clipping: GradientClipping::None,
            weight_decay: None,
            iterations: 0,
            slots: SlotStore::default(),
            scratch: Vec::new(),
        }
    }

    /// A constant learning rate (replacing any schedule).
    pub fn learning_rate(mut self, learning_rate: f64) -> Self {
        self.learning_rate = LearningRate::Constant(learning_rate);
        self
    }

    /// A learning-rate schedule, e.g. [`ExponentialDecay`](super::ExponentialDecay).
    pub fn schedule(mut self, schedule: impl LearningRateSchedule + 'static) -> Self {
        self.learning_rate = LearningRate::Schedule(Box::new(schedule));
        self
    }

    /// Clips each gradient to an L2 norm of at most `clip_norm` (replacing other clipping).
    pub fn clipnorm(mut self, clip_norm: f64) -> Self {
        self.clipping = GradientClipping::Norm(clip_norm);
        self
    }

    /// Clamps each gradient element to `[-clip_value, clip_value]` (replacing other clipping).
    pub fn clipvalue(mut self, clip_value: f64) -> Self {
        self.clipping = GradientClipping::Value(clip_value);
        self
    }

    /// Clips all gradients together to a joint L2 norm of at most `clip_norm` (replacing other clipping).
    pub fn global_clipnorm(mut self, clip_norm: f64) -> Self {
        self.clipping = GradientClipping::GlobalNorm(clip_norm);
        self
    }

    /// Decoupled weight decay: before each update, `w -= w · weight_decay · learning_rate`.
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = Some(weight_decay);
        self
    }

    fn check_gradient(&self, var: &Var, grad: &Tensor) -> Result<()> {
        if var.dims() != grad.dims() {
            return Err(Error::Shape {
                context: format!("optimizer {}", self.rule.name()),
                expected: format!("a gradient of the variable's shape {:?}", var.dims()),
                got: format!("{:?}", grad.dims()),
            });
        }
        Ok(())
    }

    /// Whether the learning rate is a constant (saved in checkpoints) rather than a schedule.
    fn constant_learning_rate(&self) -> bool {
        matches!(self.learning_rate, LearningRate::Constant(_))
    }
}

impl<R: UpdateRule> Optimizer for BaseOptimizer<R> {
    fn name(&self) -> &str {
        self.rule.name()
    }

    fn apply_gradients(&mut self, params_and_grads: &[(&Var, &Tensor)]) -> Result<()> {
        self.learning_rate.validate()?;
        let mut grads = Vec::with_capacity(params_and_grads.len());
        for (var, grad) in params_and_grads {
            self.check_gradient(var, grad)?;
            grads.push(if grad.dtype() == var.dtype() {
                (*grad).clone()
            } else {
                grad.to_dtype(var.dtype())?
            });
        }
        let adjustments = self.clipping.adjustments(&grads)?;
        let params: Vec<GradientOf<'_>> = params_and_grads
            .iter()
            .zip(&grads)
            .zip(adjustments)
            .map(|(((var, _), grad), adjustment)| (*var, grad, adjustment))
            .collect();
        let scalars = StepScalars {
            learning_rate: self.learning_rate.at(self.iterations),
            step: self.iterations + 1,
        };
        let step = SharedStep {
            constants: self.rule.constants(&scalars),
            weight_decay: self
                .weight_decay
                .map(|rate| WeightDecay::new(rate, scalars.learning_rate)),
        };
        update_variables(
            &self.rule,
            &mut self.slots,
            &params,
            &step,
            &mut self.scratch,
        )?;
        self.iterations += 1;
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.learning_rate.at(self.iterations)
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.learning_rate = LearningRate::Constant(lr);
    }

    fn iterations(&self) -> u64 {
        self.iterations
    }

    fn variable_count(&self, trainable_params: usize) -> usize {
        let learning_rate = usize::from(self.constant_learning_rate());
        let scalars = self.rule.scalar_variables(self.iterations).len();
        1 + learning_rate + scalars + slot_count(&self.rule) * trainable_params
    }

    fn state(&self, vars: &[Var]) -> Result<Vec<(String, Tensor)>> {
        let mut state = vec![(
            "iterations".to_string(),
            Tensor::new(self.iterations as i64, &Device::Cpu)?,
        )];
        if let LearningRate::Constant(lr) = self.learning_rate {
            state.push(("learning_rate".to_string(), Tensor::new(lr, &Device::Cpu)?));
        }
        state.extend(self.slots.state(&self.rule, vars)?);
        for (name, value) in self.rule.scalar_variables(self.iterations) {
            state.push((name.to_string(), Tensor::new(value, &Device::Cpu)?));
        }
        Ok(state)
    }

    fn load_state(&mut self, vars: &[Var], state: &[(String, Tensor)]) -> Result<()> {
        let mut expected = vec!["iterations".to_string()];
        if self.constant_learning_rate() {
            expected.push("learning_rate".to_string());
        }
        expected.extend(slot_names(&self.rule, vars.len()));
        let scalars = self.rule.scalar_variables(self.iterations);
        expected.extend(scalars.iter().map(|(name, _)| name.to_string()));
        let saved = SavedState::new(self.rule.name(), vars.len(), &expected, state)?;
        let iterations = saved
            .get("iterations")?
            .to_dtype(DType::I64)?
            .to_scalar::<i64>()?;
        let iterations = u64::try_from(iterations).map_err(|_| {
            Error::Config(format!(
                "optimizer state: iterations must be >= 0, got {iterations}"
            ))
        })?;
        let learning_rate = if self.constant_learning_rate() {
            Some(
                saved
                    .get("learning_rate")?
                    .to_dtype(DType::F64)?
                    .to_scalar::<f64>()?,
            )
        } else {
            None
        };
        self.slots.load(&self.rule, vars, &saved)?;
        self.iterations = iterations;
        if let Some(lr) = learning_rate {
            self.learning_rate = LearningRate::Constant(lr);
        }
        Ok(())
    }

    fn config(&self) -> serde_json::Value {
        let mut config = serde_json::Map::new();
        config.insert("name".into(), json!(self.rule.name()));
        config.insert("learning_rate".into(), self.learning_rate.config());
        config.insert("weight_decay".into(), json!(self.weight_decay));
        for (key, value) in self.clipping.config_entries() {
            config.insert(key.into(), value);
        }
        config.insert("use_ema".into(), json!(false));
        config.insert("ema_momentum".into(), json!(0.99));
        config.insert("ema_overwrite_frequency".into(), json!(null));
        config.insert("loss_scale_factor".into(), json!(null));
        config.insert("gradient_accumulation_steps".into(), json!(null));
        config.extend(self.rule.config());
        serde_json::Value::Object(config)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{assert_close, run, var};
    use super::super::{ExponentialDecay, Optimizer, SGD};
    use crate::Result;
    use candle_core::{Device, Tensor};

    #[test]
    fn the_schedule_is_read_at_the_iteration_count_before_each_update() -> Result<()> {
        // SGD with lr = 1 · 0.5^floor(step / 1): updates use 1, 0.5, 0.25.
        let w = var(&[0.0])?;
        let mut sgd = SGD::new().schedule(ExponentialDecay::new(1.0, 1, 0.5).staircase(true));
        assert_eq!(Optimizer::learning_rate(&sgd), 1.0);
        let history = run(&mut sgd, &w, &[&[1.0], &[1.0], &[1.0]])?;
        assert_eq!(history, vec![vec![-1.0], vec![-1.5], vec![-1.75]]);
        assert_eq!(Optimizer::learning_rate(&sgd), 0.125);
        assert_eq!(sgd.variable_count(3), 1); // no learning_rate variable under a schedule
        sgd.set_learning_rate(0.01);
        assert_eq!(Optimizer::learning_rate(&sgd), 0.01);
        assert_eq!(sgd.variable_count(3), 2);
        Ok(())
    }

    #[test]
    fn clipping_applies_before_the_update() -> Result<()> {
        // |g| = 5 clipped to norm 1 → [0.6, 0.8]; SGD lr 1
        let w = var(&[0.0, 0.0])?;
        let history = run(
            &mut SGD::new().learning_rate(1.0).clipnorm(1.0),
            &w,
            &[&[3.0, 4.0]],
        )?;
        assert_close(&history[0], &[-0.6, -0.8], 1e-7);
        let w = var(&[0.0, 0.0])?;
        let history = run(
            &mut SGD::new().learning_rate(1.0).clipvalue(0.5),
            &w,
            &[&[3.0, -0.25]],
        )?;
        assert_eq!(history[0], vec![-0.5, 0.25]);
        let (a, b) = (var(&[0.0])?, var(&[0.0])?);
        let (ga, gb) = (
            Tensor::new(&[3f32], &Device::Cpu)?,
            Tensor::new(&[4f32], &Device::Cpu)?,
        );
        let mut sgd = SGD::new().learning_rate(1.0).global_clipnorm(1.0);
        sgd.apply_gradients(&[(&a, &ga), (&b, &gb)])?;
        assert_close(&a.to_vec1::<f32>()?, &[-0.6], 1e-7);
        assert_close(&b.to_vec1::<f32>()?, &[-0.8], 1e-7);
        Ok(())
    }
}
