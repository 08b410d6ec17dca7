//! Softmax and log-softmax along one axis, each one pass over the data forward and one back,
//! the backward reading only the output (`keras/src/activations/activations.py`).
//!
//! An input of shape `(outer, n, inner)` around the axis (of length `n`) is a stack of `outer`
//! blocks; within a block the `n` entries of one softmax are `inner` apart. Along the last axis
//! (`inner` = 1, the usual case) a row's reductions run on several lanes at once; along another
//! axis the `inner` softmaxes of a block advance together, so the loops run along memory.

use std::mem::MaybeUninit;

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Shape, Tensor};

use crate::dense::{expect_f32_and_gradient, write_rows};
use crate::error::OpsError;
use crate::math::{exp, ln};
use crate::simd::{vectorized, Kernel};
use crate::storage::{cpu_f32, CpuView};

/// Name used in messages.
const OP: &str = "softmax";

/// Independent accumulators for a row's reductions, so that they vectorise.
const LANES: usize = 16;

/// `exp(x - max) / sum(exp(x - max))` along `axis`, for any shape and float dtype: the kernel
/// on f32 where the kernels run (its backward from the output alone), candle ops elsewhere.
pub fn softmax(x: &Tensor, axis: usize) -> candle_core::Result<Tensor> {
    apply(x, axis, false)
}

/// `x - max - log(sum(exp(x - max)))` along `axis`, as [`softmax`].
pub fn log_softmax(x: &Tensor, axis: usize) -> candle_core::Result<Tensor> {
    apply(x, axis, true)
}

/// The gradient of [`softmax`]'s input from its output `y` (f32, CPU) and the output's
/// gradient: `y ⊙ (grad - sum(grad ⊙ y))` along `axis`.
pub fn softmax_backward(y: &Tensor, grad_y: &Tensor, axis: usize) -> candle_core::Result<Tensor> {
    backward(y, grad_y, axis, false)
}

/// The gradient of [`log_softmax`]'s input from its output `y` (f32, CPU) and the output's
/// gradient: `grad - exp(y) · sum(grad)` along `axis`.
pub fn log_softmax_backward(
    y: &Tensor,
    grad_y: &Tensor,
    axis: usize,
) -> candle_core::Result<Tensor> {
    backward(y, grad_y, axis, true)
}

/// The sizes (outer, n, inner) around `axis`, or an error when `x` has no such axis.
fn split(x: &Tensor, axis: usize) -> candle_core::Result<[usize; 3]> {
    let dims = x.dims();
    if axis >= dims.len() {
        return Err(OpsError::Config {
            op: OP,
            reason: format!("axis {axis} is out of range for shape {dims:?}"),
        }
        .into());
    }
    let outer = dims[..axis].iter().product();
    let inner = dims[axis + 1..].iter().product();
    Ok([outer, dims[axis], inner])
}

fn apply(x: &Tensor, axis: usize, log: bool) -> candle_core::Result<Tensor> {
    let sizes = split(x, axis)?;
    if x.dtype() == DType::F32 && crate::kernels_on(x.device()) {
        return x.apply_op1(SoftmaxOp { axis, sizes, log });
    }
    // The maximum only keeps exp from overflowing: the result does not depend on it, so it is
    // left out of the graph.
    let shifted = x.broadcast_sub(&x.max_keepdim(axis)?.detach())?;
    let exps = shifted.exp()?;
    let sums = exps.sum_keepdim(axis)?;
    if log {
        shifted.broadcast_sub(&sums.log()?)
    } else {
        exps.broadcast_div(&sums)
    }
}

fn backward(y: &Tensor, grad_y: &Tensor, axis: usize, log: bool) -> candle_core::Result<Tensor> {
    expect_f32_and_gradient(OP, "y", y, grad_y)?;
    let [_, n, inner] = split(y, axis)?;
    let (y_view, grad_view) = (CpuView::of(OP, "y", y)?, CpuView::of(OP, "grad_y", grad_y)?);
    let (y_data, grad_data) = (y_view.f32()?, grad_view.f32()?);
    let grad_x = by_blocks(y_data.len(), n * inner, |span, out| {
        vectorized(BackwardBlocks {
            y: &y_data[span.clone()],
            grad: &grad_data[span],
            out,
            n,
            inner,
            log,
        })
    });
    Tensor::from_vec(grad_x, y.shape(), y.device())
}

