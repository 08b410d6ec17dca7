//! Saving through training: `model.save` keeps the compile state, `load_checkpoint` brings
//! the model back compiled, and a run resumed from a checkpoint continues exactly like the
//! uninterrupted run.

#[path = "../examples/shared/models.rs"]
mod models;

mod common;

use std::path::PathBuf;

use common::weights_of;
use rkeras::fit::{load_checkpoint, load_model};
use rkeras::model::saving::Registry;
use rkeras::prelude::*;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rkeras-saving-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn blobs(n: usize) -> rkeras::Result<Tensor> {
    let values: Vec<f32> = (0..n * 784)
        .map(|i| ((i * 37 % 101) as f32 / 100.0).powi(2))
        .collect();
    Ok(Tensor::from_vec(values, (n, 28, 28, 1), &Device::Cpu)?)
}

#[test]
fn a_saved_autoencoder_loads_compiled_with_its_encoder_reachable() -> rkeras::Result<()> {
    let dir = temp_dir("roundtrip");
    rkeras::utils::set_random_seed(3);
    let ae = models::create_dense_ae()?;
    let x = blobs(32)?;
    ae.autoencoder
        .compile(Adam::new().learning_rate(2e-3), "binary_crossentropy")?;
    ae.autoencoder
        .fit(&x, &x, FitOptions::new().epochs(1).verbose(0))?;
    let path = dir.join("dense.safetensors");
    ae.autoencoder.save(&path)?;

    let loaded = load_model(&path)?;
    assert!(loaded.is_compiled());
    assert_eq!(
        loaded.optimizer_iterations(),
        1,
        "32 samples, batch 32: one step"
    );
    let expected = ae
        .autoencoder
        .predict(&x, None)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    assert_eq!(
        loaded.predict(&x, None)?.flatten_all()?.to_vec1::<f32>()?,
        expected
    );
    let encoder = loaded.get_model("encoder").expect("encoder");
    assert_eq!(
        encoder.predict(&x, None)?.flatten_all()?.to_vec1::<f32>()?,
        ae.encoder
            .predict(&x, None)?
            .flatten_all()?
            .to_vec1::<f32>()?
    );
    std::fs::remove_dir_all(dir)?;
    Ok(())
}

#[test]
fn the_denoiser_loads_with_its_lambda_registered_and_not_without() -> rkeras::Result<()> {
    let dir = temp_dir("denoiser");
    let ae = models::create_dense_ae()?;
    let (_, denoiser) = models::create_denoising_model(&ae.autoencoder)?;
    let path = dir.join("denoiser.safetensors");
    denoiser.save(&path)?;
    let err = load_model(&path).unwrap_err().to_string();
    assert!(err.contains("add_noise"), "{err}");

    let mut registry = Registry::new();
    registry.register_lambda("add_noise", models::add_noise, None);
    let loaded = load_checkpoint(&path, &registry)?.model;
    let x = blobs(16)?;
    rkeras::utils::set_random_seed(1);
    let expected = denoiser
        .predict(&x, None)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    rkeras::utils::set_random_seed(1);
    assert_eq!(
        loaded.predict(&x, None)?.flatten_all()?.to_vec1::<f32>()?,
        expected
    );
    std::fs::remove_dir_all(dir)?;
    Ok(())
}

#[test]
fn a_run_resumed_from_a_checkpoint_continues_like_the_uninterrupted_run() -> rkeras::Result<()> {
    let dir = temp_dir("resume");
    let x = blobs(48)?;
    let options = || {
        FitOptions::new()
            .batch_size(16)
            .verbose(0)
            .validation_data(&x, &x)
    };

    rkeras::utils::set_random_seed(11);
    let straight = models::create_dense_ae()?;
    straight
        .autoencoder
        .compile("adam", "binary_crossentropy")?;
    let full = straight.autoencoder.fit(&x, &x, options().epochs(4))?;

    rkeras::utils::set_random_seed(11);
    let interrupted = models::create_dense_ae()?;
    interrupted
        .autoencoder
        .compile("adam", "binary_crossentropy")?;
    let path = dir.join("checkpoint.safetensors");
    let path_text = path.to_string_lossy().into_owned();
    interrupted.autoencoder.fit(
        &x,
        &x,
        options()
            .epochs(2)
            .callback(ModelCheckpoint::new(path_text)),
    )?;

    let checkpoint = load_checkpoint(&path, &Registry::new())?;
    assert_eq!(checkpoint.epochs_completed, Some(2));
    assert_eq!(
        weights_of(&checkpoint.model)?,
        weights_of(&interrupted.autoencoder)?
    );
    assert_eq!(
        checkpoint.model.optimizer_iterations(),
        interrupted.autoencoder.optimizer_iterations()
    );
    let resumed = checkpoint
        .model
        .fit(&x, &x, options().epochs(4).initial_epoch(2))?;
    assert_eq!(resumed.loss(), &full.loss()[2..]);
    assert_eq!(resumed.val_loss(), &full.val_loss()[2..]);
    assert_eq!(
        weights_of(&checkpoint.model)?,
        weights_of(&straight.autoencoder)?
    );
    std::fs::remove_dir_all(dir)?;
    Ok(())
}
