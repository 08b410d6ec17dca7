//! Batch and layer normalization (Keras's `ops.moments`, `ops.batch_normalization` and
//! `ops.layer_normalization`, `keras/src/ops/nn.py`), as CPU kernels with composed fallbacks.
//!
//! Both work on a `(rows, cols)` matrix, the caller having moved the normalized axes last:
//! batch normalization normalizes each column (a channel) over the rows (the batch and the
//! spatial positions), layer normalization each row (a sample) over its columns. Variances
//! are biased (divided by the count), as Keras's `moments` takes them.
//!
//! The forward functions run their kernels on CPU tensors that track no gradient (a layer's
//! hand-written backward pass then calls the `_backward` functions, CPU only), and candle ops
//! otherwise: on other devices, inside [`crate::with_composed_ops`], and whenever an argument
//! tracks a gradient, so that candle's autograd differentiates the composed form.

mod columns;
mod composed;
mod rows;
mod sums;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod timing;

use candle_core::{Device, Tensor};

use crate::check::{expect_f32, expect_f32_rank, expect_same_device, expect_same_dims};
use crate::error::OpsError;
use crate::meeting::BatchPart;
use crate::storage::CpuView;
use sums::ColumnSums;

/// Names used in messages.
const BATCH: &str = "batch_normalization";
const LAYER: &str = "layer_normalization";

/// Whether the kernels run for these arguments: on the CPU, none tracking a gradient.
fn use_kernels(device: &Device, args: &[Option<&Tensor>]) -> bool {
    crate::kernels_on(device) && !args.iter().flatten().any(|t| t.track_op())
}

/// The `(rows, cols)` of the f32 matrix `x`, refusing matrices without columns.
fn matrix(op: &'static str, x: &Tensor) -> Result<(usize, usize), OpsError> {
    let dims = expect_f32_rank(op, "x", x, 2)?;
    if dims[1] == 0 {
        return Err(OpsError::Config {
            op,
            reason: format!("`x` of shape {dims:?} has no column to normalize"),
        });
    }
    Ok((dims[0], dims[1]))
}

/// Fails unless `v` is an f32 vector of `len` values on `x`'s device.
fn expect_vector(
    op: &'static str,
    arg: &'static str,
    v: &Tensor,
    x: &Tensor,
) -> Result<(), OpsError> {
    expect_f32(op, arg, v)?;
    expect_same_device(op, x, v)?;
    expect_same_dims(
        op,
        "one value per column of x",
        (arg, v.dims()),
        ("x's columns", &x.dims()[1..]),
    )
}

/// The f32 elements of a CPU tensor.
fn cpu_values(op: &'static str, arg: &'static str, t: &Tensor) -> candle_core::Result<Vec<f32>> {
    Ok(CpuView::of(op, arg, t)?.f32()?.into_owned())
}

/// The columns of the f32 matrix `x` whose moments a batch normalization takes, refusing a
/// matrix without rows (statistics need at least one) or without columns.
fn moment_columns(x: &Tensor) -> Result<usize, OpsError> {
    let (rows, cols) = matrix(BATCH, x)?;
    if rows == 0 {
        return Err(OpsError::Config {
            op: BATCH,
            reason: "the statistics of a batch need at least one row".into(),
        });
    }
    Ok(cols)
}

/// The mean and biased variance of each column of `x` `(rows, C)`, each `(C)`: one pass
/// over `x` on the CPU. `x` needs at least one row.
pub fn batch_moments(x: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
    let cols = moment_columns(x)?;
    if !use_kernels(x.device(), &[Some(x)]) {
        return composed::moments(x);
    }
    let view = CpuView::of(BATCH, "x", x)?;
    moment_tensors(&columns::Moments::of(&view.f32()?, cols), x.device())
}

