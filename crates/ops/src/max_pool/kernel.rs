//! The CPU max-pooling loops: forward, and backward to the first maximum of each window; and,
//! for a convolution's output pooled in cache, a forward that notes each window's winning cell
//! and a backward that routes by it.
//!
//! Each image is one [`Kernel`] run through [`vectorized`]: a window is a rectangle of pixels
//! visited by plain nested loops, and each pixel's channels are a contiguous run, so the loops
//! over the channels compile to full-width vector instructions.

use std::mem::MaybeUninit;
use std::ops::Range;

use rayon::prelude::*;

use crate::buffer::{Fresh, Uninit};
use crate::fork_join::min_piece_len;
use crate::simd::{vectorized, Kernel};

use super::PoolGeometry;

/// The input indices a window starting at output index `o` covers along one axis, inside the
/// image (the padding is never read).
fn window(o: usize, stride: usize, pool: usize, before: usize, len: usize) -> Range<usize> {
    let start = o * stride;
    start.saturating_sub(before)..(start + pool).saturating_sub(before).min(len)
}

/// The gradient one input cell of value `v` gets from its window (maximum `max`, gradient
/// `grad`): all of it if the cell is the first maximum met (`pending` still set, and then
/// cleared), else 0. Branch-free, so that the loops over the channels vectorise.
#[inline(always)]
fn routed(v: f32, max: f32, grad: f32, pending: &mut bool) -> f32 {
    let first_max = *pending & (v == max);
    *pending &= !first_max;
    if first_max {
        grad
    } else {
        0.0
    }
}

/// A window's gradient `grad` as it passes to its winning cell: whole, unless `only_positive`
/// and the window's maximum `max` is not positive (the mask of a ReLU before the pooling).
/// Branch-free, so that the loops over the channels vectorise.
#[inline(always)]
fn passed(max: f32, grad: f32, only_positive: bool) -> f32 {
    if !only_positive | (max > 0.0) {
        grad
    } else {
        0.0
    }
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
        .with_min_len(min_piece_len())
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
    let mut dx = Fresh::new(g.batch * g.in_image_len());
    if dx.len() == 0 {
        return dx.into_written();
    }
    let images = dx
        .par_chunks(g.in_image_len())
        .zip(x.par_chunks(g.in_image_len()))
        .zip(y.par_chunks(g.out_image_len()))
        .zip(dy.par_chunks(g.out_image_len()))
        .with_min_len(min_piece_len());
    // Windows that never overlap (Keras's default, strides equal to the pool) give each input
    // cell at most one gradient: the result is written row by row, once, with no zeroing pass.
    if g.windows_are_disjoint() {
        images.for_each_init(
            || DisjointScratch::new(g),
            |scratch, (((dx, x), y), dy)| disjoint_backward_image(g, x, y, dy, dx, scratch),
        );
    } else {
        images.for_each_init(
            || vec![false; g.channels],
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
    }
    dx.into_written()
}

/// One image's window maxima written over `y`, and for each window and channel which cell of the
/// window (counted row by row, inside the image) holds the first maximum, written over
/// `winners`: what [`image_backward_from_winners`] routes the gradient by, without the image.
/// Every window must hold at most [`MAX_WINDOW_CELLS`] cells.
pub(crate) fn image_forward_with_winners(
    g: &PoolGeometry,
    x: &[f32],
    y: Uninit<'_>,
    winners: &mut [u8],
) {
    let write = |y: &mut [MaybeUninit<f32>]| vectorized(ForwardWinners { g, x, y, winners });
    // SAFETY: `ForwardWinners` writes every cell of `y`, one window's channels at a time.
    unsafe { y.write_with(write) };
}

/// The most cells a window may hold for its winner to be kept (a `u8` index).
pub(crate) const MAX_WINDOW_CELLS: usize = u8::MAX as usize + 1;

/// One image's forward pass keeping each window's winner: `y` receives the window maxima of `x`
/// and `winners` the index of each one's first cell.
struct ForwardWinners<'a> {
    g: &'a PoolGeometry,
    x: &'a [f32],
    y: &'a mut [MaybeUninit<f32>],
    winners: &'a mut [u8],
}

