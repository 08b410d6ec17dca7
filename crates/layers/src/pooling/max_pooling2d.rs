//! `MaxPooling2D`: the maximum over each window of a channels-last image
//! (`keras/src/layers/pooling/max_pooling2d.py`); padded cells never win. The work is done by
//! `rkeras_ops::max_pool2d`, whose gradient routes to the maximum in full.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::builder::{LayerBuilder, LayerConfig};
use crate::convolutional::options::{spatial_geometry, Padding, PaddingArg, Size2};
use crate::layer::{config_with_name, single_input};
use crate::layer_base_methods;
use crate::limits::check_window;
use crate::record::{CallRecord, WeightGrads};
use crate::{CallContext, Error, Layer, LayerBase, Result, SymbolicShape};

/// `MaxPooling2D`'s options, with Keras's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaxPooling2DConfig {
    /// Window size (default 2x2).
    pub pool_size: Size2,
    /// Steps between windows (default: the pool size).
    pub strides: Option<Size2>,
    /// Border handling (default valid).
    pub padding: Padding,
}

/// Max pooling: `MaxPooling2D::new((2, 2)).padding("same")(x)`.
pub type MaxPooling2D = LayerBuilder<MaxPooling2DConfig>;

impl MaxPooling2D {
    /// Pooling over `pool_size` windows, strides equal to the window, valid padding.
    pub fn new(pool_size: impl Into<Size2>) -> Self {
        LayerBuilder::from_config(MaxPooling2DConfig {
            pool_size: pool_size.into(),
            strides: None,
            padding: Padding::Valid,
        })
    }

    /// The steps between windows.
    pub fn strides(self, strides: impl Into<Size2>) -> Self {
        let strides = strides.into();
        self.with(|c| c.strides = Some(strides))
    }

    /// `"valid"` or `"same"`.
    pub fn padding(self, padding: impl Into<PaddingArg>) -> Self {
        let arg = padding.into();
        self.with_checked(|c| {
            c.padding = arg.0?;
            Ok(())
        })
    }
}

impl Default for MaxPooling2D {
    fn default() -> Self {
        MaxPooling2D::new((2, 2))
    }
}

impl LayerConfig for MaxPooling2DConfig {
    const CLASS_NAME: &'static str = "MaxPooling2D";
    const NAME_PREFIX: &'static str = "max_pooling2d";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        check_window(&name, "pool_size", self.pool_size)?;
        check_window(&name, "strides", self.strides.unwrap_or(self.pool_size))?;
        Ok(Arc::new(MaxPooling2DLayer {
            base: LayerBase::new(name, trainable),
            config: self.clone(),
        }))
    }
}

/// Where the windows go over one input: (pool, strides, padding).
type Window = ((usize, usize), (usize, usize), rkeras_ops::Padding2d);

/// The layer a [`MaxPooling2D`] builder makes.
pub struct MaxPooling2DLayer {
    base: LayerBase,
    config: MaxPooling2DConfig,
}

impl MaxPooling2DLayer {
    fn geometry(&self, h: usize, w: usize) -> Option<(rkeras_ops::Padding2d, (usize, usize))> {
        let c = &self.config;
        let strides = c.strides.unwrap_or(c.pool_size);
        spatial_geometry((h, w), c.pool_size, strides, Size2(1, 1), c.padding)
    }

    /// The (pool, strides, padding) of the windows over `x`, or why `x` does not fit.
    fn window(&self, x: &Tensor) -> Result<Window> {
        let dims = format!("{:?}", x.dims());
        let &[_, h, w, _] = x.dims() else {
            return Err(Error::shape(
                self.name(),
                "(batch, height, width, channels)",
                dims,
            ));
        };
        let (padding, _) = self.geometry(h, w).ok_or_else(|| self.too_small(dims))?;
        let c = &self.config;
        let strides = c.strides.unwrap_or(c.pool_size);
        Ok((c.pool_size.pair(), strides.pair(), padding))
    }

    fn too_small(&self, got: impl std::fmt::Display) -> Error {
        let p = self.config.pool_size;
        Error::shape(
            self.name(),
            format!(
                "an input of at least {}x{} with padding '{}'",
                p.0, p.1, self.config.padding
            ),
            got,
        )
    }
}

impl Layer for MaxPooling2DLayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        <MaxPooling2DConfig as LayerConfig>::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        let shape = single_input(self.name(), inputs)?;
        if shape.rank() != 4 {
            return Err(Error::shape(
                self.name(),
                "(None, height, width, channels)",
                shape,
            ));
        }
        let d = shape.dims();
        let (oh, ow) = match (d[1], d[2]) {
            (Some(h), Some(w)) => {
                let (_, (oh, ow)) = self.geometry(h, w).ok_or_else(|| self.too_small(shape))?;
                (Some(oh), Some(ow))
            }
            _ => (None, None),
        };
        Ok(vec![SymbolicShape(vec![d[0], oh, ow, d[3]])])
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let x = single_input(self.name(), inputs)?;
        let (pool, strides, padding) = self.window(x)?;
        Ok(vec![rkeras_ops::max_pool2d(x, pool, strides, padding)?])
    }

    fn has_backward(&self, device: &Device) -> bool {
        rkeras_ops::kernels_on(device)
    }

    fn backward(
        &self,
        record: CallRecord,
        grad_outputs: &[Tensor],
        needs_input_grad: &[bool],
        _weight_grads: &mut WeightGrads,
    ) -> Result<Vec<Option<Tensor>>> {
        let (x, y, dy) = record.single(self.name(), grad_outputs)?;
        if !needs_input_grad.first().copied().unwrap_or(false) {
            return Ok(vec![None]);
        }
        let (pool, strides, padding) = self.window(x)?;
        let dx = rkeras_ops::max_pool2d_backward(x, y, dy, pool, strides, padding)?;
        Ok(vec![Some(dx)])
    }

    fn config(&self) -> serde_json::Value {
        config_with_name(&self.config, &self.base)
    }
}

/// The harness cases: same and valid padding, strides, and forwards computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    let pool = |p: MaxPooling2D| p.layer().expect("pool");
    // 1..9 in a 3x3 image: 2x2 windows, 'same' pads below and right.
    let x = Tensor::arange(1f32, 10.0, &candle_core::Device::Cpu)
        .and_then(|x| x.reshape((1, 3, 3, 1)))
        .expect("x");
    vec![
        LayerCase::new(
            pool(MaxPooling2D::new((2, 2)).padding("same")),
            &[&[5, 5, 2]],
        )
        .output_shapes(&["(None, 3, 3, 2)"]),
        LayerCase::new(
            pool(MaxPooling2D::new((3, 3)).strides((2, 1))),
            &[&[5, 4, 1]],
        )
        .output_shapes(&["(None, 2, 2, 1)"]),
        LayerCase::new(
            pool(MaxPooling2D::new((2, 2)).padding("same")),
            &[&[3, 3, 1]],
        )
        .output_shapes(&["(None, 2, 2, 1)"])
        .forward(vec![x.clone()], vec![vec![5.0, 6.0, 8.0, 9.0]]),
        LayerCase::new(pool(MaxPooling2D::new((2, 2))), &[&[3, 3, 1]])
            .output_shapes(&["(None, 1, 1, 1)"])
            .forward(vec![x], vec![vec![5.0]]),
    ]
}
