//! The training path (each layer differentiating its own call, batches split over threads)
//! against a reference computed here by candle's autograd over the whole model: same loss, same
//! gradient for every trainable weight, same training.

use std::sync::Arc;

use candle_core::{backprop::GradStore, Device, Tensor, Var};
use rkeras_layers::session::{set_random_seed, stream_key, with_stream};
use rkeras_layers::{
    layer_base_methods, Activation, ActivationFn, BatchNormalization, CallContext, Conv2D,
    Conv2DTranspose, Dense, Flatten, Initializer, Input, Lambda, Layer, LayerBase, LayerConfig,
    MaxPooling2D, Regularizer, Reshape, Result as LayerResult, SymbolicShape, UpSampling2D,
    WeightGrads,
};
use rkeras_model::Model;

use super::{batch_gradients, gradient_terms, train_step, BatchLosses, GradientParts};
use crate::arrays::Arrays;
use crate::batches::Batch;
use crate::compile::{CompileOptions, Compiled, IntoLoss, IntoLosses, IntoOptimizer};
use crate::losses::Loss;
use crate::test_threads::on_two_threads;
use crate::trainer::batch_parts::batch_parts;
use crate::trainer::gradient_sum::sum_gradient_terms;
use crate::trainer::head::Head;
use crate::trainer::tracking::PartOutputs;
use crate::{FitOptions, Training};

/// Deterministic values spread over (0, 1): 0.5 + 0.45 sin(0.37 i + phase).
fn pseudo_random(dims: &[usize], phase: f64) -> Tensor {
    let n: usize = dims.iter().product();
    Tensor::arange(0f32, n as f32, &Device::Cpu)
        .and_then(|t| t.affine(0.37, phase))
        .and_then(|t| t.sin())
        .and_then(|t| t.affine(0.45, 0.5))
        .and_then(|t| t.reshape(dims))
        .unwrap()
}

/// `model` compiled with SGD and `loss` on its one output.
fn compiled(model: &Model, loss: &str) -> Compiled {
    let losses = loss.into_losses().unwrap();
    let optimizer = "sgd".into_optimizer().unwrap();
    Compiled::new(model, optimizer, losses, CompileOptions::new()).unwrap()
}

/// The parts `model` runs a batch of `rows` in with `loss`.
fn parts_of(model: &Model, loss: impl IntoLosses, rows: usize) -> Vec<std::ops::Range<usize>> {
    let losses = loss.into_losses().unwrap();
    let optimizer = "sgd".into_optimizer().unwrap();
    let compiled = Compiled::new(model, optimizer, losses, CompileOptions::new()).unwrap();
    batch_parts(&Head::new(model, &compiled.outputs), rows)
}

/// One array.
fn one(t: &Tensor) -> Arrays {
    Arrays::from(t)
}

fn trainable(model: &Model) -> Vec<Var> {
    model
        .trainable_weights()
        .into_iter()
        .map(|w| w.var)
        .collect()
}

/// The reference: the whole model run with its weights tracked, the compiled loss on the
/// (clipped) probabilities plus the losses the calls added and the weight penalties, and
/// candle's autograd over all of it.
fn reference_gradients(
    model: &Model,
    loss: &dyn Loss,
    x: &Tensor,
    y: &Tensor,
) -> (Tensor, Tensor, GradStore) {
    let mut ctx = CallContext::new(true);
    let y_pred = model
        .forward_t(std::slice::from_ref(x), &mut ctx)
        .unwrap()
        .remove(0);
    let mut total = loss.compute(y, &y_pred).unwrap();
    for added in ctx.take_losses() {
        total = (total + added).unwrap();
    }
    for penalty in model.regularization_losses().unwrap() {
        total = (total + penalty).unwrap();
    }
    let grads = total.backward().unwrap();
    (total, y_pred, grads)
}

/// The training path's gradients of `batch`, each variable's parts added up as the trainer adds
/// them.
fn training_gradients(
    model: &Model,
    compiled: &Compiled,
    vars: &[Var],
    batch: &Batch<'_>,
) -> crate::Result<(Tensor, PartOutputs, WeightGrads)> {
    let head = Head::new(model, &compiled.outputs);
    let (losses, predictions, parts): (BatchLosses, PartOutputs, GradientParts) =
        batch_gradients(&head, model, vars, batch, STEP)?;
    let loss = losses.total;
    let mut sums = WeightGrads::new(vars);
    for (var, sum) in sum_gradient_terms(&gradient_terms(&parts, vars))? {
        sums.add(var, sum)?;
    }
    Ok((loss, predictions, sums))
}

/// The random stream key of the steps [`training_gradients`] runs: a batch run whole draws from
/// `stream_key(STEP, 0, 1)`.
const STEP: u64 = 42;

/// The prediction of a batch from the `(targets, prediction)` of the parts it ran in.
fn whole_prediction(parts: &[(Vec<Tensor>, Vec<Tensor>)]) -> Tensor {
    let predictions: Vec<&Tensor> = parts.iter().map(|(_, y_pred)| &y_pred[0]).collect();
    Tensor::cat(&predictions, 0).unwrap()
}

/// The training path and the reference on one batch: the predictions agree, the losses agree,
/// and every trainable weight's gradient agrees to 1e-4 relative to the gradient's largest
/// magnitude (the kernels' parallel reductions may sum in another order; a 0.1% error in a
/// derivative is still caught). Returns how many weights had a gradient.
fn assert_same_gradients(model: &Model, loss: &str, x: &Tensor, y: &Tensor) -> usize {
    let compiled = compiled(model, loss);
    let vars = trainable(model);
    let loss = compiled.outputs[0].loss.as_ref();
    let (loss_ref, pred_ref, grads_ref) = reference_gradients(model, loss, x, y);
    let (xs, ys) = (one(x), one(y));
    let batch = Batch::whole(&xs, &ys, &Device::Cpu);
    let (loss_new, pred_new, grads_new) =
        training_gradients(model, &compiled, &vars, &batch).unwrap();
    let pred_new = whole_prediction(&pred_new);
    let max_diff = (pred_ref - &pred_new)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(max_diff <= 1e-6, "the predictions differ by {max_diff}");
    assert_agree(
        model,
        &vars,
        (&loss_ref, &grads_ref),
        (&loss_new, &grads_new),
    )
}

