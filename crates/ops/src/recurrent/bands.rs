//! What the LSTM, the GRU and the simple RNN share: the bands of samples run on their own threads, what each
//! keeps for the backward pass, the time-major gathers, and the outputs.

use std::borrow::Cow;
use std::ops::Range;

use candle_core::{Device, Tensor};

use super::checks::{check_call, check_state, check_weights};
use super::gradients::{assemble_gradients, band_gradients};
use super::{
    gru, lstm, simple, RecurrentGradients, RecurrentOutputGrads, RecurrentRun, RecurrentSpec,
    RecurrentWanted, RecurrentWeights,
};
use crate::check::{expect_f32_rank, expect_same_dims};
use crate::error::OpsError;
use crate::fork_join::{caller_and_pool, worker_threads};
use crate::storage::CpuView;

/// The fewest samples a band gets when the batch is split over threads: below this, the
/// per-step products are too small to pay for a thread.
const MIN_BAND_ROWS: usize = 8;

/// Which cell a sequence runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CellKind {
    /// Keras's LSTM: gates i, f, c, o; states h and c.
    Lstm,
    /// Keras 3's GRU (`reset_after=True`): gates z, r, h; state h.
    Gru,
    /// Keras's SimpleRNN: one activation, no gate; state h.
    Simple,
}

impl CellKind {
    /// The op's name in messages.
    pub(super) fn op(self) -> &'static str {
        match self {
            CellKind::Lstm => "lstm_sequence",
            CellKind::Gru => "gru_sequence",
            CellKind::Simple => "simple_rnn_sequence",
        }
    }

    /// Gates per unit: the kernels have this many times `units` columns.
    pub(super) fn gates(self) -> usize {
        match self {
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
            CellKind::Simple => 1,
        }
    }

    /// The number of states (`h`, and `c` for the LSTM).
    pub(super) fn states(self) -> usize {
        match self {
            CellKind::Lstm => 2,
            CellKind::Gru | CellKind::Simple => 1,
        }
    }

    /// The bias's dims as Keras stores it.
    pub(super) fn bias_dims(self, units: usize) -> Vec<usize> {
        match self {
            CellKind::Lstm => vec![4 * units],
            CellKind::Gru => vec![2, 3 * units],
            CellKind::Simple => vec![units],
        }
    }
}

/// The sizes of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Dims {
    pub batch: usize,
    pub steps: usize,
    pub features: usize,
    pub units: usize,
}

/// The sizes one band's loops see.
#[derive(Debug, Clone, Copy)]
pub(super) struct BandShape {
    /// Samples in the band.
    pub rows: usize,
    /// Time steps.
    pub steps: usize,
    /// Input features.
    pub features: usize,
    /// Units (the size of each state).
    pub units: usize,
    /// The activations.
    pub spec: RecurrentSpec,
    /// Whether the call started from given states (else from zeros, and the first step has no
    /// recurrent product).
    pub has_initial: bool,
}

impl BandShape {
    /// Values in one step's state of the band: `rows · units`.
    pub fn state_len(&self) -> usize {
        self.rows * self.units
    }
}

/// The weights as f32 slices (the bias as zeros when the layer has none).
pub(super) struct WeightData<'a> {
    /// (features, gates·units).
    pub kernel: &'a [f32],
    /// (units, gates·units).
    pub recurrent: &'a [f32],
    /// Keras's bias, flattened.
    pub bias: &'a [f32],
}

/// What the forward pass keeps of one band of samples, time-major, in the order the steps ran.
pub(super) struct Band {
    /// The samples.
    pub rows: Range<usize>,
    /// The inputs, (steps, rows, features).
    pub inputs: Vec<f32>,
    /// The initial state `h` then every step's output, (steps + 1, rows, units).
    pub hidden: Vec<f32>,
    /// What the cell keeps besides.
    cell: CellTape,
}

/// A cell's own tape of a band (the simple RNN's outputs are all it needs).
enum CellTape {
    Lstm(lstm::LstmTape),
    Gru(gru::GruTape),
    Simple,
}

