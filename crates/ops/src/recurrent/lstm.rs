//! The LSTM's loops over one band of samples (see `bands`), with Keras's gates i, f, c, o:
//! `z = x·kernel + h·recurrent_kernel + bias`, `c' = σ(z_f)·c + σ(z_i)·act(z_c)`,
//! `h' = σ(z_o)·act(c')`.

use std::marker::PhantomData;

use super::bands::{Adjoint, BandShape, WeightData};
use super::gates::{with_cell_activations, Gate};
use super::gradients::{add_assign, project};
use crate::matmul::{matmul, Accumulate, MatMut, MatRef};
use crate::simd::{vectorized, Kernel};

/// What the forward pass keeps of a band.
pub(super) struct LstmTape {
    /// The activated gates i, f, c̃, o of every step, (steps, rows, 4·units).
    gates: Vec<f32>,
    /// The initial cell state then every step's, (steps + 1, rows, units).
    pub(super) cells: Vec<f32>,
    /// `act(c)` of every step, (steps, rows, units).
    activated: Vec<f32>,
}

/// Runs a band through every step: `hidden` holds the initial `h` (rows, units) and receives
/// each step's output after it; `c0` is the initial cell state (zeros if `None`).
pub(super) fn forward(
    shape: &BandShape,
    w: &WeightData<'_>,
    inputs: &[f32],
    hidden: &mut [f32],
    c0: Option<&[f32]>,
) -> LstmTape {
    let (rows, units, len) = (shape.rows, shape.units, shape.state_len());
    let width = 4 * units;
    let mut gates = project(inputs, w.kernel, shape.steps * rows, shape.features, width);
    let mut cells = vec![0.0; (shape.steps + 1) * len];
    if let Some(c0) = c0 {
        cells[..len].copy_from_slice(c0);
    }
    let mut activated = vec![0.0; shape.steps * len];
    for step in 0..shape.steps {
        let step_gates = &mut gates[step * rows * width..][..rows * width];
        let (before, after) = hidden.split_at_mut((step + 1) * len);
        if step > 0 || shape.has_initial {
            matmul(
                MatMut::row_major(step_gates, rows, width),
                MatRef::row_major(&before[step * len..], rows, units),
                MatRef::row_major(w.recurrent, units, width),
                Accumulate::Add,
                1,
            );
        }
        let (cells_before, cells_after) = cells.split_at_mut((step + 1) * len);
        with_cell_activations!(shape.spec, A, S => vectorized(ForwardStep::<A, S> {
            gates: step_gates,
            bias: w.bias,
            c_prev: &cells_before[step * len..],
            c: &mut cells_after[..len],
            activated: &mut activated[step * len..][..len],
            h: &mut after[..len],
            units,
            activations: PhantomData,
        }));
    }
    LstmTape {
        gates,
        cells,
        activated,
    }
}

/// The backward loop of a band, from the gradients of every step's output (`sequence`, (steps,
/// rows, units), if any) and of the final `h` and `c` (`states`): the gradients of every step's
/// pre-activations `z`, and of the initial states (computed only when `want_initial`).
pub(super) fn backward(
    shape: &BandShape,
    w: &WeightData<'_>,
    tape: &LstmTape,
    sequence: Option<&[f32]>,
    states: Vec<Vec<f32>>,
    want_initial: bool,
) -> Adjoint {
    let (rows, units, len) = (shape.rows, shape.units, shape.state_len());
    let width = 4 * units;
    let mut states = states.into_iter();
    let mut dh = states.next().unwrap_or_else(|| vec![0.0; len]);
    let mut dc = states.next().unwrap_or_else(|| vec![0.0; len]);
    let mut dz = vec![0.0; shape.steps * rows * width];
    for step in (0..shape.steps).rev() {
        if let Some(sequence) = sequence {
            add_assign(&mut dh, &sequence[step * len..][..len]);
        }
        let step_dz = &mut dz[step * rows * width..][..rows * width];
        with_cell_activations!(shape.spec, A, S => vectorized(BackwardStep::<A, S> {
            gates: &tape.gates[step * rows * width..][..rows * width],
            c_prev: &tape.cells[step * len..][..len],
            activated: &tape.activated[step * len..][..len],
            dh: &dh,
            dc: &mut dc,
            dz: step_dz,
            units,
            activations: PhantomData,
        }));
        if step > 0 || want_initial {
            matmul(
                MatMut::row_major(&mut dh, rows, units),
                MatRef::row_major(step_dz, rows, width),
                MatRef::row_major(w.recurrent, units, width).t(),
                Accumulate::Overwrite,
                1,
            );
        }
    }
    Adjoint {
        input: dz,
        recurrent: None,
        states: vec![dh, dc],
    }
}

