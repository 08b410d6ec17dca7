//! The kernel and optional bias that `Dense` and `Conv2D` own, with their regularizers.

use candle_core::{Tensor, Var};

use crate::initializers::Initializer;
use crate::regularizers::Regularizer;
use crate::session::default_device;
use crate::{LayerBase, Result, Weight};

/// A kernel of some shape and a bias over its last axis.
pub(crate) struct KernelBias {
    pub kernel: Var,
    pub bias: Option<Var>,
}

impl KernelBias {
    /// Draws a kernel of `shape` and, when `bias` is given, a bias as long as the last axis.
    pub fn new(shape: &[usize], kernel: &Initializer, bias: Option<&Initializer>) -> Result<Self> {
        let device = default_device();
        let kernel = Var::from_tensor(&kernel.initialize(shape, &device)?)?;
        let bias = match bias {
            Some(init) => {
                let len = shape.last().copied().unwrap_or(1);
                Some(Var::from_tensor(&init.initialize(&[len], &device)?)?)
            }
            None => None,
        };
        Ok(KernelBias { kernel, bias })
    }

    /// `kernel` then `bias`, as the layer's weights.
    pub fn weights(&self, base: &LayerBase) -> Vec<Weight> {
        let mut all = vec![base.weight("kernel", &self.kernel)];
        if let Some(b) = &self.bias {
            all.push(base.weight("bias", b));
        }
        all
    }

    /// The penalties of the kernel and bias regularizers.
    pub fn penalties(
        &self,
        kernel: Option<&Regularizer>,
        bias: Option<&Regularizer>,
    ) -> Result<Vec<Tensor>> {
        let mut losses = Vec::new();
        if let Some(r) = kernel {
            losses.push(r.penalty(self.kernel.as_tensor())?);
        }
        if let (Some(r), Some(b)) = (bias, &self.bias) {
            losses.push(r.penalty(b.as_tensor())?);
        }
        Ok(losses)
    }
}

/// Adds the activity penalty of `output` to `ctx`, divided by the batch size as Keras 3.14+ does
/// (`keras/src/layers/layer.py`, `Layer.__call__`).
pub(crate) fn add_activity_penalty(
    regularizer: Option<&Regularizer>,
    output: &Tensor,
    ctx: &mut crate::CallContext,
) -> Result<()> {
    if let Some(r) = regularizer {
        let batch = output.dims().first().copied().unwrap_or(1).max(1) as f64;
        ctx.add_loss((r.penalty(output)? / batch)?);
    }
    Ok(())
}