/// The mean and biased variance of each column over the rows of every part of a batch, each
/// `(C)`: `x` `(rows, C)` holds this part's rows (at least one), and the parts combine their
/// moments at a meeting, every part calling this at the same point of its work (in seat
/// order, so that every part gets the same statistics). CPU only.
pub fn batch_moments_across_parts(
    x: &Tensor,
    part: &BatchPart,
) -> candle_core::Result<(Tensor, Tensor)> {
    let cols = moment_columns(x)?;
    let view = CpuView::of(BATCH, "x", x)?;
    let own = columns::Moments::of(&view.f32()?, cols);
    let all = part
        .seat()
        .exchange(own.to_values())
        .map_err(candle_core::Error::wrap)?;
    let mut parts = all.iter().map(|values| {
        columns::Moments::from_values(values, cols).ok_or_else(|| mismatch("moments", cols))
    });
    let first = parts.next().ok_or_else(|| mismatch("moments", cols))??;
    let combined = parts.try_fold(first, |sum, part| Ok::<_, OpsError>(sum.merged(&part?)))?;
    moment_tensors(&combined, x.device())
}

/// The error for parts of a batch that handed in values for different shapes at a meeting.
fn mismatch(what: &str, cols: usize) -> OpsError {
    OpsError::Config {
        op: BATCH,
        reason: format!("the parts of the batch met with {what} of other than {cols} columns"),
    }
}

/// The mean and variance of `moments` as tensors on `device`.
fn moment_tensors(
    moments: &columns::Moments,
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let cols = moments.mean.len();
    let (mean, variance) = moments.mean_and_variance();
    Ok((
        Tensor::from_vec(mean, cols, device)?,
        Tensor::from_vec(variance, cols, device)?,
    ))
}

/// `x · scale + shift` column by column, for `x` `(rows, C)` and `scale`, `shift` `(C)`:
/// batch normalization's output once its statistics are folded into `scale` and `shift`.
pub fn scale_shift(x: &Tensor, scale: &Tensor, shift: &Tensor) -> candle_core::Result<Tensor> {
    let (_, cols) = matrix(BATCH, x)?;
    expect_vector(BATCH, "scale", scale, x)?;
    expect_vector(BATCH, "shift", shift, x)?;
    if !use_kernels(x.device(), &[Some(x), Some(scale), Some(shift)]) {
        return composed::scale_shift(x, scale, shift);
    }
    let x_view = CpuView::of(BATCH, "x", x)?;
    let (scale, shift) = (
        cpu_values(BATCH, "scale", scale)?,
        cpu_values(BATCH, "shift", shift)?,
    );
    let y = columns::scale_shift(&x_view.f32()?, &scale, &shift, cols);
    Tensor::from_vec(y, x.shape(), x.device())
}

/// What a batch normalization's forward pass computed its output `(x - mean) · inv_std ·
/// gamma + beta` with, each `(C)`.
pub struct BatchNormStatistics<'a> {
    /// The mean subtracted.
    pub mean: &'a Tensor,
    /// `1 / sqrt(variance + epsilon)`.
    pub inv_std: &'a Tensor,
    /// `gamma · inv_std`, or `inv_std` without a gamma.
    pub scale: &'a Tensor,
    /// Whether `mean` and `inv_std` are the batch's own (training): the gradient then flows
    /// through them too. False for constants (the moving statistics, in inference).
    pub from_batch: bool,
    /// The part of a batch `x` is, when the statistics are the whole batch's
    /// ([`batch_moments_across_parts`]): the input gradient then takes the sums over the whole
    /// batch, which the parts combine at a meeting.
    pub part: Option<&'a BatchPart>,
}

/// The gradients of a batch normalization, from [`batch_normalization_backward`].
pub struct BatchNormGradients {
    /// The input's, `(rows, C)`, when asked for.
    pub x: Option<Tensor>,
    /// The column sums of the output gradient: beta's gradient.
    pub sum_dy: Tensor,
    /// The column sums of the output gradient times `x̂ = (x - mean) · inv_std`: gamma's
    /// gradient.
    pub sum_dy_xhat: Tensor,
}

