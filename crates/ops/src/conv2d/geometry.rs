//! The shape arithmetic of one convolution: sizes, tap tables, formulation and chunking.

use crate::error::OpsError;
use crate::padding::conv_output_len;

use super::direct::MAX_ROW_LEN;
use super::winograd::Winograd;
use super::Conv2dParams;

/// Name used in messages.
pub(crate) const OP: &str = "conv2d";

/// Every size a convolution kernel needs, validated once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConvGeometry {
    pub batch: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub in_c: usize,
    pub k_h: usize,
    pub k_w: usize,
    pub out_c: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub params: Conv2dParams,
}

impl ConvGeometry {
    /// Checks an NHWC input against a (KH, KW, Cin, Cout) kernel and derives the output size.
    pub(crate) fn new(
        x: &[usize],
        kernel: &[usize],
        params: &Conv2dParams,
    ) -> Result<Self, OpsError> {
        let (&[batch, in_h, in_w, in_c], &[k_h, k_w, k_c, out_c]) = (x, kernel) else {
            return Err(OpsError::ShapeMismatch {
                op: OP,
                expected: "x must be (N, H, W, Cin) and kernel (KH, KW, Cin, Cout)",
                lhs_name: "x",
                lhs: x.into(),
                rhs_name: "kernel",
                rhs: kernel.into(),
            });
        };
        if k_c != in_c {
            return Err(OpsError::ShapeMismatch {
                op: OP,
                expected: "the kernel's third axis must equal the input's channels",
                lhs_name: "x",
                lhs: x.into(),
                rhs_name: "kernel",
                rhs: kernel.into(),
            });
        }
        if in_h == 0 || in_w == 0 || in_c == 0 || out_c == 0 {
            return Err(OpsError::ShapeMismatch {
                op: OP,
                expected: "the input's height, width and channels and the kernel's filters must be positive",
                lhs_name: "x",
                lhs: x.into(),
                rhs_name: "kernel",
                rhs: kernel.into(),
            });
        }
        let (s_h, s_w) = params.strides;
        let (d_h, d_w) = params.dilation;
        if s_h == 0 || s_w == 0 || d_h == 0 || d_w == 0 || k_h == 0 || k_w == 0 {
            return Err(OpsError::Config {
                op: OP,
                reason: format!(
                    "kernel {:?}, strides {:?} and dilation {:?} must all be positive",
                    (k_h, k_w),
                    params.strides,
                    params.dilation
                ),
            });
        }
        let p = params.padding;
        let out_h = conv_output_len(in_h, k_h, s_h, d_h, p.top, p.bottom);
        let out_w = conv_output_len(in_w, k_w, s_w, d_w, p.left, p.right);
        let (Some(out_h), Some(out_w)) = (out_h, out_w) else {
            return Err(OpsError::InputTooSmall {
                op: OP,
                input: x.into(),
                padding: p.as_tuple(),
                window: ((k_h - 1) * d_h + 1, (k_w - 1) * d_w + 1),
            });
        };
        Ok(Self {
            batch,
            in_h,
            in_w,
            in_c,
            k_h,
            k_w,
            out_c,
            out_h,
            out_w,
            params: *params,
        })
    }

    /// Kernel positions per output pixel (KH * KW).
    pub(crate) fn taps(&self) -> usize {
        self.k_h * self.k_w
    }

    /// Pixels of one input image.
    pub(crate) fn in_pixels(&self) -> usize {
        self.in_h * self.in_w
    }

    /// Pixels of one output image.
    pub(crate) fn out_pixels(&self) -> usize {
        self.out_h * self.out_w
    }

    /// Elements of one input image.
    pub(crate) fn in_image_len(&self) -> usize {
        self.in_pixels() * self.in_c
    }

    /// Elements of one output image.
    pub(crate) fn out_image_len(&self) -> usize {
        self.out_pixels() * self.out_c
    }

