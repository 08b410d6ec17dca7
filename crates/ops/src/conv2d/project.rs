//! The projecting lowering's data movement, on channel-major planes.
//!
//! With stride 1, the tap (ky, kx) of every output pixel reads the input pixel at a fixed offset.
//! So once the input is multiplied by the kernel into one plane per (tap, output channel), the
//! output is a sum of shifted planes, and the backward spreads shifted copies of the output
//! gradient: contiguous row operations, whatever the channel counts.

use std::ops::Range;

use super::geometry::ConvGeometry;
use super::unfold::add_assign;

/// Where one tap's shifted plane overlaps the output.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shift {
    /// Output rows this tap reads inside the input.
    out_rows: Range<usize>,
    /// The input row read by the first of them.
    first_in_row: usize,
    /// Output columns this tap reads inside the input.
    out_cols: Range<usize>,
    /// The input column read by the first of them.
    first_in_col: usize,
}

/// One axis: the output indices `o` with `0 <= o + offset - before < input`, and the first input.
fn overlap(out_len: usize, in_len: usize, offset: usize, before: usize) -> (Range<usize>, usize) {
    let start = before.saturating_sub(offset);
    let end = (in_len + before).saturating_sub(offset).min(out_len);
    if start >= end {
        return (0..0, 0);
    }
    (start..end, start + offset - before)
}

/// The shifts of every tap of a stride-1 convolution, over channel-major planes of a chunk of
/// `images` images.
pub(crate) struct Planes<'g> {
    geometry: &'g ConvGeometry,
    shifts: Vec<Shift>,
}

impl<'g> Planes<'g> {
    /// Builds the per-tap shifts of `geometry` (which must have stride 1).
    pub(crate) fn new(geometry: &'g ConvGeometry) -> Self {
        let g = geometry;
        debug_assert_eq!(
            g.params.strides,
            (1, 1),
            "the projecting lowering needs stride 1"
        );
        let (d_h, d_w) = g.params.dilation;
        let pad = g.params.padding;
        let shifts = (0..g.k_h)
            .flat_map(|ky| (0..g.k_w).map(move |kx| (ky, kx)))
            .map(|(ky, kx)| {
                let (out_rows, first_in_row) = overlap(g.out_h, g.in_h, ky * d_h, pad.top);
                let (out_cols, first_in_col) = overlap(g.out_w, g.in_w, kx * d_w, pad.left);
                Shift {
                    out_rows,
                    first_in_row,
                    out_cols,
                    first_in_col,
                }
            })
            .collect();
        Self { geometry, shifts }
    }

    /// Calls `visit(tap, out_offset, in_offset, len)` for every row segment where a tap's plane
    /// overlaps one image's output plane (offsets within an image).
    fn for_each_segment(&self, mut visit: impl FnMut(usize, usize, usize, usize)) {
        let g = self.geometry;
        for (tap, shift) in self.shifts.iter().enumerate() {
            let len = shift.out_cols.len();
            if len == 0 {
                continue;
            }
            for (step, oy) in shift.out_rows.clone().enumerate() {
                let iy = shift.first_in_row + step;
                visit(
                    tap,
                    oy * g.out_w + shift.out_cols.start,
                    iy * g.in_w + shift.first_in_col,
                    len,
                );
            }
        }
    }

    /// `y[c][image][o] += z[tap][c][image][i(o, tap)]` summed over taps: `z` holds
    /// `taps * Cout` planes of `images * in_pixels`, `y` holds `Cout` planes of
    /// `images * out_pixels`.
    pub(crate) fn gather_add(&self, images: usize, z: &[f32], y: &mut [f32]) {
        let g = self.geometry;
        let (in_plane, out_plane) = (images * g.in_pixels(), images * g.out_pixels());
        self.for_each_segment(|tap, out_offset, in_offset, len| {
            for c in 0..g.out_c {
                let z = &z[(tap * g.out_c + c) * in_plane..][..in_plane];
                let y = &mut y[c * out_plane..][..out_plane];
                for image in 0..images {
                    add_assign(
                        &mut y[image * g.out_pixels() + out_offset..][..len],
                        &z[image * g.in_pixels() + in_offset..][..len],
                    );
                }
            }
        });
    }

    /// `dz[tap][c][image][i(o, tap)] = dy[c][image][o]`, zero elsewhere: the adjoint of
    /// [`Self::gather_add`].
    pub(crate) fn scatter(&self, images: usize, dy: &[f32], dz: &mut [f32]) {
        let g = self.geometry;
        let (in_plane, out_plane) = (images * g.in_pixels(), images * g.out_pixels());
        dz.fill(0.0);
        self.for_each_segment(|tap, out_offset, in_offset, len| {
            for c in 0..g.out_c {
                let dz = &mut dz[(tap * g.out_c + c) * in_plane..][..in_plane];
                let dy = &dy[c * out_plane..][..out_plane];
                for image in 0..images {
                    dz[image * g.in_pixels() + in_offset..][..len]
                        .copy_from_slice(&dy[image * g.out_pixels() + out_offset..][..len]);
                }
            }
        });
    }
}

