//! `SimpleRNN`: the fully-connected recurrent layer whose output is fed back as its state
//! (`keras/src/layers/rnn/simple_rnn.py`), with Keras's weights: `kernel` (features, units),
//! `recurrent_kernel` (units, units), `bias` (units). Each step:
//! `h' = act(x·kernel + bias + h·recurrent_kernel)`, the output being `h'`. It has no gate, so
//! no `recurrent_activation` (neither an option nor a saved key, as in Keras).

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::options::{Cell, RecurrentConfig};
use super::rnn::RecurrentLayer;
use crate::builder::LayerBuilder;
use crate::initializers::Initializer;
use crate::{Error, Result};

/// What `SimpleRNN` adds to the options of every recurrent layer: nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimpleRNNOptions {}

/// `SimpleRNN`'s options, with Keras's defaults.
pub type SimpleRNNConfig = RecurrentConfig<SimpleRNNOptions>;

/// A simple RNN layer, callable on symbolic tensors of shape (None, timesteps, features):
/// `SimpleRNN::new(64)(x)`; with `.return_state(true)`,
/// `let [output, state] = SimpleRNN::new(64).return_state(true)(x).unpack();`.
pub type SimpleRNN = LayerBuilder<SimpleRNNConfig>;

/// The layer a [`SimpleRNN`] builder makes.
pub type SimpleRNNLayer = RecurrentLayer<SimpleRNNOptions>;

impl SimpleRNN {
    /// A simple RNN with `units` units and Keras's defaults (tanh, a bias, glorot_uniform
    /// kernel, orthogonal recurrent kernel, zero bias).
    pub fn new(units: usize) -> Self {
        LayerBuilder::from_config(RecurrentConfig::with_cell(units, SimpleRNNOptions {}))
    }
}

impl Cell for SimpleRNNOptions {
    const CLASS_NAME: &'static str = "SimpleRNN";
    const NAME_PREFIX: &'static str = "simple_rnn";
    const GATES: usize = 1;
    const GATED: bool = false;
    const STATES: &'static [&'static str] = &["state"];

    fn check(&self, _layer: &str) -> Result<()> {
        Ok(())
    }

    fn bias_shape(units: usize) -> Vec<usize> {
        vec![units]
    }

    fn initial_bias(&self, init: &Initializer, units: usize, device: &Device) -> Result<Tensor> {
        init.initialize(&[units], device)
    }

    fn run_kernel(
        x: &Tensor,
        weights: rkeras_ops::RecurrentWeights<'_>,
        initial_state: &[Tensor],
        spec: rkeras_ops::RecurrentSpec,
    ) -> candle_core::Result<rkeras_ops::RecurrentRun> {
        rkeras_ops::simple_rnn_sequence(x, weights, initial_state, spec)
    }

    fn step(
        config: &SimpleRNNConfig,
        projected: &Tensor,
        states: &[Tensor],
        recurrent_kernel: &Tensor,
        bias: Option<&Tensor>,
    ) -> Result<Vec<Tensor>> {
        let [h] = states else {
            return Err(Error::config(
                Self::CLASS_NAME,
                "a SimpleRNN step takes [h]",
            ));
        };
        let z = (projected + h.matmul(recurrent_kernel)?)?;
        let z = match bias {
            Some(bias) => z.broadcast_add(bias)?,
            None => z,
        };
        Ok(vec![config.activation.apply(&z)?])
    }
}

/// The harness cases: those every recurrent layer has (see `reference::common_cases`), and
/// another activation, against the f64 reference of Keras's equations.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use super::reference::{case, common_cases};
    crate::session::set_random_seed(31);
    // Keras: units·(features + units + 1) = 3·(4 + 3 + 1).
    let params = 3 * (4 + 3 + 1);
    let mut cases = common_cases(SimpleRNN::new, params, 3 * (4 + 3));
    cases.push(case(
        SimpleRNN::new(3).activation("relu"),
        &["(None, 3)"],
        params,
    ));
    cases
}
