//! `Sides2`: an amount on each side of the two spatial axes, as `ZeroPadding2D`'s `padding` and
//! `Cropping2D`'s `cropping` take it (`keras/src/layers/reshaping/zero_padding2d.py`).

use serde::{Deserialize, Serialize};

use crate::limits::MAX_WINDOW;
use crate::{Error, Result};

/// `((top, bottom), (left, right))`, from `1` (all four sides), `(1, 2)` (the same above and
/// below, the same left and right) or `((1, 2), (3, 4))`; saved as Keras saves it,
/// `[[1, 2], [3, 4]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sides2(pub (usize, usize), pub (usize, usize));

impl From<usize> for Sides2 {
    fn from(n: usize) -> Self {
        Sides2((n, n), (n, n))
    }
}

impl From<(usize, usize)> for Sides2 {
    fn from((h, w): (usize, usize)) -> Self {
        Sides2((h, h), (w, w))
    }
}

impl From<((usize, usize), (usize, usize))> for Sides2 {
    fn from((h, w): ((usize, usize), (usize, usize))) -> Self {
        Sides2(h, w)
    }
}

impl Sides2 {
    /// Top and bottom together, left and right together.
    pub fn totals(self) -> (usize, usize) {
        (self.0 .0 + self.0 .1, self.1 .0 + self.1 .1)
    }

    /// Fails unless every side is at most [`MAX_WINDOW`] (so that sums cannot overflow).
    pub fn check(self, layer: &str, what: &str) -> Result<()> {
        let ((top, bottom), (left, right)) = (self.0, self.1);
        if [top, bottom, left, right].iter().any(|&n| n > MAX_WINDOW) {
            return Err(Error::config(
                layer,
                format!(
                    "{what} {:?} must be at most {MAX_WINDOW} on each side",
                    (self.0, self.1)
                ),
            ));
        }
        Ok(())
    }
}