/// A fresh buffer of `len` elements in blocks of `block`, each span of whole blocks written by
/// `task(span, out)`, split over threads when large.
fn by_blocks<F>(len: usize, block: usize, task: F) -> Vec<f32>
where
    F: Fn(std::ops::Range<usize>, &mut [MaybeUninit<f32>]) + Sync,
{
    if block == 0 {
        return Vec::new();
    }
    // SAFETY: the kernels write every cell of their blocks.
    let (out, _) = unsafe {
        write_rows(len, block, |blocks, out| {
            task(blocks.start * block..blocks.end * block, out)
        })
    };
    out
}

/// Forward over whole blocks of `x`, into `y`.
struct ForwardBlocks<'a> {
    x: &'a [f32],
    y: &'a mut [MaybeUninit<f32>],
    n: usize,
    inner: usize,
    log: bool,
}

impl Kernel for ForwardBlocks<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Self {
            x,
            y,
            n,
            inner,
            log,
        } = self;
        let block = n * inner;
        if inner == 1 {
            for (x_row, y_row) in x.chunks_exact(block).zip(y.chunks_exact_mut(block)) {
                forward_row(x_row, y_row, log);
            }
            return;
        }
        let (mut max, mut sum) = (vec![0.0f32; inner], vec![0.0f32; inner]);
        for (x_block, y_block) in x.chunks_exact(block).zip(y.chunks_exact_mut(block)) {
            max.fill(f32::NEG_INFINITY);
            for x_line in x_block.chunks_exact(inner) {
                for (m, &v) in max.iter_mut().zip(x_line) {
                    *m = m.max(v);
                }
            }
            sum.fill(0.0);
            for x_line in x_block.chunks_exact(inner) {
                for ((s, &m), &v) in sum.iter_mut().zip(&max).zip(x_line) {
                    *s += exp(v - m);
                }
            }
            // What each entry becomes: exp(x - max) / sum, or (x - max) - ln(sum) (not
            // x - (max + ln(sum)), whose sum rounds away digits of ln(sum)).
            for s in sum.iter_mut() {
                *s = if log { ln(*s) } else { 1.0 / *s };
            }
            let lines = x_block
                .chunks_exact(inner)
                .zip(y_block.chunks_exact_mut(inner));
            for (x_line, y_line) in lines {
                let cells = y_line.iter_mut().zip(x_line).zip(&max).zip(&sum);
                for (((out, &v), &m), &s) in cells {
                    out.write(if log { (v - m) - s } else { exp(v - m) * s });
                }
            }
        }
    }
}

/// The maximum of `row` (NaN ignored, -inf for an empty row), on [`LANES`] lanes.
#[inline(always)]
fn row_max(row: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = row.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane = lane.max(v);
        }
    }
    lanes
        .iter()
        .chain(rest)
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v))
}

/// The sum of `f(a[i], b[i])` over two rows of one length, on [`LANES`] lanes.
#[inline(always)]
fn row_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let rest = a_chunks.remainder().iter().zip(b_chunks.remainder());
    for (a_chunk, b_chunk) in a_chunks.zip(b_chunks) {
        for ((lane, &u), &v) in lanes.iter_mut().zip(a_chunk).zip(b_chunk) {
            *lane += f(u, v);
        }
    }
    lanes.iter().sum::<f32>() + rest.map(|(&u, &v)| f(u, v)).sum::<f32>()
}

/// One softmax (or log-softmax) of a contiguous row.
#[inline(always)]
fn forward_row(x: &[f32], y: &mut [MaybeUninit<f32>], log: bool) {
    let max = row_max(x);
    let sum = row_sum(x, x, |v, _| exp(v - max));
    if log {
        let log_sum = ln(sum);
        for (out, &v) in y.iter_mut().zip(x) {
            out.write((v - max) - log_sum);
        }
    } else {
        let scale = 1.0 / sum;
        for (out, &v) in y.iter_mut().zip(x) {
            out.write(exp(v - max) * scale);
        }
    }
}

