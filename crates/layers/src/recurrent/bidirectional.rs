//! `Bidirectional`: a recurrent layer run over the sequences both ways, its two outputs merged
//! (`keras/src/layers/rnn/bidirectional.py`).
//!
//! As in Keras, the wrapped layer is made again from its config twice: `forward_<name>`, and
//! `backward_<name>` with `go_backwards=True` (unless a `backward_layer` is given); the
//! wrapped layer's own weights are not used. When the layers return sequences, the backward
//! one's is reversed back into the inputs' time order before the merge. A call takes the
//! sequences, optionally followed by the forward layer's initial states then the backward
//! layer's, and returns the merged output (both outputs when `merge_mode` is `None`), then
//! with `return_state` the forward layer's final states and the backward layer's. The config
//! nests both layers' (`{"layer": {...}, "backward_layer": {...}, "merge_mode": "concat"}`).

use std::str::FromStr;
use std::sync::Arc;

use candle_core::{Tensor, D};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::wrapper::{call_wrapped, wrapper_builder, wrapper_methods, Wrappable};
use crate::builder::{LayerBuilder, LayerConfig};
use crate::layer::config_with_name;
use crate::record::{differentiate, CallRecord, WeightGrads};
use crate::registry::NestedLayer;
use crate::{CallContext, Error, Layer, LayerBase, Result, SymbolicShape};

/// How the forward and backward outputs are combined (Keras's `merge_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MergeMode {
    /// Joined along the last axis (Keras's default): twice the units.
    Concat,
    /// Added.
    Sum,
    /// Multiplied elementwise.
    Mul,
    /// Averaged.
    Ave,
}

impl FromStr for MergeMode {
    type Err = String;

    fn from_str(name: &str) -> std::result::Result<Self, String> {
        serde_json::from_value(Value::from(name)).map_err(|_| {
            format!("unknown merge_mode '{name}': expected concat, sum, mul, ave or None")
        })
    }
}

/// A merge mode by value, by Keras name (`"sum"`), or `None` (both outputs returned).
pub struct MergeModeArg(std::result::Result<Option<MergeMode>, String>);

impl From<MergeMode> for MergeModeArg {
    fn from(mode: MergeMode) -> Self {
        MergeModeArg(Ok(Some(mode)))
    }
}

impl From<Option<MergeMode>> for MergeModeArg {
    fn from(mode: Option<MergeMode>) -> Self {
        MergeModeArg(Ok(mode))
    }
}

impl From<&str> for MergeModeArg {
    fn from(name: &str) -> Self {
        MergeModeArg(name.parse().map(Some))
    }
}

/// Keras's default merge mode.
fn concat() -> Option<MergeMode> {
    Some(MergeMode::Concat)
}

/// `Bidirectional`'s options: the wrapped layer's nested config, the merge mode, and the
/// backward layer's config when given (Keras saves it always).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BidirectionalConfig {
    /// The wrapped recurrent layer (saved: the forward layer).
    pub layer: NestedLayer,
    /// How the outputs are combined; `None` returns both.
    #[serde(default = "concat")]
    pub merge_mode: Option<MergeMode>,
    /// The layer that reads the sequences backwards, instead of a copy of `layer`.
    #[serde(default)]
    pub backward_layer: Option<NestedLayer>,
}

/// A bidirectional wrapper of a recurrent layer: `Bidirectional::new(LSTM::new(64))(x)` gives
/// (None, 128); `.merge_mode("sum")` adds the two outputs instead.
pub type Bidirectional = LayerBuilder<BidirectionalConfig>;

impl Bidirectional {
    /// Wraps the recurrent layer `layer` (`LSTM`, `GRU`, `SimpleRNN`), merging by concatenation.
    pub fn new(layer: impl Wrappable) -> Self {
        wrapper_builder(layer, |layer| BidirectionalConfig {
            layer,
            merge_mode: concat(),
            backward_layer: None,
        })
    }

    /// How the outputs are combined: `"concat"` (default), `"sum"`, `"mul"`, `"ave"`, or
    /// `None` (both returned).
    pub fn merge_mode(self, mode: impl Into<MergeModeArg>) -> Self {
        let arg = mode.into();
        self.with_checked(|c| {
            c.merge_mode = arg.0?;
            Ok(())
        })
    }

