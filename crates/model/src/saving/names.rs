//! The names a file gives (models, layers, layer classes), checked on save and on load, and
//! any text from a file shown escaped in messages, so that a hostile name never reaches a
//! terminal raw.
//!
//! The rule follows Keras 3, which refuses `/` in a layer's name (`Operation.__init__`: it
//! separates the parts of weight paths), and adds what a terminal needs: a name is not empty,
//! has at most [`MAX_NAME_CHARS`] characters, and holds no control character (Unicode `Cc`:
//! escape sequences, newlines) and no bidirectional control (which reorders what is shown).

use std::fmt;

use super::spec::{ModelSpec, TensorRef};

/// The longest name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 256;

/// The most characters of a name a message shows.
const MAX_SHOWN_CHARS: usize = 200;

/// The most characters of a message that may quote a file's text.
const MAX_MESSAGE_CHARS: usize = 4000;

/// Characters that reorder the text around them (U+061C, U+200E-F, U+202A-E, U+2066-9).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn is_unprintable(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

/// Checks `name`, the name of a `what` ("layer", "model", "layer class").
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    let problem = if name.is_empty() {
        "is empty".to_string()
    } else if name.chars().count() > MAX_NAME_CHARS {
        format!("is longer than {MAX_NAME_CHARS} characters")
    } else if name.contains('/') {
        "contains '/', which separates the parts of weight paths".to_string()
    } else if name.chars().any(char::is_control) {
        "contains a control character".to_string()
    } else if name.chars().any(is_bidi_control) {
        "contains a bidirectional control character".to_string()
    } else {
        return Ok(());
    };
    Err(format!("{what} name '{}' {problem}", Shown(name)))
}

/// Checks every name `spec` gives, nested models excepted (they are checked when built):
/// the model's, its layers' and their classes', and those its inputs, calls and outputs name.
pub fn check_spec_names(spec: &ModelSpec) -> Result<(), String> {
    check_name("model", &spec.name)?;
    for layer in &spec.layers {
        check_name("layer", &layer.name)?;
        check_name("layer class", &layer.class_name)?;
    }
    let referred = spec.nodes.iter().flat_map(|node| {
        std::iter::once(node.layer.as_str())
            .chain(node.inbound.iter().map(|TensorRef(l, ..)| l.as_str()))
    });
    let outputs = spec.outputs.iter().map(|TensorRef(l, ..)| l.as_str());
    spec.inputs
        .iter()
        .map(String::as_str)
        .chain(referred)
        .chain(outputs)
        .try_for_each(|name| check_name("layer", name))
}

/// A name from a file as a message shows it: control and bidirectional characters escaped
/// (`\u{1b}`), and cut after [`MAX_SHOWN_CHARS`] characters.
pub struct Shown<'a>(pub &'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.0, MAX_SHOWN_CHARS)
    }
}

/// A message that may quote a file's text: control and bidirectional characters escaped, and
/// cut after [`MAX_MESSAGE_CHARS`] characters.
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.0, MAX_MESSAGE_CHARS)
    }
}

fn write_escaped(f: &mut fmt::Formatter<'_>, text: &str, max_chars: usize) -> fmt::Result {
    for (i, c) in text.chars().enumerate() {
        if i == max_chars {
            let rest = text.chars().count() - i;
            return write!(f, "... ({rest} more characters)");
        }
        if is_unprintable(c) {
            write!(f, "{}", c.escape_default())?;
        } else {
            write!(f, "{c}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_keras_and_stay_printable() {
        for good in ["dense", "dense_1", "couche_é", "隠れ層", "a b", "a.b-c"] {
            assert_eq!(check_name("layer", good), Ok(()), "{good}");
        }
        for bad in ["", "a/b", "x\u{1b}[31m", "x\ny", "abc\u{202e}cba", "\u{7f}"] {
            assert!(check_name("layer", bad).is_err(), "{bad:?}");
        }
        assert!(check_name("layer", &"n".repeat(MAX_NAME_CHARS)).is_ok());
        assert!(check_name("layer", &"n".repeat(MAX_NAME_CHARS + 1)).is_err());
        let err = check_name("layer", "\u{1b}[2J").unwrap_err();
        assert_eq!(err, r"layer name '\u{1b}[2J' contains a control character");
    }

    #[test]
    fn shown_text_is_escaped_and_cut() {
        assert_eq!(Shown("a\u{1b}b\u{202e}").to_string(), r"a\u{1b}b\u{202e}");
        assert_eq!(Shown("é\tx").to_string(), r"é\tx");
        let long = Shown(&"x".repeat(MAX_SHOWN_CHARS + 5)).to_string();
        assert!(long.ends_with("x... (5 more characters)"), "{long}");
        assert_eq!(Escaped("x\ny").to_string(), r"x\ny");
    }
}
