//! Random tensors drawn from the session's seeded generator (candle's own CPU generator
//! cannot be seeded), for initializers and for random ops such as a denoiser's noise.

use candle_core::{Device, Tensor};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::session::with_rng;
use crate::Result;

/// Samples from a normal distribution by the Box-Muller transform.
pub(crate) fn normal_values(rng: &mut impl Rng, count: usize, mean: f64, stddev: f64) -> Vec<f32> {
    let mut values = Vec::with_capacity(count + 1);
    while values.len() < count {
        // 1 - u lies in (0, 1], so the logarithm is finite.
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random::<f64>();
        let radius = (-2.0 * u1.ln()).sqrt();
        let angle = std::f64::consts::TAU * u2;
        values.push((mean + stddev * radius * angle.cos()) as f32);
        values.push((mean + stddev * radius * angle.sin()) as f32);
    }
    values.truncate(count);
    values
}

/// Samples uniformly from `[low, high)`.
pub(crate) fn uniform_values(rng: &mut impl Rng, count: usize, low: f64, high: f64) -> Vec<f32> {
    (0..count)
        .map(|_| (low + (high - low) * rng.random::<f64>()) as f32)
        .collect()
}

/// The spacing of 24-bit draws in [0, 1): 2^-24.
const UNIT_24: f32 = 1.0 / 16_777_216.0;

/// `f(u)` for each of `count` draws `u` uniform in [0, 1) with 24 random bits (an f32's
/// precision), for what is drawn afresh every training step (dropout's masks): the session's
/// generator (the stream training gives the step) draws one seed, from which xoshiro256++
/// (rand's `SmallRng`) fills the values, about ten times as fast as drawing each from the
/// session's ChaCha generator (a 32x128 mask took 24 us that way).
pub fn uniform_map(count: usize, f: impl FnMut(f32) -> f32) -> Vec<f32> {
    let mut fast = SmallRng::seed_from_u64(with_rng(|rng| rng.random()));
    let mut bits = vec![0u32; count];
    fast.fill(&mut bits[..]);
    // Collected in place: u32 and f32 have one layout.
    bits.into_iter()
        .map(|b| (b >> 8) as f32 * UNIT_24)
        .map(f)
        .collect()
}

/// An f32 tensor of `shape` drawn from N(`mean`, `stddev`²) with the session's generator.
pub fn normal(shape: &[usize], mean: f64, stddev: f64, device: &Device) -> Result<Tensor> {
    let count = shape.iter().product();
    let values = with_rng(|rng| normal_values(rng, count, mean, stddev));
    Ok(Tensor::from_vec(values, shape, device)?)
}

/// An f32 tensor of `shape` drawn uniformly from `[low, high)` with the session's generator.
pub fn uniform(shape: &[usize], low: f64, high: f64, device: &Device) -> Result<Tensor> {
    let count = shape.iter().product();
    let values = with_rng(|rng| uniform_values(rng, count, low, high));
    Ok(Tensor::from_vec(values, shape, device)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::set_random_seed;

    #[test]
    fn normal_samples_have_the_requested_moments() {
        set_random_seed(3);
        let t = normal(&[200_000], 0.5, 2.0, &Device::Cpu).unwrap();
        let v: Vec<f32> = t.to_vec1().unwrap();
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
        assert!((var.sqrt() - 2.0).abs() < 0.02, "stddev {}", var.sqrt());
    }

    #[test]
    fn mapped_uniform_draws_are_uniform_and_repeat_with_the_seed() {
        set_random_seed(4);
        let v = uniform_map(100_000, |u| u);
        assert!(v.iter().all(|&u| (0.0..1.0).contains(&u)));
        let mean = v.iter().map(|&u| u as f64).sum::<f64>() / v.len() as f64;
        let below = v.iter().filter(|&&u| u < 0.25).count() as f64 / v.len() as f64;
        assert!(
            (mean - 0.5).abs() < 0.01 && (below - 0.25).abs() < 0.01,
            "{mean} {below}"
        );
        set_random_seed(4);
        let doubled: Vec<f32> = v.iter().map(|u| 2.0 * u).collect();
        assert_eq!(uniform_map(100_000, |u| 2.0 * u), doubled);
        assert_ne!(uniform_map(100_000, |u| 2.0 * u), doubled);
    }

    #[test]
    fn uniform_samples_stay_in_range() {
        set_random_seed(3);
        let v: Vec<f32> = uniform(&[10_000], -0.25, 0.75, &Device::Cpu)
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(v.iter().all(|&x| (-0.25..0.75).contains(&x)));
        let mean = v.iter().sum::<f32>() / v.len() as f32;
        assert!((mean - 0.25).abs() < 0.02);
    }
}
