//! Python's `repr(float)`: how Keras's callbacks print a logged value (`str.format` with no
//! spec, the `csv` module, f-strings).

/// A float's decimal digits and exponent: the value is `0.d1d2d3... * 10^point`.
pub(crate) struct Digits {
    /// Significant digits, no leading or trailing zeros (`"0"` for zero).
    pub digits: String,
    /// Where the decimal point goes, counted from the left of `digits`.
    pub point: i32,
}

impl Digits {
    /// Splits Rust's `{:e}` form of a finite, non-negative float (`"7.85e-2"`) into digits
    /// and the decimal point's position.
    pub(crate) fn from_exponential(formatted: &str) -> Self {
        let (mantissa, exponent) = split_exponential(formatted);
        Self {
            digits: mantissa.replace('.', ""),
            point: exponent + 1,
        }
    }
}

/// Rust's `{:e}` form of a finite float (`"7.85e-2"`) as its mantissa and exponent.
pub(crate) fn split_exponential(formatted: &str) -> (&str, i32) {
    let (mantissa, exponent) = formatted
        .split_once('e')
        .expect("Rust's exponential form always contains 'e'");
    let exponent = exponent
        .parse()
        .expect("Rust's exponential form has an integer exponent");
    (mantissa, exponent)
}

/// Python's exponent suffix: `e`, a sign, at least two digits (`e-05`, `e+16`).
pub(crate) fn python_exponent(exponent: i32) -> String {
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("e{sign}{:02}", exponent.unsigned_abs())
}

/// Writes `x` as Python's `repr(x)` does: the shortest digits that read back as `x`, in
/// positional form when the decimal point falls within 16 places of the digits and always
/// with a fractional part there (`1.0`, `0.0001`), in exponent form otherwise (`1e-05`,
/// `1.5e+16`); `nan`, `inf`, `-inf`, `-0.0`. (CPython's `float_repr_style == 'short'`.)
pub(crate) fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".to_string();
    }
    let sign = if x.is_sign_negative() { "-" } else { "" };
    if x.is_infinite() {
        return format!("{sign}inf");
    }
    // Rust's `{:e}` writes the shortest round-trip digits, as Python's repr does.
    let Digits { digits, point } = Digits::from_exponential(&format!("{:e}", x.abs()));
    let body = if point <= -4 || point > 16 {
        let (first, rest) = digits.split_at(1);
        let fraction = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        format!("{first}{fraction}{}", python_exponent(point - 1))
    } else if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else {
        let point = point as usize;
        if point >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point - digits.len()))
        } else {
            format!("{}.{}", &digits[..point], &digits[point..])
        }
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_python_repr() {
        // Expected strings are CPython 3's repr of the same floats.
        let cases: &[(f64, &str)] = &[
            (f64::from(0.0785_f32), "0.07850000262260437"),
            (0.1, "0.1"),
            (1.0, "1.0"),
            (-2.5, "-2.5"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (100.0, "100.0"),
            (1234.5678, "1234.5678"),
            (1e-4, "0.0001"),
            (1.5e-5, "1.5e-05"),
            (1e-5, "1e-05"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.2345e16, "1.2345e+16"),
            (1e100, "1e+100"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::from(1e-3_f32), "0.0010000000474974513"),
            (f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for &(x, expected) in cases {
            assert_eq!(float_repr(x), expected, "repr of {x:e}");
        }
    }

    #[test]
    fn exponent_suffix_has_a_sign_and_two_digits() {
        assert_eq!(python_exponent(-5), "e-05");
        assert_eq!(python_exponent(0), "e+00");
        assert_eq!(python_exponent(16), "e+16");
        assert_eq!(python_exponent(-324), "e-324");
    }
}
