//! The transposed convolution against a naive f64 loop reference: forward and both gradients,
//! through the CPU op (and candle's autograd over it), the plain backward and the composed form.

use candle_core::{DType, Device, Tensor, Var};

use super::{composed, conv2d_transpose, conv2d_transpose_backward, Conv2dTransposeParams};
use crate::conv2d::geometry::Formulation;
use crate::test_util::{assert_close, gradients_against, random_tensor, random_var, values, Lcg};

/// A transposed convolution problem in plain arrays.
struct Problem {
    /// (N, H, W, C).
    x_dims: [usize; 4],
    /// (KH, KW, F, C).
    k_dims: [usize; 4],
    params: Conv2dTransposeParams,
}

/// The output and the gradients of `sum(y · upstream)`, from the definition.
struct Reference {
    y: Vec<f64>,
    x_grad: Vec<f64>,
    kernel_grad: Vec<f64>,
}

fn problem(
    x_dims: [usize; 4],
    k_dims: [usize; 4],
    strides: (usize, usize),
    dilation: (usize, usize),
    crop: (usize, usize),
    output_size: (usize, usize),
) -> Problem {
    Problem {
        x_dims,
        k_dims,
        params: Conv2dTransposeParams {
            strides,
            dilation,
            crop,
            output_size,
        },
    }
}

impl Problem {
    /// Every (input pixel, tap, output pixel) with `o = i·s + k·d − crop` inside the output.
    fn pairs(&self) -> Vec<[usize; 6]> {
        let [_, h, w, _] = self.x_dims;
        let [kh, kw, _, _] = self.k_dims;
        let p = &self.params;
        let (oh, ow) = p.output_size;
        let mut all = Vec::new();
        for iy in 0..h {
            for ix in 0..w {
                for ky in 0..kh {
                    for kx in 0..kw {
                        let oy =
                            (iy * p.strides.0 + ky * p.dilation.0) as isize - p.crop.0 as isize;
                        let ox =
                            (ix * p.strides.1 + kx * p.dilation.1) as isize - p.crop.1 as isize;
                        if (0..oh as isize).contains(&oy) && (0..ow as isize).contains(&ox) {
                            all.push([iy, ix, ky, kx, oy as usize, ox as usize]);
                        }
                    }
                }
            }
        }
        all
    }

    fn reference(&self, x: &[f32], kernel: &[f32], upstream: &[f32]) -> Reference {
        let [n, h, w, c] = self.x_dims;
        let [_, kw, f, _] = self.k_dims;
        let (oh, ow) = self.params.output_size;
        let x_at = |b: usize, iy: usize, ix: usize, ch: usize| ((b * h + iy) * w + ix) * c + ch;
        let k_at = |ky: usize, kx: usize, fi: usize, ch: usize| ((ky * kw + kx) * f + fi) * c + ch;
        let y_at = |b: usize, oy: usize, ox: usize, fi: usize| ((b * oh + oy) * ow + ox) * f + fi;
        let mut y = vec![0f64; n * oh * ow * f];
        let mut x_grad = vec![0f64; x.len()];
        let mut kernel_grad = vec![0f64; kernel.len()];
        for [iy, ix, ky, kx, oy, ox] in self.pairs() {
            for b in 0..n {
                for fi in 0..f {
                    for ch in 0..c {
                        let (xv, kv) = (
                            x[x_at(b, iy, ix, ch)] as f64,
                            kernel[k_at(ky, kx, fi, ch)] as f64,
                        );
                        let g = upstream[y_at(b, oy, ox, fi)] as f64;
                        y[y_at(b, oy, ox, fi)] += xv * kv;
                        x_grad[x_at(b, iy, ix, ch)] += g * kv;
                        kernel_grad[k_at(ky, kx, fi, ch)] += g * xv;
                    }
                }
            }
        }
        Reference {
            y,
            x_grad,
            kernel_grad,
        }
    }

    fn out_dims(&self) -> [usize; 4] {
        let (oh, ow) = self.params.output_size;
        [self.x_dims[0], oh, ow, self.k_dims[2]]
    }

