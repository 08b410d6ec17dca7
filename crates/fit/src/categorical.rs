//! `to_categorical`: class indices to one-hot rows, as Keras's `keras.utils.to_categorical`
//! (`keras/src/utils/numerical_utils.py`).

use candle_core::{DType, Tensor};

use crate::{Error, Result};

/// One-hot rows for the class indices in `y` (Keras's `to_categorical(y, num_classes)`), for
/// `categorical_crossentropy`: shape `y`'s shape plus `num_classes` (a trailing dimension of 1
/// is dropped first: `(n, 1)` gives `(n, num_classes)`), `f32` (Keras's NumPy path gives
/// float64; models compute in f32), on `y`'s device.
///
/// `y` may have any dtype; its values are cast to integers as Keras's `np.array(y, "int64")`
/// casts them (toward zero). With `num_classes` `None` (or 0, as Keras reads any false value)
/// it is the largest index plus one. A negative, non-finite or too large index is an error.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use rkeras_fit::to_categorical;
///
/// # fn main() -> rkeras_fit::Result<()> {
/// let y = Tensor::new(&[0u8, 2, 1], &Device::Cpu)?;
/// let one_hot = to_categorical(&y, 3)?;
/// assert_eq!(one_hot.to_vec2::<f32>()?, [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]);
/// assert_eq!(to_categorical(&y, None)?.dims(), [3, 3]);
/// # Ok(())
/// # }
/// ```
pub fn to_categorical(y: &Tensor, num_classes: impl Into<Option<usize>>) -> Result<Tensor> {
    let mut shape = y.dims().to_vec();
    if shape.len() > 1 && shape.last() == Some(&1) {
        shape.pop();
    }
    let labels = class_indices(y)?;
    let classes = match num_classes.into() {
        Some(n) if n > 0 => n,
        _ => labels.iter().max().map(|&m| m + 1).ok_or_else(|| {
            invalid("num_classes cannot be inferred from no labels: give it".into())
        })?,
    };
    if let Some((i, label)) = labels.iter().enumerate().find(|(_, &l)| l >= classes) {
        return Err(invalid(format!(
            "label {label} (at position {i}) is not below num_classes {classes}"
        )));
    }
    let total = labels
        .len()
        .checked_mul(classes)
        .ok_or_else(|| invalid(format!("{} rows of {classes} classes", labels.len())))?;
    let mut values: Vec<f32> = Vec::new();
    values
        .try_reserve_exact(total)
        .map_err(|_| invalid(format!("{total} values do not fit in memory")))?;
    values.resize(total, 0.0);
    for (row, &label) in labels.iter().enumerate() {
        values[row * classes + label] = 1.0;
    }
    shape.push(classes);
    Ok(Tensor::from_vec(values, shape, y.device())?)
}

/// The class index of each value of `y`, cast toward zero.
fn class_indices(y: &Tensor) -> Result<Vec<usize>> {
    let values = y.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let index = v.trunc();
            if index.is_finite() && index >= 0.0 && index <= usize::MAX as f64 {
                Ok(index as usize)
            } else {
                Err(invalid(format!(
                    "label {v} (at position {i}) is not a class index"
                )))
            }
        })
        .collect()
}

fn invalid(message: String) -> Error {
    Error::Config(format!("to_categorical: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn drops_a_trailing_one_and_keeps_other_dimensions() {
        let column = Tensor::new(&[[1i64], [0]], &Device::Cpu).unwrap();
        let one_hot = to_categorical(&column, 2).unwrap();
        assert_eq!(one_hot.to_vec2::<f32>().unwrap(), [[0.0, 1.0], [1.0, 0.0]]);
        let grid = Tensor::new(&[[0u32, 1], [1, 1]], &Device::Cpu).unwrap();
        assert_eq!(to_categorical(&grid, None).unwrap().dims(), [2, 2, 2]);
        let scalar = Tensor::new(2f32, &Device::Cpu).unwrap();
        assert_eq!(
            to_categorical(&scalar, 0)
                .unwrap()
                .to_vec1::<f32>()
                .unwrap(),
            [0.0, 0.0, 1.0]
        );
    }

    #[test]
    fn casts_toward_zero_and_refuses_what_is_no_class() {
        let y = Tensor::new(&[1.7f32, 0.2], &Device::Cpu).unwrap();
        assert_eq!(
            to_categorical(&y, 2).unwrap().to_vec2::<f32>().unwrap(),
            [[0.0, 1.0], [1.0, 0.0]]
        );
        for (values, expected) in [
            (
                vec![0f32, -1.0],
                "label -1 (at position 1) is not a class index",
            ),
            (
                vec![f32::NAN],
                "label NaN (at position 0) is not a class index",
            ),
            (
                vec![3.0],
                "label 3 (at position 0) is not below num_classes 3",
            ),
        ] {
            let y = Tensor::new(values.as_slice(), &Device::Cpu).unwrap();
            let err = to_categorical(&y, 3).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
        let empty = Tensor::zeros(0, DType::U8, &Device::Cpu).unwrap();
        assert!(to_categorical(&empty, None).is_err());
        assert_eq!(to_categorical(&empty, 4).unwrap().dims(), [0, 4]);
    }
}
