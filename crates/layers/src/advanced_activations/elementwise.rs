//! The layer behind `ReLU`, `LeakyReLU` and `ELU`: the elementwise activation its options
//! configure, one pass of `rkeras_ops::input_activation`'s kernel each way on the CPU
//! (differentiated from the input the call record keeps), candle ops elsewhere.

use candle_core::{Device, Tensor};
use rkeras_ops::InputActivation;
use serde::Serialize;

use crate::builder::LayerConfig;
use crate::layer::{config_with_name, single_input};
use crate::layer_base_methods;
use crate::record::{CallRecord, WeightGrads};
use crate::{CallContext, Layer, LayerBase, Result, SymbolicShape};

/// Options that configure one elementwise activation.
pub trait ElementwiseOptions: LayerConfig + Serialize {
    /// The activation the options configure.
    fn activation(&self) -> InputActivation;
}

/// The layer the options `C` make: `C`'s activation applied to every element.
pub struct ElementwiseLayer<C> {
    base: LayerBase,
    config: C,
}

impl<C: ElementwiseOptions> ElementwiseLayer<C> {
    /// The layer for checked options.
    pub(crate) fn new(name: String, trainable: bool, config: C) -> Self {
        ElementwiseLayer {
            base: LayerBase::new(name, trainable),
            config,
        }
    }

    /// The options.
    pub fn options(&self) -> &C {
        &self.config
    }
}

impl<C: ElementwiseOptions> Layer for ElementwiseLayer<C> {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        C::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        Ok(vec![single_input(self.name(), inputs)?.clone()])
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let x = single_input(self.name(), inputs)?;
        Ok(vec![rkeras_ops::input_activation(
            x,
            self.config.activation(),
        )?])
    }

    fn config(&self) -> serde_json::Value {
        config_with_name(&self.config, &self.base)
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
        let (x, _, dy) = record.single(self.name(), grad_outputs)?;
        if !needs_input_grad.first().copied().unwrap_or(false) {
            return Ok(vec![None]);
        }
        let activation = self.config.activation();
        Ok(vec![Some(rkeras_ops::input_activation_backward(
            activation, x, dy,
        )?)])
    }
}

/// Fails unless `value`, the option `option` of layer `layer`, is a finite number of at least 0
/// (as Keras's activation layers require of their slopes and thresholds).
pub(crate) fn non_negative(layer: &str, option: &str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(crate::Error::config(
            layer,
            format!("{option} must be a finite number >= 0, got {value}"),
        ))
    }
}
