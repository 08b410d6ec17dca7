//! `GRU`: gated recurrent unit (`keras/src/layers/rnn/gru.py`), Keras 3's default variant
//! (`reset_after=True`, cuDNN's), with Keras's weights: `kernel` (features, 3·units),
//! `recurrent_kernel` (units, 3·units), `bias` (2, 3·units): the input bias then the recurrent
//! one, gates in the order z, r, h. Each step: with `a = x·kernel + bias[0]` and
//! `b = h·recurrent_kernel + bias[1]`, `z = σ(a_z + b_z)`, `r = σ(a_r + b_r)`,
//! `ĥ = act(a_h + r·b_h)`, `h' = z·h + (1 - z)·ĥ`, the output being `h'`.

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::options::{Cell, GatedCell, RecurrentConfig};
use super::rnn::RecurrentLayer;
use crate::builder::LayerBuilder;
use crate::initializers::Initializer;
use crate::{Error, Result};

/// What `GRU` adds to the options of every recurrent layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GRUOptions {
    /// Whether the reset gate applies after the recurrent product (Keras 3's default, true).
    /// Only true is supported: the original variant (false), with a bias of shape (3·units), is
    /// refused when the layer is made.
    pub reset_after: bool,
}

/// `GRU`'s options, with Keras's defaults.
pub type GRUConfig = RecurrentConfig<GRUOptions>;

/// A GRU layer, callable on symbolic tensors of shape (None, timesteps, features):
/// `GRU::new(128)(x)`; with `.return_state(true)`,
/// `let [output, state] = GRU::new(64).return_state(true)(x).unpack();`.
#[allow(clippy::upper_case_acronyms)]
pub type GRU = LayerBuilder<GRUConfig>;

/// The layer a [`GRU`] builder makes.
pub type GRULayer = RecurrentLayer<GRUOptions>;

impl GRU {
    /// A GRU with `units` units and Keras's defaults.
    pub fn new(units: usize) -> Self {
        LayerBuilder::from_config(RecurrentConfig::with_cell(
            units,
            GRUOptions { reset_after: true },
        ))
    }

    /// Keras's `reset_after`: only true is supported (false is an error when the layer is
    /// made).
    pub fn reset_after(self, reset_after: bool) -> Self {
        self.with(|c| c.cell.reset_after = reset_after)
    }
}

impl GatedCell for GRUOptions {}

impl Cell for GRUOptions {
    const CLASS_NAME: &'static str = "GRU";
    const NAME_PREFIX: &'static str = "gru";
    const GATES: usize = 3;
    const GATED: bool = true;
    const STATES: &'static [&'static str] = &["state"];

    fn check(&self, layer: &str) -> Result<()> {
        if self.reset_after {
            Ok(())
        } else {
            Err(Error::config(
                layer,
                "reset_after=False (the original GRU) is not supported: only Keras 3's default, \
                 reset_after=True",
            ))
        }
    }

    fn bias_shape(units: usize) -> Vec<usize> {
        vec![2, 3 * units]
    }

    fn initial_bias(&self, init: &Initializer, units: usize, device: &Device) -> Result<Tensor> {
        init.initialize(&[2, 3 * units], device)
    }

    fn run_kernel(
        x: &Tensor,
        weights: rkeras_ops::RecurrentWeights<'_>,
        initial_state: &[Tensor],
        spec: rkeras_ops::RecurrentSpec,
    ) -> candle_core::Result<rkeras_ops::RecurrentRun> {
        rkeras_ops::gru_sequence(x, weights, initial_state, spec)
    }

    fn step(
        config: &GRUConfig,
        projected: &Tensor,
        states: &[Tensor],
        recurrent_kernel: &Tensor,
        bias: Option<&Tensor>,
    ) -> Result<Vec<Tensor>> {
        let [h] = states else {
            return Err(Error::config(Self::CLASS_NAME, "a GRU step takes [h]"));
        };
        let inner = h.matmul(recurrent_kernel)?;
        let (a, inner) = match bias {
            Some(bias) => (
                projected.broadcast_add(&bias.get(0)?)?,
                inner.broadcast_add(&bias.get(1)?)?,
            ),
            None => (projected.clone(), inner),
        };
        let units = config.units;
        let part = |t: &Tensor, k: usize| t.narrow(1, k * units, units);
        let gate = config.recurrent_activation;
        let z = gate.apply(&(part(&a, 0)? + part(&inner, 0)?)?)?;
        let r = gate.apply(&(part(&a, 1)? + part(&inner, 1)?)?)?;
        let candidate = config
            .activation
            .apply(&(part(&a, 2)? + (r * part(&inner, 2)?)?)?)?;
        let h = ((&z * h)? + (z.affine(-1.0, 1.0)? * candidate)?)?;
        Ok(vec![h])
    }
}

/// The harness cases: those every recurrent layer has (see `reference::common_cases`), and
/// other activations, against the f64 reference of Keras's equations.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use super::reference::{case, common_cases};
    crate::session::set_random_seed(29);
    // Keras: (reset_after) 3·units·(features + units + 2) = 3·3·(4 + 3 + 2).
    let params = 3 * 3 * (4 + 3 + 2);
    let mut cases = common_cases(GRU::new, params, 3 * 3 * (4 + 3));
    cases.push(case(
        GRU::new(3).activation("relu").recurrent_activation("tanh"),
        &["(None, 3)"],
        params,
    ));
    cases
}