impl Kernel for ForwardWinners<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Self { g, x, y, winners } = self;
        let c = g.channels;
        for (o, rows, cols) in windows(g) {
            let winner = &mut winners[o * c..][..c];
            winner.fill(0);
            let mut cells = rows.flat_map(|iy| cols.clone().map(move |ix| iy * g.in_w + ix));
            // The window's first cell starts its maxima (every window holds a cell of the image:
            // the padding on each side is smaller than the window).
            let out = &mut y[o * c..][..c];
            match cells.next() {
                Some(i) => {
                    for (out, &v) in out.iter_mut().zip(&x[i * c..][..c]) {
                        out.write(v);
                    }
                }
                None => out.fill(MaybeUninit::new(f32::NEG_INFINITY)),
            }
            // SAFETY: every cell of `out` was just written, and `MaybeUninit<f32>` has the layout
            // of `f32`.
            let best = unsafe { &mut *(out as *mut [MaybeUninit<f32>] as *mut [f32]) };
            for (before, i) in cells.enumerate() {
                // The cell's index in the window (the first is 0); at most 255.
                let cell = (before + 1) as u8;
                // Strictly greater: the first of equal maxima wins, as the pooling's gradient
                // routes it. Branch-free, so that the loop over the channels vectorises.
                let cells = best.iter_mut().zip(winner.iter_mut());
                for ((best, winner), &v) in cells.zip(&x[i * c..][..c]) {
                    let greater = v > *best;
                    *best = if greater { v } else { *best };
                    *winner = if greater { cell } else { *winner };
                }
            }
        }
    }
}

/// One image's input gradient, written over `dx`: each output cell's gradient `dy` goes whole to
/// the window cell [`image_forward_with_winners`] found to hold the first maximum; and the sum of
/// those gradients per channel, the gradient of a bias added before the pooling, added to
/// `sums` (when not empty). With `only_positive`, a window whose maximum `y` is not positive
/// passes nothing: the pooling reads a ReLU's output, whose mask lets the gradient through
/// exactly where the window's maximum is positive.
pub(crate) fn image_backward_from_winners(
    g: &PoolGeometry,
    winners: &[u8],
    (y, dy): (&[f32], &[f32]),
    only_positive: bool,
    dx: &mut [f32],
    sums: &mut [f32],
) {
    if g.windows_tile_the_image() {
        // Every cell of `dx` in exactly one window: each written once, no zeroing first.
        vectorized(BackwardFromWinners::<true> {
            g,
            winners,
            y,
            dy,
            only_positive,
            dx,
            sums,
        });
    } else {
        // Zeroed while the image is in cache; cells in no window keep their 0.
        dx.fill(0.0);
        vectorized(BackwardFromWinners::<false> {
            g,
            winners,
            y,
            dy,
            only_positive,
            dx,
            sums,
        });
    }
}

/// One image's backward pass by the windows' winners (see [`image_backward_from_winners`]):
/// each window's gradient goes to its winning cell of `dx` and 0 to its other cells, stored over
/// them where `STORE` (windows that tile the image) or added to them (a zeroed `dx` otherwise).
struct BackwardFromWinners<'a, const STORE: bool> {
    g: &'a PoolGeometry,
    winners: &'a [u8],
    y: &'a [f32],
    dy: &'a [f32],
    only_positive: bool,
    dx: &'a mut [f32],
    sums: &'a mut [f32],
}

