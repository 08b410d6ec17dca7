//! The part of Python's `str.format` that Keras's `ModelCheckpoint` file paths use:
//! named fields (`{epoch}`, `{epoch:02d}`, `{val_loss:.4f}`), escaped braces, and the format
//! spec mini-language `[[fill]align][sign][0][width][.precision][type]` with the types
//! `d`, `f`, `F`, `e`, `E`, `g`, `G`, `%` and none.

use super::float_repr::{float_repr, python_exponent, split_exponential, Digits};

/// A value a field can be filled with: Python passes `epoch` and `batch` as `int` and the
/// logged values as `float`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum FormatValue {
    /// A Python `int`.
    Int(i64),
    /// A Python `float`.
    Float(f64),
}

/// Why a template could not be filled in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FormatError {
    /// A field names a value that was not supplied (Python's `KeyError`).
    #[error("no value named `{0}` to fill the field {{{0}}}")]
    MissingKey(String),
    /// The template's braces or field names are malformed or outside the supported subset.
    #[error("{0}")]
    Template(String),
    /// A format spec that is malformed, unsupported, or wrong for the value's type.
    #[error("format spec {spec:?}: {reason}")]
    Spec {
        /// The spec after the colon.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Fills `template` as Python's `template.format(**values)` would, looking each field's
/// name up with `lookup`.
pub(crate) fn format_template(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<FormatValue>,
) -> Result<String, FormatError> {
    let mut out = String::with_capacity(template.len());
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        match c {
            '{' => {
                let rest = chars.as_str();
                if let Some(after) = rest.strip_prefix('{') {
                    out.push('{');
                    chars = after.chars();
                    continue;
                }
                let end = rest.find('}').ok_or_else(|| {
                    FormatError::Template("single '{' encountered in format string".into())
                })?;
                out.push_str(&format_field(&rest[..end], lookup)?);
                chars = rest[end + 1..].chars();
            }
            '}' => {
                let rest = chars.as_str();
                let after = rest.strip_prefix('}').ok_or_else(|| {
                    FormatError::Template("single '}' encountered in format string".into())
                })?;
                out.push('}');
                chars = after.chars();
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

/// Python's `format(x, f".{decimals}f")`: fixed-point, `nan`/`inf` spelled in lower case.
pub(crate) fn format_fixed(x: f64, decimals: usize) -> String {
    format_float(x, decimals, 'f')
}

/// Python's `format(x, f".{decimals}e")` (and `"%.{decimals}e" % x`): one digit before the
/// point, a signed exponent of at least two digits (`2.5516e-04`), `nan`/`inf` in lower case.
pub(crate) fn format_exponential(x: f64, decimals: usize) -> String {
    format_float(x, decimals, 'e')
}

/// Python's `format(x, f".{decimals}{kind}")`.
fn format_float(x: f64, decimals: usize, kind: char) -> String {
    let spec = Spec {
        fill: ' ',
        align: Align::Right,
        sign: Sign::Minus,
        width: 0,
        precision: Some(decimals),
        kind: Some(kind),
    };
    let (negative, body) = spec.float_body(x, spec.kind);
    spec.pad(if negative { "-" } else { "" }, &body)
}

/// Formats one replacement field, the text between `{` and `}`.
fn format_field(
    field: &str,
    lookup: &dyn Fn(&str) -> Option<FormatValue>,
) -> Result<String, FormatError> {
    let (name, spec) = field.split_once(':').unwrap_or((field, ""));
    if name.is_empty() || name.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FormatError::Template(format!(
            "positional field {{{field}}} is not supported: name a value, as {{epoch}}"
        )));
    }
    if spec.contains('{') {
        return Err(FormatError::Template(format!(
            "nested fields in {{{field}}} are not supported"
        )));
    }
    if let Some(special) = name.chars().find(|c| matches!(c, '.' | '[' | '!')) {
        return Err(FormatError::Template(format!(
            "field {{{field}}}: '{special}' (attribute, index or conversion) is not supported"
        )));
    }
    let value = lookup(name).ok_or_else(|| FormatError::MissingKey(name.to_string()))?;
    let spec_error = |reason: String| FormatError::Spec {
        spec: spec.to_string(),
        reason,
    };
    let parsed = Spec::parse(spec).map_err(spec_error)?;
    parsed.apply(value).map_err(spec_error)
}

/// Horizontal placement of a value in a wider field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
    Center,
    /// Padding between the sign and the digits.
    AfterSign,
}

/// What to write before a non-negative number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sign {
    Minus,
    Plus,
    Space,
}

