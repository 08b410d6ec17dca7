//! Keras's `sample_weight` and `class_weight` arguments, checked and turned into one weight
//! array per model output before the first step, after
//! `keras/src/trainers/data_adapters/array_data_adapter.py` (one array for every output, or one
//! per output; not both arguments at once; `class_weight` for one output only) and
//! `data_adapter_utils.py` (`class_weight_to_sample_weights`).

use candle_core::{DType, Device, Tensor, D};

use crate::arrays::Arrays;
use crate::{Error, Result};

/// Keras's `class_weight` dictionary: `(class index, weight)` pairs.
pub(crate) type ClassWeight = Vec<(usize, f32)>;

/// What a run is given to weight its samples with.
#[derive(Debug, Clone, Default)]
pub(crate) struct Weighting {
    /// Keras's `sample_weight`: one array for every output, or one per output.
    pub sample_weight: Option<Arrays>,
    /// Keras's `class_weight`.
    pub class_weight: Option<ClassWeight>,
}

impl Weighting {
    /// One f32 weight array per output (shaped `(samples,)`, or `(samples, timesteps...)` for
    /// temporal weights), or `None` when nothing weights the samples; errors name the argument
    /// and `context` (`fit`, `evaluate`, ...). `output_shapes` are the model's, batch included.
    pub fn resolve(
        &self,
        context: &str,
        y: &Arrays,
        rows: usize,
        output_shapes: &[Vec<usize>],
    ) -> Result<Option<Arrays>> {
        match (&self.sample_weight, &self.class_weight) {
            (Some(_), Some(_)) => Err(Error::Config(format!(
                "{context}: you cannot use `class_weight` and `sample_weight` at the same time"
            ))),
            (Some(weights), None) => per_output(context, weights, rows, output_shapes).map(Some),
            (None, Some(classes)) => {
                class_weights(context, classes, y, output_shapes).map(|w| Some(Arrays::from(w)))
            }
            (None, None) => Ok(None),
        }
    }
}

/// Each output's weights from the `sample_weight` arrays: one array repeated for every output
/// (then one weight per sample), or one per output.
fn per_output(
    context: &str,
    weights: &Arrays,
    rows: usize,
    output_shapes: &[Vec<usize>],
) -> Result<Arrays> {
    let outputs = output_shapes.len();
    let arrays: Vec<Tensor> = weights
        .tensors()
        .iter()
        .map(|w| checked_array(context, w, rows))
        .collect::<Result<_>>()?;
    let arrays = match arrays.len() {
        n if n == outputs => arrays,
        1 if arrays[0].rank() == 1 => vec![arrays[0].clone(); outputs],
        1 => {
            return Err(Error::Config(format!(
                "{context}: for a model with several outputs, a single `sample_weight` array \
                 holds one weight per sample (shape ({rows},)), got {:?}; pass one array per \
                 output for other weights",
                arrays[0].dims()
            )))
        }
        n => {
            return Err(Error::Config(format!(
                "{context}: `sample_weight` must be one array, or one per model output \
                 ({outputs}), got {n}"
            )))
        }
    };
    for (w, shape) in arrays.iter().zip(output_shapes) {
        // The loss's values are shaped as the output without its last axis.
        let values = &shape[1..shape.len().saturating_sub(1).max(1)];
        if w.dims()[1..].len() > values.len() || !values.starts_with(&w.dims()[1..]) {
            return Err(Error::Shape {
                context: format!("{context}: sample_weight"),
                expected: format!(
                    "one weight per sample, or per sample and timestep (samples shaped as a \
                     prefix of {values:?})"
                ),
                got: format!("{:?}", w.dims()),
            });
        }
    }
    Ok(Arrays::from(arrays))
}

