//! The axes a normalization runs over, and its input seen as a `(rows, cols)` matrix whose
//! columns run over those axes (moved last, in order) and rows over the others, as the
//! kernels of `rkeras_ops` take it.

use candle_core::Tensor;

use crate::{Error, Result};

/// Keras's `axis` (negative counts from the end) on an input of `rank` dimensions, batch
/// included, or an error naming `layer`: the batch axis (0) has no fixed size to normalize
/// over or to size the weights by.
pub(super) fn resolve_axis(layer: &str, axis: i64, rank: usize) -> Result<usize> {
    let resolved = if axis < 0 { axis + rank as i64 } else { axis };
    if resolved < 1 || resolved >= rank as i64 {
        return Err(Error::config(
            layer,
            format!(
                "axis {axis} is out of range for an input of rank {rank} (axis 0, the batch, \
                 cannot be normalized over)"
            ),
        ));
    }
    Ok(resolved as usize)
}

/// Keras's `axis` list (see [`resolve_axis`]) on an input of `rank` dimensions: resolved,
/// sorted and distinct, or an error naming `layer`.
pub(super) fn resolve_axes(layer: &str, axes: &[i64], rank: usize) -> Result<Vec<usize>> {
    let mut resolved = axes
        .iter()
        .map(|&axis| resolve_axis(layer, axis, rank))
        .collect::<Result<Vec<_>>>()?;
    resolved.sort_unstable();
    if resolved.windows(2).any(|pair| pair[0] == pair[1]) {
        return Err(Error::config(layer, format!("duplicate axes in {axes:?}")));
    }
    Ok(resolved)
}

/// An input of fixed dims seen as a `(rows, cols)` matrix, `cols` running over `axes`.
pub(super) struct RowLayout {
    dims: Vec<usize>,
    /// The order to permute the input's axes into when `axes` are not already the last ones.
    order: Option<Vec<usize>>,
    rows: usize,
    cols: usize,
}

impl RowLayout {
    /// The layout of an input of `dims` normalized over `axes` (sorted, each below the rank).
    pub(super) fn new(dims: &[usize], axes: &[usize]) -> Self {
        let rest = (0..dims.len()).filter(|a| !axes.contains(a));
        let order: Vec<usize> = rest.clone().chain(axes.iter().copied()).collect();
        let moved = order.iter().enumerate().any(|(i, &a)| i != a);
        RowLayout {
            dims: dims.to_vec(),
            order: moved.then_some(order),
            rows: rest.map(|a| dims[a]).product(),
            cols: axes.iter().map(|&a| dims[a]).product(),
        }
    }

    /// `t` (of the input's dims) as the `(rows, cols)` matrix: a reshape when the axes are
    /// already last, a permuted copy otherwise.
    pub(super) fn to_rows(&self, t: &Tensor) -> Result<Tensor> {
        let t = match &self.order {
            Some(order) => t.permute(order.clone())?.contiguous()?,
            None => t.clone(),
        };
        Ok(t.reshape((self.rows, self.cols))?)
    }

    /// The `(rows, cols)` matrix `t` back in the input's dims.
    pub(super) fn to_input_dims(&self, t: &Tensor) -> Result<Tensor> {
        let Some(order) = &self.order else {
            return Ok(t.reshape(self.dims.as_slice())?);
        };
        let permuted: Vec<usize> = order.iter().map(|&a| self.dims[a]).collect();
        let mut inverse = vec![0; order.len()];
        for (position, &axis) in order.iter().enumerate() {
            inverse[axis] = position;
        }
        Ok(t.reshape(permuted)?.permute(inverse)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn axes_count_from_the_end_and_never_reach_the_batch() {
        assert_eq!(resolve_axis("bn", -1, 4).unwrap(), 3);
        assert_eq!(resolve_axis("bn", 1, 4).unwrap(), 1);
        for bad in [0, 4, -4, -5] {
            let err = resolve_axis("bn", bad, 4).unwrap_err().to_string();
            assert!(
                err.contains("'bn'") && err.contains("out of range"),
                "{err}"
            );
        }
    }

    #[test]
    fn rows_run_over_the_other_axes_and_come_back_in_place() -> Result<()> {
        let x = Tensor::arange(0f32, 24.0, &Device::Cpu)?.reshape((2, 3, 4))?;
        // The last axis: a plain reshape.
        let last = RowLayout::new(&[2, 3, 4], &[2]);
        assert_eq!(last.to_rows(&x)?.dims(), &[6, 4]);
        // Axis 1 (3 channels): each column one channel, 8 rows.
        let middle = RowLayout::new(&[2, 3, 4], &[1]);
        let rows = middle.to_rows(&x)?;
        assert_eq!(rows.dims(), &[8, 3]);
        assert_eq!(rows.get(1)?.to_vec1::<f32>()?, [1.0, 5.0, 9.0]);
        assert_eq!(
            middle.to_input_dims(&rows)?.to_vec3::<f32>()?,
            x.to_vec3::<f32>()?
        );
        // Axes 1 and 2: one row per sample.
        let both = RowLayout::new(&[2, 3, 4], &[1, 2]);
        assert_eq!(both.to_rows(&x)?.dims(), &[2, 12]);
        Ok(())
    }
}
