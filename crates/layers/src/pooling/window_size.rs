//! The size of a pooling window: [`Size1`] for the 1-D layers, [`Size2`] for the 2-D ones, each
//! saved as Keras saves `pool_size` and `strides` (`standardize_tuple` in
//! `keras/src/layers/pooling/base_pooling.py`: `[2]`, `[2, 2]`).

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::convolutional::options::Size2;
use crate::limits::{check_window, MAX_WINDOW};
use crate::reshaping::spatial::Spatial;
use crate::{Error, Result};

/// A window size along the spatial axes of the inputs of the layers that take it.
pub trait WindowSize:
    Copy + Debug + PartialEq + From<usize> + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// The spatial axes of those inputs.
    const SPATIAL: Spatial;

    /// The window over the image the input is seen as (see [`Spatial`]).
    fn on_image(self) -> Size2;

    /// The smallest input a window of this size fits in, in words.
    fn smallest_input(self) -> String;

    /// Fails unless the size is positive and at most [`MAX_WINDOW`] along each axis, naming
    /// `layer` and the option `what`.
    fn check(self, layer: &str, what: &str) -> Result<()>;
}

/// Fails unless the length `n` (the option `what` of `layer`: a pool size, an up-sampling
/// factor) is positive and at most [`MAX_WINDOW`].
pub fn check_length(layer: &str, what: &str, n: usize) -> Result<()> {
    if n == 0 || n > MAX_WINDOW {
        return Err(Error::config(
            layer,
            format!("{what} {n} must be positive and at most {MAX_WINDOW}"),
        ));
    }
    Ok(())
}

impl WindowSize for Size2 {
    const SPATIAL: Spatial = Spatial::Image;

    fn on_image(self) -> Size2 {
        self
    }

    fn smallest_input(self) -> String {
        format!("an input of at least {}x{}", self.0, self.1)
    }

    fn check(self, layer: &str, what: &str) -> Result<()> {
        check_window(layer, what, self)
    }
}

/// A window length along a sequence: `2`, saved as Keras saves it, `[2]` (and read from either).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "[usize; 1]", from = "OneOrList")]
pub struct Size1(pub usize);

impl From<usize> for Size1 {
    fn from(n: usize) -> Self {
        Size1(n)
    }
}

impl From<Size1> for [usize; 1] {
    fn from(Size1(n): Size1) -> Self {
        [n]
    }
}

/// A saved length: `2` or `[2]`.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrList {
    One(usize),
    List([usize; 1]),
}

impl From<OneOrList> for Size1 {
    fn from(saved: OneOrList) -> Self {
        match saved {
            OneOrList::One(n) | OneOrList::List([n]) => Size1(n),
        }
    }
}

impl WindowSize for Size1 {
    const SPATIAL: Spatial = Spatial::Steps;

    fn on_image(self) -> Size2 {
        Size2(self.0, 1)
    }

    fn smallest_input(self) -> String {
        format!("a sequence of at least {} steps", self.0)
    }

    fn check(self, layer: &str, what: &str) -> Result<()> {
        check_length(layer, what, self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_length_is_saved_as_a_list_of_one_and_read_from_either() {
        assert_eq!(serde_json::to_value(Size1(3)).unwrap(), json!([3]));
        assert_eq!(
            serde_json::from_value::<Size1>(json!([3])).unwrap(),
            Size1(3)
        );
        assert_eq!(serde_json::from_value::<Size1>(json!(3)).unwrap(), Size1(3));
        assert!(serde_json::from_value::<Size1>(json!([3, 3])).is_err());
        assert_eq!(Size1(3).on_image(), Size2(3, 1));
        let err = Size1(0).check("pool", "pool_size").unwrap_err().to_string();
        assert!(
            err.contains("'pool'") && err.contains("pool_size 0 must be positive"),
            "{err}"
        );
    }
}
