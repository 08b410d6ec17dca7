//! The reporter end to end, on a manual clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;

/// A writer whose bytes the test can read afterwards.
#[derive(Clone, Default)]
struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuffer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl SharedBuffer {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// A terminal that records the lines indicatif leaves on it.
#[derive(Debug, Clone, Default)]
struct RecordingTerm(Arc<Mutex<Vec<String>>>);

impl RecordingTerm {
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl TermLike for RecordingTerm {
    fn width(&self) -> u16 {
        120
    }
    fn move_cursor_up(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> io::Result<()> {
        self.0.lock().unwrap().push(format!("{s}\n"));
        Ok(())
    }
    fn write_str(&self, s: &str) -> io::Result<()> {
        if !s.is_empty() {
            self.0.lock().unwrap().push(s.to_owned());
        }
        Ok(())
    }
    fn clear_line(&self) -> io::Result<()> {
        self.0.lock().unwrap().push("<clear>".to_owned());
        Ok(())
    }
    fn flush(&self) -> io::Result<()> {
        Ok(())
    }
}

fn logs(entries: &[(&str, f64)]) -> Vec<(String, f64)> {
    entries.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Runs `epochs` epochs of `steps` steps, each step taking `step_ms` (the first `first_ms`).
fn run_epochs(progress: &mut Progress, clock: &ManualClock, epochs: usize, steps: usize) {
    for epoch in 0..epochs {
        progress.epoch_begin(epoch, epochs).unwrap();
        for step in 1..=steps {
            let ms = if step == 1 { 300 } else { 8 };
            clock.advance(Duration::from_millis(ms));
            let loss = 0.5 / (epoch * steps + step) as f64;
            progress.update(step, &logs(&[("loss", loss)])).unwrap();
        }
        let last = (epoch + 1) * steps;
        progress
            .finish(&logs(&[
                ("val_loss", 0.4 / last as f64),
                ("loss", 0.5 / last as f64),
            ]))
            .unwrap();
    }
}

#[test]
fn verbose_2_prints_one_line_per_epoch() {
    let buffer = SharedBuffer::default();
    let clock = ManualClock::new();
    let mut progress = Progress::new(
        2,
        Some(235),
        ProgressOutput::Writer(Box::new(buffer.clone())),
    )
    .with_clock(clock.clone());
    run_epochs(&mut progress, &clock, 2, 235);
    // 0.3 s + 234 x 8 ms = 2.172 s per epoch, 9.24 ms per step (first step included, as Keras).
    assert_eq!(
        buffer.text(),
        "Epoch 1/2\n\
         235/235 - 2s - 9ms/step - loss: 0.0021 - val_loss: 0.0017\n\
         Epoch 2/2\n\
         235/235 - 2s - 9ms/step - loss: 0.0011 - val_loss: 8.5106e-04\n"
    );
}

#[test]
fn verbose_1_without_a_terminal_prints_epoch_lines() {
    let buffer = SharedBuffer::default();
    let clock = ManualClock::new();
    let mut progress = Progress::new(1, Some(3), ProgressOutput::Writer(Box::new(buffer.clone())))
        .with_clock(clock.clone());
    run_epochs(&mut progress, &clock, 1, 3);
    // One epoch: no `Epoch` line. 316 ms / 3 steps = 105 ms.
    assert_eq!(
        buffer.text(),
        "3/3 - 0s - 105ms/step - loss: 0.1667 - val_loss: 0.1333\n"
    );
}

#[test]
fn verbose_0_prints_nothing() {
    let buffer = SharedBuffer::default();
    let clock = ManualClock::new();
    let mut progress = Progress::new(0, Some(3), ProgressOutput::Writer(Box::new(buffer.clone())))
        .with_clock(clock.clone());
    run_epochs(&mut progress, &clock, 3, 3);
    assert_eq!(buffer.text(), "");
}

#[test]
fn unknown_step_count_is_taken_from_the_last_update() {
    let buffer = SharedBuffer::default();
    let clock = ManualClock::new();
    let mut progress = Progress::new(2, None, ProgressOutput::Writer(Box::new(buffer.clone())))
        .with_clock(clock.clone());
    progress.begin();
    for step in 1..=12 {
        clock.advance(Duration::from_millis(250));
        progress.update(step, &[]).unwrap();
    }
    progress.finish(&logs(&[("loss", -0.25)])).unwrap();
    // Verbose 2 compares the signed value with 1e-3, so a negative loss is printed as `%.4e`.
    assert_eq!(
        buffer.text(),
        "12/12 - 3s - 250ms/step - loss: -2.5000e-01\n"
    );
}

#[test]
fn verbose_1_on_a_terminal_draws_a_live_bar() {
    let term = RecordingTerm::default();
    let clock = ManualClock::new();
    let mut progress = Progress::new(
        1,
        Some(235),
        ProgressOutput::Terminal(Box::new(term.clone())),
    )
    .with_clock(clock.clone());
    run_epochs(&mut progress, &clock, 2, 235);
    let records = term.lines();

    let bar = format!("\x1b[32m{}\x1b[0m\x1b[37m\x1b[0m", "━".repeat(20));
    // Elapsed 2.172 s; the step time leaves step 1 out: 234 x 8 ms / 234 = 8 ms.
    let first_final = format!(
        "\x1b[1m235/235\x1b[0m {bar} \x1b[1m2s\x1b[0m 8ms/step - loss: 0.0021 - val_loss: 0.0017"
    );
    let second_final = format!(
        "\x1b[1m235/235\x1b[0m {bar} \x1b[1m2s\x1b[0m 8ms/step - loss: 0.0011 - val_loss: 8.5106e-04"
    );
    let visible_width = |line: &str| 74 + line.len() - first_final.len();
    assert_eq!(records[0], "Epoch 1/2\n");
    // indicatif pads the last frame to the terminal width (120) so that the next line starts
    // below it.
    let at = records
        .iter()
        .position(|r| *r == first_final)
        .expect("first epoch's final frame");
    assert_eq!(records[at + 1], " ".repeat(120 - 74));
    assert_eq!(records[at + 2], "Epoch 2/2\n");
    assert_eq!(records[records.len() - 2], second_final);
    assert_eq!(
        records[records.len() - 1],
        " ".repeat(120 - visible_width(&second_final))
    );
    // While running, the bar shows the ETA: after step 1 (300 ms) 234 steps remain, 1:10.
    assert!(records[1].starts_with("\x1b[1m  1/235\x1b[0m \x1b[37m━"));
    assert!(records[1].ends_with(" \x1b[1m1:10\x1b[0m 300ms/step - loss: 0.5000"));
}
