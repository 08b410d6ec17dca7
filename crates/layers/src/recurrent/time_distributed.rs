//! `TimeDistributed`: a layer applied to every time step of its input
//! (`keras/src/layers/rnn/time_distributed.py`), the same layer and weights at each step.
//!
//! Keras calls the layer once per step; here the time axis is folded into the batch, the layer
//! called once on (batch·steps, ...), and the output unfolded: the same values for every layer
//! whose samples do not mix. A layer with batch statistics (BatchNormalization in training)
//! sees every step's samples at once, where Keras's sees one step's at a time. Keras calls the
//! wrapped layer's `call` directly, bypassing its activity regularizer; here that penalty
//! (computed by the layer's own call) is kept. The config nests the layer's
//! (`{"layer": {"class_name": "Dense", "config": {...}}}`).

use std::sync::Arc;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::wrapper::{call_wrapped, wrapper_builder, wrapper_methods, Wrappable};
use crate::builder::{LayerBuilder, LayerConfig};
use crate::layer::{config_with_name, single_input};
use crate::record::{differentiate, CallRecord, WeightGrads};
use crate::registry::NestedLayer;
use crate::{CallContext, Error, Layer, LayerBase, Result, SymbolicShape};

/// `TimeDistributed`'s options: the wrapped layer's nested config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeDistributedConfig {
    /// The layer applied at every step.
    pub layer: NestedLayer,
}

/// A layer applied to every time step: on (None, 10, 8),
/// `TimeDistributed::new(Dense::new(4))(x)` gives (None, 10, 4), one `Dense` for all steps.
pub type TimeDistributed = LayerBuilder<TimeDistributedConfig>;

impl TimeDistributed {
    /// Wraps `layer`: the layer its builder makes (shared with the builder's other calls, as
    /// Keras shares the wrapped instance), or a layer already made.
    pub fn new(layer: impl Wrappable) -> Self {
        wrapper_builder(layer, |layer| TimeDistributedConfig { layer })
    }
}

impl LayerConfig for TimeDistributedConfig {
    const CLASS_NAME: &'static str = "TimeDistributed";
    const NAME_PREFIX: &'static str = "time_distributed";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        Ok(Arc::new(TimeDistributedLayer {
            layer: self.layer.make(&name)?,
            base: LayerBase::new(name, trainable),
        }))
    }
}

/// The layer a [`TimeDistributed`] builder makes.
pub struct TimeDistributedLayer {
    base: LayerBase,
    layer: Arc<dyn Layer>,
}

/// What a recorded call keeps: the wrapped layer's call on the folded input.
struct Tape(CallRecord);

impl TimeDistributedLayer {
    /// The wrapped layer.
    pub fn layer(&self) -> &Arc<dyn Layer> {
        &self.layer
    }

    /// `x` (batch, steps, ...) as (batch·steps, ...).
    fn fold(&self, x: &Tensor) -> Result<Tensor> {
        match x.dims() {
            [batch, steps, rest @ ..] if !rest.is_empty() => {
                let dims: Vec<usize> = std::iter::once(batch * steps)
                    .chain(rest.iter().copied())
                    .collect();
                Ok(x.reshape(dims)?)
            }
            dims => Err(Error::shape(
                self.name(),
                "(batch, timesteps, ...) of rank 3 or more",
                format!("{dims:?}"),
            )),
        }
    }

    /// The wrapped layer's `y` (batch·steps, ...) as (batch, steps, ...).
    fn unfold(y: &Tensor, batch: usize, steps: usize) -> Result<Tensor> {
        let dims: Vec<usize> = [batch, steps]
            .into_iter()
            .chain(y.dims().iter().skip(1).copied())
            .collect();
        Ok(y.reshape(dims)?)
    }

    /// The wrapped layer's only output.
    fn only_output(&self, outputs: Vec<Tensor>) -> Result<Tensor> {
        single_input(self.name(), &outputs)
            .cloned()
            .map_err(|_| Error::config(self.name(), "wraps a layer with one output"))
    }
}

impl Layer for TimeDistributedLayer {
    wrapper_methods!(layer);

    fn class_name(&self) -> &'static str {
        TimeDistributedConfig::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        let input = single_input(self.name(), inputs)?;
        let dims = input.dims();
        if dims.len() < 3 {
            return Err(Error::shape(
                self.name(),
                "(None, timesteps, ...) of rank 3 or more",
                input,
            ));
        }
        let child: Vec<Option<usize>> = std::iter::once(dims[0])
            .chain(dims[2..].iter().copied())
            .collect();
        let outputs = self.layer.build(&[SymbolicShape(child)])?;
        let output = match &outputs[..] {
            [only] if only.rank() > 0 => only,
            _ => {
                return Err(Error::config(
                    self.name(),
                    "wraps a layer with one output, batch first",
                ))
            }
        };
        let unfolded = std::iter::once(output.dims()[0])
            .chain(std::iter::once(dims[1]))
            .chain(output.dims()[1..].iter().copied())
            .collect();
        Ok(vec![SymbolicShape(unfolded)])
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let x = single_input(self.name(), inputs)?;
        let folded = self.fold(x)?;
        let (outputs, record) = call_wrapped(self.layer.as_ref(), &[folded], ctx)?;
        let y = self.only_output(outputs)?;
        if let Some(record) = record {
            ctx.save(Tape(record));
        }
        Ok(vec![Self::unfold(&y, x.dim(0)?, x.dim(1)?)?])
    }

    fn backward(
        &self,
        record: CallRecord,
        grad_outputs: &[Tensor],
        needs_input_grad: &[bool],
        weight_grads: &mut WeightGrads,
    ) -> Result<Vec<Option<Tensor>>> {
        let (x, _, dy) = record.single(self.name(), grad_outputs)?;
        let x_dims = x.dims().to_vec();
        let dy = self.fold(dy)?;
        let Tape(inner) = *record
            .state
            .and_then(|s| s.downcast::<Tape>().ok())
            .ok_or_else(|| {
                Error::config(self.name(), "backward without the state its call saved")
            })?;
        let grads = differentiate(
            self.layer.as_ref(),
            inner,
            &[dy],
            needs_input_grad,
            weight_grads,
        )?;
        let dx = grads.into_iter().next().flatten();
        Ok(vec![dx.map(|g| g.reshape(x_dims)).transpose()?])
    }

    fn config(&self) -> Value {
        let options = TimeDistributedConfig {
            layer: NestedLayer::of(&self.layer),
        };
        config_with_name(&options, &self.base)
    }
}

