//! `compile`: the optimizer, loss and metrics a model trains with, kept with the model.

use std::sync::Arc;

use rkeras_model::Model;
use serde_json::json;

use crate::losses::{self, Loss};
use crate::metrics::Metric;
use crate::optimizers::{self, Optimizer};
use crate::{Error, Result};

/// An optimizer given to `compile`: a Keras name (`"adam"`) or a configured value
/// (`Adam::new().learning_rate(1e-4)`).
pub trait IntoOptimizer {
    /// The optimizer, or an error for an unknown name.
    fn into_optimizer(self) -> Result<Box<dyn Optimizer>>;
}

impl IntoOptimizer for &str {
    fn into_optimizer(self) -> Result<Box<dyn Optimizer>> {
        optimizers::get(self)
    }
}

impl<O: Optimizer + 'static> IntoOptimizer for O {
    fn into_optimizer(self) -> Result<Box<dyn Optimizer>> {
        Ok(Box::new(self))
    }
}

/// A loss given to `compile`: a Keras name (`"binary_crossentropy"`) or a configured value.
pub trait IntoLoss {
    /// The loss, or an error for an unknown name.
    fn into_loss(self) -> Result<Box<dyn Loss>>;
}

impl IntoLoss for &str {
    fn into_loss(self) -> Result<Box<dyn Loss>> {
        losses::get(self)
    }
}

impl<L: Loss + 'static> IntoLoss for L {
    fn into_loss(self) -> Result<Box<dyn Loss>> {
        Ok(Box::new(self))
    }
}

/// The losses given to `compile`: one for every output (`"mse"`, `BinaryCrossentropy::new()`),
/// or one per output, in the model's output order (`["mse", "binary_crossentropy"]`) or by
/// output name (`Losses::by_name([("age", "mse"), ("gender", "binary_crossentropy")])`), as
/// Keras's `loss=` takes a loss, a list or a dict.
pub trait IntoLosses {
    /// The losses, or an error for an unknown name.
    fn into_losses(self) -> Result<Losses>;
}

/// Losses for a model's outputs; see [`IntoLosses`].
pub enum Losses {
    /// The same loss for every output.
    Every(Box<dyn Loss>),
    /// One loss per output, in order.
    PerOutput(Vec<Box<dyn Loss>>),
    /// Losses by output name (every output named once).
    ByName(Vec<(String, Box<dyn Loss>)>),
}

impl Losses {
    /// Losses by output name, as Keras's `loss={"age": "mse", ...}`.
    pub fn by_name<L: IntoLoss>(
        pairs: impl IntoIterator<Item = (&'static str, L)>,
    ) -> Result<Self> {
        Ok(Losses::ByName(
            pairs
                .into_iter()
                .map(|(name, loss)| Ok((name.to_string(), loss.into_loss()?)))
                .collect::<Result<_>>()?,
        ))
    }
}

impl IntoLosses for Losses {
    fn into_losses(self) -> Result<Losses> {
        Ok(self)
    }
}

impl<L: IntoLoss> IntoLosses for L {
    fn into_losses(self) -> Result<Losses> {
        Ok(Losses::Every(self.into_loss()?))
    }
}

impl<const N: usize> IntoLosses for [&str; N] {
    fn into_losses(self) -> Result<Losses> {
        Ok(Losses::PerOutput(
            self.iter()
                .map(|name| losses::get(name))
                .collect::<Result<_>>()?,
        ))
    }
}

impl IntoLosses for Vec<Box<dyn Loss>> {
    fn into_losses(self) -> Result<Losses> {
        Ok(Losses::PerOutput(self))
    }
}

/// A metric given to `compile`: a Keras name (`"accuracy"`, `"true_positives"`) or a configured
/// metric value (`TruePositives::new().with_name("tp")`, `AUC::new()`); see
/// [`CompileOptions::metric`].
pub trait IntoMetric {
    /// The metric as `compile` keeps it.
    fn into_metric(self) -> CompileMetric;
}

impl IntoMetric for &str {
    fn into_metric(self) -> CompileMetric {
        CompileMetric(MetricEntry::Name(self.to_string()))
    }
}

impl<M: Metric + Clone + 'static> IntoMetric for M {
    fn into_metric(self) -> CompileMetric {
        CompileMetric(MetricEntry::Object(Box::new(self)))
    }
}

