//! On a CUDA GPU, the tutorial's models and the layers behind them train as they do on the
//! CPU. The CPU kernels are tested against independent references elsewhere; here the CPU is
//! the reference for candle's GPU kernels and the composed ops rkeras runs on them.
//!
//! Run with `--features cuda` on a machine with a GPU:
//! `cargo test --release --features cuda --test cuda`. Without the feature the tests still
//! compile (so they cannot rot unseen) and are ignored.

#[path = "../examples/shared/models.rs"]
mod models;

mod common;

use common::weights_of;
use rkeras::prelude::*;

/// Seeded images: smooth blobs in [0, 1], shaped (n, size, size, channels).
fn blobs(n: usize, size: usize, channels: usize) -> rkeras::Result<Tensor> {
    let mut data = Vec::with_capacity(n * size * size * channels);
    for i in 0..n {
        let (cy, cx) = (2.0 + (i % 5) as f32 * 1.7, 3.0 + (i % 7) as f32 * 1.3);
        for y in 0..size {
            for x in 0..size {
                for c in 0..channels {
                    let d2 = (y as f32 - cy).powi(2) + (x as f32 - cx - c as f32).powi(2);
                    data.push((-d2 / 12.0).exp());
                }
            }
        }
    }
    Ok(Tensor::from_vec(
        data,
        (n, size, size, channels),
        &Device::Cpu,
    )?)
}

/// The first CUDA GPU; the test fails where there is none.
fn cuda() -> Device {
    Device::new_cuda(0).expect("this test needs a CUDA GPU")
}

/// The largest absolute difference between two models' weights.
fn max_difference(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            assert_eq!(x.len(), y.len());
            x.iter().zip(y).map(|(p, q)| (p - q).abs())
        })
        .fold(0.0, f32::max)
}

/// `build` run with the same seed with weights on the CPU, then on the GPU.
fn on_both(seed: u64, build: impl Fn() -> rkeras::Result<Model>) -> rkeras::Result<[Model; 2]> {
    let mut models = Vec::new();
    for device in [Device::Cpu, cuda()] {
        rkeras::utils::set_default_device(device);
        rkeras::utils::set_random_seed(seed);
        models.push(build()?);
    }
    rkeras::utils::set_default_device(Device::Cpu);
    let (gpu, cpu) = (
        models.pop().expect("two models"),
        models.pop().expect("two models"),
    );
    assert!(cpu.device().is_cpu() && gpu.device().is_cuda());
    assert_eq!(
        weights_of(&cpu)?,
        weights_of(&gpu)?,
        "same seed, same weights"
    );
    Ok([cpu, gpu])
}

/// Trains both copies `steps` times on `x -> y` and checks that every loss agrees to 1e-4
/// (relative) and the weights to `weight_tolerance`, then that predict and evaluate agree.
fn check_training(
    [cpu, gpu]: &[Model; 2],
    compile: impl Fn(&Model) -> rkeras::fit::Result<()>,
    (x, y): (&Tensor, &Tensor),
    steps: usize,
    weight_tolerance: f32,
) -> rkeras::Result<()> {
    compile(cpu)?;
    compile(gpu)?;
    for step in 0..steps {
        let on_cpu = cpu.train_on_batch(x, y)?["loss"];
        let on_gpu = gpu.train_on_batch(x, y)?["loss"];
        assert!(
            on_gpu.is_finite() && (on_cpu - on_gpu).abs() <= 1e-4 * on_cpu.abs().max(1e-3),
            "step {step}: loss {on_cpu} on the CPU, {on_gpu} on the GPU"
        );
    }
    let difference = max_difference(&weights_of(cpu)?, &weights_of(gpu)?);
    assert!(
        difference <= weight_tolerance,
        "weights differ by {difference} after {steps} steps"
    );
    let (p_cpu, p_gpu) = (cpu.predict(x, Some(4))?, gpu.predict(x, Some(4))?);
    assert!(p_gpu.device().is_cpu(), "predict returns host tensors");
    let gap = (p_cpu - p_gpu)?.abs()?.max_all()?.to_scalar::<f32>()?;
    assert!(gap <= 1e-4, "predictions differ by {gap}");
    let (e_cpu, e_gpu) = (cpu.evaluate(x, y, Some(4))?, gpu.evaluate(x, y, Some(4))?);
    assert!(
        (e_cpu["loss"] - e_gpu["loss"]).abs() <= 1e-4 * e_cpu["loss"].abs().max(1e-3),
        "evaluate: {e_cpu:?} on the CPU, {e_gpu:?} on the GPU"
    );
    Ok(())
}

fn adam_bce(model: &Model) -> rkeras::fit::Result<()> {
    model.compile("adam", "binary_crossentropy")
}

#[test]
#[cfg_attr(not(feature = "cuda"), ignore = "needs --features cuda and a GPU")]
fn the_dense_autoencoders_train_alike() -> rkeras::Result<()> {
    let x = blobs(32, 28, 1)?;
    let models = on_both(3, || Ok(models::create_dense_ae()?.autoencoder))?;
    check_training(&models, adam_bce, (&x, &x), 4, 1e-4)?;
    let models = on_both(4, || Ok(models::create_deep_dense_ae()?.autoencoder))?;
    check_training(&models, adam_bce, (&x, &x), 4, 1e-4)
}

#[test]
#[cfg_attr(not(feature = "cuda"), ignore = "needs --features cuda and a GPU")]
fn the_sparse_autoencoder_with_its_activity_penalty_trains_alike() -> rkeras::Result<()> {
    let x = blobs(32, 28, 1)?;
    let models = on_both(5, || Ok(models::create_sparse_ae()?.autoencoder))?;
    check_training(&models, adam_bce, (&x, &x), 4, 1e-4)
}