/// The harness cases: a Dense, a Conv2D, a Flatten and a SimpleRNN at every step, against
/// hand-computed values.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use super::simple_rnn::SimpleRNN;
    use crate::convolutional::conv2d::Conv2D;
    use crate::core::dense::Dense;
    use crate::regularizers::Regularizer;
    use crate::reshaping::flatten::Flatten;
    use crate::testing::LayerCase;
    use candle_core::Device;
    crate::session::set_random_seed(41);
    let wrapped = |layer: TimeDistributed| layer.layer().expect("layer");
    let tensor = |values: &[f32], dims: &[usize]| {
        Tensor::from_slice(values, dims, &Device::Cpu).expect("input")
    };
    vec![
        // Kernel [[0.5, -1], [0.25, 2]], bias [0.1, -0.2], one sample of two steps:
        // [1, 2] → [0.5 + 0.5 + 0.1, -1 + 4 - 0.2] = [1.1, 2.8],
        // [3, -1] → [1.5 - 0.25 + 0.1, -3 - 2 - 0.2] = [1.35, -5.2]. Keras: 2·2 + 2.
        LayerCase::new(wrapped(TimeDistributed::new(Dense::new(2))), &[&[3, 2]])
            .output_shapes(&["(None, 3, 2)"])
            .weights(2, 0, 2 * 2 + 2)
            .weight_values(vec![vec![0.5, -1.0, 0.25, 2.0], vec![0.1, -0.2]])
            .forward(
                vec![tensor(&[1.0, 2.0, 3.0, -1.0], &[1, 2, 2])],
                vec![vec![1.1, 2.8, 1.35, -5.2]],
            ),
        LayerCase::new(
            wrapped(TimeDistributed::new(
                Dense::new(2)
                    .activation("tanh")
                    .kernel_regularizer(Regularizer::l2(0.1))
                    .activity_regularizer(Regularizer::l1(0.1)),
            )),
            &[&[3, 4]],
        )
        .output_shapes(&["(None, 3, 2)"])
        .weights(2, 0, 4 * 2 + 2),
        // A 2×2 kernel [[1, 0], [0, -1]] and bias 0.5 on each step's 2×2 image, one output:
        // [[1, 2], [3, 4]] → 1 - 4 + 0.5 = -2.5; [[-1, 0.5], [2, 1]] → -1 - 1 + 0.5 = -1.5.
        // Keras: 2·2·1·1 + 1.
        LayerCase::new(
            wrapped(TimeDistributed::new(Conv2D::new(1, 2))),
            &[&[2, 2, 2, 1]],
        )
        .output_shapes(&["(None, 2, 1, 1, 1)"])
        .weights(2, 0, 2 * 2 + 1)
        .weight_values(vec![vec![1.0, 0.0, 0.0, -1.0], vec![0.5]])
        .forward(
            vec![tensor(
                &[1.0, 2.0, 3.0, 4.0, -1.0, 0.5, 2.0, 1.0],
                &[1, 2, 2, 2, 1],
            )],
            vec![vec![-2.5, -1.5]],
        ),
        // No weights: each step flattened, the values in the same order.
        LayerCase::new(wrapped(TimeDistributed::new(Flatten::new())), &[&[2, 3, 2]])
            .output_shapes(&["(None, 2, 6)"])
            .forward(
                vec![tensor(
                    &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0],
                    &[1, 2, 3, 2],
                )],
                vec![(0..12).map(f64::from).collect()],
            ),
        // A linear SimpleRNN of 1 unit (kernel 0.5, recurrent 0.2, bias 0.1) over each of two
        // sequences of two steps: [1, 2] → 0.6, then 1 + 0.1 + 0.12 = 1.22;
        // [-1, 0] → -0.4, then 0.1 - 0.08 = 0.02. Keras: 1·(1 + 1 + 1).
        LayerCase::new(
            wrapped(TimeDistributed::new(SimpleRNN::new(1).activation("linear"))),
            &[&[2, 2, 1]],
        )
        .output_shapes(&["(None, 2, 1)"])
        .weights(3, 0, 3)
        .weight_values(vec![vec![0.5], vec![0.2], vec![0.1]])
        .forward(
            vec![tensor(&[1.0, 2.0, -1.0, 0.0], &[1, 2, 2, 1])],
            vec![vec![1.22, 0.02]],
        ),
    ]
}
