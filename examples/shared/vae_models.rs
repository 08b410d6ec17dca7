//! keras.io's variational autoencoder models (examples/generative/vae.py): the `Sampling`
//! layer, a user-defined layer with two inputs, random draws and the KL divergence added with
//! `add_loss`; the convolutional encoder and the Conv2DTranspose decoder. Shared by the `vae`
//! example and the summary tests.

use std::sync::Arc;

use rkeras::layers::{layer_base_methods, random, Result as LayerResult, SymbolicShape};
use rkeras::prelude::*;

/// keras.io's `Sampling`: `z = mean + exp(log_var / 2) · ε` with ε ~ N(0, 1), adding the KL
/// divergence of N(mean, exp(log_var)) from N(0, 1), summed over the code and averaged over the
/// batch.
#[derive(Clone)]
struct Sampling;

impl LayerConfig for Sampling {
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
        Sampling::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> LayerResult<Vec<SymbolicShape>> {
        Ok(vec![inputs[0].clone()])
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext) -> LayerResult<Vec<Tensor>> {
        let (mean, log_var) = (&inputs[0], &inputs[1]);
        let epsilon = random::normal(mean.dims(), 0.0, 1.0, mean.device())?;
        let kl = ((log_var + 1.0)? - mean.sqr()? - log_var.exp()?)?
            .sum(1)?
            .mean_all()?
            .affine(-0.5, 0.0)?;
        ctx.add_loss(kl);
        Ok(vec![(mean + ((log_var * 0.5)?.exp()? * epsilon)?)?])
    }

    fn config(&self) -> rkeras::serde_json::Value {
        self.base.config()
    }
}

pub const LATENT_DIM: usize = 2;

/// keras.io's encoder: image to `[z_mean, z_log_var, z]`.
pub fn encoder() -> rkeras::Result<Model> {
    let inputs = Input::new(&[28, 28, 1]);
    let x = Conv2D::new(32, (3, 3))
        .activation("relu")
        .strides(2)
        .padding("same")(inputs);
    let x = Conv2D::new(64, (3, 3))
        .activation("relu")
        .strides(2)
        .padding("same")(x);
    let x = Dense::new(16).activation("relu")(Flatten::new()(x));
    let z_mean = Dense::new(LATENT_DIM).name("z_mean")(x);
    let z_log_var = Dense::new(LATENT_DIM).name("z_log_var")(x);
    let z = Sampling.builder()([z_mean, z_log_var].into());
    Ok(Model::named("encoder", inputs, [z_mean, z_log_var, z])?)
}

/// keras.io's decoder: a code to an image.
pub fn decoder() -> rkeras::Result<Model> {
    let latent = Input::new(&[LATENT_DIM]);
    let x = Dense::new(7 * 7 * 64).activation("relu")(latent);
    let x = Reshape::new(&[7, 7, 64])(x);
    let x = Conv2DTranspose::new(64, (3, 3))
        .activation("relu")
        .strides(2)
        .padding("same")(x);
    let x = Conv2DTranspose::new(32, (3, 3))
        .activation("relu")
        .strides(2)
        .padding("same")(x);
    let outputs = Conv2DTranspose::new(1, (3, 3))
        .activation("sigmoid")
        .padding("same")(x);
    Ok(Model::named("decoder", latent, outputs)?)
}
