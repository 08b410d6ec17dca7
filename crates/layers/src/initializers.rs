//! Weight initializers with Keras 3's formulas and defaults
//! (`keras/src/initializers/random_initializers.py`, `constant_initializers.py`).

use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::random::{normal_values, uniform_values};
use crate::session::with_rng;
use crate::Result;

/// How a weight's first values are drawn. A `seed` makes the draw independent of the
/// session's generator (the same values every time); `None` uses the session's generator.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "class_name", content = "config")]
pub enum Initializer {
    /// U(±sqrt(6 / (fan_in + fan_out))): Keras's default for kernels.
    GlorotUniform {
        /// Optional seed.
        seed: Option<u64>,
    },
    /// N(0, 2 / (fan_in + fan_out)) truncated at two standard deviations.
    GlorotNormal {
        /// Optional seed.
        seed: Option<u64>,
    },
    /// N(0, 2 / fan_in) truncated at two standard deviations.
    HeNormal {
        /// Optional seed.
        seed: Option<u64>,
    },
    /// U(±sqrt(6 / fan_in)).
    HeUniform {
        /// Optional seed.
        seed: Option<u64>,
    },
    /// N(mean, stddev²); Keras's defaults are 0 and 0.05.
    RandomNormal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        stddev: f64,
        /// Optional seed.
        seed: Option<u64>,
    },
    /// U(minval, maxval); Keras's defaults are -0.05 and 0.05.
    RandomUniform {
        /// Lower bound.
        minval: f64,
        /// Upper bound.
        maxval: f64,
        /// Optional seed.
        seed: Option<u64>,
    },
    /// All zeros: Keras's default for biases.
    Zeros,
    /// All ones.
    Ones,
    /// Every value equal to `value`.
    Constant {
        /// The value.
        value: f64,
    },
}

/// Keras's correction for a normal truncated at two standard deviations.
const TRUNCATED_NORMAL_STDDEV_FACTOR: f64 = 0.879_625_661_034_239_8;

impl Initializer {
    /// `glorot_uniform` without a seed.
    pub fn glorot_uniform() -> Self {
        Initializer::GlorotUniform { seed: None }
    }

    /// `he_normal` without a seed.
    pub fn he_normal() -> Self {
        Initializer::HeNormal { seed: None }
    }

    /// `he_uniform` without a seed.
    pub fn he_uniform() -> Self {
        Initializer::HeUniform { seed: None }
    }

    /// `random_normal` with Keras's defaults (mean 0, stddev 0.05).
    pub fn random_normal() -> Self {
        Initializer::RandomNormal {
            mean: 0.0,
            stddev: 0.05,
            seed: None,
        }
    }

    /// `random_uniform` with Keras's defaults (-0.05, 0.05).
    pub fn random_uniform() -> Self {
        Initializer::RandomUniform {
            minval: -0.05,
            maxval: 0.05,
            seed: None,
        }
    }

    /// A tensor of `shape` (Keras layout: Dense `(in, out)`, Conv2D `(kh, kw, in, out)`).
    pub fn initialize(&self, shape: &[usize], device: &Device) -> Result<Tensor> {
        let count: usize = shape.iter().product();
        let (fan_in, fan_out) = compute_fans(shape);
        let values = match *self {
            Initializer::Zeros => vec![0.0; count],
            Initializer::Ones => vec![1.0; count],
            Initializer::Constant { value } => vec![value as f32; count],
            Initializer::GlorotUniform { seed } => {
                let limit = (6.0 / (fan_in + fan_out)).sqrt();
                draw(seed, |rng| uniform_values(rng, count, -limit, limit))
            }
            Initializer::HeUniform { seed } => {
                let limit = (6.0 / fan_in).sqrt();
                draw(seed, |rng| uniform_values(rng, count, -limit, limit))
            }
            Initializer::GlorotNormal { seed } => {
                let stddev = (2.0 / (fan_in + fan_out)).sqrt() / TRUNCATED_NORMAL_STDDEV_FACTOR;
                draw(seed, |rng| truncated_normal_values(rng, count, stddev))
            }
            Initializer::HeNormal { seed } => {
                let stddev = (2.0 / fan_in).sqrt() / TRUNCATED_NORMAL_STDDEV_FACTOR;
                draw(seed, |rng| truncated_normal_values(rng, count, stddev))
            }
            Initializer::RandomNormal { mean, stddev, seed } => {
                draw(seed, |rng| normal_values(rng, count, mean, stddev))
            }
            Initializer::RandomUniform {
                minval,
                maxval,
                seed,
            } => draw(seed, |rng| uniform_values(rng, count, minval, maxval)),
        };
        Ok(Tensor::from_vec(values, shape, device)?)
    }
}