/// Backward over whole blocks: the input's gradient into `out`.
struct BackwardBlocks<'a> {
    y: &'a [f32],
    grad: &'a [f32],
    out: &'a mut [MaybeUninit<f32>],
    n: usize,
    inner: usize,
    log: bool,
}

impl Kernel for BackwardBlocks<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Self {
            y,
            grad,
            out,
            n,
            inner,
            log,
        } = self;
        let block = n * inner;
        let blocks = y.chunks_exact(block).zip(grad.chunks_exact(block));
        let blocks = blocks.zip(out.chunks_exact_mut(block));
        if inner == 1 {
            for ((y_row, g_row), out_row) in blocks {
                // sum(grad) for log-softmax, sum(grad ⊙ y) for softmax.
                let d = if log {
                    row_sum(g_row, g_row, |g, _| g)
                } else {
                    row_sum(g_row, y_row, |g, v| g * v)
                };
                for ((o, &v), &g) in out_row.iter_mut().zip(y_row).zip(g_row) {
                    o.write(input_gradient(v, g, d, log));
                }
            }
            return;
        }
        let mut dots = vec![0.0f32; inner];
        for ((y_block, g_block), out_block) in blocks {
            // The same sums for the `inner` softmaxes of the block at once.
            dots.fill(0.0);
            for (y_line, g_line) in y_block.chunks_exact(inner).zip(g_block.chunks_exact(inner)) {
                for ((d, &v), &g) in dots.iter_mut().zip(y_line).zip(g_line) {
                    *d += if log { g } else { g * v };
                }
            }
            let lines = y_block
                .chunks_exact(inner)
                .zip(g_block.chunks_exact(inner))
                .zip(out_block.chunks_exact_mut(inner));
            for ((y_line, g_line), out_line) in lines {
                let cells = out_line.iter_mut().zip(y_line).zip(g_line).zip(&dots);
                for (((o, &v), &g), &d) in cells {
                    o.write(input_gradient(v, g, d, log));
                }
            }
        }
    }
}

/// One entry of the input's gradient from the output `v`, its gradient `g` and its softmax's
/// sum `d` (of `g` for log-softmax, of `g ⊙ y` for softmax).
#[inline(always)]
fn input_gradient(v: f32, g: f32, d: f32, log: bool) -> f32 {
    if log {
        g - exp(v) * d
    } else {
        v * (g - d)
    }
}

/// The CPU kernel.
struct SoftmaxOp {
    axis: usize,
    /// (outer, n, inner) around the axis.
    sizes: [usize; 3],
    log: bool,
}

