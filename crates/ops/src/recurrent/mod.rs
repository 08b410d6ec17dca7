//! LSTM, GRU and simple RNN over whole sequences on the CPU, forward and backward
//! (backpropagation through time), with weights laid out as Keras stores them
//! (`keras/src/layers/rnn/lstm.py`, `gru.py`, `simple_rnn.py`).
//!
//! The batch is cut into bands of samples, one per thread, each run through every time step on
//! its thread (the samples of a batch never meet in a recurrent cell): one fork-join per call,
//! not one per step. In a band the inputs are gathered time-major, projected by the kernel for
//! all steps in one product, and each step adds the recurrent product of the previous output to
//! its rows and runs one fused pass over the gates. The forward pass keeps the activated gates
//! and the states of every step; the backward pass walks the steps in reverse with one fused
//! pass and one product each, then gets the weight and input gradients of all steps in one
//! product each.
//!
//! Nothing is recorded for candle's autograd: a layer that differentiates by autograd composes
//! candle ops instead (see `rkeras-layers`' recurrent layers).

mod bands;
mod checks;
mod gates;
mod gradients;
mod gru;
mod lstm;
mod simple;
#[cfg(test)]
mod tests;

use candle_core::Tensor;

use crate::dense::FusedActivation;
pub use bands::RecurrentTape;

/// How a recurrent layer runs: its two activations (a simple RNN has no gate and ignores the
/// second), the direction, and what it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecurrentSpec {
    /// Keras's `activation` (tanh by default): the candidate values, and the LSTM's cell state
    /// before the output gate.
    pub activation: FusedActivation,
    /// Keras's `recurrent_activation` (sigmoid by default): the gates.
    pub recurrent_activation: FusedActivation,
    /// Whether the sequence is read from its last step to its first (the outputs then come in
    /// the order they were computed, as Keras returns them).
    pub go_backwards: bool,
    /// Whether the output of every step is returned, not only the last.
    pub return_sequences: bool,
}

/// A recurrent layer's weights, as Keras stores them: `kernel` (features, gates·units),
/// `recurrent_kernel` (units, gates·units), and `bias`: (4·units) for an LSTM, (2, 3·units)
/// for a GRU (input bias, then recurrent bias), (units) for a simple RNN (one "gate"). Gates
/// in Keras's order: i, f, c, o for an LSTM, z, r, h for a GRU.
#[derive(Debug, Clone, Copy)]
pub struct RecurrentWeights<'a> {
    /// The input projection.
    pub kernel: &'a Tensor,
    /// The recurrent projection.
    pub recurrent_kernel: &'a Tensor,
    /// The bias, if the layer has one.
    pub bias: Option<&'a Tensor>,
}

/// What a forward pass returns.
#[derive(Debug)]
pub struct RecurrentRun {
    /// Every step's output, (batch, steps, units), when [`RecurrentSpec::return_sequences`].
    pub sequence: Option<Tensor>,
    /// The final states, (batch, units) each: `h` then `c` for an LSTM, `h` for a GRU or a
    /// simple RNN (the last output is `h`).
    pub states: Vec<Tensor>,
    /// What the backward pass needs.
    pub tape: RecurrentTape,
}

/// The gradients of a forward pass's outputs.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecurrentOutputGrads<'a> {
    /// Of the sequence, (batch, steps, units), if it was returned and reaches the loss.
    pub sequence: Option<&'a Tensor>,
    /// Of the final states, in the order of [`RecurrentRun::states`] (the last output's
    /// gradient belongs to `h`); `None` where none reaches the loss. Shorter than the states
    /// means `None` for the rest.
    pub states: &'a [Option<Tensor>],
}

/// Which gradients a backward pass computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecurrentWanted {
    /// Of the input sequence.
    pub x: bool,
    /// Of the kernel.
    pub kernel: bool,
    /// Of the recurrent kernel.
    pub recurrent_kernel: bool,
    /// Of the bias.
    pub bias: bool,
    /// Of the initial states (only where the forward pass was given them).
    pub initial_state: bool,
}

/// What a backward pass returns: the gradients asked for, `None` for the others.
#[derive(Debug, Clone, Default)]
pub struct RecurrentGradients {
    /// Of the input sequence, (batch, steps, features).
    pub x: Option<Tensor>,
    /// Of the kernel.
    pub kernel: Option<Tensor>,
    /// Of the recurrent kernel.
    pub recurrent_kernel: Option<Tensor>,
    /// Of the bias, in its shape.
    pub bias: Option<Tensor>,
    /// Of each initial state, when the forward pass was given them.
    pub initial_state: Vec<Tensor>,
}

/// An LSTM over the sequences `x` (batch, steps, features), from the zero state or from
/// `initial_state` (`[h, c]`, (batch, units) each), by Keras's equations:
/// `z = x·kernel + h·recurrent_kernel + bias`, split into i, f, c, o;
/// `c' = σ(f)·c + σ(i)·act(c)`, `h' = σ(o)·act(c')` with σ the recurrent activation.
/// f32 CPU tensors only.
pub fn lstm_sequence(
    x: &Tensor,
    weights: RecurrentWeights<'_>,
    initial_state: &[Tensor],
    spec: RecurrentSpec,
) -> candle_core::Result<RecurrentRun> {
    bands::forward(bands::CellKind::Lstm, x, weights, initial_state, spec)
}

/// A GRU over the sequences `x` (batch, steps, features), from the zero state or from
/// `initial_state` (`[h]`), by Keras 3's equations (`reset_after=True`): with
/// `a = x·kernel + bias[0]` and `b = h·recurrent_kernel + bias[1]` split into z, r, h parts,
/// `z = σ(a_z + b_z)`, `r = σ(a_r + b_r)`, `ĥ = act(a_h + r·b_h)`, `h' = z·h + (1 - z)·ĥ`.
/// f32 CPU tensors only.
pub fn gru_sequence(
    x: &Tensor,
    weights: RecurrentWeights<'_>,
    initial_state: &[Tensor],
    spec: RecurrentSpec,
) -> candle_core::Result<RecurrentRun> {
    bands::forward(bands::CellKind::Gru, x, weights, initial_state, spec)
}

/// A simple RNN over the sequences `x` (batch, steps, features), from the zero state or from
/// `initial_state` (`[h]`), by Keras's equation `h' = act(x·kernel + bias + h·recurrent_kernel)`
/// (the spec's recurrent activation is not used). f32 CPU tensors only.
pub fn simple_rnn_sequence(
    x: &Tensor,
    weights: RecurrentWeights<'_>,
    initial_state: &[Tensor],
    spec: RecurrentSpec,
) -> candle_core::Result<RecurrentRun> {
    bands::forward(bands::CellKind::Simple, x, weights, initial_state, spec)
}

/// The backward pass of [`lstm_sequence`], [`gru_sequence`] or [`simple_rnn_sequence`] from its
/// tape, the same weights, and the gradients of its outputs: the gradients `wanted`.
pub fn recurrent_backward(
    tape: &RecurrentTape,
    weights: RecurrentWeights<'_>,
    grads: RecurrentOutputGrads<'_>,
    wanted: RecurrentWanted,
) -> candle_core::Result<RecurrentGradients> {
    bands::backward(tape, weights, grads, wanted)
}
