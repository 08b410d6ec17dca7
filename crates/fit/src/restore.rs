//! Rebuilding a compile config saved with a model: the optimizer with its options, the loss
//! and the metrics (the inverse of their `config()`, as Keras's `optimizers.deserialize` and
//! `losses.deserialize`), and checking the optimizer state saved beside them.

use candle_core::{DType, Tensor};
use serde_json::Value;

use crate::compile::{CompileMetric, IntoMetric};
use crate::losses::{
    self, BinaryCrossentropy, BinaryFocalCrossentropy, CategoricalCrossentropy, CosineSimilarity,
    Huber, Loss,
};
use crate::metrics::{
    self, ConfusionRatio, FalseNegatives, FalsePositives, Precision, Recall, ThresholdMetric,
    TrueNegatives, TruePositives, AUC, KNOWN_METRICS,
};
use crate::optimizers::{
    Adadelta, Adagrad, Adam, AdamW, Adamax, BaseOptimizer, ExponentialDecay, MomentOptions, Nadam,
    Optimizer, RMSprop, UpdateRule, SGD,
};
use crate::{Error, Result};

fn number(config: &Value, key: &str) -> Option<f64> {
    config.get(key).and_then(Value::as_f64)
}

fn flag(config: &Value, key: &str) -> Option<bool> {
    config.get(key).and_then(Value::as_bool)
}

fn bad(what: &str, config: &Value) -> Error {
    Error::Config(format!(
        "cannot rebuild the {what} from the saved config {config}"
    ))
}

/// The options every optimizer shares: learning rate or schedule, weight decay, clipping.
fn with_base_options<R: UpdateRule>(
    mut optimizer: BaseOptimizer<R>,
    config: &Value,
) -> Result<BaseOptimizer<R>> {
    match config.get("learning_rate") {
        Some(Value::Number(n)) => {
            optimizer = optimizer.learning_rate(n.as_f64().ok_or_else(|| bad("optimizer", config))?)
        }
        Some(schedule @ Value::Object(_)) => {
            let c = &schedule["config"];
            match schedule["class_name"].as_str() {
                Some("ExponentialDecay") => {
                    let decay = ExponentialDecay::new(
                        number(c, "initial_learning_rate").ok_or_else(|| bad("schedule", c))?,
                        c["decay_steps"]
                            .as_u64()
                            .ok_or_else(|| bad("schedule", c))?,
                        number(c, "decay_rate").ok_or_else(|| bad("schedule", c))?,
                    )
                    .staircase(flag(c, "staircase").unwrap_or(false));
                    optimizer = optimizer.schedule(decay);
                }
                _ => return Err(bad("learning-rate schedule", schedule)),
            }
        }
        _ => {}
    }
    if let Some(w) = number(config, "weight_decay") {
        optimizer = optimizer.weight_decay(w);
    }
    if let Some(v) = number(config, "clipnorm") {
        optimizer = optimizer.clipnorm(v);
    }
    if let Some(v) = number(config, "global_clipnorm") {
        optimizer = optimizer.global_clipnorm(v);
    }
    if let Some(v) = number(config, "clipvalue") {
        optimizer = optimizer.clipvalue(v);
    }
    Ok(optimizer)
}

/// β1, β2 and ε of an optimizer of Adam's family, Keras's defaults where absent.
fn with_moment_options<R: UpdateRule + MomentOptions>(
    optimizer: BaseOptimizer<R>,
    config: &Value,
) -> BaseOptimizer<R> {
    let get = |key: &str, default: f64| number(config, key).unwrap_or(default);
    optimizer
        .beta_1(get("beta_1", 0.9))
        .beta_2(get("beta_2", 0.999))
        .epsilon(get("epsilon", 1e-7))
}