    /// Elements of the kernel.
    pub(crate) fn kernel_len(&self) -> usize {
        self.taps() * self.in_c * self.out_c
    }

    /// The output shape (N, OH, OW, Cout).
    pub(crate) fn out_dims(&self) -> (usize, usize, usize, usize) {
        (self.batch, self.out_h, self.out_w, self.out_c)
    }

    /// The lowering that moves the fewest bytes for this layer.
    ///
    /// Rows of at most [`MAX_ROW_LEN`] values are summed directly from the image. 3x3 kernels
    /// with stride 1 over many channels take Winograd's, which multiplies least.
    /// Unfolding writes `out_pixels * taps * Cin` elements per image, projecting writes
    /// `in_pixels * taps * Cout`. Projecting computes every input pixel's contribution, so with a
    /// stride it would also multiply more than needed: it is only chosen for stride 1.
    pub(crate) fn formulation(&self) -> Formulation {
        if self.taps() * self.in_c <= MAX_ROW_LEN {
            return Formulation::Direct;
        }
        if Winograd::applies(self) {
            return Formulation::Winograd;
        }
        let unfold = self.out_pixels() * self.in_c;
        let project = self.in_pixels() * self.out_c;
        if self.params.strides == (1, 1) && project < unfold {
            Formulation::Project
        } else {
            Formulation::Unfold
        }
    }

    /// Scratch elements one image needs under `formulation`: its unfolded rows, or its
    /// projected planes, or its masked output gradient.
    pub(crate) fn scratch_per_image(&self, formulation: Formulation) -> usize {
        match formulation {
            Formulation::Direct => self.out_image_len(),
            Formulation::Unfold => self.out_pixels() * self.taps() * self.in_c,
            Formulation::Project => self.in_pixels() * self.taps() * self.out_c,
            Formulation::Winograd => Winograd::scratch_per_image(self),
        }
    }

    /// Elements one image's work touches under `formulation`: its input, its output and its
    /// scratch.
    pub(crate) fn working_set_per_image(&self, formulation: Formulation) -> usize {
        self.in_image_len() + self.out_image_len() + self.scratch_per_image(formulation)
    }
}

/// How a convolution is lowered onto one large matrix product per chunk of images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Formulation {
    /// Sum each output pixel's taps straight from the image, in registers (see `direct.rs`):
    /// for rows of a few values, where a matrix product is mostly overhead.
    Direct,
    /// im2col: gather each output pixel's receptive field into a row of `taps * Cin` values and
    /// multiply by the (taps * Cin, Cout) kernel. Cheap when Cin is small.
    Unfold,
    /// Multiply every input pixel by the (Cin, taps * Cout) kernel first, then add each output
    /// pixel's taps together from the shifted products. Cheap when Cout is small.
    Project,
    /// Winograd's F(2x2, 3x3) (see `winograd.rs`): 3x3 kernels with stride 1 over many
    /// channels, in 16 products per 2x2 output tile and channel pair instead of 36.
    Winograd,
}

