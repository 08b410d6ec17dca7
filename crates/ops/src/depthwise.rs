//! Depthwise 2-D convolution over NHWC images with Keras's `(kh, kw, channels, multiplier)`
//! kernels: output channel `c · multiplier + m` reads input channel `c` only (TensorFlow's
//! `depthwise_conv2d` order). On the CPU a candle custom op (so that autograd differentiates it
//! through [`depthwise_conv2d_backward`]'s loops); elsewhere the composed form, one product per
//! kernel tap of the strided, dilated input window, summed.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::check::{expect_built_dims, expect_f32_rank, expect_same_device};
use crate::conv2d::Conv2dParams;
use crate::error::OpsError;
use crate::fork_join::min_piece_len;
use crate::padding::conv_output_len;
use crate::storage::{cpu_f32, CpuView};

/// Name used in messages.
const OP: &str = "depthwise_conv2d";

/// The sizes of one depthwise convolution.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    /// Input (batch, height, width, channels).
    x: [usize; 4],
    /// Kernel (height, width) and multiplier.
    k: (usize, usize, usize),
    /// Output (height, width).
    out: (usize, usize),
    params: Conv2dParams,
}

impl Geometry {
    /// The geometry of `x` by `kernel`, checked.
    fn of(x: &Tensor, kernel: &Tensor, params: &Conv2dParams) -> candle_core::Result<Self> {
        let xd = expect_f32_rank(OP, "x", x, 4)?;
        let kd = expect_f32_rank(OP, "kernel", kernel, 4)?;
        expect_same_device(OP, x, kernel)?;
        let p = params.padding;
        let len = |input, k, s, d, before, after| conv_output_len(input, k, s, d, before, after);
        let (s, d) = (params.strides, params.dilation);
        let out_h = len(xd[1], kd[0], s.0, d.0, p.top, p.bottom);
        let out_w = len(xd[2], kd[1], s.1, d.1, p.left, p.right);
        match (out_h, out_w) {
            (Some(out_h), Some(out_w)) if kd[2] == xd[3] && kd[3] > 0 => Ok(Geometry {
                x: [xd[0], xd[1], xd[2], xd[3]],
                k: (kd[0], kd[1], kd[3]),
                out: (out_h, out_w),
                params: *params,
            }),
            _ => Err(OpsError::Config {
                op: OP,
                reason: format!(
                    "kernel {kd:?} does not fit input {xd:?} with {params:?} (channels must match)"
                ),
            }
            .into()),
        }
    }

    /// Output channels: channels times the multiplier.
    fn out_c(&self) -> usize {
        self.x[3] * self.k.2
    }

    fn out_dims(&self) -> [usize; 4] {
        [self.x[0], self.out.0, self.out.1, self.out_c()]
    }

    /// The input row (or column) tap `tap` of output position `o` reads along an axis with
    /// `stride`, `dilation` and `before` padding, if inside the `len` input positions.
    fn source(
        o: usize,
        tap: usize,
        stride: usize,
        dilation: usize,
        before: usize,
        len: usize,
    ) -> Option<usize> {
        (o * stride + tap * dilation)
            .checked_sub(before)
            .filter(|&i| i < len)
    }

    /// Calls `f(tap, input pixel)` for every kernel tap of output pixel `(oy, ox)` that reads
    /// inside the input, the pixel counted within one sample.
    fn taps(&self, oy: usize, ox: usize, mut f: impl FnMut(usize, usize)) {
        let [_, h, w, _] = self.x;
        let (kh, kw, _) = self.k;
        let (p, s, d) = (
            self.params.padding,
            self.params.strides,
            self.params.dilation,
        );
        for i in 0..kh {
            let Some(iy) = Self::source(oy, i, s.0, d.0, p.top, h) else {
                continue;
            };
            for j in 0..kw {
                if let Some(ix) = Self::source(ox, j, s.1, d.1, p.left, w) {
                    f(i * kw + j, iy * w + ix);
                }
            }
        }
    }
}

/// The depthwise convolution of `x` `(batch, h, w, channels)` by `kernel`
/// `(kh, kw, channels, multiplier)`: `(batch, out_h, out_w, channels · multiplier)`.
pub fn depthwise_conv2d(
    x: &Tensor,
    kernel: &Tensor,
    params: &Conv2dParams,
) -> candle_core::Result<Tensor> {
    let g = Geometry::of(x, kernel, params)?;
    if !crate::kernels_on(x.device()) {
        return composed(x, kernel, &g);
    }
    x.apply_op2(kernel, DepthwiseOp { g })
}

/// The gradients a [`depthwise_conv2d_backward`] returns, each `None` when not asked for.
pub struct DepthwiseGradients {
    /// Of the input.
    pub x: Option<Tensor>,
    /// Of the kernel.
    pub kernel: Option<Tensor>,
}

