//! The GRU's loops over one band of samples (see `bands`), Keras 3's variant
//! (`reset_after=True`) with gates z, r, h: with `a = x·kernel + bias[0]` and
//! `b = h·recurrent_kernel + bias[1]`, `z = σ(a_z + b_z)`, `r = σ(a_r + b_r)`,
//! `ĥ = act(a_h + r·b_h)`, `h' = z·h + (1 - z)·ĥ`.

use std::marker::PhantomData;

use super::bands::{Adjoint, BandShape, WeightData};
use super::gates::{with_cell_activations, Gate};
use super::gradients::{add_assign, project};
use crate::matmul::{matmul, Accumulate, MatMut, MatRef};
use crate::simd::{vectorized, Kernel};

/// What the forward pass keeps of a band.
pub(super) struct GruTape {
    /// The activated z, r and candidate ĥ of every step, (steps, rows, 3·units).
    gates: Vec<f32>,
    /// The recurrent projection `b` of every step, (steps, rows, 3·units); the backward pass
    /// reads its h block, which holds the recurrent bias too.
    recurrent: Vec<f32>,
}

/// Runs a band through every step: `hidden` holds the initial `h` (rows, units) and receives
/// each step's output after it.
pub(super) fn forward(
    shape: &BandShape,
    w: &WeightData<'_>,
    inputs: &[f32],
    hidden: &mut [f32],
) -> GruTape {
    let (rows, units, len) = (shape.rows, shape.units, shape.state_len());
    let width = 3 * units;
    let (input_bias, recurrent_bias) = w.bias.split_at(width);
    let mut gates = project(inputs, w.kernel, shape.steps * rows, shape.features, width);
    // Zeros: the first step's recurrent product when the state starts at zero.
    let mut recurrent = vec![0.0; shape.steps * rows * width];
    for step in 0..shape.steps {
        let step_recurrent = &mut recurrent[step * rows * width..][..rows * width];
        let (before, after) = hidden.split_at_mut((step + 1) * len);
        let previous = &before[step * len..];
        if step > 0 || shape.has_initial {
            matmul(
                MatMut::row_major(step_recurrent, rows, width),
                MatRef::row_major(previous, rows, units),
                MatRef::row_major(w.recurrent, units, width),
                Accumulate::Overwrite,
                1,
            );
        }
        with_cell_activations!(shape.spec, A, S => vectorized(ForwardStep::<A, S> {
            gates: &mut gates[step * rows * width..][..rows * width],
            recurrent: step_recurrent,
            input_bias,
            recurrent_bias,
            h_prev: previous,
            h: &mut after[..len],
            units,
            activations: PhantomData,
        }));
    }
    GruTape { gates, recurrent }
}

/// The backward loop of a band, from the gradients of every step's output (`sequence`, (steps,
/// rows, units), if any) and of the final `h` (`states`): the gradients of every step's input
/// and recurrent projections, and of the initial state (computed only when `want_initial`).
/// `hidden` is the band's initial state and outputs, as the forward pass left them.
pub(super) fn backward(
    shape: &BandShape,
    w: &WeightData<'_>,
    hidden: &[f32],
    tape: &GruTape,
    sequence: Option<&[f32]>,
    states: Vec<Vec<f32>>,
    want_initial: bool,
) -> Adjoint {
    let (rows, units, len) = (shape.rows, shape.units, shape.state_len());
    let width = 3 * units;
    let mut dh = states.into_iter().next().unwrap_or_else(|| vec![0.0; len]);
    let mut d_input = vec![0.0; shape.steps * rows * width];
    let mut d_recurrent = vec![0.0; shape.steps * rows * width];
    for step in (0..shape.steps).rev() {
        if let Some(sequence) = sequence {
            add_assign(&mut dh, &sequence[step * len..][..len]);
        }
        let span = step * rows * width..(step + 1) * rows * width;
        with_cell_activations!(shape.spec, A, S => vectorized(BackwardStep::<A, S> {
            gates: &tape.gates[span.clone()],
            recurrent: &tape.recurrent[span.clone()],
            h_prev: &hidden[step * len..][..len],
            dh: &mut dh,
            d_input: &mut d_input[span.clone()],
            d_recurrent: &mut d_recurrent[span.clone()],
            units,
            activations: PhantomData,
        }));
        if step > 0 || want_initial {
            matmul(
                MatMut::row_major(&mut dh, rows, units),
                MatRef::row_major(&d_recurrent[span], rows, width),
                MatRef::row_major(w.recurrent, units, width).t(),
                Accumulate::Add,
                1,
            );
        }
    }
    Adjoint {
        input: d_input,
        recurrent: Some(d_recurrent),
        states: vec![dh],
    }
}

