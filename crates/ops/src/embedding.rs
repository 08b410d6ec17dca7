//! Embedding lookups: rows of a table picked by index, and the scatter-add of their gradients.

use candle_core::{DType, Device, Tensor};

use crate::check::expect_f32_rank;
use crate::dense::write_rows;
use crate::error::OpsError;
use crate::gather::gather_rows;
use crate::storage::CpuView;

/// Name used in messages.
const OP: &str = "embedding";

/// The row indices `indices` holds, in row-major order: integers, or floats truncated toward
/// zero (as Keras casts them to int32; a float32 holds every integer below 2²⁴ exactly), each
/// checked to be a row of a table of `rows` rows. Read on the CPU, whatever the device.
pub fn embedding_indices(indices: &Tensor, rows: usize) -> candle_core::Result<Vec<u32>> {
    let values = indices
        .flatten_all()?
        .to_device(&Device::Cpu)?
        .to_dtype(DType::F64)?
        .to_vec1::<f64>()?;
    values
        .into_iter()
        .map(|value| {
            let index = value.trunc();
            if index >= 0.0 && index < rows as f64 {
                Ok(index as u32)
            } else {
                Err(OpsError::Config {
                    op: OP,
                    reason: format!(
                        "index {value} is out of range for a table of {rows} rows (0 to {})",
                        rows.saturating_sub(1)
                    ),
                }
                .into())
            }
        })
        .collect()
}

/// The rows `indices` of `table` (rows, dim), shaped `index_dims` + (dim): Keras's
/// `Embedding` lookup. The indices must be in range (see [`embedding_indices`]) and as many as
/// `index_dims` holds.
///
/// Copied a whole row at a time, split over threads, on the CPU (a table tracked by candle's
/// autograd, or on another device, goes through candle's differentiable `index_select`).
pub fn embedding(
    table: &Tensor,
    indices: &[u32],
    index_dims: &[usize],
) -> candle_core::Result<Tensor> {
    let dims = expect_f32_rank(OP, "table", table, 2)?;
    let (rows, dim) = (dims[0], dims[1]);
    check_indices(indices, index_dims, rows)?;
    let mut out_dims = index_dims.to_vec();
    out_dims.push(dim);
    let picked = if crate::kernels_on(table.device()) && !table.track_op() {
        gather_rows(table, indices)?
    } else {
        let ids = Tensor::from_slice(indices, indices.len(), table.device())?;
        table.index_select(&ids, 0)?
    };
    picked.reshape(out_dims)
}

/// The gradient of [`embedding`]'s table, (rows, dim): each row of `grad_output`
/// (`index_dims` + (dim)) added to the table row its index picked, in the order of the indices
/// (so the sums are the same on every run and on any number of threads). Nothing is recorded
/// for candle's autograd; CPU tensors only.
pub fn embedding_backward(
    grad_output: &Tensor,
    indices: &[u32],
    rows: usize,
) -> candle_core::Result<Tensor> {
    let dims = grad_output.dims();
    let Some((&dim, index_dims)) = dims.split_last() else {
        return Err(OpsError::Config {
            op: OP,
            reason: "the output gradient must have an embedding axis, got a scalar".into(),
        }
        .into());
    };
    check_indices(indices, index_dims, rows)?;
    let view = CpuView::of(OP, "output gradient", grad_output)?;
    let dy = view.f32()?;
    // Each task owns a range of table rows: it zeroes them, then adds, in index order, the
    // gradient rows of the indices that fall in its range.
    // SAFETY: every task writes every cell of its rows (zeros first) before adding to them.
    let (grad, _) = unsafe {
        write_rows(rows * dim, dim.max(1), |range, out| {
            for cell in out.iter_mut() {
                cell.write(0.0);
            }
            let out = std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<f32>(), out.len());
            for (&index, dy_row) in indices.iter().zip(dy.chunks_exact(dim.max(1))) {
                let index = index as usize;
                if range.contains(&index) {
                    let row = &mut out[(index - range.start) * dim..][..dim];
                    for (g, d) in row.iter_mut().zip(dy_row) {
                        *g += d;
                    }
                }
            }
        })
    };
    Tensor::from_vec(grad, (rows, dim), grad_output.device())
}

