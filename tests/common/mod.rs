//! Helpers the integration tests share.

use rkeras::prelude::*;

/// Every weight of `model`, flattened, in `model.weights()` order.
pub fn weights_of(model: &Model) -> rkeras::Result<Vec<Vec<f32>>> {
    model
        .weights()
        .iter()
        .map(|w| Ok(w.var.as_tensor().flatten_all()?.to_vec1::<f32>()?))
        .collect()
}
