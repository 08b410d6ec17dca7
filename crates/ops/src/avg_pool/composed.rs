//! Average pooling composed from candle's own ops, for devices without our CPU kernel.

use candle_core::Tensor;

use super::AvgPoolGeometry;

/// The `count` slices `offset, offset + stride, ...` of `x` along `dim`, which must hold at
/// least `offset + count * stride` of them: a view split into (count, stride), first of each.
fn every_stride(
    x: &Tensor,
    dim: usize,
    offset: usize,
    count: usize,
    stride: usize,
) -> candle_core::Result<Tensor> {
    let mut split = x.dims().to_vec();
    split.splice(dim..=dim, [count, stride]);
    x.narrow(dim, offset, count * stride)?
        .reshape(split)?
        .narrow(dim + 1, 0, 1)?
        .squeeze(dim + 1)
}

/// The sum of `terms` (at least one: pools are validated positive).
fn sum(
    mut terms: impl Iterator<Item = candle_core::Result<Tensor>>,
) -> candle_core::Result<Tensor> {
    let first = terms
        .next()
        .ok_or_else(|| candle_core::Error::Msg("avg_pool2d: empty pool".into()))??;
    terms.try_fold(first, |sum, term| sum + term?)
}

/// The sum over every window offset of the zero-padded input, scaled by one over each window's
/// count of real cells. Differentiable by candle's autograd.
pub(super) fn avg_pool2d(x: &Tensor, g: &AvgPoolGeometry) -> candle_core::Result<Tensor> {
    let p = g.padding;
    // Zeros after the padding too, so that every offset's strided slices exist.
    let extra = |len: usize, pool: usize, out: usize, stride: usize| {
        (pool - 1 + out * stride).saturating_sub(len)
    };
    let bottom = extra(p.top + g.in_h + p.bottom, g.pool.0, g.out_h, g.strides.0);
    let right = extra(p.left + g.in_w + p.right, g.pool.1, g.out_w, g.strides.1);
    let padded = x
        .pad_with_zeros(1, p.top, p.bottom + bottom)?
        .pad_with_zeros(2, p.left, p.right + right)?;
    // Windows are separable: the sums over row offsets, then over column offsets of those.
    let rows = sum((0..g.pool.0).map(|ky| every_stride(&padded, 1, ky, g.out_h, g.strides.0)))?;
    let sums = sum((0..g.pool.1).map(|kx| every_stride(&rows, 2, kx, g.out_w, g.strides.1)))?;
    let scales = Tensor::from_vec(g.inverse_counts(), (1, g.out_h, g.out_w, 1), x.device())?;
    sums.broadcast_mul(&scales)
}