/// With SGD, as the weights move by the gradient itself: Adam's first steps move each weight by
/// about the learning rate whatever its gradient's size, so a gradient that is rounding noise
/// (cuDNN sums in other orders, and may use TF32) would show as a full step of difference.
#[test]
#[cfg_attr(not(feature = "cuda"), ignore = "needs --features cuda and a GPU")]
fn the_conv_autoencoder_trains_alike() -> rkeras::Result<()> {
    let x = blobs(8, 28, 1)?;
    let models = on_both(6, || Ok(models::create_deep_conv_ae()?.autoencoder))?;
    let sgd_bce = |m: &Model| m.compile(SGD::new().learning_rate(0.1), "binary_crossentropy");
    check_training(&models, sgd_bce, (&x, &x), 3, 2e-5)
}

#[test]
#[cfg_attr(not(feature = "cuda"), ignore = "needs --features cuda and a GPU")]
fn the_denoiser_reuses_a_gpu_autoencoder() -> rkeras::Result<()> {
    rkeras::utils::set_default_device(cuda());
    rkeras::utils::set_random_seed(8);
    let ae = models::create_dense_ae()?;
    let (noisy, denoiser) = models::create_denoising_model(&ae.autoencoder)?;
    rkeras::utils::set_default_device(Device::Cpu);
    let x = blobs(32, 28, 1)?;
    let noised = noisy.predict(&x, None)?;
    assert_eq!(noised.dims(), x.dims());
    denoiser.compile("adam", "binary_crossentropy")?;
    let before = weights_of(&ae.autoencoder)?;
    let history = denoiser.fit(
        &x,
        &x,
        FitOptions::new().verbose(0).epochs(2).batch_size(16),
    )?;
    assert!(history.loss().iter().all(|l| l.is_finite()));
    let moved = max_difference(&before, &weights_of(&ae.autoencoder)?);
    assert!(
        moved > 0.0,
        "training the denoiser trains the autoencoder it reuses"
    );
    Ok(())
}

/// One conv, pool and upsampling configuration: the conv's and the pool's (size, strides,
/// padding), and the upsampling factors.
struct Stack {
    conv: ((usize, usize), (usize, usize), &'static str),
    pool: ((usize, usize), (usize, usize), &'static str),
    upsampling: (usize, usize),
}

fn stack_model(stack: &Stack) -> rkeras::Result<Model> {
    let ((kernel, strides, conv_padding), (pool, pool_strides, pool_padding)) =
        (stack.conv, stack.pool);
    let input = Input::new(&[9, 9, 2]);
    let x = Conv2D::new(3, kernel)
        .strides(strides)
        .padding(conv_padding)
        .activation("relu")(input);
    let x = MaxPooling2D::new(pool)
        .strides(pool_strides)
        .padding(pool_padding)(x);
    let x = UpSampling2D::new(stack.upsampling)(x);
    let x = Conv2D::new(2, (2, 2)).padding("same")(x);
    let output = Dense::new(4).activation("sigmoid")(Flatten::new()(x));
    Ok(Model::new(input, output)?)
}

#[test]
#[cfg_attr(not(feature = "cuda"), ignore = "needs --features cuda and a GPU")]
fn conv_pool_and_upsampling_agree_for_odd_even_strided_same_and_valid() -> rkeras::Result<()> {
    let stacks = [
        Stack {
            conv: ((3, 3), (1, 1), "same"),
            pool: ((2, 2), (2, 2), "same"),
            upsampling: (2, 2),
        },
        Stack {
            conv: ((2, 2), (2, 2), "same"),
            pool: ((3, 3), (2, 2), "valid"),
            upsampling: (3, 2),
        },
        Stack {
            conv: ((4, 3), (1, 2), "valid"),
            pool: ((2, 3), (1, 1), "same"),
            upsampling: (1, 2),
        },
    ];
    let x = blobs(6, 9, 2)?;
    let y = Tensor::from_vec(
        (0..24).map(|i| (i % 5) as f32 / 4.0).collect::<Vec<_>>(),
        (6, 4),
        &Device::Cpu,
    )?;
    for (seed, stack) in stacks.iter().enumerate() {
        let models = on_both(seed as u64 + 20, || stack_model(stack))?;
        let sgd = |m: &Model| m.compile(SGD::new().learning_rate(0.5), "mse");
        check_training(&models, sgd, (&x, &y), 3, 1e-5)?;
    }
    Ok(())
}

#[test]
#[cfg_attr(not(feature = "cuda"), ignore = "needs --features cuda and a GPU")]
fn a_model_trained_on_the_gpu_saves_and_loads_on_the_cpu() -> rkeras::Result<()> {
    let dir = std::env::temp_dir().join(format!("rkeras-cuda-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("dense.safetensors");
    rkeras::utils::set_default_device(cuda());
    rkeras::utils::set_random_seed(9);
    let model = models::create_dense_ae()?.autoencoder;
    rkeras::utils::set_default_device(Device::Cpu);
    model.compile("adam", "binary_crossentropy")?;
    let x = blobs(16, 28, 1)?;
    model.fit(&x, &x, FitOptions::new().verbose(0).epochs(1).batch_size(8))?;
    model.save(&path)?;
    let loaded = rkeras::fit::load_model(&path)?;
    assert!(loaded.device().is_cpu());
    assert_eq!(weights_of(&model)?, weights_of(&loaded)?);
    let gap = (model.predict(&x, None)? - loaded.predict(&x, None)?)?
        .abs()?
        .max_all()?
        .to_scalar::<f32>()?;
    assert!(gap <= 1e-5, "predictions differ by {gap}");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
