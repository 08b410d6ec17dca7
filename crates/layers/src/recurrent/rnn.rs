//! The recurrent layer: a cell run over every step of a sequence (`keras/src/layers/rnn/rnn.py`),
//! on the CPU by `rkeras-ops`' sequence kernels with a hand-written backward pass
//! (backpropagation through time), elsewhere by candle ops, one step at a time, which candle's
//! autograd differentiates.

use std::sync::OnceLock;

use candle_core::{DType, Device, Tensor, Var};
use rkeras_ops::{RecurrentOutputGrads, RecurrentSpec, RecurrentTape, RecurrentWanted};

use super::options::{Cell, RecurrentConfig};
use crate::kernel_bias::{activity_penalty, with_activity_penalty_gradient};
use crate::layer::config_with_name;
use crate::layer_base_methods;
use crate::limits::claim_weight;
use crate::record::{CallRecord, WeightGrads};
use crate::session::default_device;
use crate::{CallContext, Error, Layer, LayerBase, Result, SymbolicShape, Weight};

/// A recurrent layer's weights, named and shaped as Keras's cell's.
struct CellWeights {
    input_dim: usize,
    kernel: Var,
    recurrent_kernel: Var,
    bias: Option<Var>,
}

/// The layer an `LSTM`, `GRU` or `SimpleRNN` builder makes (`C` is the cell).
pub struct RecurrentLayer<C: Cell> {
    base: LayerBase,
    config: RecurrentConfig<C>,
    weights: OnceLock<CellWeights>,
}

impl<C: Cell> RecurrentLayer<C> {
    /// A layer from its options (weights are made on first build).
    pub fn new(name: String, trainable: bool, config: RecurrentConfig<C>) -> Result<Self> {
        config.check(&name)?;
        Ok(RecurrentLayer {
            base: LayerBase::new(name, trainable),
            config,
            weights: OnceLock::new(),
        })
    }

    /// The options.
    pub fn recurrent_config(&self) -> &RecurrentConfig<C> {
        &self.config
    }

    fn built(&self) -> Result<&CellWeights> {
        self.weights.get().ok_or_else(|| {
            Error::config(self.name(), "called before it was built on an input shape")
        })
    }

    fn make_weights(&self, input_dim: usize) -> Result<CellWeights> {
        let (c, name) = (&self.config, self.name());
        let (units, width) = (c.units, C::GATES * c.units);
        let bias_shape = C::bias_shape(units);
        claim_weight(name, &[input_dim, width])?;
        claim_weight(name, &[units, width])?;
        if c.use_bias {
            claim_weight(name, &bias_shape)?;
        }
        let device = default_device();
        let kernel = c
            .kernel_initializer
            .initialize(&[input_dim, width], &device)?;
        let recurrent = c
            .recurrent_initializer
            .initialize(&[units, width], &device)?;
        let bias = c
            .use_bias
            .then(|| c.cell.initial_bias(&c.bias_initializer, units, &device))
            .transpose()?
            .map(|b| Var::from_tensor(&b))
            .transpose()?;
        Ok(CellWeights {
            input_dim,
            kernel: Var::from_tensor(&kernel)?,
            recurrent_kernel: Var::from_tensor(&recurrent)?,
            bias,
        })
    }