/// One step's gates, cell state and output, for every row of a band: reads the pre-activations
/// in `gates` (without the bias) and overwrites them with the activated gates.
///
/// The loops over a row are helper functions whose written slices are parameters of their own:
/// what lets LLVM vectorise them, knowing that no two of them overlap.
struct ForwardStep<'a, A, S> {
    gates: &'a mut [f32],
    bias: &'a [f32],
    c_prev: &'a [f32],
    c: &'a mut [f32],
    activated: &'a mut [f32],
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
            .chunks_exact_mut(4 * u)
            .zip(self.c_prev.chunks_exact(u))
            .zip(self.c.chunks_exact_mut(u))
            .zip(self.activated.chunks_exact_mut(u))
            .zip(self.h.chunks_exact_mut(u));
        for ((((gates, c_prev), c), activated), h) in rows {
            let (sigmoids, rest) = gates.split_at_mut(2 * u);
            let (candidate, output) = rest.split_at_mut(u);
            activate::<S>(sigmoids, &self.bias[..2 * u]);
            activate::<A>(candidate, &self.bias[2 * u..3 * u]);
            activate::<S>(output, &self.bias[3 * u..]);
            cell_forward::<A>(gates, c_prev, c, activated, h);
        }
    }
}

/// `values = G(values + bias)`.
#[inline(always)]
fn activate<G: Gate>(values: &mut [f32], bias: &[f32]) {
    for (v, b) in values.iter_mut().zip(bias) {
        *v = G::value(*v + b);
    }
}

/// One row's cell state `c = f·c_prev + i·c̃`, its activation and the output `h = o·act(c)`,
/// from the activated gates `[i, f, c̃, o]`.
#[inline(always)]
fn cell_forward<A: Gate>(
    gates: &[f32],
    c_prev: &[f32],
    c: &mut [f32],
    activated: &mut [f32],
    h: &mut [f32],
) {
    let u = c.len();
    let (i, f, candidate, o) = (
        &gates[..u],
        &gates[u..2 * u],
        &gates[2 * u..3 * u],
        &gates[3 * u..4 * u],
    );
    let (c_prev, activated, h) = (&c_prev[..u], &mut activated[..u], &mut h[..u]);
    for k in 0..u {
        let cell = f[k] * c_prev[k] + i[k] * candidate[k];
        let act = A::value(cell);
        c[k] = cell;
        activated[k] = act;
        h[k] = o[k] * act;
    }
}

/// One step backward for every row of a band: from the output's gradient `dh` and the cell
/// state's `dc` (replaced by that of the previous cell state), the gradients `dz` of the
/// pre-activations.
struct BackwardStep<'a, A, S> {
    gates: &'a [f32],
    c_prev: &'a [f32],
    activated: &'a [f32],
    dh: &'a [f32],
    dc: &'a mut [f32],
    dz: &'a mut [f32],
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
            .chunks_exact(4 * u)
            .zip(self.c_prev.chunks_exact(u))
            .zip(self.activated.chunks_exact(u))
            .zip(self.dh.chunks_exact(u))
            .zip(self.dc.chunks_exact_mut(u))
            .zip(self.dz.chunks_exact_mut(4 * u));
        for (((((gates, c_prev), activated), dh), dc), dz) in rows {
            let (di, rest) = dz.split_at_mut(u);
            let (df, rest) = rest.split_at_mut(u);
            let (d_candidate, d_output) = rest.split_at_mut(u);
            let saved = RowTape {
                gates,
                c_prev,
                activated,
                dh,
            };
            cell_backward::<A, S>(saved, dc, di, df, d_candidate, d_output);
        }
    }
}

/// What one row's backward step reads: the activated gates `[i, f, c̃, o]`, the previous cell
/// state, `act(c)`, and the output's gradient.
#[derive(Clone, Copy)]
struct RowTape<'a> {
    gates: &'a [f32],
    c_prev: &'a [f32],
    activated: &'a [f32],
    dh: &'a [f32],
}

/// One row's backward step: `dc` (the cell state's gradient, replaced by the previous one's)
/// and the gradients of the pre-activations of the gates i, f, c̃ and o.
#[inline(always)]
fn cell_backward<A: Gate, S: Gate>(
    tape: RowTape<'_>,
    dc: &mut [f32],
    di: &mut [f32],
    df: &mut [f32],
    d_candidate: &mut [f32],
    d_output: &mut [f32],
) {
    let u = dc.len();
    let g = tape.gates;
    let (i, f, candidate, o) = (&g[..u], &g[u..2 * u], &g[2 * u..3 * u], &g[3 * u..4 * u]);
    let (c_prev, activated, dh) = (&tape.c_prev[..u], &tape.activated[..u], &tape.dh[..u]);
    let (di, df) = (&mut di[..u], &mut df[..u]);
    let (d_candidate, d_output) = (&mut d_candidate[..u], &mut d_output[..u]);
    for k in 0..u {
        let act = activated[k];
        let cell = dc[k] + dh[k] * o[k] * A::slope_from_output(act);
        dc[k] = cell * f[k];
        di[k] = cell * candidate[k] * S::slope_from_output(i[k]);
        df[k] = cell * c_prev[k] * S::slope_from_output(f[k]);
        d_candidate[k] = cell * i[k] * A::slope_from_output(candidate[k]);
        d_output[k] = dh[k] * act * S::slope_from_output(o[k]);
    }
}
