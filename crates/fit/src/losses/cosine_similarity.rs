//! Cosine similarity loss, after `keras/src/losses/losses.py` (`CosineSimilarity`,
//! `cosine_similarity`) and `keras/src/ops/nn.py` (`_normalize`, the L2 case).

use super::reduction::{align_targets, require_float, sum_over_batch_size};
use super::{Loss, EPSILON};
use crate::{Error, Result};
use candle_core::Tensor;
use serde_json::json;

/// `-sum(l2_normalize(y_true)·l2_normalize(y_pred), axis)`, reduced over the batch: -1 for
/// predictions pointing as the targets, 0 where either is the zero vector. Keras's sign: the
/// loss is minus the cosine. Each vector is normalised as Keras does,
/// `x·rsqrt(maximum(sum(x²), 1e-7²))`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CosineSimilarity {
    axis: i64,
}

impl Default for CosineSimilarity {
    fn default() -> Self {
        Self { axis: -1 }
    }
}

impl CosineSimilarity {
    /// Keras's default: the similarity along the last axis.
    pub fn new() -> Self {
        Self::default()
    }

    /// The axis the similarity is computed along (negative counts from the end).
    pub fn axis(mut self, axis: i64) -> Self {
        self.axis = axis;
        self
    }

    /// The axis as an index into the dimensions of `y_pred`.
    fn axis_of(&self, y_pred: &Tensor) -> Result<usize> {
        let rank = y_pred.rank() as i64;
        let axis = if self.axis < 0 {
            self.axis + rank
        } else {
            self.axis
        };
        if !(0..rank).contains(&axis) {
            return Err(Error::Config(format!(
                "cosine_similarity: axis {} is out of range for predictions of rank {rank}",
                self.axis
            )));
        }
        Ok(axis as usize)
    }
}

/// `rsqrt(maximum(sum(x², axis), 1e-7²))`, kept along `axis`, and whether the sum was above the
/// floor (where the norm's gradient flows, as TensorFlow's `maximum` passes it on a tie).
fn inverse_norm(x: &Tensor, axis: usize) -> Result<(Tensor, Tensor)> {
    let squares = x.sqr()?.sum_keepdim(axis)?;
    let floor = EPSILON * EPSILON;
    let unclamped = squares.ge(floor)?.to_dtype(x.dtype())?;
    let inverse = squares.clamp(floor, f64::INFINITY)?.sqrt()?.recip()?;
    Ok((inverse, unclamped))
}

impl CosineSimilarity {
    /// The aligned predictions, the normalised targets, the axis and the predictions' inverse
    /// norm (with where it is unclamped).
    fn parts(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<[Tensor; 4]> {
        require_float(self.name(), y_pred)?;
        let (y, p) = align_targets(self.name(), y_true, y_pred)?;
        let axis = self.axis_of(&p)?;
        let y_hat = y.broadcast_mul(&inverse_norm(&y, axis)?.0)?;
        let (inverse, unclamped) = inverse_norm(&p, axis)?;
        Ok([p, y_hat, inverse, unclamped])
    }
}

impl CosineSimilarity {
    /// Minus the cosine of each pair of vectors along the axis: the values Keras reduces.
    fn similarities(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        let [p, y_hat, inverse, _] = self.parts(y_true, y_pred)?;
        let axis = self.axis_of(&p)?;
        let p_hat = p.broadcast_mul(&inverse)?;
        Ok((y_hat * p_hat)?.sum(axis)?.neg()?)
    }
}

impl Loss for CosineSimilarity {
    fn name(&self) -> &str {
        "cosine_similarity"
    }

    /// Unless the similarity runs along the batch axis (`axis` 0), which mixes the samples.
    fn averages_over_samples(&self) -> bool {
        self.axis == -1 || self.axis >= 1
    }

    fn compute(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        sum_over_batch_size(&self.similarities(y_true, y_pred)?)
    }