/// The losses agree to 1e-6, and every trainable weight's gradient to 1e-4 relative to the
/// gradient's largest magnitude; returns how many weights had a gradient.
fn assert_agree(
    model: &Model,
    vars: &[Var],
    (loss_ref, grads_ref): (&Tensor, &candle_core::backprop::GradStore),
    (loss_new, grads_new): (&Tensor, &WeightGrads),
) -> usize {
    let (a, b) = (
        loss_ref.to_scalar::<f32>().unwrap(),
        loss_new.to_scalar::<f32>().unwrap(),
    );
    assert!((a - b).abs() <= 1e-6 * a.abs().max(1.0), "loss {a} vs {b}");
    let mut compared = 0;
    for (weight, var) in model.trainable_weights().iter().zip(vars) {
        let expected = grads_ref.get(var.as_tensor());
        let got = grads_new.get(var);
        match (expected, got) {
            (Some(expected), Some(got)) => {
                let e: Vec<f32> = expected.flatten_all().unwrap().to_vec1().unwrap();
                let g: Vec<f32> = got.flatten_all().unwrap().to_vec1().unwrap();
                let scale = e.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
                for (i, (e, g)) in e.iter().zip(&g).enumerate() {
                    assert!(
                        (e - g).abs() <= 1e-4 * scale,
                        "{}[{i}]: autograd {e} vs layer-level {g} (scale {scale})",
                        weight.path
                    );
                }
                compared += 1;
            }
            (None, None) => {}
            (e, g) => panic!(
                "{}: autograd has a gradient: {}, layer-level has one: {}",
                weight.path,
                e.is_some(),
                g.is_some()
            ),
        }
    }
    compared
}

/// The tutorial's conv autoencoder (all 'same', ReLU, sigmoid head).
fn conv_autoencoder() -> Model {
    let input = Input::new(&[28, 28, 1]);
    let h = Conv2D::new(128, (7, 7)).activation("relu").padding("same")(input);
    let h = MaxPooling2D::new((2, 2)).padding("same")(h);
    let h = Conv2D::new(32, (2, 2)).activation("relu").padding("same")(h);
    let h = MaxPooling2D::new((2, 2)).padding("same")(h);
    let code = Conv2D::new(1, (7, 7)).activation("relu").padding("same")(h);
    let h = Conv2D::new(32, (7, 7)).activation("relu").padding("same")(code);
    let h = UpSampling2D::new((2, 2))(h);
    let h = Conv2D::new(128, (2, 2)).activation("relu").padding("same")(h);
    let h = UpSampling2D::new((2, 2))(h);
    let out = Conv2D::new(1, (7, 7)).activation("sigmoid").padding("same")(h);
    Model::new(input, out).unwrap()
}

#[test]
fn conv_autoencoder_gradients_match_autograd() {
    let model = conv_autoencoder();
    let x = pseudo_random(&[3, 28, 28, 1], 0.0);
    assert_eq!(
        assert_same_gradients(&model, "binary_crossentropy", &x, &x),
        12
    );
}

#[test]
fn strides_valid_padding_even_kernels_and_other_activations_match_autograd() {
    let input = Input::new(&[9, 9, 2]);
    let h = Conv2D::new(4, (3, 3)).strides((2, 2)).activation("tanh")(input);
    let h = Conv2D::new(3, (2, 2))
        .padding("same")
        .use_bias(false)
        .activation("elu")(h);
    let h = MaxPooling2D::new((3, 3)).strides((1, 1)).padding("same")(h);
    let h = Activation::new("softplus")(h);
    let h = Flatten::new()(h);
    let h = Reshape::new(&[4, 4, 3])(h);
    let h = UpSampling2D::new((2, 1))(h);
    let h = Conv2D::new(2, (2, 3))
        .dilation_rate((2, 1))
        .activation("silu")(h);
    let h = Lambda::new(|x| Ok((x * x)?))(h);
    let out = Conv2D::new(3, (1, 1)).activation("softmax")(h);
    let model = Model::new(input, out).unwrap();
    let x = pseudo_random(&[2, 9, 9, 2], 1.0);
    let y = pseudo_random(&[2, 6, 2, 3], 2.0);
    assert_eq!(assert_same_gradients(&model, "mse", &x, &y), 7);
}

#[test]
fn convolutions_differentiated_with_the_pooling_of_their_output_match_autograd() {
    // keras.io's MNIST convnet in small (each Conv2D's output read by a MaxPooling2D alone, the
    // pair differentiated as one; 'valid' windows leave a row and a column out), then the same
    // block whose convolution's output a second layer also reads (differentiated call by call).
    let input = Input::new(&[11, 11, 2]);
    let h = Conv2D::new(4, (3, 3)).activation("relu")(input);
    let h = MaxPooling2D::new((2, 2))(h);
    let h = Conv2D::new(6, (2, 2))(h);
    let h = MaxPooling2D::new((2, 2))(h);
    let out = Dense::new(3).activation("softmax")(Flatten::new()(h));
    let model = Model::new(input, out).unwrap();
    let x = pseudo_random(&[5, 11, 11, 2], 0.3);
    let y = pseudo_random(&[5, 3], 1.1);
    assert_eq!(
        assert_same_gradients(&model, "categorical_crossentropy", &x, &y),
        6
    );

    let input = Input::new(&[8, 8, 1]);
    let features = Conv2D::new(3, (3, 3)).activation("relu")(input);
    let pooled = Flatten::new()(MaxPooling2D::new((2, 2))(features));
    let direct = Flatten::new()(Conv2D::new(1, (1, 1))(features));
    let joined = rkeras_layers::merging::concatenate(&[pooled, direct], -1);
    let model = Model::new(input, Dense::new(1).activation("sigmoid")(joined)).unwrap();
    let x = pseudo_random(&[4, 8, 8, 1], 0.7);
    let y = pseudo_random(&[4, 1], 0.2);
    assert_eq!(
        assert_same_gradients(&model, "binary_crossentropy", &x, &y),
        6
    );
}

#[test]
fn a_layer_called_twice_sums_its_gradients() {
    let shared = Conv2D::new(2, (3, 3)).padding("same").activation("relu");
    let input = Input::new(&[6, 6, 2]);
    let once = shared(input);
    let twice = shared(MaxPooling2D::new((2, 2)).strides((1, 1)).padding("same")(
        once,
    ));
    let out = Conv2D::new(1, (1, 1)).activation("sigmoid")(twice);
    let model = Model::new(input, out).unwrap();
    let x = pseudo_random(&[2, 6, 6, 2], 0.5);
    let y = pseudo_random(&[2, 6, 6, 1], 1.5);
    assert_eq!(
        assert_same_gradients(&model, "binary_crossentropy", &x, &y),
        4
    );
}

/// An encoder and a decoder, each a model, nested in an autoencoder.
fn nested_autoencoder() -> (Model, Model) {
    let input = Input::new(&[8, 8, 1]);
    let h = Conv2D::new(4, (3, 3)).padding("same").activation("relu")(input);
    let code = MaxPooling2D::new((2, 2))(h);
    let encoder = Model::named("encoder", input, code).unwrap();
    let code_in = Input::new(&[4, 4, 4]);
    let h = UpSampling2D::new((2, 2))(code_in);
    let out = Conv2D::new(1, (3, 3)).padding("same").activation("sigmoid")(h);
    let decoder = Model::named("decoder", code_in, out).unwrap();
    let outer_input = Input::new(&[8, 8, 1]);
    let model = Model::new(outer_input, decoder(encoder(outer_input))).unwrap();
    (model, encoder)
}

