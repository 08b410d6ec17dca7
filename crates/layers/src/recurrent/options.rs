//! The options every recurrent layer has (`keras/src/layers/rnn/rnn.py` and the cells'
//! arguments in `lstm.py`, `gru.py`, `simple_rnn.py`), and what a cell adds to them.

use std::fmt::Debug;
use std::sync::Arc;

use candle_core::{Device, Tensor};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::rnn::RecurrentLayer;
use crate::activations::{ActivationArg, ActivationFn};
use crate::builder::{LayerBuilder, LayerConfig};
use crate::initializers::Initializer;
use crate::kernel_bias::kernel_layer_options;
use crate::regularizers::Regularizer;
use crate::{Error, Layer, Result};

/// A recurrent layer's options: those of Keras's `RNN` and of its cell, with Keras's defaults,
/// and the cell's own (`C`: [`LSTMOptions`](super::lstm::LSTMOptions),
/// [`GRUOptions`](super::gru::GRUOptions),
/// [`SimpleRNNOptions`](super::simple_rnn::SimpleRNNOptions)). Saved flat, as Keras saves them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "C: Cell")]
pub struct RecurrentConfig<C> {
    /// The size of the output and of each state.
    pub units: usize,
    /// Applied to the candidate values (and to the LSTM's cell state); default tanh.
    pub activation: ActivationFn,
    /// Applied to the gates; default sigmoid. A cell without gates (SimpleRNN) neither uses
    /// nor saves it.
    #[serde(
        default = "default_recurrent_activation",
        skip_serializing_if = "has_no_gates::<C>"
    )]
    pub recurrent_activation: ActivationFn,
    /// Whether the cell has a bias (default true).
    pub use_bias: bool,
    /// Initializer of the input kernel (default glorot_uniform).
    pub kernel_initializer: Initializer,
    /// Initializer of the recurrent kernel (default orthogonal).
    pub recurrent_initializer: Initializer,
    /// Initializer of the bias (default zeros).
    pub bias_initializer: Initializer,
    /// Penalty on the kernel.
    pub kernel_regularizer: Option<Regularizer>,
    /// Penalty on the recurrent kernel.
    pub recurrent_regularizer: Option<Regularizer>,
    /// Penalty on the bias.
    pub bias_regularizer: Option<Regularizer>,
    /// Penalty on each output, divided by the batch size.
    pub activity_regularizer: Option<Regularizer>,
    /// Fraction of the inputs dropped in training: only 0 (the default) is supported yet.
    pub dropout: f64,
    /// Fraction of the recurrent state dropped in training: only 0 (the default) is supported
    /// yet.
    pub recurrent_dropout: f64,
    /// Whether the output is every step's (batch, timesteps, units) rather than the last
    /// step's (batch, units); default false.
    pub return_sequences: bool,
    /// Whether the final states follow the output (default false).
    pub return_state: bool,
    /// Whether the sequences are read from their last step; the returned sequence is then in
    /// that order, as Keras returns it (default false).
    pub go_backwards: bool,
    /// Keras's stateful RNNs, carrying the states from batch to batch: not supported (false).
    pub stateful: bool,
    /// Keras's unrolling of the loop, which changes nothing but speed: accepted and ignored.
    pub unroll: bool,
    /// The cell's own options.
    #[serde(flatten)]
    pub cell: C,
}

/// Keras's default `recurrent_activation`, for a config without one (a SimpleRNN's).
fn default_recurrent_activation() -> ActivationFn {
    ActivationFn::Sigmoid
}

/// Whether cells `C` have no gate, hence no `recurrent_activation` to save.
fn has_no_gates<C: Cell>(_: &ActivationFn) -> bool {
    !C::GATED
}

/// What distinguishes one recurrent layer from another: its cell's gates, states and bias, its
/// kernel, and one step of it in candle ops.
pub trait Cell:
    Debug + Clone + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// The Keras class name (`LSTM`).
    const CLASS_NAME: &'static str;
    /// The prefix of default names (`lstm`).
    const NAME_PREFIX: &'static str;
    /// Gates per unit: the kernels have this many times `units` columns.
    const GATES: usize;
    /// The states' names, in the order calls return them (`state_h`, `state_c`).
    const STATES: &'static [&'static str];
    /// Whether the cell has gates, hence a `recurrent_activation` (see [`GatedCell`]).
    const GATED: bool;

    /// Checks the cell's own options for the layer `layer`.
    fn check(&self, layer: &str) -> Result<()>;

    /// The bias's shape for `units` units, as Keras stores it.
    fn bias_shape(units: usize) -> Vec<usize>;

    /// The bias's first values, from the layer's bias initializer.
    fn initial_bias(&self, init: &Initializer, units: usize, device: &Device) -> Result<Tensor>;

    /// The CPU kernel over whole sequences (see `rkeras_ops::lstm_sequence`).
    fn run_kernel(
        x: &Tensor,
        weights: rkeras_ops::RecurrentWeights<'_>,
        initial_state: &[Tensor],
        spec: rkeras_ops::RecurrentSpec,
    ) -> candle_core::Result<rkeras_ops::RecurrentRun>;

    /// One step in candle ops: from the step's input projection `x·kernel` (no bias), the
    /// states before the step, the recurrent kernel and the bias, the states after it (`h`,
    /// the output, first).
    fn step(
        config: &RecurrentConfig<Self>,
        projected: &Tensor,
        states: &[Tensor],
        recurrent_kernel: &Tensor,
        bias: Option<&Tensor>,
    ) -> Result<Vec<Tensor>>;
}