impl CustomOp1 for SoftmaxOp {
    fn name(&self) -> &'static str {
        "rkeras-softmax"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x_data = cpu_f32(OP, "x", x, x_layout)?;
        let [_, n, inner] = self.sizes;
        let y = by_blocks(x_data.len(), n * inner, |span, y| {
            vectorized(ForwardBlocks {
                x: &x_data[span],
                y,
                n,
                inner,
                log: self.log,
            })
        });
        Ok((CpuStorage::F32(y), x_layout.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, grad_y: &Tensor) -> candle_core::Result<Option<Tensor>> {
        backward(y, grad_y, self.axis, self.log).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{
        assert_close, gradients_against, random_tensor, random_var, values, Lcg,
    };
    use candle_core::Device;

    /// Output and input gradient of `sum(softmax(x) ⊙ upstream)` (or log-softmax) along the
    /// middle axis of `(outer, n, inner)`, in f64 by the definitions.
    fn naive(
        x: &[f32],
        upstream: &[f32],
        [outer, n, inner]: [usize; 3],
        log: bool,
    ) -> (Vec<f64>, Vec<f64>) {
        let (mut y, mut grad) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        for o in 0..outer {
            for j in 0..inner {
                let at = |i: usize| (o * n + i) * inner + j;
                let max = (0..n)
                    .map(|i| x[at(i)] as f64)
                    .fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = (0..n).map(|i| (x[at(i)] as f64 - max).exp()).sum();
                let p: Vec<f64> = (0..n)
                    .map(|i| (x[at(i)] as f64 - max).exp() / sum)
                    .collect();
                // d/dx_k of sum_i u_i f_i: softmax f_i = p_i, df_i/dx_k = p_i (δ_ik - p_k);
                // log-softmax f_i = log p_i, df_i/dx_k = δ_ik - p_k.
                let u: Vec<f64> = (0..n).map(|i| upstream[at(i)] as f64).collect();
                let dot: f64 = u.iter().zip(&p).map(|(u, p)| u * p).sum();
                let total: f64 = u.iter().sum();
                for i in 0..n {
                    y[at(i)] = if log { p[i].ln() } else { p[i] };
                    grad[at(i)] = if log {
                        u[i] - p[i] * total
                    } else {
                        p[i] * (u[i] - dot)
                    };
                }
            }
        }
        (y, grad)
    }

    #[test]
    fn forward_and_gradients_match_naive_loops_along_any_axis() -> candle_core::Result<()> {
        let mut rng = Lcg::new(29);
        let shapes: [(&[usize], usize); 8] = [
            (&[1, 1], 1),
            (&[4, 10], 1),
            (&[3, 37], 1),
            (&[256, 1000], 1),
            (&[2, 3, 5], 1),
            (&[2, 3, 5], 0),
            (&[2, 7, 5], 1),
            (&[64, 9, 300], 1),
        ];
        for (dims, axis) in shapes {
            for log in [false, true] {
                let x = random_var(&mut rng, dims);
                // Logits in [-10, 10).
                x.set(&(x.as_tensor() * 10.0)?)?;
                let upstream = random_tensor(&mut rng, dims);
                let y = if log {
                    log_softmax(x.as_tensor(), axis)?
                } else {
                    softmax(x.as_tensor(), axis)?
                };
                let sizes = split(x.as_tensor(), axis)?;
                let (want_y, want_grad) =
                    naive(&values(x.as_tensor()), &values(&upstream), sizes, log);
                let what = format!("log {log} {dims:?} axis {axis}");
                assert_close(&format!("{what} y"), &values(&y), &want_y, 1e-6);
                let grads = gradients_against(&y, &upstream);
                let grad = grads.get(x.as_tensor()).expect("x gradient");
                assert_close(&format!("{what} grad"), &values(grad), &want_grad, 1e-5);
                let composed = crate::with_composed_ops(|| apply(x.as_tensor(), axis, log))?;
                let want: Vec<f64> = values(&y).iter().map(|&v| v as f64).collect();
                assert_close(&format!("{what} composed"), &values(&composed), &want, 1e-6);
            }
        }
        Ok(())
    }

    #[test]
    fn large_logits_do_not_overflow_and_nan_spreads_over_its_row() -> candle_core::Result<()> {
        let x = Tensor::new(
            &[[1000f32, 1000.0, -1000.0], [0.0, f32::NAN, 1.0]],
            &Device::Cpu,
        )?;
        let y = values(&softmax(&x, 1)?);
        assert_eq!(&y[..3], &[0.5, 0.5, 0.0]);
        assert!(y[3..].iter().all(|v| v.is_nan()));
        let y = values(&log_softmax(&x, 1)?);
        assert!((y[0] + std::f32::consts::LN_2).abs() < 1e-6, "{y:?}");
        assert!((y[2] + 2000.693).abs() < 1e-3, "{y:?}");
        Ok(())
    }

    #[test]
    fn arguments_are_checked() -> candle_core::Result<()> {
        let x = Tensor::zeros((2, 3), DType::F32, &Device::Cpu)?;
        let message = softmax(&x, 2).unwrap_err().to_string();
        assert!(
            message.contains("axis 2") && message.contains("[2, 3]"),
            "{message}"
        );
        let message = softmax_backward(&x, &x.t()?, 1).unwrap_err().to_string();
        assert!(message.contains("one shape"), "{message}");
        let empty = Tensor::zeros((0, 3), DType::F32, &Device::Cpu)?;
        assert_eq!(softmax(&empty, 1)?.dims(), &[0, 3]);
        assert_eq!(log_softmax_backward(&empty, &empty, 1)?.dims(), &[0, 3]);
        Ok(())
    }
}