#[test]
fn nested_models_run_their_own_nodes_backward() {
    let (model, _) = nested_autoencoder();
    let x = pseudo_random(&[2, 8, 8, 1], 0.25);
    assert_eq!(
        assert_same_gradients(&model, "binary_crossentropy", &x, &x),
        4
    );
}

#[test]
fn a_frozen_sub_model_gets_no_weight_gradient_but_passes_its_input_gradient() {
    let (model, encoder) = nested_autoencoder();
    encoder.set_trainable(false);
    let x = pseudo_random(&[2, 8, 8, 1], 0.75);
    assert_eq!(
        assert_same_gradients(&model, "binary_crossentropy", &x, &x),
        2
    );
    // Frozen first layer: the gradient still flows through it to nothing, and the rest trains.
    let (model, _) = nested_autoencoder();
    let first = model.get_model("encoder").unwrap().layers()[1].clone();
    first.set_trainable(false);
    assert_eq!(
        assert_same_gradients(&model, "binary_crossentropy", &x, &x),
        2
    );
}

#[test]
fn weight_penalties_are_differentiated_beside_the_layers() {
    let input = Input::new(&[5, 5, 1]);
    let h = Conv2D::new(2, (3, 3))
        .kernel_regularizer(Regularizer::l2(0.1))
        .bias_regularizer(Regularizer::l1(0.05))
        .activation("relu")(input);
    let out = Conv2D::new(1, (3, 3)).activation("sigmoid")(h);
    let model = Model::new(input, out).unwrap();
    let x = pseudo_random(&[2, 5, 5, 1], 0.1);
    let y = pseudo_random(&[2, 1, 1, 1], 0.2);
    assert_eq!(
        assert_same_gradients(&model, "binary_crossentropy", &x, &y),
        4
    );
}

#[test]
fn dense_autoencoders_gradients_match_autograd() {
    let input = Input::new(&[6, 6, 1]);
    let code = Dense::new(5).activation("relu")(Flatten::new()(input));
    let encoder = Model::new(input, code).unwrap();
    let code_input = Input::new(&[5]);
    let h = Dense::new(7).activation("tanh")(code_input);
    let h = Dense::new(4).activation("linear")(h);
    let image = Reshape::new(&[6, 6, 1])(Dense::new(36).activation("sigmoid")(h));
    let decoder = Model::new(code_input, image).unwrap();
    let autoencoder = Model::new(input, decoder(encoder(input))).unwrap();
    let x = pseudo_random(&[3, 6, 6, 1], 0.3);
    assert_eq!(
        assert_same_gradients(&autoencoder, "binary_crossentropy", &x, &x),
        8
    );

    // Dense over the last axis of a rank-3 input, and without a bias.
    let input = Input::new(&[3, 4]);
    let out = Dense::new(2).use_bias(false).activation("relu")(Dense::new(5)(input));
    let model = Model::new(input, out).unwrap();
    let x = pseudo_random(&[2, 3, 4], 0.7);
    let y = pseudo_random(&[2, 3, 2], 0.1);
    assert_eq!(assert_same_gradients(&model, "mse", &x, &y), 3);
}

#[test]
fn a_batch_split_over_threads_gives_the_gradients_of_the_whole_batch() {
    let input = Input::new(&[6, 6, 1]);
    let code = Dense::new(5)
        .activation("relu")
        .kernel_regularizer(Regularizer::l2(0.1))(Flatten::new()(input));
    let h = Dense::new(7).activation("tanh")(code);
    let image = Reshape::new(&[6, 6, 1])(Dense::new(36).activation("sigmoid")(h));
    let autoencoder = Model::new(input, image).unwrap();
    let conv = conv_autoencoder();
    on_two_threads(|| {
        // 67 rows: parts of 34 and 33, so the parts' shares differ.
        assert_eq!(
            parts_of(&autoencoder, "binary_crossentropy", 67),
            vec![0..34, 34..67]
        );
        let x = pseudo_random(&[67, 6, 6, 1], 0.3);
        assert_eq!(
            assert_same_gradients(&autoencoder, "binary_crossentropy", &x, &x),
            6
        );
        let y = pseudo_random(&[67, 6, 6, 1], 0.8);
        assert_eq!(assert_same_gradients(&autoencoder, "mse", &x, &y), 6);
        let x = pseudo_random(&[65, 28, 28, 1], 0.1);
        assert_eq!(parts_of(&conv, "binary_crossentropy", 65).len(), 2);
        assert_eq!(
            assert_same_gradients(&conv, "binary_crossentropy", &x, &x),
            12
        );
    });
}

/// A dense and a convolutional model with a batch normalization between trained layers (so that
/// the reference differentiates through its statistics), each mapping its input to a sigmoid
/// image of the input's shape.
fn batch_normalized_models() -> (Model, Model) {
    let input = Input::new(&[6, 6, 1]);
    // No bias before the normalization: it would have no gradient but rounding noise.
    let h = Dense::new(5).use_bias(false)(Flatten::new()(input));
    let h = Activation::new("relu")(BatchNormalization::new()(h));
    let image = Reshape::new(&[6, 6, 1])(Dense::new(36).activation("sigmoid")(h));
    let dense = Model::new(input, image).unwrap();
    let input = Input::new(&[8, 8, 1]);
    let h = Conv2D::new(4, (3, 3)).activation("relu").padding("same")(input);
    let h = BatchNormalization::new()(MaxPooling2D::new((2, 2))(h));
    let h = Conv2D::new(1, (3, 3)).activation("sigmoid").padding("same")(h);
    let conv = Model::new(input, UpSampling2D::new((2, 2))(h)).unwrap();
    (dense, conv)
}

#[test]
fn batch_normalization_split_over_threads_gives_the_gradients_of_the_whole_batch() {
    let (dense, conv) = batch_normalized_models();
    on_two_threads(|| {
        // The parts meet for the whole batch's statistics: two parts of unequal shares.
        assert_eq!(
            parts_of(&dense, "binary_crossentropy", 67),
            vec![0..34, 34..67]
        );
        let x = pseudo_random(&[67, 6, 6, 1], 0.3);
        assert_eq!(
            assert_same_gradients(&dense, "binary_crossentropy", &x, &x),
            5
        );
        let x = pseudo_random(&[65, 8, 8, 1], 0.1);
        assert_eq!(parts_of(&conv, "binary_crossentropy", 65).len(), 2);
        assert_eq!(
            assert_same_gradients(&conv, "binary_crossentropy", &x, &x),
            6
        );
    });
}