/// One `sample_weight` array as f32 on the host's device, one weight per sample along axis 0
/// (a trailing axis of 1 dropped, as Keras squeezes it against the loss's values).
fn checked_array(context: &str, w: &Tensor, rows: usize) -> Result<Tensor> {
    if w.rank() == 0 || w.dim(0)? != rows {
        return Err(Error::Shape {
            context: format!("{context}: sample_weight"),
            expected: format!("one weight per sample: {rows} along the first axis"),
            got: format!("{:?}", w.dims()),
        });
    }
    let w = if w.rank() == 2 && w.dim(1)? == 1 {
        w.squeeze(1)?
    } else {
        w.clone()
    };
    Ok(w.to_dtype(DType::F32)?)
}

/// Keras's `class_weight_to_sample_weights`: each sample's weight is its class's (1 for a class
/// not listed), the class being the argmax of a one-hot target, else the rounded label (a target
/// with a last axis of 1 squeezed first). Checked before: one output, each class listed once and
/// within the output's classes (its last dimension, or 0 and 1 for a single unit); Keras ignores
/// a class out of range, rkeras refuses it as the mistake it almost always is.
fn class_weights(
    context: &str,
    classes: &[(usize, f32)],
    y: &Arrays,
    output_shapes: &[Vec<usize>],
) -> Result<Tensor> {
    let ([target], [shape]) = (y.tensors(), output_shapes) else {
        return Err(Error::Config(format!(
            "{context}: `class_weight` is only supported for models with a single output"
        )));
    };
    let count = match shape.last() {
        Some(&units) if units > 1 => units,
        _ => 2,
    };
    for (i, &(class, _)) in classes.iter().enumerate() {
        if class >= count {
            return Err(Error::Config(format!(
                "{context}: `class_weight` names class {class}, but the model's output has \
                 {count} classes (0 to {})",
                count - 1
            )));
        }
        if classes[..i].iter().any(|&(c, _)| c == class) {
            return Err(Error::Config(format!(
                "{context}: `class_weight` lists class {class} twice"
            )));
        }
    }
    let labels = sample_labels(context, target)?;
    let weights: Vec<f32> = labels
        .iter()
        .map(|&label| {
            classes
                .iter()
                .find(|&&(class, _)| label == class as f64)
                .map_or(1.0, |&(_, weight)| weight)
        })
        .collect();
    Ok(Tensor::from_vec(weights, labels.len(), &Device::Cpu)?)
}

