//! The arithmetic an optimizer's formulas are written in, once for both places they run: one
//! `f32` element at a time in the host kernel's loop, and whole tensors (candle ops, any device)
//! for the other variables. Each operation rounds the same way on both.

use candle_core::{Result, Tensor};

/// A value an update formula computes with: an `f32` element on the host, a tensor elsewhere.
/// Constants are `f32`, as Keras casts them to the variable's dtype.
pub trait Operand: Clone + Sized {
    /// `self + other`.
    fn add(&self, other: &Self) -> Result<Self>;
    /// `self - other`.
    fn sub(&self, other: &Self) -> Result<Self>;
    /// `self · other`.
    fn mul(&self, other: &Self) -> Result<Self>;
    /// `self / other`.
    fn div(&self, other: &Self) -> Result<Self>;
    /// The absolute value.
    fn abs(&self) -> Result<Self>;
    /// `self · self`.
    fn square(&self) -> Result<Self>;
    /// The square root.
    fn sqrt(&self) -> Result<Self>;
    /// The larger of `self` and `other`.
    fn maximum(&self, other: &Self) -> Result<Self>;
    /// `self · factor`.
    fn scale(&self, factor: f32) -> Result<Self>;
    /// `self + constant`.
    fn offset(&self, constant: f32) -> Result<Self>;
    /// `self / divisor`, a true division (not a multiplication by the reciprocal).
    fn divide_by(&self, divisor: f32) -> Result<Self>;
    /// `self` clamped to `[low, high]`.
    fn clamp(&self, low: f32, high: f32) -> Result<Self>;
    /// Zero for a subnormal element, for the optimizer's slots (TensorFlow runs its CPU kernels
    /// with subnormals flushed); tensors are left as they are.
    fn flush_denormal(self) -> Self;
}

impl Operand for f32 {
    #[inline(always)]
    fn add(&self, other: &Self) -> Result<Self> {
        Ok(self + other)
    }

    #[inline(always)]
    fn sub(&self, other: &Self) -> Result<Self> {
        Ok(self - other)
    }

    #[inline(always)]
    fn mul(&self, other: &Self) -> Result<Self> {
        Ok(self * other)
    }

    #[inline(always)]
    fn div(&self, other: &Self) -> Result<Self> {
        Ok(self / other)
    }

    #[inline(always)]
    fn abs(&self) -> Result<Self> {
        Ok(f32::abs(*self))
    }

    #[inline(always)]
    fn square(&self) -> Result<Self> {
        Ok(self * self)
    }

    #[inline(always)]
    fn sqrt(&self) -> Result<Self> {
        Ok(f32::sqrt(*self))
    }

    #[inline(always)]
    fn maximum(&self, other: &Self) -> Result<Self> {
        Ok(self.max(*other))
    }

    #[inline(always)]
    fn scale(&self, factor: f32) -> Result<Self> {
        Ok(self * factor)
    }

    #[inline(always)]
    fn offset(&self, constant: f32) -> Result<Self> {
        Ok(self + constant)
    }

    #[inline(always)]
    fn divide_by(&self, divisor: f32) -> Result<Self> {
        Ok(self / divisor)
    }

    #[inline(always)]
    fn clamp(&self, low: f32, high: f32) -> Result<Self> {
        Ok(self.max(low).min(high))
    }

    #[inline(always)]
    fn flush_denormal(self) -> Self {
        flush_denormal(self)
    }
}

impl Operand for Tensor {
    fn add(&self, other: &Self) -> Result<Self> {
        self + other
    }

    fn sub(&self, other: &Self) -> Result<Self> {
        self - other
    }

    fn mul(&self, other: &Self) -> Result<Self> {
        self * other
    }

    fn div(&self, other: &Self) -> Result<Self> {
        self / other
    }

    fn abs(&self) -> Result<Self> {
        Tensor::abs(self)
    }

    fn square(&self) -> Result<Self> {
        self.sqr()
    }

    fn sqrt(&self) -> Result<Self> {
        Tensor::sqrt(self)
    }

