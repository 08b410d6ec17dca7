//! Deterministic test data and tolerant comparisons, shared by the op tests.

use candle_core::{Device, Tensor, Var};

/// A small linear congruential generator: reproducible data without a dependency.
pub(crate) struct Lcg(u64);

impl Lcg {
    pub(crate) fn new(seed: u64) -> Self {
        Self(
            seed.wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407),
        )
    }

    /// The next 32 random bits.
    pub(crate) fn next_u32(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 32) as u32
    }

    /// Uniform in [-1, 1).
    pub(crate) fn next(&mut self) -> f32 {
        ((self.next_u32() >> 8) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    pub(crate) fn vec(&mut self, len: usize) -> Vec<f32> {
        (0..len).map(|_| self.next()).collect()
    }
}

/// A CPU tensor of the given shape filled from `rng`.
pub(crate) fn random_tensor(rng: &mut Lcg, dims: &[usize]) -> Tensor {
    let len = dims.iter().product();
    Tensor::from_vec(rng.vec(len), dims, &Device::Cpu).unwrap()
}

/// A CPU variable of the given shape filled from `rng`.
pub(crate) fn random_var(rng: &mut Lcg, dims: &[usize]) -> Var {
    Var::from_tensor(&random_tensor(rng, dims)).unwrap()
}

/// The gradients of `sum(y · upstream)`: candle's backward pass from `y` with `upstream` as
/// the gradient of its output.
pub(crate) fn gradients_against(y: &Tensor, upstream: &Tensor) -> candle_core::backprop::GradStore {
    (y * upstream)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap()
}

/// The tensor's elements, flattened, as f32.
pub(crate) fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// Asserts `|actual - expected| <= tolerance * (1 + |expected|)` element-wise.
pub(crate) fn assert_close(what: &str, actual: &[f32], expected: &[f64], tolerance: f64) {
    assert_eq!(actual.len(), expected.len(), "{what}: lengths differ");
    for (index, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let error = (a as f64 - e).abs();
        assert!(
            error <= tolerance * (1.0 + e.abs()),
            "{what}[{index}]: got {a}, expected {e} (error {error:e})"
        );
    }
}
