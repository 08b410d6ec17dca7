//! Keras's names for classes: the snake case of layer default names, saved weight places and
//! identifiers such as `losses.get("MeanSquaredError")`.

/// Keras's `to_snake_case` (`keras/src/utils/naming.py`): `MaxPooling2D` → `max_pooling2d`,
/// `LSTMCell` → `lstm_cell`, `KLDivergence` → `kl_divergence`. Non-word characters are dropped.
pub fn to_snake_case(class_name: &str) -> String {
    let chars: Vec<char> = class_name
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    // `(.)([A-Z][a-z]+)` → `\1_\2`, matches taken left to right without overlap.
    let mut words = Vec::with_capacity(chars.len() + 4);
    let mut i = 0;
    while i < chars.len() {
        words.push(chars[i]);
        let capitalised = chars.get(i + 1).is_some_and(char::is_ascii_uppercase)
            && chars.get(i + 2).is_some_and(char::is_ascii_lowercase);
        i += 1;
        if capitalised {
            words.push('_');
            words.push(chars[i]);
            i += 1;
            while chars.get(i).is_some_and(char::is_ascii_lowercase) {
                words.push(chars[i]);
                i += 1;
            }
        }
    }
    // `([a-z])([A-Z])` → `\1_\2`, then lower case.
    let mut snake = String::with_capacity(words.len() + 4);
    for (i, c) in words.iter().enumerate() {
        if i > 0 && c.is_ascii_uppercase() && words[i - 1].is_ascii_lowercase() {
            snake.push('_');
        }
        snake.extend(c.to_lowercase());
    }
    snake
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_cases_class_names_as_keras() {
        let cases = [
            ("Dense", "dense"),
            ("Conv2D", "conv2d"),
            ("MaxPooling2D", "max_pooling2d"),
            ("UpSampling2D", "up_sampling2d"),
            ("BatchNormalization", "batch_normalization"),
            ("InputLayer", "input_layer"),
            ("LSTMCell", "lstm_cell"),
            ("GRU", "gru"),
            ("Sequential", "sequential"),
        ];
        for (class, snake) in cases {
            assert_eq!(to_snake_case(class), snake, "{class}");
        }
    }
}
