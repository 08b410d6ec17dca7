//! `get_weights` / `set_weights` on every layer (and, through its layer, every model): the
//! weights as host arrays in Keras's order, as `keras/src/layers/layer.py` gives them.

use candle_core::{Device, Tensor};

use crate::{Error, Layer, Result, SymbolicShape};

/// Keras's `layer.get_weights()` and `layer.set_weights(...)` on every [`Layer`].
///
/// The order is [`Layer::weights`]'s, which is Keras's `layer.weights`: each layer's weights in
/// creation order (`kernel`, then `bias`; a model's layers in order), whatever is frozen.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use rkeras_layers::{Dense, Input, LayerWeights};
///
/// # fn main() -> rkeras_layers::Result<()> {
/// let dense = Dense::new(2);
/// dense(Input::new(&[3]));
/// let layer = dense.layer()?;
/// let [kernel, bias] = <[Tensor; 2]>::try_from(layer.get_weights()?).unwrap();
/// assert_eq!((kernel.dims(), bias.dims()), (&[3, 2][..], &[2][..]));
/// layer.set_weights(&[kernel.ones_like()?, bias])?;
/// assert_eq!(layer.get_weights()?[0].sum_all()?.to_scalar::<f32>()?, 6.0);
/// # Ok(())
/// # }
/// ```
pub trait LayerWeights {
    /// Copies of the weights on the CPU, in Keras's order (empty before the layer is built).
    fn get_weights(&self) -> Result<Vec<Tensor>>;

    /// Sets every weight, in [`LayerWeights::get_weights`]'s order, from tensors of the same
    /// shapes (any dtype and device: each is converted to its weight's). A list of another
    /// length, or a tensor of another shape, is an error naming the layer, the weight and both
    /// shapes, and nothing is changed.
    fn set_weights(&self, weights: &[Tensor]) -> Result<()>;
}

impl<L: Layer + ?Sized> LayerWeights for L {
    fn get_weights(&self) -> Result<Vec<Tensor>> {
        self.weights()
            .iter()
            .map(|w| {
                let value = w.var.as_tensor();
                // A copy, as Keras returns NumPy arrays: training must not change it later.
                let host = match value.device() {
                    Device::Cpu => value.copy()?,
                    _ => value.to_device(&Device::Cpu)?,
                };
                Ok(host.detach())
            })
            .collect()
    }

    fn set_weights(&self, weights: &[Tensor]) -> Result<()> {
        let own = self.weights();
        if own.len() != weights.len() {
            return Err(Error::config(
                self.name(),
                format!(
                    "set_weights was given a list of {} weight(s), but the layer has {}{}",
                    weights.len(),
                    own.len(),
                    listing(&own)
                ),
            ));
        }
        // Every value is made first, so that a failure leaves every weight as it was.
        let values = own
            .iter()
            .zip(weights)
            .map(|(w, value)| {
                if value.dims() != w.var.dims() {
                    return Err(Error::config(
                        self.name(),
                        format!(
                            "weight '{}' has shape {}, but set_weights was given shape {}",
                            w.path,
                            shape_of(w.var.dims()),
                            shape_of(value.dims())
                        ),
                    ));
                }
                Ok(value.to_dtype(w.var.dtype())?.to_device(w.var.device())?)
            })
            .collect::<Result<Vec<_>>>()?;
        for (w, value) in own.iter().zip(&values) {
            w.var.set(value)?;
        }
        Ok(())
    }
}

/// A shape as Keras prints it: `(3, 2)`, `(2,)`.
fn shape_of(dims: &[usize]) -> SymbolicShape {
    SymbolicShape(dims.iter().map(|&d| Some(d)).collect())
}

/// `: kernel (3, 2), bias (2,)`, the weights a list must give (nothing for none).
fn listing(weights: &[crate::Weight]) -> String {
    if weights.is_empty() {
        return String::new();
    }
    let items: Vec<String> = weights
        .iter()
        .map(|w| format!("{} {}", w.path, shape_of(w.var.dims())))
        .collect();
    format!(": {}", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Dense, Input};
    use candle_core::DType;

    fn built_dense(units: usize, inputs: usize) -> std::sync::Arc<dyn Layer> {
        let dense = Dense::new(units);
        dense(Input::new(&[inputs]));
        dense.layer().unwrap()
    }

    #[test]
    fn gives_copies_in_keras_order_and_nothing_before_build() {
        let layer = built_dense(2, 3);
        let weights = layer.get_weights().unwrap();
        let dims: Vec<&[usize]> = weights.iter().map(|w| w.dims()).collect();
        assert_eq!(dims, [&[3, 2][..], &[2][..]]);
        // A later change of the layer does not reach the copy.
        let before = weights[1].to_vec1::<f32>().unwrap();
        layer.weights()[1]
            .var
            .set(&Tensor::ones(2, DType::F32, &Device::Cpu).unwrap())
            .unwrap();
        assert_eq!(weights[1].to_vec1::<f32>().unwrap(), before);
        assert!(Dense::new(4)
            .layer()
            .unwrap()
            .get_weights()
            .unwrap()
            .is_empty());
    }

    #[test]
    fn sets_values_of_any_dtype_and_refuses_other_shapes_or_counts() {
        let layer = built_dense(2, 3);
        let kernel = Tensor::arange(0f64, 6.0, &Device::Cpu)
            .unwrap()
            .reshape((3, 2))
            .unwrap();
        let bias = Tensor::new(&[7f64, 8.0], &Device::Cpu).unwrap();
        layer.set_weights(&[kernel, bias.clone()]).unwrap();
        let weights = layer.get_weights().unwrap();
        assert_eq!(weights[0].dtype(), DType::F32);
        assert_eq!(
            weights[0].to_vec2::<f32>().unwrap(),
            [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
        );
        let name = layer.name().to_string();
        let wrong = Tensor::zeros((2, 3), DType::F32, &Device::Cpu).unwrap();
        let err = layer
            .set_weights(&[wrong, bias.clone()])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "layer '{name}': weight 'kernel' has shape (3, 2), but set_weights was given \
                 shape (2, 3)"
            )
        );
        // Nothing changed.
        assert_eq!(
            layer.get_weights().unwrap()[1].to_vec1::<f32>().unwrap(),
            [7.0, 8.0]
        );
        let err = layer.set_weights(&[bias]).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "layer '{name}': set_weights was given a list of 1 weight(s), but the layer has \
                 2: kernel (3, 2), bias (2,)"
            )
        );
    }
}
