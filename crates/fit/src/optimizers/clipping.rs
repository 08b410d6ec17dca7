//! Gradient clipping, after `keras/src/optimizers/base_optimizer.py` (`_clip_gradients`,
//! `_clip_by_norm`, `clip_by_global_norm`).

use super::operand::Operand;
use crate::Result;
use candle_core::{DType, Tensor};

/// How gradients are clipped before an update. Keras allows one kind at a time; a value that is
/// not positive disables clipping, as in Keras.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum GradientClipping {
    /// Gradients are used as they are.
    #[default]
    None,
    /// `clipnorm`: each gradient is rescaled to an L2 norm of at most this value.
    Norm(f64),
    /// `clipvalue`: each element is clamped to `[-value, value]`.
    Value(f64),
    /// `global_clipnorm`: all gradients are rescaled together so their joint L2 norm is at most this.
    GlobalNorm(f64),
}

/// What clipping does to one gradient, as scalars computed once per update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum GradientAdjustment {
    /// Leave it alone.
    Identity,
    /// `g · multiplier / divisor` (Keras's `values * clipnorm / max(l2norm, clipnorm)`).
    MultiplyDivide { multiplier: f32, divisor: f32 },
    /// `g · scale` (global norm clipping).
    Scale(f32),
    /// `clip(g, -bound, bound)`.
    Clamp(f32),
}

impl GradientClipping {
    /// The adjustment of each gradient, in order.
    pub(crate) fn adjustments(&self, grads: &[Tensor]) -> Result<Vec<GradientAdjustment>> {
        Ok(match *self {
            Self::Norm(clip_norm) if clip_norm > 0.0 => grads
                .iter()
                .map(|g| {
                    let norm = squared_sum(g)?.sqrt();
                    Ok(GradientAdjustment::MultiplyDivide {
                        multiplier: clip_norm as f32,
                        divisor: norm.max(clip_norm) as f32,
                    })
                })
                .collect::<Result<_>>()?,
            Self::Value(bound) if bound > 0.0 => {
                vec![GradientAdjustment::Clamp(bound as f32); grads.len()]
            }
            Self::GlobalNorm(clip_norm) if clip_norm > 0.0 => {
                let norm = grads.iter().map(squared_sum).sum::<Result<f64>>()?.sqrt();
                // clip_norm · min(1/norm, 1/clip_norm); Keras adds `norm - norm` to make it NaN
                // when the norm is not finite.
                let scale = if norm.is_finite() {
                    clip_norm * (1.0 / norm).min(1.0 / clip_norm)
                } else {
                    f64::NAN
                };
                vec![GradientAdjustment::Scale(scale as f32); grads.len()]
            }
            _ => vec![GradientAdjustment::Identity; grads.len()],
        })
    }

    /// Keras's `clipnorm`, `global_clipnorm` and `clipvalue` config entries.
    pub(crate) fn config_entries(&self) -> [(&'static str, serde_json::Value); 3] {
        let (norm, global, value) = match *self {
            Self::None => (None, None, None),
            Self::Norm(v) => (Some(v), None, None),
            Self::GlobalNorm(v) => (None, Some(v), None),
            Self::Value(v) => (None, None, Some(v)),
        };
        [
            ("clipnorm", norm.into()),
            ("global_clipnorm", global.into()),
            ("clipvalue", value.into()),
        ]
    }
}

fn squared_sum(grad: &Tensor) -> Result<f64> {
    Ok(grad
        .sqr()?
        .sum_all()?
        .to_dtype(DType::F32)?
        .to_scalar::<f32>()? as f64)
}

impl GradientAdjustment {
    /// The adjusted gradient: one element on the host, a whole gradient elsewhere.
    #[inline(always)]
    pub(crate) fn apply<T: Operand>(&self, grad: &T) -> candle_core::Result<T> {
        match *self {
            Self::Identity => Ok(grad.clone()),
            Self::MultiplyDivide {
                multiplier,
                divisor,
            } => grad.scale(multiplier)?.divide_by(divisor),
            Self::Scale(scale) => grad.scale(scale),
            Self::Clamp(bound) => grad.clamp(-bound, bound),
        }
    }

    /// The adjusted host gradient: `grad` itself, or `scratch` filled with the adjusted values.
    pub(crate) fn apply_host<'a>(
        &self,
        grad: &'a [f32],
        scratch: &'a mut Vec<f32>,
    ) -> candle_core::Result<&'a [f32]> {
        if matches!(self, Self::Identity) {
            return Ok(grad);
        }
        scratch.resize(grad.len(), 0.0);
        for (adjusted, g) in scratch.iter_mut().zip(grad) {
            *adjusted = self.apply(g)?;
        }
        Ok(scratch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn adjust_both_ways(adjustment: GradientAdjustment, grad: &[f32]) -> Result<Vec<f32>> {
        let mut scratch = Vec::new();
        let host = adjustment.apply_host(grad, &mut scratch)?.to_vec();
        let tensor = adjustment
            .apply(&Tensor::new(grad, &Device::Cpu)?)?
            .to_vec1::<f32>()?;
        assert_eq!(host, tensor, "host and tensor paths differ");
        Ok(host)
    }

    #[test]
    fn clipnorm_rescales_each_gradient_above_the_norm() -> Result<()> {
        let grads = [
            Tensor::new(&[3f32, 4.], &Device::Cpu)?,
            Tensor::new(&[0.3f32, 0.4], &Device::Cpu)?,
        ];
        let adjustments = GradientClipping::Norm(1.0).adjustments(&grads)?;
        // |[3, 4]| = 5 → [0.6, 0.8]; |[0.3, 0.4]| = 0.5 <= 1 → unchanged.
        let first = adjust_both_ways(adjustments[0], &[3.0, 4.0])?;
        assert!((first[0] - 0.6).abs() < 1e-7 && (first[1] - 0.8).abs() < 1e-7);
        assert_eq!(
            adjust_both_ways(adjustments[1], &[0.3, 0.4])?,
            vec![0.3, 0.4]
        );
        Ok(())
    }

    #[test]
    fn global_clipnorm_rescales_all_gradients_together() -> Result<()> {
        let grads = [
            Tensor::new(&[3f32], &Device::Cpu)?,
            Tensor::new(&[4f32], &Device::Cpu)?,
        ];
        // joint norm 5, clip 2.5 → scale 0.5
        let adjustments = GradientClipping::GlobalNorm(2.5).adjustments(&grads)?;
        assert_eq!(adjust_both_ways(adjustments[0], &[3.0])?, vec![1.5]);
        assert_eq!(adjust_both_ways(adjustments[1], &[4.0])?, vec![2.0]);
        // a zero gradient keeps scale 1
        let zeros = [Tensor::new(&[0f32], &Device::Cpu)?];
        assert_eq!(
            GradientClipping::GlobalNorm(1.0).adjustments(&zeros)?,
            vec![GradientAdjustment::Scale(1.0)]
        );
        Ok(())
    }

    #[test]
    fn clipvalue_clamps_elements_and_non_positive_values_disable_clipping() -> Result<()> {
        let grads = [Tensor::new(&[-3f32, 0.2, 7.], &Device::Cpu)?];
        let adjustments = GradientClipping::Value(0.5).adjustments(&grads)?;
        assert_eq!(
            adjust_both_ways(adjustments[0], &[-3.0, 0.2, 7.0])?,
            vec![-0.5, 0.2, 0.5]
        );
        assert_eq!(
            GradientClipping::Norm(0.0).adjustments(&grads)?,
            vec![GradientAdjustment::Identity]
        );
        Ok(())
    }
}