/// A parsed format spec.
#[derive(Debug, Clone, PartialEq)]
struct Spec {
    fill: char,
    align: Align,
    sign: Sign,
    width: usize,
    precision: Option<usize>,
    kind: Option<char>,
}

impl Spec {
    /// Parses `[[fill]align][sign][0][width][.precision][type]`.
    fn parse(spec: &str) -> Result<Self, String> {
        let chars: Vec<char> = spec.chars().collect();
        let mut i = 0;
        let align_of = |c: char| match c {
            '<' => Some(Align::Left),
            '>' => Some(Align::Right),
            '^' => Some(Align::Center),
            '=' => Some(Align::AfterSign),
            _ => None,
        };
        let (mut fill, mut align) = (None, None);
        if let Some(a) = chars.get(1).copied().and_then(align_of) {
            (fill, align) = (Some(chars[0]), Some(a));
            i = 2;
        } else if let Some(a) = chars.first().copied().and_then(align_of) {
            align = Some(a);
            i = 1;
        }
        let mut sign = Sign::Minus;
        if let Some(s) = chars.get(i).and_then(|c| match c {
            '+' => Some(Sign::Plus),
            '-' => Some(Sign::Minus),
            ' ' => Some(Sign::Space),
            _ => None,
        }) {
            sign = s;
            i += 1;
        }
        if matches!(chars.get(i), Some('z' | '#')) {
            return Err(format!("option '{}' is not supported", chars[i]));
        }
        if chars.get(i) == Some(&'0') {
            // Python: a leading zero means zero fill and, unless given, sign-aware alignment.
            fill = fill.or(Some('0'));
            align = align.or(Some(Align::AfterSign));
            i += 1;
        }
        let width = take_number(&chars, &mut i)?.unwrap_or(0);
        if matches!(chars.get(i), Some(',' | '_')) {
            return Err(format!("grouping option '{}' is not supported", chars[i]));
        }
        let mut precision = None;
        if chars.get(i) == Some(&'.') {
            i += 1;
            precision =
                Some(take_number(&chars, &mut i)?.ok_or("format specifier missing precision")?);
        }
        let kind = chars.get(i).copied();
        if let Some(k) = kind {
            if !"dfFeEgG%".contains(k) {
                return Err(format!("unknown format code '{k}'"));
            }
            i += 1;
        }
        if i != chars.len() {
            return Err("invalid format specifier".into());
        }
        Ok(Self {
            fill: fill.unwrap_or(' '),
            align: align.unwrap_or(Align::Right),
            sign,
            width,
            precision,
            kind,
        })
    }

    /// Formats `value` under this spec, or says why Python would refuse.
    fn apply(&self, value: FormatValue) -> Result<String, String> {
        let (negative, body) = match (value, self.kind) {
            (FormatValue::Int(n), None | Some('d')) => {
                if self.precision.is_some() {
                    return Err("precision not allowed in integer format specifier".into());
                }
                (n < 0, n.unsigned_abs().to_string())
            }
            (FormatValue::Int(n), Some(kind)) => self.float_body(n as f64, Some(kind)),
            (FormatValue::Float(_), Some('d')) => {
                return Err("unknown format code 'd' for object of type 'float'".into())
            }
            (FormatValue::Float(x), kind) => self.float_body(x, kind),
        };
        let sign = match (negative, self.sign) {
            (true, _) => "-",
            (false, Sign::Plus) => "+",
            (false, Sign::Space) => " ",
            (false, Sign::Minus) => "",
        };
        Ok(self.pad(sign, &body))
    }

    /// The sign and the unsigned text of a float under this spec's type and precision.
    fn float_body(&self, x: f64, kind: Option<char>) -> (bool, String) {
        let negative = x.is_sign_negative() && !x.is_nan();
        let magnitude = x.abs();
        let body = if !magnitude.is_finite() {
            let word = if x.is_nan() { "nan" } else { "inf" };
            let suffix = if kind == Some('%') { "%" } else { "" };
            format!("{word}{suffix}")
        } else {
            match (kind, self.precision) {
                (None, None) => float_repr(magnitude),
                (None, Some(p)) => general(magnitude, p.max(1), true),
                (Some('f' | 'F'), p) => format!("{magnitude:.*}", p.unwrap_or(6)),
                (Some('e' | 'E'), p) => exponential(magnitude, p.unwrap_or(6)),
                (Some('g' | 'G'), p) => general(magnitude, p.unwrap_or(6).max(1), false),
                (Some('%'), p) => format!("{:.*}%", p.unwrap_or(6), magnitude * 100.0),
                (Some(other), _) => unreachable!("format code '{other}' was rejected by parse"),
            }
        };
        let upper = matches!(kind, Some('F' | 'E' | 'G'));
        (negative, if upper { body.to_uppercase() } else { body })
    }

