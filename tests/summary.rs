//! `summary()` prints Keras 3's table character for character.
//!
//! The golden files under `tests/golden/` are Keras 3.15's own output for the tutorial's dense
//! models (`keras-summaries/dense.txt` of the project's references), except that Keras numbers
//! the autoencoder's input `input_layer_2` (it rebuilds the input layer of a model whose input
//! already belongs to another model), where rkeras keeps the one input layer: `input_layer`.

#[path = "../examples/shared/models.rs"]
mod models;
#[path = "../examples/shared/vae_models.rs"]
mod vae_models;

use rkeras::prelude::*;

#[test]
fn dense_autoencoder_summaries_match_keras() -> rkeras::Result<()> {
    rkeras::utils::clear_session();
    let ae = models::create_dense_ae()?;
    assert_eq!(
        ae.encoder.summary_string()?,
        include_str!("golden/dense_encoder.txt")
    );
    assert_eq!(
        ae.decoder.summary_string()?,
        include_str!("golden/dense_decoder.txt")
    );
    assert_eq!(
        ae.autoencoder.summary_string()?,
        include_str!("golden/dense_autoencoder.txt")
    );
    Ok(())
}

/// Asserts the three summaries of a tutorial model against Keras's.
fn assert_keras_summaries(
    ae: &models::Autoencoder,
    encoder: &str,
    decoder: &str,
    autoencoder: &str,
) -> rkeras::Result<()> {
    assert_eq!(ae.encoder.summary_string()?, encoder);
    assert_eq!(ae.decoder.summary_string()?, decoder);
    assert_eq!(ae.autoencoder.summary_string()?, autoencoder);
    Ok(())
}

#[test]
fn deep_conv_and_sparse_summaries_match_keras() -> rkeras::Result<()> {
    rkeras::utils::clear_session();
    assert_keras_summaries(
        &models::create_deep_dense_ae()?,
        include_str!("golden/deep_encoder.txt"),
        include_str!("golden/deep_decoder.txt"),
        include_str!("golden/deep_autoencoder.txt"),
    )?;
    rkeras::utils::clear_session();
    assert_keras_summaries(
        &models::create_deep_conv_ae()?,
        include_str!("golden/conv_encoder.txt"),
        include_str!("golden/conv_decoder.txt"),
        include_str!("golden/conv_autoencoder.txt"),
    )?;
    rkeras::utils::clear_session();
    assert_keras_summaries(
        &models::create_sparse_ae()?,
        include_str!("golden/sparse_encoder.txt"),
        include_str!("golden/sparse_decoder.txt"),
        include_str!("golden/sparse_autoencoder.txt"),
    )
}

#[test]
fn a_branching_model_gets_the_connected_to_column() -> rkeras::Result<()> {
    rkeras::utils::clear_session();
    let a = Input::new(&[3]);
    let b = Input::new(&[3]);
    let shared = Dense::new(2);
    let model = Model::new([a, b], [shared(a), shared(b)])?;
    let text = model.summary_string()?;
    assert!(text.starts_with("Model: \"functional\"\n"), "{text}");
    assert!(text.contains("Connected to"), "{text}");
    // Both calls of the shared layer are listed (cut with … to the column, as rich does).
    assert!(
        text.contains("│ input_layer[0][0… │") && text.contains("│ input_layer_1[0]… │"),
        "{text}"
    );
    assert!(text.lines().all(|l| l.chars().count() <= 76), "{text}");
    Ok(())
}

#[test]
fn frozen_weights_count_as_non_trainable_and_adam_adds_its_line_after_fit() -> rkeras::Result<()> {
    rkeras::utils::clear_session();
    let ae = models::create_dense_ae()?;
    ae.encoder.set_trainable(false);
    let text = ae.autoencoder.summary_string()?;
    assert!(
        text.contains(" Trainable params: 39,200 (153.12 KB)\n"),
        "{text}"
    );
    assert!(
        text.contains(" Non-trainable params: 38,465 (150.25 KB)\n"),
        "{text}"
    );

    ae.autoencoder.compile("adam", "binary_crossentropy")?;
    let x = Tensor::zeros((4, 28, 28, 1), DType::F32, &Device::Cpu)?;
    ae.autoencoder.train_on_batch(&x, &x)?;
    let text = ae.autoencoder.summary_string()?;
    // Adam keeps two moments per trainable weight, plus its iteration count and learning rate.
    assert!(
        text.contains(" Optimizer params: 78,402 (306.26 KB)\n"),
        "{text}"
    );
    assert!(
        text.contains(" Total params: 156,067 (609.64 KB)\n"),
        "{text}"
    );
    Ok(())
}

