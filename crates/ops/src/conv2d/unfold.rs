//! Data movement between images and their unfolded (im2col) rows, one image at a time.
//!
//! The image is read through a zero-padded frame (a copy, unless the windows reach no padding),
//! in which each kernel row of each output pixel is one contiguous run of `KW * Cin` values
//! (`Cin` when the kernel is dilated along the width). An unfolded row is these runs one after
//! the other, so unfolding is a sequence of copies and folding, its adjoint, a sequence of
//! additions. Images with few channels have runs of a few floats, where a call to `memcpy` costs
//! more than the copy: runs of up to 8 floats are moved by fixed-size, inlined code.

use crate::buffer::Uninit;

use super::geometry::ConvGeometry;

/// Evaluates `$body` with the constant `$n` equal to `$len` when it is 1 to 8, and 0 otherwise
/// (the length is then read at run time).
macro_rules! with_short_len {
    ($len:expr, $n:ident => $body:expr) => {
        with_short_len!(@arms $len, $n, $body, 1 2 3 4 5 6 7 8)
    };
    (@arms $len:expr, $n:ident, $body:expr, $($short:literal)*) => {
        match $len {
            $($short => {
                const $n: usize = $short;
                $body
            })*
            _ => {
                const $n: usize = 0;
                $body
            }
        }
    };
}

/// How one geometry's unfolded rows map onto its framed image.
pub(crate) struct Unfolder<'g> {
    g: &'g ConvGeometry,
    /// Whether the image is copied into a zero-padded frame (otherwise it is read in place).
    framed: bool,
    /// The frame's width in pixels (the image's own when it is read in place).
    frame_w: usize,
    /// Elements of a frame.
    frame_len: usize,
    /// Values per run.
    run_len: usize,
    /// Runs per kernel row.
    runs_per_row: usize,
}

impl<'g> Unfolder<'g> {
    /// The frame and runs of `g`.
    pub(crate) fn new(g: &'g ConvGeometry) -> Self {
        let p = &g.params;
        // The rows (columns) the windows span, counted from the first padding row (column).
        let reach_h = (g.out_h - 1) * p.strides.0 + (g.k_h - 1) * p.dilation.0 + 1;
        let reach_w = (g.out_w - 1) * p.strides.1 + (g.k_w - 1) * p.dilation.1 + 1;
        let framed =
            p.padding.top > 0 || p.padding.left > 0 || reach_h > g.in_h || reach_w > g.in_w;
        let (frame_h, frame_w) = if framed {
            (
                reach_h.max(p.padding.top + g.in_h),
                reach_w.max(p.padding.left + g.in_w),
            )
        } else {
            (g.in_h, g.in_w)
        };
        let (run_len, runs_per_row) = if p.dilation.1 == 1 {
            (g.k_w * g.in_c, 1)
        } else {
            (g.in_c, g.k_w)
        };
        Self {
            g,
            framed,
            frame_w,
            frame_len: frame_h * frame_w * g.in_c,
            run_len,
            runs_per_row,
        }
    }

    /// im2col: `cols[out_pixel][tap][c] = x[in_pixel][c]` (zero in the padding), for `x` one
    /// (H, W, Cin) image and `cols` its (out_pixels, taps * Cin) rows. `frame` is scratch.
    pub(crate) fn unfold(&self, x: &[f32], frame: &mut Vec<f32>, cols: &mut [f32]) {
        let src = self.source(x, frame);
        with_short_len!(self.run_len, N => self.copy_runs::<N>(src, cols))
    }

    /// The image `x` as the runs read it: in place, or copied into `frame` with its padding.
    pub(crate) fn source<'s>(&self, x: &'s [f32], frame: &'s mut Vec<f32>) -> &'s [f32] {
        if self.framed {
            self.fill_frame(x, frame);
            frame
        } else {
            x
        }
    }