/// One step's gates and output for every row of a band: reads the input projection in `gates`
/// and the recurrent one in `recurrent` (both without bias), overwrites `gates` with z, r, ĥ
/// and the h block of `recurrent` with itself plus its bias.
///
/// The loops over a row are helper functions whose written slices are parameters of their own:
/// what lets LLVM vectorise them, knowing that no two of them overlap.
struct ForwardStep<'a, A, S> {
    gates: &'a mut [f32],
    recurrent: &'a mut [f32],
    input_bias: &'a [f32],
    recurrent_bias: &'a [f32],
    h_prev: &'a [f32],
    h: &'a mut [f32],
    units: usize,
    activations: PhantomData<(A, S)>,
}

impl<A: Gate, S: Gate> Kernel for ForwardStep<'_, A, S> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let u = self.units;
        let rows = self
            .gates
            .chunks_exact_mut(3 * u)
            .zip(self.recurrent.chunks_exact_mut(3 * u))
            .zip(self.h_prev.chunks_exact(u))
            .zip(self.h.chunks_exact_mut(u));
        for (((gates, recurrent), h_prev), h) in rows {
            let (z, rest) = gates.split_at_mut(u);
            let (r, candidate) = rest.split_at_mut(u);
            let (recurrent_zr, recurrent_h) = recurrent.split_at_mut(2 * u);
            let (recurrent_z, recurrent_r) = recurrent_zr.split_at(u);
            let (input_zr, input_h) = self.input_bias.split_at(2 * u);
            let (bias_zr, bias_h) = self.recurrent_bias.split_at(2 * u);
            gate::<S>(z, recurrent_z, &input_zr[..u], &bias_zr[..u]);
            gate::<S>(r, recurrent_r, &input_zr[u..], &bias_zr[u..]);
            candidate_forward::<A>(candidate, recurrent_h, r, input_h, bias_h);
            output_forward(h, z, candidate, h_prev);
        }
    }
}

/// `values = G(values + input_bias + recurrent + recurrent_bias)`: a gate of one row.
#[inline(always)]
fn gate<G: Gate>(
    values: &mut [f32],
    recurrent: &[f32],
    input_bias: &[f32],
    recurrent_bias: &[f32],
) {
    let u = values.len();
    let (recurrent, input_bias, recurrent_bias) =
        (&recurrent[..u], &input_bias[..u], &recurrent_bias[..u]);
    for k in 0..u {
        values[k] = G::value(values[k] + input_bias[k] + recurrent[k] + recurrent_bias[k]);
    }
}

/// One row's candidate `ĥ = act(a_h + r·b_h)`, written over `a_h` (in `candidate`, without its
/// bias), with `b_h` (in `recurrent`, without its bias) replaced by itself plus its bias.
#[inline(always)]
fn candidate_forward<A: Gate>(
    candidate: &mut [f32],
    recurrent: &mut [f32],
    r: &[f32],
    input_bias: &[f32],
    recurrent_bias: &[f32],
) {
    let u = candidate.len();
    let (recurrent, r) = (&mut recurrent[..u], &r[..u]);
    let (input_bias, recurrent_bias) = (&input_bias[..u], &recurrent_bias[..u]);
    for k in 0..u {
        let inner = recurrent[k] + recurrent_bias[k];
        recurrent[k] = inner;
        candidate[k] = A::value(candidate[k] + input_bias[k] + r[k] * inner);
    }
}

