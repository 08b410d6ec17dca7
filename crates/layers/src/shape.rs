//! Symbolic shapes: dimensions that may be unknown (the batch, usually), printed as Keras does.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A tensor shape whose dimensions may be unknown (`None`), batch first, channels last.
///
/// Displays as Keras prints shapes: `(None, 28, 28, 1)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SymbolicShape(pub Vec<Option<usize>>);

impl SymbolicShape {
    /// A shape with an unknown batch dimension followed by `dims`.
    pub fn batched(batch: Option<usize>, dims: &[usize]) -> Self {
        let mut all = Vec::with_capacity(dims.len() + 1);
        all.push(batch);
        all.extend(dims.iter().map(|&d| Some(d)));
        SymbolicShape(all)
    }

    /// The number of dimensions, batch included.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// The dimensions.
    pub fn dims(&self) -> &[Option<usize>] {
        &self.0
    }

    /// The batch dimension (the first), if the shape has one and it is fixed.
    pub fn batch(&self) -> Option<usize> {
        self.0.first().copied().flatten()
    }

    /// The last dimension, if known.
    pub fn last(&self) -> Option<usize> {
        self.0.last().copied().flatten()
    }

    /// The dimensions after the batch, all known, or `None` if one is not.
    pub fn known_features(&self) -> Option<Vec<usize>> {
        self.0.iter().skip(1).copied().collect()
    }

    /// The same shape with another batch dimension.
    pub fn with_batch(&self, batch: Option<usize>) -> Self {
        let mut dims = self.0.clone();
        if let Some(first) = dims.first_mut() {
            *first = batch;
        }
        SymbolicShape(dims)
    }

    /// Whether a concrete shape fits this one: same rank, and equal wherever this one is known.
    pub fn accepts(&self, concrete: &[usize]) -> bool {
        self.0.len() == concrete.len()
            && self
                .0
                .iter()
                .zip(concrete)
                .all(|(expected, &got)| expected.is_none_or(|e| e == got))
    }
}

impl fmt::Display for SymbolicShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|d| d.map_or_else(|| "None".to_string(), |d| d.to_string()))
            .collect();
        if parts.len() == 1 {
            write!(f, "({},)", parts[0])
        } else {
            write!(f, "({})", parts.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_like_python_tuples() {
        assert_eq!(
            SymbolicShape::batched(None, &[28, 28, 1]).to_string(),
            "(None, 28, 28, 1)"
        );
        assert_eq!(SymbolicShape(vec![None]).to_string(), "(None,)");
        assert_eq!(
            SymbolicShape::batched(Some(16), &[49]).to_string(),
            "(16, 49)"
        );
    }

    #[test]
    fn accepts_concrete_shapes_that_fit() {
        let shape = SymbolicShape::batched(None, &[28, 28, 1]);
        assert!(shape.accepts(&[5, 28, 28, 1]));
        assert!(!shape.accepts(&[5, 28, 28]));
        assert!(!shape.accepts(&[5, 28, 27, 1]));
        assert!(!SymbolicShape::batched(Some(16), &[4]).accepts(&[15, 4]));
    }
}
