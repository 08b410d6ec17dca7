//! `activation(x + bias)` over the rows of a matrix, in one pass forward and one pass backward.

use std::marker::PhantomData;
use std::mem::MaybeUninit;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};

use super::activation::{composed, with_scalar_activation, ScalarActivation};
use super::gradient_args::expect_f32_and_gradient;
use super::parallel::{in_row_chunks, write_rows};
use super::FusedActivation;
use crate::check::{expect_f32_rank, expect_same_device};
use crate::error::OpsError;
use crate::simd::{vectorized, Kernel};
use crate::storage::{cpu_f32, CpuView};

/// Name used in messages.
const OP: &str = "bias_activation";

/// `activation(x + bias)` for `x` of shape `(rows, n)` and `bias` of shape `(n)` (added to every
/// row), in one pass.
///
/// The backward pass reads only the saved output: `grad_x = grad ⊙ activation'(y)` and
/// `grad_bias` = its column sums, in one pass split over rows when large. The ReLU's gradient is 0
/// at 0, as TensorFlow's. Without a bias and with [`FusedActivation::Linear`] this is `x` itself.
pub fn bias_activation(
    x: &Tensor,
    bias: Option<&Tensor>,
    activation: FusedActivation,
) -> candle_core::Result<Tensor> {
    let cols = expect_f32_rank(OP, "x", x, 2)?[1];
    if let Some(bias) = bias {
        let bias_len = expect_f32_rank(OP, "bias", bias, 1)?[0];
        expect_same_device(OP, x, bias)?;
        if bias_len != cols {
            return Err(OpsError::ShapeMismatch {
                op: OP,
                expected: "bias must have one value per column of x",
                lhs_name: "x",
                lhs: x.shape().clone(),
                rhs_name: "bias",
                rhs: bias.shape().clone(),
            }
            .into());
        }
    }
    if !crate::kernels_on(x.device()) {
        let z = match bias {
            Some(bias) => x.broadcast_add(bias)?,
            None => x.clone(),
        };
        return composed(&z, activation);
    }
    match bias {
        Some(bias) => x.apply_op2(bias, BiasActivationOp { activation }),
        None if activation == FusedActivation::Linear => Ok(x.clone()),
        None => x.apply_op1(ActivationOp { activation }),
    }
}

/// `activation(x)` for `x` of any shape and float dtype: the fused kernel (one pass, and one
/// pass back from the output) on f32 tensors where the kernels run, candle ops elsewhere.
pub fn fused_activation(x: &Tensor, activation: FusedActivation) -> candle_core::Result<Tensor> {
    match rows_and_cols(x) {
        Some(rows_cols) if crate::kernels_on(x.device()) => {
            bias_activation(&x.reshape(rows_cols)?, None, activation)?.reshape(x.shape())
        }
        _ => composed(x, activation),
    }
}

/// The gradient of [`fused_activation`]'s input from its output `y` (any shape, f32, CPU) and
/// the output's gradient.
pub fn fused_activation_backward(
    activation: FusedActivation,
    y: &Tensor,
    grad_y: &Tensor,
) -> candle_core::Result<Tensor> {
    expect_f32_and_gradient(OP, "y", y, grad_y)?;
    let Some(rows_cols) = rows_and_cols(y) else {
        // No element.
        return Ok(grad_y.clone());
    };
    let (grad_x, _) = bias_activation_backward(
        activation,
        &y.reshape(rows_cols)?,
        &grad_y.reshape(rows_cols)?,
        false,
    )?;
    grad_x.reshape(y.shape())
}

/// `x` seen as a matrix (rows, last dimension; a scalar as 1x1), when it is f32 and has
/// elements.
fn rows_and_cols(x: &Tensor) -> Option<(usize, usize)> {
    let cols = x.dims().last().copied().unwrap_or(1);
    (x.dtype() == candle_core::DType::F32 && cols > 0 && x.elem_count() > 0)
        .then(|| (x.elem_count() / cols, cols))
}

/// `A(x + bias)` row by row (`bias` empty for none) into a fresh buffer, written once (no zero
/// fill first).
fn forward<A: ScalarActivation>(x: &[f32], bias: &[f32], cols: usize) -> Vec<f32> {
    if cols == 0 {
        return Vec::new();
    }
    // SAFETY: `x` holds whole rows and `ForwardRows` writes every cell of its rows.
    let (y, _) = unsafe {
        write_rows(x.len(), cols, |rows, y_rows| {
            vectorized(ForwardRows::<A> {
                x: &x[rows.start * cols..rows.end * cols],
                bias,
                y: y_rows,
                cols,
                activation: PhantomData,
            })
        })
    };
    y
}

