//! Nearest-neighbour upsampling of NHWC images by integer factors.

use std::iter::repeat_n;

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::buffer::Fresh;
use crate::check::{expect_built_dims, expect_f32_rank};
use crate::error::OpsError;
use crate::fork_join::min_piece_len;
use crate::storage::{cpu_f32, CpuView};

/// Name used in messages.
const OP: &str = "upsample_nearest2d";

/// Nearest-neighbour upsampling by integer factors, NHWC; backward sums each block.
pub fn upsample_nearest2d(x: &Tensor, size: (usize, usize)) -> candle_core::Result<Tensor> {
    let dims = expect_f32_rank(OP, "x", x, 4)?;
    if size.0 == 0 || size.1 == 0 {
        return Err(OpsError::Config {
            op: OP,
            reason: format!("factors {size:?} must be positive"),
        }
        .into());
    }
    let (n, h, w, c) = (dims[0], dims[1], dims[2], dims[3]);
    if !crate::kernels_on(x.device()) {
        // Repeat through a broadcast: (N, H, 1, W, 1, C) -> (N, H, fh, W, fw, C).
        return x
            .reshape((n, h, 1, w, 1, c))?
            .broadcast_as((n, h, size.0, w, size.1, c))?
            .reshape((n, h * size.0, w * size.1, c));
    }
    x.apply_op1(UpsampleOp {
        dims: [n, h, w, c],
        size,
    })
}

/// The CPU upsampling as a candle custom op.
pub(crate) struct UpsampleOp {
    /// The input shape (N, H, W, C).
    pub(crate) dims: [usize; 4],
    /// The (height, width) factors.
    pub(crate) size: (usize, usize),
}

impl CustomOp1 for UpsampleOp {
    fn name(&self) -> &'static str {
        "rkeras-upsample-nearest2d"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let [n, h, w, c] = self.dims;
        let (fh, fw) = self.size;
        expect_built_dims(OP, "x", layout.dims(), &self.dims)?;
        let x = cpu_f32(OP, "x", storage, layout)?;
        let out_row = w * fw * c;
        let mut y = Fresh::new(n * h * fh * out_row);
        if y.len() > 0 {
            // One input row fills `fh` identical output rows, each pixel `fw` times.
            y.par_chunks(fh * out_row)
                .zip(x.par_chunks(w * c))
                .with_min_len(min_piece_len())
                .for_each(|(block, row)| {
                    // The first output row pixel by pixel, the others copied from it whole.
                    let mut rows = block.pieces(out_row);
                    let Some(first) = rows.next() else { return };
                    let first = first.concat(row.chunks_exact(c).flat_map(|p| repeat_n(p, fw)));
                    for copy in rows {
                        copy.concat([&first[..]]);
                    }
                });
        }
        let y = y.into_written();
        Ok((CpuStorage::F32(y), (n, h * fh, w * fw, c).into()))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        if !arg.track_op() {
            return Ok(None);
        }
        block_sums(self.dims, self.size, grad_res).map(Some)
    }
}

/// The input gradient of an upsampling of an input of `dims` by `size`: the sum of each block of
/// the output gradient.
fn block_sums(
    dims: [usize; 4],
    size: (usize, usize),
    grad_output: &Tensor,
) -> candle_core::Result<Tensor> {
    let [n, h, w, c] = dims;
    let (fh, fw) = size;
    let grad = CpuView::of(OP, "output gradient", grad_output)?;
    let dy = grad.f32()?;
    let out_row = w * fw * c;
    let mut dx = Fresh::new(n * h * w * c);
    if dx.len() > 0 {
        dx.par_chunks(w * c)
            .zip(dy.par_chunks(fh * out_row))
            .with_min_len(min_piece_len())
            .for_each(|(row, block)| {
                // Zeroed while the row is in cache, not in a pass over the whole result.
                let row = row.fill(0.0);
                for out_row in block.chunks_exact(out_row) {
                    for (pixel, out_pixels) in
                        row.chunks_exact_mut(c).zip(out_row.chunks_exact(fw * c))
                    {
                        for out_pixel in out_pixels.chunks_exact(c) {
                            for (d, g) in pixel.iter_mut().zip(out_pixel) {
                                *d += g;
                            }
                        }
                    }
                }
            });
    }
    let dx = dx.into_written();
    Tensor::from_vec(dx, dims.as_slice(), grad_output.device())
}

