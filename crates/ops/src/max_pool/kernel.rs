//! The CPU max-pooling loops: forward, and backward to the first maximum of each window.
//!
//! Each image is one [`Kernel`] run through [`vectorized`]: a window is a rectangle of pixels
//! visited by plain nested loops, and each pixel's channels are a contiguous run, so the loops
//! over the channels compile to full-width vector instructions.

use std::ops::Range;

use rayon::prelude::*;

use crate::buffer::Fresh;
use crate::simd::{vectorized, Kernel};

use super::PoolGeometry;

/// The input indices a window starting at output index `o` covers along one axis, inside the
/// image (the padding is never read).
fn window(o: usize, stride: usize, pool: usize, before: usize, len: usize) -> Range<usize> {
    let start = o * stride;
    start.saturating_sub(before)..(start + pool).saturating_sub(before).min(len)
}

/// Every window of one image: its output cell and the input rows and columns it covers (visited
/// row by row, the first maximum met is the first in the window). An iterator rather than a
/// visitor, so that the loop bodies stay inside the kernels compiled for wide vectors.
#[inline(always)]
fn windows(g: &PoolGeometry) -> impl Iterator<Item = (usize, Range<usize>, Range<usize>)> + '_ {
    (0..g.out_h).flat_map(move |oy| {
        let rows = window(oy, g.strides.0, g.pool.0, g.padding.top, g.in_h);
        (0..g.out_w).map(move |ox| {
            let cols = window(ox, g.strides.1, g.pool.1, g.padding.left, g.in_w);
            (oy * g.out_w + ox, rows.clone(), cols)
        })
    })
}

/// The window maxima of contiguous NHWC `x`.
pub(super) fn forward(g: &PoolGeometry, x: &[f32]) -> Vec<f32> {
    let mut y = Fresh::new(g.batch * g.out_image_len());
    if y.len() == 0 {
        return y.into_written();
    }
    y.par_chunks(g.out_image_len())
        .zip(x.par_chunks(g.in_image_len()))
        .for_each(|(y, x)| {
            let y = y.fill(f32::NEG_INFINITY);
            vectorized(ForwardImage { g, x, y });
        });
    y.into_written()
}

/// One image's forward pass: `y` (filled with -inf) receives the window maxima of `x`.
struct ForwardImage<'a> {
    g: &'a PoolGeometry,
    x: &'a [f32],
    y: &'a mut [f32],
}

impl Kernel for ForwardImage<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Self { g, x, y } = self;
        let c = g.channels;
        for (o, rows, cols) in windows(g) {
            let best = &mut y[o * c..][..c];
            for iy in rows {
                for ix in cols.clone() {
                    let i = iy * g.in_w + ix;
                    for (best, &v) in best.iter_mut().zip(&x[i * c..][..c]) {
                        *best = best.max(v);
                    }
                }
            }
        }
    }
}

/// The input gradient of contiguous NHWC `x` whose window maxima are `y`: each output cell's
/// gradient goes, whole, to the first cell of its window that holds the maximum.
pub(super) fn backward(g: &PoolGeometry, x: &[f32], y: &[f32], dy: &[f32]) -> Vec<f32> {
    let c = g.channels;
    let mut dx = Fresh::new(g.batch * g.in_image_len());
    if dx.len() == 0 {
        return dx.into_written();
    }
    dx.par_chunks(g.in_image_len())
        .zip(x.par_chunks(g.in_image_len()))
        .zip(y.par_chunks(g.out_image_len()))
        .zip(dy.par_chunks(g.out_image_len()))
        .for_each_init(
            || vec![false; c],
            |pending, (((dx, x), y), dy)| {
                // Zeroed while the image's chunk is in cache, not in a pass over the whole result.
                let dx = dx.fill(0.0);
                vectorized(BackwardImage {
                    g,
                    x,
                    y,
                    dy,
                    dx,
                    pending,
                });
            },
        );
    dx.into_written()
}

/// One image's backward pass: adds each output cell's gradient `dy` to the zeroed `dx` at the
/// first cell of its window equal to its maximum `y`; `pending` is scratch, one flag a channel.
struct BackwardImage<'a> {
    g: &'a PoolGeometry,
    x: &'a [f32],
    y: &'a [f32],
    dy: &'a [f32],
    dx: &'a mut [f32],
    pending: &'a mut [bool],
}

impl Kernel for BackwardImage<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Self {
            g,
            x,
            y,
            dy,
            dx,
            pending,
        } = self;
        let c = g.channels;
        for (o, rows, cols) in windows(g) {
            let (maxima, grads) = (&y[o * c..][..c], &dy[o * c..][..c]);
            pending.fill(true);
            for iy in rows {
                for ix in cols.clone() {
                    let i = iy * g.in_w + ix;
                    // Branch-free over the channels, so that the loop vectorises.
                    let cells = dx[i * c..][..c].iter_mut().zip(&x[i * c..][..c]);
                    let window = maxima.iter().zip(grads).zip(pending.iter_mut());
                    for ((d, &v), ((&max, &grad), pending)) in cells.zip(window) {
                        let first_max = *pending & (v == max);
                        *d += if first_max { grad } else { 0.0 };
                        *pending &= !first_max;
                    }
                }
            }
        }
    }
}