    /// The layer that reads the sequences backwards (`go_backwards=True`, and the wrapped
    /// layer's `return_sequences`, `return_state` and `stateful`), used as it is.
    pub fn backward_layer(self, layer: impl Wrappable) -> Self {
        let nested = layer.nested();
        self.with_checked(|c| {
            c.backward_layer = Some(nested.map_err(|e| format!("the backward layer: {e}"))?);
            Ok(())
        })
    }
}

impl LayerConfig for BidirectionalConfig {
    const CLASS_NAME: &'static str = "Bidirectional";
    const NAME_PREFIX: &'static str = "bidirectional";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        Ok(Arc::new(BidirectionalLayer::new(name, trainable, self)?))
    }
}

/// The layer a [`Bidirectional`] builder makes.
pub struct BidirectionalLayer {
    base: LayerBase,
    merge_mode: Option<MergeMode>,
    forward: Arc<dyn Layer>,
    backward: Arc<dyn Layer>,
    return_sequences: bool,
}

/// What a recorded call keeps: each direction's call.
struct Tape {
    forward: CallRecord,
    backward: CallRecord,
}

/// The boolean option `key` of the wrapped layer `layer`, which a recurrent layer has.
fn flag(owner: &str, layer: &NestedLayer, key: &str) -> Result<bool> {
    layer
        .config
        .get(key)
        .and_then(Value::as_bool)
        .ok_or_else(|| {
            Error::config(
                owner,
                format!(
                    "wraps a recurrent layer (LSTM, GRU, SimpleRNN): {} has no boolean '{key}'",
                    layer.class_name
                ),
            )
        })
}

/// A copy of `layer`'s config (never the layer itself) named `<prefix>_<name>` as Keras names
/// it (the name without a first `<prefix>_`), with `go_backwards` set when given.
fn direction(
    owner: &str,
    layer: &NestedLayer,
    prefix: &str,
    go_backwards: Option<bool>,
) -> Result<NestedLayer> {
    let mut config = layer.config.clone();
    let object = config
        .as_object_mut()
        .ok_or_else(|| Error::config(owner, "the wrapped layer's config is not an object"))?;
    let name = object
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let base = name.strip_prefix(&format!("{prefix}_")).unwrap_or(name);
    let renamed = format!("{prefix}_{base}");
    object.insert("name".into(), renamed.into());
    if let Some(backwards) = go_backwards {
        object.insert("go_backwards".into(), backwards.into());
    }
    Ok(NestedLayer::from_config(&layer.class_name, config))
}

/// The sequences in reverse time order (axis 1).
fn reverse_time(t: &Tensor) -> Result<Tensor> {
    let steps = t.dim(1)?;
    let order: Vec<u32> = (0..steps as u32).rev().collect();
    let index = Tensor::from_vec(order, steps, t.device())?;
    Ok(t.contiguous()?.index_select(&index, 1)?)
}

/// `first` followed by `rest`.
fn prepend<T: Clone>(first: &T, rest: &[T]) -> Vec<T> {
    std::iter::once(first.clone())
        .chain(rest.iter().cloned())
        .collect()
}

impl BidirectionalLayer {
    /// The layer of options `c`: both directions made and checked as Keras checks them.
    pub fn new(name: String, trainable: bool, c: &BidirectionalConfig) -> Result<Self> {
        let forward = direction(&name, &c.layer, "forward", None)?;
        let backward = match &c.backward_layer {
            Some(backward) => backward.clone(),
            None => direction(&name, &c.layer, "backward", Some(true))?,
        };
        if flag(&name, &forward, "go_backwards")? == flag(&name, &backward, "go_backwards")? {
            return Err(Error::config(
                &name,
                "the forward and backward layers must have different go_backwards values",
            ));
        }
        for key in ["return_sequences", "return_state", "stateful"] {
            if flag(&name, &forward, key)? != flag(&name, &backward, key)? {
                return Err(Error::config(
                    &name,
                    format!("the forward and backward layers must have the same {key}"),
                ));
            }
        }
        Ok(BidirectionalLayer {
            return_sequences: flag(&name, &forward, "return_sequences")?,
            merge_mode: c.merge_mode,
            forward: forward.make(&name)?,
            backward: backward.make(&name)?,
            base: LayerBase::new(name, trainable),
        })
    }

    /// The merge mode.
    pub fn merge_mode(&self) -> Option<MergeMode> {
        self.merge_mode
    }

    /// The layers reading the sequences forwards and backwards.
    pub fn layers(&self) -> (&Arc<dyn Layer>, &Arc<dyn Layer>) {
        (&self.forward, &self.backward)
    }

