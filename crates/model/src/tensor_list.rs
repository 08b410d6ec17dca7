//! `TensorList`: one symbolic tensor or several, as `Model::new` takes its inputs and outputs.

use rkeras_layers::SymbolicTensor;

/// The inputs or outputs of a model: one symbolic tensor, or several in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorList(pub Vec<SymbolicTensor>);

impl From<SymbolicTensor> for TensorList {
    /// One tensor, or the items of a list tensor.
    fn from(t: SymbolicTensor) -> Self {
        TensorList(t.items())
    }
}

impl From<&[SymbolicTensor]> for TensorList {
    /// The tensors in order (the items of any list among them in its place).
    fn from(ts: &[SymbolicTensor]) -> Self {
        TensorList(ts.iter().flat_map(SymbolicTensor::items).collect())
    }
}

impl From<Vec<SymbolicTensor>> for TensorList {
    fn from(ts: Vec<SymbolicTensor>) -> Self {
        TensorList::from(ts.as_slice())
    }
}

impl<const N: usize> From<[SymbolicTensor; N]> for TensorList {
    fn from(ts: [SymbolicTensor; N]) -> Self {
        TensorList::from(ts.as_slice())
    }
}