    /// Pads `sign` + `body` to the spec's width.
    fn pad(&self, sign: &str, body: &str) -> String {
        let len = sign.chars().count() + body.chars().count();
        let padding = self.width.saturating_sub(len);
        let fill = |n: usize| self.fill.to_string().repeat(n);
        match self.align {
            Align::Left => format!("{sign}{body}{}", fill(padding)),
            Align::Right => format!("{}{sign}{body}", fill(padding)),
            Align::Center => format!(
                "{}{sign}{body}{}",
                fill(padding / 2),
                fill(padding - padding / 2)
            ),
            Align::AfterSign => format!("{sign}{}{body}", fill(padding)),
        }
    }
}

/// Reads a run of decimal digits at `chars[*i..]`, if any.
fn take_number(chars: &[char], i: &mut usize) -> Result<Option<usize>, String> {
    let start = *i;
    while chars.get(*i).is_some_and(char::is_ascii_digit) {
        *i += 1;
    }
    if start == *i {
        return Ok(None);
    }
    let digits: String = chars[start..*i].iter().collect();
    digits
        .parse()
        .map(Some)
        .map_err(|_| format!("number {digits} is too large"))
}

/// Python's `e` type: one digit, `precision` decimals, a signed two-digit exponent.
fn exponential(magnitude: f64, precision: usize) -> String {
    let rust = format!("{magnitude:.precision$e}");
    let (mantissa, exponent) = split_exponential(&rust);
    format!("{mantissa}{}", python_exponent(exponent))
}

/// Python's `g` type with `precision` significant digits (at least 1), trailing zeros
/// removed. With `add_dot_zero` it is the no-type form with a precision: positional form
/// keeps a `.0`, and exponent form starts one place earlier (CPython's `format_float_short`).
fn general(magnitude: f64, precision: usize, add_dot_zero: bool) -> String {
    let rounded = Digits::from_exponential(&format!("{magnitude:.*e}", precision - 1));
    let exponent = if magnitude == 0.0 {
        0
    } else {
        rounded.point - 1
    };
    let limit = if add_dot_zero {
        precision as i32 - 1
    } else {
        precision as i32
    };
    if (-4..limit).contains(&exponent) {
        let decimals = (precision as i32 - 1 - exponent) as usize;
        let fixed = strip_fraction_zeros(&format!("{magnitude:.decimals$}"));
        if add_dot_zero && !fixed.contains('.') {
            format!("{fixed}.0")
        } else {
            fixed
        }
    } else {
        let full = exponential(magnitude, precision - 1);
        let (mantissa, suffix) = full.split_at(full.find('e').expect("exponential form"));
        format!("{}{suffix}", strip_fraction_zeros(mantissa))
    }
}