    /// The sequences, the forward layer's initial states and the backward layer's.
    fn split<'a, T>(&self, inputs: &'a [T]) -> Result<(&'a T, &'a [T], &'a [T])> {
        match inputs.split_first() {
            Some((x, states)) if states.len() % 2 == 0 => {
                let (forward, backward) = states.split_at(states.len() / 2);
                Ok((x, forward, backward))
            }
            _ => Err(Error::config(
                self.name(),
                format!(
                    "expects the sequences, optionally followed by the forward layer's initial \
                     states then as many for the backward layer, got {} input(s)",
                    inputs.len()
                ),
            )),
        }
    }

    /// The backward layer's sequence in the inputs' time order (its own when it returns
    /// sequences is reversed; reversing is its own inverse, which the backward pass uses).
    fn aligned(&self, y: &Tensor) -> Result<Tensor> {
        if self.return_sequences {
            reverse_time(y)
        } else {
            Ok(y.clone())
        }
    }

    /// The outputs from each direction's: the merged output(s), then each one's states.
    fn merge(&self, forward: &[Tensor], backward: &[Tensor]) -> Result<Vec<Tensor>> {
        let (Some((y, forward_states)), Some((y_back, backward_states))) =
            (forward.split_first(), backward.split_first())
        else {
            return Err(Error::config(
                self.name(),
                "a wrapped layer returned nothing",
            ));
        };
        let y_back = self.aligned(y_back)?;
        let mut outputs = match self.merge_mode {
            None => vec![y.clone(), y_back],
            Some(MergeMode::Concat) => vec![Tensor::cat(&[y, &y_back], D::Minus1)?],
            Some(MergeMode::Sum) => vec![(y + &y_back)?],
            Some(MergeMode::Mul) => vec![(y * &y_back)?],
            Some(MergeMode::Ave) => vec![(y + &y_back)?.affine(0.5, 0.0)?],
        };
        outputs.extend_from_slice(forward_states);
        outputs.extend_from_slice(backward_states);
        Ok(outputs)
    }

    /// The gradients of each direction's output, from those of the merged output(s) `grads`
    /// and the directions' outputs `y` and `y_back` (as they returned them).
    fn unmerge(&self, grads: &[Tensor], y: &Tensor, y_back: &Tensor) -> Result<(Tensor, Tensor)> {
        let g = &grads[0];
        let (forward, aligned) = match self.merge_mode {
            None => (grads[0].clone(), grads[1].clone()),
            Some(MergeMode::Concat) => {
                let (units, total) = (y.dim(D::Minus1)?, g.dim(D::Minus1)?);
                let rest = total.checked_sub(units).ok_or_else(|| {
                    Error::shape(
                        self.name(),
                        "an output gradient of the output's shape",
                        total,
                    )
                })?;
                (
                    g.narrow(D::Minus1, 0, units)?,
                    g.narrow(D::Minus1, units, rest)?,
                )
            }
            Some(MergeMode::Sum) => (g.clone(), g.clone()),
            Some(MergeMode::Mul) => ((g * self.aligned(y_back)?)?, (g * y)?),
            Some(MergeMode::Ave) => {
                let half = g.affine(0.5, 0.0)?;
                (half.clone(), half)
            }
        };
        Ok((forward, self.aligned(&aligned)?))
    }
}

impl Layer for BidirectionalLayer {
    wrapper_methods!(forward, backward);

