//! 2-D average pooling over NHWC images, with padding and any window/stride pair. Padded cells
//! are not counted: each window averages its real cells only, as TensorFlow's `avg_pool` (and
//! so Keras's `AveragePooling2D` with `padding="same"`) does.

mod composed;
mod kernel;

use std::ops::Range;

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use crate::check::{expect_built_dims, expect_f32_rank};
use crate::error::OpsError;
use crate::padding::{conv_output_len, Padding2d};
use crate::storage::{cpu_f32, CpuView};

/// Name used in messages.
const OP: &str = "avg_pool2d";

/// Every size the average-pooling kernels need, validated once.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AvgPoolGeometry {
    batch: usize,
    in_h: usize,
    in_w: usize,
    channels: usize,
    pool: (usize, usize),
    strides: (usize, usize),
    padding: Padding2d,
    out_h: usize,
    out_w: usize,
}

impl AvgPoolGeometry {
    /// Checks an NHWC input shape against the window and derives the output size.
    fn new(
        x: &[usize],
        pool: (usize, usize),
        strides: (usize, usize),
        padding: Padding2d,
    ) -> Result<Self, OpsError> {
        let config = |reason: String| OpsError::Config { op: OP, reason };
        let &[batch, in_h, in_w, channels] = x else {
            return Err(config(format!("expected an (N, H, W, C) input, got {x:?}")));
        };
        if in_h == 0 || in_w == 0 {
            return Err(config(format!(
                "the input's height and width must be positive, got {x:?}"
            )));
        }
        if pool.0 == 0 || pool.1 == 0 || strides.0 == 0 || strides.1 == 0 {
            return Err(config(format!(
                "pool {pool:?} and strides {strides:?} must be positive"
            )));
        }
        // Every window then holds at least one real cell to average.
        let (top, bottom, left, right) = padding.as_tuple();
        if top >= pool.0 || bottom >= pool.0 || left >= pool.1 || right >= pool.1 {
            return Err(config(format!(
                "padding {:?} (top, bottom, left, right) must be smaller than the pool {pool:?} on each side",
                padding.as_tuple()
            )));
        }
        let out_h = conv_output_len(in_h, pool.0, strides.0, 1, top, bottom);
        let out_w = conv_output_len(in_w, pool.1, strides.1, 1, left, right);
        let (Some(out_h), Some(out_w)) = (out_h, out_w) else {
            return Err(OpsError::InputTooSmall {
                op: OP,
                input: x.into(),
                padding: padding.as_tuple(),
                window: pool,
            });
        };
        Ok(Self {
            batch,
            in_h,
            in_w,
            channels,
            pool,
            strides,
            padding,
            out_h,
            out_w,
        })
    }

    /// The input rows the window of output row `oy` covers (real rows only).
    fn rows(&self, oy: usize) -> Range<usize> {
        real_cells(oy, self.strides.0, self.pool.0, self.padding.top, self.in_h)
    }

    /// The input columns the window of output column `ox` covers (real columns only).
    fn cols(&self, ox: usize) -> Range<usize> {
        real_cells(
            ox,
            self.strides.1,
            self.pool.1,
            self.padding.left,
            self.in_w,
        )
    }

    /// For each output cell of an image (row-major), one over the number of real cells its
    /// window covers: what its sum is scaled by.
    fn inverse_counts(&self) -> Vec<f32> {
        (0..self.out_h)
            .flat_map(|oy| (0..self.out_w).map(move |ox| (oy, ox)))
            .map(|(oy, ox)| 1.0 / (self.rows(oy).len() * self.cols(ox).len()) as f32)
            .collect()
    }

    fn in_image_len(&self) -> usize {
        self.in_h * self.in_w * self.channels
    }

    fn out_image_len(&self) -> usize {
        self.out_h * self.out_w * self.channels
    }

    fn in_dims(&self) -> [usize; 4] {
        [self.batch, self.in_h, self.in_w, self.channels]
    }

    fn out_dims(&self) -> [usize; 4] {
        [self.batch, self.out_h, self.out_w, self.channels]
    }
}

/// The input indices along one axis that the window of output index `o` covers, inside the
/// image (the padding is never counted).
fn real_cells(o: usize, stride: usize, pool: usize, before: usize, len: usize) -> Range<usize> {
    let start = o * stride;
    start.saturating_sub(before)..(start + pool).saturating_sub(before).min(len)
}

/// Average pooling, NHWC: each output cell is the mean of the real (unpadded) cells of its
/// window; the gradient spreads each output cell's gradient evenly over those cells.
///
/// Each padding side must be smaller than the pool along its axis (Keras's 'same' always is), so
/// that every window holds a real cell.
pub fn avg_pool2d(
    x: &Tensor,
    pool: (usize, usize),
    strides: (usize, usize),
    padding: Padding2d,
) -> candle_core::Result<Tensor> {
    expect_f32_rank(OP, "x", x, 4)?;
    let geometry = AvgPoolGeometry::new(x.dims(), pool, strides, padding)?;
    if !crate::kernels_on(x.device()) {
        return composed::avg_pool2d(x, &geometry);
    }
    x.apply_op1(AvgPool2dOp { geometry })
}

/// The CPU average pooling as a candle custom op.
struct AvgPool2dOp {
    geometry: AvgPoolGeometry,
}

impl CustomOp1 for AvgPool2dOp {
    fn name(&self) -> &'static str {
        "rkeras-avg-pool2d"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = &self.geometry;
        expect_built_dims(OP, "x", layout.dims(), &g.in_dims())?;
        let x = cpu_f32(OP, "x", storage, layout)?;
        let y = kernel::forward(g, &x);
        Ok((CpuStorage::F32(y), g.out_dims().as_slice().into()))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        if !arg.track_op() {
            return Ok(None);
        }
        input_gradient(&self.geometry, grad_res).map(Some)
    }
}

/// The input gradient of a CPU average pooling of geometry `g`, given its output's gradient.
fn input_gradient(g: &AvgPoolGeometry, grad_y: &Tensor) -> candle_core::Result<Tensor> {
    let grad = CpuView::of(OP, "output gradient", grad_y)?;
    let x_grad = kernel::backward(g, &grad.f32()?);
    Tensor::from_vec(x_grad, g.in_dims().as_slice(), grad_y.device())
}

/// The backward pass of [`avg_pool2d`] as a plain function: the gradient of `x` given the
/// gradient `grad_output` of the pooling's output, each output cell's gradient spread evenly
/// over the real cells of its window. Only `x`'s shape is read. Nothing is recorded for candle's
/// autograd; CPU tensors only.
pub fn avg_pool2d_backward(
    x: &Tensor,
    grad_output: &Tensor,
    pool: (usize, usize),
    strides: (usize, usize),
    padding: Padding2d,
) -> candle_core::Result<Tensor> {
    expect_f32_rank(OP, "x", x, 4)?;
    let geometry = AvgPoolGeometry::new(x.dims(), pool, strides, padding)?;
    let out_shape: Shape = geometry.out_dims().as_slice().into();
    if grad_output.shape() != &out_shape || grad_output.dtype() != candle_core::DType::F32 {
        return Err(OpsError::ShapeMismatch {
            op: OP,
            expected: "the output gradient must be f32 of the pooling's output shape",
            lhs_name: "output gradient",
            lhs: grad_output.shape().clone(),
            rhs_name: "expected",
            rhs: out_shape,
        }
        .into());
    }
    input_gradient(&geometry, grad_output)
}

#[cfg(test)]
mod tests;
