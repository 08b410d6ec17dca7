//! The convolution forward pass on CPU: one matrix product per chunk of images, bias and ReLU fused.

use rayon::prelude::*;

use crate::buffer::{Fresh, Uninit};
use crate::fork_join::{min_piece_len, worker_threads};
use crate::matmul::{matmul, Accumulate, MatMut, MatRef};

use super::direct::Direct;
use super::geometry::{images_per_chunk, ConvGeometry, Formulation};
use super::project::{from_channel_major, Planes};
use super::scratch::{prefix, with_scratch, Scratch};
use super::unfold::Unfolder;
use super::winograd::{TileScratch, Winograd};

/// `relu?(conv(x, kernel) + bias)` for contiguous NHWC `x` and (KH, KW, Cin, Cout) `kernel`;
/// returns the contiguous (N, OH, OW, Cout) output.
pub(crate) fn forward(
    g: &ConvGeometry,
    x: &[f32],
    kernel: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
) -> Vec<f32> {
    let mut y = Fresh::new(g.batch * g.out_image_len());
    if y.len() == 0 {
        return y.into_written();
    }
    let pass = ForwardPass::new(g, kernel, bias, relu);
    y.par_chunks(pass.images_per_chunk * g.out_image_len())
        .enumerate()
        .with_min_len(min_piece_len())
        .for_each(|(index, y_chunk)| {
            with_scratch(|scratch| pass.chunk(index, x, scratch, y_chunk));
        });
    y.into_written()
}

/// One forward pass's lowering, its tables and its split into chunks of images, built once per
/// call: each chunk is then computed on its own ([`ForwardPass::chunk`]), in parallel.
pub(crate) struct ForwardPass<'a> {
    g: &'a ConvGeometry,
    kernel: &'a [f32],
    bias: Option<&'a [f32]>,
    relu: bool,
    lowering: Lowering<'a>,
    /// Images in each chunk (the last may hold fewer).
    pub images_per_chunk: usize,
    /// Threads each chunk's matrix product may use (all of them when there are fewer chunks
    /// than threads).
    inner_threads: usize,
}