/// The gradients of one band's pre-activations, from a cell's backward loop.
pub(super) struct Adjoint {
    /// Of the input projection `x·kernel (+ bias)` at every step, (steps, rows, gates·units).
    pub input: Vec<f32>,
    /// Of the recurrent projection `h·recurrent_kernel` where it differs from `input` (GRU).
    pub recurrent: Option<Vec<f32>>,
    /// Of the initial states, (rows, units) each.
    pub states: Vec<Vec<f32>>,
}

/// What a forward pass keeps for its backward pass (see [`super::recurrent_backward`]).
pub struct RecurrentTape {
    kind: CellKind,
    dims: Dims,
    pub(super) spec: RecurrentSpec,
    has_initial: bool,
    pub(super) bands: Vec<Band>,
}

impl std::fmt::Debug for RecurrentTape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecurrentTape({:?}, {:?})", self.kind, self.dims)
    }
}

/// [`super::lstm_sequence`] or [`super::gru_sequence`].
pub(super) fn forward(
    kind: CellKind,
    x: &Tensor,
    weights: RecurrentWeights<'_>,
    initial_state: &[Tensor],
    spec: RecurrentSpec,
) -> candle_core::Result<RecurrentRun> {
    let op = kind.op();
    let dims = check_call(kind, x, weights)?;
    if !initial_state.is_empty() && initial_state.len() != kind.states() {
        return Err(OpsError::Config {
            op,
            reason: format!(
                "expected {} initial states, got {}",
                kind.states(),
                initial_state.len()
            ),
        }
        .into());
    }
    for state in initial_state {
        check_state(op, "initial state", state, x, dims)?;
    }
    let x_view = CpuView::of(op, "x", x)?;
    let x_data = x_view.f32()?;
    let initial_views = initial_state
        .iter()
        .map(|s| CpuView::of(op, "initial state", s))
        .collect::<Result<Vec<_>, _>>()?;
    let initial = initial_views
        .iter()
        .map(CpuView::f32)
        .collect::<Result<Vec<_>, _>>()?;
    let has_initial = !initial.is_empty();
    let bands = with_weights(kind, weights, dims, |w| {
        caller_and_pool(bands(dims.batch), |rows| {
            let shape = band_shape(dims, spec, has_initial, &rows);
            let inputs =
                gather_time_major(&x_data, dims.steps, dims.features, &rows, spec.go_backwards);
            let state_rows = rows.start * dims.units..rows.end * dims.units;
            let mut hidden = vec![0.0; (dims.steps + 1) * shape.state_len()];
            if let Some(h0) = initial.first() {
                hidden[..shape.state_len()].copy_from_slice(&h0[state_rows.clone()]);
            }
            let cell = match kind {
                CellKind::Lstm => {
                    let c0 = initial.get(1).map(|c| &c[state_rows.clone()]);
                    CellTape::Lstm(lstm::forward(&shape, w, &inputs, &mut hidden, c0))
                }
                CellKind::Gru => CellTape::Gru(gru::forward(&shape, w, &inputs, &mut hidden)),
                CellKind::Simple => {
                    simple::forward(&shape, w, &inputs, &mut hidden);
                    CellTape::Simple
                }
            };
            Band {
                rows,
                inputs,
                hidden,
                cell,
            }
        })
    })?;
    let tape = RecurrentTape {
        kind,
        dims,
        spec,
        has_initial,
        bands,
    };
    let device = x.device();
    let sequence = spec
        .return_sequences
        .then(|| sequence_output(&tape, device))
        .transpose()?;
    let states = (0..kind.states())
        .map(|state| final_state(&tape, state, device))
        .collect::<candle_core::Result<_>>()?;
    Ok(RecurrentRun {
        sequence,
        states,
        tape,
    })
}

