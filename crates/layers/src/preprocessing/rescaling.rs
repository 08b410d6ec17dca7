//! `Rescaling`: `inputs * scale + offset`, inputs of any dtype cast to f32 first
//! (`keras/src/layers/preprocessing/rescaling.py`); typically `Rescaling::new(1.0 / 255.0)` in
//! front of a convnet. `scale` and `offset` are numbers (Keras also takes per-channel lists,
//! which rkeras does not). The gradient is the output's times `scale`, on every device.

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::builder::{LayerBuilder, LayerConfig};
use crate::layer::{config_with_name, single_input};
use crate::layer_base_methods;
use crate::record::{CallRecord, WeightGrads};
use crate::{CallContext, Error, Layer, LayerBase, Result, SymbolicShape};

/// `Rescaling`'s options, with Keras's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RescalingConfig {
    /// What every input value is multiplied by.
    pub scale: f64,
    /// What is then added (default 0).
    #[serde(default)]
    pub offset: f64,
}

/// Rescaling: `Rescaling::new(1.0 / 127.5).offset(-1.0)(x)` maps `[0, 255]` to `[-1, 1]`.
pub type Rescaling = LayerBuilder<RescalingConfig>;

impl Rescaling {
    /// Multiplying by `scale`, adding nothing.
    pub fn new(scale: f64) -> Self {
        LayerBuilder::from_config(RescalingConfig { scale, offset: 0.0 })
    }

    /// What is added after scaling.
    pub fn offset(self, offset: f64) -> Self {
        self.with(|c| c.offset = offset)
    }
}

impl LayerConfig for RescalingConfig {
    const CLASS_NAME: &'static str = "Rescaling";
    const NAME_PREFIX: &'static str = "rescaling";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        if !self.scale.is_finite() || !self.offset.is_finite() {
            return Err(Error::config(
                name,
                format!(
                    "scale {} and offset {} must be finite numbers",
                    self.scale, self.offset
                ),
            ));
        }
        Ok(Arc::new(RescalingLayer {
            base: LayerBase::new(name, trainable),
            config: self.clone(),
        }))
    }
}

/// The layer a [`Rescaling`] builder makes.
pub struct RescalingLayer {
    base: LayerBase,
    config: RescalingConfig,
}

impl Layer for RescalingLayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        <RescalingConfig as LayerConfig>::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        Ok(vec![single_input(self.name(), inputs)?.clone()])
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let x = single_input(self.name(), inputs)?.to_dtype(DType::F32)?;
        Ok(vec![x.affine(self.config.scale, self.config.offset)?])
    }

    /// The output's gradient times `scale`, on every device; none for integer inputs.
    fn has_backward(&self, _device: &Device) -> bool {
        true
    }

    fn backward(
        &self,
        record: CallRecord,
        grad_outputs: &[Tensor],
        needs_input_grad: &[bool],
        _weight_grads: &mut WeightGrads,
    ) -> Result<Vec<Option<Tensor>>> {
        let (x, _, dy) = record.single(self.name(), grad_outputs)?;
        if !needs_input_grad.first().copied().unwrap_or(false) || !x.dtype().is_float() {
            return Ok(vec![None]);
        }
        let dx = dy.affine(self.config.scale, 0.0)?.to_dtype(x.dtype())?;
        Ok(vec![Some(dx)])
    }

    fn config(&self) -> serde_json::Value {
        config_with_name(&self.config, &self.base)
    }
}

/// The harness cases: inputs of several ranks, with forwards computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    let rescale = |r: Rescaling| r.layer().expect("rescaling");
    let pixels = |values: &[f32], shape: &[usize]| {
        Tensor::from_slice(values, shape, &Device::Cpu).expect("pixels")
    };
    vec![
        // [0, 127.5, 255] / 255 = [0, 0.5, 1].
        LayerCase::new(rescale(Rescaling::new(1.0 / 255.0)), &[&[3]])
            .output_shapes(&["(None, 3)"])
            .forward(
                vec![pixels(&[0., 127.5, 255.], &[1, 3])],
                vec![vec![0., 0.5, 1.]],
            ),
        // [0, 127.5, 255, 63.75] / 127.5 - 1 = [-1, 0, 1, -0.5].
        LayerCase::new(
            rescale(Rescaling::new(1.0 / 127.5).offset(-1.0)),
            &[&[2, 2, 1]],
        )
        .output_shapes(&["(None, 2, 2, 1)"])
        .forward(
            vec![pixels(&[0., 127.5, 255., 63.75], &[1, 2, 2, 1])],
            vec![vec![-1., 0., 1., -0.5]],
        ),
        // A sequence: [1, -2, 3] * 2 + 0.5 = [2.5, -3.5, 6.5].
        LayerCase::new(rescale(Rescaling::new(2.0).offset(0.5)), &[&[3, 1]])
            .output_shapes(&["(None, 3, 1)"])
            .forward(
                vec![pixels(&[1., -2., 3.], &[1, 3, 1])],
                vec![vec![2.5, -3.5, 6.5]],
            ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_inputs_become_floats_and_get_no_gradient() {
        let layer = Rescaling::new(1.0 / 255.0).layer().unwrap();
        let bytes = Tensor::new(&[[0u8, 51, 255]], &Device::Cpu).unwrap();
        let y = layer
            .call(std::slice::from_ref(&bytes), &mut CallContext::new(false))
            .unwrap();
        assert_eq!(y[0].dtype(), DType::F32);
        let got = crate::testing::flat(&y[0]);
        crate::testing::assert_close("rescaled bytes", &got, &[0.0, 0.2, 1.0], 1e-6);
        let record = CallRecord::new(vec![bytes], y.clone());
        let grads = layer
            .backward(record, &y, &[true], &mut WeightGrads::new(&[]))
            .unwrap();
        assert!(grads[0].is_none());
    }

    #[test]
    fn saves_scale_and_offset_as_keras_does_and_refuses_non_finite_ones() {
        let config = Rescaling::new(0.5).offset(-1.0).layer().unwrap().config();
        assert_eq!(
            (config["scale"].clone(), config["offset"].clone()),
            (0.5.into(), (-1.0).into())
        );
        let loaded: RescalingConfig =
            serde_json::from_value(serde_json::json!({"scale": 0.25})).unwrap();
        assert_eq!(loaded.offset, 0.0);
        let err = Rescaling::new(f64::NAN).name("r").layer().err().unwrap();
        assert!(err.to_string().contains("'r'"), "{err}");
    }
}
