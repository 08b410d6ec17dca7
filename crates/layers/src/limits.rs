//! Bounds on the sizes a layer may be asked for, checked before anything is allocated: a shape
//! or window from a hostile file, or a typo in a program, is an error naming the layer, never
//! an abort of the process.

use std::cell::Cell;

use crate::{Error, Result, Size2, SymbolicShape};

/// The most values one sample of any tensor in a graph may hold (2³²).
pub const MAX_SAMPLE_ELEMENTS: u64 = 1 << 32;

/// The most values one weight may hold (2³², 16 GiB of f32).
pub const MAX_WEIGHT_ELEMENTS: u64 = 1 << 32;

/// The largest window, stride, dilation or up-sampling factor a layer may have (2¹⁶).
pub const MAX_WINDOW: usize = 1 << 16;

thread_local! {
    /// How many more weight values layers built on this thread may create (see
    /// [`with_weight_budget`]); unbounded outside such a scope.
    static WEIGHT_BUDGET: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Checks a layer's output shape: every known dimension after the batch multiplies to at most
/// [`MAX_SAMPLE_ELEMENTS`], and no dimension is zero.
pub fn check_shape(layer: &str, shape: &SymbolicShape) -> Result<()> {
    let features = shape.dims().iter().skip(1).flatten();
    if shape.dims().iter().flatten().any(|&d| d == 0) {
        return Err(Error::shape(layer, "no dimension of size 0", shape));
    }
    let product = features
        .map(|&d| d as u64)
        .try_fold(1u64, u64::checked_mul)
        .filter(|&n| n <= MAX_SAMPLE_ELEMENTS);
    match product {
        Some(_) => Ok(()),
        None => Err(Error::shape(
            layer,
            format!("at most {MAX_SAMPLE_ELEMENTS} values per sample"),
            shape,
        )),
    }
}

/// Checks a window-like option (`kernel_size`, `strides`, `pool_size`...): positive and at most
/// [`MAX_WINDOW`] each way.
pub fn check_window(layer: &str, what: &str, size: Size2) -> Result<()> {
    if !size.is_positive() || size.0 > MAX_WINDOW || size.1 > MAX_WINDOW {
        return Err(Error::config(
            layer,
            format!("{what} {size:?} must be positive and at most {MAX_WINDOW}"),
        ));
    }
    Ok(())
}

/// The number of values of a weight of `shape` that `layer` is about to create, once checked
/// against [`MAX_WEIGHT_ELEMENTS`] and charged to the thread's budget, if any.
pub fn claim_weight(layer: &str, shape: &[usize]) -> Result<usize> {
    let count = shape
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d as u64))
        .filter(|&n| n <= MAX_WEIGHT_ELEMENTS)
        .ok_or_else(|| {
            Error::config(
                layer,
                format!("a weight of shape {shape:?} holds more than {MAX_WEIGHT_ELEMENTS} values"),
            )
        })?;
    if let Some(left) = WEIGHT_BUDGET.get() {
        let rest = left.checked_sub(count).ok_or_else(|| {
            Error::config(
                layer,
                format!("a weight of shape {shape:?} exceeds the {left} weight values left"),
            )
        })?;
        WEIGHT_BUDGET.set(Some(rest));
    }
    Ok(count as usize)
}

/// Runs `f` with at most `budget` weight values to be created by the layers it builds on this
/// thread (a loader passes the number of values its file holds); returns what `f` returned and
/// the budget left.
pub fn with_weight_budget<T>(budget: u64, f: impl FnOnce() -> T) -> (T, u64) {
    struct Restore(Option<u64>);
    impl Drop for Restore {
        fn drop(&mut self) {
            WEIGHT_BUDGET.set(self.0);
        }
    }
    let _restore = Restore(WEIGHT_BUDGET.replace(Some(budget)));
    let result = f();
    (result, WEIGHT_BUDGET.get().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_bounded_per_sample_and_never_empty() {
        let ok = |dims: &[usize]| check_shape("l", &SymbolicShape::batched(None, dims)).is_ok();
        assert!(ok(&[1 << 16, 1 << 16]));
        assert!(!ok(&[1 << 16, (1 << 16) + 1]));
        assert!(!ok(&[usize::MAX, usize::MAX]));
        assert!(!ok(&[28, 0]));
        assert!(check_shape("l", &SymbolicShape(vec![None, None, Some(3)])).is_ok());
    }

    #[test]
    fn windows_are_positive_and_bounded() {
        assert!(check_window("l", "pool_size", Size2(2, 3)).is_ok());
        assert!(check_window("l", "pool_size", Size2(0, 3)).is_err());
        let err = check_window("c", "strides", Size2(1, MAX_WINDOW + 1)).unwrap_err();
        assert!(err.to_string().contains("'c'") && err.to_string().contains("strides"));
    }

    #[test]
    fn weights_are_bounded_and_charged_to_the_budget() {
        assert_eq!(claim_weight("d", &[784, 49]).unwrap(), 784 * 49);
        let err = claim_weight("huge", &[784, 1 << 40])
            .unwrap_err()
            .to_string();
        assert!(err.contains("'huge'"), "{err}");
        let ((), left) = with_weight_budget(100, || {
            assert!(claim_weight("a", &[10, 8]).is_ok());
            assert!(claim_weight("b", &[5, 5]).is_err());
            assert!(claim_weight("c", &[15]).is_ok());
        });
        assert_eq!(left, 5);
        assert!(claim_weight("d", &[1000]).is_ok());
    }
}
