//! Timing of one training step of the tutorial's conv autoencoder at batch 256, op by op (run
//! with `cargo test -p rkeras-ops --release -- --ignored --nocapture autoencoder_step_timing`).
//!
//! The step is built from the same custom ops the public functions apply, each wrapped in
//! [`timed::Timed`], and differentiated by candle's own `backward`, exactly as training does.
//! The machine is shared, so every figure is the median over several steps, and CPU time (all
//! threads) is printed beside wall time: it is less sensitive to other processes' load.

mod meter;
mod timed;

use std::sync::Arc;

use candle_core::{Tensor, Var};

use crate::conv2d::{Conv2dOp, ConvGeometry};
use crate::dense::{ActivationOp, BinaryCrossEntropyOp};
use crate::max_pool::{MaxPool2dOp, PoolGeometry};
use crate::test_util::{random_tensor, random_var, Lcg};
use crate::upsample::UpsampleOp;
use crate::{
    bias_activation, binary_cross_entropy, conv2d, max_pool2d, upsample_nearest2d, Conv2dParams,
    FusedActivation, Padding2d,
};

use meter::{measure, median, peak_rss_mib, Cost, CostLog, Pass};
use timed::Timed;

const BATCH: usize = 256;
const WARMUP_STEPS: usize = 1;
const MEASURED_STEPS: usize = 7;

/// (name, Cin, K, Cout, ReLU) of the six convolutions, encoder then decoder.
const CONVS: [(&str, usize, usize, usize, bool); 6] = [
    ("conv1 28x28 1->128 k7", 1, 7, 128, true),
    ("conv2 14x14 128->32 k2", 128, 2, 32, true),
    ("conv3 7x7 32->1 k7", 32, 7, 1, true),
    ("conv4 7x7 1->32 k7", 1, 7, 32, true),
    ("conv5 14x14 32->128 k2", 32, 2, 128, true),
    ("conv6 28x28 128->1 k7", 128, 7, 1, false),
];

/// The autoencoder's weights and the log its timed ops write to.
struct Autoencoder {
    weights: Vec<(Var, Var)>,
    log: Arc<CostLog>,
}

impl Autoencoder {
    fn new(rng: &mut Lcg) -> Self {
        let weights = CONVS
            .iter()
            .map(|&(_, cin, k, cout, _)| {
                // Small weights keep the activations in a realistic range.
                let kernel = random_tensor(rng, &[k, k, cin, cout])
                    .affine(1.0 / (k * k * cin) as f64, 0.0)
                    .unwrap();
                (Var::from_tensor(&kernel).unwrap(), random_var(rng, &[cout]))
            })
            .collect();
        Self {
            weights,
            log: Arc::default(),
        }
    }

    fn timed<T>(&self, name: &'static str, inner: T) -> Timed<T> {
        Timed {
            name,
            inner,
            log: self.log.clone(),
        }
    }

    fn conv(&self, h: &Tensor, layer: usize) -> Tensor {
        let (name, _, k, _, relu) = CONVS[layer];
        let (kernel, bias) = &self.weights[layer];
        let size = h.dims()[1];
        let params = Conv2dParams::same((size, size), (k, k), (1, 1), (1, 1));
        let geometry = ConvGeometry::new(h.dims(), kernel.dims(), &params).unwrap();
        h.apply_op3(kernel, bias, self.timed(name, Conv2dOp { geometry, relu }))
            .unwrap()
    }

    fn pool(&self, h: &Tensor, name: &'static str) -> Tensor {
        let size = h.dims()[1];
        let padding = Padding2d::same((size, size), (2, 2), (2, 2), (1, 1));
        let geometry = PoolGeometry::new(h.dims(), (2, 2), (2, 2), padding).unwrap();
        h.apply_op1(self.timed(name, MaxPool2dOp { geometry }))
            .unwrap()
    }

    fn upsample(&self, h: &Tensor, name: &'static str) -> Tensor {
        let &[n, height, width, c] = h.dims() else {
            unreachable!("NHWC activations")
        };
        let op = UpsampleOp {
            dims: [n, height, width, c],
            size: (2, 2),
        };
        h.apply_op1(self.timed(name, op)).unwrap()
    }

    /// The reconstruction loss of `x`, through the timed ops.
    fn loss(&self, x: &Tensor) -> Tensor {
        let h = self.pool(&self.conv(x, 0), "pool1 28->14");
        let h = self.pool(&self.conv(&h, 1), "pool2 14->7");
        let code = self.conv(&h, 2);
        let h = self.upsample(&self.conv(&code, 3), "up1 7->14");
        let h = self.upsample(&self.conv(&h, 4), "up2 14->28");
        let logits = self.conv(&h, 5);
        let sigmoid = ActivationOp {
            activation: FusedActivation::Sigmoid,
        };
        let y = logits.apply_op1(self.timed("sigmoid", sigmoid)).unwrap();
        x.apply_op2(&y, self.timed("bce", BinaryCrossEntropyOp))
            .unwrap()
    }