    fn class_name(&self) -> &'static str {
        BidirectionalConfig::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        let (x, forward_states, backward_states) = self.split(inputs)?;
        let forward = self.forward.build(&prepend(x, forward_states))?;
        let backward = self.backward.build(&prepend(x, backward_states))?;
        let (Some((y, forward_states)), Some((y_back, backward_states))) =
            (forward.split_first(), backward.split_first())
        else {
            return Err(Error::config(
                self.name(),
                "a wrapped layer returned nothing",
            ));
        };
        let (rank, leading) = (y.rank(), &y.dims()[..y.rank().saturating_sub(1)]);
        let concat_fits = y_back.rank() == rank && y_back.dims().starts_with(leading);
        let mut outputs = match self.merge_mode {
            None => vec![y.clone(), y_back.clone()],
            Some(MergeMode::Concat) if rank > 0 && concat_fits => {
                let mut dims = y.dims().to_vec();
                dims[rank - 1] = y.last().zip(y_back.last()).map(|(a, b)| a + b);
                vec![SymbolicShape(dims)]
            }
            Some(mode) if mode != MergeMode::Concat && y == y_back => vec![y.clone()],
            Some(_) => {
                return Err(Error::shape(
                    self.name(),
                    format!("a backward output that merges with the forward one, {y}"),
                    y_back,
                ))
            }
        };
        outputs.extend_from_slice(forward_states);
        outputs.extend_from_slice(backward_states);
        Ok(outputs)
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let (x, forward_states, backward_states) = self.split(inputs)?;
        let (forward, forward_record) =
            call_wrapped(self.forward.as_ref(), &prepend(x, forward_states), ctx)?;
        let (backward, backward_record) =
            call_wrapped(self.backward.as_ref(), &prepend(x, backward_states), ctx)?;
        let outputs = self.merge(&forward, &backward)?;
        if let (Some(forward), Some(backward)) = (forward_record, backward_record) {
            ctx.save(Tape { forward, backward });
        }
        Ok(outputs)
    }

    fn backward(
        &self,
        record: CallRecord,
        grad_outputs: &[Tensor],
        needs_input_grad: &[bool],
        weight_grads: &mut WeightGrads,
    ) -> Result<Vec<Option<Tensor>>> {
        let Tape { forward, backward } = *record
            .state
            .and_then(|s| s.downcast::<Tape>().ok())
            .ok_or_else(|| {
                Error::config(self.name(), "backward without the state its call saved")
            })?;
        let merged = if self.merge_mode.is_none() { 2 } else { 1 };
        let forward_states = forward.outputs.len().saturating_sub(1);
        let expected = merged + forward_states + backward.outputs.len().saturating_sub(1);
        if grad_outputs.len() != expected
            || forward.outputs.is_empty()
            || backward.outputs.is_empty()
        {
            return Err(Error::config(
                self.name(),
                format!(
                    "backward expects {expected} output gradient(s), got {}",
                    grad_outputs.len()
                ),
            ));
        }
        let (grads, state_grads) = grad_outputs.split_at(merged);
        let (forward_state_grads, backward_state_grads) = state_grads.split_at(forward_states);
        let (dy, dy_back) = self.unmerge(grads, &forward.outputs[0], &backward.outputs[0])?;
        let need = |i: usize| needs_input_grad.get(i).copied().unwrap_or(false);
        let states = record.inputs.len().saturating_sub(1) / 2;
        let forward_needs: Vec<bool> = (0..=states).map(need).collect();
        let backward_needs: Vec<bool> = std::iter::once(need(0))
            .chain((1..=states).map(|i| need(states + i)))
            .collect();
        let forward_grads = differentiate(
            self.forward.as_ref(),
            forward,
            &prepend(&dy, forward_state_grads),
            &forward_needs,
            weight_grads,
        )?;
        let backward_grads = differentiate(
            self.backward.as_ref(),
            backward,
            &prepend(&dy_back, backward_state_grads),
            &backward_needs,
            weight_grads,
        )?;
        let (mut forward_grads, mut backward_grads) =
            (forward_grads.into_iter(), backward_grads.into_iter());
        let dx = match (
            forward_grads.next().flatten(),
            backward_grads.next().flatten(),
        ) {
            (Some(a), Some(b)) => Some((a + b)?),
            (a, b) => a.or(b),
        };
        Ok(std::iter::once(dx)
            .chain(forward_grads)
            .chain(backward_grads)
            .collect())
    }

    fn config(&self) -> Value {
        let options = BidirectionalConfig {
            layer: NestedLayer::of(&self.forward),
            merge_mode: self.merge_mode,
            backward_layer: Some(NestedLayer::of(&self.backward)),
        };
        config_with_name(&options, &self.base)
    }
}