#[test]
fn batch_normalization_split_over_threads_moves_its_averages_by_the_whole_batch() {
    let (model, _) = batch_normalized_models();
    let averages = || -> Vec<Vec<f32>> {
        let weights = model.non_trainable_weights();
        let values = weights
            .iter()
            .map(|w| w.var.flatten_all().unwrap().to_vec1().unwrap());
        values.collect()
    };
    let start = averages();
    let x = pseudo_random(&[67, 6, 6, 1], 0.6);
    // The reference: one training call on the whole batch, through candle's ops.
    let reference = compiled(&model, "mse");
    reference_gradients(&model, reference.outputs[0].loss.as_ref(), &x, &x);
    let whole = averages();
    for (weight, values) in model.non_trainable_weights().iter().zip(&start) {
        weight
            .var
            .set(&Tensor::new(values.as_slice(), &Device::Cpu).unwrap())
            .unwrap();
    }
    let (xs, ys) = (one(&x), one(&x));
    let batch = Batch::whole(&xs, &ys, &Device::Cpu);
    on_two_threads(|| {
        assert_eq!(parts_of(&model, "mse", 67).len(), 2);
        let compiled = compiled(&model, "mse");
        training_gradients(&model, &compiled, &trainable(&model), &batch).unwrap();
    });
    let parts = averages();
    assert_ne!(whole, start, "the reference moved no average");
    for ((w, p), name) in whole
        .iter()
        .zip(&parts)
        .zip(["moving_mean", "moving_variance"])
    {
        for (a, b) in w.iter().zip(p) {
            assert!(
                (a - b).abs() <= 1e-6 * a.abs().max(1.0),
                "{name}: {a} vs {b}"
            );
        }
    }
}

#[test]
fn a_shuffled_batch_split_over_threads_gathers_each_part_where_it_runs() {
    let input = Input::new(&[10]);
    let h = Dense::new(6).activation("relu")(input);
    let model = Model::new(input, Dense::new(4).activation("sigmoid")(h)).unwrap();
    let (x, y) = (pseudo_random(&[60, 10], 0.2), pseudo_random(&[60, 4], 0.6));
    // 67 rows out of order, some of them twice.
    let ids: Vec<u32> = (0..67u32)
        .map(|i| (i * 23 + 5) % 60)
        .chain([7, 7])
        .collect();
    let compiled = compiled(&model, "binary_crossentropy");
    let vars = trainable(&model);
    let gathered = |t: &Tensor| {
        let ids = Tensor::new(ids.as_slice(), &Device::Cpu).unwrap();
        t.index_select(&ids, 0).unwrap()
    };
    let (loss_ref, _, grads_ref) = reference_gradients(
        &model,
        compiled.outputs[0].loss.as_ref(),
        &gathered(&x),
        &gathered(&y),
    );
    let (x, y) = (one(&x), one(&y));
    let (model, vars, ids, x, y) = (&model, &vars, &ids, &x, &y);
    let (loss, predictions, grads) = on_two_threads(move || {
        let rows = crate::batches::Rows::Indices(ids);
        let batch = Batch::new(x, y, rows, &Device::Cpu);
        training_gradients(model, &compiled, vars, &batch)
    })
    .unwrap();
    assert_eq!(predictions.len(), 2, "the batch was not split");
    assert_eq!(
        assert_agree(model, vars, (&loss_ref, &grads_ref), (&loss, &grads)),
        4
    );
}

/// The mean squared error under another name, without saying that it averages over samples.
struct OpaqueLoss(Box<dyn Loss>);

impl Loss for OpaqueLoss {
    fn name(&self) -> &str {
        "opaque"
    }

    fn compute(&self, y_true: &Tensor, y_pred: &Tensor) -> crate::Result<Tensor> {
        self.0.compute(y_true, y_pred)
    }

    fn config(&self) -> serde_json::Value {
        self.0.config()
    }
}

#[test]
fn a_batch_stays_whole_unless_layers_and_loss_allow_splitting_it() {
    let dense = |input| Model::new(input, Dense::new(3)(input)).unwrap();
    let free = dense(Input::new(&[4]));
    let fixed = dense(Input::batch_shape(&[64, 4]));
    let input = Input::new(&[4]);
    let lambda = Model::new(input, Lambda::new(|x: &Tensor| Ok(x.clone()))(input)).unwrap();
    let input = Input::new(&[4]);
    let centred = Model::new(input, CentreConfig.builder()(Dense::new(3)(input))).unwrap();
    let opaque = OpaqueLoss("mse".into_loss().unwrap());
    on_two_threads(|| {
        assert_eq!(parts_of(&free, "mse", 64), vec![0..32, 32..64]);
        assert_eq!(parts_of(&free, "mse", 31), vec![0..31]);
        assert_eq!(parts_of(&fixed, "mse", 64), vec![0..64]);
        assert_eq!(parts_of(&lambda, "mse", 64), vec![0..32, 32..64]);
        assert_eq!(parts_of(&centred, "mse", 64), vec![0..64]);
        let (normalized, _) = batch_normalized_models();
        assert_eq!(parts_of(&normalized, "mse", 64), vec![0..32, 32..64]);
        assert_eq!(parts_of(&free, opaque, 64), vec![0..64]);
    });
}

#[test]
fn activity_penalties_are_differentiated_by_the_layer_whole_or_split() {
    // The tutorial's sparse autoencoder's penalty (L1 on a ReLU code), an L1L2 penalty on a
    // sigmoid output whose loss comes from its logits, and one on an output read through a
    // Reshape (no logits).
    let input = Input::new(&[6, 6, 1]);
    let code = l1_penalized_code()(Flatten::new()(input));
    let head = Dense::new(36)
        .activation("sigmoid")
        .activity_regularizer(Regularizer::l1_l2(0.01, 0.02));
    let flat = Model::new(input, head(code)).unwrap();
    let input = Input::new(&[6, 6, 1]);
    let code = l1_penalized_code()(Flatten::new()(input));
    let image = Reshape::new(&[6, 6, 1])(Dense::new(36)
        .activation("sigmoid")
        .activity_regularizer(Regularizer::l2(0.03))(code));
    let reshaped = Model::new(input, image).unwrap();
    // Conv2D: on a fused ReLU, and on tanh (differentiated from its output).
    let input = Input::new(&[6, 6, 1]);
    let h = Conv2D::new(2, (3, 3))
        .activation("relu")
        .padding("same")
        .activity_regularizer(Regularizer::l1(0.05))(input);
    let conv = Model::new(
        input,
        Conv2D::new(1, (3, 3))
            .activation("tanh")
            .padding("same")
            .activity_regularizer(Regularizer::l1_l2(0.02, 0.04))(h),
    )
    .unwrap();
    let x = pseudo_random(&[67, 6, 6, 1], 0.3);
    let flat_y = x.reshape((67, 36)).unwrap();
    let run = || {
        assert_eq!(
            assert_same_gradients(&flat, "binary_crossentropy", &x, &flat_y),
            4
        );
        assert_eq!(
            assert_same_gradients(&reshaped, "binary_crossentropy", &x, &x),
            4
        );
        assert_eq!(assert_same_gradients(&conv, "mse", &x, &x), 4);
    };
    run();
    on_two_threads(|| {
        assert_eq!(
            parts_of(&flat, "binary_crossentropy", 67),
            vec![0..34, 34..67]
        );
        run();
    });
}

