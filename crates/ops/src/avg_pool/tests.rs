//! Average pooling against a naive reference, value and gradient.

use candle_core::{DType, Device, Tensor};

use super::{avg_pool2d, avg_pool2d_backward, AvgPoolGeometry};
use crate::padding::Padding2d;
use crate::test_util::{assert_close, gradients_against, random_tensor, random_var, values, Lcg};

/// Naive pooling: for each output cell, the mean of its window's real cells, and for each of
/// them the flat input index it averages (the gradient goes to each in equal shares).
fn reference(
    x: &[f32],
    dims: [usize; 4],
    pool: (usize, usize),
    strides: (usize, usize),
    pad: Padding2d,
) -> (Vec<f64>, Vec<Vec<usize>>, [usize; 4]) {
    let [n, h, w, c] = dims;
    let oh = (h + pad.top + pad.bottom - pool.0) / strides.0 + 1;
    let ow = (w + pad.left + pad.right - pool.1) / strides.1 + 1;
    let (mut means, mut windows) = (Vec::new(), Vec::new());
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                for ch in 0..c {
                    let mut cells = Vec::new();
                    for ky in 0..pool.0 {
                        for kx in 0..pool.1 {
                            let iy = (oy * strides.0 + ky) as isize - pad.top as isize;
                            let ix = (ox * strides.1 + kx) as isize - pad.left as isize;
                            if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                continue;
                            }
                            cells.push(((b * h + iy as usize) * w + ix as usize) * c + ch);
                        }
                    }
                    let sum: f64 = cells.iter().map(|&i| x[i] as f64).sum();
                    means.push(sum / cells.len() as f64);
                    windows.push(cells);
                }
            }
        }
    }
    (means, windows, [n, oh, ow, c])
}

fn check(
    dims: [usize; 4],
    pool: (usize, usize),
    strides: (usize, usize),
    pad: Padding2d,
    seed: u64,
) {
    let mut rng = Lcg::new(seed);
    let x = random_var(&mut rng, &dims);
    let y = avg_pool2d(&x, pool, strides, pad).unwrap();
    let (means, windows, out_dims) = reference(&values(&x), dims, pool, strides, pad);
    assert_eq!(y.dims(), out_dims);
    assert_close("avg_pool2d y", &values(&y), &means, 1e-6);
    let upstream = random_tensor(&mut rng, y.dims());
    let grads = gradients_against(&y, &upstream);
    let mut expected = vec![0f64; x.elem_count()];
    for (cells, &g) in windows.iter().zip(&values(&upstream)) {
        for &i in cells {
            expected[i] += g as f64 / cells.len() as f64;
        }
    }
    let dx = values(grads.get(&x).unwrap());
    assert_close("avg_pool2d dx", &dx, &expected, 1e-6);
    let plain = avg_pool2d_backward(&x.detach(), &upstream, pool, strides, pad).unwrap();
    assert_close("avg_pool2d plain dx", &values(&plain), &expected, 1e-6);
    // The composed form: same values, and candle's autograd through it gives the same gradient.
    let (composed, composed_dx) = crate::with_composed_ops(|| {
        let y = avg_pool2d(&x, pool, strides, pad).unwrap();
        let dx = values(gradients_against(&y, &upstream).get(&x).unwrap());
        (values(&y), dx)
    });
    assert_close("composed avg_pool2d y", &composed, &means, 1e-6);
    assert_close("composed avg_pool2d dx", &composed_dx, &expected, 1e-6);
}