/// The backward pass of a batch normalization of `x` `(rows, C)` with `stats`, given the
/// output gradient `grad_y`: the column sums, and (if `want_x`) the input gradient
/// `scale · (dy - mean(dy) - x̂ · mean(dy · x̂))` with the batch's statistics, `scale · dy`
/// with constant ones. One pass for the sums, one for the input gradient. CPU only.
///
/// For a part of a batch ([`BatchNormStatistics::part`]), the means are the whole batch's: the
/// parts meet to add up their sums (each part's `grad_y` is its own loss's, which the batch's
/// weighs by the part's share, so each part hands in its sums times its share). The sums
/// returned stay this part's own.
pub fn batch_normalization_backward(
    x: &Tensor,
    grad_y: &Tensor,
    stats: &BatchNormStatistics<'_>,
    want_x: bool,
) -> candle_core::Result<BatchNormGradients> {
    let (rows, cols) = matrix(BATCH, x)?;
    expect_f32(BATCH, "grad_y", grad_y)?;
    expect_same_dims(
        BATCH,
        "x and grad_y of one shape",
        ("x", x.dims()),
        ("grad_y", grad_y.dims()),
    )?;
    for (arg, v) in [
        ("mean", stats.mean),
        ("inv_std", stats.inv_std),
        ("scale", stats.scale),
    ] {
        expect_vector(BATCH, arg, v, x)?;
    }
    let (x_view, dy_view) = (
        CpuView::of(BATCH, "x", x)?,
        CpuView::of(BATCH, "grad_y", grad_y)?,
    );
    let (mean, inv_std, scale) = (
        cpu_values(BATCH, "mean", stats.mean)?,
        cpu_values(BATCH, "inv_std", stats.inv_std)?,
        cpu_values(BATCH, "scale", stats.scale)?,
    );
    let column_stats = columns::ColumnStatistics {
        mean: &mean,
        inv_std: &inv_std,
        scale: &scale,
        from_batch: stats.from_batch,
    };
    let (x_data, dy_data) = (x_view.f32()?, dy_view.f32()?);
    let sums = columns::gradient_sums(&x_data, &dy_data, &column_stats, cols);
    let grad_x = if want_x {
        let batch_sums = match stats.part.filter(|_| stats.from_batch) {
            Some(part) => whole_batch_sums(&sums, part, cols)?,
            None => sums.clone(),
        };
        let grad =
            columns::input_gradient(&x_data, &dy_data, &column_stats, (&batch_sums, rows), cols);
        Some(Tensor::from_vec(grad, x.shape(), x.device())?)
    } else {
        None
    };
    let narrow = |sums: &[f64]| sums.iter().map(|&s| s as f32).collect::<Vec<_>>();
    let device = x.device();
    Ok(BatchNormGradients {
        x: grad_x,
        sum_dy: Tensor::from_vec(narrow(&sums.0), cols, device)?,
        sum_dy_xhat: Tensor::from_vec(narrow(&sums.1), cols, device)?,
    })
}

/// The sums of `dy` and `dy · x̂` over the whole batch from every part's `own` sums: the
/// share-weighted total, the batch's loss weighing each part's by its share. Their means over
/// the batch, at this part's scale (divided by its share), are these sums over this part's row
/// count: with it in place of the batch's, [`columns::input_gradient`] gives this part's rows
/// their gradient at this part's scale.
fn whole_batch_sums(
    own: &ColumnSums,
    part: &BatchPart,
    cols: usize,
) -> candle_core::Result<ColumnSums> {
    let share = part.share();
    let handed_in: Vec<f64> = own.0.iter().chain(&own.1).map(|s| s * share).collect();
    let all = part
        .seat()
        .exchange(handed_in)
        .map_err(candle_core::Error::wrap)?;
    let mut total = vec![0.0; 2 * cols];
    for values in all.iter() {
        if values.len() != total.len() {
            return Err(mismatch("gradient sums", cols).into());
        }
        for (t, v) in total.iter_mut().zip(values) {
            *t += v;
        }
    }
    let second = total.split_off(cols);
    Ok(ColumnSums(total, second))
}

/// A layer normalization's output and the statistics its backward pass needs.
pub struct LayerNormOutput {
    /// `(x - mean) · inv_std · gamma + beta`, `(rows, cols)`.
    pub y: Tensor,
    /// Each row's mean, `(rows)`.
    pub mean: Tensor,
    /// Each row's `1 / sqrt(variance + epsilon)`, `(rows)`.
    pub inv_std: Tensor,
}