/// The sparse autoencoder's code layer: 5 ReLU units under an L1 activity penalty.
fn l1_penalized_code() -> Dense {
    Dense::new(5)
        .activation("relu")
        .activity_regularizer(Regularizer::l1(0.05))
}

/// The weights' values, in order.
fn weight_values(model: &Model) -> Vec<Vec<f32>> {
    model
        .weights()
        .iter()
        .map(|w| w.var.as_tensor().flatten_all().unwrap().to_vec1().unwrap())
        .collect()
}

#[test]
fn a_random_lambda_is_differentiated_through_the_call_the_forward_made() {
    // A dropout-like mask drawn afresh on every call: the backward pass must use the forward's
    // mask, not draw a new one.
    let input = Input::new(&[6]);
    let h = Dense::new(8).activation("relu")(input);
    let masked = Lambda::new(|x: &Tensor| {
        let draw = rkeras_layers::random::uniform(x.dims(), 0.0, 1.0, x.device())?;
        Ok((x * draw.ge(0.5)?.to_dtype(x.dtype())?)?)
    })(h);
    let model = Model::new(input, Dense::new(3)(masked)).unwrap();
    let (x, y) = (pseudo_random(&[5, 6], 0.2), pseudo_random(&[5, 3], 0.9));
    let compiled = compiled(&model, "mse");
    let vars = trainable(&model);
    // The reference draws from the stream the training path gives a batch run whole.
    let (_, _, reference) = with_stream(stream_key(STEP, 0, 1), || {
        reference_gradients(&model, compiled.outputs[0].loss.as_ref(), &x, &y)
    });
    let (_, _, layered) = training_gradients(
        &model,
        &compiled,
        &vars,
        &Batch::whole(&one(&x), &one(&y), &Device::Cpu),
    )
    .unwrap();
    for var in &vars {
        let expected: Vec<f32> = reference
            .get(var.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let got: Vec<f32> = layered
            .get(var)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        for (e, g) in expected.iter().zip(&got) {
            assert!(
                (e - g).abs() <= 1e-5 * e.abs().max(1.0),
                "autograd {e} vs layer-level {g}"
            );
        }
    }
}

/// The tutorial's dense autoencoder in small: a nested encoder and decoder whose output is a
/// sigmoid Dense.
fn sigmoid_headed_autoencoder(decoder_head: Dense) -> Model {
    let input = Input::new(&[12]);
    let encoder = Model::new(input, Dense::new(4).activation("relu")(input)).unwrap();
    let code = Input::new(&[4]);
    let decoder = Model::new(code, decoder_head(code)).unwrap();
    Model::new(input, decoder(encoder(input))).unwrap()
}

#[test]
fn training_and_evaluation_take_a_saturated_loss_from_the_logits() {
    // Logits of -30 against targets of 1: the cross-entropy is 30 per element; clipping the
    // probabilities at 1e-7 would report -ln(1e-7) = 16.12.
    let input = Input::new(&[2]);
    let head = Dense::new(2)
        .activation("sigmoid")
        .kernel_initializer(Initializer::Zeros)
        .bias_initializer(Initializer::Constant { value: -30.0 });
    let model = Model::new(input, head(input)).unwrap();
    let x = Tensor::ones((3, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
    let compiled = compiled(&model, "binary_crossentropy");
    let (loss, _, _) = training_gradients(
        &model,
        &compiled,
        &trainable(&model),
        &Batch::whole(&one(&x), &one(&x), &Device::Cpu),
    )
    .unwrap();
    let loss = loss.to_scalar::<f32>().unwrap();
    assert!((loss - 30.0).abs() < 1e-4, "training loss {loss}");
    let logs = super::super::evaluate_arrays(&model, &compiled, (&one(&x), &one(&x), None), 2, "")
        .unwrap();
    let evaluated = logs["loss"];
    assert!(
        (evaluated - 30.0).abs() < 1e-4,
        "evaluation loss {evaluated}"
    );
}

#[test]
fn evaluating_a_batch_split_over_threads_gives_the_whole_batch_loss_and_metrics() {
    let input = Input::new(&[5]);
    let h = Dense::new(6).activation("relu")(input);
    let out = Dense::new(3)
        .activation("sigmoid")
        .kernel_regularizer(Regularizer::l2(0.1))(h);
    let model = Model::new(input, out).unwrap();
    let (x, y) = (pseudo_random(&[64, 5], 0.4), pseudo_random(&[64, 3], 1.3));
    let mut compiled = compiled(&model, "binary_crossentropy");
    compiled.outputs[0].metrics = vec![crate::compile::IntoMetric::into_metric("mae")];
    // Independently: the whole batch through candle's ops, the penalty once, the mean |y - p|.
    let y_pred = model.forward(std::slice::from_ref(&x)).unwrap().remove(0);
    let mut expected_loss = compiled.outputs[0].loss.compute(&y, &y_pred).unwrap();
    for penalty in model.regularization_losses().unwrap() {
        expected_loss = (expected_loss + penalty).unwrap();
    }
    let expected_loss = expected_loss.to_scalar::<f32>().unwrap() as f64;
    let expected_mae = (&y - &y_pred)
        .unwrap()
        .abs()
        .unwrap()
        .mean_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap() as f64;
    let model = &model;
    let (x, y) = (&x, &y);
    let logs = on_two_threads(move || {
        assert_eq!(parts_of(model, "binary_crossentropy", 64).len(), 2);
        super::super::evaluate_arrays(model, &compiled, (&one(x), &one(y), None), 64, "").unwrap()
    });
    assert!(
        (logs["loss"] - expected_loss).abs() <= 1e-5 * expected_loss,
        "loss {} vs {expected_loss}",
        logs["loss"]
    );
    assert!(
        (logs["mae"] - expected_mae).abs() <= 1e-6,
        "mae {} vs {expected_mae}",
        logs["mae"]
    );
}

/// A test layer that mixes samples: it subtracts the batch mean (no hand-written backward).
#[derive(Clone)]
struct CentreConfig;

impl LayerConfig for CentreConfig {
    const CLASS_NAME: &'static str = "Centre";
    const NAME_PREFIX: &'static str = "centre";

    fn make(&self, name: String, trainable: bool) -> LayerResult<Arc<dyn Layer>> {
        Ok(Arc::new(CentreLayer {
            base: LayerBase::new(name, trainable),
        }))
    }
}

struct CentreLayer {
    base: LayerBase,
}

impl Layer for CentreLayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        CentreConfig::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> LayerResult<Vec<SymbolicShape>> {
        Ok(inputs.to_vec())
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext) -> LayerResult<Vec<Tensor>> {
        Ok(vec![inputs[0].broadcast_sub(&inputs[0].mean_keepdim(0)?)?])
    }

    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "name": self.name() })
    }

    fn mixes_samples(&self) -> bool {
        true
    }
}