#[test]
fn an_mlp_classifier_summary_matches_keras() -> rkeras::Result<()> {
    rkeras::utils::clear_session();
    let input = Input::new(&[28, 28]);
    let h = Dense::new(128).activation("relu")(Flatten::new()(input));
    let model = Model::new(input, Dense::new(10).activation("softmax")(h))?;
    assert_eq!(
        model.summary_string()?,
        include_str!("golden/mlp_classifier.txt")
    );
    Ok(())
}

/// keras.io's "Simple MNIST convnet", as a Sequential.
fn mnist_convnet() -> rkeras::Result<Sequential> {
    Ok(Sequential::new([
        Input::new(&[28, 28, 1]).into(),
        Conv2D::new(32, (3, 3)).activation("relu").into(),
        MaxPooling2D::new((2, 2)).into(),
        Conv2D::new(64, (3, 3)).activation("relu").into(),
        MaxPooling2D::new((2, 2)).into(),
        Flatten::new().into(),
        Dropout::new(0.5).into(),
        Dense::new(10).activation("softmax").into(),
    ])?)
}

#[test]
fn a_sequential_convnet_summary_matches_keras_before_and_after_training() -> rkeras::Result<()> {
    rkeras::utils::clear_session();
    let model = mnist_convnet()?;
    assert_eq!(
        model.summary_string()?,
        include_str!("golden/sequential_mnist_convnet.txt")
    );
    model.compile("adam", "categorical_crossentropy")?;
    assert_eq!(
        model.summary_string()?,
        include_str!("golden/sequential_mnist_convnet_compiled.txt")
    );
    let x = Tensor::zeros((2, 28, 28, 1), DType::F32, &Device::Cpu)?;
    let labels = Tensor::new(&[0u32, 1], &Device::Cpu)?;
    model.train_on_batch(&x, &rkeras::utils::to_categorical(&labels, 10)?)?;
    assert_eq!(
        model.summary_string()?,
        include_str!("golden/sequential_mnist_convnet_trained.txt")
    );
    Ok(())
}

#[test]
fn a_two_input_model_merged_by_concatenate_summary_matches_keras() -> rkeras::Result<()> {
    rkeras::utils::clear_session();
    let (a, b) = (Input::named("a", &[8]), Input::named("b", &[4]));
    let joined = Concatenate::new(-1)(
        [
            Dense::new(16).activation("relu")(a),
            Dense::new(16).activation("relu")(b),
        ]
        .into(),
    );
    let out = Dense::new(1).activation("sigmoid")(joined);
    let model = Model::named("two_inputs", [a, b], out)?;
    assert_eq!(
        model.summary_string()?,
        include_str!("golden/two_input_concatenate.txt")
    );
    Ok(())
}

#[test]
fn a_batch_normalization_summary_counts_its_statistics_non_trainable() -> rkeras::Result<()> {
    rkeras::utils::clear_session();
    let input = Input::new(&[28, 28, 1]);
    let h = BatchNormalization::new()(Conv2D::new(32, (3, 3))(input));
    let h = Flatten::new()(Activation::new("relu")(h));
    let model = Model::new(input, Dense::new(10)(h))?;
    assert_eq!(
        model.summary_string()?,
        include_str!("golden/batchnorm_convnet.txt")
    );
    Ok(())
}

#[test]
fn recurrent_row_readers_summaries_match_keras() -> rkeras::Result<()> {
    rkeras::utils::clear_session();
    let input = Input::new(&[28, 28]);
    let lstm = Model::new(
        input,
        Dense::new(10).activation("softmax")(LSTM::new(128)(input)),
    )?;
    assert_eq!(lstm.summary_string()?, include_str!("golden/lstm_rows.txt"));
    rkeras::utils::clear_session();
    let input = Input::new(&[28, 28]);
    let gru = Model::new(
        input,
        Dense::new(10).activation("softmax")(GRU::new(128)(input)),
    )?;
    assert_eq!(gru.summary_string()?, include_str!("golden/gru_rows.txt"));
    Ok(())
}

#[test]
fn keras_io_vae_summaries_match_keras_with_a_user_defined_layer() -> rkeras::Result<()> {
    rkeras::utils::clear_session();
    let (encoder, decoder) = (vae_models::encoder()?, vae_models::decoder()?);
    assert_eq!(
        encoder.summary_string()?,
        include_str!("golden/vae_encoder.txt")
    );
    assert_eq!(
        decoder.summary_string()?,
        include_str!("golden/vae_decoder.txt")
    );
    Ok(())
}