/// Layer normalization of each row of `x` `(rows, cols)` over its columns, scaled by `gamma`
/// and shifted by `beta` (each `(cols)`, optional): one pass over `x` on the CPU (each row's
/// statistics taken while it is in cache).
pub fn layer_normalization(
    x: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    epsilon: f64,
) -> candle_core::Result<LayerNormOutput> {
    let (rows, cols) = matrix(LAYER, x)?;
    for (arg, v) in [("gamma", gamma), ("beta", beta)] {
        if let Some(v) = v {
            expect_vector(LAYER, arg, v, x)?;
        }
    }
    if !use_kernels(x.device(), &[Some(x), gamma, beta]) {
        let (y, mean, inv_std) = composed::layer_normalization(x, gamma, beta, epsilon)?;
        return Ok(LayerNormOutput { y, mean, inv_std });
    }
    let gamma = affine_or(gamma, 1.0, cols)?;
    let beta = affine_or(beta, 0.0, cols)?;
    let view = CpuView::of(LAYER, "x", x)?;
    let out = rows::forward(&view.f32()?, &gamma, &beta, epsilon as f32, cols);
    let device = x.device();
    Ok(LayerNormOutput {
        y: Tensor::from_vec(out.y, x.shape(), device)?,
        mean: Tensor::from_vec(out.mean, rows, device)?,
        inv_std: Tensor::from_vec(out.inv_std, rows, device)?,
    })
}

/// The values of `v`, or `cols` copies of `default` without one.
fn affine_or(v: Option<&Tensor>, default: f32, cols: usize) -> candle_core::Result<Vec<f32>> {
    match v {
        Some(v) => cpu_values(LAYER, "gamma or beta", v),
        None => Ok(vec![default; cols]),
    }
}

/// The gradients of a layer normalization, from [`layer_normalization_backward`].
pub struct LayerNormGradients {
    /// The input's, `(rows, cols)`, when asked for.
    pub x: Option<Tensor>,
    /// gamma's: the column sums of `dy · x̂`.
    pub gamma: Tensor,
    /// beta's: the column sums of `dy`.
    pub beta: Tensor,
}

/// The backward pass of [`layer_normalization`] from `x`, the output gradient `grad_y`, the
/// rows' `mean` and `inv_std` it returned, and `gamma`: per row, with `g = dy · gamma`,
/// `dx = inv_std · (g - mean(g) - x̂ · mean(g · x̂))`; and gamma's and beta's gradients. One
/// pass over `x` and `grad_y`. CPU only.
pub fn layer_normalization_backward(
    x: &Tensor,
    grad_y: &Tensor,
    (mean, inv_std): (&Tensor, &Tensor),
    gamma: Option<&Tensor>,
    want_x: bool,
) -> candle_core::Result<LayerNormGradients> {
    let (rows, cols) = matrix(LAYER, x)?;
    expect_f32(LAYER, "grad_y", grad_y)?;
    expect_same_dims(
        LAYER,
        "x and grad_y of one shape",
        ("x", x.dims()),
        ("grad_y", grad_y.dims()),
    )?;
    for (arg, v) in [("mean", mean), ("inv_std", inv_std)] {
        expect_f32(LAYER, arg, v)?;
        expect_same_dims(
            LAYER,
            "one value per row of x",
            (arg, v.dims()),
            ("x's rows", &[rows][..]),
        )?;
    }
    if let Some(gamma) = gamma {
        expect_vector(LAYER, "gamma", gamma, x)?;
    }
    let gamma = affine_or(gamma, 1.0, cols)?;
    let (x_view, dy_view) = (
        CpuView::of(LAYER, "x", x)?,
        CpuView::of(LAYER, "grad_y", grad_y)?,
    );
    let stats = (
        cpu_values(LAYER, "mean", mean)?,
        cpu_values(LAYER, "inv_std", inv_std)?,
    );
    let grads = rows::backward(
        &x_view.f32()?,
        &dy_view.f32()?,
        (&stats.0, &stats.1),
        &gamma,
        cols,
        want_x,
    );
    let device = x.device();
    Ok(LayerNormGradients {
        x: grads
            .x
            .map(|g| Tensor::from_vec(g, x.shape(), device))
            .transpose()?,
        gamma: Tensor::from_vec(grads.gamma, cols, device)?,
        beta: Tensor::from_vec(grads.beta, cols, device)?,
    })
}