/// How many images each parallel work item takes.
///
/// As many as fit in `WORKING_SET_TARGET` elements (at least one), so that the item's input,
/// scratch and output stay in the core's L2 cache between the passes over them (unfold, product,
/// bias and ReLU), and never so many that a thread sits idle.
pub(crate) fn images_per_chunk(
    batch: usize,
    working_set_per_image: usize,
    threads: usize,
) -> usize {
    /// Elements per work item: 1 MiB of f32, half a core's L2 on the machines we measure.
    const WORKING_SET_TARGET: usize = 1 << 18;
    let by_memory = (WORKING_SET_TARGET / working_set_per_image.max(1)).max(1);
    let by_balance = batch.div_ceil(threads.max(1)).max(1);
    by_memory.min(by_balance)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::padding::Padding2d;

    fn params(strides: (usize, usize), padding: Padding2d) -> Conv2dParams {
        Conv2dParams {
            strides,
            dilation: (1, 1),
            padding,
        }
    }

    #[test]
    fn same_even_kernel_geometry() {
        let p = params((1, 1), Padding2d::same((14, 14), (2, 2), (1, 1), (1, 1)));
        let g = ConvGeometry::new(&[3, 14, 14, 128], &[2, 2, 128, 32], &p).unwrap();
        assert_eq!(g.out_dims(), (3, 14, 14, 32));
        // Padding (0, 1): the last row's second tap falls outside.
        assert_eq!(g.params.padding.as_tuple(), (0, 1, 0, 1));
    }

    #[test]
    fn tutorial_layers_pick_the_cheaper_lowering() {
        let same = |h, k| params((1, 1), Padding2d::same((h, h), (k, k), (1, 1), (1, 1)));
        let g =
            |x: [usize; 4], k: [usize; 4]| ConvGeometry::new(&x, &k, &same(x[1], k[0])).unwrap();
        assert_eq!(
            g([1, 28, 28, 1], [7, 7, 1, 128]).formulation(),
            Formulation::Unfold
        );
        assert_eq!(
            g([1, 14, 14, 128], [2, 2, 128, 32]).formulation(),
            Formulation::Project
        );
        assert_eq!(
            g([1, 28, 28, 128], [7, 7, 128, 1]).formulation(),
            Formulation::Project
        );
        assert_eq!(
            g([1, 14, 14, 32], [2, 2, 32, 128]).formulation(),
            Formulation::Unfold
        );
        // keras.io's MNIST convnet: 3x3 'valid' on one channel, then on 32.
        let valid = |x: [usize; 4], k: [usize; 4]| {
            ConvGeometry::new(&x, &k, &params((1, 1), Padding2d::VALID)).unwrap()
        };
        assert_eq!(
            valid([1, 28, 28, 1], [3, 3, 1, 32]).formulation(),
            Formulation::Direct
        );
        assert_eq!(
            valid([1, 13, 13, 32], [3, 3, 32, 64]).formulation(),
            Formulation::Winograd
        );
    }

    #[test]
    fn strided_dilated_output_size() {
        let p = Conv2dParams {
            strides: (2, 1),
            dilation: (1, 2),
            padding: Padding2d {
                top: 1,
                bottom: 0,
                left: 2,
                right: 2,
            },
        };
        let g = ConvGeometry::new(&[1, 5, 4, 2], &[3, 3, 2, 1], &p).unwrap();
        // Height: (5 + 1 - 3) / 2 + 1 = 2; width: (4 + 4 - 5) / 1 + 1 = 4.
        assert_eq!((g.out_h, g.out_w), (2, 4));
    }

    #[test]
    fn bad_shapes_are_refused_with_both_shapes() {
        let p = params((1, 1), Padding2d::VALID);
        let err = ConvGeometry::new(&[1, 5, 5, 3], &[3, 3, 2, 4], &p).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("[1, 5, 5, 3]") && text.contains("[3, 3, 2, 4]"),
            "{text}"
        );
        let err = ConvGeometry::new(&[1, 2, 5, 3], &[3, 3, 3, 4], &p).unwrap_err();
        assert!(matches!(err, OpsError::InputTooSmall { .. }));
        let err = ConvGeometry::new(
            &[1, 5, 5, 3],
            &[3, 3, 3, 4],
            &params((0, 1), Padding2d::VALID),
        )
        .unwrap_err();
        assert!(matches!(err, OpsError::Config { .. }));
    }

    #[test]
    fn chunks_balance_threads_and_bound_memory() {
        assert_eq!(images_per_chunk(256, 1000, 2), 128);
        assert_eq!(images_per_chunk(256, 1 << 16, 2), 4);
        assert_eq!(images_per_chunk(256, 1 << 18, 2), 1);
        assert_eq!(images_per_chunk(256, 1 << 30, 2), 1);
        assert_eq!(images_per_chunk(1, 10, 8), 1);
    }
}