#[test]
fn same_padding_averages_the_real_cells_only() {
    // TensorFlow's avg_pool of 1..9 in a 3x3 image, 2x2 windows, strides 2, 'same':
    // [[(1+2+4+5)/4, (3+6)/2], [(7+8)/2, 9/1]] = [[3, 4.5], [7.5, 9]].
    let x = Tensor::arange(1f32, 10.0, &Device::Cpu)
        .unwrap()
        .reshape((1, 3, 3, 1))
        .unwrap();
    let pad = Padding2d::same((3, 3), (2, 2), (2, 2), (1, 1));
    let y = avg_pool2d(&x, (2, 2), (2, 2), pad).unwrap();
    assert_eq!(values(&y), vec![3.0, 4.5, 7.5, 9.0]);
    check(
        [2, 7, 7, 3],
        (2, 2),
        (2, 2),
        Padding2d::same((7, 7), (2, 2), (2, 2), (1, 1)),
        1,
    );
}

#[test]
fn pool_different_from_stride_and_asymmetric_padding() {
    check([2, 8, 9, 4], (3, 3), (2, 2), Padding2d::VALID, 2);
    check(
        [3, 7, 6, 2],
        (3, 2),
        (1, 2),
        Padding2d {
            top: 1,
            bottom: 2,
            left: 0,
            right: 1,
        },
        3,
    );
    check(
        [1, 9, 9, 5],
        (2, 2),
        (3, 3),
        Padding2d::same((9, 9), (2, 2), (3, 3), (1, 1)),
        4,
    );
    check(
        [2, 5, 5, 3],
        (3, 3),
        (1, 1),
        Padding2d::same((5, 5), (3, 3), (1, 1), (1, 1)),
        5,
    );
    // One window over the whole image: a global average.
    check([3, 4, 6, 7], (4, 6), (4, 6), Padding2d::VALID, 6);
}

#[test]
fn non_contiguous_input() {
    let mut rng = Lcg::new(7);
    let nchw = random_tensor(&mut rng, &[2, 3, 6, 5]);
    let x = nchw.permute((0, 2, 3, 1)).unwrap();
    let y = avg_pool2d(&x, (2, 2), (2, 2), Padding2d::VALID).unwrap();
    let (means, _, _) = reference(&values(&x), [2, 6, 5, 3], (2, 2), (2, 2), Padding2d::VALID);
    assert_close("y", &values(&y), &means, 1e-6);
}

#[test]
fn empty_batches_and_channels_give_empty_results() {
    for dims in [(0, 4, 4, 2), (2, 4, 4, 0)] {
        let x = Tensor::zeros(dims, DType::F32, &Device::Cpu).unwrap();
        let y = avg_pool2d(&x, (2, 2), (2, 2), Padding2d::VALID).unwrap();
        assert_eq!(y.dims(), &[dims.0, 2, 2, dims.3]);
        let dx = avg_pool2d_backward(&x, &y, (2, 2), (2, 2), Padding2d::VALID).unwrap();
        assert_eq!(dx.dims(), x.dims());
    }
}

#[test]
fn bad_configurations_are_refused() {
    let x = Tensor::zeros((1, 4, 4, 1), DType::F32, &Device::Cpu).unwrap();
    assert!(avg_pool2d(&x, (0, 2), (2, 2), Padding2d::VALID).is_err());
    assert!(avg_pool2d(&x, (2, 2), (2, 0), Padding2d::VALID).is_err());
    let too_much = Padding2d {
        top: 0,
        bottom: 0,
        left: 2,
        right: 0,
    };
    let err = avg_pool2d(&x, (2, 2), (2, 2), too_much).unwrap_err();
    assert!(err.to_string().contains("smaller than the pool"), "{err}");
    assert!(avg_pool2d(&x, (5, 2), (1, 1), Padding2d::VALID).is_err());
    let no_rows = Tensor::zeros((1, 0, 4, 1), DType::F32, &Device::Cpu).unwrap();
    let err = avg_pool2d(&no_rows, (2, 2), (2, 2), Padding2d::VALID).unwrap_err();
    assert!(err.to_string().contains("must be positive"), "{err}");
    let flat = Tensor::zeros((4, 4), DType::F32, &Device::Cpu).unwrap();
    assert!(avg_pool2d(&flat, (2, 2), (2, 2), Padding2d::VALID)
        .unwrap_err()
        .to_string()
        .contains("rank 4"));
    assert!(AvgPoolGeometry::new(&[1, 4, 4], (2, 2), (2, 2), Padding2d::VALID).is_err());
}

