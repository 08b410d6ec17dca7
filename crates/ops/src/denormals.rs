//! Subnormal floats flushed to zero on the calling thread for a scope, as TensorFlow runs its
//! CPU kernels.
//!
//! TensorFlow wraps every CPU kernel, and every thread of its pools, in
//! `port::ScopedFlushDenormal` (`tensorflow/core/common_runtime/kernel_and_device.cc`,
//! `xla/tsl/platform/threadpool.cc`), which sets the processor's flush-to-zero and
//! denormals-are-zero modes: a subnormal result becomes zero, and a subnormal input reads as
//! zero. Besides matching those results, the modes keep the processor fast: on x86-64 every
//! instruction that produces or reads a subnormal otherwise takes a microcode assist of about a
//! hundred cycles.
//!
//! The modes are set on x86-64, in the MXCSR register that SSE, AVX and AVX-512 instructions
//! read. Elsewhere [`FlushDenormals`] changes nothing.

/// Flush-to-zero (bit 15) and denormals-are-zero (bit 6) in x86-64's MXCSR.
#[cfg(target_arch = "x86_64")]
const FLUSH_MODES: u32 = (1 << 15) | (1 << 6);

/// While alive, the calling thread flushes subnormal results to zero and reads subnormal inputs
/// as zero (on x86-64; elsewhere nothing changes). Dropping it restores the thread's previous
/// modes. For loops that TensorFlow would run with denormals flushed, such as an optimizer's
/// update, where slowly decaying moments pass through the subnormal range.
#[must_use = "the modes are restored when the guard is dropped"]
pub struct FlushDenormals {
    /// The control register as the guard found it.
    #[cfg(target_arch = "x86_64")]
    previous: u32,
}

impl FlushDenormals {
    /// Sets the modes on this thread until the guard is dropped.
    pub fn new() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let previous = x86::read_control();
            x86::write_control(previous | FLUSH_MODES);
            Self { previous }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Self {}
    }
}

impl Default for FlushDenormals {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for FlushDenormals {
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        x86::write_control(self.previous);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::asm;

    /// The thread's MXCSR register.
    pub(super) fn read_control() -> u32 {
        let mut value = 0u32;
        // SAFETY: `stmxcsr` stores the 4-byte register into `value`, which outlives the
        // instruction; it touches nothing else.
        unsafe {
            asm!("stmxcsr [{}]", in(reg) &mut value, options(nostack, preserves_flags));
        }
        value
    }

    /// Sets the thread's MXCSR register to `value`. The block is not marked `readonly`: the
    /// compiler must assume it may write memory, so the loads and stores of the work inside a
    /// guard cannot move across the mode changes at its ends.
    pub(super) fn write_control(value: u32) {
        // SAFETY: `ldmxcsr` reads the 4-byte `value`. Every value written here is one read from
        // the register, possibly with the two flush bits set, so no reserved bit is set (which
        // would fault) and no exception is unmasked.
        unsafe {
            asm!("ldmxcsr [{}]", in(reg) &value, options(nostack, preserves_flags));
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use std::hint::black_box;

    /// The smallest normal f32 halved: a subnormal result.
    fn halved_smallest_normal() -> f32 {
        black_box(f32::MIN_POSITIVE) * black_box(0.5)
    }

    #[test]
    fn subnormals_are_flushed_inside_the_guard_and_kept_after_it() {
        let subnormal = halved_smallest_normal();
        assert!(subnormal > 0.0 && subnormal < f32::MIN_POSITIVE);
        {
            let _flush = FlushDenormals::new();
            // Flush-to-zero: a subnormal result is zero.
            assert_eq!(halved_smallest_normal(), 0.0);
            // Denormals-are-zero: a subnormal input reads as zero.
            assert_eq!(black_box(subnormal) * black_box(4.0), 0.0);
            assert!(black_box(subnormal) <= black_box(0.0));
            // Normal values are untouched.
            assert_eq!(
                black_box(f32::MIN_POSITIVE) * black_box(2.0),
                2.0 * f32::MIN_POSITIVE
            );
        }
        assert_eq!(halved_smallest_normal(), subnormal);
        assert_eq!(black_box(subnormal) * black_box(2.0), f32::MIN_POSITIVE);
    }

    #[test]
    fn nested_guards_restore_the_modes_they_found() {
        let outer = FlushDenormals::new();
        {
            let _inner = FlushDenormals::new();
            assert_eq!(halved_smallest_normal(), 0.0);
        }
        // The inner guard found the modes set, and leaves them set.
        assert_eq!(halved_smallest_normal(), 0.0);
        drop(outer);
        assert!(halved_smallest_normal() > 0.0);
    }
}
