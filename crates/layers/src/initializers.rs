//! Weight initializers with Keras 3's formulas and defaults
//! (`keras/src/initializers/random_initializers.py`, `constant_initializers.py`).

use std::str::FromStr;

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
    /// N(0, 1 / fan_in) truncated at two standard deviations: `selu`'s initializer.
    LecunNormal {
        /// Optional seed.
        seed: Option<u64>,
    },
    /// U(±sqrt(3 / fan_in)).
    LecunUniform {
        /// Optional seed.
        seed: Option<u64>,
    },
    /// N(mean, stddev²) redrawn until within two standard deviations of the mean; Keras's
    /// defaults are 0 and 0.05.
    TruncatedNormal {
        /// Mean.
        mean: f64,
        /// Standard deviation of the normal before truncation.
        stddev: f64,
        /// Optional seed.
        seed: Option<u64>,
    },
    /// An orthogonal matrix, Keras's default for recurrent kernels: the Q of the QR
    /// decomposition of a standard normal matrix (signs corrected so that R's diagonal is
    /// positive), for the shape flattened to (product of all axes but the last, last), with
    /// orthonormal columns if it has at least as many rows as columns, else orthonormal rows;
    /// times `gain`. Keras's default gain is 1.
    #[serde(alias = "OrthogonalInitializer")]
    Orthogonal {
        /// The factor applied to the matrix.
        gain: f64,
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

/// Makes an initializer with Keras's defaults.
type MakeInitializer = fn() -> Initializer;

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

    /// `orthogonal` with Keras's defaults (gain 1, no seed).
    pub fn orthogonal() -> Self {
        Initializer::Orthogonal {
            gain: 1.0,
            seed: None,
        }
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

    /// `truncated_normal` with Keras's defaults (mean 0, stddev 0.05).
    pub fn truncated_normal() -> Self {
        Initializer::TruncatedNormal {
            mean: 0.0,
            stddev: 0.05,
            seed: None,
        }
    }

    /// Each name Keras's `initializers.get` takes (class name, snake-cased class name and
    /// aliases, `keras/src/initializers/__init__.py`) with the initializer it gives, Keras's
    /// defaults.
    const NAMES: [(&'static str, MakeInitializer); 34] = [
        ("glorot_uniform", Initializer::glorot_uniform),
        ("GlorotUniform", Initializer::glorot_uniform),
        ("glorot_normal", || Initializer::GlorotNormal { seed: None }),
        ("GlorotNormal", || Initializer::GlorotNormal { seed: None }),
        ("he_normal", Initializer::he_normal),
        ("HeNormal", Initializer::he_normal),
        ("he_uniform", Initializer::he_uniform),
        ("HeUniform", Initializer::he_uniform),
        ("lecun_normal", || Initializer::LecunNormal { seed: None }),
        ("LecunNormal", || Initializer::LecunNormal { seed: None }),
        ("lecun_uniform", || Initializer::LecunUniform { seed: None }),
        ("LecunUniform", || Initializer::LecunUniform { seed: None }),
        ("orthogonal", Initializer::orthogonal),
        ("Orthogonal", Initializer::orthogonal),
        ("orthogonal_initializer", Initializer::orthogonal),
        ("OrthogonalInitializer", Initializer::orthogonal),
        ("random_normal", Initializer::random_normal),
        ("RandomNormal", Initializer::random_normal),
        ("normal", Initializer::random_normal),
        ("random_uniform", Initializer::random_uniform),
        ("RandomUniform", Initializer::random_uniform),
        ("uniform", Initializer::random_uniform),
        ("truncated_normal", Initializer::truncated_normal),
        ("TruncatedNormal", Initializer::truncated_normal),
        ("zeros", || Initializer::Zeros),
        ("Zeros", || Initializer::Zeros),
        ("zero", || Initializer::Zeros),
        ("ones", || Initializer::Ones),
        ("Ones", || Initializer::Ones),
        ("one", || Initializer::Ones),
        ("constant", || Initializer::Constant { value: 0.0 }),
        ("Constant", || Initializer::Constant { value: 0.0 }),
        // VarianceScaling's defaults (scale 1, fan_in, truncated normal) are LecunNormal.
        ("variance_scaling", || Initializer::LecunNormal {
            seed: None,
        }),
        ("VarianceScaling", || Initializer::LecunNormal {
            seed: None,
        }),
    ];

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
            Initializer::LecunNormal { seed } => {
                let stddev = (1.0 / fan_in).sqrt() / TRUNCATED_NORMAL_STDDEV_FACTOR;
                draw(seed, |rng| truncated_normal_values(rng, count, stddev))
            }
            Initializer::LecunUniform { seed } => {
                let limit = (3.0 / fan_in).sqrt();
                draw(seed, |rng| uniform_values(rng, count, -limit, limit))
            }
            Initializer::TruncatedNormal { mean, stddev, seed } => {
                let values = draw(seed, |rng| truncated_normal_values(rng, count, stddev));
                values.into_iter().map(|v| v + mean as f32).collect()
            }
            Initializer::RandomNormal { mean, stddev, seed } => {
                draw(seed, |rng| normal_values(rng, count, mean, stddev))
            }
            Initializer::RandomUniform {
                minval,
                maxval,
                seed,
            } => draw(seed, |rng| uniform_values(rng, count, minval, maxval)),
            Initializer::Orthogonal { gain, seed } => orthogonal_values(shape, gain, seed)?,
        };
        Ok(Tensor::from_vec(values, shape, device)?)
    }
}

