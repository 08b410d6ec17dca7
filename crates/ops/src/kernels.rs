//! Where rkeras's own kernels run: on the CPU, unless a scope asks for the composed (candle op)
//! implementations that other devices run, so that those can be tested on the CPU against the
//! kernels.

use std::cell::Cell;

use candle_core::Device;

thread_local! {
    static COMPOSED_ONLY: Cell<bool> = const { Cell::new(false) };
}

/// Whether rkeras's kernels (and the hand-written backward passes built on them) run for
/// tensors on `device`: on the CPU, outside [`with_composed_ops`].
pub fn kernels_on(device: &Device) -> bool {
    device.is_cpu() && !COMPOSED_ONLY.get()
}

/// Runs `f` with every op on this thread taking its composed implementation, the one CUDA and
/// Metal run, even on the CPU.
pub fn with_composed_ops<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            COMPOSED_ONLY.set(self.0);
        }
    }
    let _restore = Restore(COMPOSED_ONLY.replace(true));
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_composed_scope_turns_the_kernels_off_until_it_ends() {
        assert!(kernels_on(&Device::Cpu));
        let nested = with_composed_ops(|| {
            let inner = with_composed_ops(|| kernels_on(&Device::Cpu));
            (inner, kernels_on(&Device::Cpu))
        });
        assert_eq!(nested, (false, false));
        assert!(kernels_on(&Device::Cpu));
    }
}
