//! Keras's class names as identifiers: `losses.get("MeanSquaredError")` and
//! `metrics.get("AUC")` find the class by its snake-case name
//! (`keras/src/utils/naming.py`: `to_snake_case`).

/// The snake-case form of a Keras identifier: a class name (`"TopKCategoricalAccuracy"`,
/// `"KLDivergence"`, `"AUC"`) becomes the name of its function or snake-case entry
/// (`"top_k_categorical_accuracy"`, `"kl_divergence"`, `"auc"`); an identifier without capitals
/// is returned as it is.
pub(crate) fn snake_case_identifier(name: &str) -> String {
    if !name.chars().any(|c| c.is_ascii_uppercase()) {
        return name.to_string();
    }
    rkeras_layers::naming::to_snake_case(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_become_keras_snake_case() {
        for (class, snake) in [
            ("TopKCategoricalAccuracy", "top_k_categorical_accuracy"),
            (
                "SparseTopKCategoricalAccuracy",
                "sparse_top_k_categorical_accuracy",
            ),
            ("KLDivergence", "kl_divergence"),
            ("AUC", "auc"),
            ("MSE", "mse"),
            ("RootMeanSquaredError", "root_mean_squared_error"),
            ("LogCoshError", "log_cosh_error"),
            ("BinaryFocalCrossentropy", "binary_focal_crossentropy"),
            ("Precision", "precision"),
            ("LSTMCell", "lstm_cell"),
            ("Conv2DTranspose", "conv2d_transpose"),
            ("mean_squared_error", "mean_squared_error"),
        ] {
            assert_eq!(snake_case_identifier(class), snake, "{class}");
        }
    }
}