/// A user-defined layer with what the built-in ones have and more: two inputs `a` and `b`, a
/// weight of its own (`gate`, one per feature), random draws and a loss it adds; no
/// hand-written backward. `a · sigmoid(gate) + b · u` with `u` drawn from U(0.5, 1.5), adding
/// `0.01 · mean(gate²)`.
#[derive(Clone)]
struct GatedMixConfig;

impl LayerConfig for GatedMixConfig {
    const CLASS_NAME: &'static str = "GatedMix";
    const NAME_PREFIX: &'static str = "gated_mix";

    fn make(&self, name: String, trainable: bool) -> LayerResult<Arc<dyn Layer>> {
        Ok(Arc::new(GatedMixLayer {
            base: LayerBase::new(name, trainable),
            gate: std::sync::OnceLock::new(),
        }))
    }
}

struct GatedMixLayer {
    base: LayerBase,
    gate: std::sync::OnceLock<Var>,
}

impl Layer for GatedMixLayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        GatedMixConfig::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> LayerResult<Vec<SymbolicShape>> {
        let features = inputs[0].last().unwrap_or(1);
        if self.gate.get().is_none() {
            let values: Vec<f32> = (0..features).map(|i| 0.3 * i as f32 - 0.2).collect();
            let _ = self
                .gate
                .set(Var::from_vec(values, features, &Device::Cpu)?);
        }
        Ok(vec![inputs[0].clone()])
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext) -> LayerResult<Vec<Tensor>> {
        let (a, b) = (&inputs[0], &inputs[1]);
        let gate = ctx.weight(self.gate.get().expect("built"));
        let noise = rkeras_layers::random::uniform(b.dims(), 0.5, 1.5, b.device())?;
        ctx.add_loss((gate.sqr()?.mean_all()? * 0.01)?);
        let gated = a.broadcast_mul(&ActivationFn::Sigmoid.apply(&gate)?)?;
        Ok(vec![(gated + (b * noise)?)?])
    }

    fn weights(&self) -> Vec<rkeras_layers::Weight> {
        self.gate
            .get()
            .map(|gate| vec![self.base.weight("gate", gate)])
            .unwrap_or_default()
    }

    fn config(&self) -> serde_json::Value {
        self.base.config()
    }
}

/// Conv2D and Dense layers around a [`GatedMixLayer`]: image → two codes → mixed → image.
fn model_with_a_user_layer() -> Model {
    let input = Input::new(&[6, 6, 1]);
    let h = Flatten::new()(Conv2D::new(2, (3, 3)).activation("relu")(input));
    let (a, b) = (Dense::new(3)(h), Dense::new(3).activation("tanh")(h));
    let mixed = GatedMixConfig.builder()([a, b].into());
    let image = Reshape::new(&[6, 6, 1])(Dense::new(36).activation("sigmoid")(mixed));
    Model::new(input, image).unwrap()
}

#[test]
fn a_user_defined_layer_trains_on_the_layer_path_as_whole_model_autograd_would() {
    let model = model_with_a_user_layer();
    let x = pseudo_random(&[4, 6, 6, 1], 0.3);
    let compiled = compiled(&model, "binary_crossentropy");
    let vars = trainable(&model);
    // The reference draws the noise from the stream the training path gives a batch run whole,
    // and adds the layer's loss like every added loss.
    let (loss_ref, _, grads_ref) = with_stream(stream_key(STEP, 0, 1), || {
        reference_gradients(&model, compiled.outputs[0].loss.as_ref(), &x, &x)
    });
    let (loss, _, grads) = training_gradients(
        &model,
        &compiled,
        &vars,
        &Batch::whole(&one(&x), &one(&x), &Device::Cpu),
    )
    .unwrap();
    assert_eq!(
        assert_agree(&model, &vars, (&loss_ref, &grads_ref), (&loss, &grads)),
        9
    );
    // The added term is in the loss: without it the loss is the cross-entropy alone.
    let plain = with_stream(stream_key(STEP, 0, 1), || {
        let y_pred = model.forward(std::slice::from_ref(&x)).unwrap().remove(0);
        compiled.outputs[0].loss.compute(&x, &y_pred).unwrap()
    });
    let added = loss.to_scalar::<f32>().unwrap() - plain.to_scalar::<f32>().unwrap();
    assert!(added > 1e-5, "added term {added}");
    // The batch is split over threads like any per-sample model's.
    on_two_threads(|| {
        assert_eq!(parts_of(&model, "binary_crossentropy", 64).len(), 2);
    });
}

#[test]
fn the_composed_implementations_other_devices_run_give_the_kernels_gradients() {
    // On CUDA and Metal, layers with CPU kernels run their composed forms, differentiated by
    // candle's autograd over each call: here on the CPU, against the kernels' own backward.
    let (nested, _) = nested_autoencoder();
    let models = [
        (nested, pseudo_random(&[3, 8, 8, 1], 0.4), 4),
        (
            model_with_a_user_layer(),
            pseudo_random(&[3, 6, 6, 1], 0.2),
            9,
        ),
    ];
    for (model, x, weights) in models {
        let compiled = compiled(&model, "binary_crossentropy");
        let vars = trainable(&model);
        let xs = one(&x);
        let batch = Batch::whole(&xs, &xs, &Device::Cpu);
        let (loss, _, grads) = training_gradients(&model, &compiled, &vars, &batch).unwrap();
        let (loss_composed, _, grads_composed) = rkeras_ops::with_composed_ops(|| {
            training_gradients(&model, &compiled, &vars, &batch).unwrap()
        });
        let (a, b) = (
            loss.to_scalar::<f32>().unwrap(),
            loss_composed.to_scalar::<f32>().unwrap(),
        );
        assert!((a - b).abs() <= 1e-5 * a.abs(), "loss {a} vs {b}");
        let mut compared = 0;
        for var in &vars {
            let (Some(kernel), Some(composed)) = (grads.get(var), grads_composed.get(var)) else {
                panic!("a gradient is missing");
            };
            let k: Vec<f32> = kernel.flatten_all().unwrap().to_vec1().unwrap();
            let c: Vec<f32> = composed.flatten_all().unwrap().to_vec1().unwrap();
            let scale = k.iter().fold(1e-12f32, |m, v| m.max(v.abs()));
            for (k, c) in k.iter().zip(&c) {
                assert!((k - c).abs() <= 1e-4 * scale, "kernel {k} vs composed {c}");
            }
            compared += 1;
        }
        assert_eq!(compared, weights);
    }
}

