//! The kernels against a naive f64 reference of Keras's equations: outputs directly, gradients
//! against central finite differences of the reference.

use candle_core::{Device, Tensor};

use super::bands::CellKind;
use super::*;
use crate::test_util::{assert_close, values, Lcg};

/// A recurrent call's arguments in f64 (rounded from f32, so that the kernels see the same
/// numbers): x, kernel, recurrent kernel, bias (if any), initial states (if any).
#[derive(Clone)]
struct Problem {
    kind: CellKind,
    spec: RecurrentSpec,
    batch: usize,
    steps: usize,
    features: usize,
    units: usize,
    /// x, kernel, recurrent kernel, then the bias and the initial states when present.
    args: Vec<Vec<f64>>,
    has_bias: bool,
    states: usize,
}

impl Problem {
    fn new(
        kind: CellKind,
        spec: RecurrentSpec,
        (batch, steps, features, units): (usize, usize, usize, usize),
        has_bias: bool,
        has_initial: bool,
        seed: u64,
    ) -> Self {
        let mut rng = Lcg::new(seed);
        let width = kind.gates() * units;
        let mut draw = |len: usize, scale: f32| -> Vec<f64> {
            rng.vec(len)
                .into_iter()
                .map(|v| (v * scale) as f64)
                .collect()
        };
        let mut args = vec![
            draw(batch * steps * features, 1.0),
            draw(features * width, 0.6),
            draw(units * width, 0.6),
        ];
        if has_bias {
            args.push(draw(kind.bias_dims(units).iter().product(), 0.5));
        }
        let states = if has_initial { kind.states() } else { 0 };
        for _ in 0..states {
            args.push(draw(batch * units, 0.8));
        }
        Problem {
            kind,
            spec,
            batch,
            steps,
            features,
            units,
            args,
            has_bias,
            states,
        }
    }

    fn dims(&self) -> Vec<Vec<usize>> {
        let width = self.kind.gates() * self.units;
        let mut dims = vec![
            vec![self.batch, self.steps, self.features],
            vec![self.features, width],
            vec![self.units, width],
        ];
        if self.has_bias {
            dims.push(self.kind.bias_dims(self.units));
        }
        for _ in 0..self.states {
            dims.push(vec![self.batch, self.units]);
        }
        dims
    }

    fn tensors(&self) -> Vec<Tensor> {
        self.args
            .iter()
            .zip(self.dims())
            .map(|(v, d)| {
                let v: Vec<f32> = v.iter().map(|&x| x as f32).collect();
                Tensor::from_vec(v, d, &Device::Cpu).unwrap()
            })
            .collect()
    }

    /// The bias and initial states among the arguments.
    fn bias(args: &[Vec<f64>], has_bias: bool) -> Option<&Vec<f64>> {
        has_bias.then(|| &args[3])
    }

    /// Keras's equations, naively: every step's output (batch, steps, units) in the order the
    /// steps ran, and the final states.
    fn reference(&self, args: &[Vec<f64>]) -> (Vec<f64>, Vec<Vec<f64>>) {
        let (b_n, t_n, f_n, u) = (self.batch, self.steps, self.features, self.units);
        let (x, kernel, recurrent) = (&args[0], &args[1], &args[2]);
        let width = self.kind.gates() * u;
        let zero_bias = vec![0.0; self.kind.bias_dims(u).iter().product()];
        let bias = Self::bias(args, self.has_bias).unwrap_or(&zero_bias);
        let initial = &args[3 + usize::from(self.has_bias)..];
        let act = |v: f64| apply(self.spec.activation, v);
        let gate = |v: f64| apply(self.spec.recurrent_activation, v);
        let mut sequence = vec![0.0; b_n * t_n * u];
        let mut finals = vec![vec![0.0; b_n * u]; self.kind.states()];
        for b in 0..b_n {
            let state = |i: usize| -> Vec<f64> {
                initial
                    .get(i)
                    .map_or(vec![0.0; u], |s| s[b * u..(b + 1) * u].to_vec())
            };
            let (mut h, mut c) = (state(0), state(1));
            for s in 0..t_n {
                let t = if self.spec.go_backwards {
                    t_n - 1 - s
                } else {
                    s
                };
                let xt = &x[(b * t_n + t) * f_n..][..f_n];
                let input = |j: usize| (0..f_n).map(|f| xt[f] * kernel[f * width + j]).sum::<f64>();
                let hidden = |h: &[f64], j: usize| {
                    (0..u).map(|k| h[k] * recurrent[k * width + j]).sum::<f64>()
                };
                match self.kind {
                    CellKind::Lstm => {
                        let z: Vec<f64> = (0..width)
                            .map(|j| input(j) + hidden(&h, j) + bias[j])
                            .collect();
                        for k in 0..u {
                            let (i, f) = (gate(z[k]), gate(z[u + k]));
                            c[k] = f * c[k] + i * act(z[2 * u + k]);
                        }
                        for k in 0..u {
                            h[k] = gate(z[3 * u + k]) * act(c[k]);
                        }
                    }
                    CellKind::Gru => {
                        let a: Vec<f64> = (0..width).map(|j| input(j) + bias[j]).collect();
                        let r_proj: Vec<f64> = (0..width)
                            .map(|j| hidden(&h, j) + bias[width + j])
                            .collect();
                        let next: Vec<f64> = (0..u)
                            .map(|k| {
                                let z = gate(a[k] + r_proj[k]);
                                let r = gate(a[u + k] + r_proj[u + k]);
                                let candidate = act(a[2 * u + k] + r * r_proj[2 * u + k]);
                                z * h[k] + (1.0 - z) * candidate
                            })
                            .collect();
                        h = next;
                    }
                    CellKind::Simple => {
                        h = (0..u)
                            .map(|k| act(input(k) + bias[k] + hidden(&h, k)))
                            .collect();
                    }
                }
                sequence[(b * t_n + s) * u..][..u].copy_from_slice(&h);
            }
            finals[0][b * u..(b + 1) * u].copy_from_slice(&h);
            if self.kind == CellKind::Lstm {
                finals[1][b * u..(b + 1) * u].copy_from_slice(&c);
            }
        }
        (sequence, finals)
    }