impl IntoMetric for CompileMetric {
    fn into_metric(self) -> CompileMetric {
        self
    }
}

/// One metric of `compile`: a name, resolved with [`metrics::get`] when a run starts, or a
/// configured metric, of which each run (`fit`, `evaluate`...) gets a fresh, reset copy.
///
/// [`metrics::get`]: crate::metrics::get
pub struct CompileMetric(MetricEntry);

enum MetricEntry {
    Name(String),
    Object(Box<dyn MetricPrototype>),
}

/// A configured metric that runs copy.
trait MetricPrototype: Send {
    /// A reset copy.
    fn fresh(&self) -> Box<dyn Metric>;
    /// A copy as it is.
    fn clone_box(&self) -> Box<dyn MetricPrototype>;
    /// The metric itself.
    fn metric(&self) -> &dyn Metric;
}

impl<M: Metric + Clone + 'static> MetricPrototype for M {
    fn fresh(&self) -> Box<dyn Metric> {
        let mut metric = self.clone();
        metric.reset_state();
        Box::new(metric)
    }

    fn clone_box(&self) -> Box<dyn MetricPrototype> {
        Box::new(self.clone())
    }

    fn metric(&self) -> &dyn Metric {
        self
    }
}

impl CompileMetric {
    /// The metric a run starts with, for an output shaped `shape` trained with `loss_name`
    /// (see [`metrics::get`](crate::metrics::get)); its options checked.
    fn make(&self, loss_name: &str, shape: &[usize]) -> Result<Box<dyn Metric>> {
        let metric = match &self.0 {
            MetricEntry::Name(name) => crate::metrics::get(name, loss_name, shape)?,
            MetricEntry::Object(prototype) => prototype.fresh(),
        };
        metric.check()?;
        Ok(metric)
    }

    /// As a saved compile config keeps it: the name, or the metric's Keras-style config when
    /// it has one ([`Metric::config`]).
    fn config(&self) -> serde_json::Value {
        match &self.0 {
            MetricEntry::Name(name) => json!(name),
            MetricEntry::Object(prototype) => {
                let metric = prototype.metric();
                metric.config().unwrap_or_else(|| json!(metric.name()))
            }
        }
    }
}

impl Clone for CompileMetric {
    fn clone(&self) -> Self {
        CompileMetric(match &self.0 {
            MetricEntry::Name(name) => MetricEntry::Name(name.clone()),
            MetricEntry::Object(prototype) => MetricEntry::Object(prototype.clone_box()),
        })
    }
}

impl std::fmt::Debug for CompileMetric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            MetricEntry::Name(name) => write!(f, "{name:?}"),
            MetricEntry::Object(prototype) => write!(f, "{}", prototype.metric().name()),
        }
    }
}

/// `compile`'s other arguments, as Keras's keywords: metrics (one list for a single output, or
/// a list per output) and loss weights (one per output).
#[derive(Debug, Clone, Default)]
pub struct CompileOptions {
    metrics: Vec<Vec<CompileMetric>>,
    per_output_metrics: bool,
    loss_weights: Option<Vec<f64>>,
}

impl CompileOptions {
    /// No metrics, unweighted losses.
    pub fn new() -> Self {
        Self::default()
    }

    /// Metrics by Keras name (`"accuracy"`, `"mae"`...), added to Keras's flat `metrics` list:
    /// all on the output of a single-output model; on a model with several outputs, one per
    /// output.
    pub fn metrics(mut self, names: &[&str]) -> Self {
        let entries = names.iter().map(|name| vec![name.into_metric()]);
        self.metrics.extend(entries);
        self.per_output_metrics = false;
        self
    }

