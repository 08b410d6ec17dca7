//! The convolution forward pass on CPU: one matrix product per chunk of images, bias and ReLU fused.

use rayon::prelude::*;

use crate::buffer::Fresh;
use crate::fork_join::worker_threads;
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
    let threads = worker_threads();
    let formulation = g.formulation();
    let chunk = images_per_chunk(g.batch, g.working_set_per_image(formulation), threads);
    let inner_threads = if g.batch.div_ceil(chunk) < threads {
        threads
    } else {
        1
    };
    let chunks = y.par_chunks(chunk * g.out_image_len()).enumerate();
    let input_of = |index: usize, images: usize| {
        &x[index * chunk * g.in_image_len()..][..images * g.in_image_len()]
    };
    match formulation {
        Formulation::Direct => {
            let direct = Direct::new(g);
            chunks.for_each(|(index, y_chunk)| {
                with_scratch(|scratch| {
                    let images = y_chunk.len() / g.out_image_len();
                    for (image, y_image) in input_of(index, images)
                        .chunks_exact(g.in_image_len())
                        .zip(y_chunk.pieces(g.out_image_len()))
                    {
                        direct.forward(image, kernel, bias, relu, scratch, y_image);
                    }
                })
            });
        }
        Formulation::Unfold => {
            let unfolder = Unfolder::new(g);
            let row_len = g.taps() * g.in_c;
            chunks.for_each(|(index, y_chunk)| {
                with_scratch(|scratch| {
                    let Scratch { cols, frame, .. } = scratch;
                    let images = y_chunk.len() / g.out_image_len();
                    let rows = images * g.out_pixels();
                    let cols = prefix(cols, rows * row_len);
                    for (image, image_cols) in input_of(index, images)
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
                })
            });
        }
        Formulation::Winograd => {
            let winograd = Winograd::new(g);
            let u = winograd.transform_kernel(kernel);
            chunks.for_each(|(index, y_chunk)| {
                with_scratch(|scratch| {
                    let images = y_chunk.len() / g.out_image_len();
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
                    winograd.forward_chunk(
                        input_of(index, images),
                        &u,
                        bias,
                        relu,
                        tile_scratch,
                        y_chunk,
                        inner_threads,
                    );
                })
            });
        }
        Formulation::Project => {
            let planes = Planes::new(g);
            let projected_kernel = kernel_to_cin_major(g, kernel);
            let row_len = g.taps() * g.out_c;
            chunks.for_each(|(index, y_chunk)| {
                with_scratch(|scratch| {
                    let Scratch {
                        cols: z,
                        dy: y_planes,
                        ..
                    } = scratch;
                    let images = y_chunk.len() / g.out_image_len();
                    let (rows_in, rows_out) = (images * g.in_pixels(), images * g.out_pixels());
                    let z = prefix(z, rows_in * row_len);
                    matmul(
                        MatMut::col_major(z, rows_in, row_len),
                        MatRef::row_major(input_of(index, images), rows_in, g.in_c),
                        MatRef::row_major(&projected_kernel, g.in_c, row_len),
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
                })
            });
        }
    }
    y.into_written()
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
