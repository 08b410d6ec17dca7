//! Max pooling against a naive reference, value and gradient.

use candle_core::{Device, Tensor};

use super::composed;
use super::{max_pool2d, max_pool2d_backward, PoolGeometry};
use crate::padding::Padding2d;
use crate::test_util::{assert_close, gradients_against, random_tensor, random_var, values, Lcg};

/// Naive pooling: for each output cell, scan the window's real cells in row-major order;
/// returns the maxima and, for each output cell, the flat input index of its first maximum.
fn reference(
    x: &[f32],
    dims: [usize; 4],
    pool: (usize, usize),
    strides: (usize, usize),
    pad: Padding2d,
) -> (Vec<f64>, Vec<usize>, [usize; 4]) {
    let [n, h, w, c] = dims;
    let oh = (h + pad.top + pad.bottom - pool.0) / strides.0 + 1;
    let ow = (w + pad.left + pad.right - pool.1) / strides.1 + 1;
    let (mut maxima, mut args) = (Vec::new(), Vec::new());
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                for ch in 0..c {
                    let mut best: Option<(f32, usize)> = None;
                    for ky in 0..pool.0 {
                        for kx in 0..pool.1 {
                            let iy = (oy * strides.0 + ky) as isize - pad.top as isize;
                            let ix = (ox * strides.1 + kx) as isize - pad.left as isize;
                            if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                continue;
                            }
                            let index = ((b * h + iy as usize) * w + ix as usize) * c + ch;
                            if best.is_none_or(|(v, _)| x[index] > v) {
                                best = Some((x[index], index));
                            }
                        }
                    }
                    let (v, index) = best.expect("every window holds a real cell");
                    maxima.push(v as f64);
                    args.push(index);
                }
            }
        }
    }
    (maxima, args, [n, oh, ow, c])
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
    let y = max_pool2d(&x, pool, strides, pad).unwrap();
    let (maxima, args, out_dims) = reference(&values(&x), dims, pool, strides, pad);
    assert_eq!(y.dims(), out_dims);
    assert_close("max_pool2d y", &values(&y), &maxima, 0.0);
    let upstream = random_tensor(&mut rng, y.dims());
    let grads = gradients_against(&y, &upstream);
    let mut expected = vec![0f64; x.elem_count()];
    for (&index, &g) in args.iter().zip(&values(&upstream)) {
        expected[index] += g as f64;
    }
    assert_close(
        "max_pool2d dx",
        &values(grads.get(&x).unwrap()),
        &expected,
        1e-6,
    );
    let plain = max_pool2d_backward(&x.detach(), &y.detach(), &upstream, pool, strides, pad);
    assert_close(
        "max_pool2d plain dx",
        &values(&plain.unwrap()),
        &expected,
        1e-6,
    );
    let composed = composed::max_pool2d(x.as_tensor(), pool, strides, pad).unwrap();
    assert_close("composed max_pool2d y", &values(&composed), &maxima, 0.0);
}

#[test]
fn two_by_two_valid_routes_the_whole_gradient() {
    // candle's own CPU pooling gradient comes out a quarter of this.
    let x = Tensor::new(&[[1f32, 2.], [4., 3.]], &Device::Cpu)
        .unwrap()
        .reshape((1, 2, 2, 1))
        .unwrap();
    let x = candle_core::Var::from_tensor(&x).unwrap();
    let y = max_pool2d(&x, (2, 2), (2, 2), Padding2d::VALID).unwrap();
    assert_eq!(values(&y), vec![4.0]);
    let grads = y.sum_all().unwrap().backward().unwrap();
    assert_eq!(values(grads.get(&x).unwrap()), vec![0.0, 0.0, 1.0, 0.0]);
}

#[test]
fn same_on_odd_sizes_gives_seven_to_four() {
    let pad = Padding2d::same((7, 7), (2, 2), (2, 2), (1, 1));
    check([2, 7, 7, 3], (2, 2), (2, 2), pad, 1);
    // All-negative inputs: a padded zero would win if padding were read.
    let x = Tensor::full(-5f32, (1, 7, 7, 1), &Device::Cpu).unwrap();
    let y = max_pool2d(&x, (2, 2), (2, 2), pad).unwrap();
    assert_eq!(y.dims(), &[1, 4, 4, 1]);
    assert!(values(&y).iter().all(|&v| v == -5.0));
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
}

#[test]
fn disjoint_windows_leave_uncovered_cells_at_zero() {
    // 11 -> 5 rows and columns: the last row and column lie in no window.
    check([2, 11, 11, 4], (2, 2), (2, 2), Padding2d::VALID, 5);
    // Rows and columns skipped between windows (strides beyond the pool), and below the last.
    check([1, 10, 11, 3], (2, 2), (4, 3), Padding2d::VALID, 6);
    // Uneven window, strides equal to it.
    check([2, 7, 9, 5], (3, 2), (3, 2), Padding2d::VALID, 7);
}