/// The harness cases: every merge mode, sequences or not, states, initial states, on each
/// recurrent layer, against hand-computed values and the f64 reference run each way.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use super::gru::GRU;
    use super::lstm::LSTM;
    use super::reference::bidirectional_case;
    use super::simple_rnn::SimpleRNN;
    use crate::testing::LayerCase;
    use MergeMode::{Ave, Concat, Mul, Sum};
    crate::session::set_random_seed(37);
    // A linear SimpleRNN of 1 unit on 1 feature, on x = [1, 2] (one sample, two steps).
    // Forward (kernel 0.5, recurrent 0.2, bias 0.1): h₁ = 0.5·1 + 0.1 = 0.6,
    // h₂ = 0.5·2 + 0.1 + 0.2·0.6 = 1.22. Backward (kernel -1, recurrent 0.5, bias 0.3) reads
    // 2 then 1: h₁ = -1·2 + 0.3 = -1.7, h₂ = -1·1 + 0.3 + 0.5·(-1.7) = -1.55; its sequence
    // [-1.7, -1.55] reversed back is [-1.55, -1.7]. Keras: 2·1·(1 + 1 + 1) parameters.
    let hand = |merge: Option<MergeMode>, sequences: bool, state: bool| {
        let rnn = SimpleRNN::new(1)
            .activation("linear")
            .return_sequences(sequences)
            .return_state(state);
        let layer = Bidirectional::new(rnn)
            .merge_mode(merge)
            .layer()
            .expect("layer");
        let x = Tensor::new(&[[[1f32], [2.0]]], &candle_core::Device::Cpu).expect("x");
        (
            LayerCase::new(layer, &[&[2, 1]])
                .weights(6, 0, 6)
                .weight_values(vec![
                    vec![0.5],
                    vec![0.2],
                    vec![0.1],
                    vec![-1.0],
                    vec![0.5],
                    vec![0.3],
                ]),
            vec![x],
        )
    };
    let case = |merge, sequences, state, shapes: &[&str], outputs: Vec<Vec<f64>>| {
        let (case, x) = hand(merge, sequences, state);
        case.output_shapes(shapes).forward(x, outputs)
    };
    vec![
        case(
            Some(Concat),
            false,
            false,
            &["(None, 2)"],
            vec![vec![1.22, -1.55]],
        ),
        // Per step: [0.6, -1.55], [1.22, -1.7].
        case(
            Some(Concat),
            true,
            false,
            &["(None, 2, 2)"],
            vec![vec![0.6, -1.55, 1.22, -1.7]],
        ),
        // 0.6 - 1.55, 1.22 - 1.7.
        case(
            Some(Sum),
            true,
            false,
            &["(None, 2, 1)"],
            vec![vec![-0.95, -0.48]],
        ),
        // 0.6·(-1.55), 1.22·(-1.7).
        case(
            Some(Mul),
            true,
            false,
            &["(None, 2, 1)"],
            vec![vec![-0.93, -2.074]],
        ),
        case(
            Some(Ave),
            true,
            false,
            &["(None, 2, 1)"],
            vec![vec![-0.475, -0.24]],
        ),
        case(
            None,
            true,
            false,
            &["(None, 2, 1)", "(None, 2, 1)"],
            vec![vec![0.6, 1.22], vec![-1.55, -1.7]],
        ),
        // The output, then each direction's final state.
        case(
            Some(Concat),
            false,
            true,
            &["(None, 2)", "(None, 1)", "(None, 1)"],
            vec![vec![1.22, -1.55], vec![1.22], vec![-1.55]],
        ),
        // Keras: twice 4·units·(features + units + 1), 3·units·(features + units + 2),
        // units·(features + units + 1), with 3 units on 4 features.
        bidirectional_case(
            LSTM::new(3),
            Some(Concat),
            false,
            &["(None, 6)"],
            2 * 4 * 3 * (4 + 3 + 1),
        ),
        bidirectional_case(
            GRU::new(3).return_sequences(true),
            None,
            false,
            &["(None, 3, 3)", "(None, 3, 3)"],
            2 * 3 * 3 * (4 + 3 + 2),
        ),
        bidirectional_case(
            LSTM::new(3).return_sequences(true).return_state(true),
            Some(Mul),
            true,
            &[
                "(None, 3, 3)",
                "(None, 3)",
                "(None, 3)",
                "(None, 3)",
                "(None, 3)",
            ],
            2 * 4 * 3 * (4 + 3 + 1),
        ),
        bidirectional_case(
            GRU::new(3).return_state(true),
            Some(Sum),
            true,
            &["(None, 3)", "(None, 3)", "(None, 3)"],
            2 * 3 * 3 * (4 + 3 + 2),
        ),
        // No fused kernel for softplus: candle ops and autograd inside.
        bidirectional_case(
            SimpleRNN::new(3)
                .activation("softplus")
                .return_sequences(true),
            Some(Ave),
            false,
            &["(None, 3, 3)"],
            2 * 3 * (4 + 3 + 1),
        ),
    ]
}
