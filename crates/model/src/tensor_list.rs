//! `TensorList`: one symbolic tensor or several, as `Model::new` takes its inputs and outputs.

use rkeras_layers::SymbolicTensor;

/// The inputs or outputs of a model: one symbolic tensor, or several in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorList(pub Vec<SymbolicTensor>);

impl From<SymbolicTensor> for TensorList {
    fn from(t: SymbolicTensor) -> Self {
        TensorList(vec![t])
    }
}

impl From<Vec<SymbolicTensor>> for TensorList {
    fn from(ts: Vec<SymbolicTensor>) -> Self {
        TensorList(ts)
    }
}

impl From<&[SymbolicTensor]> for TensorList {
    fn from(ts: &[SymbolicTensor]) -> Self {
        TensorList(ts.to_vec())
    }
}

impl<const N: usize> From<[SymbolicTensor; N]> for TensorList {
    fn from(ts: [SymbolicTensor; N]) -> Self {
        TensorList(ts.to_vec())
    }
}