/// The optimizer a saved `config()` describes.
pub(crate) fn optimizer_from_config(config: &Value) -> Result<Box<dyn Optimizer>> {
    let get = |key: &str, default: f64| number(config, key).unwrap_or(default);
    let optimizer: Box<dyn Optimizer> = match config["name"].as_str() {
        Some("adam") => {
            let o = Adam::new().amsgrad(flag(config, "amsgrad").unwrap_or(false));
            Box::new(with_base_options(with_moment_options(o, config), config)?)
        }
        Some("adamw") => {
            let o = AdamW::new().amsgrad(flag(config, "amsgrad").unwrap_or(false));
            Box::new(with_base_options(with_moment_options(o, config), config)?)
        }
        Some("sgd") => {
            let o = SGD::new()
                .momentum(get("momentum", 0.0))
                .nesterov(flag(config, "nesterov").unwrap_or(false));
            Box::new(with_base_options(o, config)?)
        }
        Some("rmsprop") => {
            let o = RMSprop::new()
                .rho(get("rho", 0.9))
                .momentum(get("momentum", 0.0))
                .epsilon(get("epsilon", 1e-7))
                .centered(flag(config, "centered").unwrap_or(false));
            Box::new(with_base_options(o, config)?)
        }
        Some("adagrad") => {
            let o = Adagrad::new()
                .initial_accumulator_value(get("initial_accumulator_value", 0.1))
                .epsilon(get("epsilon", 1e-7));
            Box::new(with_base_options(o, config)?)
        }
        Some("adamax") => Box::new(with_base_options(
            with_moment_options(Adamax::new(), config),
            config,
        )?),
        Some("nadam") => Box::new(with_base_options(
            with_moment_options(Nadam::new(), config),
            config,
        )?),
        Some("adadelta") => {
            let o = Adadelta::new()
                .rho(get("rho", 0.95))
                .epsilon(get("epsilon", 1e-7));
            Box::new(with_base_options(o, config)?)
        }
        _ => return Err(bad("optimizer", config)),
    };
    Ok(optimizer)
}

/// The loss a saved `config()` describes.
pub(crate) fn loss_from_config(config: &Value) -> Result<Box<dyn Loss>> {
    let name = config["name"].as_str().ok_or_else(|| bad("loss", config))?;
    let from_logits = flag(config, "from_logits").unwrap_or(false);
    let smoothing = number(config, "label_smoothing").unwrap_or(0.0);
    Ok(match name {
        "binary_crossentropy" => Box::new(
            BinaryCrossentropy::new()
                .from_logits(from_logits)
                .label_smoothing(smoothing),
        ),
        "categorical_crossentropy" => Box::new(
            CategoricalCrossentropy::new()
                .from_logits(from_logits)
                .label_smoothing(smoothing),
        ),
        "sparse_categorical_crossentropy" => {
            Box::new(losses::SparseCategoricalCrossentropy::new().from_logits(from_logits))
        }
        "huber" | "huber_loss" => {
            Box::new(Huber::new().delta(number(config, "delta").unwrap_or(1.0)))
        }
        "binary_focal_crossentropy" => Box::new(
            BinaryFocalCrossentropy::new()
                .apply_class_balancing(flag(config, "apply_class_balancing").unwrap_or(false))
                .alpha(number(config, "alpha").unwrap_or(0.25))
                .gamma(number(config, "gamma").unwrap_or(2.0))
                .from_logits(from_logits)
                .label_smoothing(smoothing),
        ),
        "cosine_similarity" => {
            Box::new(CosineSimilarity::new().axis(config["axis"].as_i64().unwrap_or(-1)))
        }
        other => losses::get(other)?,
    })
}

/// The metrics of a saved compile config (absent: none): names [`metrics::get`] knows, or
/// Keras-style `{"class_name": ..., "config": {...}}` of the metrics with options
/// ([`Metric::config`](crate::metrics::Metric::config)).
///
/// [`metrics::get`]: crate::metrics::get
pub(crate) fn metrics_from_config(
    metrics: &Value,
) -> std::result::Result<Vec<CompileMetric>, String> {
    let entries = match metrics {
        Value::Null => return Ok(Vec::new()),
        Value::Array(entries) => entries,
        other => return Err(format!("'metrics' must be a list of names, not {other}")),
    };
    entries.iter().map(metric_from_config).collect()
}

fn metric_from_config(entry: &Value) -> std::result::Result<CompileMetric, String> {
    let class_name = match entry {
        Value::String(name) if metrics::is_known(name) => return Ok(name.as_str().into_metric()),
        Value::String(name) => {
            return Err(format!(
                "unknown metric {name:?} in 'metrics'; expected one of: {}",
                KNOWN_METRICS.join(", ")
            ))
        }
        Value::Object(_) => entry["class_name"].as_str().unwrap_or_default(),
        other => return Err(format!("metric {other} in 'metrics' is not a name")),
    };
    let config = &entry["config"];
    let metric = match class_name {
        "Precision" => threshold_metric(Precision::new(), config)?,
        "Recall" => threshold_metric(Recall::new(), config)?,
        "TruePositives" => threshold_metric(TruePositives::new(), config)?,
        "FalsePositives" => threshold_metric(FalsePositives::new(), config)?,
        "TrueNegatives" => threshold_metric(TrueNegatives::new(), config)?,
        "FalseNegatives" => threshold_metric(FalseNegatives::new(), config)?,
        "AUC" => {
            let mut auc = AUC::new().from_logits(flag(config, "from_logits").unwrap_or(false));
            if let Some(name) = config["name"].as_str() {
                auc = auc.with_name(name);
            }
            match &config["num_thresholds"] {
                Value::Null => auc,
                n => auc.num_thresholds(
                    n.as_u64()
                        .and_then(|n| usize::try_from(n).ok())
                        .ok_or_else(|| format!("metric {entry}: bad 'num_thresholds'"))?,
                ),
            }
            .into_metric()
        }
        _ => {
            return Err(format!(
                "cannot rebuild the metric {entry} in 'metrics': expected a name or one of \
                 Precision, Recall, TruePositives, FalsePositives, TrueNegatives, \
                 FalseNegatives, AUC"
            ))
        }
    };
    Ok(metric)
}