    /// One more metric in Keras's flat `metrics` list, by name or as a configured value: a
    /// metric object (any [`Metric`] + `Clone`) is logged under its name (`tp`, `val_tp`, or
    /// `<output>_tp` on a model with several outputs), and each `fit` or `evaluate` starts from
    /// a reset copy of it. Saved models keep its options for the built-in metrics with options
    /// (`Precision`, `Recall`, the four counts, `AUC`); others are saved by name
    /// ([`Metric::config`]).
    ///
    /// Keras's `metrics=["accuracy", keras.metrics.TruePositives(name="tp"),
    /// keras.metrics.AUC()]`:
    ///
    /// ```
    /// use rkeras_fit::metrics::{TruePositives, AUC};
    /// use rkeras_fit::CompileOptions;
    ///
    /// let options = CompileOptions::new()
    ///     .metrics(&["accuracy"])
    ///     .metric(TruePositives::new().with_name("tp").thresholds(0.3))
    ///     .metric(AUC::new());
    /// ```
    pub fn metric(mut self, metric: impl IntoMetric) -> Self {
        self.metrics.push(vec![metric.into_metric()]);
        self
    }

    /// A list of metrics for each output, in the model's output order.
    pub fn output_metrics(self, per_output: &[&[&str]]) -> Self {
        let lists = per_output
            .iter()
            .map(|names| names.iter().map(|name| name.into_metric()).collect())
            .collect();
        self.metric_lists(lists)
    }

    /// A list of metrics for each output (names or objects), replacing any given before.
    pub(crate) fn metric_lists(mut self, per_output: Vec<Vec<CompileMetric>>) -> Self {
        self.metrics = per_output;
        self.per_output_metrics = true;
        self
    }

    /// The weight of each output's loss in the total (Keras's `loss_weights`), in the model's
    /// output order.
    pub fn loss_weights(mut self, weights: &[f64]) -> Self {
        self.loss_weights = Some(weights.to_vec());
        self
    }
}

/// One model output's part of what `compile` set: its name, loss, loss weight and metrics.
pub(crate) struct CompiledOutput {
    /// Keras's output name: the name of the layer (or nested model) that produces it.
    pub name: String,
    /// The loss (shared with the runs that use it).
    pub loss: Arc<dyn Loss>,
    /// The loss's weight in the total, if one was given.
    pub weight: Option<f64>,
    /// The metrics asked for, made afresh when a run starts.
    pub metrics: Vec<CompileMetric>,
}

/// What `compile` leaves on a model: everything `fit` and `evaluate` need.
pub(crate) struct Compiled {
    /// The optimizer, with its state (moments, iteration count).
    pub optimizer: Box<dyn Optimizer>,
    /// Each output's loss and metrics, in the model's output order.
    pub outputs: Vec<CompiledOutput>,
}

impl Compiled {
    /// What `compile(optimizer, losses, options)` sets on `model`, or an error naming what does
    /// not fit the model's outputs.
    pub fn new(
        model: &Model,
        optimizer: Box<dyn Optimizer>,
        losses: Losses,
        options: CompileOptions,
    ) -> Result<Compiled> {
        let names = model.output_names();
        let count = names.len();
        let losses: Vec<Box<dyn Loss>> = match losses {
            Losses::Every(loss) => {
                let shared: Arc<dyn Loss> = Arc::from(loss);
                return Compiled::with_shared_loss(model, optimizer, shared, options);
            }
            Losses::PerOutput(losses) => {
                check_count(model, "losses", losses.len(), count)?;
                losses
            }
            Losses::ByName(mut pairs) => {
                let mut ordered = Vec::with_capacity(count);
                for name in &names {
                    let at = pairs.iter().position(|(n, _)| n == name).ok_or_else(|| {
                        Error::Config(format!(
                            "model '{}': no loss for output '{name}' (outputs: {})",
                            model.name(),
                            names.join(", ")
                        ))
                    })?;
                    ordered.push(pairs.remove(at).1);
                }
                if let Some((extra, _)) = pairs.first() {
                    return Err(Error::Config(format!(
                        "model '{}' has no output named '{extra}' (outputs: {})",
                        model.name(),
                        names.join(", ")
                    )));
                }
                ordered
            }
        };
        let losses = losses.into_iter().map(Arc::from).collect();
        Compiled::assemble(model, optimizer, losses, options)
    }