    /// The CPU op with tracked arguments, its plain backward, and the composed form, each
    /// against the reference.
    fn check(&self, seed: u64) {
        let mut rng = Lcg::new(seed);
        let x = random_var(&mut rng, &self.x_dims);
        let kernel = random_var(&mut rng, &self.k_dims);
        let upstream = random_tensor(&mut rng, &self.out_dims());
        let reference = self.reference(&values(&x), &values(&kernel), &values(&upstream));
        let what = format!("{:?} by {:?} {:?}", self.x_dims, self.k_dims, self.params);
        let y = conv2d_transpose(&x, &kernel, &self.params).unwrap();
        assert_eq!(y.dims(), &self.out_dims(), "{what}");
        let composed_y = composed::conv2d_transpose(&x, &kernel, &self.params).unwrap();
        for (form, y) in [("op", &y), ("composed", &composed_y)] {
            let what = format!("{form} {what}");
            assert_close(&format!("{what}: y"), &values(y), &reference.y, 1e-5);
            let grads = gradients_against(y, &upstream);
            let grad = |v: &Var| values(grads.get(v).expect("gradient present"));
            assert_close(&format!("{what}: dx"), &grad(&x), &reference.x_grad, 1e-5);
            assert_close(
                &format!("{what}: dkernel"),
                &grad(&kernel),
                &reference.kernel_grad,
                1e-5,
            );
        }
        let plain = conv2d_transpose_backward(
            &x.detach(),
            &kernel.detach(),
            &upstream,
            &self.params,
            (true, true),
        )
        .unwrap();
        let got = |t: Option<Tensor>| values(&t.expect("asked-for gradient present"));
        assert_close(
            &format!("{what}: plain dx"),
            &got(plain.x),
            &reference.x_grad,
            1e-5,
        );
        assert_close(
            &format!("{what}: plain dkernel"),
            &got(plain.kernel),
            &reference.kernel_grad,
            1e-5,
        );
    }
}

#[test]
fn keras_same_stride_two_doubles_the_size() {
    // keras.io's VAE decoder: 7x7 -> 14x14, kernel 3, strides 2, 'same' (crop 0).
    problem([2, 7, 7, 3], [3, 3, 4, 3], (2, 2), (1, 1), (0, 0), (14, 14)).check(1);
    // Kernel 4, strides 2, 'same': crop 1 each way.
    problem([1, 5, 4, 2], [4, 4, 3, 2], (2, 2), (1, 1), (1, 1), (10, 8)).check(2);
}

#[test]
fn valid_with_and_without_output_padding() {
    // 'valid': the full output (H - 1)·s + K, plus output_padding zeros rows at the end.
    problem([2, 4, 3, 2], [3, 2, 2, 2], (2, 3), (1, 1), (0, 0), (9, 8)).check(3);
    problem([1, 4, 3, 2], [3, 2, 2, 2], (2, 3), (1, 1), (0, 0), (10, 10)).check(4);
    // Stride larger than the kernel: rows no input reaches stay zero.
    problem([2, 3, 3, 1], [2, 2, 2, 1], (3, 3), (1, 1), (0, 0), (9, 9)).check(5);
}

#[test]
fn stride_one_takes_the_cheapest_lowering() {
    // Many input channels into few filters: the adjoint convolution projects.
    let p = problem([2, 6, 5, 2], [3, 3, 16, 2], (1, 1), (1, 1), (1, 1), (6, 5));
    let g = super::adjoint_geometry(&p.x_dims, &p.k_dims, &p.params).unwrap();
    assert_eq!(g.formulation(), Formulation::Project);
    p.check(6);
    // Few input channels into many filters: it unfolds.
    let p = problem([2, 5, 5, 16], [3, 3, 2, 16], (1, 1), (1, 1), (1, 1), (5, 5));
    let g = super::adjoint_geometry(&p.x_dims, &p.k_dims, &p.params).unwrap();
    assert_eq!(g.formulation(), Formulation::Unfold);
    p.check(7);
    // One channel through a small kernel: rows of four values, summed directly.
    let p = problem([2, 5, 5, 16], [2, 2, 1, 16], (1, 1), (1, 1), (0, 0), (5, 5));
    let g = super::adjoint_geometry(&p.x_dims, &p.k_dims, &p.params).unwrap();
    assert_eq!(g.formulation(), Formulation::Direct);
    p.check(7);
}

