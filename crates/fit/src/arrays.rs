//! `Arrays`: the data `fit`, `evaluate` and `predict` take, one array per model input (or
//! target, one per model output), as Keras takes an array or a list of arrays.

use candle_core::Tensor;

use crate::{Error, Result};

/// One array or several, each with its samples along the first axis: `&x`, `[&x1, &x2]`,
/// `vec![x1, x2]`. Cloning a tensor shares its storage, so this holds no copy of the data.
#[derive(Debug, Clone)]
pub struct Arrays(Vec<Tensor>);

impl Arrays {
    /// The arrays, in order.
    pub fn tensors(&self) -> &[Tensor] {
        &self.0
    }

    /// How many arrays there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The number of samples, the same in every array; an error naming `argument` (`x`, `y`,
    /// `validation_data`) otherwise, or when there are none.
    pub fn samples(&self, argument: &str) -> Result<usize> {
        let counts: Vec<usize> = self
            .0
            .iter()
            .map(|t| t.dims().first().copied().unwrap_or(0))
            .collect();
        match counts.first() {
            Some(&n) if n > 0 && counts.iter().all(|&c| c == n) => Ok(n),
            _ => Err(Error::Shape {
                context: argument.to_string(),
                expected: "arrays with the same, non-zero number of samples".into(),
                got: format!(
                    "{:?}",
                    self.0.iter().map(|t| t.dims().to_vec()).collect::<Vec<_>>()
                ),
            }),
        }
    }

    /// Rows `start..start + len` of every array.
    pub(crate) fn rows(&self, start: usize, len: usize) -> Result<Arrays> {
        Ok(Arrays(
            self.0
                .iter()
                .map(|t| t.narrow(0, start, len))
                .collect::<candle_core::Result<_>>()?,
        ))
    }
}

impl From<Tensor> for Arrays {
    fn from(t: Tensor) -> Self {
        Arrays(vec![t])
    }
}

impl From<&Tensor> for Arrays {
    fn from(t: &Tensor) -> Self {
        Arrays(vec![t.clone()])
    }
}

impl From<&Arrays> for Arrays {
    fn from(a: &Arrays) -> Self {
        a.clone()
    }
}

impl From<Vec<Tensor>> for Arrays {
    fn from(ts: Vec<Tensor>) -> Self {
        Arrays(ts)
    }
}

impl From<&[Tensor]> for Arrays {
    fn from(ts: &[Tensor]) -> Self {
        Arrays(ts.to_vec())
    }
}

impl<const N: usize> From<[Tensor; N]> for Arrays {
    fn from(ts: [Tensor; N]) -> Self {
        Arrays(ts.to_vec())
    }
}

impl<const N: usize> From<[&Tensor; N]> for Arrays {
    fn from(ts: [&Tensor; N]) -> Self {
        Arrays(ts.iter().map(|t| (*t).clone()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn counts_samples_across_arrays_and_refuses_disagreements() {
        let a = Tensor::zeros((4, 3), DType::F32, &Device::Cpu).unwrap();
        let b = Tensor::zeros((4, 2, 2), DType::F32, &Device::Cpu).unwrap();
        let c = Tensor::zeros((5, 3), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(Arrays::from([&a, &b]).samples("x").unwrap(), 4);
        let err = Arrays::from([&a, &c]).samples("x").unwrap_err().to_string();
        assert!(
            err.contains("x") && err.contains("[4, 3]") && err.contains("[5, 3]"),
            "{err}"
        );
        assert!(Arrays::from(Vec::new()).samples("y").is_err());
        let rows = Arrays::from([&a, &b]).rows(1, 2).unwrap();
        assert_eq!(rows.tensors()[1].dims(), &[2, 2, 2]);
    }
}
