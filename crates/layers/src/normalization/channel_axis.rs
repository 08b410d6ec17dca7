//! Where per-channel normalization weights sit: the input's rank, the channel axis and its
//! size, fixed by the first build (BatchNormalization, GroupNormalization).

use std::sync::OnceLock;

use super::axes::resolve_axis;
use crate::limits::check_shape;
use crate::{Error, Result, SymbolicShape};

/// The input rank, channel axis and channel count that per-channel weights were made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ChannelAxis {
    /// The input's rank, batch included.
    pub rank: usize,
    /// The channel axis.
    pub axis: usize,
    /// The size of the channel axis.
    pub channels: usize,
}

impl ChannelAxis {
    /// The input shape the weights fit, for messages: `(None, None, 6)`.
    pub(super) fn expected(&self) -> String {
        let mut expected = vec!["None".to_string(); self.rank];
        expected[self.axis] = self.channels.to_string();
        format!("({})", expected.join(", "))
    }

    /// Fails, naming `layer`, unless an input of `dims` fits the weights.
    pub(super) fn check(&self, layer: &str, dims: &[usize]) -> Result<()> {
        if dims.len() != self.rank || dims[self.axis] != self.channels {
            return Err(Error::shape(layer, self.expected(), format!("{dims:?}")));
        }
        Ok(())
    }
}

/// The `build` of a per-channel normalization of Keras's `axis`: on the first input shape,
/// `make` the weights for its channel axis; later shapes must fit the weights made (`at` tells
/// where they sit). Errors name `layer`.
pub(super) fn build_once<W>(
    layer: &str,
    axis: i64,
    shape: &SymbolicShape,
    weights: &OnceLock<W>,
    at: impl Fn(&W) -> ChannelAxis,
    make: impl FnOnce(ChannelAxis) -> Result<W>,
) -> Result<()> {
    let axis = resolve_axis(layer, axis, shape.rank())?;
    check_shape(layer, shape)?;
    let channels = shape.dims()[axis];
    match weights.get().map(at) {
        Some(w) if w.rank == shape.rank() && Some(w.channels) == channels => Ok(()),
        Some(w) => Err(Error::shape(layer, w.expected(), shape)),
        None => {
            let channels = channels.ok_or_else(|| {
                Error::shape(layer, format!("a known size on axis {axis}"), shape)
            })?;
            let made = make(ChannelAxis {
                rank: shape.rank(),
                axis,
                channels,
            })?;
            // Another thread may have built it meanwhile; its weights fit the same shape.
            let _ = weights.set(made);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_fitting_shape_and_refuses_others() {
        let at = ChannelAxis {
            rank: 3,
            axis: 2,
            channels: 6,
        };
        assert_eq!(at.expected(), "(None, None, 6)");
        assert!(at.check("bn", &[4, 5, 6]).is_ok());
        let wrong_channels = at.check("bn", &[4, 5, 7]).unwrap_err().to_string();
        assert!(wrong_channels.contains("bn") && wrong_channels.contains("(None, None, 6)"));
        assert!(at.check("bn", &[4, 6]).is_err());
    }
}