    /// The same loss through the public functions, to check the timed graph is the real one.
    fn public_loss(&self, x: &Tensor) -> Tensor {
        let conv = |h: &Tensor, layer: usize| {
            let (_, _, k, _, relu) = CONVS[layer];
            let (kernel, bias) = &self.weights[layer];
            let size = h.dims()[1];
            let params = Conv2dParams::same((size, size), (k, k), (1, 1), (1, 1));
            conv2d(h, kernel, Some(bias), &params, relu).unwrap()
        };
        let pool = |h: &Tensor| {
            let size = h.dims()[1];
            let padding = Padding2d::same((size, size), (2, 2), (2, 2), (1, 1));
            max_pool2d(h, (2, 2), (2, 2), padding).unwrap()
        };
        let up = |h: &Tensor| upsample_nearest2d(h, (2, 2)).unwrap();
        let h = pool(&conv(x, 0));
        let h = pool(&conv(&h, 1));
        let h = up(&conv(&conv(&h, 2), 3));
        let h = up(&conv(&h, 4));
        let y = bias_activation(&conv(&h, 5), None, FusedActivation::Sigmoid).unwrap();
        binary_cross_entropy(x, &y).unwrap()
    }
}

/// What one step cost, as a whole and op by op.
struct StepCosts {
    forward: Cost,
    backward: Cost,
    /// Dropping the graph and the gradients (freeing their memory).
    release: Cost,
    ops: Vec<(String, Pass, Cost)>,
}

fn step(model: &Autoencoder, x: &Tensor) -> StepCosts {
    let (loss, forward) = measure(|| model.loss(x));
    let (grads, backward) = measure(|| loss.backward().unwrap());
    assert_eq!(
        model
            .weights
            .iter()
            .filter(|(k, b)| grads.get(k).is_some() && grads.get(b).is_some())
            .count(),
        CONVS.len(),
        "every weight gets a gradient"
    );
    let ((), release) = measure(|| drop((loss, grads)));
    StepCosts {
        forward,
        backward,
        release,
        ops: model.log.drain(),
    }
}

fn print_row(name: &str, forward: Option<Cost>, backward: Option<Cost>) {
    let cells = |cost: Option<Cost>| match cost {
        Some(c) => format!(
            "{:>8.1} {:>8.1} {:>7.0}",
            c.wall_ms,
            c.cpu_ms,
            c.faults / 1e3
        ),
        None => format!("{:>8} {:>8} {:>7}", "-", "-", "-"),
    };
    println!("{name:<24} {} | {}", cells(forward), cells(backward));
}

#[test]
#[ignore = "timing, run on demand in --release"]
fn autoencoder_step_timing() {
    let mut rng = Lcg::new(1);
    let x = random_tensor(&mut rng, &[BATCH, 28, 28, 1])
        .affine(0.5, 0.5)
        .unwrap();
    let model = Autoencoder::new(&mut rng);
    let timed = model.loss(&x).to_scalar::<f32>().unwrap();
    let public = model.public_loss(&x).to_scalar::<f32>().unwrap();
    assert_eq!(timed, public, "the timed graph computes the public one");
    model.log.drain();

    let steps: Vec<StepCosts> = (0..WARMUP_STEPS + MEASURED_STEPS)
        .map(|_| step(&model, &x))
        .skip(WARMUP_STEPS)
        .collect();

    let threads = crate::fork_join::worker_threads();
    println!("\nautoencoder step, batch {BATCH}, {threads} threads, median of {MEASURED_STEPS}:");
    println!(
        "{:<24} {:>8} {:>8} {:>7} | {:>8} {:>8} {:>7}",
        "", "fwd ms", "fwd cpu", "fwd kPF", "bwd ms", "bwd cpu", "bwd kPF"
    );
    let op_median = |name: &str, pass: Pass| {
        let costs: Vec<Cost> = steps
            .iter()
            .flat_map(|s| s.ops.iter())
            .filter(|(n, p, _)| n == name && *p == pass)
            .map(|(_, _, c)| *c)
            .collect();
        (!costs.is_empty()).then(|| median(&costs))
    };
    let mut names: Vec<&str> = Vec::new();
    for (name, _, _) in &steps[0].ops {
        if !names.contains(&name.as_str()) {
            names.push(name);
        }
    }
    for name in names {
        print_row(
            name,
            op_median(name, Pass::Forward),
            op_median(name, Pass::Backward),
        );
    }
    let whole = |pick: fn(&StepCosts) -> Cost| median(&steps.iter().map(pick).collect::<Vec<_>>());
    let ops_total = |pass: Pass| {
        let per_step: Vec<Cost> = steps
            .iter()
            .map(|s| {
                s.ops.iter().filter(|(_, p, _)| *p == pass).fold(
                    Cost::default(),
                    |sum, (_, _, c)| Cost {
                        wall_ms: sum.wall_ms + c.wall_ms,
                        cpu_ms: sum.cpu_ms + c.cpu_ms,
                        faults: sum.faults + c.faults,
                    },
                )
            })
            .collect();
        median(&per_step)
    };
    print_row(
        "ops total",
        Some(ops_total(Pass::Forward)),
        Some(ops_total(Pass::Backward)),
    );
    print_row(
        "pass total",
        Some(whole(|s| s.forward)),
        Some(whole(|s| s.backward)),
    );
    print_row("release", None, Some(whole(|s| s.release)));
    let total = whole(|s| Cost {
        wall_ms: s.forward.wall_ms + s.backward.wall_ms + s.release.wall_ms,
        cpu_ms: s.forward.cpu_ms + s.backward.cpu_ms + s.release.cpu_ms,
        faults: s.forward.faults + s.backward.faults + s.release.faults,
    });
    println!(
        "step total: {:.0} ms wall, {:.0} ms cpu, {:.0}k page faults; peak RSS {:.0} MiB",
        total.wall_ms,
        total.cpu_ms,
        total.faults / 1e3,
        peak_rss_mib()
    );
}
