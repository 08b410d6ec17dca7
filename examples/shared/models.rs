//! The tutorial's five autoencoders, written as the tutorial writes them in Keras
//! ("Autoencoders in Keras, part 1"). Shared by the examples, the integration tests and the
//! benchmarks; each of them uses some of these models.
#![allow(dead_code)]

use rkeras::prelude::*;

/// An encoder, a decoder and the autoencoder that chains them.
pub struct Autoencoder {
    /// Image to code.
    pub encoder: Model,
    /// Code to image.
    pub decoder: Model,
    /// Image to image: `decoder(encoder(input))`.
    pub autoencoder: Model,
}

/// Tutorial model 1, the dense (undercomplete) autoencoder: 784 -> 49 -> 784.
pub fn create_dense_ae() -> rkeras::Result<Autoencoder> {
    let encoding_dim = 49;

    let input_img = Input::new(&[28, 28, 1]);
    let flat_img = Flatten::new()(input_img);
    let encoded = Dense::new(encoding_dim).activation("relu")(flat_img);

    let input_encoded = Input::new(&[encoding_dim]);
    let flat_decoded = Dense::new(28 * 28).activation("sigmoid")(input_encoded);
    let decoded = Reshape::new(&[28, 28, 1])(flat_decoded);

    let encoder = Model::named("encoder", input_img, encoded)?;
    let decoder = Model::named("decoder", input_encoded, decoded)?;
    let autoencoder = Model::named("autoencoder", input_img, decoder(encoder(input_img)))?;
    Ok(Autoencoder {
        encoder,
        decoder,
        autoencoder,
    })
}

/// Tutorial model 2, the deep dense autoencoder: 784 -> 147 -> 98 -> 49 -> 98 -> 147 -> 784.
pub fn create_deep_dense_ae() -> rkeras::Result<Autoencoder> {
    let encoding_dim = 49;

    let input_img = Input::new(&[28, 28, 1]);
    let flat_img = Flatten::new()(input_img);
    let x = Dense::new(encoding_dim * 3).activation("relu")(flat_img);
    let x = Dense::new(encoding_dim * 2).activation("relu")(x);
    let encoded = Dense::new(encoding_dim).activation("linear")(x);

    let input_encoded = Input::new(&[encoding_dim]);
    let x = Dense::new(encoding_dim * 2).activation("relu")(input_encoded);
    let x = Dense::new(encoding_dim * 3).activation("relu")(x);
    let flat_decoded = Dense::new(28 * 28).activation("sigmoid")(x);
    let decoded = Reshape::new(&[28, 28, 1])(flat_decoded);

    let encoder = Model::named("encoder", input_img, encoded)?;
    let decoder = Model::named("decoder", input_encoded, decoded)?;
    let autoencoder = Model::named("autoencoder", input_img, decoder(encoder(input_img)))?;
    Ok(Autoencoder {
        encoder,
        decoder,
        autoencoder,
    })
}

/// Tutorial model 3, the convolutional autoencoder: 28x28x1 -> 7x7x1 -> 28x28x1.
pub fn create_deep_conv_ae() -> rkeras::Result<Autoencoder> {
    let input_img = Input::new(&[28, 28, 1]);
    let x = Conv2D::new(128, (7, 7)).activation("relu").padding("same")(input_img);
    let x = MaxPooling2D::new((2, 2)).padding("same")(x);
    let x = Conv2D::new(32, (2, 2)).activation("relu").padding("same")(x);
    let x = MaxPooling2D::new((2, 2)).padding("same")(x);
    let encoded = Conv2D::new(1, (7, 7)).activation("relu").padding("same")(x);

    let input_encoded = Input::new(&[7, 7, 1]);
    let x = Conv2D::new(32, (7, 7)).activation("relu").padding("same")(input_encoded);
    let x = UpSampling2D::new((2, 2))(x);
    let x = Conv2D::new(128, (2, 2)).activation("relu").padding("same")(x);
    let x = UpSampling2D::new((2, 2))(x);
    let decoded = Conv2D::new(1, (7, 7)).activation("sigmoid").padding("same")(x);

    let encoder = Model::named("encoder", input_img, encoded)?;
    let decoder = Model::named("decoder", input_encoded, decoded)?;
    let autoencoder = Model::named("autoencoder", input_img, decoder(encoder(input_img)))?;
    Ok(Autoencoder {
        encoder,
        decoder,
        autoencoder,
    })
}

/// The noise of the denoising autoencoder: `x + N(0.5, 0.5)`, clipped to [0, 1]; a fresh
/// sample on every call, drawn from the session's seeded generator.
pub fn add_noise(x: &Tensor) -> rkeras::layers::Result<Tensor> {
    let noise_factor = 0.5;
    let noise = rkeras::layers::random::normal(x.dims(), 0.5, noise_factor, x.device())?;
    Ok((x + noise)?.clamp(0f32, 1f32)?)
}

/// Tutorial model 4, the denoising model: a noiser (a Lambda adding noise) in front of an existing
/// autoencoder, with the tutorial's fixed batch of 16. Training it trains that autoencoder.
pub fn create_denoising_model(autoencoder: &Model) -> rkeras::Result<(Model, Model)> {
    let batch_size = 16;
    let input_img = Input::batch_shape(&[batch_size, 28, 28, 1]);
    let noised_img = Lambda::new(add_noise).function_name("add_noise")(input_img);

    let noiser = Model::named("noiser", input_img, noised_img)?;
    let denoiser_model = Model::named("denoiser", input_img, autoencoder(noiser(input_img)))?;
    Ok((noiser, denoiser_model))
}

/// Tutorial model 5, the sparse autoencoder: an L1 activity penalty on a 16-wide linear code.
pub fn create_sparse_ae() -> rkeras::Result<Autoencoder> {
    let encoding_dim = 16;
    let lambda_l1 = 0.00001;

    let input_img = Input::new(&[28, 28, 1]);
    let flat_img = Flatten::new()(input_img);
    let x = Dense::new(encoding_dim * 3).activation("relu")(flat_img);
    let x = Dense::new(encoding_dim * 2).activation("relu")(x);
    let encoded = Dense::new(encoding_dim)
        .activation("linear")
        .activity_regularizer(Regularizer::l1_l2(lambda_l1, 0.0))(x);

    let input_encoded = Input::new(&[encoding_dim]);
    let x = Dense::new(encoding_dim * 2).activation("relu")(input_encoded);
    let x = Dense::new(encoding_dim * 3).activation("relu")(x);
    let flat_decoded = Dense::new(28 * 28).activation("sigmoid")(x);
    let decoded = Reshape::new(&[28, 28, 1])(flat_decoded);

    let encoder = Model::named("encoder", input_img, encoded)?;
    let decoder = Model::named("decoder", input_encoded, decoded)?;
    let autoencoder = Model::named("autoencoder", input_img, decoder(encoder(input_img)))?;
    Ok(Autoencoder {
        encoder,
        decoder,
        autoencoder,
    })
}
