//! The spatial axes of a channels-last input, and sequences seen as images: the 1-D layers
//! (`MaxPooling1D`, `UpSampling1D`, `ZeroPadding1D`...) run the code and kernels of the 2-D
//! ones on a `(batch, steps, features)` sequence seen as a `(batch, steps, 1, features)` image
//! one column wide, a view, not a copy.

use candle_core::Tensor;

use crate::{Error, Result, SymbolicShape};

/// The spatial axes of a layer's channels-last input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spatial {
    /// The steps of a sequence, `(batch, steps, features)`: the 1-D layers.
    Steps,
    /// The rows and columns of an image, `(batch, height, width, channels)`: the 2-D layers.
    Image,
}

/// A `(batch, height, width, channels)` shape whose dimensions may be unknown.
pub type ImageShape = [Option<usize>; 4];

impl Spatial {
    /// The symbolic input shape a layer over these axes takes, as errors show it.
    pub fn expected(self) -> &'static str {
        match self {
            Spatial::Steps => "(None, steps, features)",
            Spatial::Image => "(None, height, width, channels)",
        }
    }

    /// The concrete input shape a layer over these axes takes, as errors show it.
    pub fn expected_concrete(self) -> &'static str {
        match self {
            Spatial::Steps => "(batch, steps, features)",
            Spatial::Image => "(batch, height, width, channels)",
        }
    }

    /// `totals` (rows, columns) of the axes counted in words: `3 steps`, `1 rows and 2 columns`.
    pub fn counted(self, (rows, columns): (usize, usize)) -> String {
        match self {
            Spatial::Steps => format!("{rows} steps"),
            Spatial::Image => format!("{rows} rows and {columns} columns"),
        }
    }

    /// The image a symbolic input `shape` of `layer` is seen as, or an error naming the layer
    /// and the shape it takes.
    pub fn image_shape(self, layer: &str, shape: &SymbolicShape) -> Result<ImageShape> {
        match (self, shape.dims()) {
            (Spatial::Steps, &[batch, steps, c]) => Ok([batch, steps, Some(1), c]),
            (Spatial::Image, &[batch, h, w, c]) => Ok([batch, h, w, c]),
            _ => Err(Error::shape(layer, self.expected(), shape)),
        }
    }

    /// A layer's output shape from the shape of the image it computes: without the one column
    /// for a sequence.
    pub fn from_image_shape(self, [batch, h, w, c]: ImageShape) -> SymbolicShape {
        SymbolicShape(match self {
            Spatial::Steps => vec![batch, h, c],
            Spatial::Image => vec![batch, h, w, c],
        })
    }

    /// The `(batch, height, width, channels)` of the image a concrete input of `dims` is seen
    /// as, or an error naming `layer` and the shape it takes.
    pub fn image_dims(self, layer: &str, dims: &[usize]) -> Result<[usize; 4]> {
        match (self, dims) {
            (Spatial::Steps, &[batch, steps, c]) => Ok([batch, steps, 1, c]),
            (Spatial::Image, &[batch, h, w, c]) => Ok([batch, h, w, c]),
            _ => Err(Error::shape(
                layer,
                self.expected_concrete(),
                format!("{dims:?}"),
            )),
        }
    }

    /// `x` seen as an image (a view), or an error naming `layer` and the shape it takes.
    pub fn image(self, layer: &str, x: &Tensor) -> Result<Tensor> {
        self.image_dims(layer, x.dims())?;
        Ok(match self {
            Spatial::Steps => x.unsqueeze(2)?,
            Spatial::Image => x.clone(),
        })
    }

    /// An image a layer computed, as the layer returns it: a sequence again (a view).
    pub fn from_image(self, image: Tensor) -> Result<Tensor> {
        Ok(match self {
            Spatial::Steps => image.squeeze(2)?,
            Spatial::Image => image,
        })
    }
}

/// `values` as one `(1, steps, features)` sequence, for the tests of the 1-D layers.
#[cfg(test)]
pub(crate) fn sequence(values: &[f32], features: usize) -> Tensor {
    Tensor::new(values, &candle_core::Device::Cpu)
        .and_then(|x| x.reshape((1, values.len() / features, features)))
        .expect("sequence")
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn a_sequence_is_an_image_one_column_wide() {
        let shape = SymbolicShape(vec![None, Some(5), Some(3)]);
        let image = Spatial::Steps.image_shape("s", &shape).unwrap();
        assert_eq!(image, [None, Some(5), Some(1), Some(3)]);
        assert_eq!(Spatial::Steps.from_image_shape(image), shape);
        let x = Tensor::zeros((2, 5, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        let seen = Spatial::Steps.image("s", &x).unwrap();
        assert_eq!(seen.dims(), &[2, 5, 1, 3]);
        assert_eq!(Spatial::Steps.from_image(seen).unwrap().dims(), &[2, 5, 3]);
        assert_eq!(
            Spatial::Image.image_dims("i", &[2, 3, 4, 5]).unwrap(),
            [2, 3, 4, 5]
        );
    }

    #[test]
    fn other_ranks_are_errors_naming_the_layer_and_the_shape_it_takes() {
        let flat = SymbolicShape(vec![None, Some(5)]);
        let err = Spatial::Steps.image_shape("pool", &flat).unwrap_err();
        assert!(
            err.to_string().contains("'pool'")
                && err.to_string().contains("(None, steps, features)"),
            "{err}"
        );
        let err = Spatial::Image.image_dims("up", &[2, 5, 3]).unwrap_err();
        assert!(
            err.to_string().contains("(batch, height, width, channels)"),
            "{err}"
        );
        assert_eq!(Spatial::Steps.counted((3, 0)), "3 steps");
    }
}
