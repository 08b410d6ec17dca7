//! Spatial padding and the output-length arithmetic shared by convolution and pooling.

/// Padding on each side of the two spatial axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Padding2d {
    /// Rows added above the input.
    pub top: usize,
    /// Rows added below the input.
    pub bottom: usize,
    /// Columns added left of the input.
    pub left: usize,
    /// Columns added right of the input.
    pub right: usize,
}

impl Padding2d {
    /// No padding at all (Keras's `padding="valid"`).
    pub const VALID: Self = Self {
        top: 0,
        bottom: 0,
        left: 0,
        right: 0,
    };

    /// TensorFlow/Keras `padding="same"` for an input of `input` (height, width) under a window
    /// of `kernel`, `strides` and `dilation` (all (height, width)).
    pub fn same(
        input: (usize, usize),
        kernel: (usize, usize),
        strides: (usize, usize),
        dilation: (usize, usize),
    ) -> Self {
        let (top, bottom) = same_padding(input.0, kernel.0, strides.0, dilation.0);
        let (left, right) = same_padding(input.1, kernel.1, strides.1, dilation.1);
        Self {
            top,
            bottom,
            left,
            right,
        }
    }

    /// The padding as a (top, bottom, left, right) tuple, for messages.
    pub fn as_tuple(&self) -> (usize, usize, usize, usize) {
        (self.top, self.bottom, self.left, self.right)
    }
}

/// TensorFlow/Keras 'same' padding for one axis: total = max((ceil(n/s)-1)*s + (k-1)*d + 1 - n, 0); before = total/2, after = total - before.
///
/// A stride of 0 is treated as 1 (callers validate strides before they convolve).
pub fn same_padding(input: usize, kernel: usize, stride: usize, dilation: usize) -> (usize, usize) {
    let stride = stride.max(1);
    let effective_kernel = kernel.saturating_sub(1) * dilation + 1;
    let covered = input.div_ceil(stride).saturating_sub(1) * stride + effective_kernel;
    let total = covered.saturating_sub(input);
    let before = total / 2;
    (before, total - before)
}

/// Output length of one axis (None if the padded input is smaller than the dilated kernel).
///
/// Also None for a zero kernel, stride or dilation, which describe no window at all.
pub fn conv_output_len(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    before: usize,
    after: usize,
) -> Option<usize> {
    if kernel == 0 || stride == 0 || dilation == 0 {
        return None;
    }
    let padded = input + before + after;
    let effective_kernel = (kernel - 1) * dilation + 1;
    padded
        .checked_sub(effective_kernel)
        .map(|room| room / stride + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_kernel_stride_one_pads_symmetrically() {
        assert_eq!(same_padding(28, 7, 1, 1), (3, 3));
        assert_eq!(same_padding(5, 3, 1, 1), (1, 1));
    }

    #[test]
    fn even_kernel_stride_one_puts_the_extra_pixel_after() {
        // Keras: an even kernel with stride 1 gives (k/2 - 1, k/2).
        assert_eq!(same_padding(14, 2, 1, 1), (0, 1));
        assert_eq!(same_padding(10, 4, 1, 1), (1, 2));
    }

    #[test]
    fn pooling_seven_by_two_gives_four_with_one_after() {
        assert_eq!(same_padding(7, 2, 2, 1), (0, 1));
        assert_eq!(conv_output_len(7, 2, 2, 1, 0, 1), Some(4));
    }

    #[test]
    fn strided_and_dilated_same_padding() {
        // n=8, k=3, s=2: (4-1)*2 + 3 - 8 = 1 -> (0, 1).
        assert_eq!(same_padding(8, 3, 2, 1), (0, 1));
        // n=5, k=3, d=2: effective kernel 5, total 4 -> (2, 2).
        assert_eq!(same_padding(5, 3, 1, 2), (2, 2));
        // No negative padding when the stride overshoots.
        assert_eq!(same_padding(4, 1, 3, 1), (0, 0));
    }

    #[test]
    fn same_padding_keeps_ceil_of_input_over_stride() {
        for n in 1..20 {
            for k in 1..6 {
                for s in 1..4 {
                    for d in 1..3 {
                        let (b, a) = same_padding(n, k, s, d);
                        assert_eq!(conv_output_len(n, k, s, d, b, a), Some(n.div_ceil(s)));
                    }
                }
            }
        }
    }

    #[test]
    fn valid_output_lengths() {
        assert_eq!(conv_output_len(28, 7, 1, 1, 0, 0), Some(22));
        assert_eq!(conv_output_len(7, 2, 2, 1, 0, 0), Some(3));
        assert_eq!(conv_output_len(5, 3, 1, 3, 0, 0), None);
        assert_eq!(conv_output_len(5, 0, 1, 1, 0, 0), None);
        assert_eq!(conv_output_len(5, 3, 0, 1, 0, 0), None);
    }

    #[test]
    fn padding_struct_matches_the_axis_function() {
        let p = Padding2d::same((7, 14), (2, 2), (2, 1), (1, 1));
        assert_eq!(p.as_tuple(), (0, 1, 0, 1));
        assert_eq!(Padding2d::VALID, Padding2d::default());
    }
}
