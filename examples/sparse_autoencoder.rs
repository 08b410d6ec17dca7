//! The tutorial's sparse autoencoder: a 16-wide linear code under an L1 activity penalty
//! (added to the loss, divided by the batch size as Keras 3 does), 400 epochs of batch 256.
//! Afterwards it decodes the mean code with one dimension at a time set to its maximum.
//!
//! `cargo run --release --example sparse_autoencoder -- --epochs 5`

#[path = "shared/allocator.rs"]
mod allocator;
#[path = "shared/cli.rs"]
mod cli;
#[path = "shared/models.rs"]
mod models;
#[path = "shared/pictures.rs"]
mod pictures;
#[path = "shared/run.rs"]
mod run;

use rkeras::prelude::*;

fn main() -> rkeras::Result<()> {
    allocator::keep_freed_memory();
    let args = run::args_or_exit("sparse_autoencoder", 400, 256);
    rkeras::utils::set_random_seed(args.seed);
    let sparse = models::create_sparse_ae()?;
    let Some(x_test) = run::tutorial_autoencoder("sparse autoencoder", &args, &sparse)? else {
        return Ok(());
    };
    let (s_encoder, s_decoder) = (&sparse.encoder, &sparse.decoder);

    // The mean code of the test set, with one dimension at a time set to its maximum.
    let encoded_imgs = s_encoder.predict(&x_test, Some(16))?;
    let mean = encoded_imgs.mean(0)?.to_vec1::<f32>()?;
    let max = encoded_imgs.max(0)?.to_vec1::<f32>()?;
    let dims = mean.len();
    let codes: Vec<f32> = (0..dims)
        .flat_map(|row| (0..dims).map(move |col| (row, col)))
        .map(|(row, col)| if row == col { max[col] } else { mean[col] })
        .collect();
    let codes = Tensor::from_vec(codes, (dims, dims), &Device::Cpu)?;
    let decoded_features = s_decoder.predict(&codes, Some(16))?;
    let half = dims / 2;
    pictures::plot_digits(
        &args.out.join("decoded_features.png"),
        &[
            &decoded_features.narrow(0, 0, half)?,
            &decoded_features.narrow(0, half, dims - half)?,
        ],
    )?;
    Ok(())
}