/// [`forward`] over some whole rows of `x`, into `y`.
struct ForwardRows<'a, A> {
    x: &'a [f32],
    bias: &'a [f32],
    y: &'a mut [MaybeUninit<f32>],
    cols: usize,
    activation: PhantomData<A>,
}

impl<A: ScalarActivation> Kernel for ForwardRows<'_, A> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let rows = self
            .y
            .chunks_exact_mut(self.cols)
            .zip(self.x.chunks_exact(self.cols));
        for (y_row, x_row) in rows {
            if self.bias.is_empty() {
                for (out, &v) in y_row.iter_mut().zip(x_row) {
                    out.write(A::value(v));
                }
            } else {
                for ((out, &v), &b) in y_row.iter_mut().zip(x_row).zip(self.bias) {
                    out.write(A::value(v + b));
                }
            }
        }
    }
}

/// The gradients of `A(x + bias)` from the upstream `grad` and the saved output `y`, both
/// `(rows, cols)`: `grad ⊙ A'(y)` if `want_x`, and its column sums if `want_bias`.
fn backward<A: ScalarActivation>(
    grad: &[f32],
    y: &[f32],
    cols: usize,
    want_x: bool,
    want_bias: bool,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    if cols == 0 {
        return (want_x.then(Vec::new), want_bias.then(Vec::new));
    }
    let rows = y.len() / cols;
    let chunk_sums = |range: std::ops::Range<usize>, out: Option<&mut [MaybeUninit<f32>]>| {
        let span = range.start * cols..range.end * cols;
        vectorized(BackwardRows::<A> {
            grad: &grad[span.clone()],
            y: &y[span],
            cols,
            out,
            want_bias,
            activation: PhantomData,
        })
    };
    let (grad_x, partial_sums) = if want_x {
        // SAFETY: `y` holds whole rows and `BackwardRows` writes every cell of its output.
        let (grad_x, sums) =
            unsafe { write_rows(y.len(), cols, |range, out| chunk_sums(range, Some(out))) };
        (Some(grad_x), sums)
    } else {
        (
            None,
            in_row_chunks(rows, cols, |range| chunk_sums(range, None)),
        )
    };
    let grad_bias = want_bias.then(|| {
        let mut total = vec![0.0f32; cols];
        for sums in &partial_sums {
            for (t, s) in total.iter_mut().zip(sums) {
                *t += s;
            }
        }
        total
    });
    (grad_x, grad_bias)
}

/// [`backward`] over some whole rows: writes `grad ⊙ A'(y)` into `out` (when given) and returns
/// its column sums (empty unless `want_bias`).
struct BackwardRows<'a, A> {
    grad: &'a [f32],
    y: &'a [f32],
    cols: usize,
    out: Option<&'a mut [MaybeUninit<f32>]>,
    want_bias: bool,
    activation: PhantomData<A>,
}

impl<A: ScalarActivation> Kernel for BackwardRows<'_, A> {
    type Output = Vec<f32>;

    #[inline(always)]
    fn run(self) -> Vec<f32> {
        let Self {
            grad,
            y,
            cols,
            out,
            want_bias,
            ..
        } = self;
        let mut sums = vec![0.0f32; if want_bias { cols } else { 0 }];
        let rows = grad.chunks_exact(cols).zip(y.chunks_exact(cols));
        match out {
            Some(out) if want_bias => {
                for ((g_row, y_row), out_row) in rows.zip(out.chunks_exact_mut(cols)) {
                    let cells = out_row.iter_mut().zip(&mut sums).zip(g_row).zip(y_row);
                    for (((o, s), &g), &v) in cells {
                        let slope = g * A::slope_from_output(v);
                        o.write(slope);
                        *s += slope;
                    }
                }
            }
            Some(out) => {
                for ((g_row, y_row), out_row) in rows.zip(out.chunks_exact_mut(cols)) {
                    for ((o, &g), &v) in out_row.iter_mut().zip(g_row).zip(y_row) {
                        o.write(g * A::slope_from_output(v));
                    }
                }
            }
            None => {
                for (g_row, y_row) in rows {
                    for ((s, &g), &v) in sums.iter_mut().zip(g_row).zip(y_row) {
                        *s += g * A::slope_from_output(v);
                    }
                }
            }
        }
        sums
    }
}

