//! Amounts on each side of the spatial axes, as `ZeroPadding1D`/`ZeroPadding2D` take `padding`
//! and `Cropping1D`/`Cropping2D` take `cropping` (`keras/src/layers/reshaping/zero_padding1d.py`,
//! `zero_padding2d.py`).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::spatial::Spatial;
use crate::limits::MAX_WINDOW;
use crate::{Error, Result};

/// Amounts on each side of the spatial axes of the inputs of the layers that take them.
pub trait SpatialSides:
    Copy + std::fmt::Debug + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// The spatial axes of those inputs.
    const SPATIAL: Spatial;

    /// The amounts on each side of the image the input is seen as (see [`Spatial`]).
    fn on_image(self) -> Sides2;

    /// Fails unless every amount is at most [`MAX_WINDOW`] (so that sums cannot overflow),
    /// naming `layer` and the option `what`.
    fn check(self, layer: &str, what: &str) -> Result<()>;
}

/// `(start, end)` of the steps of a sequence, from `1` (both ends) or `(1, 2)`; saved as Keras
/// saves it, `[1, 2]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sides1(pub usize, pub usize);

impl From<usize> for Sides1 {
    fn from(n: usize) -> Self {
        Sides1(n, n)
    }
}

impl From<(usize, usize)> for Sides1 {
    fn from((start, end): (usize, usize)) -> Self {
        Sides1(start, end)
    }
}

impl SpatialSides for Sides1 {
    const SPATIAL: Spatial = Spatial::Steps;

    /// Above and below the image one column wide the sequence is seen as.
    fn on_image(self) -> Sides2 {
        Sides2((self.0, self.1), (0, 0))
    }

    fn check(self, layer: &str, what: &str) -> Result<()> {
        check_amounts(layer, what, (self.0, self.1), &[self.0, self.1])
    }
}

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
}

impl SpatialSides for Sides2 {
    const SPATIAL: Spatial = Spatial::Image;

    fn on_image(self) -> Sides2 {
        self
    }

    fn check(self, layer: &str, what: &str) -> Result<()> {
        let ((top, bottom), (left, right)) = (self.0, self.1);
        check_amounts(layer, what, (self.0, self.1), &[top, bottom, left, right])
    }
}

/// Fails unless every one of `amounts` (the option `what`, shown as `shown`) is at most
/// [`MAX_WINDOW`].
fn check_amounts(
    layer: &str,
    what: &str,
    shown: impl std::fmt::Debug,
    amounts: &[usize],
) -> Result<()> {
    if amounts.iter().any(|&n| n > MAX_WINDOW) {
        return Err(Error::config(
            layer,
            format!("{what} {shown:?} must be at most {MAX_WINDOW} on each side"),
        ));
    }
    Ok(())
}
