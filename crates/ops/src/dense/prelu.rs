//! The parametric ReLU over the rows of a matrix, with one learned slope per column:
//! `x` where `x > 0`, else `alpha · x` (Keras's `PReLU`, `relu(x) - alpha · relu(-x)`).

use std::mem::MaybeUninit;

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use super::gradient_args::expect_f32_and_gradient;
use super::parallel::write_rows;
use crate::check::{expect_f32_rank, expect_same_device};
use crate::error::OpsError;
use crate::simd::{vectorized, Kernel};
use crate::storage::{cpu_f32, CpuView};

/// Name used in messages.
const OP: &str = "prelu";

/// `x` where `x > 0`, else `alpha · x`, for `x` of shape `(rows, n)` and `alpha` of shape `(n)`
/// (one slope per column), in one pass; the backward pass is one pass too (see
/// [`prelu_backward`]). Candle ops on devices without the kernel.
pub fn prelu(x: &Tensor, alpha: &Tensor) -> candle_core::Result<Tensor> {
    check(x, alpha)?;
    if !crate::kernels_on(x.device()) {
        // relu(x) + alpha · min(x, 0), as Keras writes it.
        return x.relu()? + x.minimum(0.0)?.broadcast_mul(alpha)?;
    }
    x.apply_op2(alpha, PreluOp)
}

/// The gradients of [`prelu`] from its input `x`, its slopes `alpha` and the output's gradient
/// (CPU only): `grad ⊙ (1 where x > 0, else alpha)` for `x` when `want_x`, and the column sums
/// of `grad ⊙ min(x, 0)` for `alpha` when `want_alpha`, in one pass split over rows when large.
pub fn prelu_backward(
    x: &Tensor,
    alpha: &Tensor,
    grad_y: &Tensor,
    want_x: bool,
    want_alpha: bool,
) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
    let cols = check(x, alpha)?;
    expect_f32_and_gradient(OP, "x", x, grad_y)?;
    let views = [
        CpuView::of(OP, "x", x)?,
        CpuView::of(OP, "alpha", alpha)?,
        CpuView::of(OP, "grad_y", grad_y)?,
    ];
    let (x_data, alpha_data, grad_data) = (views[0].f32()?, views[1].f32()?, views[2].f32()?);
    if cols == 0 {
        let empty = |t: &Tensor| Tensor::zeros(t.shape(), t.dtype(), t.device());
        return Ok((
            want_x.then(|| empty(x)).transpose()?,
            want_alpha.then(|| empty(alpha)).transpose()?,
        ));
    }
    // The input's gradient is computed even when not wanted (only a first layer's input is
    // not): one pass either way.
    // SAFETY: `BackwardRows` writes every cell of the slice it is given.
    let (grad_x, partial_sums) = unsafe {
        write_rows(x_data.len(), cols, |range, out| {
            let span = range.start * cols..range.end * cols;
            vectorized(BackwardRows {
                x: &x_data[span.clone()],
                grad: &grad_data[span],
                alpha: &alpha_data,
                out,
                want_alpha,
            })
        })
    };
    let grad_alpha = want_alpha.then(|| {
        let mut total = vec![0.0f32; cols];
        for sums in &partial_sums {
            for (t, s) in total.iter_mut().zip(sums) {
                *t += s;
            }
        }
        Tensor::from_vec(total, cols, x.device())
    });
    let grad_x = want_x.then(|| Tensor::from_vec(grad_x, x.shape(), x.device()));
    Ok((grad_x.transpose()?, grad_alpha.transpose()?))
}

/// Checks the arguments; returns the number of columns.
fn check(x: &Tensor, alpha: &Tensor) -> candle_core::Result<usize> {
    let cols = expect_f32_rank(OP, "x", x, 2)?[1];
    let alpha_len = expect_f32_rank(OP, "alpha", alpha, 1)?[0];
    expect_same_device(OP, x, alpha)?;
    if alpha_len != cols {
        return Err(OpsError::ShapeMismatch {
            op: OP,
            expected: "alpha must have one value per column of x",
            lhs_name: "x",
            lhs: x.shape().clone(),
            rhs_name: "alpha",
            rhs: alpha.shape().clone(),
        }
        .into());
    }
    Ok(cols)
}

/// The backward over some whole rows: `grad_x` into `out`, and the column sums of
/// `grad ⊙ min(x, 0)` (empty unless `want_alpha`).
struct BackwardRows<'a> {
    x: &'a [f32],
    grad: &'a [f32],
    alpha: &'a [f32],
    out: &'a mut [MaybeUninit<f32>],
    want_alpha: bool,
}

impl Kernel for BackwardRows<'_> {
    type Output = Vec<f32>;

    #[inline(always)]
    fn run(self) -> Vec<f32> {
        let cols = self.alpha.len();
        let mut sums = vec![0.0f32; if self.want_alpha { cols } else { 0 }];
        let rows = self.x.chunks_exact(cols).zip(self.grad.chunks_exact(cols));
        for ((x_row, g_row), out_row) in rows.zip(self.out.chunks_exact_mut(cols)) {
            let cells = out_row.iter_mut().zip(x_row).zip(g_row).zip(self.alpha);
            for (((o, &x), &g), &a) in cells {
                o.write(if x > 0.0 { g } else { g * a });
            }
            if self.want_alpha {
                for ((s, &x), &g) in sums.iter_mut().zip(x_row).zip(g_row) {
                    *s += g * x.min(0.0);
                }
            }
        }
        sums
    }
}