/// The backward pass of [`upsample_nearest2d`] as a plain function: the input gradient, each
/// input pixel receiving the sum of its `size` block of `grad_output` (N, H·fh, W·fw, C).
/// Nothing is recorded for candle's autograd; CPU tensors only.
pub fn upsample_nearest2d_backward(
    grad_output: &Tensor,
    size: (usize, usize),
) -> candle_core::Result<Tensor> {
    let dims = expect_f32_rank(OP, "output gradient", grad_output, 4)?;
    let (fh, fw) = size;
    if fh == 0 || fw == 0 || dims[1] % fh != 0 || dims[2] % fw != 0 {
        return Err(OpsError::Config {
            op: OP,
            reason: format!(
                "factors {size:?} must be positive and divide the output gradient's height and width ({:?})",
                dims
            ),
        }
        .into());
    }
    block_sums(
        [dims[0], dims[1] / fh, dims[2] / fw, dims[3]],
        size,
        grad_output,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{gradients_against, random_tensor, random_var, values, Lcg};
    use candle_core::{Device, Var};

    #[test]
    fn repeats_each_pixel_into_a_block() {
        let x = Tensor::new(&[1f32, 10., 2., 20., 3., 30., 4., 40.], &Device::Cpu)
            .unwrap()
            .reshape((1, 2, 2, 2))
            .unwrap();
        let y = upsample_nearest2d(&x, (2, 3)).unwrap();
        assert_eq!(y.dims(), &[1, 4, 6, 2]);
        let v = values(&y);
        // Row 0 and row 1 are both input row 0, each pixel three times.
        let row0 = [1., 10., 1., 10., 1., 10., 2., 20., 2., 20., 2., 20.];
        assert_eq!(&v[..12], &row0);
        assert_eq!(&v[12..24], &row0);
        assert_eq!(&v[24..30], &[3., 30., 3., 30., 3., 30.]);
    }

    #[test]
    fn backward_sums_each_block_and_matches_the_broadcast_form() {
        let mut rng = Lcg::new(3);
        let x = random_var(&mut rng, &[2, 3, 4, 5]);
        let y = upsample_nearest2d(&x, (2, 3)).unwrap();
        let upstream = random_tensor(&mut rng, y.dims());
        let grads = gradients_against(&y, &upstream);
        let (g, dx) = (values(&upstream), values(grads.get(&x).unwrap()));
        // Naive: dx[b, i, j, c] = sum over the 2x3 block of the upstream gradient.
        let (h, w, c) = (3, 4, 5);
        for b in 0..2 {
            for i in 0..h {
                for j in 0..w {
                    for ch in 0..c {
                        let mut sum = 0f64;
                        for di in 0..2 {
                            for dj in 0..3 {
                                sum += g[((b * h * 2 + i * 2 + di) * w * 3 + j * 3 + dj) * c + ch]
                                    as f64;
                            }
                        }
                        let got = dx[((b * h + i) * w + j) * c + ch] as f64;
                        assert!((got - sum).abs() < 1e-5, "{got} vs {sum}");
                    }
                }
            }
        }
        // The plain function gives the same block sums.
        let plain = upsample_nearest2d_backward(&upstream, (2, 3)).unwrap();
        assert_eq!(plain.dims(), x.dims());
        assert_eq!(values(&plain), dx);
        // The composed (non-CPU) form gives the same values.
        let composed = x
            .reshape((2, 3, 1, 4, 1, 5))
            .unwrap()
            .broadcast_as((2, 3, 2, 4, 3, 5))
            .unwrap()
            .reshape((2, 6, 12, 5))
            .unwrap();
        assert_eq!(values(&composed), values(&y));
    }

    #[test]
    fn untracked_input_and_bad_factors() {
        let x = Tensor::ones((1, 2, 2, 1), candle_core::DType::F32, &Device::Cpu).unwrap();
        let y = upsample_nearest2d(&x, (2, 2)).unwrap();
        let op = UpsampleOp {
            dims: [1, 2, 2, 1],
            size: (2, 2),
        };
        assert!(op.bwd(&x, &y, &y).unwrap().is_none());
        assert!(upsample_nearest2d(&x, (0, 2)).is_err());
        assert!(upsample_nearest2d_backward(&y, (3, 2)).is_err());
        assert!(upsample_nearest2d_backward(&y, (0, 2)).is_err());
        let v = Var::zeros((2, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert!(upsample_nearest2d(&v, (2, 2))
            .unwrap_err()
            .to_string()
            .contains("rank 4"));
    }
}
