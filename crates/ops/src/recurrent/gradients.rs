//! The products that turn the gradients of every step's pre-activations (a cell's backward
//! loop) into weight and input gradients, band by band, and their sum over the bands.

use candle_core::{Device, Tensor};

use super::bands::{
    scatter_time_major, Adjoint, Band, BandShape, CellKind, Dims, RecurrentTape, WeightData,
};
use super::{RecurrentGradients, RecurrentWanted, RecurrentWeights};
use crate::matmul::{matmul_uninit, MatRef};

/// One band's share of the gradients.
pub(super) struct BandGradients {
    x: Option<Vec<f32>>,
    kernel: Option<Vec<f32>>,
    recurrent_kernel: Option<Vec<f32>>,
    bias: Option<Vec<f32>>,
    states: Vec<Vec<f32>>,
}

/// The products that turn a band's adjoint into its share of the gradients.
pub(super) fn band_gradients(
    kind: CellKind,
    shape: &BandShape,
    w: &WeightData<'_>,
    band: &Band,
    adjoint: Adjoint,
    wanted: RecurrentWanted,
) -> BandGradients {
    let positions = shape.steps * shape.rows;
    let width = kind.gates() * shape.units;
    let input = MatRef::row_major(&adjoint.input, positions, width);
    let recurrent = adjoint
        .recurrent
        .as_deref()
        .map_or(input, |r| MatRef::row_major(r, positions, width));
    let kernel = MatRef::row_major(w.kernel, shape.features, width);
    let inputs = MatRef::row_major(&band.inputs, positions, shape.features);
    let previous = MatRef::row_major(&band.hidden, positions, shape.units);
    let bias = wanted.bias.then(|| {
        let mut sums = column_sums(&adjoint.input, width);
        if kind == CellKind::Gru {
            sums.extend(column_sums(
                adjoint.recurrent.as_deref().unwrap_or(&adjoint.input),
                width,
            ));
        }
        sums
    });
    BandGradients {
        x: wanted
            .x
            .then(|| product(input, kernel.t(), positions, shape.features)),
        kernel: wanted
            .kernel
            .then(|| product(inputs.t(), input, shape.features, width)),
        recurrent_kernel: wanted
            .recurrent_kernel
            .then(|| product(previous.t(), recurrent, shape.units, width)),
        bias,
        states: if wanted.initial_state {
            adjoint.states
        } else {
            Vec::new()
        },
    }
}

/// `lhs · rhs`, the `rows × cols` result row-major, on this thread.
fn product(lhs: MatRef<'_>, rhs: MatRef<'_>, rows: usize, cols: usize) -> Vec<f32> {
    let len = rows * cols;
    let mut out = Vec::with_capacity(len);
    matmul_uninit(&mut out.spare_capacity_mut()[..len], lhs, rhs);
    // SAFETY: `matmul_uninit` wrote every one of the `len` cells.
    unsafe { out.set_len(len) };
    out
}

/// `inputs · kernel` for every position (step and sample) of a band: (positions, width).
pub(super) fn project(
    inputs: &[f32],
    kernel: &[f32],
    positions: usize,
    features: usize,
    width: usize,
) -> Vec<f32> {
    product(
        MatRef::row_major(inputs, positions, features),
        MatRef::row_major(kernel, features, width),
        positions,
        width,
    )
}

/// `into += from`, elementwise.
pub(super) fn add_assign(into: &mut [f32], from: &[f32]) {
    for (i, f) in into.iter_mut().zip(from) {
        *i += f;
    }
}

/// The sums of the columns of a row-major matrix of `width` columns.
fn column_sums(data: &[f32], width: usize) -> Vec<f32> {
    let mut sums = vec![0.0f32; width];
    for row in data.chunks_exact(width) {
        for (sum, value) in sums.iter_mut().zip(row) {
            *sum += value;
        }
    }
    sums
}

/// Sums the bands' shares and builds the gradient tensors.
pub(super) fn assemble_gradients(
    kind: CellKind,
    dims: Dims,
    tape: &RecurrentTape,
    parts: Vec<BandGradients>,
    wanted: RecurrentWanted,
    weights: RecurrentWeights<'_>,
    device: &Device,
) -> candle_core::Result<RecurrentGradients> {
    let width = kind.gates() * dims.units;
    let mut x = wanted
        .x
        .then(|| vec![0.0f32; dims.batch * dims.steps * dims.features]);
    let mut kernel = wanted.kernel.then(|| vec![0.0f32; dims.features * width]);
    let mut recurrent = wanted
        .recurrent_kernel
        .then(|| vec![0.0f32; dims.units * width]);
    let mut bias = wanted
        .bias
        .then(|| vec![0.0f32; kind.bias_dims(dims.units).iter().product()]);
    let mut states = vec![
        Vec::new();
        if wanted.initial_state {
            kind.states()
        } else {
            0
        }
    ];
    for (band, part) in tape.bands.iter().zip(parts) {
        if let (Some(out), Some(values)) = (x.as_mut(), part.x) {
            scatter_time_major(
                out,
                &values,
                dims.steps,
                dims.features,
                &band.rows,
                tape.spec.go_backwards,
            );
        }
        for (total, share) in [
            (&mut kernel, part.kernel),
            (&mut recurrent, part.recurrent_kernel),
            (&mut bias, part.bias),
        ] {
            if let (Some(total), Some(share)) = (total.as_mut(), share) {
                for (t, s) in total.iter_mut().zip(share) {
                    *t += s;
                }
            }
        }
        // Bands hold consecutive samples: their initial-state rows follow each other.
        for (all, rows) in states.iter_mut().zip(part.states) {
            all.extend(rows);
        }
    }
    let tensor = |values: Option<Vec<f32>>, dims: &[usize]| {
        values
            .map(|v| Tensor::from_vec(v, dims, device))
            .transpose()
    };
    Ok(RecurrentGradients {
        x: tensor(x, &[dims.batch, dims.steps, dims.features])?,
        kernel: tensor(kernel, weights.kernel.dims())?,
        recurrent_kernel: tensor(recurrent, weights.recurrent_kernel.dims())?,
        bias: tensor(bias, &kind.bias_dims(dims.units))?,
        initial_state: states
            .into_iter()
            .map(|values| Tensor::from_vec(values, (dims.batch, dims.units), device))
            .collect::<candle_core::Result<_>>()?,
    })
}