    /// [`Compiled::new`] with one loss for every output.
    fn with_shared_loss(
        model: &Model,
        optimizer: Box<dyn Optimizer>,
        loss: Arc<dyn Loss>,
        options: CompileOptions,
    ) -> Result<Compiled> {
        let losses = vec![loss; model.output_names().len()];
        Compiled::assemble(model, optimizer, losses, options)
    }

    fn assemble(
        model: &Model,
        optimizer: Box<dyn Optimizer>,
        losses: Vec<Arc<dyn Loss>>,
        options: CompileOptions,
    ) -> Result<Compiled> {
        let names = model.output_names();
        let count = names.len();
        let metrics: Vec<Vec<CompileMetric>> = match (options.per_output_metrics, count) {
            (_, _) if options.metrics.is_empty() => vec![Vec::new(); count],
            (false, 1) => vec![options.metrics.into_iter().flatten().collect()],
            (_, _) => {
                check_count(model, "metric lists", options.metrics.len(), count)?;
                options.metrics
            }
        };
        let weights: Vec<Option<f64>> = match options.loss_weights {
            Some(weights) => {
                check_count(model, "loss weights", weights.len(), count)?;
                weights.into_iter().map(Some).collect()
            }
            None => vec![None; count],
        };
        let outputs = names
            .into_iter()
            .zip(losses)
            .zip(metrics.into_iter().zip(weights))
            .map(|((name, loss), (metrics, weight))| CompiledOutput {
                name,
                loss,
                weight,
                metrics,
            })
            .collect();
        let compiled = Compiled { optimizer, outputs };
        compiled.make_metrics(&model_output_shapes(model))?;
        Ok(compiled)
    }

    /// The compile configuration as JSON (Keras's `compile_config`), for saving: for a
    /// single-output model a loss and a list of metrics, else a list of each.
    pub fn config(&self) -> serde_json::Value {
        let weights: Option<Vec<f64>> = self.outputs.iter().map(|o| o.weight).collect();
        match &self.outputs[..] {
            [only] => json!({
                "optimizer": self.optimizer.config(),
                "loss": only.loss.config(),
                "loss_weights": only.weight,
                "metrics": metric_configs(&only.metrics),
            }),
            outputs => json!({
                "optimizer": self.optimizer.config(),
                "loss": outputs.iter().map(|o| o.loss.config()).collect::<Vec<_>>(),
                "loss_weights": weights,
                "metrics": outputs.iter().map(|o| metric_configs(&o.metrics)).collect::<Vec<_>>(),
            }),
        }
    }

    /// Fresh metrics for each output, named as Keras logs them (`accuracy`, or
    /// `<output>_accuracy` for a model with several outputs), for outputs shaped
    /// `output_shapes` (batch included).
    pub fn make_metrics(&self, output_shapes: &[Vec<usize>]) -> Result<Vec<OutputMetrics>> {
        let prefixed = self.outputs.len() > 1;
        self.outputs
            .iter()
            .zip(output_shapes)
            .map(|(output, shape)| {
                let metrics = output
                    .metrics
                    .iter()
                    .map(|metric| metric.make(output.loss.name(), shape))
                    .collect::<Result<_>>()?;
                Ok(OutputMetrics {
                    prefix: if prefixed {
                        format!("{}_", output.name)
                    } else {
                        String::new()
                    },
                    metrics,
                })
            })
            .collect()
    }
}

/// The saved form of an output's metrics.
fn metric_configs(metrics: &[CompileMetric]) -> Vec<serde_json::Value> {
    metrics.iter().map(CompileMetric::config).collect()
}

/// One output's metrics, with the prefix its log keys take.
pub(crate) struct OutputMetrics {
    /// `""`, or `"<output name>_"` for a model with several outputs.
    pub prefix: String,
    /// The metrics.
    pub metrics: Vec<Box<dyn Metric>>,
}

/// The shapes of the model's outputs, unknown dimensions taken as 1 (for choosing metrics).
pub(crate) fn model_output_shapes(model: &Model) -> Vec<Vec<usize>> {
    model
        .output_shapes()
        .iter()
        .map(|shape| shape.dims().iter().map(|d| d.unwrap_or(1)).collect())
        .collect()
}

