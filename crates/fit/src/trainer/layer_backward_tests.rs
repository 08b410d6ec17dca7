//! The layer-level backward pass against candle's autograd over the whole model: same loss,
//! same gradient for every trainable weight, same training.

use candle_core::{Device, Tensor, Var};
use rkeras_layers::layer::WeightGrads;
use rkeras_layers::{
    ActivationLayer, CallContext, Conv2D, Dense, Flatten, Initializer, Input, Lambda, MaxPooling2D,
    Regularizer, Reshape, UpSampling2D,
};
use rkeras_model::Model;

use super::{
    autograd_gradients, gradient_terms, layer_gradients, step_path, train_step, StepPath,
    FORCE_AUTOGRAD,
};
use crate::batches::Batch;
use crate::compile::{Compiled, IntoLoss, IntoOptimizer};
use crate::losses::Loss;
use crate::test_threads::on_two_threads;
use crate::trainer::batch_parts::batch_parts;
use crate::trainer::gradient_sum::sum_gradient_terms;
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

fn compiled(loss: &str) -> Compiled {
    Compiled {
        optimizer: "sgd".into_optimizer().unwrap(),
        loss: loss.into_loss().unwrap(),
        metric_names: Vec::new(),
    }
}

fn trainable(model: &Model) -> Vec<Var> {
    model
        .trainable_weights()
        .into_iter()
        .map(|w| w.var)
        .collect()
}

/// [`layer_gradients`] with each variable's gradient parts added up as the training step adds them.
fn summed_layer_gradients(
    model: &Model,
    compiled: &Compiled,
    vars: &[Var],
    batch: &Batch<'_>,
) -> crate::Result<(Tensor, PartOutputs, WeightGrads)> {
    let (loss, predictions, parts) = layer_gradients(model, compiled, vars, batch)?;
    let mut sums = WeightGrads::new(vars);
    for (var, sum) in sum_gradient_terms(&gradient_terms(&parts, vars))? {
        sums.add(var, sum)?;
    }
    Ok((loss, predictions, sums))
}

/// The prediction of a batch from the `(targets, prediction)` of the parts it ran in.
fn whole_prediction(parts: &[(Tensor, Tensor)]) -> Tensor {
    let predictions: Vec<&Tensor> = parts.iter().map(|(_, y_pred)| y_pred).collect();
    Tensor::cat(&predictions, 0).unwrap()
}

/// Both paths on one batch: the losses agree, and every trainable weight's gradient agrees to
/// 1e-4 relative to the gradient's largest magnitude (the kernels' parallel reductions may sum
/// in another order from run to run; a 0.1% error in a derivative is still caught). Returns how
/// many weights had a gradient.
fn assert_same_gradients(model: &Model, loss: &str, x: &Tensor, y: &Tensor) -> usize {
    assert_eq!(
        step_path(model),
        StepPath::LayerBackward,
        "{}",
        model.name()
    );
    let compiled = compiled(loss);
    let vars = trainable(model);
    let (loss_ref, pred_ref, grads_ref) = autograd_gradients(model, &compiled, x, y).unwrap();
    let (loss_new, pred_new, grads_new) =
        summed_layer_gradients(model, &compiled, &vars, &Batch::whole(x, y, &Device::Cpu)).unwrap();
    let pred_new = whole_prediction(&pred_new);
    let max_diff = (pred_ref - &pred_new)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert_eq!(max_diff, 0.0, "the predictions differ");
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
    let h = ActivationLayer::new("softplus")(h);
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
    assert_eq!(step_path(&autoencoder), StepPath::LayerBackward);
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
    let bce = compiled("binary_crossentropy");
    on_two_threads(|| {
        // 37 rows: parts of 19 and 18, so the parts' shares differ.
        assert_eq!(
            batch_parts(&autoencoder, bce.loss.as_ref(), 37),
            vec![0..19, 19..37]
        );
        let x = pseudo_random(&[37, 6, 6, 1], 0.3);
        assert_eq!(
            assert_same_gradients(&autoencoder, "binary_crossentropy", &x, &x),
            6
        );
        let y = pseudo_random(&[37, 6, 6, 1], 0.8);
        assert_eq!(assert_same_gradients(&autoencoder, "mse", &x, &y), 6);
        let x = pseudo_random(&[33, 28, 28, 1], 0.1);
        assert_eq!(batch_parts(&conv, bce.loss.as_ref(), 33).len(), 2);
        assert_eq!(
            assert_same_gradients(&conv, "binary_crossentropy", &x, &x),
            12
        );
    });
}