    fn maximum(&self, other: &Self) -> Result<Self> {
        Tensor::maximum(self, other)
    }

    fn scale(&self, factor: f32) -> Result<Self> {
        self.affine(factor as f64, 0.0)
    }

    fn offset(&self, constant: f32) -> Result<Self> {
        self + constant as f64
    }

    fn divide_by(&self, divisor: f32) -> Result<Self> {
        let divisor = Tensor::new(divisor, self.device())?.to_dtype(self.dtype())?;
        self.broadcast_div(&divisor)
    }

    fn clamp(&self, low: f32, high: f32) -> Result<Self> {
        Tensor::clamp(self, low, high)
    }

    fn flush_denormal(self) -> Self {
        self
    }
}

/// Zero for a subnormal value, for optimizer slots. Moments of weights whose gradient stays zero
/// (the corner pixels of MNIST) decay into the subnormal range, where every arithmetic
/// instruction costs ~100 cycles: the update of a batch-16 step took a third of the step.
/// TensorFlow runs its CPU kernels with denormals flushed to zero, so Keras's moments do the
/// same. On x86-64 the host update also runs under [`rkeras_ops::FlushDenormals`], which flushes
/// the intermediate results too; elsewhere this keeps at least the stored moments as Keras's.
#[inline(always)]
pub(crate) fn flush_denormal(x: f32) -> f32 {
    if x.abs() < f32::MIN_POSITIVE {
        0.0
    } else {
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn subnormals_become_zero_and_normals_stay() {
        assert_eq!(flush_denormal(f32::MIN_POSITIVE / 2.0), 0.0);
        assert_eq!(flush_denormal(-1e-40), 0.0);
        assert_eq!(flush_denormal(f32::MIN_POSITIVE), f32::MIN_POSITIVE);
        assert_eq!(flush_denormal(-0.5), -0.5);
    }

    #[test]
    fn elements_and_tensors_compute_alike() -> Result<()> {
        let (a, b) = ([0.3f32, -2.5, 7.0], [1.7f32, 0.1, -3.0]);
        let apply = |f: &dyn Fn(&f32, &f32) -> Result<f32>,
                     g: &dyn Fn(&Tensor, &Tensor) -> Result<Tensor>|
         -> Result<()> {
            let host: Vec<f32> = a
                .iter()
                .zip(&b)
                .map(|(x, y)| f(x, y))
                .collect::<Result<_>>()?;
            let (ta, tb) = (
                Tensor::new(&a, &Device::Cpu)?,
                Tensor::new(&b, &Device::Cpu)?,
            );
            assert_eq!(host, g(&ta, &tb)?.to_vec1::<f32>()?);
            Ok(())
        };
        apply(&|x, y| x.add(y), &|x, y| Operand::add(x, y))?;
        apply(&|x, y| x.sub(y), &|x, y| Operand::sub(x, y))?;
        apply(&|x, y| Operand::mul(x, y), &|x, y| Operand::mul(x, y))?;
        apply(&|x, y| x.div(y), &|x, y| Operand::div(x, y))?;
        apply(&|x, _| Operand::abs(x), &|x, _| Operand::abs(x))?;
        apply(&|x, y| x.maximum(y), &|x, y| Operand::maximum(x, y))?;
        apply(&|x, _| x.square(), &|x, _| x.square())?;
        apply(&|x, _| Operand::sqrt(&f32::abs(*x)), &|x, _| {
            Operand::sqrt(&x.abs()?)
        })?;
        apply(&|x, _| x.scale(0.1), &|x, _| x.scale(0.1))?;
        apply(&|x, _| x.offset(1e-7), &|x, _| x.offset(1e-7))?;
        apply(&|x, _| x.divide_by(3.0), &|x, _| x.divide_by(3.0))?;
        apply(&|x, _| Operand::clamp(x, -1.0, 2.0), &|x, _| {
            Operand::clamp(x, -1.0, 2.0)
        })
    }
}