/// Reads the upstream gradient and the saved output of a fused op and runs [`backward`].
fn backward_tensors(
    activation: FusedActivation,
    y: &Tensor,
    grad_y: &Tensor,
    want_x: bool,
    want_bias: bool,
) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
    let cols = y.dims()[1];
    let (y_view, grad_view) = (CpuView::of(OP, "y", y)?, CpuView::of(OP, "grad", grad_y)?);
    let (y_data, grad_data) = (y_view.f32()?, grad_view.f32()?);
    let (grad_x, grad_bias) = with_scalar_activation!(activation, A => {
        backward::<A>(&grad_data, &y_data, cols, want_x, want_bias)
    });
    let grad_x = grad_x
        .map(|g| Tensor::from_vec(g, y.shape(), y.device()))
        .transpose()?;
    let grad_bias = grad_bias
        .map(|g| Tensor::from_vec(g, cols, y.device()))
        .transpose()?;
    Ok((grad_x, grad_bias))
}

/// The backward of [`bias_activation`] as a plain function, for callers that run their own
/// backward pass: from the forward's output `y` (rows, n) and its gradient, the gradient of
/// the pre-activation `x` and, when `want_bias`, of the bias (the column sums). CPU only.
pub fn bias_activation_backward(
    activation: FusedActivation,
    y: &Tensor,
    grad_y: &Tensor,
    want_bias: bool,
) -> candle_core::Result<(Tensor, Option<Tensor>)> {
    expect_f32_rank(OP, "y", y, 2)?;
    expect_f32_and_gradient(OP, "y", y, grad_y)?;
    let (grad_x, grad_bias) = backward_tensors(activation, y, grad_y, true, want_bias)?;
    match grad_x {
        Some(grad_x) => Ok((grad_x, grad_bias)),
        None => Err(candle_core::Error::Msg(format!("{OP}: no input gradient"))),
    }
}

/// The gradient of a bias added to every row of a `(rows, n)` matrix, from the gradient of the
/// sum: its column sums, shape `(n)`. CPU only.
pub fn bias_gradient(grad: &Tensor) -> candle_core::Result<Tensor> {
    expect_f32_rank(OP, "grad", grad, 2)?;
    // With the identity, the saved output is never read: the gradient stands in for it.
    match backward_tensors(FusedActivation::Linear, grad, grad, false, true)? {
        (_, Some(grad_bias)) => Ok(grad_bias),
        (_, None) => Err(candle_core::Error::Msg(format!("{OP}: no bias gradient"))),
    }
}

/// The CPU kernel on `(x, bias)`.
struct BiasActivationOp {
    activation: FusedActivation,
}