    /// The sequences and the initial states (none, or one per state) of a call, checked.
    fn split_inputs<'a>(&self, inputs: &'a [Tensor]) -> Result<(&'a Tensor, &'a [Tensor])> {
        let (x, states) = self.split(inputs)?;
        let input_dim = self.built()?.input_dim;
        match x.dims() {
            &[_, steps, features] if steps > 0 && features == input_dim => {}
            dims => {
                return Err(Error::shape(
                    self.name(),
                    format!("(batch, timesteps > 0, {input_dim})"),
                    format!("{dims:?}"),
                ))
            }
        }
        let expected = [x.dims()[0], self.config.units];
        if let Some(state) = states.iter().find(|s| s.dims() != expected) {
            return Err(Error::shape(
                self.name(),
                format!("initial states of shape {expected:?}"),
                format!("{:?}", state.dims()),
            ));
        }
        Ok((x, states))
    }

    /// The first input and the rest, which must be none or one per state.
    fn split<'a, T>(&self, inputs: &'a [T]) -> Result<(&'a T, &'a [T])> {
        match inputs.split_first() {
            Some((x, states)) if states.is_empty() || states.len() == C::STATES.len() => {
                Ok((x, states))
            }
            _ => Err(Error::config(
                self.name(),
                format!(
                    "expects the sequences, optionally followed by the initial states ({}), got {} input(s)",
                    C::STATES.join(", "),
                    inputs.len()
                ),
            )),
        }
    }

    /// The kernels' options, when they can run this layer on `device`.
    fn kernel_spec(&self, device: &Device) -> Option<RecurrentSpec> {
        let (activation, recurrent_activation) = self.config.fused_activations()?;
        rkeras_ops::kernels_on(device).then_some(RecurrentSpec {
            activation,
            recurrent_activation,
            go_backwards: self.config.go_backwards,
            return_sequences: self.config.return_sequences,
        })
    }

    /// The call's outputs from the sequence (if returned) and the final states.
    fn outputs(&self, sequence: Option<Tensor>, states: Vec<Tensor>) -> Vec<Tensor> {
        let output = sequence.unwrap_or_else(|| states[0].clone());
        let mut outputs = vec![output];
        if self.config.return_state {
            outputs.extend(states);
        }
        outputs
    }

    /// The layer in candle ops, one step at a time (what other devices run, differentiable by
    /// candle's autograd).
    fn composed(
        &self,
        x: &Tensor,
        initial: &[Tensor],
        kernel: &Tensor,
        recurrent: &Tensor,
        bias: Option<&Tensor>,
    ) -> Result<Vec<Tensor>> {
        let c = &self.config;
        let (batch, steps, features) = x.dims3()?;
        let projected = x
            .reshape((batch * steps, features))?
            .matmul(kernel)?
            .reshape((batch, steps, C::GATES * c.units))?;
        let mut states = if initial.is_empty() {
            let zeros = Tensor::zeros((batch, c.units), x.dtype(), x.device())?;
            vec![zeros; C::STATES.len()]
        } else {
            initial.to_vec()
        };
        let mut sequence = Vec::new();
        for step in 0..steps {
            let at = if c.go_backwards {
                steps - 1 - step
            } else {
                step
            };
            let input = projected.narrow(1, at, 1)?.squeeze(1)?;
            states = C::step(c, &input, &states, recurrent, bias)?;
            if c.return_sequences {
                sequence.push(states[0].clone());
            }
        }
        let sequence = c
            .return_sequences
            .then(|| Tensor::stack(&sequence, 1))
            .transpose()?;
        Ok(self.outputs(sequence, states))
    }

    /// The gradients of the sequence and of the final states, from those of the outputs
    /// (each with its activity penalty's gradient added).
    fn output_grads(
        &self,
        record: &CallRecord,
        grad_outputs: &[Tensor],
    ) -> Result<(Option<Tensor>, Vec<Option<Tensor>>)> {
        let count = 1 + if self.config.return_state {
            C::STATES.len()
        } else {
            0
        };
        if grad_outputs.len() != count || record.outputs.len() != count {
            return Err(Error::config(
                self.name(),
                format!(
                    "backward expects {count} output(s) and gradient(s), got {} and {}",
                    record.outputs.len(),
                    grad_outputs.len()
                ),
            ));
        }
        let regularizer = self.config.activity_regularizer.as_ref();
        let mut grads = grad_outputs
            .iter()
            .zip(&record.outputs)
            .map(|(grad, y)| with_activity_penalty_gradient(regularizer, y, grad))
            .collect::<Result<Vec<_>>>()?
            .into_iter();
        let mut states = vec![None; C::STATES.len()];
        let output = grads.next();
        let sequence = if self.config.return_sequences {
            output
        } else {
            // The last output is the final `h`.
            states[0] = output;
            None
        };
        for (slot, grad) in states.iter_mut().zip(grads) {
            *slot = Some(match slot.take() {
                Some(sum) => (sum + grad)?,
                None => grad,
            });
        }
        Ok((sequence, states))
    }
}

