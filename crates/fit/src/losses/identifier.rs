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

/// Keras's `to_snake_case`: drops non-word characters, then, as its two regular expressions
/// do, puts `_` before a capital that starts a lower-case word (`(.)([A-Z][a-z]+)`) and between
/// a lower-case letter and a capital (`([a-z])([A-Z])`), and lower-cases the result.
fn to_snake_case(name: &str) -> String {
    let chars: Vec<char> = name
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    let mut words = Vec::with_capacity(chars.len() + 4);
    let mut i = 0;
    while i < chars.len() {
        words.push(chars[i]);
        let starts_word = chars.get(i + 1).is_some_and(char::is_ascii_uppercase)
            && chars.get(i + 2).is_some_and(char::is_ascii_lowercase);
        if starts_word {
            words.push('_');
            words.push(chars[i + 1]);
            i += 2;
            while i < chars.len() && chars[i].is_ascii_lowercase() {
                words.push(chars[i]);
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    let mut snake = String::with_capacity(words.len() + 4);
    for (i, &c) in words.iter().enumerate() {
        if i > 0 && words[i - 1].is_ascii_lowercase() && c.is_ascii_uppercase() {
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
            ("mean_squared_error", "mean_squared_error"),
        ] {
            assert_eq!(snake_case_identifier(class), snake, "{class}");
        }
    }
}