impl CustomOp2 for BiasActivationOp {
    fn name(&self) -> &'static str {
        "rkeras-bias-activation"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        bias: &CpuStorage,
        bias_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x_data = cpu_f32(OP, "x", x, x_layout)?;
        let bias_data = cpu_f32(OP, "bias", bias, bias_layout)?;
        let cols = x_layout.dims()[1];
        let y =
            with_scalar_activation!(self.activation, A => forward::<A>(&x_data, &bias_data, cols));
        Ok((CpuStorage::F32(y), x_layout.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        bias: &Tensor,
        y: &Tensor,
        grad_y: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        backward_tensors(self.activation, y, grad_y, x.track_op(), bias.track_op())
    }
}

/// The CPU kernel on `x` alone (no bias).
pub(crate) struct ActivationOp {
    pub(crate) activation: FusedActivation,
}

impl CustomOp1 for ActivationOp {
    fn name(&self) -> &'static str {
        "rkeras-activation"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x_data = cpu_f32(OP, "x", x, x_layout)?;
        let cols = x_layout.dims()[1];
        let y = with_scalar_activation!(self.activation, A => forward::<A>(&x_data, &[], cols));
        Ok((CpuStorage::F32(y), x_layout.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, grad_y: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(backward_tensors(self.activation, y, grad_y, true, false)?.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{
        assert_close, gradients_against, random_tensor, random_var, values, Lcg,
    };
    use candle_core::{DType, Device, Var};

    const ALL: [FusedActivation; 12] = FusedActivation::ALL;

    /// The activation and its derivative at the pre-activation `z`, in f64, from Keras's
    /// definitions.
    fn reference(activation: FusedActivation, z: f64) -> (f64, f64) {
        let (scale, alpha) = (1.050_700_987_355_480_5, 1.673_263_242_354_377_3);
        let sigmoid = 1.0 / (1.0 + (-z).exp());
        let inside = |low: f64, high: f64| if z > low && z < high { 1.0 } else { 0.0 };
        match activation {
            FusedActivation::Linear => (z, 1.0),
            FusedActivation::Relu => (z.max(0.0), inside(0.0, f64::INFINITY)),
            FusedActivation::Sigmoid => (sigmoid, sigmoid * (1.0 - sigmoid)),
            FusedActivation::Tanh => (z.tanh(), 1.0 - z.tanh().powi(2)),
            FusedActivation::Elu if z > 0.0 => (z, 1.0),
            FusedActivation::Elu => (z.exp_m1(), z.exp()),
            FusedActivation::Selu if z > 0.0 => (scale * z, scale),
            FusedActivation::Selu => (scale * alpha * z.exp_m1(), scale * alpha * z.exp()),
            FusedActivation::Softplus => (z.exp().ln_1p(), sigmoid),
            FusedActivation::Softsign => (z / (1.0 + z.abs()), (1.0 + z.abs()).powi(-2)),
            FusedActivation::Exponential => (z.exp(), z.exp()),
            FusedActivation::HardSigmoid => {
                (((z + 3.0) / 6.0).clamp(0.0, 1.0), inside(-3.0, 3.0) / 6.0)
            }
            FusedActivation::Relu6 => (z.clamp(0.0, 6.0), inside(0.0, 6.0)),
            FusedActivation::LeakyRelu if z >= 0.0 => (z, inside(0.0, f64::INFINITY)),
            FusedActivation::LeakyRelu => (0.2 * z, 0.2),
        }
    }

    /// Output, grad_x and grad_bias of `sum(activation(x + bias) ⊙ upstream)` by naive loops.
    fn naive(
        activation: FusedActivation,
        x: &[f32],
        bias: &[f32],
        upstream: &[f32],
        cols: usize,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let (mut y, mut grad_x, mut grad_bias) = (vec![], vec![], vec![0.0; cols]);
        for (i, (&v, &u)) in x.iter().zip(upstream).enumerate() {
            let b = bias.get(i % cols).copied().unwrap_or(0.0);
            let (value, slope) = reference(activation, (v + b) as f64);
            y.push(value);
            grad_x.push(u as f64 * slope);
            grad_bias[i % cols] += u as f64 * slope;
        }
        (y, grad_x, grad_bias)
    }

    #[test]
    fn forward_and_gradients_match_naive_loops() -> candle_core::Result<()> {
        let mut rng = Lcg::new(7);
        for (rows, cols) in [(1, 1), (3, 5), (4, 1), (256, 784), (9, 3000), (1000, 49)] {
            for activation in ALL {
                let x = random_var(&mut rng, &[rows, cols]);
                // Spread the inputs to [-8, 8) so that sigmoid and tanh reach their tails, and
                // ReLU6 and the hard sigmoid their flat parts.
                x.set(&(x.as_tensor() * 8.0)?)?;
                let bias = random_var(&mut rng, &[cols]);
                let upstream = random_tensor(&mut rng, &[rows, cols]);
                let y = bias_activation(x.as_tensor(), Some(bias.as_tensor()), activation)?;
                let grads = gradients_against(&y, &upstream);
                let (want_y, want_gx, want_gb) = naive(
                    activation,
                    &values(x.as_tensor()),
                    &values(bias.as_tensor()),
                    &values(&upstream),
                    cols,
                );
                let what = format!("{activation:?} {rows}x{cols}");
                assert_close(&format!("{what} y"), &values(&y), &want_y, 1e-6);
                let grad_x = grads.get(x.as_tensor()).expect("x gradient");
                assert_close(&format!("{what} grad_x"), &values(grad_x), &want_gx, 1e-6);
                let grad_bias = grads.get(bias.as_tensor()).expect("bias gradient");
                assert_eq!(grad_bias.dims(), &[cols]);
                // Column sums of up to 1000 f32 terms.
                assert_close(
                    &format!("{what} grad_bias"),
                    &values(grad_bias),
                    &want_gb,
                    1e-4,
                );
            }
        }
        Ok(())
    }

    #[test]
    fn without_bias_matches_naive_loops() -> candle_core::Result<()> {
        let mut rng = Lcg::new(3);
        for (rows, cols) in [(2, 3), (300, 300)] {
            for activation in ALL {
                let x = random_var(&mut rng, &[rows, cols]);
                let upstream = random_tensor(&mut rng, &[rows, cols]);
                let y = bias_activation(x.as_tensor(), None, activation)?;
                let grads = gradients_against(&y, &upstream);
                let (want_y, want_gx, _) = naive(
                    activation,
                    &values(x.as_tensor()),
                    &[],
                    &values(&upstream),
                    cols,
                );
                let what = format!("{activation:?} {rows}x{cols} without bias");
                assert_close(&format!("{what} y"), &values(&y), &want_y, 1e-6);
                let grad_x = grads.get(x.as_tensor()).expect("x gradient");
                assert_close(&format!("{what} grad_x"), &values(grad_x), &want_gx, 1e-6);
            }
        }
        Ok(())
    }

    #[test]
    fn relu_gradient_is_zero_at_zero() -> candle_core::Result<()> {
        // x + bias = [-1, 0, 2]: gradients [0, 0, 1] for x, summed [0, 0, 1] for the bias.
        let x = Var::new(&[[-1.5f32, -0.5, 1.5]], &Device::Cpu)?;
        let bias = Var::new(&[0.5f32, 0.5, 0.5], &Device::Cpu)?;
        let y = bias_activation(x.as_tensor(), Some(bias.as_tensor()), FusedActivation::Relu)?;
        assert_eq!(values(&y), vec![0.0, 0.0, 2.0]);
        let grads = y.sum_all()?.backward()?;
        assert_eq!(
            values(grads.get(x.as_tensor()).unwrap()),
            vec![0.0, 0.0, 1.0]
        );
        assert_eq!(
            values(grads.get(bias.as_tensor()).unwrap()),
            vec![0.0, 0.0, 1.0]
        );
        Ok(())
    }

    #[test]
    fn only_the_tracked_argument_gets_a_gradient() -> candle_core::Result<()> {
        let mut rng = Lcg::new(11);
        let (x_var, bias_var) = (random_var(&mut rng, &[5, 4]), random_var(&mut rng, &[4]));
        let (x, bias) = (
            random_tensor(&mut rng, &[5, 4]),
            random_tensor(&mut rng, &[4]),
        );
        // Bias only: its gradient is the column sums of sigmoid'(z) (upstream 1).
        let y = bias_activation(&x, Some(bias_var.as_tensor()), FusedActivation::Sigmoid)?;
        let (_, _, want_gb) = naive(
            FusedActivation::Sigmoid,
            &values(&x),
            &values(bias_var.as_tensor()),
            &[1.0; 20],
            4,
        );
        let grads = y.sum_all()?.backward()?;
        assert_close(
            "bias only",
            &values(grads.get(bias_var.as_tensor()).unwrap()),
            &want_gb,
            1e-6,
        );
        assert!(grads.get(&x).is_none());
        let op = BiasActivationOp {
            activation: FusedActivation::Sigmoid,
        };
        let ones = Tensor::ones((5, 4), DType::F32, &Device::Cpu)?;
        let (gx, gb) = op.bwd(&x, bias_var.as_tensor(), &y, &ones)?;
        assert!(gx.is_none() && gb.is_some());
        // x only.
        let y = bias_activation(x_var.as_tensor(), Some(&bias), FusedActivation::Tanh)?;
        let (gx, gb) = BiasActivationOp {
            activation: FusedActivation::Tanh,
        }
        .bwd(x_var.as_tensor(), &bias, &y, &ones)?;
        assert!(gx.is_some() && gb.is_none());
        Ok(())
    }

    #[test]
    fn linear_without_bias_is_the_input_and_strided_inputs_are_read_in_order(
    ) -> candle_core::Result<()> {
        let x = Tensor::arange(0f32, 6., &Device::Cpu)?.reshape((2, 3))?;
        let same = bias_activation(&x, None, FusedActivation::Linear)?;
        assert_eq!(same.id(), x.id());
        // x^T = [[0, 3], [1, 4], [2, 5]] plus [10, 20].
        let bias = Tensor::new(&[10f32, 20.], &Device::Cpu)?;
        let y = bias_activation(&x.t()?, Some(&bias), FusedActivation::Linear)?;
        assert_eq!(values(&y), vec![10., 23., 11., 24., 12., 25.]);
        Ok(())
    }

    #[test]
    fn composed_fallback_agrees_with_the_kernel() -> candle_core::Result<()> {
        let mut rng = Lcg::new(5);
        // Inputs in [-5, 5), reaching ReLU6's and the hard sigmoid's flat parts.
        let (x, bias) = (
            (random_tensor(&mut rng, &[6, 7]) * 4.0)?,
            random_tensor(&mut rng, &[7]),
        );
        for activation in ALL {
            let fused = values(&bias_activation(&x, Some(&bias), activation)?);
            let reference: Vec<f64> = values(&composed(&x.broadcast_add(&bias)?, activation)?)
                .iter()
                .map(|&v| v as f64)
                .collect();
            assert_close(&format!("{activation:?}"), &fused, &reference, 1e-6);
        }
        Ok(())
    }

    #[test]
    fn any_shape_and_dtype_without_bias() -> candle_core::Result<()> {
        let mut rng = Lcg::new(13);
        let x = (random_tensor(&mut rng, &[2, 3, 4]) * 4.0)?;
        let upstream = random_tensor(&mut rng, &[2, 3, 4]);
        for activation in ALL {
            let y = fused_activation(&x, activation)?;
            assert_eq!(y.dims(), &[2, 3, 4]);
            let (want_y, want_gx, _) = naive(activation, &values(&x), &[], &values(&upstream), 4);
            let what = format!("{activation:?} rank 3");
            assert_close(&what, &values(&y), &want_y, 1e-6);
            let grad = fused_activation_backward(activation, &y, &upstream)?;
            assert_close(&what, &values(&grad), &want_gx, 1e-6);
            // f64 runs the composed form.
            let y64 = fused_activation(&x.to_dtype(DType::F64)?, activation)?;
            assert_eq!(y64.dtype(), DType::F64);
            assert_close(&what, &values(&y64.to_dtype(DType::F32)?), &want_y, 1e-6);
        }
        // A scalar, and no element at all.
        let scalar = Tensor::new(-1f32, &Device::Cpu)?;
        let y = fused_activation(&scalar, FusedActivation::Elu)?;
        assert!((y.to_scalar::<f32>()? + 0.632_120_6).abs() < 1e-6);
        let grad = fused_activation_backward(FusedActivation::Elu, &y, &scalar.ones_like()?)?;
        assert!((grad.to_scalar::<f32>()? - 0.367_879_4).abs() < 1e-6);
        let empty = Tensor::zeros((2, 0), DType::F32, &Device::Cpu)?;
        assert_eq!(
            fused_activation(&empty, FusedActivation::Tanh)?.dims(),
            &[2, 0]
        );
        let grad = fused_activation_backward(FusedActivation::Tanh, &empty, &empty)?;
        assert_eq!(grad.dims(), &[2, 0]);
        Ok(())
    }

    #[test]
    fn the_bias_gradient_is_the_column_sums() -> candle_core::Result<()> {
        let mut rng = Lcg::new(41);
        for (rows, cols) in [(1, 1), (3, 5), (256, 784)] {
            let grad = random_tensor(&mut rng, &[rows, cols]);
            let data = values(&grad);
            let want: Vec<f64> = (0..cols)
                .map(|c| (0..rows).map(|r| data[r * cols + c] as f64).sum())
                .collect();
            let got = bias_gradient(&grad)?;
            assert_eq!(got.dims(), &[cols]);
            assert_close(&format!("{rows}x{cols}"), &values(&got), &want, 1e-5);
        }
        assert!(bias_gradient(&Tensor::zeros(4, DType::F32, &Device::Cpu)?).is_err());
        Ok(())
    }

    #[test]
    fn arguments_are_checked() {
        let x = Tensor::zeros((2, 3), DType::F32, &Device::Cpu).unwrap();
        let message = |r: candle_core::Result<Tensor>| r.unwrap_err().to_string();
        let short_bias = Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap();
        let m = message(bias_activation(
            &x,
            Some(&short_bias),
            FusedActivation::Relu,
        ));
        assert!(
            m.contains("one value per column") && m.contains("[2, 3]") && m.contains("[2]"),
            "{m}"
        );
        let flat = Tensor::zeros(6, DType::F32, &Device::Cpu).unwrap();
        let m = message(bias_activation(&flat, None, FusedActivation::Relu));
        assert!(m.contains("rank 2"), "{m}");
        let ints = Tensor::zeros((2, 3), DType::U32, &Device::Cpu).unwrap();
        let m = message(bias_activation(&ints, None, FusedActivation::Relu));
        assert!(m.contains("f32"), "{m}");
    }
}
