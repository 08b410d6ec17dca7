//! Timing of the tutorial's convolutions at batch 256 (run with
//! `cargo test -p rkeras-ops --release -- --ignored --nocapture conv_timing`).

use std::time::Instant;

use super::backward::{backward, Conv2dWanted, ForwardRecord};
use super::forward::forward;
use super::geometry::ConvGeometry;
use super::Conv2dParams;
use crate::test_util::Lcg;

/// Best of `repeats` wall-clock times of `run`, in milliseconds.
pub(super) fn best_ms(repeats: usize, mut run: impl FnMut()) -> f64 {
    (0..repeats)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

#[test]
#[ignore = "timing, run on demand in --release"]
fn conv_timing() {
    const BATCH: usize = 256;
    // (name, H = W, Cin, K, Cout) of the conv autoencoder, all 'same', stride 1, ReLU.
    let layers = [
        ("enc 28x28x1->128 7x7", 28, 1, 7, 128),
        ("enc 14x14x128->32 2x2", 14, 128, 2, 32),
        ("enc 7x7x32->1 7x7", 7, 32, 7, 1),
        ("dec 7x7x1->32 7x7", 7, 1, 7, 32),
        ("dec 14x14x32->128 2x2", 14, 32, 2, 128),
        ("dec 28x28x128->1 7x7", 28, 128, 7, 1),
    ];
    let mut rng = Lcg::new(1);
    let n = 1024;
    let (a, b) = (rng.vec(n * n), rng.vec(n * n));
    let mut c = vec![0.0; n * n];
    let threads = crate::fork_join::worker_threads();
    let ms = best_ms(5, || {
        crate::matmul::matmul(
            crate::matmul::MatMut::row_major(&mut c, n, n),
            crate::matmul::MatRef::row_major(&a, n, n),
            crate::matmul::MatRef::row_major(&b, n, n),
            crate::matmul::Accumulate::Overwrite,
            threads,
        )
    });
    println!(
        "reference sgemm {n}^3 on {threads} threads: {:.1} GFLOP/s",
        2.0 * (n * n * n) as f64 / ms / 1e6
    );
    let mut total = 0.0;
    println!(
        "{:<24} {:>8} {:>8} {:>8} {:>9}",
        "layer", "fwd ms", "dx ms", "dk+db ms", "lowering"
    );
    for (name, size, cin, k, cout) in layers {
        let params = Conv2dParams::same((size, size), (k, k), (1, 1), (1, 1));
        let g = ConvGeometry::new(&[BATCH, size, size, cin], &[k, k, cin, cout], &params).unwrap();
        let x = rng.vec(BATCH * g.in_image_len());
        let kernel = rng.vec(g.kernel_len());
        let bias = rng.vec(cout);
        let mut y = Vec::new();
        let fwd = best_ms(3, || y = forward(&g, &x, &kernel, Some(&bias), true));
        let dy = rng.vec(y.len());
        let record = ForwardRecord {
            x: &x,
            kernel: &kernel,
            relu_output: Some(&y),
        };
        let input_only = Conv2dWanted {
            x: true,
            kernel: false,
            bias: false,
        };
        let weights_only = Conv2dWanted {
            x: false,
            kernel: true,
            bias: true,
        };
        let dx = best_ms(3, || drop(backward(&g, &record, &dy, input_only)));
        let dw = best_ms(3, || drop(backward(&g, &record, &dy, weights_only)));
        // The first layer's input is data: its input gradient is never computed in training.
        total += fwd + dw + if cin == 1 && size == 28 { 0.0 } else { dx };
        println!(
            "{name:<24} {fwd:>8.1} {dx:>8.1} {dw:>8.1} {:>9?}",
            g.formulation()
        );
    }
    println!("conv total per training step (no input grad for the first layer): {total:.1} ms");
}

#[test]
#[ignore = "timing, run on demand in --release"]
fn convnet_timing() {
    // keras.io's "Simple MNIST convnet": each thread takes a part of 64 images of a batch of 128.
    const PART: usize = 64;
    // (name, H = W, Cin, Cout, whether the input gradient is wanted); 3x3 'valid', ReLU.
    let layers = [
        ("conv 28x28x1->32 3x3", 28, 1, 32, false),
        ("conv 13x13x32->64 3x3", 13, 32, 64, true),
    ];
    let mut rng = Lcg::new(1);
    let mut total = 0.0;
    println!(
        "{:<24} {:>8} {:>8} {:>8}",
        "layer (part of 64)", "fwd ms", "dx ms", "dk+db ms"
    );
    for (name, size, cin, cout, wants_x) in layers {
        let params = Conv2dParams::default();
        let g = ConvGeometry::new(&[PART, size, size, cin], &[3, 3, cin, cout], &params).unwrap();
        let x = rng.vec(PART * g.in_image_len());
        let kernel = rng.vec(g.kernel_len());
        let bias = rng.vec(cout);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let on_one_thread = |run: &mut (dyn FnMut() + Send)| pool.install(|| best_ms(20, run));
        let mut y = Vec::new();
        let fwd = on_one_thread(&mut || y = forward(&g, &x, &kernel, Some(&bias), true));
        let dy = rng.vec(y.len());
        let record = ForwardRecord {
            x: &x,
            kernel: &kernel,
            relu_output: Some(&y),
        };
        let wanted = |x, kernel| Conv2dWanted {
            x,
            kernel,
            bias: kernel,
        };
        let dx = if wants_x {
            on_one_thread(&mut || drop(backward(&g, &record, &dy, wanted(true, false))))
        } else {
            0.0
        };
        let dw = on_one_thread(&mut || drop(backward(&g, &record, &dy, wanted(false, true))));
        total += fwd + dx + dw;
        println!("{name:<24} {fwd:>8.2} {dx:>8.2} {dw:>8.2}");
    }
    println!("conv total per part of a training step: {total:.2} ms");
}