    /// `sum(sequence · r_seq) + Σ sum(state · r_state)` of the reference.
    fn objective(&self, args: &[Vec<f64>], weights: &Weights) -> f64 {
        let (sequence, finals) = self.reference(args);
        let mut total = 0.0;
        if self.spec.return_sequences {
            total += dot(&sequence, &weights.sequence);
        }
        for (state, r) in finals.iter().zip(&weights.states) {
            total += dot(state, r);
        }
        total
    }
}

/// The fixed output gradients of the objective.
struct Weights {
    sequence: Vec<f64>,
    states: Vec<Vec<f64>>,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn apply(activation: FusedActivation, v: f64) -> f64 {
    match activation {
        FusedActivation::Linear => v,
        FusedActivation::Relu => v.max(0.0),
        FusedActivation::Sigmoid => 1.0 / (1.0 + (-v).exp()),
        FusedActivation::Tanh => v.tanh(),
        // The kernels' cases use these four; the reference has nothing else to offer.
        other => panic!("no f64 reference for {other:?}"),
    }
}

fn run(p: &Problem, tensors: &[Tensor]) -> RecurrentRun {
    let weights = weights_of(p, tensors);
    let initial = &tensors[3 + usize::from(p.has_bias)..];
    match p.kind {
        CellKind::Lstm => lstm_sequence(&tensors[0], weights, initial, p.spec),
        CellKind::Gru => gru_sequence(&tensors[0], weights, initial, p.spec),
        CellKind::Simple => simple_rnn_sequence(&tensors[0], weights, initial, p.spec),
    }
    .unwrap()
}

fn weights_of<'a>(p: &Problem, tensors: &'a [Tensor]) -> RecurrentWeights<'a> {
    RecurrentWeights {
        kernel: &tensors[1],
        recurrent_kernel: &tensors[2],
        bias: p.has_bias.then(|| &tensors[3]),
    }
}