    /// Where each output pixel's unfolded row starts in the [`Self::source`], in output order:
    /// its element `r` is at this start plus [`Self::element_offsets`]`[r]`.
    pub(crate) fn pixel_starts(&self) -> impl Iterator<Item = usize> + '_ {
        let g = self.g;
        let (s_h, s_w) = g.params.strides;
        (0..g.out_h).flat_map(move |oy| {
            (0..g.out_w).map(move |ox| (oy * s_h * self.frame_w + ox * s_w) * g.in_c)
        })
    }

    /// The offset of each element of an unfolded row from its pixel's start (see
    /// [`Self::pixel_starts`]): `taps * Cin` offsets, in the kernel's (KH, KW, Cin) order.
    pub(crate) fn element_offsets(&self) -> Vec<usize> {
        self.run_starts()
            .flat_map(|start| start..start + self.run_len)
            .collect()
    }

    /// The offset of each run of an unfolded row from its pixel's start, in row order.
    fn run_starts(&self) -> impl Iterator<Item = usize> + '_ {
        let g = self.g;
        let (d_h, d_w) = g.params.dilation;
        let (row_step, run_step) = (d_h * self.frame_w * g.in_c, d_w * g.in_c);
        (0..g.k_h)
            .flat_map(move |ky| (0..self.runs_per_row).map(move |kx| ky * row_step + kx * run_step))
    }

    /// col2im, the adjoint of [`Self::unfold`]: writes `dx[in_pixel][c]`, the sum of the
    /// `cols[out_pixel][tap][c]` that read it, over the whole image. `frame` is scratch.
    pub(crate) fn fold(&self, cols: &[f32], frame: &mut Vec<f32>, dx: Uninit<'_>) {
        if !self.framed {
            let dx = dx.fill(0.0);
            with_short_len!(self.run_len, N => self.add_runs::<N>(cols, dx));
            return;
        }
        frame.clear();
        frame.resize(self.frame_len, 0.0);
        with_short_len!(self.run_len, N => self.add_runs::<N>(cols, frame));
        let g = self.g;
        let (top, left) = (g.params.padding.top, g.params.padding.left);
        let interior_rows = frame
            .chunks_exact(self.frame_w * g.in_c)
            .skip(top)
            .take(g.in_h)
            .map(|row| &row[left * g.in_c..][..g.in_w * g.in_c]);
        dx.concat(interior_rows);
    }

    /// Copies image `x` into the middle of a frame zero elsewhere, writing each cell once (the
    /// scratch is reused from image to image, so only its padding needs zeros).
    fn fill_frame(&self, x: &[f32], frame: &mut Vec<f32>) {
        let g = self.g;
        let (top, left) = (g.params.padding.top, g.params.padding.left);
        let (row_len, left_len) = (g.in_w * g.in_c, left * g.in_c);
        frame.resize(self.frame_len, 0.0);
        for (fy, frame_row) in frame.chunks_exact_mut(self.frame_w * g.in_c).enumerate() {
            match fy.checked_sub(top).filter(|&iy| iy < g.in_h) {
                Some(iy) => {
                    let (left_pad, rest) = frame_row.split_at_mut(left_len);
                    let (interior, right_pad) = rest.split_at_mut(row_len);
                    left_pad.fill(0.0);
                    interior.copy_from_slice(&x[iy * row_len..][..row_len]);
                    right_pad.fill(0.0);
                }
                None => frame_row.fill(0.0),
            }
        }
    }

    /// `cols[run] = src[run]` over every run; `N` is the run length, or 0 for `self.run_len`.
    fn copy_runs<const N: usize>(&self, src: &[f32], cols: &mut [f32]) {
        let len = if N == 0 { self.run_len } else { N };
        self.for_each_run(len, |from, to| {
            cols[to..to + len].copy_from_slice(&src[from..from + len]);
        });
    }

    /// `frame[run] += cols[run]` over every run; `N` as in [`Self::copy_runs`].
    fn add_runs<const N: usize>(&self, cols: &[f32], frame: &mut [f32]) {
        let len = if N == 0 { self.run_len } else { N };
        self.for_each_run(len, |at, from| {
            add_assign(&mut frame[at..at + len], &cols[from..from + len]);
        });
    }

    /// Calls `visit(frame_offset, cols_offset)` for every run of `len` values, in the order of
    /// the unfolded rows (so `cols_offset` steps by `len`).
    #[inline(always)]
    fn for_each_run(&self, len: usize, mut visit: impl FnMut(usize, usize)) {
        let runs: Vec<usize> = self.run_starts().collect();
        let mut to = 0;
        for start in self.pixel_starts() {
            for &run in &runs {
                visit(start + run, to);
                to += len;
            }
        }
    }
}