impl FromStr for Initializer {
    type Err = String;

    /// The initializer Keras's `initializers.get(name)` gives, with Keras's defaults.
    fn from_str(name: &str) -> std::result::Result<Self, String> {
        Initializer::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, make)| make())
            .ok_or_else(|| {
                let known: Vec<&str> = Initializer::NAMES
                    .iter()
                    .map(|(n, _)| *n)
                    .filter(|n| n.starts_with(|c: char| c.is_ascii_lowercase()))
                    .collect();
                format!("unknown initializer '{name}' (known: {})", known.join(", "))
            })
    }
}

/// An initializer given to a builder, by value or by Keras name (`"he_normal"`), checked when
/// the layer is made.
#[derive(Debug, Clone)]
pub struct InitializerArg(pub(crate) std::result::Result<Initializer, String>);

impl From<Initializer> for InitializerArg {
    fn from(init: Initializer) -> Self {
        InitializerArg(Ok(init))
    }
}

impl From<&str> for InitializerArg {
    fn from(name: &str) -> Self {
        InitializerArg(name.parse())
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

/// Keras's `Orthogonal` (`keras/src/initializers/random_initializers.py`): for `shape`
/// flattened to (rows, cols), a normal matrix of (max, min) of the two is drawn, its QR
/// decomposition's Q multiplied by the signs of R's diagonal, transposed when rows < cols, and
/// scaled by `gain`.
fn orthogonal_values(shape: &[usize], gain: f64, seed: Option<u64>) -> Result<Vec<f32>> {
    let Some((&cols, leading)) = shape.split_last().filter(|_| shape.len() >= 2) else {
        return Err(crate::Error::config(
            "Orthogonal initializer",
            format!("needs a shape of rank 2 or more, got {shape:?}"),
        ));
    };
    let rows: usize = leading.iter().product();
    let (tall, wide) = (rows.max(cols), rows.min(cols));
    let normal = draw(seed, |rng| normal_values(rng, tall * wide, 0.0, 1.0));
    let q = orthonormal_columns(&normal, tall, wide);
    let value = |v: f64| (gain * v) as f32;
    Ok(if rows >= cols {
        // Q itself, row-major: element (r, c) is column c's row r.
        (0..rows * cols)
            .map(|i| value(q[(i % cols) * rows + i / cols]))
            .collect()
    } else {
        // Qᵀ, row-major: row r of Qᵀ is column r of Q, which `q` stores contiguously.
        q.into_iter().map(value).collect()
    })
}

/// The Q of the QR decomposition of the row-major `m × n` matrix `a` (m ≥ n), by Householder
/// reflections in f64, with each column multiplied by the sign of R's diagonal entry (so that
/// `a = Q·R` with R's diagonal positive); column-major (column j at `j·m..(j + 1)·m`).
fn orthonormal_columns(a: &[f32], m: usize, n: usize) -> Vec<f64> {
    let mut columns = vec![0.0f64; m * n];
    for (i, &v) in a.iter().enumerate() {
        columns[(i % n) * m + i / n] = v as f64;
    }
    let dot = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(a, b)| a * b).sum::<f64>();
    // Reflect x onto y: x -= 2 (v·x) v.
    let reflect = |v: &[f64], x: &mut [f64]| {
        let s = 2.0 * dot(v, x);
        for (x, v) in x.iter_mut().zip(v) {
            *x -= s * v;
        }
    };
    let mut reflectors = Vec::with_capacity(n);
    let mut diagonal_signs = Vec::with_capacity(n);
    for k in 0..n {
        let (done, rest) = columns.split_at_mut((k + 1) * m);
        let x = &done[k * m + k..];
        let norm = dot(x, x).sqrt();
        // R's diagonal entry: the sign opposite to x's first entry, for a stable reflection.
        let alpha = if x[0] > 0.0 { -norm } else { norm };
        let mut v = x.to_vec();
        v[0] -= alpha;
        let length = dot(&v, &v).sqrt();
        if length > 0.0 {
            v.iter_mut().for_each(|v| *v /= length);
        }
        for column in rest.chunks_exact_mut(m) {
            reflect(&v, &mut column[k..]);
        }
        reflectors.push(v);
        diagonal_signs.push(if alpha < 0.0 { -1.0 } else { 1.0 });
    }
    // Q = H₀ ⋯ Hₙ₋₁ applied to the first n columns of the identity, last reflection first;
    // column j < k is still eⱼ when Hₖ comes, which Hₖ leaves alone.
    let mut q = vec![0.0f64; m * n];
    for j in 0..n {
        q[j * m + j] = 1.0;
    }
    for (k, v) in reflectors.iter().enumerate().rev() {
        for column in q.chunks_exact_mut(m).skip(k) {
            reflect(v, &mut column[k..]);
        }
    }
    for (column, sign) in q.chunks_exact_mut(m).zip(diagonal_signs) {
        column.iter_mut().for_each(|v| *v *= sign);
    }
    q
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

    /// `aᵀ·b` for row-major `a` (m × p) and `b` (m × q), in f64.
    fn gram(a: &[f32], b: &[f32], m: usize, p: usize, q: usize) -> Vec<f64> {
        let mut out = vec![0.0; p * q];
        for r in 0..m {
            for i in 0..p {
                for j in 0..q {
                    out[i * q + j] += a[r * p + i] as f64 * b[r * q + j] as f64;
                }
            }
        }
        out
    }

    /// Asserts that `m` (n × n) is `scale` times the identity.
    fn assert_scaled_identity(m: &[f64], n: usize, scale: f64) {
        for i in 0..n {
            for j in 0..n {
                let want = if i == j { scale } else { 0.0 };
                assert!(
                    (m[i * n + j] - want).abs() < 1e-5,
                    "({i}, {j}): {}",
                    m[i * n + j]
                );
            }
        }
    }

    #[test]
    fn orthogonal_has_orthonormal_columns_or_rows_times_the_gain() {
        let init = |gain| Initializer::Orthogonal {
            gain,
            seed: Some(3),
        };
        // Tall: QᵀQ = I.
        let q = values(init(1.0), &[7, 4]);
        assert_scaled_identity(&gram(&q, &q, 7, 4, 4), 4, 1.0);
        // Wide (a recurrent kernel, (units, 4·units)): Q Qᵀ = I, the rows orthonormal.
        let w = values(init(1.0), &[3, 12]);
        let transposed: Vec<f32> = (0..36).map(|i| w[(i % 3) * 12 + i / 3]).collect();
        assert_scaled_identity(&gram(&transposed, &transposed, 12, 3, 3), 3, 1.0);
        // Square, with a gain of 2: QᵀQ = 4 I.
        let s = values(init(2.0), &[5, 5]);
        assert_scaled_identity(&gram(&s, &s, 5, 5, 5), 5, 4.0);
        // Higher rank: flattened to (2·3, 4).
        let c = values(init(1.0), &[2, 3, 4]);
        assert_scaled_identity(&gram(&c, &c, 6, 4, 4), 4, 1.0);
        assert_eq!(values(init(1.0), &[7, 4]), q);
        let err = Initializer::orthogonal()
            .initialize(&[5], &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(err.contains("rank 2"), "{err}");
    }

    #[test]
    fn orthogonal_is_the_q_of_the_normal_draw_with_r_positive_on_its_diagonal() {
        // The draw Keras's algorithm starts from: a (7, 4) standard normal matrix.
        let a = normal_values(&mut StdRng::seed_from_u64(9), 28, 0.0, 1.0);
        let q = values(
            Initializer::Orthogonal {
                gain: 1.0,
                seed: Some(9),
            },
            &[7, 4],
        );
        // R = Qᵀ A is upper triangular with a positive diagonal, and Q R = A.
        let r = gram(&q, &a, 7, 4, 4);
        for i in 0..4 {
            assert!(r[i * 4 + i] > 0.0, "R[{i}, {i}] = {}", r[i * 4 + i]);
            for j in 0..i {
                assert!(r[i * 4 + j].abs() < 1e-5, "R[{i}, {j}] = {}", r[i * 4 + j]);
            }
        }
        for row in 0..7 {
            for col in 0..4 {
                let qr: f64 = (0..4).map(|k| q[row * 4 + k] as f64 * r[k * 4 + col]).sum();
                assert!((qr - a[row * 4 + col] as f64).abs() < 1e-5);
            }
        }
        // A wide shape is the transpose of the tall one drawn from the same numbers.
        let wide = values(
            Initializer::Orthogonal {
                gain: 1.0,
                seed: Some(9),
            },
            &[4, 7],
        );
        let transposed: Vec<f32> = (0..28).map(|i| q[(i % 7) * 4 + i / 7]).collect();
        assert_eq!(wide, transposed);
    }

    #[test]
    fn orthogonal_serializes_as_keras_does() {
        let json = serde_json::to_value(Initializer::orthogonal()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"class_name": "Orthogonal", "config": {"gain": 1.0, "seed": null}})
        );
    }