/// The gradients of `x` (when `want_x`) and of `kernel` (when `want_kernel`) of a
/// [`depthwise_conv2d`] whose output has the gradient `grad_output`; nothing is recorded for
/// autograd. CPU tensors only.
pub fn depthwise_conv2d_backward(
    x: &Tensor,
    kernel: &Tensor,
    grad_output: &Tensor,
    params: &Conv2dParams,
    want_x: bool,
    want_kernel: bool,
) -> candle_core::Result<DepthwiseGradients> {
    let g = Geometry::of(x, kernel, params)?;
    expect_f32_rank(OP, "output gradient", grad_output, 4)?;
    expect_built_dims(OP, "output gradient", grad_output.dims(), &g.out_dims())?;
    let (xv, kv, dyv) = (
        CpuView::of(OP, "x", x)?,
        CpuView::of(OP, "kernel", kernel)?,
        CpuView::of(OP, "output gradient", grad_output)?,
    );
    let (xs, ks, dys) = (xv.f32()?, kv.f32()?, dyv.f32()?);
    let device = x.device();
    let dx = want_x
        .then(|| Tensor::from_vec(input_gradient(&g, &ks, &dys), x.shape(), device))
        .transpose()?;
    let dk = want_kernel
        .then(|| Tensor::from_vec(kernel_gradient(&g, &xs, &dys), kernel.shape(), device))
        .transpose()?;
    Ok(DepthwiseGradients { x: dx, kernel: dk })
}

/// The forward loops: each output pixel sums, over its taps, the input pixel's channels
/// (each repeated `multiplier` times) times the tap's weights.
fn forward(g: &Geometry, x: &[f32], kernel: &[f32]) -> Vec<f32> {
    let [_, h, w, c] = g.x;
    let (out_h, out_w) = g.out;
    let (oc, m) = (g.out_c(), g.k.2);
    let mut y = vec![0f32; g.out_dims().iter().product()];
    if y.is_empty() {
        return y;
    }
    y.par_chunks_mut(out_w * oc)
        .enumerate()
        .with_min_len(min_piece_len())
        .for_each(|(row, out_row)| {
            let (b, oy) = (row / out_h, row % out_h);
            let sample = &x[b * h * w * c..(b + 1) * h * w * c];
            for (ox, out) in out_row.chunks_exact_mut(oc).enumerate() {
                g.taps(oy, ox, |tap, pixel| {
                    let weights = &kernel[tap * oc..(tap + 1) * oc];
                    let input = &sample[pixel * c..(pixel + 1) * c];
                    spread_mul_add(out, input, weights, m);
                });
            }
        });
    y
}

/// The input's gradient: each sample on its own, every output pixel's gradient times the tap's
/// weights added back to the input pixel the tap read (summed over the multiplier).
fn input_gradient(g: &Geometry, kernel: &[f32], dy: &[f32]) -> Vec<f32> {
    let [_, h, w, c] = g.x;
    let (out_h, out_w) = g.out;
    let (oc, m) = (g.out_c(), g.k.2);
    let mut dx = vec![0f32; g.x.iter().product()];
    if dx.is_empty() {
        return dx;
    }
    dx.par_chunks_mut(h * w * c)
        .zip(dy.par_chunks(out_h * out_w * oc))
        .with_min_len(min_piece_len())
        .for_each(|(dx, dy)| {
            for (pixel_out, grad) in dy.chunks_exact(oc).enumerate() {
                let (oy, ox) = (pixel_out / out_w, pixel_out % out_w);
                g.taps(oy, ox, |tap, pixel| {
                    let weights = &kernel[tap * oc..(tap + 1) * oc];
                    let dx = &mut dx[pixel * c..(pixel + 1) * c];
                    if m == 1 {
                        for ((dx, &d), &k) in dx.iter_mut().zip(grad).zip(weights) {
                            *dx += d * k;
                        }
                    } else {
                        let pairs = grad.chunks_exact(m).zip(weights.chunks_exact(m));
                        for (dx, (d, k)) in dx.iter_mut().zip(pairs) {
                            *dx += d.iter().zip(k).map(|(d, k)| d * k).sum::<f32>();
                        }
                    }
                });
            }
        });
    dx
}