/// Removes trailing zeros after a decimal point, and the point if nothing follows it.
fn strip_fraction_zeros(number: &str) -> String {
    if number.contains('.') {
        number
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    } else {
        number.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(template: &str) -> Result<String, FormatError> {
        format_template(template, &|name| match name {
            "epoch" => Some(FormatValue::Int(3)),
            "batch" => Some(FormatValue::Int(12)),
            "val_loss" => Some(FormatValue::Float(f64::from(0.0785_f32))),
            "loss" => Some(FormatValue::Float(-1.5)),
            _ => None,
        })
    }

    fn spec(value: FormatValue, spec: &str) -> Result<String, String> {
        Spec::parse(spec)?.apply(value)
    }

    #[test]
    fn fills_keras_style_checkpoint_paths() {
        assert_eq!(fill("model.{epoch}.keras").unwrap(), "model.3.keras");
        assert_eq!(
            fill("{epoch:02d}-{val_loss:.4f}.weights.h5").unwrap(),
            "03-0.0785.weights.h5"
        );
        assert_eq!(fill("ckpt-{val_loss}").unwrap(), "ckpt-0.07850000262260437");
        assert_eq!(fill("{{epoch}}-{batch:03d}").unwrap(), "{epoch}-012");
        assert_eq!(fill("a}}b{{").unwrap(), "a}b{");
        assert_eq!(fill("plain.keras").unwrap(), "plain.keras");
    }

    #[test]
    fn rejects_what_python_rejects() {
        assert_eq!(
            fill("{val_acc}.keras"),
            Err(FormatError::MissingKey("val_acc".into()))
        );
        assert!(matches!(fill("{epoch"), Err(FormatError::Template(_))));
        assert!(matches!(fill("epoch}"), Err(FormatError::Template(_))));
        assert!(matches!(fill("{}"), Err(FormatError::Template(_))));
        assert!(matches!(fill("{0}"), Err(FormatError::Template(_))));
        assert!(matches!(fill("{epoch!r}"), Err(FormatError::Template(_))));
        assert!(matches!(fill("{loss:d}"), Err(FormatError::Spec { .. })));
        assert!(matches!(fill("{epoch:.2d}"), Err(FormatError::Spec { .. })));
        assert!(matches!(fill("{epoch:x}"), Err(FormatError::Spec { .. })));
        assert!(matches!(fill("{loss:.f}"), Err(FormatError::Spec { .. })));
        assert!(matches!(fill("{loss:,f}"), Err(FormatError::Spec { .. })));
        assert!(matches!(fill("{loss:.2fx}"), Err(FormatError::Spec { .. })));
    }

    #[test]
    fn float_types_match_python() {
        use FormatValue::{Float, Int};
        // Expected strings are CPython 3's format(value, spec).
        let cases: &[(FormatValue, &str, &str)] = &[
            (Float(0.125), ".2f", "0.12"),
            (Float(2.5), ".0f", "2"),
            (Float(-0.0), ".3f", "-0.000"),
            (Float(1.5), "f", "1.500000"),
            (Float(1.125), ".2e", "1.12e+00"),
            (Int(3), "e", "3.000000e+00"),
            (Float(-1.5e-7), "E", "-1.500000E-07"),
            (Float(0.000123), "g", "0.000123"),
            (Float(123456789.0), "g", "1.23457e+08"),
            (Float(0.0), "g", "0"),
            (Float(-0.0), "g", "-0"),
            (Float(1e-5), "g", "1e-05"),
            (Float(1e-5), "G", "1E-05"),
            (Float(100.0), ".3", "1e+02"),
            (Float(12.0), ".3", "12.0"),
            (Float(123.0), ".3", "1.23e+02"),
            (Float(0.5), ".3", "0.5"),
            (Float(0.0), ".3", "0.0"),
            (Float(1.0), "%", "100.000000%"),
            (Int(1), ".1%", "100.0%"),
            (Float(f64::NAN), "08.2f", "00000nan"),
            (Float(f64::NEG_INFINITY), "e", "-inf"),
            (Float(f64::INFINITY), "F", "INF"),
            (Float(-f64::NAN), "f", "nan"),
            (Float(f64::INFINITY), "%", "inf%"),
        ];
        for &(value, spec_text, expected) in cases {
            assert_eq!(
                spec(value, spec_text).as_deref(),
                Ok(expected),
                "format({value:?}, {spec_text:?})"
            );
        }
    }

    #[test]
    fn fixed_and_exponential_match_python() {
        assert_eq!(format_fixed(0.123456789, 5), "0.12346");
        assert_eq!(format_fixed(-2.0, 2), "-2.00");
        assert_eq!(format_fixed(f64::NAN, 5), "nan");
        assert_eq!(format_exponential(2.5516e-4, 4), "2.5516e-04");
        assert_eq!(format_exponential(-0.5, 4), "-5.0000e-01");
        assert_eq!(format_exponential(3e-120, 4), "3.0000e-120");
        assert_eq!(format_exponential(f64::NEG_INFINITY, 4), "-inf");
    }

    #[test]
    fn width_fill_sign_and_alignment_match_python() {
        use FormatValue::{Float, Int};
        let cases: &[(FormatValue, &str, &str)] = &[
            (Int(5), "02d", "05"),
            (Int(123), "02d", "123"),
            (Int(-5), "05d", "-0005"),
            (Int(5), "<05d", "50000"),
            (Int(7), "+d", "+7"),
            (Int(7), " 4d", "   7"),
            (Int(7), "4", "   7"),
            (Int(7), "<4", "7   "),
            (Float(-1.5), "=+8.2f", "-   1.50"),
            (Float(-1.5), "*^9.2f", "**-1.50**"),
            (Float(1.5), "^6.1f", " 1.5  "),
            (Float(2.25), "x>7.2f", "xxx2.25"),
        ];
        for &(value, spec_text, expected) in cases {
            assert_eq!(
                spec(value, spec_text).as_deref(),
                Ok(expected),
                "format({value:?}, {spec_text:?})"
            );
        }
    }
}
