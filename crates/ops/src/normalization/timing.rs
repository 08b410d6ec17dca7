//! Timing of batch and layer normalization, kernels against the composed forms differentiated
//! by candle's autograd, at the sizes of MNIST models at batch 256, beside one elementwise
//! pass over the same matrix (run with `RAYON_NUM_THREADS=1 CANDLE_NUM_THREADS=1 cargo test
//! -p rkeras-ops --release -- --ignored --nocapture normalization_timing`; on a shared
//! machine one thread gives the steadier figures).

use std::time::Instant;

use candle_core::{Tensor, Var};

use super::*;
use crate::test_util::{gradients_against, random_tensor, Lcg};

/// Best of `repeats` wall-clock times of `run`, in milliseconds.
fn best_ms(repeats: usize, mut run: impl FnMut()) -> f64 {
    (0..repeats)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

/// A batch normalization's training forward (statistics, then the affine map) as the layer
/// runs it; returns the output and what its backward pass needs.
fn batch_forward(x: &Tensor, gamma: &Tensor) -> (Tensor, [Tensor; 3]) {
    let (mean, variance) = batch_moments(x).unwrap();
    let inv_std = (variance + 1e-3).unwrap().sqrt().unwrap().recip().unwrap();
    let scale = (gamma * &inv_std).unwrap();
    let shift = (mean.neg().unwrap() * &scale).unwrap();
    (
        scale_shift(x, &scale, &shift).unwrap(),
        [mean, inv_std, scale],
    )
}

#[test]
#[ignore = "timing, run on demand in --release"]
fn normalization_timing() {
    let mut rng = Lcg::new(1);
    println!(
        "{:<34} {:>9} {:>9} {:>11} {:>11} {:>9}",
        "batch normalization (rows x C)",
        "fwd ms",
        "bwd ms",
        "composed f",
        "composed b",
        "one pass"
    );
    for (name, rows, cols) in [
        ("Dense(256) output, 256 x 256", 256, 256),
        ("Conv2D 28x28x32, 200704 x 32", 256 * 28 * 28, 32),
        ("Conv2D 14x14x64, 50176 x 64", 256 * 14 * 14, 64),
    ] {
        let x = random_tensor(&mut rng, &[rows, cols]);
        let gamma = random_tensor(&mut rng, &[cols]);
        let dy = random_tensor(&mut rng, &[rows, cols]);
        let mut saved = None;
        let forward = best_ms(5, || saved = Some(batch_forward(&x, &gamma).1));
        let [mean, inv_std, scale] = saved.expect("a forward pass");
        let stats = BatchNormStatistics {
            mean: &mean,
            inv_std: &inv_std,
            scale: &scale,
            from_batch: true,
            part: None,
        };
        let backward = best_ms(5, || {
            batch_normalization_backward(&x, &dy, &stats, true).unwrap();
        });
        let (composed_forward, composed_backward) = crate::with_composed_ops(|| {
            let x = Var::from_tensor(&x).unwrap();
            let gamma = Var::from_tensor(&gamma).unwrap();
            let mut y = None;
            let forward = best_ms(3, || y = Some(batch_forward(&x, &gamma).0));
            let y = y.expect("a forward pass");
            let backward = best_ms(3, || drop(gradients_against(&y, &dy)));
            (forward, backward)
        });
        // A yardstick: one elementwise pass over the same matrix (read it, write the result).
        let one_pass = best_ms(5, || {
            crate::bias_activation(&x, Some(&gamma), crate::FusedActivation::Relu).unwrap();
        });
        println!(
            "{name:<34} {forward:>9.2} {backward:>9.2} {composed_forward:>11.2} {composed_backward:>11.2} {one_pass:>9.2}"
        );
    }
    println!(
        "{:<34} {:>9} {:>9} {:>11} {:>11}",
        "layer normalization (rows x cols)", "", "", "", ""
    );
    for (name, rows, cols) in [("256 x 256", 256, 256), ("12544 x 64", 256 * 49, 64)] {
        let x = random_tensor(&mut rng, &[rows, cols]);
        let (gamma, beta) = (
            random_tensor(&mut rng, &[cols]),
            random_tensor(&mut rng, &[cols]),
        );
        let dy = random_tensor(&mut rng, &[rows, cols]);
        let mut out = None;
        let forward = best_ms(5, || {
            out = Some(layer_normalization(&x, Some(&gamma), Some(&beta), 1e-3).unwrap())
        });
        let out = out.expect("a forward pass");
        let backward = best_ms(5, || {
            layer_normalization_backward(&x, &dy, (&out.mean, &out.inv_std), Some(&gamma), true)
                .unwrap();
        });
        let (composed_forward, composed_backward) = crate::with_composed_ops(|| {
            let x = Var::from_tensor(&x).unwrap();
            let mut y = None;
            let forward = best_ms(3, || {
                y = Some(
                    layer_normalization(&x, Some(&gamma), Some(&beta), 1e-3)
                        .unwrap()
                        .y,
                )
            });
            let y = y.expect("a forward pass");
            let backward = best_ms(3, || drop(gradients_against(&y, &dy)));
            (forward, backward)
        });
        println!(
            "{name:<34} {forward:>9.2} {backward:>9.2} {composed_forward:>11.2} {composed_backward:>11.2}"
        );
    }
}