/// Checks one problem's forward pass against the reference and every gradient against central
/// finite differences of the reference.
fn check(p: &Problem, seed: u64) {
    let what = format!(
        "{:?} {:?} bias {} initial {} ({}x{}x{} -> {})",
        p.kind, p.spec, p.has_bias, p.states, p.batch, p.steps, p.features, p.units
    );
    let tensors = p.tensors();
    let result = run(p, &tensors);
    let (sequence, finals) = p.reference(&p.args);
    match &result.sequence {
        Some(got) => {
            assert_eq!(got.dims(), &[p.batch, p.steps, p.units]);
            assert_close(&format!("{what} sequence"), &values(got), &sequence, 1e-5);
        }
        None => assert!(!p.spec.return_sequences, "{what}: no sequence"),
    }
    assert_eq!(result.states.len(), finals.len(), "{what}: states");
    for (got, want) in result.states.iter().zip(&finals) {
        assert_close(&format!("{what} final state"), &values(got), want, 1e-5);
    }
    let mut rng = Lcg::new(seed);
    let mut draw = |len| -> Vec<f64> { rng.vec(len).into_iter().map(f64::from).collect() };
    let output_weights = Weights {
        sequence: draw(sequence.len()),
        states: finals.iter().map(|s| draw(s.len())).collect(),
    };
    let as_tensor = |v: &[f64], dims: &[usize]| {
        let v: Vec<f32> = v.iter().map(|&x| x as f32).collect();
        Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
    };
    let sequence_grad = as_tensor(&output_weights.sequence, &[p.batch, p.steps, p.units]);
    let state_grads: Vec<Option<Tensor>> = output_weights
        .states
        .iter()
        .map(|r| Some(as_tensor(r, &[p.batch, p.units])))
        .collect();
    let grads = recurrent_backward(
        &result.tape,
        weights_of(p, &tensors),
        RecurrentOutputGrads {
            sequence: p.spec.return_sequences.then_some(&sequence_grad),
            states: &state_grads,
        },
        RecurrentWanted {
            x: true,
            kernel: true,
            recurrent_kernel: true,
            bias: true,
            initial_state: true,
        },
    )
    .unwrap();
    let mut got: Vec<Tensor> = vec![
        grads.x.expect("x gradient"),
        grads.kernel.expect("kernel gradient"),
        grads.recurrent_kernel.expect("recurrent kernel gradient"),
    ];
    if p.has_bias {
        got.push(grads.bias.expect("bias gradient"));
    } else {
        assert!(grads.bias.is_none());
    }
    assert_eq!(
        grads.initial_state.len(),
        p.states,
        "{what}: initial states"
    );
    got.extend(grads.initial_state);
    let names = [
        "x",
        "kernel",
        "recurrent kernel",
        "bias or h0",
        "h0 or c0",
        "c0",
    ];
    for (index, (grad, name)) in got.iter().zip(names).enumerate() {
        assert_eq!(grad.dims(), p.dims()[index].as_slice(), "{what} d{name}");
        let mut args = p.args.clone();
        let eps = 1e-6;
        let numeric: Vec<f64> = (0..args[index].len())
            .map(|at| {
                let original = args[index][at];
                args[index][at] = original + eps;
                let up = p.objective(&args, &output_weights);
                args[index][at] = original - eps;
                let down = p.objective(&args, &output_weights);
                args[index][at] = original;
                (up - down) / (2.0 * eps)
            })
            .collect();
        assert_close(&format!("{what} d{name}"), &values(grad), &numeric, 1e-4);
    }
}

fn spec(
    activation: FusedActivation,
    recurrent_activation: FusedActivation,
    go_backwards: bool,
    return_sequences: bool,
) -> RecurrentSpec {
    RecurrentSpec {
        activation,
        recurrent_activation,
        go_backwards,
        return_sequences,
    }
}

#[test]
fn lstm_gru_and_simple_rnn_match_the_reference_forward_and_backward() {
    use FusedActivation::{Linear, Relu, Sigmoid, Tanh};
    // (activation, recurrent activation, go_backwards, return_sequences, bias, initial state).
    let options = [
        (Tanh, Sigmoid, false, false, true, false),
        (Tanh, Sigmoid, false, true, true, false),
        (Tanh, Sigmoid, true, true, true, true),
        (Tanh, Sigmoid, true, false, false, true),
        (Relu, Linear, false, true, true, true),
        (Sigmoid, Tanh, true, false, true, false),
    ];
    // 19 samples make two uneven bands where two threads run; 3 make one.
    for (index, &(a, s, backwards, sequences, bias, initial)) in options.iter().enumerate() {
        for kind in [CellKind::Lstm, CellKind::Gru, CellKind::Simple] {
            for sizes in [(3, 4, 3, 5), (19, 3, 2, 4)] {
                let seed = index as u64 * 10 + sizes.0 as u64;
                let p = Problem::new(
                    kind,
                    spec(a, s, backwards, sequences),
                    sizes,
                    bias,
                    initial,
                    seed,
                );
                check(&p, seed + 1);
            }
        }
    }
}