/// The lowering's tables.
enum Lowering<'g> {
    Direct(Direct<'g>),
    Unfold(Unfolder<'g>),
    Winograd {
        winograd: Winograd,
        /// The transformed kernel.
        kernel: Vec<f32>,
    },
    Project {
        planes: Planes<'g>,
        /// The kernel in (Cin, taps * Cout) order.
        kernel: Vec<f32>,
    },
}

impl<'a> ForwardPass<'a> {
    /// The pass of `relu?(conv(x, kernel) + bias)` over a batch of `g`'s shape.
    pub(crate) fn new(
        g: &'a ConvGeometry,
        kernel: &'a [f32],
        bias: Option<&'a [f32]>,
        relu: bool,
    ) -> Self {
        let threads = worker_threads();
        let formulation = g.formulation();
        let chunk = images_per_chunk(g.batch, g.working_set_per_image(formulation), threads);
        let lowering = match formulation {
            Formulation::Direct => Lowering::Direct(Direct::new(g)),
            Formulation::Unfold => Lowering::Unfold(Unfolder::new(g)),
            Formulation::Winograd => {
                let winograd = Winograd::new(g);
                let kernel = winograd.transform_kernel(kernel);
                Lowering::Winograd { winograd, kernel }
            }
            Formulation::Project => Lowering::Project {
                planes: Planes::new(g),
                kernel: kernel_to_cin_major(g, kernel),
            },
        };
        Self {
            g,
            kernel,
            bias,
            relu,
            lowering,
            images_per_chunk: chunk,
            inner_threads: if g.batch.div_ceil(chunk) < threads {
                threads
            } else {
                1
            },
        }
    }

    /// Writes the output of chunk `index` of the batch `x` (all its images, contiguous NHWC)
    /// over `y_chunk`, whose length says how many images the chunk holds.
    pub(crate) fn chunk(
        &self,
        index: usize,
        x: &[f32],
        scratch: &mut Scratch,
        y_chunk: Uninit<'_>,
    ) {
        let g = self.g;
        let images = y_chunk.len() / g.out_image_len();
        let x = &x[index * self.images_per_chunk * g.in_image_len()..][..images * g.in_image_len()];
        let (kernel, bias, relu, inner_threads) =
            (self.kernel, self.bias, self.relu, self.inner_threads);
        match &self.lowering {
            Lowering::Direct(direct) => {
                for (image, y_image) in x
                    .chunks_exact(g.in_image_len())
                    .zip(y_chunk.pieces(g.out_image_len()))
                {
                    direct.forward(image, kernel, bias, relu, scratch, y_image);
                }
            }
            Lowering::Unfold(unfolder) => {
                let Scratch { cols, frame, .. } = scratch;
                let row_len = g.taps() * g.in_c;
                let rows = images * g.out_pixels();
                let cols = prefix(cols, rows * row_len);
                for (image, image_cols) in x
                    .chunks_exact(g.in_image_len())
                    .zip(cols.chunks_exact_mut(g.out_pixels() * row_len))
                {
                    unfolder.unfold(image, frame, image_cols);
                }
                let y_chunk = match bias {
                    Some(bias) => y_chunk.concat(std::iter::repeat_n(bias, rows)),
                    None => y_chunk.fill(0.0),
                };
                matmul(
                    MatMut::row_major(y_chunk, rows, g.out_c),
                    MatRef::row_major(cols, rows, row_len),
                    MatRef::row_major(kernel, row_len, g.out_c),
                    Accumulate::Add,
                    inner_threads,
                );
                if relu {
                    y_chunk.iter_mut().for_each(|v| *v = v.max(0.0));
                }
            }
            Lowering::Winograd { winograd, kernel } => {
                let Scratch {
                    cols,
                    frame,
                    products,
                    ..
                } = scratch;
                let tile_scratch = TileScratch {
                    v: cols,
                    m: products,
                    frame,
                };
                winograd.forward_chunk(x, kernel, bias, relu, tile_scratch, y_chunk, inner_threads);
            }
            Lowering::Project { planes, kernel } => {
                let Scratch {
                    cols: z,
                    dy: y_planes,
                    ..
                } = scratch;
                let row_len = g.taps() * g.out_c;
                let (rows_in, rows_out) = (images * g.in_pixels(), images * g.out_pixels());
                let z = prefix(z, rows_in * row_len);
                matmul(
                    MatMut::col_major(z, rows_in, row_len),
                    MatRef::row_major(x, rows_in, g.in_c),
                    MatRef::row_major(kernel, g.in_c, row_len),
                    Accumulate::Overwrite,
                    inner_threads,
                );
                y_planes.clear();
                for c in 0..g.out_c {
                    let start = bias.map_or(0.0, |bias| bias[c]);
                    y_planes.extend(std::iter::repeat_n(start, rows_out));
                }
                planes.gather_add(images, z, y_planes);
                // The chunk is small (Cout planes of the output): zeroing it first is cheap.
                from_channel_major(y_planes, g.out_c, relu, y_chunk.fill(0.0));
            }
        }
    }
}

/// Rearranges a (taps, Cin, Cout) kernel into (Cin, taps, Cout).
pub(crate) fn kernel_to_cin_major(g: &ConvGeometry, kernel: &[f32]) -> Vec<f32> {
    let (taps, cin, cout) = (g.taps(), g.in_c, g.out_c);
    let mut out = vec![0.0; kernel.len()];
    for tap in 0..taps {
        for ci in 0..cin {
            out[(ci * taps + tap) * cout..][..cout]
                .copy_from_slice(&kernel[(tap * cin + ci) * cout..][..cout]);
        }
    }
    out
}

/// Rearranges a (Cin, taps, Cout) kernel back into (taps, Cin, Cout).
pub(crate) fn kernel_from_cin_major(g: &ConvGeometry, projected: &[f32]) -> Vec<f32> {
    let (taps, cin, cout) = (g.taps(), g.in_c, g.out_c);
    let mut out = vec![0.0; projected.len()];
    for tap in 0..taps {
        for ci in 0..cin {
            out[(tap * cin + ci) * cout..][..cout]
                .copy_from_slice(&projected[(ci * taps + tap) * cout..][..cout]);
        }
    }
    out
}
