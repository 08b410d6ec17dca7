//! Runs an elementwise loop compiled for the widest vector instructions the CPU offers.
//!
//! Rust compiles for the baseline of the target (SSE2 on x86-64: four f32 lanes, no FMA). The
//! kernels' loops are written so that LLVM vectorises them (no branches, no calls, as in the
//! crate's `math` module); [`vectorized`] runs such a loop (a [`Kernel`]) inside a function
//! compiled with AVX-512 or AVX2+FMA when the CPU has them, chosen at run time, so one binary is
//! fast on any x86-64 CPU. Public so that the other crates' host loops (the optimizers' updates) can
//! use it too.

/// A loop to run through [`vectorized`]. Implementations mark `run` `#[inline(always)]`: that is
/// what compiles its body into the dispatcher's target features (a closure would stay a separate
/// function, compiled for the baseline, once its body grows past the inliner's threshold).
pub trait Kernel {
    /// What the loop returns.
    type Output;

    /// Runs the loop.
    fn run(self) -> Self::Output;
}

/// Runs `kernel`, compiled with AVX-512 (or AVX2 and FMA) where this CPU has them. The kernel
/// must not hand its work to other threads (their code is not compiled with the features).
#[inline(always)]
pub fn vectorized<K: Kernel>(kernel: K) -> K::Output {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports the features `with_avx512` is compiled for.
            return unsafe { x86::with_avx512(kernel) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports the features `with_avx2` is compiled for.
            return unsafe { x86::with_avx2(kernel) };
        }
    }
    kernel.run()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Kernel;

    /// `kernel.run()` compiled with AVX-512F. Callers must check that the CPU has it.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn with_avx512<K: Kernel>(kernel: K) -> K::Output {
        kernel.run()
    }

    /// `kernel.run()` compiled with AVX2 and FMA. Callers must check that the CPU has them.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn with_avx2<K: Kernel>(kernel: K) -> K::Output {
        kernel.run()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sum of squares of a slice.
    struct SumOfSquares<'a>(&'a [f32]);

    impl Kernel for SumOfSquares<'_> {
        type Output = f32;

        #[inline(always)]
        fn run(self) -> f32 {
            self.0.iter().map(|v| v * v).sum()
        }
    }

    #[test]
    fn runs_the_kernel_and_returns_its_value() {
        let values: Vec<f32> = (1..=10).map(|v| v as f32).collect();
        assert_eq!(vectorized(SumOfSquares(&values)), 385.0);
    }
}