/// One row's output `h = z·h_prev + (1 - z)·ĥ`.
#[inline(always)]
fn output_forward(h: &mut [f32], z: &[f32], candidate: &[f32], h_prev: &[f32]) {
    let u = h.len();
    let (z, candidate, h_prev) = (&z[..u], &candidate[..u], &h_prev[..u]);
    for k in 0..u {
        h[k] = z[k] * h_prev[k] + (1.0 - z[k]) * candidate[k];
    }
}

/// One step backward for every row of a band: from the output's gradient `dh` (replaced by the
/// part of the previous output's gradient that does not go through the recurrent kernel,
/// `dh·z`), the gradients of the input and recurrent projections (equal but for the h block,
/// which the reset gate scales on the recurrent side).
struct BackwardStep<'a, A, S> {
    gates: &'a [f32],
    recurrent: &'a [f32],
    h_prev: &'a [f32],
    dh: &'a mut [f32],
    d_input: &'a mut [f32],
    d_recurrent: &'a mut [f32],
    units: usize,
    activations: PhantomData<(A, S)>,
}

impl<A: Gate, S: Gate> Kernel for BackwardStep<'_, A, S> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let u = self.units;
        let rows = self
            .gates
            .chunks_exact(3 * u)
            .zip(self.recurrent.chunks_exact(3 * u))
            .zip(self.h_prev.chunks_exact(u))
            .zip(self.dh.chunks_exact_mut(u))
            .zip(self.d_input.chunks_exact_mut(3 * u))
            .zip(self.d_recurrent.chunks_exact_mut(3 * u));
        for (((((gates, recurrent), h_prev), dh), d_input), d_recurrent) in rows {
            let (dz, rest) = d_input.split_at_mut(u);
            let (dr, d_candidate) = rest.split_at_mut(u);
            let tape = RowTape {
                gates,
                inner: &recurrent[2 * u..],
                h_prev,
            };
            let (d_recurrent_zr, d_recurrent_h) = d_recurrent.split_at_mut(2 * u);
            cell_backward::<A, S>(tape, dh, dz, dr, d_candidate, d_recurrent_h);
            d_recurrent_zr.copy_from_slice(&d_input[..2 * u]);
        }
    }
}

/// What one row's backward step reads: the activated `[z, r, ĥ]`, the recurrent projection's h
/// block with its bias, and the previous output.
#[derive(Clone, Copy)]
struct RowTape<'a> {
    gates: &'a [f32],
    inner: &'a [f32],
    h_prev: &'a [f32],
}

/// One row's backward step: from `dh` (replaced by `dh·z`), the gradients of the pre-activations
/// of z, r and ĥ, and of the recurrent projection's h block.
#[inline(always)]
fn cell_backward<A: Gate, S: Gate>(
    tape: RowTape<'_>,
    dh: &mut [f32],
    dz: &mut [f32],
    dr: &mut [f32],
    d_candidate: &mut [f32],
    d_inner: &mut [f32],
) {
    let u = dh.len();
    let g = tape.gates;
    let (z, r, candidate) = (&g[..u], &g[u..2 * u], &g[2 * u..3 * u]);
    let (inner, h_prev) = (&tape.inner[..u], &tape.h_prev[..u]);
    let (dz, dr) = (&mut dz[..u], &mut dr[..u]);
    let (d_candidate, d_inner) = (&mut d_candidate[..u], &mut d_inner[..u]);
    for k in 0..u {
        let grad = dh[k];
        let d_pre = grad * (1.0 - z[k]) * A::slope_from_output(candidate[k]);
        dz[k] = grad * (h_prev[k] - candidate[k]) * S::slope_from_output(z[k]);
        dr[k] = d_pre * inner[k] * S::slope_from_output(r[k]);
        d_candidate[k] = d_pre;
        d_inner[k] = d_pre * r[k];
        dh[k] = grad * z[k];
    }
}
