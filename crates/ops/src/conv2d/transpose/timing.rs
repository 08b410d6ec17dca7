//! Timing of keras.io's VAE decoder convolutions at batch 128, the CPU kernel against the
//! composed form (candle's `conv_transpose2d` and its autograd); run with
//! `cargo test -p rkeras-ops --release -- --ignored --nocapture conv_transpose_timing`.

use super::super::timing::best_ms;
use super::{composed, conv2d_transpose, conv2d_transpose_backward, Conv2dTransposeParams};
use crate::test_util::{random_tensor, random_var, Lcg};

#[test]
#[ignore = "timing, run on demand in --release"]
fn conv_transpose_timing() {
    const BATCH: usize = 128;
    // (name, H = W, C, F, stride): kernel 3, 'same' (crop 1 at stride 1, none at stride 2).
    let layers = [
        ("7x7x64 -> 14x14x64 s2", 7, 64, 64, 2),
        ("14x14x64 -> 28x28x32 s2", 14, 64, 32, 2),
        ("28x28x32 -> 28x28x1 s1", 28, 32, 1, 1),
    ];
    let mut rng = Lcg::new(1);
    println!(
        "{:<26} {:>9} {:>9} {:>9} {:>12} {:>12}",
        "layer", "fwd ms", "dx ms", "dk ms", "composed fwd", "composed bwd"
    );
    for (name, size, c, f, stride) in layers {
        let params = Conv2dTransposeParams {
            strides: (stride, stride),
            dilation: (1, 1),
            crop: if stride == 1 { (1, 1) } else { (0, 0) },
            output_size: (size * stride, size * stride),
        };
        let x = random_var(&mut rng, &[BATCH, size, size, c]);
        let kernel = random_var(&mut rng, &[3, 3, f, c]);
        let (xd, kd) = (x.as_tensor().detach(), kernel.as_tensor().detach());
        let mut y = None;
        let fwd = best_ms(3, || y = Some(conv2d_transpose(&xd, &kd, &params).unwrap()));
        let dy = random_tensor(&mut rng, y.unwrap().dims());
        let time_backward = |wanted| {
            best_ms(3, || {
                drop(conv2d_transpose_backward(&xd, &kd, &dy, &params, wanted).unwrap())
            })
        };
        let (dx, dk) = (time_backward((true, false)), time_backward((false, true)));
        let mut composed_y = None;
        let composed_fwd = best_ms(3, || {
            composed_y = Some(composed::conv2d_transpose(&x, &kernel, &params).unwrap())
        });
        let composed_y = composed_y.unwrap();
        let composed_bwd = best_ms(3, || {
            drop(
                (&composed_y * &dy)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap(),
            )
        });
        println!(
            "{name:<26} {fwd:>9.1} {dx:>9.1} {dk:>9.1} {composed_fwd:>12.1} {composed_bwd:>12.1}"
        );
    }
}