fn draw(seed: Option<u64>, sample: impl FnOnce(&mut StdRng) -> Vec<f32>) -> Vec<f32> {
    match seed {
        Some(seed) => sample(&mut StdRng::seed_from_u64(seed)),
        None => with_rng(sample),
    }
}

/// N(0, stddev²) resampled until within two standard deviations, as TensorFlow's truncated normal.
fn truncated_normal_values(rng: &mut StdRng, count: usize, stddev: f64) -> Vec<f32> {
    let mut values = Vec::with_capacity(count);
    while values.len() < count {
        let batch = normal_values(rng, count - values.len(), 0.0, stddev);
        values.extend(
            batch
                .into_iter()
                .filter(|v| (*v as f64).abs() <= 2.0 * stddev),
        );
    }
    values
}

/// Keras's `compute_fans`: `(fan_in, fan_out)` for a weight of `shape`.
pub fn compute_fans(shape: &[usize]) -> (f64, f64) {
    match shape {
        [] => (1.0, 1.0),
        [n] => (*n as f64, *n as f64),
        [fan_in, fan_out] => (*fan_in as f64, *fan_out as f64),
        [receptive @ .., input, output] => {
            let field: usize = receptive.iter().product();
            ((field * input) as f64, (field * output) as f64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(init: Initializer, shape: &[usize]) -> Vec<f32> {
        init.initialize(shape, &Device::Cpu)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    }

    #[test]
    fn fans_follow_keras() {
        assert_eq!(compute_fans(&[784, 49]), (784.0, 49.0));
        assert_eq!(compute_fans(&[7, 7, 1, 128]), (49.0, 6272.0));
        assert_eq!(compute_fans(&[5]), (5.0, 5.0));
    }

    #[test]
    fn glorot_uniform_fills_its_range() {
        let v = values(Initializer::GlorotUniform { seed: Some(1) }, &[784, 49]);
        let limit = (6.0f64 / (784.0 + 49.0)).sqrt() as f32;
        assert!(v.iter().all(|x| x.abs() <= limit));
        let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
        assert!(max > 0.99 * limit, "max {max} limit {limit}");
    }

    #[test]
    fn seeds_repeat_and_constants_are_constant() {
        let a = values(Initializer::HeNormal { seed: Some(5) }, &[30, 20]);
        assert_eq!(
            a,
            values(Initializer::HeNormal { seed: Some(5) }, &[30, 20])
        );
        let stddev = (2.0f64 / 30.0).sqrt() / TRUNCATED_NORMAL_STDDEV_FACTOR;
        assert!(a.iter().all(|x| (*x as f64).abs() <= 2.0 * stddev));
        assert!(values(Initializer::Zeros, &[3]).iter().all(|x| *x == 0.0));
        assert_eq!(
            values(Initializer::Constant { value: 2.5 }, &[2]),
            vec![2.5, 2.5]
        );
    }

    #[test]
    fn he_uniform_limit() {
        let v = values(Initializer::HeUniform { seed: Some(2) }, &[6, 4]);
        assert!(v.iter().all(|x| x.abs() <= 1.0));
    }
}
