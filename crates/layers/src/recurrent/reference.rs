//! Keras's LSTM and GRU equations computed naively in f64 (`keras/src/layers/rnn/lstm.py`,
//! `gru.py`, `LSTMCell.call` and `GRUCell.call` with `reset_after=True`), and the harness cases
//! whose forward passes they check.

use candle_core::{Device, Tensor};

use super::options::{Cell, RecurrentConfig};
use crate::activations::ActivationFn;
use crate::builder::LayerBuilder;
use crate::testing::{values, LayerCase};

/// A recurrent layer's weights and options, for the reference.
pub(crate) struct Reference {
    lstm: bool,
    units: usize,
    features: usize,
    kernel: Vec<f64>,
    recurrent: Vec<f64>,
    /// Zeros for a layer without bias.
    bias: Vec<f64>,
    activation: ActivationFn,
    recurrent_activation: ActivationFn,
    go_backwards: bool,
    return_sequences: bool,
    return_state: bool,
}

/// An activation in f64.
fn apply(activation: ActivationFn, v: f64) -> f64 {
    match activation {
        ActivationFn::Linear => v,
        ActivationFn::Relu => v.max(0.0),
        ActivationFn::Sigmoid => 1.0 / (1.0 + (-v).exp()),
        ActivationFn::Tanh => v.tanh(),
        ActivationFn::Softplus => v.exp().ln_1p(),
        other => panic!("no reference for {other}"),
    }
}

impl Reference {
    /// The reference of a layer of options `config` (cell `C`) with these weights (kernel,
    /// recurrent kernel, then the bias if it has one, each flattened).
    pub(crate) fn new<C: Cell>(config: &RecurrentConfig<C>, weights: &[Vec<f32>]) -> Self {
        let f64s = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
        let units = config.units;
        let width = C::GATES * units;
        let bias_len: usize = C::bias_shape(units).iter().product();
        Reference {
            lstm: C::CLASS_NAME == "LSTM",
            units,
            features: weights[0].len() / width,
            kernel: f64s(&weights[0]),
            recurrent: f64s(&weights[1]),
            bias: weights.get(2).map_or(vec![0.0; bias_len], |b| f64s(b)),
            activation: config.activation,
            recurrent_activation: config.recurrent_activation,
            go_backwards: config.go_backwards,
            return_sequences: config.return_sequences,
            return_state: config.return_state,
        }
    }

    /// The layer's outputs, flattened, for the inputs `x` (batch, steps, features) and the
    /// initial states (none, or one per state, (batch, units) each).
    pub(crate) fn outputs(
        &self,
        x: &[f32],
        batch: usize,
        steps: usize,
        initial: &[Vec<f32>],
    ) -> Vec<Vec<f64>> {
        let (u, f) = (self.units, self.features);
        let states_count = if self.lstm { 2 } else { 1 };
        let mut sequence = Vec::with_capacity(batch * steps * u);
        let mut finals = vec![Vec::with_capacity(batch * u); states_count];
        for b in 0..batch {
            let mut states: Vec<Vec<f64>> = (0..states_count)
                .map(|i| {
                    initial.get(i).map_or(vec![0.0; u], |s| {
                        s[b * u..(b + 1) * u].iter().map(|&v| v as f64).collect()
                    })
                })
                .collect();
            for step in 0..steps {
                let t = if self.go_backwards {
                    steps - 1 - step
                } else {
                    step
                };
                let xt: Vec<f64> = x[(b * steps + t) * f..][..f]
                    .iter()
                    .map(|&v| v as f64)
                    .collect();
                states = if self.lstm {
                    self.lstm_step(&xt, &states[0], &states[1])
                } else {
                    vec![self.gru_step(&xt, &states[0])]
                };
                sequence.extend_from_slice(&states[0]);
            }
            for (all, state) in finals.iter_mut().zip(states) {
                all.extend(state);
            }
        }
        let output = if self.return_sequences {
            sequence
        } else {
            finals[0].clone()
        };
        let mut outputs = vec![output];
        if self.return_state {
            outputs.extend(finals);
        }
        outputs
    }

    /// `v·m` for a row vector `v` and a row-major matrix `m` of `width` columns.
    fn times(v: &[f64], m: &[f64], width: usize) -> Vec<f64> {
        (0..width)
            .map(|j| {
                v.iter()
                    .enumerate()
                    .map(|(k, x)| x * m[k * width + j])
                    .sum()
            })
            .collect()
    }

