//! The convolution against a naive f64 loop reference: forward, and every gradient against the
//! reference's own analytic gradient (itself checked against finite differences).

use candle_core::{CustomOp3, Device, Tensor};

use super::composed;
use super::geometry::ConvGeometry;
use super::op::Conv2dOp;
use super::{conv2d, conv2d_backward, Conv2dParams, Conv2dWanted};
use crate::test_util::{assert_close, gradients_against, random_tensor, random_var, values, Lcg};

/// A convolution problem in plain arrays.
#[derive(Debug)]
struct Problem {
    x_dims: [usize; 4],
    k_dims: [usize; 4],
    params: Conv2dParams,
    relu: bool,
}

/// What the naive reference computes: output and the gradients of `sum(y * upstream)`.
struct Reference {
    y: Vec<f64>,
    x_grad: Vec<f64>,
    kernel_grad: Vec<f64>,
    bias_grad: Vec<f64>,
}

impl Problem {
    fn out_len(&self, axis: usize) -> usize {
        let (k, s, d, before, after) = match axis {
            1 => {
                let p = &self.params;
                (
                    self.k_dims[0],
                    p.strides.0,
                    p.dilation.0,
                    p.padding.top,
                    p.padding.bottom,
                )
            }
            _ => {
                let p = &self.params;
                (
                    self.k_dims[1],
                    p.strides.1,
                    p.dilation.1,
                    p.padding.left,
                    p.padding.right,
                )
            }
        };
        (self.x_dims[axis] + before + after - (k - 1) * d - 1) / s + 1
    }