/// Fails unless `indices` are as many as `index_dims` holds and all below `rows`.
fn check_indices(indices: &[u32], index_dims: &[usize], rows: usize) -> Result<(), OpsError> {
    let count: usize = index_dims.iter().product();
    if indices.len() != count {
        return Err(OpsError::Config {
            op: OP,
            reason: format!(
                "{} indices for an index shape {index_dims:?} of {count}",
                indices.len()
            ),
        });
    }
    match indices.iter().find(|&&i| i as usize >= rows) {
        Some(bad) => Err(OpsError::Config {
            op: OP,
            reason: format!("index {bad} is out of range for a table of {rows} rows"),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_close, random_tensor, random_var, values, Lcg};

    #[test]
    fn indices_are_truncated_like_kerass_cast_and_checked() -> candle_core::Result<()> {
        let floats = Tensor::new(&[[0f32, 2.0], [2.9, -0.5]], &Device::Cpu)?;
        assert_eq!(embedding_indices(&floats, 3)?, vec![0, 2, 2, 0]);
        let ints = Tensor::new(&[4i64, 0, 1], &Device::Cpu)?;
        assert_eq!(embedding_indices(&ints, 5)?, vec![4, 0, 1]);
        let bytes = Tensor::new(&[7u8], &Device::Cpu)?;
        assert_eq!(embedding_indices(&bytes, 8)?, vec![7]);
        for bad in [3.0f32, -1.0, f32::NAN, f32::INFINITY] {
            let t = Tensor::new(&[1f32, bad], &Device::Cpu)?;
            let err = embedding_indices(&t, 3).unwrap_err().to_string();
            assert!(
                err.contains("out of range") && err.contains("3 rows"),
                "{err}"
            );
        }
        Ok(())
    }

    /// Forward, candle's autograd over it and the plain backward against loops, with repeated
    /// indices (whose gradients add up).
    #[test]
    fn lookup_and_scatter_add_match_loops() -> candle_core::Result<()> {
        let mut rng = Lcg::new(5);
        let (rows, dim) = (7, 3);
        let table = random_var(&mut rng, &[rows, dim]);
        let indices = [3u32, 0, 3, 6, 6, 6, 1, 3];
        let upstream = random_tensor(&mut rng, &[2, 4, dim]);
        let t = values(&table);
        let g = values(&upstream);
        let mut want_y = Vec::new();
        let mut want_grad = vec![0f64; rows * dim];
        for (j, &i) in indices.iter().enumerate() {
            let i = i as usize;
            want_y.extend(t[i * dim..][..dim].iter().map(|&v| v as f64));
            for k in 0..dim {
                want_grad[i * dim + k] += g[j * dim + k] as f64;
            }
        }
        for tracked in [false, true] {
            let source = if tracked {
                table.as_tensor().clone()
            } else {
                table.as_tensor().detach()
            };
            let y = embedding(&source, &indices, &[2, 4])?;
            assert_eq!(y.dims(), &[2, 4, dim]);
            assert_close("lookup", &values(&y), &want_y, 0.0);
            if tracked {
                let grads = (&y * &upstream)?.sum_all()?.backward()?;
                assert_close(
                    "autograd",
                    &values(grads.get(&table).unwrap()),
                    &want_grad,
                    1e-6,
                );
            }
        }
        let plain = embedding_backward(&upstream, &indices, rows)?;
        assert_eq!(plain.dims(), &[rows, dim]);
        assert_close("scatter-add", &values(&plain), &want_grad, 1e-6);
        let composed = crate::with_composed_ops(|| embedding(table.as_tensor(), &indices, &[8]))?;
        assert_close("composed", &values(&composed), &want_y, 0.0);
        Ok(())
    }

    #[test]
    fn large_scatter_adds_are_split_over_threads_and_do_not_depend_on_them(
    ) -> candle_core::Result<()> {
        let mut rng = Lcg::new(6);
        let (rows, dim, count) = (3000, 16, 5000);
        let indices: Vec<u32> = (0..count).map(|_| rng.next_u32() % 40 * 75).collect();
        let upstream = random_tensor(&mut rng, &[count, dim]);
        let g = values(&upstream);
        let mut sequential = vec![0f32; rows * dim];
        for (j, &i) in indices.iter().enumerate() {
            for k in 0..dim {
                sequential[i as usize * dim + k] += g[j * dim + k];
            }
        }
        for threads in [1, 3, 4] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let grad = pool.install(|| embedding_backward(&upstream, &indices, rows))?;
            // The same additions in the same order: equal to the bit.
            assert_eq!(values(&grad), sequential, "{threads} threads");
        }
        Ok(())
    }

    #[test]
    fn refuses_bad_indices_and_shapes() -> candle_core::Result<()> {
        let table = Tensor::zeros((4, 2), DType::F32, &Device::Cpu)?;
        let err = embedding(&table, &[1, 4], &[2]).unwrap_err().to_string();
        assert!(err.contains("index 4") && err.contains("4 rows"), "{err}");
        assert!(embedding(&table, &[1, 2], &[3]).is_err());
        let vector = Tensor::zeros(4, DType::F32, &Device::Cpu)?;
        assert!(embedding(&vector, &[1], &[1]).is_err());
        let grad = Tensor::zeros((2, 2), DType::F32, &Device::Cpu)?;
        assert!(embedding_backward(&grad, &[0, 9], 4).is_err());
        let scalar = Tensor::new(1f32, &Device::Cpu)?;
        assert!(embedding_backward(&scalar, &[], 4).is_err());
        Ok(())
    }
}
