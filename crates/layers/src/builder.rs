//! `LayerBuilder`: a layer's options, and the layer itself once first called.
//!
//! `Dense::new(49).activation("relu")` is a builder; calling it on a symbolic tensor
//! (`dense(x)`, through `Deref` to `dyn Fn`) makes the layer on first use and records the
//! call, so calling the same builder twice shares one layer and its weights.

use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use crate::initializers::{Initializer, InitializerArg};
use crate::session::unique_name;
use crate::symbolic::{call_layer, one_or_list, SymbolicTensor};
use crate::{Layer, Result};

/// What a layer's options must provide to make the layer.
pub trait LayerConfig: Clone + Send + Sync + 'static {
    /// The Keras class name of the layer it makes (`Dense`), under which it is saved.
    const CLASS_NAME: &'static str;

    /// The prefix of default names (`dense`, `conv2d`...), Keras's snake-cased class name.
    const NAME_PREFIX: &'static str;

    /// Makes the layer, checking the options (an unknown activation name, zero units...).
    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>>;

    /// A builder for these options, callable on symbolic tensors: how a custom layer is used,
    /// `SamplingConfig.builder().call_many(&[mean, log_var])`.
    fn builder(self) -> LayerBuilder<Self> {
        LayerBuilder::from_config(self)
    }
}

/// The signature layers and models are called with on symbolic tensors.
pub type SymbolicFn = dyn Fn(SymbolicTensor) -> SymbolicTensor + Send + Sync;

struct Made {
    layer: Result<Arc<dyn Layer>>,
    call: Box<SymbolicFn>,
}

/// A layer's options, callable on symbolic tensors; see the module documentation.
pub struct LayerBuilder<C> {
    config: C,
    name: Option<String>,
    trainable: bool,
    invalid: Option<String>,
    made: OnceLock<Made>,
}

impl<C: LayerConfig> LayerBuilder<C> {
    /// A builder for `config`, with a default name and trainable.
    ///
    /// Never inlined: rustc 1.95 and 1.96 miscompile two identical builders made inline and
    /// passed by value in one function (`pool(MaxPooling2D::new(2))` twice), dropping one
    /// builder twice (MIR GVN, rust-lang/rust#158830, fixed in 1.97). A builder returned by a
    /// call is never merged with another.
    #[inline(never)]
    pub fn from_config(config: C) -> Self {
        LayerBuilder {
            config,
            name: None,
            trainable: true,
            invalid: None,
            made: OnceLock::new(),
        }
    }

    /// The options.
    pub fn config(&self) -> &C {
        &self.config
    }

    /// Changes an option; the builder then makes a new layer on its next call.
    pub fn with(mut self, change: impl FnOnce(&mut C)) -> Self {
        change(&mut self.config);
        self.made = OnceLock::new();
        self
    }

    /// Changes an option that may be invalid (an activation given by an unknown name): the
    /// error is reported when the layer is called, through the model that uses it.
    pub fn with_checked(
        mut self,
        change: impl FnOnce(&mut C) -> std::result::Result<(), String>,
    ) -> Self {
        if let Err(message) = change(&mut self.config) {
            self.invalid = Some(message);
        }
        self.made = OnceLock::new();
        self
    }

    /// Changes an initializer option, given by value or by Keras name (`"he_normal"`): an
    /// unknown name is reported when the layer is called, as [`LayerBuilder::with_checked`].
    pub fn with_initializer(
        self,
        init: impl Into<InitializerArg>,
        set: impl FnOnce(&mut C, Initializer),
    ) -> Self {
        let arg = init.into();
        self.with_checked(|c| {
            set(c, arg.0?);
            Ok(())
        })
    }

    /// Names the layer (instead of `dense`, `dense_1`...).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self.made = OnceLock::new();
        self
    }

    /// Makes the layer frozen (`false`) from the start.
    pub fn trainable(mut self, trainable: bool) -> Self {
        self.trainable = trainable;
        self.made = OnceLock::new();
        self
    }

    /// The layer (made now if it has not been called yet), or why it cannot be made.
    pub fn layer(&self) -> Result<Arc<dyn Layer>> {
        self.made().layer.clone()
    }

    /// Calls the layer on several symbolic tensors, returning each output (the call syntax
    /// takes a list as one tensor: `layer([a, b].into())`).
    pub fn call_many(&self, inputs: &[SymbolicTensor]) -> Vec<SymbolicTensor> {
        match &self.made().layer {
            Ok(layer) => call_layer(layer, inputs),
            Err(e) => vec![SymbolicTensor::failed(e.clone())],
        }
    }

    fn made(&self) -> &Made {
        self.made.get_or_init(|| {
            let name = self
                .name
                .clone()
                .unwrap_or_else(|| unique_name(C::NAME_PREFIX));
            let layer = match &self.invalid {
                Some(message) => Err(crate::Error::config(name, message.clone())),
                None => self.config.make(name, self.trainable),
            };
            let call: Box<SymbolicFn> = match &layer {
                Ok(layer) => {
                    let layer = layer.clone();
                    Box::new(move |x| one_or_list(call_layer(&layer, &[x])))
                }
                Err(e) => {
                    let e = e.clone();
                    Box::new(move |_| SymbolicTensor::failed(e.clone()))
                }
            };
            Made { layer, call }
        })
    }
}

/// The first output of a call (every call returns at least one).
pub fn first_output(outputs: Vec<SymbolicTensor>) -> SymbolicTensor {
    outputs.into_iter().next().unwrap_or_else(|| {
        SymbolicTensor::failed(crate::Error::Graph("a call returned no output".into()))
    })
}

impl<C: LayerConfig> Deref for LayerBuilder<C> {
    type Target = SymbolicFn;

    fn deref(&self) -> &SymbolicFn {
        &*self.made().call
    }
}

/// The options type behind a builder type (`<Dense as Options>::Config` is `DenseConfig`).
pub trait Options {
    /// The options.
    type Config: LayerConfig;
}

impl<C: LayerConfig> Options for LayerBuilder<C> {
    type Config = C;
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;

    /// Two identical builders passed by value in one function each make their own layer and
    /// are each dropped once (a release build on rustc 1.95 crashed here before
    /// `from_config` was kept out of line).
    #[test]
    fn identical_builders_passed_by_value_are_dropped_once() {
        let made = |pool: MaxPooling2D| pool.layer().expect("pool");
        let first = made(MaxPooling2D::new((2, 2)));
        let second = made(MaxPooling2D::new((2, 2)));
        assert_ne!(first.name(), second.name());
    }
}