/// The kernel's gradient: over every sample and output pixel, the input pixel a tap read
/// times the output pixel's gradient; samples summed apart, then together.
fn kernel_gradient(g: &Geometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let [_, h, w, c] = g.x;
    let (out_h, out_w) = g.out;
    let (oc, m) = (g.out_c(), g.k.2);
    let len = g.k.0 * g.k.1 * oc;
    if x.is_empty() || dy.is_empty() {
        return vec![0f32; len];
    }
    x.par_chunks(h * w * c)
        .zip(dy.par_chunks(out_h * out_w * oc))
        .with_min_len(min_piece_len())
        .fold(
            || vec![0f32; len],
            |mut dk, (x, dy)| {
                for (pixel_out, grad) in dy.chunks_exact(oc).enumerate() {
                    let (oy, ox) = (pixel_out / out_w, pixel_out % out_w);
                    g.taps(oy, ox, |tap, pixel| {
                        let input = &x[pixel * c..(pixel + 1) * c];
                        let dk = &mut dk[tap * oc..(tap + 1) * oc];
                        spread_mul_add(dk, input, grad, m);
                    });
                }
                dk
            },
        )
        .reduce(
            || vec![0f32; len],
            |mut a, b| {
                for (a, b) in a.iter_mut().zip(b) {
                    *a += b;
                }
                a
            },
        )
}

/// `out[c · m + k] += input[c] · weights[c · m + k]` for every channel `c` and `k < m`.
fn spread_mul_add(out: &mut [f32], input: &[f32], weights: &[f32], m: usize) {
    if m == 1 {
        for ((o, &v), &w) in out.iter_mut().zip(input).zip(weights) {
            *o += v * w;
        }
        return;
    }
    let groups = out.chunks_exact_mut(m).zip(weights.chunks_exact(m));
    for ((out, weights), &v) in groups.zip(input) {
        for (o, &w) in out.iter_mut().zip(weights) {
            *o += v * w;
        }
    }
}

/// The composed form: the padded input read at each tap (a view for stride 1, a gather
/// otherwise), times the tap's `(channels, multiplier)` weights, summed.
fn composed(x: &Tensor, kernel: &Tensor, g: &Geometry) -> candle_core::Result<Tensor> {
    let p = g.params.padding;
    let x = x
        .pad_with_zeros(1, p.top, p.bottom)?
        .pad_with_zeros(2, p.left, p.right)?;
    let (kh, kw, _) = g.k;
    let ((sh, sw), (dh, dw)) = (g.params.strides, g.params.dilation);
    let mut sum: Option<Tensor> = None;
    for i in 0..kh {
        let rows = taps(&x, 1, i * dh, sh, g.out.0)?;
        for j in 0..kw {
            let window = taps(&rows, 2, j * dw, sw, g.out.1)?.unsqueeze(4)?;
            let term = window.broadcast_mul(&kernel.get(i)?.get(j)?)?;
            sum = Some(match sum {
                None => term,
                Some(sum) => (sum + term)?,
            });
        }
    }
    match sum {
        Some(sum) => sum.reshape(g.out_dims().as_slice()),
        None => Err(OpsError::Config {
            op: OP,
            reason: "an empty kernel".into(),
        }
        .into()),
    }
}

/// `len` positions of `t` along `axis`, from `start` every `step` (autograd routes the gradient
/// back to the positions read).
fn taps(
    t: &Tensor,
    axis: usize,
    start: usize,
    step: usize,
    len: usize,
) -> candle_core::Result<Tensor> {
    if step == 1 {
        return t.narrow(axis, start, len);
    }
    let indices: Vec<u32> = (0..len).map(|k| (start + k * step) as u32).collect();
    let indices = Tensor::from_vec(indices, len, t.device())?;
    t.index_select(&indices, axis)
}

/// The CPU depthwise convolution as a candle custom op on (x, kernel).
struct DepthwiseOp {
    g: Geometry,
}

