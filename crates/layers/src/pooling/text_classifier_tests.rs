//! keras.io's text classification model as a graph: `Input((50,))` of token ids,
//! `Embedding(1000, 16)`, `Conv1D(32, 5, relu)`, `MaxPooling1D(2)`, `GlobalMaxPooling1D`,
//! `Dense(1, sigmoid)`, with Keras's output shapes and parameter counts, run eagerly.

use std::sync::Arc;

use candle_core::{Device, Tensor};

use crate::prelude::*;
use crate::{CallContext, Layer};

/// The number of parameters of a built layer.
fn params(layer: &dyn Layer) -> usize {
    layer.weights().iter().map(|w| w.count()).sum()
}

#[test]
fn keras_text_classifier_has_keras_shapes_and_parameter_counts() {
    let embedding = Embedding::new(1000, 16);
    let conv = Conv1D::new(32, 5).activation("relu");
    let pool = MaxPooling1D::new(2);
    let global = GlobalMaxPooling1D::new();
    let dense = Dense::new(1).activation("sigmoid");

    let tokens = Input::new(&[50]);
    let embedded = embedding(tokens);
    let features = conv(embedded);
    let pooled = pool(features);
    let summed_up = global(pooled);
    let output = dense(summed_up);
    let shapes: Vec<String> = [embedded, features, pooled, summed_up, output]
        .iter()
        .map(|t| t.shape().expect("shape").to_string())
        .collect();
    // Valid 5-step windows over 50 steps: 46; pooled by 2: 23.
    assert_eq!(
        shapes,
        [
            "(None, 50, 16)",
            "(None, 46, 32)",
            "(None, 23, 32)",
            "(None, 32)",
            "(None, 1)"
        ]
    );
    let layers: Vec<Arc<dyn Layer>> = vec![
        embedding.layer().expect("embedding"),
        conv.layer().expect("conv"),
        pool.layer().expect("pool"),
        global.layer().expect("global"),
        dense.layer().expect("dense"),
    ];
    // Keras: 1000 * 16; 5 * 16 * 32 + 32; none; none; 32 * 1 + 1.
    let counts: Vec<usize> = layers.iter().map(|l| params(l.as_ref())).collect();
    assert_eq!(counts, [16_000, 2_592, 0, 0, 33]);

    // Two sequences of token ids, eagerly through every layer.
    let ids: Vec<u32> = (0..100).map(|i| (i * 37 % 1000) as u32).collect();
    let mut x = Tensor::from_vec(ids, (2, 50), &Device::Cpu).expect("ids");
    let mut outputs = Vec::new();
    for layer in &layers {
        x = layer
            .call(&[x], &mut CallContext::new(false))
            .expect("call")
            .remove(0);
        outputs.push(x.clone());
    }
    let dims: Vec<&[usize]> = outputs.iter().map(|t| t.dims()).collect();
    assert_eq!(
        dims,
        [
            &[2, 50, 16][..],
            &[2, 46, 32],
            &[2, 23, 32],
            &[2, 32],
            &[2, 1]
        ]
    );
    // Pooling by 2 covers all 46 steps, so the global maximum after it is the maximum of the
    // convolution's output over its steps.
    let direct = outputs[1].max(1).expect("max");
    let via_pooling = &outputs[3];
    let difference = (direct - via_pooling)
        .and_then(|d| d.abs())
        .and_then(|d| d.max_all())
        .and_then(|d| d.to_scalar::<f32>())
        .expect("difference");
    assert_eq!(difference, 0.0);
    let probabilities = crate::testing::flat(&outputs[4]);
    assert!(probabilities.iter().all(|&p| p > 0.0 && p < 1.0));
}