#[test]
fn plain_backward_refuses_a_gradient_of_the_wrong_shape() {
    let x = Tensor::zeros((1, 4, 4, 2), DType::F32, &Device::Cpu).unwrap();
    let wrong = Tensor::zeros((1, 3, 2, 2), DType::F32, &Device::Cpu).unwrap();
    let error = avg_pool2d_backward(&x, &wrong, (2, 2), (2, 2), Padding2d::VALID)
        .unwrap_err()
        .to_string();
    assert!(error.contains("output gradient"), "{error}");
}

#[test]
fn an_untracked_input_gets_no_gradient() {
    use candle_core::CustomOp1;
    let x = Tensor::ones((1, 2, 2, 1), DType::F32, &Device::Cpu).unwrap();
    let op = super::AvgPool2dOp {
        geometry: AvgPoolGeometry::new(x.dims(), (2, 2), (2, 2), Padding2d::VALID).unwrap(),
    };
    let y = avg_pool2d(&x, (2, 2), (2, 2), Padding2d::VALID).unwrap();
    assert!(op.bwd(&x, &y, &y).unwrap().is_none());
}

/// Best of `repeats` wall-clock times of `run`, in milliseconds.
fn best_ms(repeats: usize, mut run: impl FnMut()) -> f64 {
    (0..repeats)
        .map(|_| {
            let start = std::time::Instant::now();
            run();
            start.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

#[test]
#[ignore = "timing, run on demand with optimisations"]
fn avg_pool_timing() {
    // (name, H = W, C, pool, stride, 'same') at batch 256.
    let cases = [
        ("28x28x32 2x2/2 valid", 28, 32, 2, 2, false),
        ("28x28x32 3x3/1 same", 28, 32, 3, 1, true),
        ("7x7x128 global", 7, 128, 7, 7, false),
    ];
    println!(
        "{:<24} {:>9} {:>9} {:>11} {:>11} {:>12}",
        "case", "fwd ms", "dx ms", "comp fwd ms", "comp dx ms", "candle fwd ms"
    );
    for (name, size, c, k, s, same) in cases {
        let mut rng = Lcg::new(1);
        let x = random_var(&mut rng, &[256, size, size, c]);
        let pad = match same {
            true => Padding2d::same((size, size), (k, k), (s, s), (1, 1)),
            false => Padding2d::VALID,
        };
        let y = avg_pool2d(&x, (k, k), (s, s), pad).unwrap();
        let dy = random_tensor(&mut rng, y.dims());
        let fwd = best_ms(5, || {
            drop(avg_pool2d(x.as_tensor(), (k, k), (s, s), pad).unwrap())
        });
        let dx = best_ms(5, || {
            drop(avg_pool2d_backward(x.as_tensor(), &dy, (k, k), (s, s), pad).unwrap())
        });
        let (comp_fwd, comp_dx) = crate::with_composed_ops(|| {
            let fwd = best_ms(3, || {
                drop(avg_pool2d(x.as_tensor(), (k, k), (s, s), pad).unwrap())
            });
            let y = avg_pool2d(&x, (k, k), (s, s), pad).unwrap();
            (fwd, best_ms(3, || drop(gradients_against(&y, &dy))))
        });
        // candle's own CPU pooling (NCHW, valid only), for reference.
        let nchw = x.permute((0, 3, 1, 2)).unwrap().contiguous().unwrap();
        let candle = best_ms(5, || drop(nchw.avg_pool2d_with_stride(k, s).unwrap()));
        println!("{name:<24} {fwd:>9.2} {dx:>9.2} {comp_fwd:>11.2} {comp_dx:>11.2} {candle:>12.2}");
    }
}