#[test]
fn a_shuffled_batch_split_over_threads_gathers_each_part_where_it_runs() {
    let input = Input::new(&[10]);
    let h = Dense::new(6).activation("relu")(input);
    let model = Model::new(input, Dense::new(4).activation("sigmoid")(h)).unwrap();
    let (x, y) = (pseudo_random(&[60, 10], 0.2), pseudo_random(&[60, 4], 0.6));
    // 37 rows out of order, some of them twice.
    let ids: Vec<u32> = (0..37u32)
        .map(|i| (i * 23 + 5) % 60)
        .chain([7, 7])
        .collect();
    let compiled = compiled("binary_crossentropy");
    let vars = trainable(&model);
    let gathered = |t: &Tensor| {
        let ids = Tensor::new(ids.as_slice(), &Device::Cpu).unwrap();
        t.index_select(&ids, 0).unwrap()
    };
    let (loss_ref, _, grads_ref) =
        autograd_gradients(&model, &compiled, &gathered(&x), &gathered(&y)).unwrap();
    let (model, vars, ids, x, y) = (&model, &vars, &ids, &x, &y);
    let (loss, predictions, grads) = on_two_threads(move || {
        let rows = crate::batches::Rows::Indices(ids);
        let batch = Batch::new(x, y, rows, &Device::Cpu);
        summed_layer_gradients(model, &compiled, vars, &batch)
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
    let mse = compiled("mse");
    let opaque = OpaqueLoss("mse".into_loss().unwrap());
    on_two_threads(|| {
        assert_eq!(
            batch_parts(&free, mse.loss.as_ref(), 64),
            vec![0..32, 32..64]
        );
        assert_eq!(batch_parts(&free, mse.loss.as_ref(), 31), vec![0..31]);
        assert_eq!(batch_parts(&fixed, mse.loss.as_ref(), 64), vec![0..64]);
        assert_eq!(batch_parts(&lambda, mse.loss.as_ref(), 64), vec![0..64]);
        assert_eq!(batch_parts(&free, &opaque, 64), vec![0..64]);
    });
}

#[test]
fn activations_without_a_fused_kernel_keep_the_autograd_path() {
    let input = Input::new(&[4, 4, 1]);
    let out = Dense::new(2).activation("elu")(Flatten::new()(input));
    assert_eq!(
        step_path(&Model::new(input, out).unwrap()),
        StepPath::Autograd
    );
    // Nested: one such layer inside a sub-model is enough.
    let inner_input = Input::new(&[4, 4, 1]);
    let inner = Model::new(inner_input, Dense::new(3).activation("elu")(inner_input)).unwrap();
    let input = Input::new(&[4, 4, 1]);
    let out = Conv2D::new(1, (1, 1))(inner(input));
    assert_eq!(
        step_path(&Model::new(input, out).unwrap()),
        StepPath::Autograd
    );
    for conv in [
        Conv2D::new(1, (3, 3)).kernel_regularizer(Regularizer::l2(0.1)),
        Conv2D::new(1, (3, 3)).activity_regularizer(Regularizer::l1(0.01)),
    ] {
        let input = Input::new(&[4, 4, 1]);
        assert_eq!(
            step_path(&Model::new(input, conv(input)).unwrap()),
            StepPath::LayerBackward
        );
    }
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
    let x = pseudo_random(&[37, 6, 6, 1], 0.3);
    let flat_y = x.reshape((37, 36)).unwrap();
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
        let bce = compiled("binary_crossentropy");
        assert_eq!(
            batch_parts(&flat, bce.loss.as_ref(), 37),
            vec![0..19, 19..37]
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

/// Trains `model` twice from its current weights, by candle's autograd and by the layers' own
/// backward passes (Adam, binary cross-entropy, `x -> x` validated on `x`, batches of
/// `batch_size` in order): the losses, validation losses and final weights agree.
fn assert_fit_agrees_on_both_paths(model: &Model, x: &Tensor, batch_size: usize) {
    let start = weight_values(model);
    let run = |force_autograd: bool| {
        for (w, values) in model.weights().iter().zip(&start) {
            let t = Tensor::from_slice(values, w.var.shape(), &Device::Cpu).unwrap();
            w.var.set(&t).unwrap();
        }
        model.compile("adam", "binary_crossentropy").unwrap();
        FORCE_AUTOGRAD.set(force_autograd);
        let history = model.fit(
            x,
            x,
            FitOptions::new()
                .epochs(3)
                .batch_size(batch_size)
                .shuffle(false)
                .validation_data(x, x)
                .verbose(0),
        );
        FORCE_AUTOGRAD.set(false);
        let history = history.unwrap().history;
        (
            history["loss"].clone(),
            history["val_loss"].clone(),
            weight_values(model),
        )
    };
    let (losses_ref, val_ref, weights_ref) = run(true);
    let (losses_new, val_new, weights_new) = run(false);
    assert_eq!(losses_ref.len(), 3);
    let pairs = losses_ref
        .iter()
        .zip(&losses_new)
        .chain(val_ref.iter().zip(&val_new));
    for (a, b) in pairs {
        assert!((a - b).abs() <= 1e-5 * a.abs(), "loss {a} vs {b}");
    }
    assert!(losses_new[2] < losses_new[0], "training lowers the loss");
    for (a, b) in weights_ref
        .iter()
        .flatten()
        .zip(weights_new.iter().flatten())
    {
        assert!((a - b).abs() <= 1e-4, "weight {a} vs {b}");
    }
}

#[test]
fn fit_gives_the_same_losses_and_weights_on_both_paths() {
    let (model, _) = nested_autoencoder();
    assert_fit_agrees_on_both_paths(&model, &pseudo_random(&[12, 8, 8, 1], 0.3), 4);
}

#[test]
fn fit_with_activity_penalties_in_a_sub_model_agrees_on_both_paths_split_over_threads() {
    // The sparse autoencoder's shape: an L1 penalty on the code, inside the encoder sub-model.
    let input = Input::new(&[6, 6, 1]);
    let code = l1_penalized_code()(Flatten::new()(input));
    let encoder = Model::new(input, code).unwrap();
    let code_input = Input::new(&[5]);
    let image = Reshape::new(&[6, 6, 1])(Dense::new(36).activation("sigmoid")(code_input));
    let decoder = Model::new(code_input, image).unwrap();
    let input = Input::new(&[6, 6, 1]);
    let autoencoder = Model::new(input, decoder(encoder(input))).unwrap();
    assert_eq!(step_path(&autoencoder), StepPath::LayerBackward);
    on_two_threads(|| {
        let bce = compiled("binary_crossentropy");
        assert_eq!(
            batch_parts(&autoencoder, bce.loss.as_ref(), 32),
            vec![0..16, 16..32]
        );
        assert_fit_agrees_on_both_paths(&autoencoder, &pseudo_random(&[64, 6, 6, 1], 0.6), 32);
    });
}

#[test]
fn one_train_step_on_the_layer_path_updates_the_weights() {
    let (model, _) = nested_autoencoder();
    let before = weight_values(&model);
    let mut compiled = compiled("binary_crossentropy");
    let x = pseudo_random(&[2, 8, 8, 1], 0.9);
    let (loss, y_pred) = train_step(
        &model,
        &mut compiled,
        &trainable(&model),
        step_path(&model),
        &Batch::whole(&x, &x, &Device::Cpu),
    )
    .unwrap();
    assert!(loss.is_finite() && loss > 0.0);
    assert_eq!(whole_prediction(&y_pred).dims(), x.dims());
    assert_ne!(before, weight_values(&model));
}

/// This process's CPU time (user + system, all threads) in seconds, from `/proc/self/stat`.
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // The fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')').expect("stat format") + 2..]
        .split(' ')
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // USER_HZ is 100 on Linux.
    ticks / 100.0
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The tutorial autoencoder's training step at batch 256 on both paths, alternating, medians of
/// CPU and wall time (run with `cargo test -p rkeras-fit --release -- --ignored --nocapture
/// autoencoder_step_paths`).
#[test]
#[ignore]
fn autoencoder_step_paths() {
    let model = conv_autoencoder();
    let x = pseudo_random(&[256, 28, 28, 1], 0.0);
    let vars = trainable(&model);
    let mut compiled = compiled("binary_crossentropy");
    let mut times = [(Vec::new(), Vec::new()), (Vec::new(), Vec::new())];
    for round in 0..8 {
        for (path, force) in [(0, true), (1, false)] {
            FORCE_AUTOGRAD.set(force);
            let (cpu, wall) = (process_cpu_seconds(), std::time::Instant::now());
            train_step(
                &model,
                &mut compiled,
                &vars,
                step_path(&model),
                &Batch::whole(&x, &x, &Device::Cpu),
            )
            .unwrap();
            let (cpu, wall) = (process_cpu_seconds() - cpu, wall.elapsed().as_secs_f64());
            if round > 0 {
                times[path].0.push(cpu);
                times[path].1.push(wall);
            }
        }
    }
    FORCE_AUTOGRAD.set(false);
    for (name, (cpu, wall)) in ["autograd", "layer-level"].iter().zip(times) {
        println!(
            "{name:>12}: CPU {:.0} ms, wall {:.0} ms (median of {})",
            median(cpu.clone()) * 1e3,
            median(wall) * 1e3,
            cpu.len()
        );
    }
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
    assert_eq!(step_path(&model), StepPath::LayerBackward);
    let (x, y) = (pseudo_random(&[5, 6], 0.2), pseudo_random(&[5, 3], 0.9));
    let compiled = compiled("mse");
    let vars = trainable(&model);
    rkeras_layers::session::set_random_seed(3);
    let (_, _, reference) = autograd_gradients(&model, &compiled, &x, &y).unwrap();
    rkeras_layers::session::set_random_seed(3);
    let (_, _, layered) = summed_layer_gradients(
        &model,
        &compiled,
        &vars,
        &Batch::whole(&x, &y, &Device::Cpu),
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
fn a_sigmoid_output_gives_the_loss_its_logits_through_nested_models() {
    let heads = [
        Dense::new(12).activation("sigmoid"),
        Dense::new(12).activation("sigmoid").use_bias(false),
        Dense::new(12)
            .activation("sigmoid")
            .kernel_regularizer(Regularizer::l2(0.01)),
    ];
    for head in heads {
        let model = sigmoid_headed_autoencoder(head);
        let x = pseudo_random(&[5, 12], 0.9);
        let record = model
            .as_layer()
            .call_recorded(std::slice::from_ref(&x), &mut logits_context(true))
            .unwrap();
        assert!(record.output_logits(0).is_some(), "no logits kept");
        let unasked = model
            .as_layer()
            .call_recorded(std::slice::from_ref(&x), &mut logits_context(false))
            .unwrap();
        assert!(unasked.output_logits(0).is_none(), "logits kept unasked");
        // The loss from the logits equals the clipped one (nothing saturates here), and the
        // gradients through the logits equal autograd's through the clip, the log and the sigmoid.
        let with_gradient = assert_same_gradients(&model, "binary_crossentropy", &x, &x);
        assert!(with_gradient >= 3, "{with_gradient}");
    }
}

/// A detached training context that asks (or not) for the output's logits.
fn logits_context(keep: bool) -> CallContext {
    let mut ctx = CallContext::detached_training();
    ctx.set_keep_logits(keep);
    ctx
}

#[test]
fn logits_are_kept_only_where_the_output_goes_nowhere_else() {
    let input = Input::new(&[6]);
    let probabilities = Dense::new(6).activation("sigmoid")(input);
    let doubled = Model::new(input, vec![probabilities, probabilities]).unwrap();
    let read_again = Model::new(input, vec![probabilities, Dense::new(2)(probabilities)]).unwrap();
    let x = pseudo_random(&[2, 6], 0.2);
    for model in [doubled, read_again] {
        let record = model
            .as_layer()
            .call_recorded(std::slice::from_ref(&x), &mut logits_context(true))
            .unwrap();
        assert!(record.output_logits(0).is_none(), "{}", model.name());
    }
}

#[test]
fn a_sigmoid_inside_the_model_keeps_no_logits() {
    // The tutorial's decoders end with a Reshape after the sigmoid Dense: Keras computes the
    // loss from the clipped probabilities there, and the Dense has no reason to keep logits.
    let input = Input::new(&[6]);
    let image = Reshape::new(&[2, 3])(Dense::new(6).activation("sigmoid")(input));
    let model = Model::new(input, image).unwrap();
    let x = pseudo_random(&[2, 6], 0.4);
    let record = model
        .as_layer()
        .call_recorded(std::slice::from_ref(&x), &mut logits_context(true))
        .unwrap();
    assert!(record.output_logits(0).is_none());
    let nodes = record
        .state
        .as_ref()
        .and_then(|state| state.downcast_ref::<Vec<rkeras_layers::layer::CallRecord>>())
        .expect("the nodes' records");
    assert!(nodes
        .iter()
        .all(|node| node.logits.iter().all(Option::is_none)));
    let y = pseudo_random(&[2, 2, 3], 0.6);
    assert_eq!(
        assert_same_gradients(&model, "binary_crossentropy", &x, &y),
        2
    );
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
    let compiled = compiled("binary_crossentropy");
    let (loss, _, _) = summed_layer_gradients(
        &model,
        &compiled,
        &trainable(&model),
        &Batch::whole(&x, &x, &Device::Cpu),
    )
    .unwrap();
    let loss = loss.to_scalar::<f32>().unwrap();
    assert!((loss - 30.0).abs() < 1e-4, "training loss {loss}");
    let logs = super::super::evaluate_arrays(&model, &compiled, &x, &x, 2, "").unwrap();
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
    let mut compiled = compiled("binary_crossentropy");
    compiled.metric_names = vec!["mae".into()];
    // Independently: the whole batch through candle's ops, the penalty once, the mean |y - p|.
    let (expected_loss, y_pred) = super::batch_loss(&model, &compiled, &x, &y, false).unwrap();
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
        assert_eq!(batch_parts(model, compiled.loss.as_ref(), 64).len(), 2);
        super::super::evaluate_arrays(model, &compiled, x, y, 64, "").unwrap()
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