#[test]
fn dilation_and_odd_crops() {
    problem([1, 4, 5, 2], [3, 2, 3, 2], (1, 1), (2, 2), (2, 1), (6, 5)).check(8);
    problem([2, 3, 4, 3], [3, 3, 2, 3], (2, 1), (1, 1), (1, 0), (6, 5)).check(9);
}

#[test]
fn batch_sizes_across_chunk_boundaries() {
    for (batch, seed) in [(1, 10), (5, 11), (9, 12)] {
        problem(
            [batch, 4, 4, 3],
            [3, 3, 2, 3],
            (2, 2),
            (1, 1),
            (0, 0),
            (8, 8),
        )
        .check(seed);
    }
}

#[test]
fn only_the_asked_for_gradients_and_untracked_arguments() {
    let p = problem([2, 3, 3, 2], [3, 3, 2, 2], (2, 2), (1, 1), (0, 0), (6, 6));
    let mut rng = Lcg::new(13);
    let x = random_tensor(&mut rng, &p.x_dims);
    let kernel = random_var(&mut rng, &p.k_dims);
    let y = conv2d_transpose(&x, &kernel, &p.params).unwrap();
    let grads = y.sum_all().unwrap().backward().unwrap();
    assert!(grads.get(&x).is_none() && grads.get(&kernel).is_some());
    let upstream = random_tensor(&mut rng, y.dims());
    let only_x =
        conv2d_transpose_backward(&x, &kernel, &upstream, &p.params, (true, false)).unwrap();
    assert!(only_x.x.is_some() && only_x.kernel.is_none());
    let wrong = upstream.narrow(1, 0, 5).unwrap();
    let err = conv2d_transpose_backward(&x, &kernel, &wrong, &p.params, (true, true))
        .unwrap_err()
        .to_string();
    assert!(err.contains("output gradient"), "{err}");
}

#[test]
fn wrong_arguments_are_refused() {
    let zeros = |dims: &[usize]| Tensor::zeros(dims, DType::F32, &Device::Cpu).unwrap();
    let params = Conv2dTransposeParams {
        strides: (2, 2),
        dilation: (1, 1),
        crop: (0, 0),
        output_size: (6, 6),
    };
    let x = zeros(&[1, 3, 3, 2]);
    let err = conv2d_transpose(&x, &zeros(&[3, 3, 4, 5]), &params).unwrap_err();
    assert!(
        err.to_string().contains("[1, 3, 3, 2]") && err.to_string().contains("[3, 3, 4, 5]"),
        "{err}"
    );
    assert!(conv2d_transpose(&zeros(&[3, 3, 2]), &zeros(&[3, 3, 4, 2]), &params).is_err());
    let zero_stride = Conv2dTransposeParams {
        strides: (0, 2),
        ..params
    };
    assert!(conv2d_transpose(&x, &zeros(&[3, 3, 4, 2]), &zero_stride).is_err());
    // Two strides or more past the full output: no convolution has it as its input gradient.
    let too_far = Conv2dTransposeParams {
        output_size: (9, 6),
        ..params
    };
    let err = conv2d_transpose(&x, &zeros(&[3, 3, 4, 2]), &too_far).unwrap_err();
    assert!(err.to_string().contains("past the full output"), "{err}");
    let huge = Conv2dTransposeParams {
        strides: (usize::MAX / 2, 1),
        ..params
    };
    assert!(conv2d_transpose(&x, &zeros(&[3, 3, 4, 2]), &huge).is_err());
    let unequal_dilation = Conv2dTransposeParams {
        strides: (1, 1),
        dilation: (1, 2),
        crop: (0, 0),
        output_size: (5, 7),
    };
    let err = composed::conv2d_transpose(&x, &zeros(&[3, 3, 4, 2]), &unequal_dilation)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unequal dilation"), "{err}");
}
