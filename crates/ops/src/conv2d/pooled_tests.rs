//! A convolution pooled in one pass, forward and backward, against the two passes it replaces:
//! the convolution then the pooling, and the pooling's backward (which writes the output's full
//! gradient) then the convolution's.

use candle_core::{Device, Tensor};

use super::{conv2d, conv2d_backward, conv2d_max_pool, conv2d_max_pool_backward};
use super::{geometry::ConvGeometry, geometry::Formulation};
use super::{Conv2dParams, Conv2dWanted, MaxPoolWindow};
use crate::padding::Padding2d;
use crate::test_util::{assert_close, random_tensor, values, Lcg};
use crate::{max_pool2d, max_pool2d_backward};

/// A convolution, the pooling of its output, and whether ReLU is fused.
struct Case {
    x_dims: [usize; 4],
    k_dims: [usize; 4],
    params: Conv2dParams,
    pool: (usize, usize),
    strides: (usize, usize),
    padding: Padding2d,
    relu: bool,
}

const ALL: Conv2dWanted = Conv2dWanted {
    x: true,
    kernel: true,
    bias: true,
};

impl Case {
    fn window(&self) -> MaxPoolWindow {
        MaxPoolWindow {
            pool: self.pool,
            strides: self.strides,
            padding: self.padding,
        }
    }

    fn check(&self, seed: u64) {
        let mut rng = Lcg::new(seed);
        let x = random_tensor(&mut rng, &self.x_dims);
        let kernel = random_tensor(&mut rng, &self.k_dims);
        let bias = random_tensor(&mut rng, &[self.k_dims[3]]);
        self.check_arguments(&mut rng, &x, &kernel, &bias);
    }

    /// The one-pass forward and backward against the two passes, on the given arguments.
    fn check_arguments(&self, rng: &mut Lcg, x: &Tensor, kernel: &Tensor, bias: &Tensor) {
        let (x, kernel) = (x.clone(), kernel.clone());
        let y = conv2d(&x, &kernel, Some(bias), &self.params, self.relu).unwrap();
        let pooled = max_pool2d(&y, self.pool, self.strides, self.padding).unwrap();
        let (fused_pooled, winners) = conv2d_max_pool(
            &x,
            &kernel,
            Some(bias),
            &self.params,
            self.relu,
            &self.window(),
        )
        .unwrap();
        let what = format!(
            "{:?} * {:?} relu={} pool {:?}/{:?}",
            self.x_dims, self.k_dims, self.relu, self.pool, self.strides
        );
        // The same products and maxima: the same values.
        assert_eq!(fused_pooled.dims(), pooled.dims(), "{what}");
        assert_eq!(values(&fused_pooled), values(&pooled), "{what}: pooled");
        let grad = random_tensor(rng, pooled.dims());
        let dy =
            max_pool2d_backward(&y, &pooled, &grad, self.pool, self.strides, self.padding).unwrap();
        let two_passes =
            conv2d_backward(&x, &kernel, &y, &dy, &self.params, self.relu, ALL).unwrap();
        let fused = conv2d_max_pool_backward(
            &x,
            &kernel,
            &fused_pooled,
            &grad,
            &winners,
            &self.params,
            self.relu,
            ALL,
        )
        .unwrap();
        let pairs = [
            ("dx", fused.x, two_passes.x),
            ("dkernel", fused.kernel, two_passes.kernel),
            ("dbias", fused.bias, two_passes.bias),
        ];
        for (name, got, expected) in pairs {
            let expected: Vec<f64> = values(&expected.unwrap())
                .into_iter()
                .map(f64::from)
                .collect();
            assert_close(
                &format!("{what}: {name}"),
                &values(&got.unwrap()),
                &expected,
                1e-5,
            );
        }
    }
}

fn valid_conv(x_dims: [usize; 4], k_dims: [usize; 4], relu: bool) -> Case {
    Case {
        x_dims,
        k_dims,
        params: Conv2dParams::default(),
        pool: (2, 2),
        strides: (2, 2),
        padding: Padding2d::VALID,
        relu,
    }
}

fn formulation(case: &Case) -> Formulation {
    ConvGeometry::new(&case.x_dims, &case.k_dims, &case.params)
        .unwrap()
        .formulation()
}

#[test]
fn every_lowering_gives_the_gradients_of_the_two_passes() {
    // The MNIST convnet's two blocks (direct, then Winograd's), one with a 2x2 kernel
    // (unfolded) and one with few filters (projected); odd outputs leave a row and a column
    // outside every window.
    let cases = [
        (
            valid_conv([3, 12, 12, 1], [3, 3, 1, 32], true),
            Formulation::Direct,
        ),
        (
            valid_conv([5, 7, 7, 32], [3, 3, 32, 64], true),
            Formulation::Winograd,
        ),
        (
            valid_conv([2, 9, 8, 64], [3, 3, 64, 2], true),
            Formulation::Project,
        ),
        (
            valid_conv([3, 12, 12, 1], [3, 3, 1, 8], false),
            Formulation::Direct,
        ),
        (
            valid_conv([5, 8, 8, 32], [2, 2, 32, 64], false),
            Formulation::Unfold,
        ),
    ];
    for (seed, (case, lowering)) in (1..).zip(cases) {
        assert_eq!(formulation(&case), lowering);
        case.check(seed);
    }
}