/// A cell with gates (LSTM, GRU), whose layers have Keras's `recurrent_activation`.
pub trait GatedCell: Cell {}

impl<C: Cell> RecurrentConfig<C> {
    /// Keras's defaults for `units` units and the cell options `cell`.
    pub fn with_cell(units: usize, cell: C) -> Self {
        RecurrentConfig {
            units,
            activation: ActivationFn::Tanh,
            recurrent_activation: ActivationFn::Sigmoid,
            use_bias: true,
            kernel_initializer: Initializer::glorot_uniform(),
            recurrent_initializer: Initializer::orthogonal(),
            bias_initializer: Initializer::Zeros,
            kernel_regularizer: None,
            recurrent_regularizer: None,
            bias_regularizer: None,
            activity_regularizer: None,
            dropout: 0.0,
            recurrent_dropout: 0.0,
            return_sequences: false,
            return_state: false,
            go_backwards: false,
            stateful: false,
            unroll: false,
            cell,
        }
    }

    /// Checks the options for the layer `layer`: errors name it and the option.
    pub(crate) fn check(&self, layer: &str) -> Result<()> {
        if self.units == 0 {
            return Err(Error::config(layer, "units must be positive"));
        }
        for (name, rate) in [
            ("dropout", self.dropout),
            ("recurrent_dropout", self.recurrent_dropout),
        ] {
            if rate != 0.0 {
                return Err(Error::config(
                    layer,
                    format!("{name}={rate} is not supported yet: only 0"),
                ));
            }
        }
        if self.stateful {
            return Err(Error::config(layer, "stateful=True is not supported"));
        }
        self.cell.check(layer)
    }

    /// The kernels' activations, when those the cell uses have a fused kernel.
    pub(crate) fn fused_activations(
        &self,
    ) -> Option<(rkeras_ops::FusedActivation, rkeras_ops::FusedActivation)> {
        let recurrent = if C::GATED {
            self.recurrent_activation
        } else {
            ActivationFn::Sigmoid
        };
        Some((self.activation.fused()?, recurrent.fused()?))
    }
}

impl<C: Cell> LayerConfig for RecurrentConfig<C> {
    const CLASS_NAME: &'static str = C::CLASS_NAME;
    const NAME_PREFIX: &'static str = C::NAME_PREFIX;

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        Ok(Arc::new(RecurrentLayer::new(
            name,
            trainable,
            self.clone(),
        )?))
    }
}

/// The builder method of recurrent layers with gates.
impl<C: GatedCell> LayerBuilder<RecurrentConfig<C>> {
    /// The gates' activation, by value or Keras name (default sigmoid).
    pub fn recurrent_activation(self, activation: impl Into<ActivationArg>) -> Self {
        let arg = activation.into();
        self.with_checked(|c| {
            c.recurrent_activation = arg.0?;
            Ok(())
        })
    }
}

/// The builder methods every recurrent layer has, named as Keras's arguments.
impl<C: Cell> LayerBuilder<RecurrentConfig<C>> {
    kernel_layer_options!();

    /// The recurrent kernel's initializer (default orthogonal).
    pub fn recurrent_initializer(self, init: impl Into<crate::InitializerArg>) -> Self {
        self.with_initializer(init, |c, init| c.recurrent_initializer = init)
    }

    /// A penalty on the recurrent kernel.
    pub fn recurrent_regularizer(self, r: Regularizer) -> Self {
        self.with(|c| c.recurrent_regularizer = Some(r))
    }

    /// Whether the output is every step's, (batch, timesteps, units).
    pub fn return_sequences(self, return_sequences: bool) -> Self {
        self.with(|c| c.return_sequences = return_sequences)
    }

    /// Whether a call also returns the final states: `let [output, h, c] = lstm(x).unpack();`.
    pub fn return_state(self, return_state: bool) -> Self {
        self.with(|c| c.return_state = return_state)
    }

    /// Whether the sequences are read from their last step.
    pub fn go_backwards(self, go_backwards: bool) -> Self {
        self.with(|c| c.go_backwards = go_backwards)
    }

    /// The input dropout rate: only 0 is supported yet (another is an error when the layer is
    /// made).
    pub fn dropout(self, rate: f64) -> Self {
        self.with(|c| c.dropout = rate)
    }

    /// The recurrent dropout rate: only 0 is supported yet.
    pub fn recurrent_dropout(self, rate: f64) -> Self {
        self.with(|c| c.recurrent_dropout = rate)
    }
}
