//! The number and time formats of Keras's `Progbar` (`keras/src/utils/progbar.py`).

use crate::format::{format_exponential, format_fixed};

/// Which threshold picks `%.4e` over `%.4f`; Keras uses a different one per verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueRule {
    /// The live bar (verbose 1): `%.4f` when `abs(v) > 1e-3`.
    Magnitude,
    /// The per-epoch line (verbose 2): `%.4f` when `v > 1e-3`, so negatives use `%.4e`.
    Signed,
}

/// Formats a metric value as Keras does: `%.4f`, or `%.4e` (`2.5516e-04`) for small values;
/// NaN prints as `nan` and infinities as `inf` / `-inf`, as in Python.
pub(crate) fn format_value(value: f64, rule: ValueRule) -> String {
    let fixed = match rule {
        ValueRule::Magnitude => value.abs() > 1e-3,
        ValueRule::Signed => value > 1e-3,
    };
    if fixed {
        format_fixed(value, 4)
    } else {
        format_exponential(value, 4)
    }
}

/// Formats metrics as Keras's live bar does, ` - name: value` each: training keys sorted by
/// name, then the `val_*` keys sorted (the order Keras's logs reach the bar in).
#[cfg(test)]
pub fn format_logs(logs: &[(String, f64)]) -> String {
    let mut ordered: Vec<&(String, f64)> = logs.iter().collect();
    ordered.sort_by(|(a, _), (b, _)| (a.starts_with("val_"), a).cmp(&(b.starts_with("val_"), b)));
    ordered
        .into_iter()
        .map(|(name, value)| metric(name, *value, ValueRule::Magnitude))
        .collect()
}

/// One ` - name: value` entry.
pub(crate) fn metric(name: &str, value: f64, rule: ValueRule) -> String {
    format!(" - {name}: {}", format_value(value, rule))
}

/// The time per step with a leading space: ` 8ms/step`, ` 2s/step` or ` 950us/step`.
pub(crate) fn time_per_step(seconds: f64) -> String {
    if seconds >= 1.0 || seconds == 0.0 {
        format!(" {seconds:.0}s/step")
    } else if seconds >= 1e-3 {
        format!(" {:.0}ms/step", seconds * 1000.0)
    } else {
        format!(" {:.0}us/step", seconds * 1_000_000.0)
    }
}

/// The remaining time: `42s`, `1:05` or `1:02:03` (Python `%d` truncates each part).
pub(crate) fn eta(seconds: f64) -> String {
    let whole = |v: f64| v.trunc() as u64;
    if seconds > 3600.0 {
        format!(
            "{}:{:02}:{:02}",
            whole(seconds / 3600.0),
            whole((seconds % 3600.0) / 60.0),
            whole(seconds % 60.0)
        )
    } else if seconds > 60.0 {
        format!("{}:{:02}", whole(seconds / 60.0), whole(seconds % 60.0))
    } else {
        format!("{}s", whole(seconds))
    }
}

/// The step counter `%{n}d/%d`, right-aligned to the number of digits of the target.
pub(crate) fn counter(current: usize, target: usize) -> String {
    let digits = target.to_string().len();
    format!("{current:>digits$}/{target}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_use_four_decimals_or_python_exponents() {
        let live = |v| format_value(v, ValueRule::Magnitude);
        assert_eq!(live(0.0785), "0.0785");
        assert_eq!(live(0.07854), "0.0785");
        assert_eq!(live(12.5), "12.5000");
        assert_eq!(live(2.5516e-4), "2.5516e-04");
        assert_eq!(live(1e-3), "1.0000e-03");
        assert_eq!(live(0.0010001), "0.0010");
        assert_eq!(live(0.0), "0.0000e+00");
        assert_eq!(live(-0.5), "-0.5000");
        assert_eq!(live(-2e-5), "-2.0000e-05");
        assert_eq!(live(1.5e-12), "1.5000e-12");
        assert_eq!(live(3e-120), "3.0000e-120");
        assert_eq!(live(f64::NAN), "nan");
        assert_eq!(live(f64::INFINITY), "inf");
        assert_eq!(live(f64::NEG_INFINITY), "-inf");
    }

    #[test]
    fn the_epoch_line_compares_signed_values() {
        let epoch = |v| format_value(v, ValueRule::Signed);
        assert_eq!(epoch(0.0785), "0.0785");
        assert_eq!(epoch(1e-3), "1.0000e-03");
        assert_eq!(epoch(-0.5), "-5.0000e-01");
        assert_eq!(epoch(f64::NAN), "nan");
    }

    #[test]
    fn logs_put_training_keys_first_each_group_sorted() {
        let logs = [
            ("val_loss".to_owned(), 0.0777),
            ("loss".to_owned(), 0.0785),
            ("val_accuracy".to_owned(), 0.97),
            ("accuracy".to_owned(), 0.96),
            ("zeta".to_owned(), 2.5516e-4),
        ];
        assert_eq!(
            format_logs(&logs),
            " - accuracy: 0.9600 - loss: 0.0785 - zeta: 2.5516e-04 \
             - val_accuracy: 0.9700 - val_loss: 0.0777"
        );
        assert_eq!(format_logs(&[]), "");
    }

    #[test]
    fn time_per_step_switches_units_at_one_second_and_one_millisecond() {
        assert_eq!(time_per_step(0.0), " 0s/step");
        assert_eq!(time_per_step(1.0), " 1s/step");
        assert_eq!(time_per_step(2.5), " 2s/step");
        assert_eq!(time_per_step(0.999), " 999ms/step");
        assert_eq!(time_per_step(0.0085), " 8ms/step");
        assert_eq!(time_per_step(0.0125), " 12ms/step");
        assert_eq!(time_per_step(1e-3), " 1ms/step");
        assert_eq!(time_per_step(0.000_999), " 999us/step");
        assert_eq!(time_per_step(4e-6), " 4us/step");
    }

    #[test]
    fn eta_formats() {
        assert_eq!(eta(0.0), "0s");
        assert_eq!(eta(59.9), "59s");
        assert_eq!(eta(60.0), "60s");
        assert_eq!(eta(65.7), "1:05");
        assert_eq!(eta(3600.0), "60:00");
        assert_eq!(eta(3723.9), "1:02:03");
    }

    #[test]
    fn counter_pads_to_the_target_width() {
        assert_eq!(counter(7, 235), "  7/235");
        assert_eq!(counter(235, 235), "235/235");
        assert_eq!(counter(1, 9), "1/9");
        assert_eq!(counter(10, 10), "10/10");
    }
}
