//! The direct lowering, for convolutions whose unfolded rows are short (few taps times few input
//! channels, such as a first layer on one-channel images).
//!
//! A matrix product over rows of a handful of values spends its time packing and on partial
//! register tiles, and the unfolded rows it reads are a copy of the image several times over.
//! Here each output pixel's values are summed in registers straight from the (framed) image: the
//! forward pass writes every output cell once with its bias and ReLU applied, and the kernel
//! gradient is summed in registers over a whole image before it is added to the total.

use std::mem::MaybeUninit;

use crate::buffer::Uninit;
use crate::simd::{vectorized, Kernel};

use super::geometry::ConvGeometry;
use super::scratch::Scratch;
use super::unfold::Unfolder;

/// The longest unfolded row (`taps * Cin`) the direct lowering takes.
pub(crate) const MAX_ROW_LEN: usize = 16;

/// Output channels per register block.
pub(super) const LANES: usize = 16;

/// Evaluates `$body` with the constant `$r` equal to `$len`, which must be 1 to
/// [`MAX_ROW_LEN`].
macro_rules! with_row_len {
    ($len:expr, $r:ident => $body:expr) => {
        with_row_len!(@arms $len, $r, $body, 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16)
    };
    (@arms $len:expr, $r:ident, $body:expr, $($n:literal)*) => {
        match $len {
            $($n => {
                const $r: usize = $n;
                $body
            })*
            len => unreachable!("the direct lowering takes rows of 1 to {MAX_ROW_LEN}, not {len}"),
        }
    };
}

/// A geometry's tables for the direct lowering, built once per call.
pub(crate) struct Direct<'g> {
    g: &'g ConvGeometry,
    unfolder: Unfolder<'g>,
    /// Where each output pixel's row starts in the framed image.
    starts: Vec<usize>,
    /// Each row element's offset from its pixel's start.
    offsets: Vec<usize>,
}

impl<'g> Direct<'g> {
    /// The tables of `g`, whose rows must hold at most [`MAX_ROW_LEN`] values.
    pub(crate) fn new(g: &'g ConvGeometry) -> Self {
        debug_assert!(g.taps() * g.in_c <= MAX_ROW_LEN);
        let unfolder = Unfolder::new(g);
        Self {
            starts: unfolder.pixel_starts().collect(),
            offsets: unfolder.element_offsets(),
            unfolder,
            g,
        }
    }

    /// The unfolded rows' layout, for the passes that go through a matrix product.
    pub(crate) fn unfolder(&self) -> &Unfolder<'g> {
        &self.unfolder
    }

    /// Writes `relu?(conv(x, kernel) + bias)` of one (H, W, Cin) image into `y`, its
    /// (OH, OW, Cout) output.
    pub(crate) fn forward(
        &self,
        x: &[f32],
        kernel: &[f32],
        bias: Option<&[f32]>,
        relu: bool,
        scratch: &mut Scratch,
        y: Uninit<'_>,
    ) {
        let src = self.unfolder.source(x, &mut scratch.frame);
        debug_assert_eq!(self.starts.len() * self.g.out_c, y.len());
        let write = |out: &mut [MaybeUninit<f32>]| {
            with_row_len!(self.offsets.len(), R => vectorized(ForwardImage::<R> {
                src,
                starts: &self.starts,
                offsets: self.offsets[..R].try_into().expect("R offsets"),
                kernel,
                bias,
                relu,
                cout: self.g.out_c,
                out,
            }))
        };
        // SAFETY: `ForwardImage` writes every channel of every output pixel, and `y` holds one
        // image's output pixels (one start each).
        unsafe { y.write_with(write) };
    }

    /// Adds one image's kernel gradient, `sum over pixels of row(x) ⊗ dy`, to `kernel_grad`
    /// ((taps * Cin, Cout)), for `x` one (H, W, Cin) image and `dy` its output gradient (ReLU
    /// mask applied). `frame` is scratch.
    pub(crate) fn add_kernel_grad(
        &self,
        x: &[f32],
        dy: &[f32],
        frame: &mut Vec<f32>,
        kernel_grad: &mut [f32],
    ) {
        let src = self.unfolder.source(x, frame);
        with_row_len!(self.offsets.len(), R => vectorized(KernelGrad::<R> {
            src,
            starts: &self.starts,
            offsets: self.offsets[..R].try_into().expect("R offsets"),
            dy,
            cout: self.g.out_c,
            kernel_grad,
        }));
    }
}

