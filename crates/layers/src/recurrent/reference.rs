//! Keras's LSTM, GRU and SimpleRNN equations computed naively in f64
//! (`keras/src/layers/rnn/lstm.py`, `gru.py`, `simple_rnn.py`: `LSTMCell.call`, `GRUCell.call`
//! with `reset_after=True`, `SimpleRNNCell.call`), and the harness cases whose forward passes
//! they check.

use candle_core::{Device, Tensor};

use super::bidirectional::{Bidirectional, MergeMode};
use super::options::{Cell, RecurrentConfig};
use crate::activations::ActivationFn;
use crate::builder::LayerBuilder;
use crate::regularizers::Regularizer;
use crate::testing::{values, LayerCase};

/// A recurrent layer's weights and options, for the reference.
pub(crate) struct Reference {
    /// The Keras class name of the layer: which cell runs.
    class: &'static str,
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
            class: C::CLASS_NAME,
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
        let states_count = if self.class == "LSTM" { 2 } else { 1 };
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
                states = match self.class {
                    "LSTM" => self.lstm_step(&xt, &states[0], &states[1]),
                    "GRU" => vec![self.gru_step(&xt, &states[0])],
                    _ => vec![self.simple_step(&xt, &states[0])],
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

    /// `SimpleRNNCell.call`: h = act(x·W + b + h·U).
    fn simple_step(&self, x: &[f64], h: &[f64]) -> Vec<f64> {
        let u = self.units;
        let input = Self::times(x, &self.kernel, u);
        let hidden = Self::times(h, &self.recurrent, u);
        (0..u)
            .map(|k| apply(self.activation, input[k] + self.bias[k] + hidden[k]))
            .collect()
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

/// The harness cases every recurrent layer shares, for layers of 3 units on 4 features made by
/// `new` (`params`: Keras's count, `params_without_bias` without a bias): each option of
/// Keras's `RNN` and their combinations, a softplus (no fused kernel: candle ops and autograd
/// on every device), every regularizer, and the initial states as further inputs.
pub(crate) fn common_cases<C: Cell>(
    new: impl Fn(usize) -> LayerBuilder<RecurrentConfig<C>>,
    params: usize,
    params_without_bias: usize,
) -> Vec<LayerCase> {
    let with_states = |output: &'static str| -> Vec<&'static str> {
        std::iter::once(output)
            .chain(std::iter::repeat_n("(None, 3)", C::STATES.len()))
            .collect()
    };
    vec![
        case(new(3), &["(None, 3)"], params),
        case(new(3).return_sequences(true), &["(None, 3, 3)"], params),
        case(new(3).return_state(true), &with_states("(None, 3)"), params),
        case(
            new(3).return_sequences(true).return_state(true),
            &with_states("(None, 3, 3)"),
            params,
        ),
        case(
            new(3).go_backwards(true).return_sequences(true),
            &["(None, 3, 3)"],
            params,
        ),
        case(new(3).use_bias(false), &["(None, 3)"], params_without_bias),
        case(
            new(3).activation("softplus").return_sequences(true),
            &["(None, 3, 3)"],
            params,
        ),
        case(
            new(3)
                .kernel_regularizer(Regularizer::l2(0.1))
                .recurrent_regularizer(Regularizer::l1(0.1))
                .bias_regularizer(Regularizer::l2(0.2))
                .activity_regularizer(Regularizer::l1_l2(0.1, 0.1))
                .return_state(true),
            &with_states("(None, 3)"),
            params,
        ),
        // Keras's `initial_state`, one input per state after the sequences.
        case_with_initial_state(
            new(3)
                .return_state(true)
                .return_sequences(true)
                .go_backwards(true),
            &with_states("(None, 3, 3)"),
            params,
        ),
    ]
}

/// How many initial states a case of cell `C` feeds: all or none.
fn state_count<C: Cell>(with_initial_state: bool) -> usize {
    if with_initial_state {
        C::STATES.len()
    } else {
        0
    }
}

/// The sizes of every case: (batch, steps, features).
const SIZES: (usize, usize, usize) = (2, 3, 4);

/// Fixed weights for a layer of options `config` (kernel, recurrent kernel, then the bias if
/// it has one, flattened), drawn from the salts `salt`, `salt + 1`, `salt + 2`.
fn fixed_weights<C: Cell>(config: &RecurrentConfig<C>, salt: usize) -> Vec<Vec<f32>> {
    let (units, width) = (config.units, C::GATES * config.units);
    let drawn = |count: usize, salt: usize| -> Vec<f32> {
        values(count, salt).into_iter().map(|x| 0.5 * x).collect()
    };
    let mut weights = vec![drawn(SIZES.2 * width, salt), drawn(units * width, salt + 1)];
    if config.use_bias {
        weights.push(drawn(C::bias_shape(units).iter().product(), salt + 2));
    }
    weights
}

/// The inputs of a case: sequences of [`SIZES`], then `states` initial states of `units`.
fn inputs(units: usize, states: usize) -> (Vec<f32>, Vec<Vec<f32>>) {
    let (batch, steps, features) = SIZES;
    let x = values(batch * steps * features, 4);
    let states = (0..states).map(|i| values(batch * units, 5 + i)).collect();
    (x, states)
}

/// A case of `layer` on the sequences `x` then the initial states `states` of `units`, with
/// `weights` and the outputs `expected`.
fn layer_case(
    layer: std::sync::Arc<dyn crate::Layer>,
    (x, states): (Vec<f32>, Vec<Vec<f32>>),
    units: usize,
    weights: Vec<Vec<f32>>,
    expected: Vec<Vec<f64>>,
    (outputs, params): (&[&str], usize),
) -> LayerCase {
    let (batch, steps, features) = SIZES;
    let tensor =
        |v: &[f32], dims: &[usize]| Tensor::from_slice(v, dims, &Device::Cpu).expect("input");
    let mut tensors = vec![tensor(&x, &[batch, steps, features])];
    tensors.extend(states.iter().map(|s| tensor(s, &[batch, units])));
    let sequence_shape = [steps, features];
    let state_shape = [units];
    let mut shapes: Vec<&[usize]> = vec![&sequence_shape];
    shapes.extend(std::iter::repeat_n(&state_shape[..], states.len()));
    LayerCase::new(layer, &shapes)
        .output_shapes(outputs)
        .weights(weights.len(), 0, params)
        .weight_values(weights)
        .forward(tensors, expected)
}

fn build_case<C: Cell>(
    builder: LayerBuilder<RecurrentConfig<C>>,
    outputs: &[&str],
    params: usize,
    with_initial_state: bool,
) -> LayerCase {
    let config = builder.config().clone();
    let layer = builder.layer().expect("a valid layer");
    let weights = fixed_weights(&config, 1);
    let state_count = state_count::<C>(with_initial_state);
    let (x, states) = inputs(config.units, state_count);
    let expected = Reference::new(&config, &weights).outputs(&x, SIZES.0, SIZES.1, &states);
    let units = config.units;
    layer_case(
        layer,
        (x, states),
        units,
        weights,
        expected,
        (outputs, params),
    )
}

/// A harness case of `Bidirectional(builder)` merged by `merge_mode` (see [`case`]), with the
/// initial states of both directions as inputs when asked: the reference run forwards with one
/// set of weights and backwards with another, merged as `Bidirectional.call` merges.
pub(crate) fn bidirectional_case<C: Cell>(
    builder: LayerBuilder<RecurrentConfig<C>>,
    merge_mode: Option<MergeMode>,
    with_initial_state: bool,
    outputs: &[&str],
    params: usize,
) -> LayerCase {
    let config = builder.config().clone();
    let backward_config = RecurrentConfig {
        go_backwards: true,
        ..config.clone()
    };
    let layer = Bidirectional::new(builder)
        .merge_mode(merge_mode)
        .layer()
        .expect("a valid layer");
    let (forward_weights, backward_weights) =
        (fixed_weights(&config, 1), fixed_weights(&config, 11));
    let state_count = state_count::<C>(with_initial_state);
    let (x, states) = inputs(config.units, 2 * state_count);
    let (batch, steps, _) = SIZES;
    let (forward_states, backward_states) = states.split_at(state_count);
    let forward =
        Reference::new(&config, &forward_weights).outputs(&x, batch, steps, forward_states);
    let backward = Reference::new(&backward_config, &backward_weights).outputs(
        &x,
        batch,
        steps,
        backward_states,
    );
    let sequence_steps = config.return_sequences.then_some(steps);
    let expected = merged(forward, backward, merge_mode, sequence_steps, config.units);
    let weights = forward_weights
        .into_iter()
        .chain(backward_weights)
        .collect();
    let units = config.units;
    layer_case(
        layer,
        (x, states),
        units,
        weights,
        expected,
        (outputs, params),
    )
}

/// Keras's merge (`Bidirectional.call`) of each direction's outputs (output, then states):
/// the backward sequence of `steps` steps (when the layers return sequences) reversed back,
/// then joined, added, multiplied or averaged unit by unit, or both kept.
pub(crate) fn merged(
    forward: Vec<Vec<f64>>,
    backward: Vec<Vec<f64>>,
    merge_mode: Option<MergeMode>,
    steps: Option<usize>,
    units: usize,
) -> Vec<Vec<f64>> {
    let (mut forward, mut backward) = (forward.into_iter(), backward.into_iter());
    let (y, mut y_back) = (forward.next().expect("y"), backward.next().expect("y"));
    if let Some(steps) = steps {
        let rows: Vec<&[f64]> = y_back.chunks(units).collect();
        y_back = rows
            .chunks(steps)
            .flat_map(|sample| sample.iter().rev().flat_map(|row| row.iter().copied()))
            .collect();
    }
    let pairs = y.iter().zip(&y_back);
    let mut out = match merge_mode {
        None => vec![y.clone(), y_back.clone()],
        Some(MergeMode::Concat) => vec![y
            .chunks(units)
            .zip(y_back.chunks(units))
            .flat_map(|(a, b)| a.iter().chain(b).copied())
            .collect()],
        Some(MergeMode::Sum) => vec![pairs.map(|(a, b)| a + b).collect()],
        Some(MergeMode::Mul) => vec![pairs.map(|(a, b)| a * b).collect()],
        Some(MergeMode::Ave) => vec![pairs.map(|(a, b)| (a + b) / 2.0).collect()],
    };
    out.extend(forward);
    out.extend(backward);
    out
}