fn check_count(model: &Model, what: &str, given: usize, outputs: usize) -> Result<()> {
    if given == outputs {
        return Ok(());
    }
    Err(Error::Config(format!(
        "model '{}' has {outputs} output(s) ({}), but {given} {what} were given",
        model.name(),
        model.output_names().join(", ")
    )))
}

/// What a model's extension slot holds: its compile state, or the mark of the run (`fit`,
/// `evaluate`...) that has taken it, so that another thread's `save` or `fit` can say so.
enum CompileSlot {
    Ready(Compiled),
    Busy(&'static str),
}

/// Stores `compiled` on `model`, replacing any earlier compile (and its optimizer state);
/// refused while a run has the compile state.
pub(crate) fn attach(model: &Model, compiled: Compiled) -> Result<()> {
    let mut slot = model.extension();
    if let Some(action) = busy_with(slot.as_deref()) {
        return Err(busy(model, "compile", action));
    }
    *slot = Some(Box::new(CompileSlot::Ready(compiled)));
    Ok(())
}

/// Takes the compile state off `model` for the length of a run (`action`: `fit`, `evaluate`...),
/// leaving a mark that the run holds it; an error if the model is not compiled or another run
/// holds it. [`restore`] puts it back.
pub(crate) fn detach(model: &Model, action: &'static str) -> Result<Compiled> {
    let mut slot = model.extension();
    if let Some(other) = busy_with(slot.as_deref()) {
        return Err(busy(model, action, other));
    }
    match slot.take().map(|b| b.downcast::<CompileSlot>()) {
        Some(Ok(state)) => match *state {
            CompileSlot::Ready(compiled) => {
                *slot = Some(Box::new(CompileSlot::Busy(action)));
                Ok(compiled)
            }
            CompileSlot::Busy(other) => Err(busy(model, action, other)),
        },
        Some(Err(other)) => {
            *slot = Some(other);
            Err(not_compiled(model, action))
        }
        None => Err(not_compiled(model, action)),
    }
}

/// Puts back the compile state a run took with [`detach`].
pub(crate) fn restore(model: &Model, compiled: Compiled) {
    *model.extension() = Some(Box::new(CompileSlot::Ready(compiled)));
}

/// What a model's compile state is now.
pub(crate) enum CompileState<'a> {
    /// Not compiled.
    None,
    /// Compiled, and free.
    Ready(&'a Compiled),
    /// Compiled, and held by a run (`fit`...) on some thread.
    Busy(&'static str),
}

/// Runs `f` with the model's compile state.
pub(crate) fn with_compiled<R>(model: &Model, f: impl FnOnce(CompileState<'_>) -> R) -> R {
    let slot = model.extension();
    let state = match slot.as_ref().and_then(|b| b.downcast_ref::<CompileSlot>()) {
        Some(CompileSlot::Ready(compiled)) => CompileState::Ready(compiled),
        Some(CompileSlot::Busy(action)) => CompileState::Busy(action),
        None => CompileState::None,
    };
    f(state)
}

/// The run holding the slot's compile state, if one does.
fn busy_with(slot: Option<&(dyn std::any::Any + Send)>) -> Option<&'static str> {
    match slot?.downcast_ref::<CompileSlot>()? {
        CompileSlot::Busy(action) => Some(action),
        CompileSlot::Ready(_) => None,
    }
}

/// The error for `action` asked while `running` holds the model.
pub(crate) fn busy(model: &Model, action: &str, running: &str) -> Error {
    Error::Config(format!(
        "model '{}': cannot {action} while a {running} of it is in progress (on another thread); \
         wait for it to end",
        model.name()
    ))
}

fn not_compiled(model: &Model, action: &str) -> Error {
    Error::Config(format!(
        "model '{}' must be compiled before {action}: call model.compile(optimizer, loss) first",
        model.name()
    ))
}

#[cfg(test)]
#[path = "compile_metric_tests.rs"]
mod metric_tests;
