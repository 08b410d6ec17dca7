//! A convolution whose output only a max pooling reads, run as one pass: each chunk of images is
//! convolved into a thread's scratch and pooled while it is in cache, so the convolution's
//! full-size output (four times the pooled one under a 2x2 pooling) is never written to memory.
//! The pooling notes which cell of each window won, and the backward pass routes the pooled
//! gradient back by those winners, chunk by chunk, again without the full-size output.

use candle_core::{Device, Tensor};
use rayon::prelude::*;

use crate::buffer::{overwrite, Fresh};
use crate::check::{expect_same_device, expect_same_dims};
use crate::error::OpsError;
use crate::fork_join::min_piece_len;
use crate::max_pool::{image_forward_with_winners, PoolGeometry, MAX_WINDOW_CELLS};
use crate::padding::Padding2d;
use crate::storage::CpuView;

use super::forward::ForwardPass;
use super::geometry::OP;
use super::op::{cpu_gradients, OutputGradTensor};
use super::scratch::{prefix, with_scratch};
use super::{backward_geometry, checked_geometry, Conv2dGradients, Conv2dParams, Conv2dWanted};

/// A 2-D max pooling's windows (as [`crate::max_pool2d`] takes them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxPoolWindow {
    /// The window along (height, width).
    pub pool: (usize, usize),
    /// Step between windows along (height, width).
    pub strides: (usize, usize),
    /// Padding around the pooled image.
    pub padding: Padding2d,
}

impl MaxPoolWindow {
    /// Whether [`conv2d_max_pool`] runs a convolution pooled by these windows on `device`: on
    /// the CPU, for windows of at most 256 cells.
    pub fn fuses_on(&self, device: &Device) -> bool {
        crate::kernels_on(device) && self.pool.0 * self.pool.1 <= MAX_WINDOW_CELLS
    }
}

/// Which cell of each window of a [`conv2d_max_pool`] held the window's first maximum, per
/// pooled value: what its backward pass ([`conv2d_max_pool_backward`]) routes the gradient by.
#[derive(Debug, Clone)]
pub struct PoolWinners {
    pool: PoolGeometry,
    cells: Vec<u8>,
}

/// `max_pool(relu?(conv(x, kernel) + bias))`, the pooled result (N, PH, PW, Cout) the same as
/// [`crate::max_pool2d`] of [`super::conv2d`] gives, and each window's winning cell for the
/// backward pass. The convolution's output is never written in full (see the module's comment).
///
/// CPU tensors and windows for which [`MaxPoolWindow::fuses_on`] holds; an error otherwise.
pub fn conv2d_max_pool(
    x: &Tensor,
    kernel: &Tensor,
    bias: Option<&Tensor>,
    params: &Conv2dParams,
    relu: bool,
    window: &MaxPoolWindow,
) -> candle_core::Result<(Tensor, PoolWinners)> {
    let g = checked_geometry(x, kernel, bias, params)?;
    if !window.fuses_on(x.device()) {
        return Err(OpsError::Config {
            op: OP,
            reason: format!(
                "a convolution pooled in one pass needs CPU tensors and a window of at most \
                 {MAX_WINDOW_CELLS} cells, got {:?} and a {:?} window",
                x.device().location(),
                window.pool
            ),
        }
        .into());
    }
    let (n, h, w, c) = g.out_dims();
    let pool = PoolGeometry::new(&[n, h, w, c], window.pool, window.strides, window.padding)?;
    let x_view = CpuView::of(OP, "x", x)?;
    let kernel_view = CpuView::of(OP, "kernel", kernel)?;
    let bias_view = bias.map(|b| CpuView::of(OP, "bias", b)).transpose()?;
    let bias_data = bias_view.as_ref().map(CpuView::f32).transpose()?;
    let (x_data, kernel_data) = (x_view.f32()?, kernel_view.f32()?);
    let pass = ForwardPass::new(&g, &kernel_data, bias_data.as_deref(), relu);
    let chunk_len = pass.images_per_chunk * pool.out_image_len();
    let mut pooled = Fresh::new(n * pool.out_image_len());
    let mut cells = vec![0; pooled.len()];
    if !cells.is_empty() {
        pooled
            .par_chunks(chunk_len)
            .zip(cells.par_chunks_mut(chunk_len))
            .enumerate()
            .with_min_len(min_piece_len())
            .for_each(|(index, (pooled, winners))| {
                with_scratch(|scratch| {
                    let images = winners.len() / pool.out_image_len();
                    let mut output = std::mem::take(&mut scratch.output);
                    let conv = prefix(&mut output, images * g.out_image_len());
                    overwrite(conv, |conv| pass.chunk(index, &x_data, scratch, conv));
                    let pieces = conv
                        .chunks_exact(pool.in_image_len())
                        .zip(pooled.pieces(pool.out_image_len()))
                        .zip(winners.chunks_exact_mut(pool.out_image_len()));
                    for ((image, pooled), winners) in pieces {
                        image_forward_with_winners(&pool, image, pooled, winners);
                    }
                    scratch.output = output;
                })
            });
    }
    let pooled = Tensor::from_vec(pooled.into_written(), &pool.out_dims(), x.device())?;
    Ok((pooled, PoolWinners { pool, cells }))
}

/// The backward pass of [`conv2d_max_pool`]: the gradients `wanted` of its convolution's
/// arguments given the gradient `grad` of its result `pooled`, the same as
/// [`crate::max_pool2d_backward`] and then [`super::conv2d_backward`] give. Each chunk of images
/// is routed back through the pooling by `winners` while it is in cache, ReLU's mask being the
/// sign of each window's maximum, so neither the convolution's output nor its full-size
/// gradient is ever needed. Nothing is recorded for candle's autograd; CPU tensors only.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_max_pool_backward(
    x: &Tensor,
    kernel: &Tensor,
    pooled: &Tensor,
    grad: &Tensor,
    winners: &PoolWinners,
    params: &Conv2dParams,
    relu: bool,
    wanted: Conv2dWanted,
) -> candle_core::Result<Conv2dGradients> {
    let geometry = backward_geometry(x, kernel, params)?;
    let (n, h, w, c) = geometry.out_dims();
    expect_same_dims(
        OP,
        "the winners must come from a pooling of this convolution's output",
        ("pooled input", &winners.pool.in_dims()),
        ("convolution output", &[n, h, w, c]),
    )?;
    for (name, tensor) in [("pooled", pooled), ("pooled gradient", grad)] {
        expect_same_dims(
            OP,
            "the pooled output and its gradient must have the pooling's output shape",
            (name, tensor.dims()),
            ("expected", &winners.pool.out_dims()),
        )?;
    }
    for tensor in [kernel, pooled, grad] {
        expect_same_device(OP, x, tensor)?;
    }
    let grad_output = OutputGradTensor::MaxPooled {
        pool: &winners.pool,
        winners: &winners.cells,
        pooled,
        grad,
    };
    cpu_gradients(&geometry, relu, x, kernel, grad_output, wanted)
}
