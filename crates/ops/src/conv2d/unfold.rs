//! Data movement between images and the matrices the convolution multiplies, one image at a time.
//!
//! Every function walks the (output pixel, tap) pairs through the two axis tap tables; a tap that
//! falls into the padding reads zero or writes nothing.

use super::geometry::{AxisTaps, ConvGeometry};

/// A run of consecutive taps along the width axis that read consecutive input columns
/// (or all read padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    /// The first kernel column of the run.
    tap: usize,
    /// The input column of the first tap, or None for padding.
    input: Option<usize>,
    /// How many taps the run covers.
    len: usize,
}

/// Merges one output column's taps into runs.
fn runs_of(taps: &[Option<usize>]) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for (tap, &input) in taps.iter().enumerate() {
        if let Some(last) = runs.last_mut() {
            let continues = match (last.input, input) {
                (None, None) => true,
                (Some(start), Some(i)) => start + last.len == i,
                _ => false,
            };
            if continues {
                last.len += 1;
                continue;
            }
        }
        runs.push(Run { tap, input, len: 1 });
    }
    runs
}

/// The (output pixel, tap) → input pixel walk of one geometry.
pub(crate) struct TapWalk<'g> {
    geometry: &'g ConvGeometry,
    rows: AxisTaps,
    col_runs: Vec<Vec<Run>>,
}

impl<'g> TapWalk<'g> {
    /// Builds the tap tables of `geometry`.
    pub(crate) fn new(geometry: &'g ConvGeometry) -> Self {
        let cols = geometry.col_taps();
        Self {
            geometry,
            rows: geometry.row_taps(),
            col_runs: (0..geometry.out_w).map(|ox| runs_of(cols.of(ox))).collect(),
        }
    }

    /// Calls `visit(out_pixel, tap, in_pixel, len)` for runs of taps of every output pixel:
    /// taps `tap..tap + len` read input pixels `in_pixel..in_pixel + len` (one image row), or
    /// padding when `in_pixel` is None. Together the runs cover every tap exactly once.
    #[inline]
    fn for_each_run(&self, mut visit: impl FnMut(usize, usize, Option<usize>, usize)) {
        let g = self.geometry;
        for oy in 0..g.out_h {
            let row_taps = self.rows.of(oy);
            for (ox, runs) in self.col_runs.iter().enumerate() {
                let out_pixel = oy * g.out_w + ox;
                for (ky, iy) in row_taps.iter().enumerate() {
                    let row_start = ky * g.k_w;
                    match iy {
                        None => visit(out_pixel, row_start, None, g.k_w),
                        Some(iy) => {
                            for run in runs {
                                let in_pixel = run.input.map(|ix| iy * g.in_w + ix);
                                visit(out_pixel, row_start + run.tap, in_pixel, run.len);
                            }
                        }
                    }
                }
            }
        }
    }

    /// im2col: `cols[out_pixel][tap][c] = x[in_pixel][c]` (zero in the padding).
    /// `x` is one (H, W, Cin) image, `cols` is (out_pixels, taps * Cin).
    pub(crate) fn unfold(&self, x: &[f32], cols: &mut [f32]) {
        let c = self.geometry.in_c;
        let row_len = self.geometry.taps() * c;
        self.for_each_run(|o, tap, i, len| {
            let dst = &mut cols[o * row_len + tap * c..][..len * c];
            match i {
                Some(i) => dst.copy_from_slice(&x[i * c..][..len * c]),
                None => dst.fill(0.0),
            }
        });
    }

    /// col2im: `dx[in_pixel][c] += cols[out_pixel][tap][c]`, the adjoint of [`Self::unfold`].
    pub(crate) fn fold_add(&self, cols: &[f32], dx: &mut [f32]) {
        let c = self.geometry.in_c;
        let row_len = self.geometry.taps() * c;
        self.for_each_run(|o, tap, i, len| {
            if let Some(i) = i {
                add_assign(
                    &mut dx[i * c..][..len * c],
                    &cols[o * row_len + tap * c..][..len * c],
                );
            }
        });
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
    use crate::conv2d::Conv2dParams;
    use crate::padding::Padding2d;

    fn geometry() -> ConvGeometry {
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
        ConvGeometry::new(&[1, 4, 5, 2], &[2, 3, 2, 3], &params).unwrap()
    }

    /// <unfold(x), cols> must equal <x, fold_add(cols)>: the backward pass relies on the fold
    /// being the exact adjoint of the unfold.
    #[test]
    fn unfold_and_fold_are_adjoint() {
        let g = geometry();
        let walk = TapWalk::new(&g);
        let x: Vec<f32> = (0..g.in_image_len())
            .map(|i| (i as f32 * 0.7).sin())
            .collect();
        let cols_len = g.out_pixels() * g.taps() * g.in_c;
        let probe: Vec<f32> = (0..cols_len).map(|i| (i as f32 * 0.3).cos()).collect();
        let mut cols = vec![f32::NAN; cols_len];
        walk.unfold(&x, &mut cols);
        let mut folded = vec![0.0; x.len()];
        walk.fold_add(&probe, &mut folded);
        let lhs: f32 = cols.iter().zip(&probe).map(|(a, b)| a * b).sum();
        let rhs: f32 = x.iter().zip(&folded).map(|(a, b)| a * b).sum();
        assert!((lhs - rhs).abs() < 1e-4, "{lhs} vs {rhs}");
    }

    #[test]
    fn runs_merge_consecutive_columns_and_padding() {
        let taps = [None, None, Some(0), Some(1), Some(3), None];
        assert_eq!(
            runs_of(&taps),
            vec![
                Run {
                    tap: 0,
                    input: None,
                    len: 2
                },
                Run {
                    tap: 2,
                    input: Some(0),
                    len: 2
                },
                Run {
                    tap: 4,
                    input: Some(3),
                    len: 1
                },
                Run {
                    tap: 5,
                    input: None,
                    len: 1
                },
            ]
        );
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
        TapWalk::new(&g).unfold(&x, &mut cols);
        assert_eq!(&cols[0..4], &[1., 2., 4., 5.]);
        assert_eq!(&cols[2 * 4..3 * 4], &[3., 0., 6., 0.]);
        assert_eq!(&cols[8 * 4..9 * 4], &[9., 0., 0., 0.]);
    }
}