#[test]
fn sigmoid_outputs_give_the_loss_their_logits_through_nested_models_only() {
    let reads_logits = |model: &Model, loss: &str, output: usize| {
        Head::new(model, &compiled(model, loss).outputs).logits_of(output)
            == Some(ActivationFn::Sigmoid)
    };
    for head in [
        Dense::new(12).activation("sigmoid"),
        Dense::new(12).activation("sigmoid").use_bias(false),
        Dense::new(12)
            .activation("sigmoid")
            .kernel_regularizer(Regularizer::l2(0.01)),
    ] {
        let model = sigmoid_headed_autoencoder(head);
        assert!(reads_logits(&model, "binary_crossentropy", 0));
        assert!(!reads_logits(&model, "mse", 0));
        // The loss from the logits equals the clipped one (nothing saturates here), and the
        // gradients through the logits equal autograd's through the clip, the log and the sigmoid.
        let x = pseudo_random(&[5, 12], 0.9);
        let with_gradient = assert_same_gradients(&model, "binary_crossentropy", &x, &x);
        assert!(with_gradient >= 3, "{with_gradient}");
    }
    // Not where the output is read again, repeated, reshaped (as Keras: the reshaped tensor
    // carries no logits), penalised, or not a sigmoid's.
    let input = Input::new(&[6]);
    let probabilities = Dense::new(6).activation("sigmoid")(input);
    let reshaped = Reshape::new(&[2, 3])(probabilities);
    let penalised = Dense::new(6)
        .activation("sigmoid")
        .activity_regularizer(Regularizer::l1(0.1))(input);
    let others = [
        Model::new(input, vec![probabilities, probabilities]).unwrap(),
        Model::new(input, vec![probabilities, Dense::new(2)(probabilities)]).unwrap(),
        Model::new(input, reshaped).unwrap(),
        Model::new(input, penalised).unwrap(),
        Model::new(input, Dense::new(6).activation("tanh")(input)).unwrap(),
    ];
    for model in others {
        assert!(!reads_logits(&model, "binary_crossentropy", 0), "{model:?}");
    }
    // Each output on its own: two sigmoid heads both take their logits, under a list of losses
    // only the cross-entropy's does.
    let two = Model::new(
        input,
        vec![
            Dense::new(2).activation("sigmoid")(input),
            Dense::new(3).activation("sigmoid")(input),
        ],
    )
    .unwrap();
    assert!(reads_logits(&two, "binary_crossentropy", 0));
    assert!(reads_logits(&two, "binary_crossentropy", 1));
    let mixed = Compiled::new(
        &two,
        "sgd".into_optimizer().unwrap(),
        ["mse", "binary_crossentropy"].into_losses().unwrap(),
        CompileOptions::new(),
    )
    .unwrap();
    let head = Head::new(&two, &mixed.outputs);
    assert_eq!(
        (head.logits_of(0), head.logits_of(1)),
        (None, Some(ActivationFn::Sigmoid))
    );
}

