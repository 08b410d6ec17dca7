//! The checks of a recurrent call's arguments: ranks, shapes as Keras stores them, devices.

use candle_core::Tensor;

use super::bands::{CellKind, Dims};
use super::RecurrentWeights;
use crate::check::{expect_f32, expect_f32_rank, expect_same_device, expect_same_dims};
use crate::error::OpsError;

/// Checks `x` and the weights of a call; returns its sizes.
pub(super) fn check_call(
    kind: CellKind,
    x: &Tensor,
    weights: RecurrentWeights<'_>,
) -> candle_core::Result<Dims> {
    let op = kind.op();
    let x_dims = expect_f32_rank(op, "x", x, 3)?;
    let (batch, steps, features) = (x_dims[0], x_dims[1], x_dims[2]);
    let (_, units) = check_weights(kind, weights, Some(features))?;
    for weight in [
        Some(weights.kernel),
        Some(weights.recurrent_kernel),
        weights.bias,
    ]
    .into_iter()
    .flatten()
    {
        expect_same_device(op, x, weight)?;
    }
    if steps == 0 {
        return Err(OpsError::Config {
            op,
            reason: format!("the sequences {:?} have no time step", x.dims()),
        }
        .into());
    }
    Ok(Dims {
        batch,
        steps,
        features,
        units,
    })
}

/// Checks the weights' ranks and shapes against each other and `features` (the kernel's rows
/// must be that many); returns (features, units).
pub(super) fn check_weights(
    kind: CellKind,
    weights: RecurrentWeights<'_>,
    features: Option<usize>,
) -> candle_core::Result<(usize, usize)> {
    let op = kind.op();
    let recurrent = expect_f32_rank(op, "recurrent_kernel", weights.recurrent_kernel, 2)?;
    let units = recurrent[0];
    if units == 0 {
        return Err(OpsError::Config {
            op,
            reason: "the recurrent kernel has no unit".into(),
        }
        .into());
    }
    let width = kind.gates() * units;
    expect_same_dims(
        op,
        "the recurrent kernel is (units, gates·units)",
        ("recurrent_kernel", recurrent),
        ("expected", &[units, width]),
    )?;
    let kernel = expect_f32_rank(op, "kernel", weights.kernel, 2)?;
    let features = features.unwrap_or(kernel[0]);
    expect_same_dims(
        op,
        "the kernel is (features, gates·units)",
        ("kernel", kernel),
        ("expected", &[features, width]),
    )?;
    if let Some(bias) = weights.bias {
        expect_f32(op, "bias", bias)?;
        expect_same_dims(
            op,
            "the bias has Keras's shape",
            ("bias", bias.dims()),
            ("expected", &kind.bias_dims(units)),
        )?;
    }
    Ok((features, units))
}

/// Checks a (batch, units) state-shaped argument.
pub(super) fn check_state(
    op: &'static str,
    arg: &'static str,
    state: &Tensor,
    x: &Tensor,
    dims: Dims,
) -> candle_core::Result<()> {
    expect_f32_rank(op, arg, state, 2)?;
    expect_same_device(op, x, state)?;
    expect_same_dims(
        op,
        "a state is (batch, units)",
        (arg, state.dims()),
        ("expected", &[dims.batch, dims.units]),
    )?;
    Ok(())
}
