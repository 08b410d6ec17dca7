//! Per-sample metric values, after `keras/src/metrics/accuracy_metrics.py` and
//! `keras/src/losses/losses.py` (the functions `MeanMetricWrapper` averages).

use crate::losses::sparse_categorical_crossentropy::squeeze_labels;
use crate::{Error, Result};
use candle_core::{DType, Tensor, D};

/// A function from `(y_true, y_pred)` to one value per sample (or per element; the wrapper
/// averages any trailing axes per sample).
pub type SampleValuesFn = fn(&Tensor, &Tensor) -> Result<Tensor>;

fn same_shape(metric: &str, y_true: &Tensor, y_pred: &Tensor) -> Result<(Tensor, Tensor)> {
    let (t, p) = crate::losses::reduction::align_targets(metric, y_true, y_pred)?;
    Ok((t, p))
}

/// `y_true == (y_pred > 0.5)`, elementwise.
pub fn binary_accuracy(y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    let (y, p) = same_shape("binary_accuracy", y_true, y_pred)?;
    let predicted = p.gt(0.5)?.to_dtype(y.dtype())?;
    Ok(y.eq(&predicted)?.to_dtype(DType::F32)?)
}

/// `argmax(y_true) == argmax(y_pred)` over the last axis, for one-hot targets.
pub fn categorical_accuracy(y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    if y_true.dims() != y_pred.dims() || y_pred.rank() == 0 {
        return Err(Error::Shape {
            context: "metric categorical_accuracy".into(),
            expected: format!("one-hot targets of the shape of y_pred {:?}", y_pred.dims()),
            got: format!("{:?}", y_true.dims()),
        });
    }
    let t = y_true.argmax(D::Minus1)?;
    let p = y_pred.argmax(D::Minus1)?;
    Ok(t.eq(&p)?.to_dtype(DType::F32)?)
}

/// `y_true == argmax(y_pred)` over the last axis, for integer labels.
pub fn sparse_categorical_accuracy(y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    if y_pred.rank() == 0 {
        return Err(Error::Shape {
            context: "metric sparse_categorical_accuracy".into(),
            expected: "y_pred of rank 1 or more".into(),
            got: "a scalar".into(),
        });
    }
    let labels = squeeze_labels("metric sparse_categorical_accuracy", y_true, y_pred)?;
    let predicted = y_pred.argmax(D::Minus1)?.to_dtype(DType::F64)?;
    Ok(labels
        .to_dtype(DType::F64)?
        .eq(&predicted)?
        .to_dtype(DType::F32)?)
}

/// `abs(y_true - y_pred)`, elementwise.
pub fn mean_absolute_error(y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    let (y, p) = same_shape("mean_absolute_error", y_true, y_pred)?;
    Ok((y - p)?.abs()?)
}

/// `square(y_true - y_pred)`, elementwise.
pub fn mean_squared_error(y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    let (y, p) = same_shape("mean_squared_error", y_true, y_pred)?;
    Ok((y - p)?.sqr()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn values(t: Tensor) -> Result<Vec<f32>> {
        Ok(t.flatten_all()?.to_vec1::<f32>()?)
    }

    #[test]
    fn accuracies_compare_as_keras_does() -> Result<()> {
        let cpu = &Device::Cpu;
        let y = Tensor::new(&[[1f32], [0.], [1.]], cpu)?;
        let p = Tensor::new(&[[0.7f32], [0.5], [0.2]], cpu)?; // 0.5 is not > 0.5
        assert_eq!(values(binary_accuracy(&y, &p)?)?, [1., 1., 0.]);
        let onehot = Tensor::new(&[[0f32, 1., 0.], [1., 0., 0.]], cpu)?;
        let scores = Tensor::new(&[[0.1f32, 0.7, 0.2], [0.3, 0.6, 0.1]], cpu)?;
        assert_eq!(values(categorical_accuracy(&onehot, &scores)?)?, [1., 0.]);
        let labels = Tensor::new(&[1i64, 1], cpu)?;
        assert_eq!(
            values(sparse_categorical_accuracy(&labels, &scores)?)?,
            [1., 1.]
        );
        let column = Tensor::new(&[[2f32], [0.]], cpu)?;
        assert_eq!(
            values(sparse_categorical_accuracy(&column, &scores)?)?,
            [0., 0.]
        );
        assert!(categorical_accuracy(&labels, &scores).is_err());
        Ok(())
    }
}