#[test]
fn overlapping_and_padded_windows_route_as_the_pooling_does() {
    let overlapping = Case {
        pool: (3, 3),
        strides: (2, 1),
        ..valid_conv([2, 9, 10, 3], [3, 3, 3, 16], true)
    };
    overlapping.check(11);
    let padded = Case {
        padding: Padding2d::same((6, 7), (2, 2), (2, 2), (1, 1)),
        ..valid_conv([3, 8, 9, 2], [3, 3, 2, 8], false)
    };
    padded.check(12);
}

#[test]
fn windows_of_zeros_behind_relu_pass_nothing() {
    // Every pre-activation negative: ReLU's output is all zeros, each window's maximum 0, and
    // no gradient reaches the weights or the input.
    let case = valid_conv([2, 6, 6, 1], [3, 3, 1, 4], true);
    let x = constant(&[2, 6, 6, 1], 1.0);
    let kernel = constant(&[3, 3, 1, 4], -1.0);
    let (pooled, winners) =
        conv2d_max_pool(&x, &kernel, None, &case.params, true, &case.window()).unwrap();
    let grad = pooled.ones_like().unwrap();
    let grads = conv2d_max_pool_backward(
        &x,
        &kernel,
        &pooled,
        &grad,
        &winners,
        &case.params,
        true,
        ALL,
    )
    .unwrap();
    for grad in [grads.x, grads.kernel, grads.bias] {
        assert!(values(&grad.unwrap()).iter().all(|&v| v == 0.0));
    }
    case.check(13);
}

#[test]
fn tied_windows_route_to_their_first_cell() {
    // A zero kernel: every output is the bias, every window a tie, won by its first cell.
    for relu in [true, false] {
        let case = Case {
            pool: (3, 2),
            strides: (2, 2),
            ..valid_conv([2, 8, 9, 2], [3, 3, 2, 5], relu)
        };
        let mut rng = Lcg::new(21);
        let x = random_tensor(&mut rng, &case.x_dims);
        let bias = random_tensor(&mut rng, &[5]);
        case.check_arguments(&mut rng, &x, &constant(&case.k_dims, 0.0), &bias);
    }
}

#[test]
fn winners_of_another_shape_are_refused() {
    let case = valid_conv([1, 6, 6, 1], [3, 3, 1, 2], true);
    let other = valid_conv([1, 8, 8, 1], [3, 3, 1, 2], true);
    let mut rng = Lcg::new(5);
    let x = random_tensor(&mut rng, &case.x_dims);
    let kernel = random_tensor(&mut rng, &case.k_dims);
    let other_x = random_tensor(&mut rng, &other.x_dims);
    let (_, other_winners) = conv2d_max_pool(
        &other_x,
        &kernel,
        None,
        &other.params,
        true,
        &other.window(),
    )
    .unwrap();
    let (pooled, winners) =
        conv2d_max_pool(&x, &kernel, None, &case.params, true, &case.window()).unwrap();
    let backward = |pooled: &Tensor, winners| {
        conv2d_max_pool_backward(
            &x,
            &kernel,
            pooled,
            pooled,
            winners,
            &case.params,
            true,
            ALL,
        )
        .unwrap_err()
        .to_string()
    };
    let err = backward(&pooled, &other_winners);
    assert!(
        err.contains("winners") && err.contains("[1, 6, 6, 2]"),
        "{err}"
    );
    let wrong = random_tensor(&mut rng, &[1, 3, 3, 2]);
    let err = backward(&wrong, &winners);
    assert!(
        err.contains("pooled") && err.contains("[1, 2, 2, 2]"),
        "{err}"
    );
}

#[test]
fn windows_too_large_to_index_are_refused() {
    let case = Case {
        pool: (16, 17),
        strides: (1, 1),
        ..valid_conv([1, 20, 20, 1], [3, 3, 1, 2], false)
    };
    assert!(!case.window().fuses_on(&Device::Cpu));
    let mut rng = Lcg::new(6);
    let x = random_tensor(&mut rng, &case.x_dims);
    let kernel = random_tensor(&mut rng, &case.k_dims);
    let err = conv2d_max_pool(&x, &kernel, None, &case.params, false, &case.window())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("256 cells") && err.contains("(16, 17)"),
        "{err}"
    );
    let fits = Case {
        pool: (16, 16),
        ..case
    };
    assert!(fits.window().fuses_on(&Device::Cpu));
    fits.check(7);
}

fn constant(dims: &[usize], value: f64) -> Tensor {
    Tensor::full(value as f32, dims, &Device::Cpu).unwrap()
}
