//! Max pooling composed from candle's own ops, for devices without our CPU kernel.

use candle_core::Tensor;

use crate::padding::Padding2d;

/// Pads `x` along `dim` with `before` and `after` cells of negative infinity.
fn pad_with_neg_infinity(
    x: &Tensor,
    dim: usize,
    before: usize,
    after: usize,
) -> candle_core::Result<Tensor> {
    let mut parts = Vec::with_capacity(3);
    let filler = |len: usize| -> candle_core::Result<Tensor> {
        let mut dims = x.dims().to_vec();
        dims[dim] = len;
        Tensor::full(f32::NEG_INFINITY, dims, x.device())
    };
    if before > 0 {
        parts.push(filler(before)?);
    }
    parts.push(x.clone());
    if after > 0 {
        parts.push(filler(after)?);
    }
    Tensor::cat(&parts, dim)
}

/// The indices `o * stride + offset` for `o` in `0..count`, as a u32 tensor.
fn strided_indices(
    count: usize,
    stride: usize,
    offset: usize,
    x: &Tensor,
) -> candle_core::Result<Tensor> {
    let indices: Vec<u32> = (0..count).map(|o| (o * stride + offset) as u32).collect();
    Tensor::from_vec(indices, count, x.device())
}

/// The elementwise maximum over every window offset of the padded input. Correct values and
/// gradients; where a window has tied maxima, candle's `maximum` shares the gradient between them.
pub(super) fn max_pool2d(
    x: &Tensor,
    pool: (usize, usize),
    strides: (usize, usize),
    padding: Padding2d,
) -> candle_core::Result<Tensor> {
    let padded = pad_with_neg_infinity(x, 1, padding.top, padding.bottom)?;
    let padded = pad_with_neg_infinity(&padded, 2, padding.left, padding.right)?;
    let (_, padded_h, padded_w, _) = padded.dims4()?;
    let out_h = (padded_h - pool.0) / strides.0 + 1;
    let out_w = (padded_w - pool.1) / strides.1 + 1;
    let mut result: Option<Tensor> = None;
    for ky in 0..pool.0 {
        let rows = padded.index_select(&strided_indices(out_h, strides.0, ky, x)?, 1)?;
        for kx in 0..pool.1 {
            let window = rows.index_select(&strided_indices(out_w, strides.1, kx, x)?, 2)?;
            result = Some(match result {
                Some(best) => best.maximum(&window)?,
                None => window,
            });
        }
    }
    // The pool is validated positive, so at least one offset was taken.
    result.ok_or_else(|| candle_core::Error::Msg("max_pool2d: empty pool".into()))
}
