//! Rows of a tensor picked by index: a shuffled training batch.

use candle_core::Tensor;

use crate::dense::write_rows;
use crate::error::OpsError;
use crate::storage::CpuView;

/// Name used in messages.
const OP: &str = "gather_rows";

/// The rows `indices` of `data` (along axis 0), in that order, as a new contiguous tensor: what
/// `data.index_select(indices, 0)` gives, copied a whole row at a time and split over threads for
/// an f32 CPU tensor (candle's `index_select` copies on one thread), by candle's `index_select`
/// otherwise. An index past the last row is an error.
pub fn gather_rows(data: &Tensor, indices: &[u32]) -> candle_core::Result<Tensor> {
    let dims = data.dims();
    let Some(&rows) = dims.first() else {
        return Err(OpsError::Config {
            op: OP,
            reason: "gathering rows needs a tensor of rank 1 or more, got a scalar".into(),
        }
        .into());
    };
    if let Some(&bad) = indices.iter().find(|&&i| i as usize >= rows) {
        return Err(OpsError::Config {
            op: OP,
            reason: format!("row index {bad} is out of range for a tensor of {rows} rows"),
        }
        .into());
    }
    if !data.device().is_cpu() || data.dtype() != candle_core::DType::F32 {
        let ids = Tensor::from_slice(indices, indices.len(), data.device())?;
        return data.index_select(&ids, 0);
    }
    let row_len: usize = dims[1..].iter().product();
    let view = CpuView::of(OP, "data", data)?;
    let source = view.f32()?;
    // SAFETY: every task copies a whole source row into each of its rows, writing every cell.
    let (gathered, _) = unsafe {
        write_rows(indices.len() * row_len, row_len.max(1), |rows, out| {
            for (&index, row) in indices[rows].iter().zip(out.chunks_exact_mut(row_len)) {
                let from = &source[index as usize * row_len..][..row_len];
                std::ptr::copy_nonoverlapping(from.as_ptr(), row.as_mut_ptr().cast(), row_len);
            }
        })
    };
    let mut shape = dims.to_vec();
    shape[0] = indices.len();
    Tensor::from_vec(gathered, shape, data.device())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn picks_the_rows_in_the_order_given_like_index_select() -> candle_core::Result<()> {
        let data = Tensor::arange(0f32, 24., &Device::Cpu)?.reshape((4, 3, 2))?;
        let picked = gather_rows(&data, &[2, 0, 2, 3])?;
        let ids = Tensor::new(&[2u32, 0, 2, 3], &Device::Cpu)?;
        let expected = data.index_select(&ids, 0)?;
        assert_eq!(picked.dims(), &[4, 3, 2]);
        assert_eq!(
            picked.flatten_all()?.to_vec1::<f32>()?,
            expected.flatten_all()?.to_vec1::<f32>()?
        );
        assert_eq!(
            picked.get(1)?.flatten_all()?.to_vec1::<f32>()?,
            vec![0., 1., 2., 3., 4., 5.]
        );
        // Large enough to be split over threads; other dtypes go through candle.
        let big = Tensor::arange(0f32, 70_000., &Device::Cpu)?.reshape((1000, 70))?;
        let order: Vec<u32> = (0..1000).rev().collect();
        let picked = gather_rows(&big, &order)?;
        assert_eq!(picked.get(0)?.to_vec1::<f32>()?[0], 999. * 70.);
        assert_eq!(picked.get(999)?.to_vec1::<f32>()?[69], 69.);
        let ints = Tensor::new(&[[1u32], [2], [3]], &Device::Cpu)?;
        assert_eq!(
            gather_rows(&ints, &[2, 2])?.to_vec2::<u32>()?,
            vec![vec![3], vec![3]]
        );
        Ok(())
    }

    #[test]
    fn refuses_an_index_past_the_last_row_and_a_scalar() -> candle_core::Result<()> {
        let data = Tensor::zeros((3, 2), DType::F32, &Device::Cpu)?;
        let err = gather_rows(&data, &[0, 3]).unwrap_err().to_string();
        assert!(
            err.contains("row index 3") && err.contains("3 rows"),
            "{err}"
        );
        let scalar = Tensor::new(1f32, &Device::Cpu)?;
        assert!(gather_rows(&scalar, &[0]).is_err());
        Ok(())
    }
}