#[test]
fn ties_go_to_the_first_cell_whole() {
    let x = Tensor::ones((1, 2, 2, 1), candle_core::DType::F32, &Device::Cpu).unwrap();
    let x = candle_core::Var::from_tensor(&x).unwrap();
    let y = max_pool2d(
        &x,
        (2, 2),
        (1, 1),
        Padding2d {
            top: 0,
            bottom: 1,
            left: 0,
            right: 1,
        },
    )
    .unwrap();
    assert_eq!(y.dims(), &[1, 2, 2, 1]);
    let grads = y.sum_all().unwrap().backward().unwrap();
    // Window (0,0) covers all four ones: its gradient goes to (0,0); the others to themselves.
    assert_eq!(values(grads.get(&x).unwrap()), vec![1.0, 1.0, 1.0, 1.0]);
    let y = max_pool2d(&x, (2, 2), (2, 2), Padding2d::VALID).unwrap();
    let grads = y.sum_all().unwrap().backward().unwrap();
    assert_eq!(values(grads.get(&x).unwrap()), vec![1.0, 0.0, 0.0, 0.0]);
}

#[test]
fn non_contiguous_input() {
    let mut rng = Lcg::new(5);
    let nchw = random_tensor(&mut rng, &[2, 3, 6, 5]);
    let x = nchw.permute((0, 2, 3, 1)).unwrap();
    let y = max_pool2d(&x, (2, 2), (2, 2), Padding2d::VALID).unwrap();
    let (maxima, _, _) = reference(&values(&x), [2, 6, 5, 3], (2, 2), (2, 2), Padding2d::VALID);
    assert_close("y", &values(&y), &maxima, 0.0);
}

#[test]
fn bad_configurations_are_refused() {
    let x = Tensor::zeros((1, 4, 4, 1), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert!(max_pool2d(&x, (0, 2), (2, 2), Padding2d::VALID).is_err());
    assert!(max_pool2d(&x, (2, 2), (2, 0), Padding2d::VALID).is_err());
    let too_much = Padding2d {
        top: 2,
        bottom: 0,
        left: 0,
        right: 0,
    };
    let err = max_pool2d(&x, (2, 2), (2, 2), too_much).unwrap_err();
    assert!(err.to_string().contains("smaller than the pool"), "{err}");
    assert!(max_pool2d(&x, (5, 2), (1, 1), Padding2d::VALID).is_err());
    // A window over padding alone (an image of no rows) is an error, not a panic.
    let no_rows = Tensor::zeros((1, 0, 4, 1), candle_core::DType::F32, &Device::Cpu).unwrap();
    let pad_rows = Padding2d {
        top: 1,
        bottom: 1,
        left: 0,
        right: 0,
    };
    let err = max_pool2d(&no_rows, (2, 2), (2, 2), pad_rows).unwrap_err();
    assert!(err.to_string().contains("must be positive"), "{err}");
    let flat = Tensor::zeros((4, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert!(max_pool2d(&flat, (2, 2), (2, 2), Padding2d::VALID)
        .unwrap_err()
        .to_string()
        .contains("rank 4"));
}

#[test]
fn plain_backward_refuses_an_output_of_the_wrong_shape() {
    let x = Tensor::zeros((1, 4, 4, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
    let wrong = Tensor::zeros((1, 3, 2, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
    let error = max_pool2d_backward(&x, &wrong, &wrong, (2, 2), (2, 2), Padding2d::VALID)
        .unwrap_err()
        .to_string();
    assert!(error.contains("output"), "{error}");
}

/// Milliseconds of the forward and backward passes on the MNIST convnet's two poolings, batch
/// 128 (`cargo test -p rkeras-ops --release -- --ignored --nocapture max_pool_timing`).
#[test]
#[ignore = "a timing run, not a test"]
fn max_pool_timing() -> candle_core::Result<()> {
    for (h, c) in [(26, 32), (11, 64)] {
        let mut rng = Lcg::new(7);
        let x = random_tensor(&mut rng, &[128, h, h, c]);
        let (pool, none) = ((2, 2), Padding2d::VALID);
        let y = max_pool2d(&x, pool, pool, none)?;
        let dy = random_tensor(&mut rng, y.dims());
        let time = |f: &dyn Fn() -> candle_core::Result<Tensor>| -> candle_core::Result<f64> {
            let mut best = f64::INFINITY;
            for _ in 0..30 {
                let start = std::time::Instant::now();
                f()?;
                best = best.min(start.elapsed().as_secs_f64() * 1e3);
            }
            Ok(best)
        };
        let forward = time(&|| max_pool2d(&x, pool, pool, none))?;
        let backward = time(&|| max_pool2d_backward(&x, &y, &dy, pool, pool, none))?;
        println!("{h}x{h}x{c}: forward {forward:.3} ms, backward {backward:.3} ms (best of 30)");
    }
    Ok(())
}

#[test]
fn windows_tile_an_image_only_side_by_side_up_to_its_last_row_and_column() {
    let tiles = |size: usize, pool: usize, stride: usize, padding: Padding2d| {
        PoolGeometry::new(&[1, size, size, 3], (pool, pool), (stride, stride), padding)
            .unwrap()
            .windows_tile_the_image()
    };
    let same = |size: usize| Padding2d::same((size, size), (2, 2), (2, 2), (1, 1));
    // 26 into 13 windows of 2; 13 'valid' leaves the last row and column out, 'same' pads them.
    assert!(tiles(26, 2, 2, Padding2d::VALID));
    assert!(!tiles(13, 2, 2, Padding2d::VALID));
    assert!(tiles(13, 2, 2, same(13)));
    // Overlapping windows, and windows with gaps between them.
    assert!(!tiles(9, 3, 2, Padding2d::VALID));
    assert!(!tiles(9, 2, 3, Padding2d::VALID));
}
