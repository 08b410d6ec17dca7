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
    to_snake_case(name)
}

/// Keras's `to_snake_case` (`keras/src/utils/naming.py`): drops non-word characters, puts `_`
/// before a capital that follows a character and starts a lower-case word (its regular
/// expression `(.)([A-Z][a-z]+)`) or that follows a lower-case letter (`([a-z])([A-Z])`), and
/// lower-cases the result.
fn to_snake_case(name: &str) -> String {
    let chars: Vec<char> = name
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    let mut snake = String::with_capacity(chars.len() + 4);
    for (i, c) in chars.iter().enumerate() {
        let after_lower = i > 0 && chars[i - 1].is_ascii_lowercase();
        let starts_word = i > 0 && chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
        if c.is_ascii_uppercase() && (after_lower || starts_word) {
            snake.push('_');
        }
        snake.push(c.to_ascii_lowercase());
    }
    snake
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
