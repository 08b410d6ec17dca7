//! The GRU's loops over one band of samples (see `bands`), Keras 3's variant
//! (`reset_after=True`) with gates z, r, h: with `a = x·kernel + bias[0]` and
//! `b = h·recurrent_kernel + bias[1]`, `z = σ(a_z + b_z)`, `r = σ(a_r + b_r)`,
//! `ĥ = act(a_h + r·b_h)`, `h' = z·h + (1 - z)·ĥ`.

use std::marker::PhantomData;

use super::bands::{add_assign, project, Adjoint, BandShape, WeightData};
use super::gates::{with_cell_activations, Gate};
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
        let (biz, rest) = self.input_bias.split_at(u);
        let (bir, bih) = rest.split_at(u);
        let bih = &bih[..u];
        let (brz, rest) = self.recurrent_bias.split_at(u);
        let (brr, brh) = rest.split_at(u);
        let brh = &brh[..u];
        let rows = self
            .gates
            .chunks_exact_mut(3 * u)
            .zip(self.recurrent.chunks_exact_mut(3 * u))
            .zip(self.h_prev.chunks_exact(u))
            .zip(self.h.chunks_exact_mut(u));
        for (((gates, recurrent), h_prev), h) in rows {
            let (xz, rest) = gates.split_at_mut(u);
            let (xr, xh) = rest.split_at_mut(u);
            let xh = &mut xh[..u];
            let (rz, rest) = recurrent.split_at_mut(u);
            let (rr, rh) = rest.split_at_mut(u);
            let rh = &mut rh[..u];
            let (h_prev, h) = (&h_prev[..u], &mut h[..u]);
            for k in 0..u {
                let z = S::value(xz[k] + biz[k] + rz[k] + brz[k]);
                let r = S::value(xr[k] + bir[k] + rr[k] + brr[k]);
                let inner = rh[k] + brh[k];
                let candidate = A::value(xh[k] + bih[k] + r * inner);
                xz[k] = z;
                xr[k] = r;
                xh[k] = candidate;
                rh[k] = inner;
                h[k] = z * h_prev[k] + (1.0 - z) * candidate;
            }
        }
    }
}

/// One step backward for every row of a band: from the output's gradient `dh` (replaced by the
/// part of the previous output's gradient that does not go through the recurrent kernel,
/// `dh·z`), the gradients of the input and recurrent projections.
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
            let (gz, rest) = gates.split_at(u);
            let (gr, gh) = rest.split_at(u);
            let gh = &gh[..u];
            let inner = &recurrent[2 * u..][..u];
            let (dxz, rest) = d_input.split_at_mut(u);
            let (dxr, dxh) = rest.split_at_mut(u);
            let dxh = &mut dxh[..u];
            let (drz, rest) = d_recurrent.split_at_mut(u);
            let (drr, drh) = rest.split_at_mut(u);
            let drh = &mut drh[..u];
            let (h_prev, dh) = (&h_prev[..u], &mut dh[..u]);
            for k in 0..u {
                let (z, r, candidate) = (gz[k], gr[k], gh[k]);
                let grad = dh[k];
                let d_candidate = grad * (1.0 - z) * A::slope_from_output(candidate);
                let dz = grad * (h_prev[k] - candidate) * S::slope_from_output(z);
                let dr = d_candidate * inner[k] * S::slope_from_output(r);
                dxz[k] = dz;
                dxr[k] = dr;
                dxh[k] = d_candidate;
                drz[k] = dz;
                drr[k] = dr;
                drh[k] = d_candidate * r;
                dh[k] = grad * z;
            }
        }
    }
}
