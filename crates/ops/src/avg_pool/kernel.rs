//! The CPU average-pooling loops: forward, and backward spreading each gradient over its window.

use rayon::prelude::*;

use crate::buffer::Fresh;
use crate::fork_join::min_piece_len;

use super::AvgPoolGeometry;

/// Calls `visit(out_cell, first_pixel_of_each_row, row_len)` for every window of one image: the
/// window's real pixels are `row_len` consecutive pixels from each of the given starts.
fn for_each_window(
    g: &AvgPoolGeometry,
    mut visit: impl FnMut(usize, &mut dyn Iterator<Item = usize>, usize),
) {
    for oy in 0..g.out_h {
        let rows = g.rows(oy);
        for ox in 0..g.out_w {
            let cols = g.cols(ox);
            let mut starts = rows.clone().map(|iy| iy * g.in_w + cols.start);
            visit(oy * g.out_w + ox, &mut starts, cols.len());
        }
    }
}

/// The window means of contiguous NHWC `x`.
pub(super) fn forward(g: &AvgPoolGeometry, x: &[f32]) -> Vec<f32> {
    let c = g.channels;
    let mut y = Fresh::new(g.batch * g.out_image_len());
    if y.len() == 0 {
        return y.into_written();
    }
    let scales = g.inverse_counts();
    y.par_chunks(g.out_image_len())
        .zip(x.par_chunks(g.in_image_len()))
        .with_min_len(min_piece_len())
        .for_each(|(y, x)| {
            // Zeroed while the image's chunk is in cache, not in a pass over the whole result.
            let y = y.fill(0.0);
            for_each_window(g, |o, starts, row_len| {
                let sum = &mut y[o * c..][..c];
                for start in starts {
                    // A window row is `row_len` whole pixels, contiguous in NHWC.
                    for pixel in x[start * c..][..row_len * c].chunks_exact(c) {
                        for (s, &v) in sum.iter_mut().zip(pixel) {
                            *s += v;
                        }
                    }
                }
                let scale = scales[o];
                sum.iter_mut().for_each(|s| *s *= scale);
            });
        });
    y.into_written()
}

/// The input gradient of an average pooling whose output gradient is the contiguous NHWC `dy`:
/// each output cell's gradient, divided by its window's count, goes to every real cell of it.
pub(super) fn backward(g: &AvgPoolGeometry, dy: &[f32]) -> Vec<f32> {
    let c = g.channels;
    let mut dx = Fresh::new(g.batch * g.in_image_len());
    if dx.len() == 0 {
        return dx.into_written();
    }
    let scales = g.inverse_counts();
    dx.par_chunks(g.in_image_len())
        .zip(dy.par_chunks(g.out_image_len()))
        .with_min_len(min_piece_len())
        .for_each_init(
            || vec![0f32; c],
            |share, (dx, dy)| {
                let dx = dx.fill(0.0);
                for_each_window(g, |o, starts, row_len| {
                    let scale = scales[o];
                    for (s, &d) in share.iter_mut().zip(&dy[o * c..][..c]) {
                        *s = d * scale;
                    }
                    for start in starts {
                        for pixel in dx[start * c..][..row_len * c].chunks_exact_mut(c) {
                            for (d, &s) in pixel.iter_mut().zip(share.iter()) {
                                *d += s;
                            }
                        }
                    }
                });
            },
        );
    dx.into_written()
}