#[test]
fn softmax_outputs_give_the_categorical_losses_their_logits() {
    let input = Input::new(&[6]);
    let hidden = Dense::new(5).activation("relu")(input);
    let model = Model::new(input, Dense::new(4).activation("softmax")(hidden)).unwrap();
    for loss in [
        "categorical_crossentropy",
        "sparse_categorical_crossentropy",
    ] {
        let head = Head::new(&model, &compiled(&model, loss).outputs);
        assert_eq!(head.logits_of(0), Some(ActivationFn::Softmax), "{loss}");
    }
    assert_eq!(
        Head::new(&model, &compiled(&model, "binary_crossentropy").outputs).logits_of(0),
        None
    );
    // The loss from the logits and its gradient equal autograd's through the softmax, the clip
    // and the log, with one-hot targets and with labels.
    let x = pseudo_random(&[7, 6], 0.4);
    let labels: Vec<u32> = (0..7).map(|i| (i * 3 % 4) as u32).collect();
    let onehot = Tensor::from_vec(
        (0..28)
            .map(|i| f32::from(labels[i / 4] as usize == i % 4))
            .collect::<Vec<_>>(),
        (7, 4),
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(
        assert_same_gradients(&model, "categorical_crossentropy", &x, &onehot),
        4
    );
    let labels = Tensor::new(labels.as_slice(), &Device::Cpu).unwrap();
    assert_eq!(
        assert_same_gradients(&model, "sparse_categorical_crossentropy", &x, &labels),
        4
    );
    // Through a nested model, and from a Conv2D's sigmoid.
    let outer_input = Input::new(&[6]);
    let nested = Model::new(outer_input, model(outer_input)).unwrap();
    let head = Head::new(
        &nested,
        &compiled(&nested, "categorical_crossentropy").outputs,
    );
    assert_eq!(head.logits_of(0), Some(ActivationFn::Softmax));
    let image = Input::new(&[5, 5, 1]);
    let conv = Model::new(image, Conv2D::new(1, (3, 3)).activation("sigmoid")(image)).unwrap();
    let head = Head::new(&conv, &compiled(&conv, "binary_crossentropy").outputs);
    assert_eq!(head.logits_of(0), Some(ActivationFn::Sigmoid));
}

/// The weights after `fit` with SGD (no shuffling, batches of 4, 2 epochs) from `start`, and by
/// a loop written here: the reference gradients of each batch, `w -= 0.01 · g`.
fn fit_and_reference_loop(model: &Model, x: &Tensor, start: &[Vec<f32>]) -> [Vec<Vec<f32>>; 2] {
    let set = |values: &[Vec<f32>]| {
        for (w, values) in model.weights().iter().zip(values) {
            let t = Tensor::from_slice(values, w.var.shape(), &Device::Cpu).unwrap();
            w.var.set(&t).unwrap();
        }
    };
    set(start);
    model
        .compile(
            crate::optimizers::SGD::new().learning_rate(0.01),
            "binary_crossentropy",
        )
        .unwrap();
    let options = FitOptions::new()
        .epochs(2)
        .batch_size(4)
        .shuffle(false)
        .verbose(0);
    model.fit(x, x, options).unwrap();
    let fitted = weight_values(model);
    set(start);
    let loss = "binary_crossentropy".into_loss().unwrap();
    let rows = x.dim(0).unwrap();
    for _ in 0..2 {
        for first in (0..rows).step_by(4) {
            let xb = x.narrow(0, first, 4.min(rows - first)).unwrap();
            let (_, _, grads) = reference_gradients(model, loss.as_ref(), &xb, &xb);
            for w in model.trainable_weights() {
                let g = grads.get(w.var.as_tensor()).unwrap();
                w.var
                    .set(&(w.var.as_tensor() - (g * 0.01).unwrap()).unwrap())
                    .unwrap();
            }
        }
    }
    [fitted, weight_values(model)]
}

#[test]
fn fit_trains_as_a_hand_written_autograd_loop_does() {
    let (model, _) = nested_autoencoder();
    let start = weight_values(&model);
    let [fitted, reference] =
        fit_and_reference_loop(&model, &pseudo_random(&[12, 8, 8, 1], 0.3), &start);
    assert_ne!(fitted, start, "training changed nothing");
    for (a, b) in fitted.iter().flatten().zip(reference.iter().flatten()) {
        assert!((a - b).abs() <= 1e-5, "weight {a} vs {b}");
    }
}

#[test]
fn seeded_runs_with_random_layers_split_over_threads_repeat_bit_for_bit() {
    let run = || {
        on_two_threads(|| {
            set_random_seed(11);
            let model = model_with_a_user_layer();
            model.compile("adam", "binary_crossentropy").unwrap();
            let x = pseudo_random(&[64, 6, 6, 1], 0.5);
            let options = FitOptions::new()
                .epochs(2)
                .batch_size(32)
                .validation_data(&x, &x)
                .verbose(0);
            let history = model.fit(&x, &x, options).unwrap().history;
            (history, weight_values(&model))
        })
    };
    let (first, second) = (run(), run());
    assert_eq!(first.0["loss"], second.0["loss"]);
    assert_eq!(first.0["val_loss"], second.0["val_loss"]);
    assert_eq!(first.1, second.1);
}

#[test]
fn one_train_step_updates_the_weights() {
    let (model, _) = nested_autoencoder();
    let before = weight_values(&model);
    let mut compiled = compiled(&model, "binary_crossentropy");
    let x = pseudo_random(&[2, 8, 8, 1], 0.9);
    let head = Head::new(&model, &compiled.outputs);
    let (loss, y_pred) = train_step(
        &head,
        &model,
        compiled.optimizer.as_mut(),
        &trainable(&model),
        &Batch::whole(&one(&x), &one(&x), &Device::Cpu),
        STEP,
    )
    .unwrap();
    let loss = loss.total.to_scalar::<f32>().unwrap();
    assert!(loss.is_finite() && loss > 0.0);
    assert_eq!(whole_prediction(&y_pred).dims(), x.dims());
    assert_ne!(before, weight_values(&model));
}

/// keras.io's VAE sampling: `mean + exp(log_var / 2) · ε`, adding `-0.5 · mean(Σ (1 + log_var
/// - mean² - exp(log_var)))`; no hand-written backward.
#[derive(Clone)]
struct SamplingConfig;

impl LayerConfig for SamplingConfig {
    const CLASS_NAME: &'static str = "Sampling";
    const NAME_PREFIX: &'static str = "sampling";

    fn make(&self, name: String, trainable: bool) -> LayerResult<Arc<dyn Layer>> {
        Ok(Arc::new(SamplingLayer {
            base: LayerBase::new(name, trainable),
        }))
    }
}

struct SamplingLayer {
    base: LayerBase,
}

impl Layer for SamplingLayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        SamplingConfig::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> LayerResult<Vec<SymbolicShape>> {
        Ok(vec![inputs[0].clone()])
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext) -> LayerResult<Vec<Tensor>> {
        let (mean, log_var) = (&inputs[0], &inputs[1]);
        let epsilon = rkeras_layers::random::normal(mean.dims(), 0.0, 1.0, mean.device())?;
        let kl = ((log_var + 1.0)? - mean.sqr()? - log_var.exp()?)?
            .sum(1)?
            .mean_all()?
            .affine(-0.5, 0.0)?;
        ctx.add_loss(kl);
        Ok(vec![(mean + ((log_var * 0.5)?.exp()? * epsilon)?)?])
    }

    fn config(&self) -> serde_json::Value {
        self.base.config()
    }
}

/// keras.io's VAE in small: an encoder model with three outputs (mean, log-variance, code) of
/// which only the code is used, strided 'same' convolutions, a Conv2DTranspose decoder model.
fn small_vae() -> Model {
    let image = Input::new(&[8, 8, 1]);
    let h = Conv2D::new(3, (3, 3))
        .strides(2)
        .padding("same")
        .activation("relu")(image);
    let h = Conv2D::new(4, (3, 3))
        .strides(2)
        .padding("same")
        .activation("relu")(h);
    let h = Dense::new(5).activation("relu")(Flatten::new()(h));
    let (mean, log_var) = (Dense::new(2)(h), Dense::new(2)(h));
    let code = SamplingConfig.builder()([mean, log_var].into());
    let encoder = Model::new(image, [mean, log_var, code]).unwrap();
    let latent = Input::new(&[2]);
    let h = Reshape::new(&[2, 2, 4])(Dense::new(16).activation("relu")(latent));
    let h = Conv2DTranspose::new(4, (3, 3))
        .strides(2)
        .padding("same")
        .activation("relu")(h);
    let h = Conv2DTranspose::new(3, (3, 3))
        .strides(2)
        .padding("same")
        .activation("relu")(h);
    let out = Conv2DTranspose::new(1, (3, 3))
        .padding("same")
        .activation("sigmoid")(h);
    let decoder = Model::new(latent, out).unwrap();
    let input = Input::new(&[8, 8, 1]);
    Model::new(input, decoder(encoder(input).get(2))).unwrap()
}

#[test]
fn a_vae_with_an_unused_encoder_output_trains_as_whole_model_autograd_would() {
    let model = small_vae();
    let x = pseudo_random(&[4, 8, 8, 1], 0.7);
    let compiled = compiled(&model, "binary_crossentropy");
    let vars = trainable(&model);
    let (loss_ref, _, grads_ref) = with_stream(stream_key(STEP, 0, 1), || {
        reference_gradients(&model, compiled.outputs[0].loss.as_ref(), &x, &x)
    });
    let (loss, _, grads) = training_gradients(
        &model,
        &compiled,
        &vars,
        &Batch::whole(&one(&x), &one(&x), &Device::Cpu),
    )
    .unwrap();
    assert_eq!(
        assert_agree(&model, &vars, (&loss_ref, &grads_ref), (&loss, &grads)),
        vars.len()
    );
}
