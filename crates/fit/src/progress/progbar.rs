//! The state of Keras's `Progbar` for one epoch (or one evaluate / predict run): the metric
//! values in display order, the step-time estimate and the text of each display.

use super::format::{counter, eta, metric, time_per_step, ValueRule};

/// Keras redraws the live bar at most this often, except for the final update.
const REDRAW_INTERVAL_SECONDS: f64 = 0.05;
/// Number of `━` characters in the bar.
const BAR_WIDTH: usize = 20;

const BOLD: &str = "\x1b[1m";
const GREEN: &str = "\x1b[32m";
const WHITE: &str = "\x1b[37m";
const RESET: &str = "\x1b[0m";

/// One redraw of the live bar.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LiveFrame {
    /// The line with its ANSI styles (bold counter and times, green and white bar).
    pub(crate) styled: String,
    /// The line's visible width, in characters.
    pub(crate) width: usize,
}

/// Keras's `Progbar` as `ProgbarLogger` drives it: every value is shown as given (no averaging).
#[derive(Debug)]
pub(crate) struct Progbar {
    target: Option<usize>,
    /// Creation time, in seconds on the progress clock.
    start: f64,
    /// Time of the last display; `None` before the first.
    last_update: Option<f64>,
    /// Time when step 1 was reported; the first step is left out of the estimate after that.
    time_after_first_step: Option<f64>,
    /// Metrics in the order they were first seen.
    values: Vec<(String, f64)>,
}

impl Progbar {
    /// A bar for `target` steps (unknown: `None`) created at time `now`.
    pub(crate) fn new(target: Option<usize>, now: f64) -> Self {
        Self {
            target,
            start: now,
            last_update: None,
            time_after_first_step: None,
            values: Vec::new(),
        }
    }

    /// Sets the number of steps once it is known (at the end of an epoch of unknown length).
    pub(crate) fn set_target_if_unknown(&mut self, target: usize) -> usize {
        *self.target.get_or_insert(target)
    }

    /// Records the latest logs: Keras sorts each log dict by key, and a key keeps the place
    /// where it was first seen.
    pub(crate) fn record(&mut self, logs: &[(String, f64)]) {
        let mut sorted: Vec<&(String, f64)> = logs.iter().collect();
        sorted.sort_by(|(a, _), (b, _)| a.cmp(b));
        for (name, value) in sorted {
            match self.values.iter_mut().find(|(known, _)| known == name) {
                Some(entry) => entry.1 = *value,
                None => self.values.push((name.clone(), *value)),
            }
        }
    }

    /// Keras's `_estimate_step_duration`: seconds per step, excluding step 1 once later steps
    /// are reported.
    pub(crate) fn step_duration(&mut self, current: usize, now: f64) -> f64 {
        if current == 0 {
            return 0.0;
        }
        let per_step = match self.time_after_first_step {
            Some(after_first) if current > 1 => (now - after_first) / (current - 1) as f64,
            _ => (now - self.start) / current as f64,
        };
        if current == 1 {
            self.time_after_first_step = Some(now);
        }
        per_step
    }

    /// The live bar for step `current` at time `now`, or `None` when Keras would skip this
    /// redraw (less than 50 ms since the last one and not final).
    pub(crate) fn live_frame(
        &mut self,
        current: usize,
        now: f64,
        finalize: bool,
    ) -> Option<LiveFrame> {
        let per_step = self.step_duration(current, now);
        if let Some(last) = self.last_update {
            if now - last < REDRAW_INTERVAL_SECONDS && !finalize {
                return None;
            }
        }
        self.last_update = Some(now);

        let mut styled = String::new();
        let mut width = 0;
        let mut push = |text: &str, style: Option<&str>| {
            width += text.chars().count();
            match style {
                Some(style) => styled.push_str(&format!("{style}{text}{RESET}")),
                None => styled.push_str(text),
            }
        };
        match self.target.filter(|&target| target > 0) {
            Some(target) => {
                push(&counter(current, target), Some(BOLD));
                push(" ", None);
                let done = (BAR_WIDTH as f64 * current as f64 / target as f64) as usize;
                let done = done.min(BAR_WIDTH);
                if done > 0 {
                    push(&"━".repeat(done), Some(GREEN));
                }
                push(&"━".repeat(BAR_WIDTH - done), Some(WHITE));
                push(" ", None);
                if finalize {
                    push(&format!("{:.0}s", now - self.start), Some(BOLD));
                } else {
                    push(
                        &eta(per_step * (target - current.min(target)) as f64),
                        Some(BOLD),
                    );
                }
            }
            None => {
                push(&format!("{current:>7}/Unknown "), None);
                push(&format!("{:.0}s", now - self.start), Some(BOLD));
            }
        }
        push(&time_per_step(per_step), None);
        for (name, value) in &self.values {
            push(&metric(name, *value, ValueRule::Magnitude), None);
        }
        Some(LiveFrame { styled, width })
    }