/// `dst[k] += src[k]` over equal-length slices.
#[inline]
pub(crate) fn add_assign(dst: &mut [f32], src: &[f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::Fresh;
    use crate::conv2d::Conv2dParams;
    use crate::padding::Padding2d;

    fn geometry(in_c: usize) -> ConvGeometry {
        let params = Conv2dParams {
            strides: (1, 2),
            dilation: (2, 1),
            padding: Padding2d {
                top: 2,
                bottom: 1,
                left: 1,
                right: 0,
            },
        };
        ConvGeometry::new(&[1, 4, 5, in_c], &[2, 3, in_c, 3], &params).unwrap()
    }

    /// The unfolded rows straight from the definition: for each output pixel and tap, the input
    /// pixel's channels, or zeros in the padding.
    fn naive_unfold(g: &ConvGeometry, x: &[f32]) -> Vec<f32> {
        let p = &g.params;
        let mut cols = Vec::new();
        for oy in 0..g.out_h {
            for ox in 0..g.out_w {
                for ky in 0..g.k_h {
                    for kx in 0..g.k_w {
                        let iy = (oy * p.strides.0 + ky * p.dilation.0) as isize
                            - p.padding.top as isize;
                        let ix = (ox * p.strides.1 + kx * p.dilation.1) as isize
                            - p.padding.left as isize;
                        let inside = (0..g.in_h as isize).contains(&iy)
                            && (0..g.in_w as isize).contains(&ix);
                        for c in 0..g.in_c {
                            cols.push(if inside {
                                x[(iy as usize * g.in_w + ix as usize) * g.in_c + c]
                            } else {
                                0.0
                            });
                        }
                    }
                }
            }
        }
        cols
    }

    fn fold(g: &ConvGeometry, cols: &[f32]) -> Vec<f32> {
        let mut dx = Fresh::new(g.in_image_len());
        for image in dx.chunks(g.in_image_len()) {
            Unfolder::new(g).fold(cols, &mut Vec::new(), image);
        }
        dx.into_written()
    }

    /// Every lowering path (framed or read in place, short or long runs, dilated or not)
    /// against the definition, and the fold against the unfold: <unfold(x), cols> must equal
    /// <x, fold(cols)>, since the backward pass relies on the fold being the exact adjoint.
    #[test]
    fn unfold_matches_the_definition_and_fold_is_its_adjoint() {
        let unpadded = |strides, dilation| Conv2dParams {
            strides,
            dilation,
            padding: Padding2d::VALID,
        };
        let geometries = [
            geometry(1),
            geometry(4),
            ConvGeometry::new(&[1, 6, 7, 1], &[3, 3, 1, 2], &unpadded((2, 2), (1, 1))).unwrap(),
            ConvGeometry::new(&[1, 6, 7, 3], &[2, 2, 3, 2], &unpadded((1, 1), (2, 3))).unwrap(),
            ConvGeometry::new(&[1, 5, 5, 3], &[3, 3, 3, 2], &unpadded((1, 1), (1, 1))).unwrap(),
        ];
        for g in &geometries {
            let x: Vec<f32> = (0..g.in_image_len())
                .map(|i| (i as f32 * 0.7).sin())
                .collect();
            let cols_len = g.out_pixels() * g.taps() * g.in_c;
            let mut cols = vec![f32::NAN; cols_len];
            Unfolder::new(g).unfold(&x, &mut Vec::new(), &mut cols);
            assert_eq!(cols, naive_unfold(g, &x), "{g:?}");
            let probe: Vec<f32> = (0..cols_len).map(|i| (i as f32 * 0.3).cos()).collect();
            let folded = fold(g, &probe);
            let lhs: f32 = cols.iter().zip(&probe).map(|(a, b)| a * b).sum();
            let rhs: f32 = x.iter().zip(&folded).map(|(a, b)| a * b).sum();
            assert!((lhs - rhs).abs() < 1e-4, "{lhs} vs {rhs} for {g:?}");
        }
    }

    #[test]
    fn unfold_places_pixels_and_padding_zeros() {
        // 1 channel, 3x3 input, 2x2 kernel, 'same' (pad bottom/right by one).
        let params = Conv2dParams {
            strides: (1, 1),
            dilation: (1, 1),
            padding: Padding2d {
                top: 0,
                bottom: 1,
                left: 0,
                right: 1,
            },
        };
        let g = ConvGeometry::new(&[1, 3, 3, 1], &[2, 2, 1, 1], &params).unwrap();
        let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let mut cols = vec![f32::NAN; 9 * 4];
        Unfolder::new(&g).unfold(&x, &mut Vec::new(), &mut cols);
        assert_eq!(&cols[0..4], &[1., 2., 4., 5.]);
        assert_eq!(&cols[2 * 4..3 * 4], &[3., 0., 6., 0.]);
        assert_eq!(&cols[8 * 4..9 * 4], &[9., 0., 0., 0.]);
    }
}