/// Transposes row-major (rows, channels) into channel-major (channels, rows), zeroing the cells
/// where `mask` (same layout as `src`) is not positive.
pub(crate) fn to_channel_major(
    src: &[f32],
    mask: Option<&[f32]>,
    channels: usize,
    dst: &mut [f32],
) {
    let rows = src.len() / channels;
    match mask {
        Some(mask) => {
            for (r, (row, mask_row)) in src
                .chunks_exact(channels)
                .zip(mask.chunks_exact(channels))
                .enumerate()
            {
                for (c, (&v, &m)) in row.iter().zip(mask_row).enumerate() {
                    dst[c * rows + r] = if m > 0.0 { v } else { 0.0 };
                }
            }
        }
        None => {
            for (r, row) in src.chunks_exact(channels).enumerate() {
                for (c, &v) in row.iter().enumerate() {
                    dst[c * rows + r] = v;
                }
            }
        }
    }
}

/// Transposes channel-major (channels, rows) into row-major (rows, channels), applying ReLU.
pub(crate) fn from_channel_major(src: &[f32], channels: usize, relu: bool, dst: &mut [f32]) {
    let rows = src.len() / channels;
    for (r, row) in dst.chunks_exact_mut(channels).enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            let value = src[c * rows + r];
            *v = if relu { value.max(0.0) } else { value };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv2d::Conv2dParams;
    use crate::padding::Padding2d;

    #[test]
    fn overlap_clips_to_both_images() {
        // out 5, in 5, 'same' 3x3 (before 1): tap 0 reads o-1, valid for o in 1..5.
        assert_eq!(overlap(5, 5, 0, 1), (1..5, 0));
        assert_eq!(overlap(5, 5, 2, 1), (0..4, 1));
        // 'valid' 3 on 5 -> out 3: tap 2 reads o+2.
        assert_eq!(overlap(3, 5, 2, 0), (0..3, 2));
        // A tap entirely in the padding.
        assert_eq!(overlap(2, 1, 0, 3), (0..0, 0));
    }

    /// <gather(z), dy> = <z, scatter(dy)>, and gather matches a direct per-pixel sum.
    #[test]
    fn gather_and_scatter_are_adjoint_and_shift_correctly() {
        let params = Conv2dParams {
            strides: (1, 1),
            dilation: (2, 1),
            padding: Padding2d {
                top: 2,
                bottom: 1,
                left: 0,
                right: 1,
            },
        };
        let g = ConvGeometry::new(&[2, 4, 5, 1], &[2, 2, 1, 3], &params).unwrap();
        let planes = Planes::new(&g);
        let images = 2;
        let z_len = g.taps() * g.out_c * images * g.in_pixels();
        let y_len = g.out_c * images * g.out_pixels();
        let z: Vec<f32> = (0..z_len).map(|i| (i as f32 * 0.37).sin()).collect();
        let dy: Vec<f32> = (0..y_len).map(|i| (i as f32 * 0.13).cos()).collect();
        let mut y = vec![0.0; y_len];
        planes.gather_add(images, &z, &mut y);
        let mut dz = vec![f32::NAN; z_len];
        planes.scatter(images, &dy, &mut dz);
        let lhs: f32 = y.iter().zip(&dy).map(|(a, b)| a * b).sum();
        let rhs: f32 = z.iter().zip(&dz).map(|(a, b)| a * b).sum();
        assert!((lhs - rhs).abs() < 1e-4, "{lhs} vs {rhs}");
        // Direct sum for one output cell: image 1, channel 2, (oy, ox) = (2, 3).
        let (image, c, oy, ox) = (1, 2, 2, 3);
        let mut expected = 0.0;
        for ky in 0..2 {
            for kx in 0..2 {
                let (iy, ix) = (oy + 2 * ky, ox + kx);
                if (2..6).contains(&iy) && ix < 5 {
                    let tap = ky * 2 + kx;
                    let plane = (tap * 3 + c) * images * 20;
                    expected += z[plane + image * 20 + (iy - 2) * 5 + ix];
                }
            }
        }
        let got = y[c * images * g.out_pixels() + image * g.out_pixels() + oy * g.out_w + ox];
        assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");
    }

    #[test]
    fn channel_major_round_trip_with_mask_and_relu() {
        let src = [1.0, -2.0, 3.0, -4.0, 5.0, -6.0];
        let mask = [1.0, 0.0, 1.0, 1.0, -1.0, 2.0];
        let mut t = [0.0; 6];
        to_channel_major(&src, Some(&mask), 2, &mut t);
        assert_eq!(t, [1.0, 3.0, 0.0, 0.0, -4.0, -6.0]);
        let mut back = [0.0; 6];
        from_channel_major(&t, 2, true, &mut back);
        assert_eq!(back, [1.0, 0.0, 3.0, 0.0, 0.0, 0.0]);
    }
}