    /// Direct seven-fold loops in f64, straight from the definition.
    fn reference(&self, x: &[f32], kernel: &[f32], bias: &[f32], upstream: &[f32]) -> Reference {
        let [n, h, w, cin] = self.x_dims;
        let [kh, kw, _, cout] = self.k_dims;
        let (oh, ow) = (self.out_len(1), self.out_len(2));
        let p = &self.params;
        let mut pre = vec![0f64; n * oh * ow * cout];
        let input_at = |oy: usize, ox: usize, ky: usize, kx: usize| -> Option<(usize, usize)> {
            let iy = (oy * p.strides.0 + ky * p.dilation.0) as isize - p.padding.top as isize;
            let ix = (ox * p.strides.1 + kx * p.dilation.1) as isize - p.padding.left as isize;
            ((0..h as isize).contains(&iy) && (0..w as isize).contains(&ix))
                .then_some((iy as usize, ix as usize))
        };
        let x_at = |b: usize, iy: usize, ix: usize, c: usize| ((b * h + iy) * w + ix) * cin + c;
        let k_at = |ky: usize, kx: usize, c: usize, f: usize| ((ky * kw + kx) * cin + c) * cout + f;
        let y_at = |b: usize, oy: usize, ox: usize, f: usize| ((b * oh + oy) * ow + ox) * cout + f;
        for b in 0..n {
            for oy in 0..oh {
                for ox in 0..ow {
                    for f in 0..cout {
                        let mut sum = bias[f] as f64;
                        for ky in 0..kh {
                            for kx in 0..kw {
                                if let Some((iy, ix)) = input_at(oy, ox, ky, kx) {
                                    for c in 0..cin {
                                        sum += x[x_at(b, iy, ix, c)] as f64
                                            * kernel[k_at(ky, kx, c, f)] as f64;
                                    }
                                }
                            }
                        }
                        pre[y_at(b, oy, ox, f)] = sum;
                    }
                }
            }
        }
        let y: Vec<f64> = pre
            .iter()
            .map(|&v| if self.relu { v.max(0.0) } else { v })
            .collect();
        let dy: Vec<f64> = upstream
            .iter()
            .zip(&pre)
            .map(|(&g, &v)| if self.relu && v <= 0.0 { 0.0 } else { g as f64 })
            .collect();
        let mut x_grad = vec![0f64; x.len()];
        let mut kernel_grad = vec![0f64; kernel.len()];
        let mut bias_grad = vec![0f64; cout];
        for b in 0..n {
            for oy in 0..oh {
                for ox in 0..ow {
                    for f in 0..cout {
                        let g = dy[y_at(b, oy, ox, f)];
                        bias_grad[f] += g;
                        for ky in 0..kh {
                            for kx in 0..kw {
                                if let Some((iy, ix)) = input_at(oy, ox, ky, kx) {
                                    for c in 0..cin {
                                        x_grad[x_at(b, iy, ix, c)] +=
                                            g * kernel[k_at(ky, kx, c, f)] as f64;
                                        kernel_grad[k_at(ky, kx, c, f)] +=
                                            g * x[x_at(b, iy, ix, c)] as f64;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        Reference {
            y,
            x_grad,
            kernel_grad,
            bias_grad,
        }
    }

    /// Runs the op with every argument a variable and compares all of it with the reference.
    fn check(&self, seed: u64, tolerance: f64) {
        let mut rng = Lcg::new(seed);
        let x = random_var(&mut rng, &self.x_dims);
        let kernel = random_var(&mut rng, &self.k_dims);
        let bias = random_var(&mut rng, &[self.k_dims[3]]);
        let y = conv2d(&x, &kernel, Some(&bias), &self.params, self.relu).unwrap();
        let upstream = random_tensor(&mut rng, y.dims());
        let reference = self.reference(
            &values(&x),
            &values(&kernel),
            &values(&bias),
            &values(&upstream),
        );
        let what = format!(
            "{:?} * {:?} {:?} relu={}",
            self.x_dims, self.k_dims, self.params, self.relu
        );
        assert_eq!(
            y.dims(),
            &[
                self.x_dims[0],
                self.out_len(1),
                self.out_len(2),
                self.k_dims[3]
            ],
            "{what}"
        );
        assert_close(&format!("{what}: y"), &values(&y), &reference.y, tolerance);
        let grads = gradients_against(&y, &upstream);
        let grad = |v: &candle_core::Var| values(grads.get(v).expect("gradient present"));
        assert_close(
            &format!("{what}: dx"),
            &grad(&x),
            &reference.x_grad,
            tolerance,
        );
        assert_close(
            &format!("{what}: dkernel"),
            &grad(&kernel),
            &reference.kernel_grad,
            tolerance,
        );
        assert_close(
            &format!("{what}: dbias"),
            &grad(&bias),
            &reference.bias_grad,
            tolerance,
        );
        self.check_plain_backward(&what, [&x, &kernel, &y, &upstream], &reference, tolerance);
    }

    /// The plain-function backward, on untracked tensors, against the same reference.
    fn check_plain_backward(
        &self,
        what: &str,
        [x, kernel, y, upstream]: [&Tensor; 4],
        reference: &Reference,
        tolerance: f64,
    ) {
        let all = Conv2dWanted {
            x: true,
            kernel: true,
            bias: true,
        };
        let grads = conv2d_backward(
            &x.detach(),
            &kernel.detach(),
            &y.detach(),
            upstream,
            &self.params,
            self.relu,
            all,
        )
        .unwrap();
        let got = |t: Option<Tensor>| values(&t.expect("asked-for gradient present"));
        assert_close(
            &format!("{what}: plain dx"),
            &got(grads.x),
            &reference.x_grad,
            tolerance,
        );
        assert_close(
            &format!("{what}: plain dkernel"),
            &got(grads.kernel),
            &reference.kernel_grad,
            tolerance,
        );
        assert_close(
            &format!("{what}: plain dbias"),
            &got(grads.bias),
            &reference.bias_grad,
            tolerance,
        );
    }
}

fn same(
    x_dims: [usize; 4],
    k_dims: [usize; 4],
    strides: (usize, usize),
    dilation: (usize, usize),
    relu: bool,
) -> Problem {
    Problem {
        x_dims,
        k_dims,
        params: Conv2dParams::same(
            (x_dims[1], x_dims[2]),
            (k_dims[0], k_dims[1]),
            strides,
            dilation,
        ),
        relu,
    }
}

fn valid(
    x_dims: [usize; 4],
    k_dims: [usize; 4],
    strides: (usize, usize),
    dilation: (usize, usize),
    relu: bool,
) -> Problem {
    Problem {
        x_dims,
        k_dims,
        params: Conv2dParams::valid(strides, dilation),
        relu,
    }
}

#[test]
fn reference_gradient_matches_finite_differences() {
    let problem = same([2, 4, 5, 2], [3, 2, 2, 3], (2, 1), (1, 2), false);
    let mut rng = Lcg::new(7);
    let x = rng.vec(2 * 4 * 5 * 2);
    let kernel = rng.vec(3 * 2 * 2 * 3);
    let bias = rng.vec(3);
    let upstream = rng.vec(2 * problem.out_len(1) * problem.out_len(2) * 3);
    let reference = problem.reference(&x, &kernel, &bias, &upstream);
    // The forward is linear in each argument, so a central difference is exact up to rounding.
    let objective = |x: &[f32], kernel: &[f32], bias: &[f32]| -> f64 {
        let r = problem.reference(x, kernel, bias, &upstream);
        r.y.iter().zip(&upstream).map(|(y, &g)| y * g as f64).sum()
    };
    let h = 0.5f32;
    for index in [0, 7, 33, 79] {
        let (mut plus, mut minus) = (x.clone(), x.clone());
        plus[index] += h;
        minus[index] -= h;
        let fd = (objective(&plus, &kernel, &bias) - objective(&minus, &kernel, &bias))
            / (2.0 * h as f64);
        assert!((fd - reference.x_grad[index]).abs() < 1e-9, "dx[{index}]");
    }
    for index in [0, 5, 35] {
        let (mut plus, mut minus) = (kernel.clone(), kernel.clone());
        plus[index] += h;
        minus[index] -= h;
        let fd = (objective(&x, &plus, &bias) - objective(&x, &minus, &bias)) / (2.0 * h as f64);
        assert!(
            (fd - reference.kernel_grad[index]).abs() < 1e-9,
            "dkernel[{index}]"
        );
    }
    let (mut plus, mut minus) = (bias.clone(), bias.clone());
    plus[1] += h;
    minus[1] -= h;
    let fd = (objective(&x, &kernel, &plus) - objective(&x, &kernel, &minus)) / (2.0 * h as f64);
    assert!((fd - reference.bias_grad[1]).abs() < 1e-9, "dbias");
}

#[test]
fn odd_kernel_same_stride_one() {
    same([2, 6, 5, 3], [3, 3, 3, 4], (1, 1), (1, 1), false).check(1, 1e-5);
}

#[test]
fn even_kernel_same_pads_bottom_right() {
    same([3, 7, 7, 5], [2, 2, 5, 2], (1, 1), (1, 1), true).check(2, 1e-5);
    same([1, 6, 5, 2], [4, 2, 2, 3], (1, 1), (1, 1), false).check(3, 1e-5);
}

#[test]
fn strided_same_and_valid() {
    same([2, 7, 8, 2], [3, 3, 2, 3], (2, 2), (1, 1), false).check(4, 1e-5);
    same([3, 9, 6, 4], [2, 3, 4, 5], (2, 1), (1, 1), true).check(5, 1e-5);
    valid([2, 9, 8, 3], [3, 2, 3, 2], (2, 3), (1, 1), false).check(6, 1e-5);
}

#[test]
fn dilation_two() {
    same([2, 9, 9, 2], [3, 3, 2, 3], (1, 1), (2, 2), false).check(7, 1e-5);
    valid([1, 10, 9, 3], [2, 3, 3, 2], (1, 2), (2, 1), true).check(8, 1e-5);
}

#[test]
fn many_channels_into_one_filter() {
    // The tutorial's 28x28x128 -> 1 (7x7) decoder head, scaled down: the projecting lowering.
    let problem = same([2, 9, 9, 128], [7, 7, 128, 1], (1, 1), (1, 1), true);
    assert_eq!(
        ConvGeometry::new(&problem.x_dims, &problem.k_dims, &problem.params)
            .unwrap()
            .formulation(),
        super::geometry::Formulation::Project
    );
    problem.check(9, 1e-4);
    same([3, 5, 6, 16], [3, 3, 16, 2], (1, 1), (1, 1), false).check(10, 1e-5);
    valid([2, 6, 7, 16], [3, 2, 16, 2], (1, 1), (1, 1), true).check(11, 1e-5);
}

#[test]
fn one_channel_into_many_filters() {
    same([3, 8, 8, 1], [7, 7, 1, 128], (1, 1), (1, 1), true).check(12, 1e-5);
    same([5, 6, 6, 32], [2, 2, 32, 128], (1, 1), (1, 1), true).check(13, 1e-5);
}

#[test]
fn short_rows_are_summed_directly() {
    // Rows of taps * Cin <= 16 values take the direct lowering: filters in full and partial
    // register blocks (1, 17, 40), strides, dilations, 'same' padding, odd sizes, batch 1.
    let problems = [
        valid([3, 11, 9, 1], [3, 3, 1, 32], (1, 1), (1, 1), true),
        same([1, 7, 6, 1], [3, 3, 1, 17], (1, 1), (1, 1), true),
        same([2, 9, 8, 2], [2, 2, 2, 40], (2, 1), (1, 1), false),
        valid([2, 10, 11, 1], [3, 2, 1, 1], (1, 2), (2, 3), true),
        same([1, 5, 7, 1], [4, 4, 1, 5], (1, 1), (1, 1), false),
        same([3, 6, 5, 3], [1, 1, 3, 16], (1, 1), (1, 1), true),
        valid([2, 9, 9, 1], [3, 3, 1, 8], (2, 2), (1, 1), true),
    ];
    for (seed, problem) in (40..).zip(problems) {
        assert_eq!(
            ConvGeometry::new(&problem.x_dims, &problem.k_dims, &problem.params)
                .unwrap()
                .formulation(),
            super::geometry::Formulation::Direct,
            "{problem:?}"
        );
        problem.check(seed, 1e-5);
    }
}

#[test]
fn three_by_three_kernels_over_many_channels_take_winograd() {
    // F(2x2, 3x3) tiles: keras.io convnet's second layer, odd output sizes (edge tiles cut),
    // 'same', 'valid' and uneven padding, channels in full and partial blocks of 16, outputs of
    // one column.
    let problems = [
        valid([2, 13, 13, 32], [3, 3, 32, 64], (1, 1), (1, 1), true),
        same([3, 7, 6, 17], [3, 3, 17, 20], (1, 1), (1, 1), false),
        same([1, 5, 8, 16], [3, 3, 16, 33], (1, 1), (1, 1), true),
        valid([2, 4, 3, 20], [3, 3, 20, 16], (1, 1), (1, 1), false),
        valid([7, 6, 5, 16], [3, 3, 16, 16], (1, 1), (1, 1), true),
        Problem {
            x_dims: [2, 5, 6, 16],
            k_dims: [3, 3, 16, 18],
            params: Conv2dParams {
                padding: crate::padding::Padding2d {
                    top: 3,
                    bottom: 0,
                    left: 0,
                    right: 2,
                },
                ..Conv2dParams::default()
            },
            relu: false,
        },
    ];
    for (seed, problem) in (60..).zip(problems) {
        assert_eq!(
            ConvGeometry::new(&problem.x_dims, &problem.k_dims, &problem.params)
                .unwrap()
                .formulation(),
            super::geometry::Formulation::Winograd,
            "{problem:?}"
        );
        problem.check(seed, 1e-5);
    }
}

#[test]
fn batch_sizes_across_chunk_boundaries() {
    for (batch, seed) in [(1, 14), (4, 15), (7, 16)] {
        same([batch, 5, 5, 3], [3, 3, 3, 2], (1, 1), (1, 1), false).check(seed, 1e-5);
        same([batch, 5, 5, 6], [2, 2, 6, 1], (1, 1), (1, 1), false).check(seed, 1e-5);
    }
}

#[test]
fn without_bias_and_with_non_contiguous_input() {
    let mut rng = Lcg::new(17);
    // An NCHW tensor permuted to NHWC: a strided view.
    let nchw = random_var(&mut rng, &[2, 3, 5, 4]);
    let x = nchw.permute((0, 2, 3, 1)).unwrap();
    assert!(!x.is_contiguous());
    // A kernel stored (Cout, KH, KW, Cin) and permuted: also strided.
    let stored = random_var(&mut rng, &[2, 3, 3, 3]);
    let kernel = stored.permute((1, 2, 3, 0)).unwrap();
    let problem = same([2, 5, 4, 3], [3, 3, 3, 2], (1, 1), (1, 1), false);
    let y = conv2d(&x, &kernel, None, &problem.params, false).unwrap();
    let upstream = random_tensor(&mut rng, y.dims());
    let zero_bias = [0f32; 2];
    let reference = problem.reference(
        &values(&x),
        &values(&kernel),
        &zero_bias,
        &values(&upstream),
    );
    assert_close("y", &values(&y), &reference.y, 1e-5);
    let grads = gradients_against(&y, &upstream);
    let x_grad = grads.get(&nchw).unwrap().permute((0, 2, 3, 1)).unwrap();
    assert_close("dx", &values(&x_grad), &reference.x_grad, 1e-5);
    let kernel_grad = grads.get(&stored).unwrap().permute((1, 2, 3, 0)).unwrap();
    assert_close(
        "dkernel",
        &values(&kernel_grad),
        &reference.kernel_grad,
        1e-5,
    );
}

#[test]
fn untracked_arguments_get_no_gradient() {
    let mut rng = Lcg::new(18);
    let x = random_tensor(&mut rng, &[2, 5, 5, 3]);
    let kernel = random_var(&mut rng, &[3, 3, 3, 4]);
    let bias = random_tensor(&mut rng, &[4]);
    let params = Conv2dParams::same((5, 5), (3, 3), (1, 1), (1, 1));
    let geometry = ConvGeometry::new(x.dims(), kernel.dims(), &params).unwrap();
    let op = Conv2dOp {
        geometry,
        relu: false,
    };
    let y = conv2d(&x, &kernel, Some(&bias), &params, false).unwrap();
    let upstream = Tensor::ones_like(&y).unwrap();
    let (x_grad, kernel_grad, bias_grad) = op.bwd(&x, &kernel, &bias, &y, &upstream).unwrap();
    assert!(x_grad.is_none() && bias_grad.is_none());
    assert_eq!(kernel_grad.unwrap().dims(), &[3, 3, 3, 4]);
    // And candle's backprop accepts the missing gradients.
    let grads = y.sum_all().unwrap().backward().unwrap();
    assert!(grads.get(&x).is_none() && grads.get(&bias).is_none());
    assert!(grads.get(&kernel).is_some());
}

#[test]
fn composed_fallback_matches_the_reference_with_its_gradients() {
    for (problem, seed) in [
        (same([2, 7, 6, 3], [2, 2, 3, 4], (1, 1), (1, 1), true), 19),
        (same([2, 7, 6, 3], [3, 3, 3, 2], (2, 2), (1, 1), false), 20),
        (valid([1, 9, 9, 2], [3, 3, 2, 2], (1, 1), (2, 2), false), 21),
        (same([2, 7, 8, 2], [3, 2, 2, 3], (2, 3), (1, 1), false), 22),
        (valid([1, 9, 8, 2], [4, 3, 2, 2], (1, 2), (1, 1), true), 23),
    ] {
        let mut rng = Lcg::new(seed);
        let x = random_var(&mut rng, &problem.x_dims);
        let kernel = random_var(&mut rng, &problem.k_dims);
        let bias = random_var(&mut rng, &[problem.k_dims[3]]);
        let y = composed::conv2d(&x, &kernel, Some(&bias), &problem.params, problem.relu).unwrap();
        let upstream = rng.vec(y.elem_count());
        let reference = problem.reference(&values(&x), &values(&kernel), &values(&bias), &upstream);
        let what = format!("composed {:?}", problem.params);
        assert_close(&format!("{what}: y"), &values(&y), &reference.y, 1e-5);
        let upstream = Tensor::from_vec(upstream, y.dims(), &Device::Cpu).unwrap();
        let grads = gradients_against(&y, &upstream);
        let grad = |v: &candle_core::Var| values(grads.get(v.as_tensor()).unwrap());
        assert_close(&format!("{what}: dx"), &grad(&x), &reference.x_grad, 1e-4);
        let dkernel = grad(&kernel);
        assert_close(
            &format!("{what}: dkernel"),
            &dkernel,
            &reference.kernel_grad,
            1e-4,
        );
        assert_close(
            &format!("{what}: dbias"),
            &grad(&bias),
            &reference.bias_grad,
            1e-4,
        );
    }
    let x = Tensor::zeros((1, 5, 5, 1), candle_core::DType::F32, &Device::Cpu).unwrap();
    let kernel = Tensor::zeros((2, 2, 1, 1), candle_core::DType::F32, &Device::Cpu).unwrap();
    let unequal_dilation = Conv2dParams::valid((1, 1), (1, 2));
    let err = composed::conv2d(&x, &kernel, None, &unequal_dilation, false).unwrap_err();
    assert!(err.to_string().contains("unequal dilation"), "{err}");
}

#[test]
fn wrong_arguments_are_refused_with_both_shapes() {
    let dev = Device::Cpu;
    let f32_zeros = |dims: &[usize]| Tensor::zeros(dims, candle_core::DType::F32, &dev).unwrap();
    let params = Conv2dParams::default();
    let x = f32_zeros(&[1, 5, 5, 3]);
    let err = conv2d(
        &f32_zeros(&[5, 5, 3]),
        &f32_zeros(&[3, 3, 3, 2]),
        None,
        &params,
        false,
    )
    .unwrap_err();
    assert!(err.to_string().contains("rank 4"), "{err}");
    let err = conv2d(&x, &f32_zeros(&[3, 3, 4, 2]), None, &params, false).unwrap_err();
    assert!(
        err.to_string().contains("[1, 5, 5, 3]") && err.to_string().contains("[3, 3, 4, 2]"),
        "{err}"
    );
    let err = conv2d(
        &x,
        &f32_zeros(&[3, 3, 3, 2]),
        Some(&f32_zeros(&[3])),
        &params,
        false,
    )
    .unwrap_err();
    assert!(err.to_string().contains("bias"), "{err}");
    let doubles = Tensor::zeros((1, 5, 5, 3), candle_core::DType::F64, &dev).unwrap();
    let err = conv2d(&doubles, &f32_zeros(&[3, 3, 3, 2]), None, &params, false).unwrap_err();
    assert!(err.to_string().contains("f32"), "{err}");
    let err = conv2d(&x, &f32_zeros(&[7, 3, 3, 2]), None, &params, false).unwrap_err();
    assert!(err.to_string().contains("smaller than the window"), "{err}");
}

#[test]
fn plain_backward_computes_only_what_is_asked_and_checks_shapes() {
    let problem = same([2, 5, 5, 2], [3, 3, 2, 3], (1, 1), (1, 1), true);
    let mut rng = Lcg::new(31);
    let x = random_tensor(&mut rng, &problem.x_dims);
    let kernel = random_tensor(&mut rng, &problem.k_dims);
    let bias = random_tensor(&mut rng, &[3]);
    let y = conv2d(&x, &kernel, Some(&bias), &problem.params, true).unwrap();
    let upstream = random_tensor(&mut rng, y.dims());
    let reference = problem.reference(
        &values(&x),
        &values(&kernel),
        &values(&bias),
        &values(&upstream),
    );
    let kernel_only = Conv2dWanted {
        x: false,
        kernel: true,
        bias: false,
    };
    let grads = conv2d_backward(
        &x,
        &kernel,
        &y,
        &upstream,
        &problem.params,
        true,
        kernel_only,
    )
    .unwrap();
    assert!(grads.x.is_none() && grads.bias.is_none());
    assert_close(
        "kernel only",
        &values(&grads.kernel.unwrap()),
        &reference.kernel_grad,
        1e-5,
    );
    let wrong = upstream.narrow(1, 0, 2).unwrap();
    let error = conv2d_backward(&x, &kernel, &y, &wrong, &problem.params, true, kernel_only)
        .unwrap_err()
        .to_string();
    assert!(error.contains("output gradient"), "{error}");
}

#[test]
fn kernel_and_bias_gradients_are_the_same_on_every_run_whichever_thread_takes_which_chunk() {
    // Many chunks of one or two images (large working sets), on more threads than chunks of
    // work are long: the threads take the chunks in a different order on every run, and the
    // gradients must not depend on it (one problem for each lowering).
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .unwrap();
    for (problem, seed) in [
        (
            same([24, 28, 28, 16], [3, 3, 16, 16], (1, 1), (1, 1), true),
            41,
        ),
        (
            same([48, 28, 28, 16], [7, 7, 16, 1], (1, 1), (1, 1), false),
            42,
        ),
    ] {
        let mut rng = Lcg::new(seed);
        let x = random_tensor(&mut rng, &problem.x_dims);
        let kernel = random_tensor(&mut rng, &problem.k_dims);
        let y = conv2d(&x, &kernel, None, &problem.params, problem.relu).unwrap();
        let upstream = random_tensor(&mut rng, y.dims());
        let wanted = Conv2dWanted {
            x: true,
            kernel: true,
            bias: true,
        };
        let run = || {
            let grads = pool.install(|| {
                conv2d_backward(
                    &x,
                    &kernel,
                    &y,
                    &upstream,
                    &problem.params,
                    problem.relu,
                    wanted,
                )
            });
            let grads = grads.unwrap();
            let bits = |t: Option<Tensor>| -> Vec<u32> {
                values(&t.unwrap()).iter().map(|v| v.to_bits()).collect()
            };
            (bits(grads.kernel), bits(grads.bias))
        };
        let first = run();
        for _ in 0..8 {
            assert!(
                run() == first,
                "{:?}: the gradients changed between runs",
                problem.x_dims
            );
        }
    }
}
