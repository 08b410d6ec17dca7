//! The builders the binary cross-entropies share (`BinaryCrossentropy`,
//! `BinaryFocalCrossentropy`): Keras's `from_logits` and `label_smoothing` arguments.

/// `from_logits` and `label_smoothing` builders for a loss with fields of those names.
macro_rules! binary_crossentropy_builders {
    ($loss:ty) => {
        impl $loss {
            /// Whether `y_pred` holds logits rather than probabilities.
            pub fn from_logits(mut self, from_logits: bool) -> Self {
                self.from_logits = from_logits;
                self
            }

            /// Squeezes targets towards 0.5: `y·(1 - s) + 0.5·s`, with `s` in `[0, 1]`.
            pub fn label_smoothing(mut self, smoothing: f64) -> Self {
                self.label_smoothing = smoothing;
                self
            }
        }
    };
}