    #[test]
    fn lecun_uniform_fills_its_range_and_lecun_normal_is_truncated() {
        // fan_in 12: limit sqrt(3 / 12) = 0.5; stddev sqrt(1 / 12) / 0.8796 = 0.3281.
        let u = values(Initializer::LecunUniform { seed: Some(1) }, &[12, 400]);
        assert!(u.iter().all(|x| x.abs() <= 0.5));
        assert!(u.iter().any(|x| x.abs() > 0.45));
        let n = values(Initializer::LecunNormal { seed: Some(1) }, &[12, 400]);
        let limit = 2.0 * (1.0f32 / 12.0).sqrt() / 0.879_625_7;
        assert!(n.iter().all(|x| x.abs() <= limit));
        assert!(n.iter().any(|x| x.abs() > 0.9 * limit));
    }

    #[test]
    fn truncated_normal_stays_within_two_deviations_of_its_mean() {
        let init = Initializer::TruncatedNormal {
            mean: 3.0,
            stddev: 0.5,
            seed: Some(4),
        };
        let v = values(init, &[50, 40]);
        assert!(v.iter().all(|x| (x - 3.0).abs() <= 1.0));
        let mean = v.iter().sum::<f32>() / v.len() as f32;
        assert!((mean - 3.0).abs() < 0.05, "mean {mean}");
    }