    /// Keras's verbose-2 line, `235/235 - 2s - 8ms/step - loss: 0.0785`, for the final step
    /// `current` at time `now`; `None` when the number of steps is 0.
    pub(crate) fn epoch_line(&mut self, current: usize, now: f64) -> Option<String> {
        let per_step = self.step_duration(current, now);
        let target = self.target.filter(|&target| target > 0)?;
        let mut line = format!(
            "{} - {:.0}s -{}",
            counter(current, target),
            now - self.start,
            time_per_step(per_step)
        );
        for (name, value) in &self.values {
            line.push_str(&metric(name, *value, ValueRule::Signed));
        }
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs(entries: &[(&str, f64)]) -> Vec<(String, f64)> {
        entries.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn strip_ansi(text: &str) -> String {
        let mut plain = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                plain.push(c);
            }
        }
        plain
    }

    #[test]
    fn first_step_is_left_out_of_the_estimate() {
        let mut bar = Progbar::new(Some(10), 0.0);
        assert_eq!(bar.step_duration(0, 0.5), 0.0);
        // Step 1 took 2 s (compilation...), the next 4 steps 0.1 s each.
        assert_eq!(bar.step_duration(1, 2.0), 2.0);
        assert!((bar.step_duration(5, 2.4) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn without_step_one_the_estimate_is_the_mean() {
        let mut bar = Progbar::new(Some(235), 1.0);
        assert!((bar.step_duration(235, 3.0) - 2.0 / 235.0).abs() < 1e-15);
    }

    #[test]
    fn live_frame_while_running_shows_eta() {
        let mut bar = Progbar::new(Some(235), 0.0);
        bar.record(&logs(&[("loss", 0.2707)]));
        bar.live_frame(1, 0.5, false).unwrap();
        bar.record(&logs(&[("loss", 0.2)]));
        // 116 more steps in 1.16 s: 10 ms per step, 118 steps left: ETA 1.18 s.
        let frame = bar.live_frame(117, 1.66, false).unwrap();
        let plain = strip_ansi(&frame.styled);
        assert_eq!(
            plain,
            "117/235 ━━━━━━━━━━━━━━━━━━━━ 1s 10ms/step - loss: 0.2000"
        );
        assert_eq!(frame.width, plain.chars().count());
        // int(20 * 117 / 235) = 9 green segments, 11 white.
        let green = format!("{GREEN}{}{RESET}", "━".repeat(9));
        let white = format!("{WHITE}{}{RESET}", "━".repeat(11));
        assert_eq!(
            frame.styled,
            format!("{BOLD}117/235{RESET} {green}{white} {BOLD}1s{RESET} 10ms/step - loss: 0.2000")
        );
    }

    #[test]
    fn live_frames_are_throttled_except_the_last() {
        let mut bar = Progbar::new(Some(4), 0.0);
        assert!(bar.live_frame(1, 0.10, false).is_some());
        assert!(bar.live_frame(2, 0.14, false).is_none());
        assert!(bar.live_frame(3, 0.20, false).is_some());
        // (0.21 - 0.10) / 3 steps after the first = 37 ms.
        let last = bar.live_frame(4, 0.21, true).unwrap();
        assert_eq!(
            strip_ansi(&last.styled),
            "4/4 ━━━━━━━━━━━━━━━━━━━━ 0s 37ms/step"
        );
    }

    #[test]
    fn unknown_target_shows_elapsed_time() {
        let mut bar = Progbar::new(None, 0.0);
        let frame = bar.live_frame(12, 3.6, false).unwrap();
        assert_eq!(strip_ansi(&frame.styled), "     12/Unknown 4s 300ms/step");
    }

    #[test]
    fn epoch_line_matches_keras_verbose_2() {
        let mut bar = Progbar::new(Some(235), 10.0);
        bar.record(&logs(&[("val_loss", 0.0777), ("loss", 0.0785)]));
        // Keras reads the time per step as (now - start) / steps: 1.88 s / 235 = 8 ms.
        assert_eq!(
            bar.epoch_line(235, 11.88).unwrap(),
            "235/235 - 2s - 8ms/step - loss: 0.0785 - val_loss: 0.0777"
        );
        let mut empty = Progbar::new(Some(0), 0.0);
        assert_eq!(empty.epoch_line(0, 1.0), None);
    }

    #[test]
    fn keys_keep_their_first_position() {
        let mut bar = Progbar::new(Some(2), 0.0);
        bar.record(&logs(&[("loss", 1.0), ("accuracy", 0.5)]));
        bar.record(&logs(&[
            ("val_accuracy", 0.4),
            ("loss", 0.9),
            ("accuracy", 0.6),
            ("val_loss", 1.1),
        ]));
        assert_eq!(
            bar.epoch_line(2, 1.0).unwrap(),
            "2/2 - 1s - 500ms/step - accuracy: 0.6000 - loss: 0.9000 \
             - val_accuracy: 0.4000 - val_loss: 1.1000"
        );
    }
}
