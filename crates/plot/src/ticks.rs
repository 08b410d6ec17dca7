//! Axis ticks at "nice" values (1, 2 or 5 times a power of ten) and their labels.

/// Evenly spaced tick values covering a data range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Ticks {
    /// The lowest tick, at or below the data's minimum.
    pub(crate) low: f64,
    /// The highest tick, at or above the data's maximum.
    pub(crate) high: f64,
    /// The distance between ticks.
    pub(crate) step: f64,
}

impl Ticks {
    /// Ticks covering [`min`, `max`] (finite, `min <= max`) with about `target` intervals.
    /// An empty range is widened around its value first.
    pub(crate) fn covering(min: f64, max: f64, target: usize) -> Self {
        let (min, max) = if max > min {
            (min, max)
        } else {
            let half = if min == 0.0 { 1.0 } else { min.abs() * 0.1 };
            (min - half, max + half)
        };
        let step = nice_step((max - min) / target.max(1) as f64);
        // The slack keeps a bound that is a multiple of the step up to rounding on it.
        let slack = 1e-9;
        Self {
            low: (min / step + slack).floor() * step,
            high: (max / step - slack).ceil() * step,
            step,
        }
    }

    /// The tick values from `low` to `high`.
    pub(crate) fn values(&self) -> Vec<f64> {
        let count = ((self.high - self.low) / self.step).round() as usize;
        (0..=count)
            .map(|index| self.low + index as f64 * self.step)
            .collect()
    }

    /// `value` written with as many decimals as the step needs.
    pub(crate) fn label(&self, value: f64) -> String {
        let decimals = (-self.step.log10().floor()).max(0.0) as usize;
        let text = format!("{value:.decimals$}");
        // "-0.0" reads oddly on an axis.
        if text.trim_start_matches(['-', '0', '.']).is_empty() {
            text.trim_start_matches('-').to_owned()
        } else {
            text
        }
    }
}

/// The smallest of 1, 2, 5 or 10 times a power of ten at or above `rough` (> 0).
pub(crate) fn nice_step(rough: f64) -> f64 {
    let magnitude = 10f64.powf(rough.log10().floor());
    let fraction = rough / magnitude;
    let nice = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .find(|&nice| fraction <= nice * (1.0 + 1e-9))
        .unwrap_or(10.0);
    nice * magnitude
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn steps_are_one_two_or_five_times_a_power_of_ten() {
        for (rough, nice) in [
            (0.013, 0.02),
            (0.05, 0.05),
            (0.051, 0.1),
            (3.0, 5.0),
            (7.0, 10.0),
            (1.0, 1.0),
            (120.0, 200.0),
        ] {
            assert!(
                close(nice_step(rough), nice),
                "{rough}: {} vs {nice}",
                nice_step(rough)
            );
        }
    }

    #[test]
    fn ticks_cover_the_range_at_multiples_of_the_step() {
        let ticks = Ticks::covering(0.0612, 0.2873, 5);
        // (0.2873 - 0.0612) / 5 = 0.0452 -> step 0.05.
        assert!(close(ticks.step, 0.05));
        assert!(close(ticks.low, 0.05));
        assert!(close(ticks.high, 0.30));
        let labels: Vec<String> = ticks.values().iter().map(|&v| ticks.label(v)).collect();
        assert_eq!(labels, ["0.05", "0.10", "0.15", "0.20", "0.25", "0.30"]);
    }

    #[test]
    fn an_empty_range_is_widened() {
        let ticks = Ticks::covering(2.0, 2.0, 4);
        // Widened to [1.8, 2.2]: step 0.1, ticks 1.8 to 2.2.
        assert!(close(ticks.step, 0.1));
        assert!(close(ticks.low, 1.8) && close(ticks.high, 2.2));
        let zero = Ticks::covering(0.0, 0.0, 4);
        assert!(close(zero.low, -1.0) && close(zero.high, 1.0));
        assert_eq!(zero.label(0.0), "0.0");
        assert_eq!(zero.label(-1e-17), "0.0");
    }

    #[test]
    fn integer_steps_have_no_decimals() {
        let ticks = Ticks::covering(1.0, 50.0, 8);
        assert!(close(ticks.step, 10.0));
        assert_eq!(ticks.label(20.0), "20");
        assert_eq!(ticks.values().len(), 6);
    }
}