/// The forward over some whole rows, into `y`.
struct ForwardRows<'a> {
    x: &'a [f32],
    alpha: &'a [f32],
    y: &'a mut [MaybeUninit<f32>],
}

impl Kernel for ForwardRows<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let cols = self.alpha.len();
        for (y_row, x_row) in self.y.chunks_exact_mut(cols).zip(self.x.chunks_exact(cols)) {
            for ((out, &x), &a) in y_row.iter_mut().zip(x_row).zip(self.alpha) {
                out.write(if x > 0.0 { x } else { a * x });
            }
        }
    }
}

/// The CPU kernel on `(x, alpha)`.
struct PreluOp;

impl CustomOp2 for PreluOp {
    fn name(&self) -> &'static str {
        "rkeras-prelu"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        alpha: &CpuStorage,
        alpha_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x_data = cpu_f32(OP, "x", x, x_layout)?;
        let alpha_data = cpu_f32(OP, "alpha", alpha, alpha_layout)?;
        let cols = alpha_data.len();
        if cols == 0 {
            return Ok((CpuStorage::F32(Vec::new()), x_layout.shape().clone()));
        }
        // SAFETY: `ForwardRows` writes every cell of its rows.
        let (y, _) = unsafe {
            write_rows(x_data.len(), cols, |rows, y| {
                vectorized(ForwardRows {
                    x: &x_data[rows.start * cols..rows.end * cols],
                    alpha: &alpha_data,
                    y,
                })
            })
        };
        Ok((CpuStorage::F32(y), x_layout.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        alpha: &Tensor,
        _y: &Tensor,
        grad_y: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        prelu_backward(x, alpha, grad_y, x.track_op(), alpha.track_op())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{
        assert_close, gradients_against, random_tensor, random_var, values, Lcg,
    };
    use candle_core::{DType, Device};

    #[test]
    fn forward_and_gradients_match_naive_loops() -> candle_core::Result<()> {
        let mut rng = Lcg::new(23);
        for (rows, cols) in [(1, 1), (3, 5), (256, 784), (1000, 49)] {
            let (x, alpha) = (
                random_var(&mut rng, &[rows, cols]),
                random_var(&mut rng, &[cols]),
            );
            let upstream = random_tensor(&mut rng, &[rows, cols]);
            let y = prelu(x.as_tensor(), alpha.as_tensor())?;
            let grads = gradients_against(&y, &upstream);
            let (xs, alphas, us) = (
                values(x.as_tensor()),
                values(alpha.as_tensor()),
                values(&upstream),
            );
            let (mut want_y, mut want_gx, mut want_ga) = (vec![], vec![], vec![0.0; cols]);
            for (i, (&v, &u)) in xs.iter().zip(&us).enumerate() {
                let (v, u, a) = (v as f64, u as f64, alphas[i % cols] as f64);
                want_y.push(if v > 0.0 { v } else { a * v });
                want_gx.push(if v > 0.0 { u } else { a * u });
                want_ga[i % cols] += u * v.min(0.0);
            }
            let what = format!("{rows}x{cols}");
            assert_close(&format!("{what} y"), &values(&y), &want_y, 1e-6);
            let grad_x = grads.get(x.as_tensor()).expect("x gradient");
            assert_close(&format!("{what} grad_x"), &values(grad_x), &want_gx, 1e-6);
            let grad_alpha = grads.get(alpha.as_tensor()).expect("alpha gradient");
            assert_close(
                &format!("{what} grad_alpha"),
                &values(grad_alpha),
                &want_ga,
                1e-4,
            );
            let composed = crate::with_composed_ops(|| prelu(x.as_tensor(), alpha.as_tensor()))?;
            let want: Vec<f64> = values(&y).iter().map(|&v| v as f64).collect();
            assert_close(&format!("{what} composed"), &values(&composed), &want, 1e-6);
        }
        Ok(())
    }

    #[test]
    fn only_wanted_gradients_and_checked_arguments() -> candle_core::Result<()> {
        // x = [[-2, 3]], alpha = [0.5, 0.25]: y = [-1, 3]; grad_x = [0.5, 1];
        // grad_alpha = [min(-2, 0), min(3, 0)] = [-2, 0].
        let x = Tensor::new(&[[-2f32, 3.0]], &Device::Cpu)?;
        let alpha = Tensor::new(&[0.5f32, 0.25], &Device::Cpu)?;
        assert_eq!(values(&prelu(&x, &alpha)?), vec![-1.0, 3.0]);
        let ones = x.ones_like()?;
        let (gx, ga) = prelu_backward(&x, &alpha, &ones, true, true)?;
        assert_eq!(values(&gx.expect("x")), vec![0.5, 1.0]);
        assert_eq!(values(&ga.expect("alpha")), vec![-2.0, 0.0]);
        let (gx, ga) = prelu_backward(&x, &alpha, &ones, false, true)?;
        assert!(gx.is_none() && ga.is_some());
        let short = Tensor::zeros(3, DType::F32, &Device::Cpu)?;
        let message = prelu(&x, &short).unwrap_err().to_string();
        assert!(message.contains("one value per column"), "{message}");
        let empty = Tensor::zeros((4, 0), DType::F32, &Device::Cpu)?;
        let no_alpha = Tensor::zeros(0, DType::F32, &Device::Cpu)?;
        assert_eq!(prelu(&empty, &no_alpha)?.dims(), &[4, 0]);
        let (gx, ga) = prelu_backward(&empty, &no_alpha, &empty, true, true)?;
        assert_eq!(
            (gx.expect("x").dims(), ga.expect("alpha").dims()),
            (&[4, 0][..], &[0][..])
        );
        Ok(())
    }
}