impl CustomOp2 for DepthwiseOp {
    fn name(&self) -> &'static str {
        "rkeras-depthwise-conv2d"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        kernel: &CpuStorage,
        kernel_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = &self.g;
        expect_built_dims(OP, "x", x_layout.dims(), &g.x)?;
        let x = cpu_f32(OP, "x", x, x_layout)?;
        let kernel = cpu_f32(OP, "kernel", kernel, kernel_layout)?;
        let y = forward(g, &x, &kernel);
        Ok((CpuStorage::F32(y), g.out_dims().as_slice().into()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        kernel: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let grads = depthwise_conv2d_backward(
            x,
            kernel,
            grad_res,
            &self.g.params,
            x.track_op(),
            kernel.track_op(),
        )?;
        Ok((grads.x, grads.kernel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::padding::Padding2d;
    use crate::test_util::{
        assert_close, gradients_against, random_tensor, random_var, values, Lcg,
    };

    /// The convolution by its definition, one output value at a time.
    fn naive(x: &[f32], xd: [usize; 4], k: &[f32], kd: [usize; 4], p: &Conv2dParams) -> Vec<f64> {
        let [n, h, w, c] = xd;
        let [kh, kw, _, m] = kd;
        let out_h = conv_output_len(
            h,
            kh,
            p.strides.0,
            p.dilation.0,
            p.padding.top,
            p.padding.bottom,
        )
        .unwrap();
        let out_w = conv_output_len(
            w,
            kw,
            p.strides.1,
            p.dilation.1,
            p.padding.left,
            p.padding.right,
        )
        .unwrap();
        let mut out = Vec::new();
        for b in 0..n {
            for oy in 0..out_h {
                for ox in 0..out_w {
                    for ch in 0..c {
                        for mm in 0..m {
                            let mut sum = 0f64;
                            for i in 0..kh {
                                for j in 0..kw {
                                    let iy = Geometry::source(
                                        oy,
                                        i,
                                        p.strides.0,
                                        p.dilation.0,
                                        p.padding.top,
                                        h,
                                    );
                                    let ix = Geometry::source(
                                        ox,
                                        j,
                                        p.strides.1,
                                        p.dilation.1,
                                        p.padding.left,
                                        w,
                                    );
                                    if let (Some(iy), Some(ix)) = (iy, ix) {
                                        let v = x[((b * h + iy) * w + ix) * c + ch] as f64;
                                        sum += v * k[((i * kw + j) * c + ch) * m + mm] as f64;
                                    }
                                }
                            }
                            out.push(sum);
                        }
                    }
                }
            }
        }
        out
    }

    fn cases() -> Vec<([usize; 4], [usize; 4], Conv2dParams)> {
        let params = |strides, dilation, padding: (usize, usize, usize, usize)| Conv2dParams {
            strides,
            dilation,
            padding: Padding2d {
                top: padding.0,
                bottom: padding.1,
                left: padding.2,
                right: padding.3,
            },
        };
        vec![
            (
                [2, 6, 7, 3],
                [3, 3, 3, 1],
                params((1, 1), (1, 1), (1, 1, 1, 1)),
            ),
            (
                [2, 6, 7, 3],
                [3, 2, 3, 2],
                params((2, 3), (1, 1), (0, 1, 1, 0)),
            ),
            (
                [1, 7, 6, 2],
                [2, 2, 2, 3],
                params((1, 1), (2, 3), (1, 1, 1, 2)),
            ),
            (
                [3, 5, 5, 4],
                [1, 3, 4, 1],
                params((3, 1), (1, 1), (0, 0, 0, 0)),
            ),
        ]
    }

    #[test]
    fn kernel_and_composed_forms_match_the_definition() {
        let mut rng = Lcg::new(11);
        for (xd, kd, p) in cases() {
            let x = random_tensor(&mut rng, &xd);
            let k = random_tensor(&mut rng, &kd);
            let want = naive(&values(&x), xd, &values(&k), kd, &p);
            let kernel = depthwise_conv2d(&x, &k, &p).unwrap();
            assert_close("kernel", &values(&kernel), &want, 1e-5);
            let composed = crate::with_composed_ops(|| depthwise_conv2d(&x, &k, &p)).unwrap();
            assert_close("composed", &values(&composed), &want, 1e-5);
        }
    }

    #[test]
    fn backward_matches_autograd_over_the_composed_form() {
        let mut rng = Lcg::new(12);
        for (xd, kd, p) in cases() {
            let x = random_var(&mut rng, &xd);
            let k = random_var(&mut rng, &kd);
            let y = crate::with_composed_ops(|| depthwise_conv2d(&x, &k, &p)).unwrap();
            let upstream = random_tensor(&mut rng, y.dims());
            let grads = gradients_against(&y, &upstream);
            let ours = depthwise_conv2d_backward(&x, &k, &upstream, &p, true, true).unwrap();
            for (what, got, want) in [
                ("dx", ours.x.unwrap(), grads.get(&x).unwrap()),
                ("dkernel", ours.kernel.unwrap(), grads.get(&k).unwrap()),
            ] {
                let want: Vec<f64> = values(want).iter().map(|&v| v as f64).collect();
                assert_close(what, &values(&got), &want, 1e-4);
            }
            // Autograd over the kernel's custom op gives the same.
            let y = depthwise_conv2d(&x, &k, &p).unwrap();
            let through_op = gradients_against(&y, &upstream);
            let want: Vec<f64> = values(grads.get(&k).unwrap())
                .iter()
                .map(|&v| v as f64)
                .collect();
            assert_close(
                "dkernel via op",
                &values(through_op.get(&k).unwrap()),
                &want,
                1e-4,
            );
        }
    }

    #[test]
    fn mismatched_channels_are_refused() {
        let x = Tensor::zeros(
            (1, 4, 4, 3),
            candle_core::DType::F32,
            &candle_core::Device::Cpu,
        )
        .unwrap();
        let k = Tensor::zeros(
            (2, 2, 2, 1),
            candle_core::DType::F32,
            &candle_core::Device::Cpu,
        )
        .unwrap();
        let err = depthwise_conv2d(&x, &k, &Conv2dParams::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("depthwise_conv2d"), "{err}");
    }
}
