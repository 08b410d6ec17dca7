//! Learning-rate schedules, after `keras/src/optimizers/schedules/learning_rate_schedule.py`.

use crate::{Error, Result};
use serde_json::json;
use std::fmt::Debug;

/// A learning rate that depends on the optimizer's iteration count (the number of updates done).
pub trait LearningRateSchedule: Debug + Send + Sync {
    /// The learning rate the update after `step` completed updates uses.
    fn value(&self, step: u64) -> f64;
    /// Keras's serialised form: `{"module", "class_name", "config", "registered_name"}`.
    fn config(&self) -> serde_json::Value;
    /// Refuses settings the formula cannot use (checked before every update).
    fn validate(&self) -> Result<()>;
}

/// `initial_learning_rate · decay_rate ^ (step / decay_steps)`, with an integer division when
/// [`staircase`](Self::staircase) is set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExponentialDecay {
    initial_learning_rate: f64,
    decay_steps: u64,
    decay_rate: f64,
    staircase: bool,
}

impl ExponentialDecay {
    /// A smooth decay by `decay_rate` every `decay_steps` updates (which must be positive).
    pub fn new(initial_learning_rate: f64, decay_steps: u64, decay_rate: f64) -> Self {
        Self {
            initial_learning_rate,
            decay_steps,
            decay_rate,
            staircase: false,
        }
    }

    /// Whether the exponent is `floor(step / decay_steps)`, so the rate drops in steps.
    pub fn staircase(mut self, staircase: bool) -> Self {
        self.staircase = staircase;
        self
    }
}

impl LearningRateSchedule for ExponentialDecay {
    fn value(&self, step: u64) -> f64 {
        let mut exponent = step as f64 / self.decay_steps as f64;
        if self.staircase {
            exponent = exponent.floor();
        }
        self.initial_learning_rate * self.decay_rate.powf(exponent)
    }

    fn config(&self) -> serde_json::Value {
        json!({
            "module": "keras.optimizers.schedules",
            "class_name": "ExponentialDecay",
            "config": {
                "initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate,
                "staircase": self.staircase,
                "name": "ExponentialDecay",
            },
            "registered_name": null,
        })
    }

    fn validate(&self) -> Result<()> {
        if self.decay_steps == 0 {
            return Err(Error::Config(
                "ExponentialDecay: decay_steps must be > 0, got 0".into(),
            ));
        }
        Ok(())
    }
}

/// The learning rate of an optimizer: a value (which callbacks may change) or a schedule.
#[derive(Debug)]
pub enum LearningRate {
    /// A fixed value, stored as the optimizer variable `learning_rate`.
    Constant(f64),
    /// A function of the iteration count.
    Schedule(Box<dyn LearningRateSchedule>),
}

impl LearningRate {
    /// The rate for the update after `iterations` completed updates.
    pub fn at(&self, iterations: u64) -> f64 {
        match self {
            Self::Constant(value) => *value,
            Self::Schedule(schedule) => schedule.value(iterations),
        }
    }

    /// The value Keras's `get_config` writes under "learning_rate".
    pub fn config(&self) -> serde_json::Value {
        match self {
            Self::Constant(value) => json!(value),
            Self::Schedule(schedule) => schedule.config(),
        }
    }

    /// Refuses an unusable schedule.
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Constant(_) => Ok(()),
            Self::Schedule(schedule) => schedule.validate(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smooth_decay_follows_the_formula() {
        let schedule = ExponentialDecay::new(0.1, 100, 0.5);
        assert_eq!(schedule.value(0), 0.1);
        assert!((schedule.value(50) - 0.1 * 0.5f64.sqrt()).abs() < 1e-15);
        assert!((schedule.value(100) - 0.05).abs() < 1e-15);
        assert!((schedule.value(250) - 0.1 * 0.5f64.powf(2.5)).abs() < 1e-15);
    }

    #[test]
    fn staircase_decay_drops_every_decay_steps() {
        let schedule = ExponentialDecay::new(1.0, 10, 0.9).staircase(true);
        assert_eq!(schedule.value(9), 1.0);
        assert!((schedule.value(10) - 0.9).abs() < 1e-15);
        assert!((schedule.value(29) - 0.81).abs() < 1e-15);
        assert_eq!(schedule.config()["config"]["staircase"], true);
    }

    #[test]
    fn zero_decay_steps_is_refused() {
        assert!(ExponentialDecay::new(1.0, 0, 0.9).validate().is_err());
        assert!(
            LearningRate::Schedule(Box::new(ExponentialDecay::new(1.0, 1, 0.9)))
                .validate()
                .is_ok()
        );
    }
}
