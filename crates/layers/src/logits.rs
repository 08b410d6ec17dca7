//! The logits of a sigmoid or softmax output, as Keras keeps them: Keras's `sigmoid` and
//! `softmax` leave their input on their output (`_keras_logits`), and the cross-entropies read it
//! (`keras/src/backend/tensorflow/nn.py`), computing the loss from the logits exactly where the
//! clipped probabilities would not. A model run for such a loss swaps the layer producing the
//! output for its logits twin.

use std::sync::Arc;

use crate::convolutional::conv1d::Conv1DLayer;
use crate::convolutional::conv2d_transpose::Conv2DTransposeLayer;
use crate::{ActivationFn, ActivationLayer, Conv2DLayer, DenseLayer, Layer};

/// A twin of `layer` that outputs the logits of its sigmoid or softmax (sharing its weights
/// and name), with that activation; `None` for a layer whose output is no such activation's
/// (or whose activity penalty reads the activation's output).
pub fn logits_twin(layer: &dyn Layer) -> Option<(Arc<dyn Layer>, ActivationFn)> {
    fn boxed<L: Layer>((twin, activation): (L, ActivationFn)) -> (Arc<dyn Layer>, ActivationFn) {
        (Arc::new(twin), activation)
    }
    let any = layer.as_any();
    if let Some(dense) = any.downcast_ref::<DenseLayer>() {
        return dense.logits_twin().map(boxed);
    }
    if let Some(conv) = any.downcast_ref::<Conv2DLayer>() {
        return conv.logits_twin().map(boxed);
    }
    if let Some(conv) = any.downcast_ref::<Conv2DTransposeLayer>() {
        return conv.logits_twin().map(boxed);
    }
    if let Some(conv) = any.downcast_ref::<Conv1DLayer>() {
        return conv.logits_twin().map(boxed);
    }
    if let Some(activation) = any.downcast_ref::<ActivationLayer>() {
        return activation.logits_twin().map(boxed);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Activation, CallContext, Conv1D, Conv2D, Conv2DTranspose, Dense, Input, Regularizer,
    };
    use candle_core::{Device, Tensor};

    #[test]
    fn twins_share_weights_and_output_the_logits() {
        let dense = Dense::new(3).activation("softmax");
        let _ = dense(Input::new(&[4]));
        let layer = dense.layer().unwrap();
        let (twin, activation) = logits_twin(layer.as_ref()).unwrap();
        assert_eq!(
            (activation, twin.name()),
            (ActivationFn::Softmax, layer.name())
        );
        // One variable: the twin's kernel is the layer's (same tensor id).
        assert_eq!(twin.weights()[0].var.id(), layer.weights()[0].var.id());
        let x = Tensor::new(&[[0.5f32, -1.0, 2.0, 0.25]], &Device::Cpu).unwrap();
        let logits = twin
            .call(std::slice::from_ref(&x), &mut CallContext::new(false))
            .unwrap();
        let probabilities = layer.call(&[x], &mut CallContext::new(false)).unwrap();
        let from_logits = ActivationFn::Softmax.apply(&logits[0]).unwrap();
        let diff = (from_logits - &probabilities[0]).unwrap().abs().unwrap();
        assert!(diff.max_all().unwrap().to_scalar::<f32>().unwrap() < 1e-6);

        let conv = Conv2D::new(2, (3, 3)).activation("sigmoid");
        let _ = conv(Input::new(&[5, 5, 1]));
        let (_, activation) = logits_twin(conv.layer().unwrap().as_ref()).unwrap();
        assert_eq!(activation, ActivationFn::Sigmoid);
        let transpose = Conv2DTranspose::new(1, (3, 3)).activation("sigmoid");
        let _ = transpose(Input::new(&[5, 5, 2]));
        assert!(logits_twin(transpose.layer().unwrap().as_ref()).is_some());
        let sequence = Conv1D::new(3, 2).activation("softmax");
        let _ = sequence(Input::new(&[6, 2]));
        assert!(logits_twin(sequence.layer().unwrap().as_ref()).is_some());
        let sigmoid = Activation::new("sigmoid").layer().unwrap();
        assert!(logits_twin(sigmoid.as_ref()).is_some());
    }

    #[test]
    fn other_activations_and_penalised_outputs_have_no_logits() {
        for dense in [
            Dense::new(3).activation("relu"),
            Dense::new(3),
            Dense::new(3)
                .activation("sigmoid")
                .activity_regularizer(Regularizer::l1(0.1)),
        ] {
            let _ = dense(Input::new(&[4]));
            assert!(logits_twin(dense.layer().unwrap().as_ref()).is_none());
        }
        let tanh = Activation::new("tanh").layer().unwrap();
        assert!(logits_twin(tanh.as_ref()).is_none());
    }
}
