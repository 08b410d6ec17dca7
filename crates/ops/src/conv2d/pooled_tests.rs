//! The backward pass through a max pooling of the output against the two passes it replaces:
//! the pooling's backward (which writes the output's full gradient) and then the convolution's.

use candle_core::Tensor;

use super::{conv2d, conv2d_backward, conv2d_max_pool_backward, Conv2dParams, Conv2dWanted};
use super::{geometry::ConvGeometry, geometry::Formulation, MaxPoolGradient};
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
    fn check(&self, seed: u64) {
        let mut rng = Lcg::new(seed);
        let x = random_tensor(&mut rng, &self.x_dims);
        let kernel = random_tensor(&mut rng, &self.k_dims);
        let bias = random_tensor(&mut rng, &[self.k_dims[3]]);
        let y = conv2d(&x, &kernel, Some(&bias), &self.params, self.relu).unwrap();
        let pooled = max_pool2d(&y, self.pool, self.strides, self.padding).unwrap();
        let grad = random_tensor(&mut rng, pooled.dims());
        let dy =
            max_pool2d_backward(&y, &pooled, &grad, self.pool, self.strides, self.padding).unwrap();
        let two_passes =
            conv2d_backward(&x, &kernel, &y, &dy, &self.params, self.relu, ALL).unwrap();
        let pooling = MaxPoolGradient {
            pooled: &pooled,
            grad: &grad,
            pool: self.pool,
            strides: self.strides,
            padding: self.padding,
        };
        let fused =
            conv2d_max_pool_backward(&x, &kernel, &y, &pooling, &self.params, self.relu, ALL)
                .unwrap();
        let what = format!(
            "{:?} * {:?} relu={} pool {:?}/{:?}",
            self.x_dims, self.k_dims, self.relu, self.pool, self.strides
        );
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
    let x = Tensor::ones(
        (2, 6, 6, 1),
        candle_core::DType::F32,
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let kernel = (Tensor::ones(
        (3, 3, 1, 4),
        candle_core::DType::F32,
        &candle_core::Device::Cpu,
    )
    .unwrap()
        * -1.0)
        .unwrap();
    let y = conv2d(&x, &kernel, None, &case.params, true).unwrap();
    let pooled = max_pool2d(&y, case.pool, case.strides, case.padding).unwrap();
    let grad = pooled.ones_like().unwrap();
    let pooling = MaxPoolGradient {
        pooled: &pooled,
        grad: &grad,
        pool: case.pool,
        strides: case.strides,
        padding: case.padding,
    };
    let grads =
        conv2d_max_pool_backward(&x, &kernel, &y, &pooling, &case.params, true, ALL).unwrap();
    for grad in [grads.x, grads.kernel, grads.bias] {
        assert!(values(&grad.unwrap()).iter().all(|&v| v == 0.0));
    }
    case.check(13);
}

#[test]
fn a_pooling_of_another_shape_is_refused() {
    let case = valid_conv([1, 6, 6, 1], [3, 3, 1, 2], true);
    let mut rng = Lcg::new(5);
    let x = random_tensor(&mut rng, &case.x_dims);
    let kernel = random_tensor(&mut rng, &case.k_dims);
    let y = conv2d(&x, &kernel, None, &case.params, true).unwrap();
    let wrong = random_tensor(&mut rng, &[1, 3, 3, 2]);
    let pooling = MaxPoolGradient {
        pooled: &wrong,
        grad: &wrong,
        pool: case.pool,
        strides: case.strides,
        padding: case.padding,
    };
    let err = conv2d_max_pool_backward(&x, &kernel, &y, &pooling, &case.params, true, ALL)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("pooled") && err.contains("[1, 2, 2, 2]"),
        "{err}"
    );
}
