//! What the wrappers `Bidirectional` and `TimeDistributed` share, as Keras's `Wrapper`
//! (`keras/src/layers/core/wrapper.py`): the wrapped layer given by its builder and saved as a
//! nested config ([`NestedLayer`]), its weights seen through the wrapper, the trainable flag
//! passed down, and its calls recorded for its own backward pass.

use std::sync::Arc;

use candle_core::Tensor;
use serde_json::Value;

use crate::builder::{LayerBuilder, LayerConfig};
use crate::record::{record_call, CallRecord};
use crate::registry::NestedLayer;
use crate::{CallContext, Layer, LayerBase, Result, Weight};

/// A layer a wrapper can wrap: a builder, by value or by reference (the layer it makes), or a
/// layer already made.
pub trait Wrappable {
    /// The layer's nested config, holding the layer.
    fn nested(self) -> Result<NestedLayer>;
}

impl<C: LayerConfig> Wrappable for &LayerBuilder<C> {
    fn nested(self) -> Result<NestedLayer> {
        Ok(NestedLayer::of(&self.layer()?))
    }
}

impl<C: LayerConfig> Wrappable for LayerBuilder<C> {
    fn nested(self) -> Result<NestedLayer> {
        (&self).nested()
    }
}

impl Wrappable for Arc<dyn Layer> {
    fn nested(self) -> Result<NestedLayer> {
        Ok(NestedLayer::of(&self))
    }
}

/// The builder of a wrapper whose options `options` makes from the wrapped layer's nested
/// config; when `layer` cannot be made, calling the builder reports why.
pub(crate) fn wrapper_builder<C: LayerConfig>(
    layer: impl Wrappable,
    options: impl FnOnce(NestedLayer) -> C,
) -> LayerBuilder<C> {
    match layer.nested() {
        Ok(nested) => LayerBuilder::from_config(options(nested)),
        Err(e) => LayerBuilder::from_config(options(NestedLayer::from_config("", Value::Null)))
            .with_checked(|_| Err(format!("the wrapped layer: {e}"))),
    }
}

/// The weights of the `wrapped` layers seen through the wrapper `base`: under each one's name,
/// trainable only where the wrapper is too (Keras's order: each wrapped layer's in turn).
pub(crate) fn wrapped_weights(base: &LayerBase, wrapped: &[&Arc<dyn Layer>]) -> Vec<Weight> {
    wrapped
        .iter()
        .flat_map(|layer| {
            layer
                .weights()
                .into_iter()
                .map(|w| w.nested(layer.name(), base.trainable()))
        })
        .collect()
}

/// A call of a wrapped layer: recorded for its own backward pass (see
/// [`record_call`]) when `ctx` records, else a plain call (which candle's autograd sees
/// through when the wrapper's call is tracked).
pub(crate) fn call_wrapped(
    layer: &dyn Layer,
    inputs: &[Tensor],
    ctx: &mut CallContext,
) -> Result<(Vec<Tensor>, Option<CallRecord>)> {
    if ctx.is_recording() {
        let record = record_call(layer, inputs, ctx)?;
        Ok((record.outputs.clone(), Some(record)))
    } else {
        Ok((layer.call(inputs, ctx)?, None))
    }
}

/// The `Layer` methods a wrapper writes over its `base: LayerBase` and its wrapped layers (the
/// fields named): name, trainable flag (Keras's setter passes it down), weights, penalties,
/// and whether samples mix or a hand-written backward runs (if any wrapped layer's does).
macro_rules! wrapper_methods {
    ($($field:ident),+) => {
        fn name(&self) -> &str {
            self.base.name()
        }

        fn trainable(&self) -> bool {
            self.base.trainable()
        }

        fn set_trainable(&self, trainable: bool) {
            self.base.set_trainable(trainable);
            $(self.$field.set_trainable(trainable);)+
        }

        fn as_any(&self) -> &dyn std::any::Any {
            self
        }

        fn weights(&self) -> Vec<$crate::Weight> {
            $crate::recurrent::wrapper::wrapped_weights(&self.base, &[$(&self.$field),+])
        }

        fn regularization_losses(&self) -> $crate::Result<Vec<candle_core::Tensor>> {
            let mut all = Vec::new();
            $(all.extend(self.$field.regularization_losses()?);)+
            Ok(all)
        }

        fn mixes_samples(&self) -> bool {
            false $(|| self.$field.mixes_samples())+
        }

        fn has_backward(&self, device: &candle_core::Device) -> bool {
            false $(|| self.$field.has_backward(device))+
        }
    };
}
pub(crate) use wrapper_methods;
