//! Timing of one training step of the tutorial's conv autoencoder at batch 256 (run with
//! `cargo test -p rkeras-ops --release -- --ignored --nocapture autoencoder_step_timing`).

use std::time::Instant;

use candle_core::Var;

use crate::test_util::{random_tensor, random_var, Lcg};
use crate::{
    binary_cross_entropy_with_logits, conv2d, max_pool2d, upsample_nearest2d, Conv2dParams,
    Padding2d,
};

#[test]
#[ignore = "timing, run on demand in --release"]
fn autoencoder_step_timing() {
    let mut rng = Lcg::new(1);
    let x = random_tensor(&mut rng, &[256, 28, 28, 1])
        .affine(0.5, 0.5)
        .unwrap();
    // (Cin, K, Cout) of the six convolutions, encoder then decoder.
    let layers = [
        (1, 7, 128),
        (128, 2, 32),
        (32, 7, 1),
        (1, 7, 32),
        (32, 2, 128),
        (128, 7, 1),
    ];
    let weights: Vec<(Var, Var)> = layers
        .iter()
        .map(|&(cin, k, cout)| {
            (
                random_var(&mut rng, &[k, k, cin, cout]),
                random_var(&mut rng, &[cout]),
            )
        })
        .collect();
    let conv = |h: &candle_core::Tensor, layer: usize, relu: bool| {
        let (kernel, bias) = &weights[layer];
        let size = h.dims()[1];
        let k = kernel.dims()[0];
        let params = Conv2dParams::same((size, size), (k, k), (1, 1), (1, 1));
        conv2d(h, kernel, Some(bias), &params, relu).unwrap()
    };
    let pool = |h: &candle_core::Tensor| {
        let size = h.dims()[1];
        max_pool2d(
            h,
            (2, 2),
            (2, 2),
            Padding2d::same((size, size), (2, 2), (2, 2), (1, 1)),
        )
        .unwrap()
    };
    for _ in 0..4 {
        let start = Instant::now();
        let h = pool(&conv(&x, 0, true));
        let h = pool(&conv(&h, 1, true));
        let code = conv(&h, 2, true);
        let h = upsample_nearest2d(&conv(&code, 3, true), (2, 2)).unwrap();
        let h = upsample_nearest2d(&conv(&h, 4, true), (2, 2)).unwrap();
        let logits = conv(&h, 5, false);
        let loss = binary_cross_entropy_with_logits(&logits, &x).unwrap();
        let forward = start.elapsed().as_secs_f64() * 1e3;
        let grads = loss.backward().unwrap();
        let total = start.elapsed().as_secs_f64() * 1e3;
        assert_eq!(
            weights
                .iter()
                .filter(|(k, _)| grads.get(k).is_some())
                .count(),
            6
        );
        println!("step: forward {forward:.0} ms, forward+backward {total:.0} ms");
    }
}
