//! Python's and its libraries' text formats, reproduced character for character where Keras's
//! output goes through them: `str.format` (checkpoint file paths, logged values), `repr(float)`
//! (the values callbacks print and write), and rich's text wrapping (the summary table).

mod float_repr;
mod str_format;
mod text_wrap;

pub(crate) use float_repr::float_repr;
pub(crate) use str_format::{format_exponential, format_fixed, format_template, FormatValue};
pub(crate) use text_wrap::{fit_to_width, wrap, Justify, Overflow};