    #[test]
    fn keras_names_give_keras_defaults() {
        let parse = |name: &str| name.parse::<Initializer>().unwrap();
        assert_eq!(parse("he_normal"), Initializer::HeNormal { seed: None });
        assert_eq!(parse("GlorotUniform"), Initializer::glorot_uniform());
        assert_eq!(
            parse("lecun_normal"),
            Initializer::LecunNormal { seed: None }
        );
        assert_eq!(parse("uniform"), Initializer::random_uniform());
        assert_eq!(parse("normal"), Initializer::random_normal());
        assert_eq!(parse("zero"), Initializer::Zeros);
        assert_eq!(parse("OrthogonalInitializer"), Initializer::orthogonal());
        assert_eq!(parse("constant"), Initializer::Constant { value: 0.0 });
        let error = "he_norml".parse::<Initializer>().unwrap_err();
        assert!(error.contains("unknown initializer 'he_norml'"), "{error}");
        assert!(
            error.contains("he_normal") && !error.contains("HeNormal"),
            "{error}"
        );
    }

    #[test]
    fn a_keras_3_orthogonal_config_loads() {
        let json = serde_json::json!({"class_name": "OrthogonalInitializer", "config": {"gain": 2.0, "seed": 5}});
        let init: Initializer = serde_json::from_value(json).unwrap();
        assert_eq!(
            init,
            Initializer::Orthogonal {
                gain: 2.0,
                seed: Some(5)
            }
        );
    }

    #[test]
    fn builders_take_initializers_by_keras_name() {
        use crate::prelude::*;
        let dense = Dense::new(3).kernel_initializer("he_uniform");
        assert_eq!(
            dense.config().kernel_initializer,
            Initializer::HeUniform { seed: None }
        );
        let error = Dense::new(3)
            .name("head")
            .bias_initializer("onez")
            .layer()
            .err()
            .expect("an unknown initializer is an error");
        let message = error.to_string();
        assert!(
            message.contains("head") && message.contains("'onez'"),
            "{message}"
        );
    }

    #[test]
    fn he_uniform_limit() {
        let v = values(Initializer::HeUniform { seed: Some(2) }, &[6, 4]);
        assert!(v.iter().all(|x| x.abs() <= 1.0));
    }
}
