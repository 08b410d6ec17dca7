//! Weight and activity regularizers (`keras/src/regularizers/regularizers.py`).

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::Result;

/// An L1/L2 penalty: `l1 * sum(|x|) + l2 * sum(x²)`.
///
/// Keras's `L1`, `L2` and `L1L2` in one type: use [`Regularizer::l1`], [`Regularizer::l2`]
/// or [`Regularizer::l1_l2`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Regularizer {
    /// The L1 factor.
    pub l1: f64,
    /// The L2 factor.
    pub l2: f64,
}

impl Regularizer {
    /// Keras's `regularizers.l1(factor)`.
    pub fn l1(factor: f64) -> Self {
        Regularizer {
            l1: factor,
            l2: 0.0,
        }
    }

    /// Keras's `regularizers.l2(factor)`.
    pub fn l2(factor: f64) -> Self {
        Regularizer {
            l1: 0.0,
            l2: factor,
        }
    }

    /// Keras's `regularizers.L1L2(l1, l2)`.
    pub fn l1_l2(l1: f64, l2: f64) -> Self {
        Regularizer { l1, l2 }
    }

    /// The penalty on `x`, a scalar tensor. Its L1 term is `Σ x·sign(x)`, which is `Σ |x|`
    /// exactly, so that candle's autograd differentiates it as TensorFlow differentiates
    /// `abs`: `sign(x)`, 0 at 0 (candle's own gradient of `abs` is 1 at 0), as
    /// [`Regularizer::gradient`] does.
    pub fn penalty(&self, x: &Tensor) -> Result<Tensor> {
        let mut total = Tensor::zeros((), x.dtype(), x.device())?;
        if self.l1 != 0.0 {
            total = (total + ((x * x.sign()?)?.sum_all()? * self.l1)?)?;
        }
        if self.l2 != 0.0 {
            total = (total + (x.sqr()?.sum_all()? * self.l2)?)?;
        }
        Ok(total)
    }

    /// The gradient of [`Regularizer::penalty`] with respect to `x`: `l1·sign(x) + 2·l2·x`,
    /// with the sign 0 at 0 (TensorFlow's gradient of `abs`).
    pub fn gradient(&self, x: &Tensor) -> Result<Tensor> {
        let l1 = || x.sign()?.affine(self.l1, 0.0);
        let l2 = || x.affine(2.0 * self.l2, 0.0);
        Ok(match (self.l1 != 0.0, self.l2 != 0.0) {
            (true, true) => (l1()? + l2()?)?,
            (true, false) => l1()?,
            (false, true) => l2()?,
            (false, false) => x.zeros_like()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn autograd_through_the_penalty_gives_its_gradient_zero_at_zero() {
        let x = candle_core::Var::new(&[1.0f32, -2.0, 0.0, 3.0], &Device::Cpu).unwrap();
        let r = Regularizer::l1_l2(0.5, 0.1);
        let grads = r.penalty(x.as_tensor()).unwrap().backward().unwrap();
        let got = grads.get(x.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
        let want = r.gradient(x.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(got, want);
        assert_eq!(got[2], 0.0);
    }

    #[test]
    fn gradient_matches_hand_computation() {
        let x = Tensor::new(&[1.0f32, -2.0, 0.0, 3.0], &Device::Cpu).unwrap();
        let g = |r: Regularizer| r.gradient(&x).unwrap().to_vec1::<f32>().unwrap();
        // l1 · sign(x), 0 at 0; 2 · l2 · x.
        assert_eq!(g(Regularizer::l1(0.5)), [0.5, -0.5, 0.0, 0.5]);
        let l2 = g(Regularizer::l2(0.1));
        let l1_l2 = g(Regularizer::l1_l2(0.5, 0.1));
        for (i, want) in [0.2f32, -0.4, 0.0, 0.6].into_iter().enumerate() {
            assert!((l2[i] - want).abs() < 1e-6, "{l2:?}");
            let sign = [0.5f32, -0.5, 0.0, 0.5][i];
            assert!((l1_l2[i] - (want + sign)).abs() < 1e-6, "{l1_l2:?}");
        }
    }

    #[test]
    fn penalty_matches_hand_computation() {
        let x = Tensor::new(&[1.0f32, -2.0, 3.0], &Device::Cpu).unwrap();
        let p = |r: Regularizer| r.penalty(&x).unwrap().to_scalar::<f32>().unwrap();
        // |1| + |-2| + |3| = 6 ; 1 + 4 + 9 = 14
        assert!((p(Regularizer::l1(0.5)) - 3.0).abs() < 1e-6);
        assert!((p(Regularizer::l2(0.1)) - 1.4).abs() < 1e-6);
        assert!((p(Regularizer::l1_l2(0.5, 0.1)) - 4.4).abs() < 1e-6);
    }
}
