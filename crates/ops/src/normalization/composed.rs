//! The normalizations from candle's own ops: what other devices run, and what candle's
//! autograd differentiates when an argument tracks a gradient.

use candle_core::Tensor;

/// The mean and biased variance of each column of `x` `(rows, C)`.
pub(super) fn moments(x: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
    let mean = x.mean_keepdim(0)?;
    let variance = x.broadcast_sub(&mean)?.sqr()?.mean(0)?;
    Ok((mean.squeeze(0)?, variance))
}

/// `x · scale + shift` column by column.
pub(super) fn scale_shift(
    x: &Tensor,
    scale: &Tensor,
    shift: &Tensor,
) -> candle_core::Result<Tensor> {
    x.broadcast_mul(scale)?.broadcast_add(shift)
}

/// Layer normalization of each row of `x`: the output, and the rows' means and
/// `1 / sqrt(var + epsilon)`.
pub(super) fn layer_normalization(
    x: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    epsilon: f64,
) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
    let mean = x.mean_keepdim(1)?;
    let centered = x.broadcast_sub(&mean)?;
    let inv_std = (centered.sqr()?.mean_keepdim(1)? + epsilon)?
        .sqrt()?
        .recip()?;
    let mut y = centered.broadcast_mul(&inv_std)?;
    if let Some(gamma) = gamma {
        y = y.broadcast_mul(gamma)?;
    }
    if let Some(beta) = beta {
        y = y.broadcast_add(beta)?;
    }
    Ok((y, mean.squeeze(1)?, inv_std.squeeze(1)?))
}