/// Each sample's class as Keras reads it from the targets: argmax over a last axis of more than
/// one, else the label; rounded. One per sample, or an error.
fn sample_labels(context: &str, y: &Tensor) -> Result<Vec<f64>> {
    let y = y.to_device(&Device::Cpu)?.to_dtype(DType::F64)?;
    let labels = match y.dims() {
        [_] => y,
        [_, 1] => y.squeeze(1)?,
        [_, _] => y.argmax(D::Minus1)?.to_dtype(DType::F64)?,
        dims => {
            return Err(Error::Shape {
                context: format!("{context}: class_weight"),
                expected: "targets with one class per sample (labels, or one-hot rows)".into(),
                got: format!("targets shaped {dims:?}"),
            })
        }
    };
    Ok(labels
        .to_vec1::<f64>()?
        .into_iter()
        .map(f64::round_ties_even)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(values: &[f32], shape: &[usize]) -> Tensor {
        Tensor::from_slice(values, shape, &Device::Cpu).unwrap()
    }

    fn weights_of(w: &Weighting, y: &Tensor, outputs: &[Vec<usize>]) -> Result<Vec<Vec<f32>>> {
        let rows = y.dim(0)?;
        let arrays = w.resolve("fit", &Arrays::from(y), rows, outputs)?;
        let arrays = arrays.map(|a| a.tensors().to_vec()).unwrap_or_default();
        arrays
            .iter()
            .map(|t| Ok(t.flatten_all()?.to_vec1::<f32>()?))
            .collect()
    }

    fn classes(pairs: &[(usize, f32)]) -> Weighting {
        Weighting {
            sample_weight: None,
            class_weight: Some(pairs.to_vec()),
        }
    }

    fn message<T>(result: Result<T>) -> String {
        result.err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn class_weights_read_one_hot_sparse_and_binary_targets_as_keras() -> Result<()> {
        let weighting = classes(&[(0, 0.5), (2, 4.0)]);
        // One-hot rows: argmax 2, 1, 0; class 1 is not listed (weight 1).
        let one_hot = tensor(&[0., 0., 1., 0., 1., 0., 1., 0., 0.], &[3, 3]);
        let three = [vec![1, 3]];
        assert_eq!(weights_of(&weighting, &one_hot, &three)?, [[4.0, 1.0, 0.5]]);
        // Sparse labels, with or without a trailing 1, rounded.
        let labels = tensor(&[2., 0., 1.], &[3, 1]);
        assert_eq!(weights_of(&weighting, &labels, &three)?, [[4.0, 0.5, 1.0]]);
        let labels = Tensor::new(&[1u32, 2, 2], &Device::Cpu)?;
        assert_eq!(weights_of(&weighting, &labels, &three)?, [[1.0, 4.0, 4.0]]);
        // A single sigmoid unit: 0/1 targets (0.9 rounds to 1).
        let binary = tensor(&[0., 1., 0.9], &[3, 1]);
        let weighting = classes(&[(1, 3.0)]);
        assert_eq!(
            weights_of(&weighting, &binary, &[vec![1, 1]])?,
            [[1.0, 3.0, 3.0]]
        );
        Ok(())
    }

    #[test]
    fn one_sample_weight_array_serves_every_output() -> Result<()> {
        let y = tensor(&[0.; 3], &[3, 1]);
        let w = Weighting {
            sample_weight: Some(Arrays::from(tensor(&[1., 2., 3.], &[3, 1]))),
            class_weight: None,
        };
        let outputs = [vec![1, 1], vec![1, 4]];
        assert_eq!(
            weights_of(&w, &y, &outputs)?,
            [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]
        );
        Ok(())
    }

    #[test]
    fn bad_weights_are_errors_naming_the_argument() {
        let y = tensor(&[0., 1., 1.], &[3, 1]);
        let binary = [vec![1, 1]];
        let sample = |w: Tensor| Weighting {
            sample_weight: Some(Arrays::from(w)),
            class_weight: None,
        };
        let short = message(weights_of(&sample(tensor(&[1., 1.], &[2])), &y, &binary));
        assert!(
            short.contains("sample_weight") && short.contains("3"),
            "{short}"
        );
        let both = Weighting {
            sample_weight: Some(Arrays::from(tensor(&[1.; 3], &[3]))),
            class_weight: Some(vec![(0, 1.0)]),
        };
        let both = message(weights_of(&both, &y, &binary));
        assert!(
            both.contains("class_weight") && both.contains("sample_weight"),
            "{both}"
        );
        let range = message(weights_of(&classes(&[(2, 1.0)]), &y, &binary));
        assert!(
            range.contains("class 2") && range.contains("2 classes"),
            "{range}"
        );
        let twice = message(weights_of(&classes(&[(1, 1.0), (1, 2.0)]), &y, &binary));
        assert!(twice.contains("twice"), "{twice}");
        let two_outputs = [vec![1, 1], vec![1, 1]];
        let multi = message(weights_of(&classes(&[(1, 1.0)]), &y, &two_outputs));
        assert!(multi.contains("single output"), "{multi}");
        let temporal = message(weights_of(&sample(tensor(&[1.; 6], &[3, 2])), &y, &binary));
        assert!(temporal.contains("sample_weight"), "{temporal}");
        let per_step = sample(tensor(&[1.; 6], &[3, 2]));
        let several = message(weights_of(&per_step, &y, &two_outputs));
        assert!(several.contains("one array per output"), "{several}");
        let sequences = tensor(&[0.; 12], &[3, 2, 2]);
        let sequence_output = [vec![1, 2, 2]];
        let labels = message(weights_of(
            &classes(&[(1, 1.0)]),
            &sequences,
            &sequence_output,
        ));
        assert!(labels.contains("one class per sample"), "{labels}");
        // Per-timestep weights fit an output of timesteps.
        assert!(weights_of(&per_step, &sequences, &sequence_output).is_ok());
    }
}
