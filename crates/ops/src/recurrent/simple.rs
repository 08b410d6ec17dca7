//! The simple RNN's loops over one band of samples (see `bands`), Keras's `SimpleRNNCell`
//! (`keras/src/layers/rnn/simple_rnn.py`): `h' = act(x·kernel + bias + h·recurrent_kernel)`.
//!
//! The outputs are the whole tape: the activation is differentiated from its output, which the
//! band keeps in `hidden` anyway.

use std::marker::PhantomData;

use super::bands::{Adjoint, BandShape, WeightData};
use super::gates::{with_gate_activation, Gate};
use super::gradients::{add_assign, project};
use crate::matmul::{matmul, Accumulate, MatMut, MatRef};
use crate::simd::{vectorized, Kernel};

/// Runs a band through every step: `hidden` holds the initial `h` (rows, units) and receives
/// each step's output after it.
pub(super) fn forward(shape: &BandShape, w: &WeightData<'_>, inputs: &[f32], hidden: &mut [f32]) {
    let (rows, units, len) = (shape.rows, shape.units, shape.state_len());
    let mut pre = project(inputs, w.kernel, shape.steps * rows, shape.features, units);
    for step in 0..shape.steps {
        let step_pre = &mut pre[step * len..][..len];
        let (before, after) = hidden.split_at_mut((step + 1) * len);
        if step > 0 || shape.has_initial {
            matmul(
                MatMut::row_major(step_pre, rows, units),
                MatRef::row_major(&before[step * len..], rows, units),
                MatRef::row_major(w.recurrent, units, units),
                Accumulate::Add,
                1,
            );
        }
        with_gate_activation!(shape.spec.activation, A => vectorized(ForwardStep::<A> {
            pre: step_pre,
            bias: w.bias,
            h: &mut after[..len],
            activation: PhantomData,
        }));
    }
}

/// The backward loop of a band, from the gradients of every step's output (`sequence`, (steps,
/// rows, units), if any) and of the final `h` (`states`): the gradients of every step's
/// pre-activation, and of the initial state (computed only when `want_initial`). `hidden` is
/// the band's initial state and outputs, as the forward pass left them.
pub(super) fn backward(
    shape: &BandShape,
    w: &WeightData<'_>,
    hidden: &[f32],
    sequence: Option<&[f32]>,
    states: Vec<Vec<f32>>,
    want_initial: bool,
) -> Adjoint {
    let (rows, units, len) = (shape.rows, shape.units, shape.state_len());
    let mut dh = states.into_iter().next().unwrap_or_else(|| vec![0.0; len]);
    let mut d_pre = vec![0.0; shape.steps * len];
    for step in (0..shape.steps).rev() {
        if let Some(sequence) = sequence {
            add_assign(&mut dh, &sequence[step * len..][..len]);
        }
        let step_d_pre = &mut d_pre[step * len..][..len];
        with_gate_activation!(shape.spec.activation, A => vectorized(BackwardStep::<A> {
            h: &hidden[(step + 1) * len..][..len],
            dh: &dh,
            d_pre: step_d_pre,
            activation: PhantomData,
        }));
        if step > 0 || want_initial {
            matmul(
                MatMut::row_major(&mut dh, rows, units),
                MatRef::row_major(step_d_pre, rows, units),
                MatRef::row_major(w.recurrent, units, units).t(),
                Accumulate::Overwrite,
                1,
            );
        }
    }
    Adjoint {
        input: d_pre,
        recurrent: None,
        states: vec![dh],
    }
}

/// One step's output `h = act(pre + bias)` for every row of a band.
struct ForwardStep<'a, A> {
    pre: &'a [f32],
    bias: &'a [f32],
    h: &'a mut [f32],
    activation: PhantomData<A>,
}

impl<A: Gate> Kernel for ForwardStep<'_, A> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let u = self.bias.len();
        for (pre, h) in self.pre.chunks_exact(u).zip(self.h.chunks_exact_mut(u)) {
            activate::<A>(h, pre, self.bias);
        }
    }
}

/// `h = A(pre + bias)` for one row.
#[inline(always)]
fn activate<A: Gate>(h: &mut [f32], pre: &[f32], bias: &[f32]) {
    let u = h.len();
    let (pre, bias) = (&pre[..u], &bias[..u]);
    for k in 0..u {
        h[k] = A::value(pre[k] + bias[k]);
    }
}

/// One step backward for every row of a band: the pre-activation's gradient
/// `d_pre = dh · act'`, the derivative taken from the step's output `h`.
struct BackwardStep<'a, A> {
    h: &'a [f32],
    dh: &'a [f32],
    d_pre: &'a mut [f32],
    activation: PhantomData<A>,
}

impl<A: Gate> Kernel for BackwardStep<'_, A> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let (h, dh) = (&self.h[..self.d_pre.len()], &self.dh[..self.d_pre.len()]);
        for ((d, &y), &g) in self.d_pre.iter_mut().zip(h).zip(dh) {
            *d = g * A::slope_from_output(y);
        }
    }
}