/// `LANES` values of `row` from `at`, zeros past its end.
#[inline(always)]
fn lanes_at(row: &[f32], at: usize) -> [f32; LANES] {
    match row.get(at..at + LANES) {
        Some(full) => full.try_into().expect("LANES values"),
        None => std::array::from_fn(|l| row.get(at + l).copied().unwrap_or(0.0)),
    }
}

/// One image's forward pass with rows of `R` values into `out` ((OH * OW, Cout)), each cell
/// written once, one block of [`LANES`] output channels at a time: the block's kernel columns
/// stay in registers while each pixel's sum is formed in one more.
struct ForwardImage<'a, const R: usize> {
    src: &'a [f32],
    starts: &'a [usize],
    offsets: [usize; R],
    kernel: &'a [f32],
    bias: Option<&'a [f32]>,
    relu: bool,
    cout: usize,
    out: &'a mut [MaybeUninit<f32>],
}

impl<const R: usize> Kernel for ForwardImage<'_, R> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Self {
            src,
            starts,
            offsets,
            kernel,
            bias,
            relu,
            cout,
            out,
        } = self;
        for block in (0..cout).step_by(LANES) {
            let lanes = (cout - block).min(LANES);
            let start = bias.map_or([0.0; LANES], |bias| lanes_at(bias, block));
            let mut weights = [[0.0f32; LANES]; R];
            for (w, k_row) in weights.iter_mut().zip(kernel.chunks_exact(cout)) {
                *w = lanes_at(k_row, block);
            }
            for (&pixel, out) in starts.iter().zip(out.chunks_exact_mut(cout)) {
                let mut acc = start;
                for (w, &offset) in weights.iter().zip(&offsets) {
                    let v = src[pixel + offset];
                    for (a, &w) in acc.iter_mut().zip(w) {
                        *a += v * w;
                    }
                }
                for (cell, &a) in out[block..][..lanes].iter_mut().zip(&acc) {
                    cell.write(if relu { a.max(0.0) } else { a });
                }
            }
        }
    }
}

/// One image's kernel gradient with rows of `R` values, summed in registers one block of
/// [`LANES`] output channels at a time.
struct KernelGrad<'a, const R: usize> {
    src: &'a [f32],
    starts: &'a [usize],
    offsets: [usize; R],
    dy: &'a [f32],
    cout: usize,
    kernel_grad: &'a mut [f32],
}

impl<const R: usize> Kernel for KernelGrad<'_, R> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Self {
            src,
            starts,
            offsets,
            dy,
            cout,
            kernel_grad,
        } = self;
        for block in (0..cout).step_by(LANES) {
            let lanes = (cout - block).min(LANES);
            let mut acc = [[0.0f32; LANES]; R];
            for (&start, dy_row) in starts.iter().zip(dy.chunks_exact(cout)) {
                let d = lanes_at(dy_row, block);
                for (acc, &offset) in acc.iter_mut().zip(&offsets) {
                    let v = src[start + offset];
                    for (a, &d) in acc.iter_mut().zip(&d) {
                        *a += v * d;
                    }
                }
            }
            for (acc, k_row) in acc.iter().zip(kernel_grad.chunks_exact_mut(cout)) {
                for (k, &a) in k_row[block..][..lanes].iter_mut().zip(acc) {
                    *k += a;
                }
            }
        }
    }
}