/// A threshold metric with the name and threshold of a saved config (Keras's `thresholds`:
/// null for the default, a number, or a list of one).
fn threshold_metric<R: ConfusionRatio + Clone + 'static>(
    mut metric: ThresholdMetric<R>,
    config: &Value,
) -> std::result::Result<CompileMetric, String> {
    if let Some(name) = config["name"].as_str() {
        metric = metric.with_name(name);
    }
    let thresholds = match &config["thresholds"] {
        Value::Array(list) if list.len() == 1 => &list[0],
        other => other,
    };
    if !thresholds.is_null() {
        metric = metric.thresholds(thresholds.as_f64().ok_or_else(|| {
            format!("metric {config}: 'thresholds' must be one number, not {thresholds}")
        })?);
    }
    Ok(metric.into_metric())
}

/// Checks the scalars of a saved optimizer state before the optimizer takes it: `iterations`
/// must be a whole number >= 0 and `learning_rate` a finite number >= 0, each a scalar. On
/// failure, the entry's name (without `optimizer/`) and why.
pub(crate) fn check_optimizer_state(
    state: &[(String, Tensor)],
) -> std::result::Result<(), (String, String)> {
    for (name, tensor) in state {
        let (valid, expected): (fn(f64) -> bool, &str) = match name.as_str() {
            "iterations" => (|v| v >= 0.0 && v.fract() == 0.0, "a whole number >= 0"),
            "learning_rate" => (|v| v.is_finite() && v >= 0.0, "a finite number >= 0"),
            _ => continue,
        };
        let refused = |reason: String| (name.clone(), reason);
        if tensor.rank() != 0 {
            return Err(refused(format!(
                "must be a scalar ({expected}), but has shape {:?}",
                tensor.dims()
            )));
        }
        let value = tensor
            .to_dtype(DType::F64)
            .and_then(|t| t.to_scalar::<f64>())
            .map_err(|e| refused(e.to_string()))?;
        if !valid(value) {
            return Err(refused(format!("is {value}, not {expected}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optimizers_come_back_with_their_options() {
        let adam = Adam::new()
            .learning_rate(3e-4)
            .beta_1(0.5)
            .amsgrad(true)
            .clipnorm(1.0);
        let rebuilt = optimizer_from_config(&Optimizer::config(&adam)).unwrap();
        assert_eq!(rebuilt.config(), Optimizer::config(&adam));

        let sgd = SGD::new()
            .momentum(0.9)
            .nesterov(true)
            .schedule(ExponentialDecay::new(0.1, 10, 0.5).staircase(true));
        let rebuilt = optimizer_from_config(&Optimizer::config(&sgd)).unwrap();
        assert_eq!(rebuilt.config(), Optimizer::config(&sgd));

        for name in crate::optimizers::KNOWN_OPTIMIZERS {
            let original = crate::optimizers::get(name).unwrap();
            let rebuilt = optimizer_from_config(&original.config()).unwrap();
            assert_eq!(rebuilt.config(), original.config(), "{name}");
        }
        assert!(optimizer_from_config(&serde_json::json!({ "name": "lion" })).is_err());
    }

    #[test]
    fn losses_come_back_with_their_options() {
        let bce = BinaryCrossentropy::new().from_logits(true);
        assert_eq!(
            loss_from_config(&bce.config()).unwrap().config(),
            bce.config()
        );
        let huber = Huber::new().delta(2.5);
        assert_eq!(
            loss_from_config(&huber.config()).unwrap().config(),
            huber.config()
        );
        let focal = BinaryFocalCrossentropy::new()
            .apply_class_balancing(true)
            .alpha(0.4)
            .gamma(1.0)
            .from_logits(true)
            .label_smoothing(0.1);
        assert_eq!(
            loss_from_config(&focal.config()).unwrap().config(),
            focal.config()
        );
        let cosine = CosineSimilarity::new().axis(1);
        assert_eq!(
            loss_from_config(&cosine.config()).unwrap().config(),
            cosine.config()
        );
        for name in losses::KNOWN_LOSSES {
            let loss = losses::get(name).unwrap();
            assert_eq!(
                loss_from_config(&loss.config()).unwrap().config(),
                loss.config()
            );
        }
    }
}