#[test]
fn gradients_are_computed_only_where_wanted_and_missing_output_gradients_count_as_zero() {
    let p = Problem::new(
        CellKind::Lstm,
        spec(
            FusedActivation::Tanh,
            FusedActivation::Sigmoid,
            false,
            false,
        ),
        (4, 3, 2, 3),
        true,
        false,
        5,
    );
    let tensors = p.tensors();
    let result = run(&p, &tensors);
    let state = Tensor::ones((4, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
    let grads = recurrent_backward(
        &result.tape,
        weights_of(&p, &tensors),
        RecurrentOutputGrads {
            sequence: None,
            states: &[Some(state)],
        },
        RecurrentWanted {
            kernel: true,
            initial_state: true,
            ..RecurrentWanted::default()
        },
    )
    .unwrap();
    assert!(grads.x.is_none() && grads.recurrent_kernel.is_none() && grads.bias.is_none());
    // No initial state was given: none has a gradient.
    assert!(grads.initial_state.is_empty());
    assert_eq!(grads.kernel.unwrap().dims(), &[2, 12]);
}

#[test]
fn bad_arguments_are_errors() {
    let zeros =
        |dims: &[usize]| Tensor::zeros(dims, candle_core::DType::F32, &Device::Cpu).unwrap();
    let (x, kernel, recurrent) = (zeros(&[2, 3, 4]), zeros(&[4, 12]), zeros(&[3, 12]));
    let weights = RecurrentWeights {
        kernel: &kernel,
        recurrent_kernel: &recurrent,
        bias: None,
    };
    let spec = spec(
        FusedActivation::Tanh,
        FusedActivation::Sigmoid,
        false,
        false,
    );
    assert!(lstm_sequence(&x, weights, &[], spec).is_ok());
    // A GRU's kernels have 3 gates, not 4.
    let message = gru_sequence(&x, weights, &[], spec)
        .unwrap_err()
        .to_string();
    assert!(message.contains("recurrent kernel"), "{message}");
    let bias = zeros(&[12]);
    let with_bias = RecurrentWeights {
        bias: Some(&bias),
        ..weights
    };
    assert!(lstm_sequence(&x, with_bias, &[], spec).is_ok());
    let gru_kernel = zeros(&[4, 9]);
    let gru_recurrent = zeros(&[3, 9]);
    let gru_bias = zeros(&[9]);
    let gru_weights = RecurrentWeights {
        kernel: &gru_kernel,
        recurrent_kernel: &gru_recurrent,
        bias: Some(&gru_bias),
    };
    assert!(gru_sequence(&x, gru_weights, &[], spec).is_err());
    assert!(lstm_sequence(&zeros(&[2, 0, 4]), weights, &[], spec).is_err());
    assert!(lstm_sequence(&zeros(&[2, 3, 5]), weights, &[], spec).is_err());
    assert!(lstm_sequence(&x, weights, &[zeros(&[2, 3])], spec).is_err());
    assert!(lstm_sequence(&x, weights, &[zeros(&[2, 3]), zeros(&[1, 3])], spec).is_err());
    let empty = lstm_sequence(&zeros(&[0, 3, 4]), weights, &[], spec).unwrap();
    assert_eq!(empty.states[0].dims(), &[0, 3]);
    // A simple RNN's kernels have units columns, and its bias is (units).
    let (simple_kernel, simple_recurrent) = (zeros(&[4, 3]), zeros(&[3, 3]));
    let simple_weights = RecurrentWeights {
        kernel: &simple_kernel,
        recurrent_kernel: &simple_recurrent,
        bias: Some(&gru_bias),
    };
    let message = simple_rnn_sequence(&x, simple_weights, &[], spec)
        .unwrap_err()
        .to_string();
    assert!(message.contains("bias"), "{message}");
    assert!(simple_rnn_sequence(&x, weights, &[], spec).is_err());
    let simple_bias = zeros(&[3]);
    let simple_weights = RecurrentWeights {
        bias: Some(&simple_bias),
        ..simple_weights
    };
    let run = simple_rnn_sequence(&x, simple_weights, &[zeros(&[2, 3])], spec).unwrap();
    assert_eq!(run.states.len(), 1);
}

/// The median of `runs` timings of `f` after one untimed run, in milliseconds.
fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = std::time::Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}

/// The kernels alone on MNIST's rows as sequences, LSTM(128), GRU(128) and SimpleRNN(128) at
/// batch 128: run with `cargo test -p rkeras-ops --release -- --ignored --nocapture recurrent_kernel_timing`.
#[test]
#[ignore]
fn recurrent_kernel_timing() {
    let sizes = (128, 28, 28, 128);
    for kind in [CellKind::Lstm, CellKind::Gru, CellKind::Simple] {
        let spec = spec(
            FusedActivation::Tanh,
            FusedActivation::Sigmoid,
            false,
            false,
        );
        let p = Problem::new(kind, spec, sizes, true, false, 1);
        let tensors = p.tensors();
        let forward = median_ms(9, || drop(run(&p, &tensors)));
        let result = run(&p, &tensors);
        let grad = Tensor::ones((sizes.0, sizes.3), candle_core::DType::F32, &Device::Cpu).unwrap();
        let backward = median_ms(9, || {
            let grads = recurrent_backward(
                &result.tape,
                weights_of(&p, &tensors),
                RecurrentOutputGrads {
                    sequence: None,
                    states: &[Some(grad.clone())],
                },
                RecurrentWanted {
                    x: false,
                    kernel: true,
                    recurrent_kernel: true,
                    bias: true,
                    initial_state: false,
                },
            )
            .unwrap();
            drop(grads);
        });
        println!(
            "{kind:?} {sizes:?}, {} threads: forward {forward:.2} ms, backward {backward:.2} ms",
            crate::worker_threads()
        );
    }
}