impl<const STORE: bool> Kernel for BackwardFromWinners<'_, STORE> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Self {
            g,
            winners,
            y,
            dy,
            only_positive,
            dx,
            sums,
        } = self;
        let c = g.channels;
        for (o, rows, cols) in windows(g) {
            let span = o * c..(o + 1) * c;
            let window = winners[span.clone()]
                .iter()
                .zip(&y[span.clone()])
                .zip(&dy[span]);
            for (sum, ((_, &max), &grad)) in sums.iter_mut().zip(window.clone()) {
                *sum += passed(max, grad, only_positive);
            }
            let cells = rows.flat_map(|iy| cols.clone().map(move |ix| iy * g.in_w + ix));
            for (cell, i) in cells.enumerate() {
                let cell = cell as u8;
                for (d, ((&winner, &max), &grad)) in dx[i * c..][..c].iter_mut().zip(window.clone())
                {
                    let routed = if winner == cell {
                        passed(max, grad, only_positive)
                    } else {
                        0.0
                    };
                    *d = if STORE { routed } else { *d + routed };
                }
            }
        }
    }
}

/// Each input row of an image under windows that never overlap, in order: the output row
/// whose window covers it and whether it is that window's first row inside the image, or None
/// for a row in no window.
fn disjoint_rows(g: &PoolGeometry) -> impl Iterator<Item = Option<(usize, bool)>> + '_ {
    (0..g.in_h).map(move |iy| {
        let padded = iy + g.padding.top;
        let (oy, offset) = (padded / g.strides.0, padded % g.strides.0);
        (oy < g.out_h && offset < g.pool.0).then_some((oy, offset == 0 || iy == 0))
    })
}

/// One input row of gradients and, for each cell of an output row and channel, whether its
/// window's first maximum is still to come.
struct DisjointScratch {
    row: Vec<f32>,
    pending: Vec<bool>,
}

impl DisjointScratch {
    fn new(g: &PoolGeometry) -> Self {
        Self {
            row: vec![0.0; g.in_w * g.channels],
            pending: vec![false; g.out_w * g.channels],
        }
    }
}

/// One image's gradient when no two windows overlap: each input row is built in `scratch` (its
/// cells outside every window 0) and written to `dx` once.
fn disjoint_backward_image(
    g: &PoolGeometry,
    x: &[f32],
    y: &[f32],
    dy: &[f32],
    dx: Uninit<'_>,
    scratch: &mut DisjointScratch,
) {
    let row_len = g.in_w * g.channels;
    for (iy, (cover, dx_row)) in disjoint_rows(g).zip(dx.pieces(row_len)).enumerate() {
        let Some((oy, first)) = cover else {
            dx_row.fill(0.0);
            continue;
        };
        if first {
            scratch.pending.fill(true);
        }
        let out_row = oy * g.out_w * g.channels..(oy + 1) * g.out_w * g.channels;
        vectorized(DisjointRow {
            g,
            x: &x[iy * row_len..][..row_len],
            y: &y[out_row.clone()],
            dy: &dy[out_row],
            row: &mut scratch.row,
            pending: &mut scratch.pending,
        });
        dx_row.concat([scratch.row.as_slice()]);
    }
}

/// One input row's gradients under one output row of disjoint windows: each cell gets its
/// window's gradient if it is the window's first maximum met so far (`pending` carries that over
/// the window's rows), else 0; cells outside every window get 0.
struct DisjointRow<'a> {
    g: &'a PoolGeometry,
    x: &'a [f32],
    y: &'a [f32],
    dy: &'a [f32],
    row: &'a mut [f32],
    pending: &'a mut [bool],
}

impl Kernel for DisjointRow<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Self {
            g,
            x,
            y,
            dy,
            row,
            pending,
        } = self;
        let c = g.channels;
        row.fill(0.0);
        for ox in 0..g.out_w {
            let (maxima, grads) = (&y[ox * c..][..c], &dy[ox * c..][..c]);
            let pending = &mut pending[ox * c..][..c];
            for ix in window(ox, g.strides.1, g.pool.1, g.padding.left, g.in_w) {
                let cells = row[ix * c..][..c].iter_mut().zip(&x[ix * c..][..c]);
                let window = maxima.iter().zip(grads).zip(pending.iter_mut());
                for ((d, &v), ((&max, &grad), pending)) in cells.zip(window) {
                    *d = routed(v, max, grad, pending);
                }
            }
        }
    }
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
                        *d += routed(v, max, grad, pending);
                    }
                }
            }
        }
    }
}