impl<C: Cell> Layer for RecurrentLayer<C> {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        C::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        let (sequences, states) = self.split(inputs)?;
        let units = self.config.units;
        let expected_dim = self.weights.get().map(|w| w.input_dim);
        let input_dim = match (sequences.rank(), sequences.last()) {
            (3, Some(dim)) if expected_dim.is_none_or(|e| e == dim) => dim,
            _ => {
                let features = expected_dim.map_or("features".to_string(), |d| d.to_string());
                return Err(Error::shape(
                    self.name(),
                    format!("(None, timesteps, {features}) with known features"),
                    sequences,
                ));
            }
        };
        let batch = sequences.dims()[0];
        let state_shape = SymbolicShape(vec![batch, Some(units)]);
        for state in states {
            let fits = state.rank() == 2 && state.last() == Some(units);
            if !fits {
                return Err(Error::shape(
                    self.name(),
                    format!("initial states of shape {state_shape}"),
                    state,
                ));
            }
        }
        if self.weights.get().is_none() {
            let weights = self.make_weights(input_dim)?;
            // Another thread may have built it meanwhile; its weights win, and fit the same shape.
            let _ = self.weights.set(weights);
        }
        let output = if self.config.return_sequences {
            SymbolicShape(vec![batch, sequences.dims()[1], Some(units)])
        } else {
            state_shape.clone()
        };
        let mut outputs = vec![output];
        if self.config.return_state {
            outputs.extend(std::iter::repeat_n(state_shape, C::STATES.len()));
        }
        Ok(outputs)
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let (x, initial) = self.split_inputs(inputs)?;
        let w = self.built()?;
        let kernel = ctx.weight(&w.kernel);
        let recurrent = ctx.weight(&w.recurrent_kernel);
        let bias = w.bias.as_ref().map(|b| ctx.weight(b));
        let mut all: Vec<&Tensor> = vec![x, &kernel, &recurrent];
        all.extend(bias.as_ref().into_iter().chain(initial));
        // The kernels record nothing for candle's autograd: a call it must see composes ops.
        let plain = all.iter().all(|t| !t.track_op() && t.dtype() == DType::F32);
        let outputs = match self.kernel_spec(x.device()) {
            Some(spec) if plain => {
                let weights = rkeras_ops::RecurrentWeights {
                    kernel: &kernel,
                    recurrent_kernel: &recurrent,
                    bias: bias.as_ref(),
                };
                let run = C::run_kernel(x, weights, initial, spec)?;
                ctx.save(run.tape);
                self.outputs(run.sequence, run.states)
            }
            _ => self.composed(x, initial, &kernel, &recurrent, bias.as_ref())?,
        };
        for y in &outputs {
            if let Some(penalty) = activity_penalty(self.config.activity_regularizer.as_ref(), y)? {
                ctx.add_loss(penalty);
            }
        }
        Ok(outputs)
    }

    fn has_backward(&self, device: &Device) -> bool {
        self.kernel_spec(device).is_some()
    }

    fn backward(
        &self,
        record: CallRecord,
        grad_outputs: &[Tensor],
        needs_input_grad: &[bool],
        weight_grads: &mut WeightGrads,
    ) -> Result<Vec<Option<Tensor>>> {
        let tape = record.saved::<RecurrentTape>(self.name())?;
        let w = self.built()?;
        let (sequence, states) = self.output_grads(&record, grad_outputs)?;
        let need = |i: usize| needs_input_grad.get(i).copied().unwrap_or(false);
        let wanted = RecurrentWanted {
            x: need(0),
            kernel: weight_grads.wants(&w.kernel),
            recurrent_kernel: weight_grads.wants(&w.recurrent_kernel),
            bias: w.bias.as_ref().is_some_and(|b| weight_grads.wants(b)),
            initial_state: (1..record.inputs.len()).any(need),
        };
        let mut input_grads = vec![None; record.inputs.len()];
        if wanted == RecurrentWanted::default() {
            return Ok(input_grads);
        }
        let weights = rkeras_ops::RecurrentWeights {
            kernel: w.kernel.as_tensor(),
            recurrent_kernel: w.recurrent_kernel.as_tensor(),
            bias: w.bias.as_ref().map(Var::as_tensor),
        };
        let grads = rkeras_ops::recurrent_backward(
            tape,
            weights,
            RecurrentOutputGrads {
                sequence: sequence.as_ref(),
                states: &states,
            },
            wanted,
        )?;
        for (var, grad) in [
            (Some(&w.kernel), grads.kernel),
            (Some(&w.recurrent_kernel), grads.recurrent_kernel),
            (w.bias.as_ref(), grads.bias),
        ] {
            if let (Some(var), Some(grad)) = (var, grad) {
                weight_grads.add(var, grad)?;
            }
        }
        input_grads[0] = grads.x;
        for (i, grad) in grads.initial_state.into_iter().enumerate() {
            if need(i + 1) {
                input_grads[i + 1] = Some(grad);
            }
        }
        Ok(input_grads)
    }

    fn weights(&self) -> Vec<Weight> {
        let Some(w) = self.weights.get() else {
            return Vec::new();
        };
        let mut all = vec![
            self.base.weight("kernel", &w.kernel),
            self.base.weight("recurrent_kernel", &w.recurrent_kernel),
        ];
        if let Some(bias) = &w.bias {
            all.push(self.base.weight("bias", bias));
        }
        all
    }

    fn config(&self) -> serde_json::Value {
        config_with_name(&self.config, &self.base)
    }

    fn regularization_losses(&self) -> Result<Vec<Tensor>> {
        let (c, Some(w)) = (&self.config, self.weights.get()) else {
            return Ok(Vec::new());
        };
        let pairs = [
            (c.kernel_regularizer.as_ref(), Some(&w.kernel)),
            (c.recurrent_regularizer.as_ref(), Some(&w.recurrent_kernel)),
            (c.bias_regularizer.as_ref(), w.bias.as_ref()),
        ];
        pairs
            .into_iter()
            .filter_map(|(r, var)| Some((r?, var?)))
            .map(|(r, var)| r.penalty(var.as_tensor()))
            .collect()
    }
}
