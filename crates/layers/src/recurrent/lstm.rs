//! `LSTM`: long short-term memory (`keras/src/layers/rnn/lstm.py`), with Keras's weights:
//! `kernel` (features, 4·units), `recurrent_kernel` (units, 4·units), `bias` (4·units), gates
//! in the order i, f, c, o. Each step: `z = x·kernel + h·recurrent_kernel + bias`,
//! `c' = σ(z_f)·c + σ(z_i)·act(z_c)`, `h' = σ(z_o)·act(c')`, the output being `h'`
//! (σ the recurrent activation, act the activation).

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::options::{Cell, GatedCell, RecurrentConfig};
use super::rnn::RecurrentLayer;
use crate::builder::LayerBuilder;
use crate::initializers::Initializer;
use crate::{Error, Result};

/// What `LSTM` adds to the options of every recurrent layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LSTMOptions {
    /// Whether the forget gate's bias starts at 1 rather than at the bias initializer's values
    /// (default true).
    pub unit_forget_bias: bool,
}

/// `LSTM`'s options, with Keras's defaults.
pub type LSTMConfig = RecurrentConfig<LSTMOptions>;

/// An LSTM layer, callable on symbolic tensors of shape (None, timesteps, features):
/// `LSTM::new(128)(x)`; with `.return_state(true)`,
/// `let [output, state_h, state_c] = LSTM::new(64).return_state(true)(x).unpack();`.
#[allow(clippy::upper_case_acronyms)]
pub type LSTM = LayerBuilder<LSTMConfig>;

/// The layer an [`LSTM`] builder makes.
pub type LSTMLayer = RecurrentLayer<LSTMOptions>;

impl LSTM {
    /// An LSTM with `units` units and Keras's defaults.
    pub fn new(units: usize) -> Self {
        LayerBuilder::from_config(RecurrentConfig::with_cell(
            units,
            LSTMOptions {
                unit_forget_bias: true,
            },
        ))
    }

    /// Whether the forget gate's bias starts at 1.
    pub fn unit_forget_bias(self, unit_forget_bias: bool) -> Self {
        self.with(|c| c.cell.unit_forget_bias = unit_forget_bias)
    }
}

impl GatedCell for LSTMOptions {}

impl Cell for LSTMOptions {
    const CLASS_NAME: &'static str = "LSTM";
    const NAME_PREFIX: &'static str = "lstm";
    const GATES: usize = 4;
    const GATED: bool = true;
    const STATES: &'static [&'static str] = &["state_h", "state_c"];

    fn check(&self, _layer: &str) -> Result<()> {
        Ok(())
    }

    fn bias_shape(units: usize) -> Vec<usize> {
        vec![4 * units]
    }

    /// With `unit_forget_bias`, the initializer's values for the i gate, ones for the f gate,
    /// the initializer's for the c and o gates, as Keras builds it.
    fn initial_bias(&self, init: &Initializer, units: usize, device: &Device) -> Result<Tensor> {
        if !self.unit_forget_bias {
            return init.initialize(&[4 * units], device);
        }
        let parts = [
            init.initialize(&[units], device)?,
            Initializer::Ones.initialize(&[units], device)?,
            init.initialize(&[2 * units], device)?,
        ];
        Ok(Tensor::cat(&parts, 0)?)
    }

    fn run_kernel(
        x: &Tensor,
        weights: rkeras_ops::RecurrentWeights<'_>,
        initial_state: &[Tensor],
        spec: rkeras_ops::RecurrentSpec,
    ) -> candle_core::Result<rkeras_ops::RecurrentRun> {
        rkeras_ops::lstm_sequence(x, weights, initial_state, spec)
    }

    fn step(
        config: &LSTMConfig,
        projected: &Tensor,
        states: &[Tensor],
        recurrent_kernel: &Tensor,
        bias: Option<&Tensor>,
    ) -> Result<Vec<Tensor>> {
        let [h, c] = states else {
            return Err(Error::config(Self::CLASS_NAME, "an LSTM step takes [h, c]"));
        };
        let z = (projected + h.matmul(recurrent_kernel)?)?;
        let z = match bias {
            Some(bias) => z.broadcast_add(bias)?,
            None => z,
        };
        let units = config.units;
        let (act, gate) = (config.activation, config.recurrent_activation);
        let part = |k: usize| z.narrow(1, k * units, units);
        let c =
            ((gate.apply(&part(1)?)? * c)? + (gate.apply(&part(0)?)? * act.apply(&part(2)?)?)?)?;
        let h = (gate.apply(&part(3)?)? * act.apply(&c)?)?;
        Ok(vec![h, c])
    }
}

/// The harness cases: those every recurrent layer has (see `reference::common_cases`), and
/// other activations, against the f64 reference of Keras's equations.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use super::reference::{case, common_cases};
    crate::session::set_random_seed(23);
    // Keras: 4·units·(features + units + 1) = 4·3·(4 + 3 + 1).
    let params = 4 * 3 * (4 + 3 + 1);
    let mut cases = common_cases(LSTM::new, params, 4 * 3 * (4 + 3));
    cases.push(case(
        LSTM::new(3).activation("relu").recurrent_activation("tanh"),
        &["(None, 3)"],
        params,
    ));
    cases
}