    /// `LSTMCell.call`: z = x·W + h·U + b; c = σ(z_f)·c + σ(z_i)·act(z_c); h = σ(z_o)·act(c).
    fn lstm_step(&self, x: &[f64], h: &[f64], c: &[f64]) -> Vec<Vec<f64>> {
        let (u, width) = (self.units, 4 * self.units);
        let input = Self::times(x, &self.kernel, width);
        let hidden = Self::times(h, &self.recurrent, width);
        let z: Vec<f64> = (0..width)
            .map(|j| input[j] + hidden[j] + self.bias[j])
            .collect();
        let (act, gate) = (
            |v| apply(self.activation, v),
            |v| apply(self.recurrent_activation, v),
        );
        let c: Vec<f64> = (0..u)
            .map(|k| gate(z[u + k]) * c[k] + gate(z[k]) * act(z[2 * u + k]))
            .collect();
        let h = (0..u).map(|k| gate(z[3 * u + k]) * act(c[k])).collect();
        vec![h, c]
    }

    /// `GRUCell.call` with `reset_after`: a = x·W + b₀, r' = h·U + b₁;
    /// z = σ(a_z + r'_z), r = σ(a_r + r'_r), ĥ = act(a_h + r·r'_h), h = z·h + (1 - z)·ĥ.
    fn gru_step(&self, x: &[f64], h: &[f64]) -> Vec<f64> {
        let (u, width) = (self.units, 3 * self.units);
        let a = Self::times(x, &self.kernel, width);
        let inner = Self::times(h, &self.recurrent, width);
        let (input_bias, recurrent_bias) = self.bias.split_at(width);
        let gate = |v| apply(self.recurrent_activation, v);
        (0..u)
            .map(|k| {
                let z = gate(a[k] + input_bias[k] + inner[k] + recurrent_bias[k]);
                let r = gate(a[u + k] + input_bias[u + k] + inner[u + k] + recurrent_bias[u + k]);
                let candidate = apply(
                    self.activation,
                    a[2 * u + k]
                        + input_bias[2 * u + k]
                        + r * (inner[2 * u + k] + recurrent_bias[2 * u + k]),
                );
                z * h[k] + (1.0 - z) * candidate
            })
            .collect()
    }
}

/// A harness case of the layer `builder` makes, on 3 steps of 4 features (a batch of 2 in the
/// forward check), with fixed weights and the reference's outputs; `outputs` are the output
/// shapes, `params` Keras's parameter count.
pub(crate) fn case<C: Cell>(
    builder: LayerBuilder<RecurrentConfig<C>>,
    outputs: &[&str],
    params: usize,
) -> LayerCase {
    build_case(builder, outputs, params, false)
}

/// [`case`] with the initial states as further inputs.
pub(crate) fn case_with_initial_state<C: Cell>(
    builder: LayerBuilder<RecurrentConfig<C>>,
    outputs: &[&str],
    params: usize,
) -> LayerCase {
    build_case(builder, outputs, params, true)
}

fn build_case<C: Cell>(
    builder: LayerBuilder<RecurrentConfig<C>>,
    outputs: &[&str],
    params: usize,
    with_initial_state: bool,
) -> LayerCase {
    let config = builder.config().clone();
    let layer = builder.layer().expect("a valid layer");
    let (batch, steps, features, units) = (2, 3, 4, config.units);
    let width = C::GATES * units;
    let scaled = |v: Vec<f32>| v.into_iter().map(|x| 0.5 * x).collect::<Vec<f32>>();
    let mut weights = vec![
        scaled(values(features * width, 1)),
        scaled(values(units * width, 2)),
    ];
    if config.use_bias {
        weights.push(scaled(values(C::bias_shape(units).iter().product(), 3)));
    }
    let state_count = if with_initial_state {
        C::STATES.len()
    } else {
        0
    };
    let states: Vec<Vec<f32>> = (0..state_count)
        .map(|i| values(batch * units, 5 + i))
        .collect();
    let x = values(batch * steps * features, 4);
    let expected = Reference::new(&config, &weights).outputs(&x, batch, steps, &states);
    let tensor =
        |v: &[f32], dims: &[usize]| Tensor::from_slice(v, dims, &Device::Cpu).expect("input");
    let mut inputs = vec![tensor(&x, &[batch, steps, features])];
    inputs.extend(states.iter().map(|s| tensor(s, &[batch, units])));
    let mut shapes: Vec<&[usize]> = vec![&[3, 4]];
    let state_shape = [units];
    shapes.extend(std::iter::repeat_n(&state_shape[..], state_count));
    LayerCase::new(layer, &shapes)
        .output_shapes(outputs)
        .weights(weights.len(), 0, params)
        .weight_values(weights)
        .forward(inputs, expected)
}
