//! `layer.input()` and `layer.output()` on every layer: the symbolic tensors of its first call,
//! as Keras 3's `Operation.input` / `.output` give those of node 0 (`keras/src/ops/operation.py`),
//! to build a model from part of another: `Model::new(model.input(), layer.output())`.

use crate::symbolic::{first_call_of, one_or_list};
use crate::{Error, Layer, SymbolicTensor};

/// Keras's `layer.input` and `layer.output` on every [`Layer`].
///
/// Both refer to the layer's first call in this thread's session (its first node, as in
/// Keras). A layer of a loaded model or of a `Sequential` has its call recorded once the model's
/// `layers()`, `get_layer` or `inputs()` is asked for. A layer never called gives a tensor
/// carrying an error, which building a model from it reports.
///
/// ```
/// use rkeras_layers::{Dense, Input, LayerTensors};
///
/// # fn main() -> rkeras_layers::Result<()> {
/// let dense = Dense::new(2);
/// let y = dense(Input::new(&[3]));
/// assert_eq!(dense.layer()?.output(), y);
/// assert_eq!(dense.layer()?.input().shape()?.to_string(), "(None, 3)");
/// # Ok(())
/// # }
/// ```
pub trait LayerTensors {
    /// The input of the first call (a list when it took several).
    fn input(&self) -> SymbolicTensor;
    /// The output of the first call (a list when it gave several).
    fn output(&self) -> SymbolicTensor;
}

impl<L: Layer + ?Sized> LayerTensors for L {
    fn input(&self) -> SymbolicTensor {
        match first_call_of(self) {
            // An input layer's call takes nothing: its input is its output.
            Some((inputs, outputs)) if inputs.is_empty() => one_or_list(outputs),
            Some((inputs, _)) => one_or_list(inputs),
            None => never_called(self.name()),
        }
    }

    fn output(&self) -> SymbolicTensor {
        match first_call_of(self) {
            Some((_, outputs)) => one_or_list(outputs),
            None => never_called(self.name()),
        }
    }
}

fn never_called(name: &str) -> SymbolicTensor {
    SymbolicTensor::failed(Error::Graph(format!(
        "layer '{name}' has never been called, so it has no input or output yet: call it on a \
         symbolic tensor first (a loaded model's layers get theirs from its layers() or get_layer)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Concatenate, Input};

    #[test]
    fn the_first_call_gives_the_input_and_output() -> crate::Result<()> {
        let (a, b) = (Input::new(&[2]), Input::new(&[3]));
        let concatenate = Concatenate::new(-1);
        let joined = concatenate([a, b].into());
        // A second call does not change them (Keras's node 0).
        concatenate([b, a].into());
        let layer = concatenate.layer()?;
        assert_eq!(layer.output(), joined);
        assert_eq!(layer.input().items(), vec![a, b]);
        let input_layer = a.producer()?.expect("an input has a producer").layer;
        assert_eq!((input_layer.input(), input_layer.output()), (a, a));
        Ok(())
    }

    #[test]
    fn a_layer_never_called_gives_an_error_naming_it() -> crate::Result<()> {
        let dense = crate::Dense::new(2).name("never_called");
        let error = dense.layer()?.output().shape().unwrap_err().to_string();
        assert!(
            error.contains("'never_called' has never been called"),
            "{error}"
        );
        Ok(())
    }
}