    /// Not along the batch axis, where each value mixes the samples.
    fn per_sample(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Option<Tensor>> {
        if !self.averages_over_samples() {
            return Ok(None);
        }
        Ok(Some(self.similarities(y_true, y_pred)?))
    }

    /// With `r` the predictions' inverse norm and `s = sum(ŷ·p)`: `(s·r³·p - r·ŷ) / N` for `N`
    /// samples, the `r³` term only where the norm is above its floor.
    fn value_and_gradient(
        &self,
        y_true: &Tensor,
        y_pred: &Tensor,
    ) -> Result<Option<(Tensor, Tensor)>> {
        if y_pred.elem_count() == 0 {
            return Ok(None);
        }
        let [p, y_hat, inverse, unclamped] = self.parts(&y_true.detach(), &y_pred.detach())?;
        let axis = self.axis_of(&p)?;
        let samples = (p.elem_count() / p.dim(axis)?) as f64;
        let s = (&y_hat * &p)?.sum_keepdim(axis)?;
        let loss = (s.broadcast_mul(&inverse)?.neg()?.sum_all()? / samples)?;
        let cubed = (inverse.powf(3.0)? * unclamped)?;
        let norm_term = p.broadcast_mul(&(s * cubed)?)?;
        let grad = ((norm_term - y_hat.broadcast_mul(&inverse)?)? / samples)?;
        Ok(Some((loss, grad.reshape(y_pred.dims())?)))
    }

    fn config(&self) -> serde_json::Value {
        json!({ "name": self.name(), "reduction": "sum_over_batch_size", "axis": self.axis })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::assert_gradient_matches;
    use super::*;
    use candle_core::Device;

    #[test]
    fn matches_the_keras_docstring_example() -> Result<()> {
        let cpu = &Device::Cpu;
        // keras: cosine_similarity([[0, 1], [1, 1], [1, 1]], [[1, 0], [1, 1], [-1, -1]])
        // = [-0, -1, 1] (up to rounding); with a zero target vector ([0, 0] against [1, 2],
        // which gives 0) the mean is (0 - 1 + 1 + 0)/4 = 0.
        let y_true = Tensor::new(&[[0f32, 1.], [1., 1.], [1., 1.], [0., 0.]], cpu)?;
        let y_pred = Tensor::new(&[[1f32, 0.], [1., 1.], [-1., -1.], [1., 2.]], cpu)?;
        let loss = CosineSimilarity::new()
            .compute(&y_true, &y_pred)?
            .to_scalar::<f32>()?;
        assert!(loss.abs() < 1e-6, "{loss}");
        // [[3, 4]] against [[4, 3]]: -(12 + 12)/25 = -0.96
        let loss = CosineSimilarity::new()
            .compute(
                &Tensor::new(&[[3f32, 4.]], cpu)?,
                &Tensor::new(&[[4f32, 3.]], cpu)?,
            )?
            .to_scalar::<f32>()?;
        assert!((loss + 0.96).abs() < 1e-6, "{loss}");
        Ok(())
    }

    #[test]
    fn along_the_first_axis() -> Result<()> {
        let cpu = &Device::Cpu;
        // Columns [3, 4]·[4, 3] → -0.96 and [1, 0]·[0, 1] → 0; mean -0.48.
        let y_true = Tensor::new(&[[3f32, 1.], [4., 0.]], cpu)?;
        let y_pred = Tensor::new(&[[4f32, 0.], [3., 1.]], cpu)?;
        let loss = CosineSimilarity::new()
            .axis(0)
            .compute(&y_true, &y_pred)?
            .to_scalar::<f32>()?;
        assert!((loss + 0.48).abs() < 1e-6, "{loss}");
        assert!(!CosineSimilarity::new().axis(0).averages_over_samples());
        assert!(CosineSimilarity::new()
            .axis(2)
            .compute(&y_true, &y_pred)
            .is_err());
        Ok(())
    }

    #[test]
    fn closed_form_gradient() -> Result<()> {
        assert_gradient_matches(
            &CosineSimilarity::new(),
            &[0.0, 1.0, 2.0, 1.0, -1.0, 0.5],
            &[1.0, 0.5, -0.5, 2.0, 1.0, 0.25],
            &[2, 3],
        )?;
        assert_gradient_matches(
            &CosineSimilarity::new().axis(0),
            &[0.0, 1.0, 2.0, 1.0, -1.0, 0.5],
            &[1.0, 0.5, -0.5, 2.0, 1.0, 0.25],
            &[2, 3],
        )
    }
}
