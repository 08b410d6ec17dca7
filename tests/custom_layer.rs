//! A user-defined layer, as the README shows it: keras.io's VAE sampling layer (two inputs,
//! random draws, a KL term added with `add_loss`), trained with `fit` on the one training path
//! beside Dense layers.

use std::sync::Arc;

use rkeras::fit::losses::Loss;
use rkeras::layers::{layer_base_methods, random, Result as LayerResult, SymbolicShape};
use rkeras::prelude::*;

/// `z = mean + exp(log_var / 2) · ε` with ε drawn from N(0, 1), and the KL divergence of
/// N(mean, exp(log_var)) from N(0, 1) added to the loss.
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

/// A small VAE over 16-pixel "images": encoder to a 2-D code's mean and log-variance, the
/// sampling layer, a sigmoid decoder.
fn vae() -> rkeras::Result<Model> {
    let input = Input::new(&[16]);
    let h = Dense::new(8).activation("relu")(input);
    let (mean, log_var) = (Dense::new(2)(h), Dense::new(2)(h));
    let z = Sampling.builder().call_many(&[mean, log_var])[0];
    let h = Dense::new(8).activation("relu")(z);
    let output = Dense::new(16).activation("sigmoid")(h);
    Ok(Model::new(input, output)?)
}

/// 64 samples of two kinds of patterns, in [0, 1].
fn patterns() -> rkeras::Result<Tensor> {
    let values: Vec<f32> = (0..64 * 16)
        .map(|i| {
            let (sample, pixel) = (i / 16, i % 16);
            if (pixel + sample) % 2 == 0 {
                0.9
            } else {
                0.1
            }
        })
        .collect();
    Ok(Tensor::from_vec(values, (64, 16), &Device::Cpu)?)
}

#[test]
fn a_user_defined_sampling_layer_trains_and_adds_its_loss() -> rkeras::Result<()> {
    rkeras::utils::set_random_seed(4);
    let model = vae()?;
    assert_eq!(
        model.count_params(),
        16 * 8 + 8 + 2 * (8 * 2 + 2) + 2 * 8 + 8 + 8 * 16 + 16
    );
    model.compile("adam", "binary_crossentropy")?;
    let x = patterns()?;
    let options = FitOptions::new().epochs(30).batch_size(32).verbose(0);
    let history = model.fit(&x, &x, options)?;
    let losses = &history.history["loss"];
    assert!(losses[29] < 0.8 * losses[0], "{losses:?}");
    // The KL term is part of the reported loss: the loss exceeds the cross-entropy alone.
    let logs = model.evaluate(&x, &x, None)?;
    let reconstruction = BinaryCrossentropy::new()
        .compute(&x, &model.predict(&x, None)?)?
        .to_scalar::<f32>()? as f64;
    assert!(
        logs["loss"] > reconstruction + 1e-3,
        "{logs:?} vs {reconstruction}"
    );
    Ok(())
}