/// [`super::recurrent_backward`].
pub(super) fn backward(
    tape: &RecurrentTape,
    weights: RecurrentWeights<'_>,
    grads: RecurrentOutputGrads<'_>,
    wanted: RecurrentWanted,
) -> candle_core::Result<RecurrentGradients> {
    let (kind, dims) = (tape.kind, tape.dims);
    let op = kind.op();
    let weight_dims = check_weights(kind, weights, weights.kernel.dims().first().copied())?;
    if weight_dims != (dims.features, dims.units) {
        return Err(OpsError::Config {
            op,
            reason: format!(
                "backward with weights for {weight_dims:?} (features, units), the tape's call had {:?}",
                (dims.features, dims.units)
            ),
        }
        .into());
    }
    let device = weights.kernel.device();
    if let Some(sequence) = grads.sequence {
        let expected = [dims.batch, dims.steps, dims.units];
        expect_f32_rank(op, "sequence gradient", sequence, 3)?;
        expect_same_dims(
            op,
            "the sequence gradient has the sequence's shape",
            ("sequence gradient", sequence.dims()),
            ("sequence", &expected),
        )?;
    }
    let state_grads: Vec<Option<&Tensor>> = (0..kind.states())
        .map(|i| grads.states.get(i).and_then(Option::as_ref))
        .collect();
    for grad in state_grads.iter().flatten() {
        expect_f32_rank(op, "state gradient", grad, 2)?;
        expect_same_dims(
            op,
            "a state gradient has the state's shape",
            ("state gradient", grad.dims()),
            ("state", &[dims.batch, dims.units]),
        )?;
    }
    let sequence_view = grads
        .sequence
        .map(|s| CpuView::of(op, "sequence gradient", s))
        .transpose()?;
    let sequence_grad = sequence_view.as_ref().map(CpuView::f32).transpose()?;
    let state_views = state_grads
        .iter()
        .map(|g| g.map(|g| CpuView::of(op, "state gradient", g)).transpose())
        .collect::<Result<Vec<_>, _>>()?;
    let state_data = state_views
        .iter()
        .map(|v| v.as_ref().map(CpuView::f32).transpose())
        .collect::<Result<Vec<_>, _>>()?;
    let wanted = RecurrentWanted {
        bias: wanted.bias && weights.bias.is_some(),
        initial_state: wanted.initial_state && tape.has_initial,
        ..wanted
    };
    let parts = with_weights(kind, weights, dims, |w| {
        caller_and_pool(tape.bands.iter().collect(), |band: &Band| {
            let shape = band_shape(dims, tape.spec, tape.has_initial, &band.rows);
            let sequence = sequence_grad
                .as_ref()
                .map(|g| gather_time_major(g, dims.steps, dims.units, &band.rows, false));
            let state_rows = band.rows.start * dims.units..band.rows.end * dims.units;
            let states = state_data
                .iter()
                .map(|g| match g {
                    Some(g) => g[state_rows.clone()].to_vec(),
                    None => vec![0.0; shape.state_len()],
                })
                .collect();
            let adjoint = match &band.cell {
                CellTape::Lstm(cell) => lstm::backward(
                    &shape,
                    w,
                    cell,
                    sequence.as_deref(),
                    states,
                    wanted.initial_state,
                ),
                CellTape::Gru(cell) => gru::backward(
                    &shape,
                    w,
                    &band.hidden,
                    cell,
                    sequence.as_deref(),
                    states,
                    wanted.initial_state,
                ),
                CellTape::Simple => simple::backward(
                    &shape,
                    w,
                    &band.hidden,
                    sequence.as_deref(),
                    states,
                    wanted.initial_state,
                ),
            };
            band_gradients(kind, &shape, w, band, adjoint, wanted)
        })
    })?;
    assemble_gradients(kind, dims, tape, parts, wanted, weights, device)
}

