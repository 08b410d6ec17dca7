//! An optimizer's state read back from a checkpoint: named tensors, checked to be exactly the
//! ones the optimizer saves.

use crate::{Error, Result};
use candle_core::Tensor;
use std::collections::HashMap;

/// A saved optimizer state by name, holding each expected name once and nothing else.
pub(crate) struct SavedState<'a>(HashMap<&'a str, &'a Tensor>);

impl<'a> SavedState<'a> {
    /// `state` by name, or an error naming what `optimizer` expected for `variables` variables
    /// unless it holds exactly the `expected` names, once each.
    pub(crate) fn new(
        optimizer: &str,
        variables: usize,
        expected: &[String],
        state: &'a [(String, Tensor)],
    ) -> Result<Self> {
        let by_name: HashMap<&str, &Tensor> = state.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let mut found: Vec<&str> = by_name.keys().copied().collect();
        found.sort_unstable();
        let mut wanted: Vec<&str> = expected.iter().map(String::as_str).collect();
        wanted.sort_unstable();
        if found != wanted || by_name.len() != state.len() {
            return Err(Error::Config(format!(
                "optimizer {optimizer}: state for {variables} variables must hold exactly [{}], got [{}]",
                expected.join(", "),
                state
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(Self(by_name))
    }

    /// The tensor saved as `name`.
    pub(crate) fn get(&self, name: &str) -> Result<&'a Tensor> {
        self.0
            .get(name)
            .copied()
            .ok_or_else(|| Error::Config(format!("optimizer state lacks {name}")))
    }
}