/// Runs `f` on the weights as slices (a zero bias when there is none).
fn with_weights<T>(
    kind: CellKind,
    weights: RecurrentWeights<'_>,
    dims: Dims,
    f: impl FnOnce(&WeightData<'_>) -> T,
) -> candle_core::Result<T> {
    let op = kind.op();
    let kernel_view = CpuView::of(op, "kernel", weights.kernel)?;
    let recurrent_view = CpuView::of(op, "recurrent_kernel", weights.recurrent_kernel)?;
    let bias_view = weights
        .bias
        .map(|b| CpuView::of(op, "bias", b))
        .transpose()?;
    let bias = match &bias_view {
        Some(view) => view.f32()?,
        None => Cow::Owned(vec![0.0; kind.bias_dims(dims.units).iter().product()]),
    };
    let (kernel, recurrent) = (kernel_view.f32()?, recurrent_view.f32()?);
    Ok(f(&WeightData {
        kernel: &kernel,
        recurrent: &recurrent,
        bias: &bias,
    }))
}

/// The bands a batch is cut into: one per thread, of at least [`MIN_BAND_ROWS`] samples.
fn bands(batch: usize) -> Vec<Range<usize>> {
    let count = worker_threads().min(batch.div_ceil(MIN_BAND_ROWS)).max(1);
    let size = batch.div_ceil(count).max(1);
    (0..batch)
        .step_by(size)
        .map(|start| start..(start + size).min(batch))
        .collect()
}

fn band_shape(
    dims: Dims,
    spec: RecurrentSpec,
    has_initial: bool,
    rows: &Range<usize>,
) -> BandShape {
    BandShape {
        rows: rows.len(),
        steps: dims.steps,
        features: dims.features,
        units: dims.units,
        spec,
        has_initial,
    }
}

/// The `rows` of batch-major `data` (batch, steps, width), time-major: (steps, rows, width),
/// the steps reversed when asked.
fn gather_time_major(
    data: &[f32],
    steps: usize,
    width: usize,
    rows: &Range<usize>,
    reversed: bool,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(steps * rows.len() * width);
    for step in 0..steps {
        let at = if reversed { steps - 1 - step } else { step };
        for row in rows.clone() {
            out.extend_from_slice(&data[(row * steps + at) * width..][..width]);
        }
    }
    out
}

/// Writes a band's time-major `band` (steps, rows, width) into batch-major `out` (batch,
/// steps, width), the steps reversed when asked: the inverse of [`gather_time_major`].
pub(super) fn scatter_time_major(
    out: &mut [f32],
    band: &[f32],
    steps: usize,
    width: usize,
    rows: &Range<usize>,
    reversed: bool,
) {
    let mut values = band.chunks_exact(width);
    for step in 0..steps {
        let at = if reversed { steps - 1 - step } else { step };
        for (row, value) in rows.clone().zip(values.by_ref()) {
            out[(row * steps + at) * width..][..width].copy_from_slice(value);
        }
    }
}

/// Every step's output, (batch, steps, units), in the order the steps ran.
fn sequence_output(tape: &RecurrentTape, device: &Device) -> candle_core::Result<Tensor> {
    let Dims {
        batch,
        steps,
        units,
        ..
    } = tape.dims;
    let mut out = vec![0.0; batch * steps * units];
    for band in &tape.bands {
        let outputs = &band.hidden[band.rows.len() * units..];
        scatter_time_major(&mut out, outputs, steps, units, &band.rows, false);
    }
    Tensor::from_vec(out, (batch, steps, units), device)
}

/// The final state number `state` (h, then the LSTM's c), (batch, units).
fn final_state(tape: &RecurrentTape, state: usize, device: &Device) -> candle_core::Result<Tensor> {
    let Dims {
        batch,
        steps,
        units,
        ..
    } = tape.dims;
    let mut out = Vec::with_capacity(batch * units);
    for band in &tape.bands {
        let values = match (state, &band.cell) {
            (0, _) => &band.hidden,
            (_, CellTape::Lstm(cell)) => &cell.cells,
            (_, CellTape::Gru(_) | CellTape::Simple) => {
                unreachable!("a GRU or a simple RNN has one state")
            }
        };
        let len = band.rows.len() * units;
        out.extend_from_slice(&values[steps * len..][..len]);
    }
    Tensor::from_vec(out, (batch, units), device)
}
