//! Keras-style progress display for fit / evaluate / predict (`keras/src/utils/progbar.py`
//! driven by `keras/src/callbacks/progbar_logger.py`).
//!
//! * `verbose = 0`: nothing.
//! * `verbose = 1` on a terminal: a live bar redrawn in place,
//!   `117/235 ━━━━━━━━━━━━━━━━━━━━ 1s 10ms/step - loss: 0.2000` (done part green), ending with
//!   the elapsed time instead of the ETA.
//! * `verbose = 2`, or `verbose = 1` when the output is not a terminal (logs, CI, pipes): one
//!   line per epoch, `235/235 - 2s - 8ms/step - loss: 0.0785 - val_loss: 0.0777`.
//!
//! `Epoch 3/50` precedes each epoch when there is more than one.

mod clock;
mod format;
mod live;
mod progbar;

use std::fmt;
use std::io::{self, IsTerminal, Write};
#[cfg(test)]
use std::sync::Arc;

#[cfg(test)]
pub use clock::ManualClock;
pub use clock::{Clock, SystemClock};
#[cfg(test)]
pub use indicatif::TermLike;

use live::{LiveBar, Screen};
use progbar::Progbar;

/// Where progress goes.
pub enum ProgressOutput {
    /// Standard output: a live bar if it is a terminal, one line per epoch otherwise.
    Stdout,
    /// Any writer (a file, a `Vec<u8>`): never a terminal, so one line per epoch.
    #[cfg(test)]
    Writer(Box<dyn Write + Send>),
    /// A terminal of the caller's (for example a test double): live bars at `verbose = 1`.
    #[cfg(test)]
    Terminal(Box<dyn TermLike>),
}

impl fmt::Debug for ProgressOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProgressOutput::Stdout => f.write_str("Stdout"),
            #[cfg(test)]
            ProgressOutput::Writer(_) => f.write_str("Writer"),
            #[cfg(test)]
            ProgressOutput::Terminal(term) => f.debug_tuple("Terminal").field(term).finish(),
        }
    }
}

/// How the display is drawn, decided from the verbosity and the output.
#[derive(Debug)]
enum Display {
    Silent,
    Live(Screen),
    EpochLines(Lines),
}

/// A destination for whole lines.
enum Lines {
    Stdout,
    #[cfg(test)]
    Writer(Box<dyn Write + Send>),
    #[cfg(test)]
    Term(Arc<dyn TermLike>),
}

impl fmt::Debug for Lines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Lines::Stdout => "Stdout",
            #[cfg(test)]
            Lines::Writer(_) => "Writer",
            #[cfg(test)]
            Lines::Term(_) => "Term",
        })
    }
}

impl Lines {
    fn write_line(&mut self, line: &str) -> io::Result<()> {
        match self {
            Lines::Stdout => {
                let mut stdout = io::stdout().lock();
                writeln!(stdout, "{line}")?;
                stdout.flush()
            }
            #[cfg(test)]
            Lines::Writer(writer) => {
                writeln!(writer, "{line}")?;
                writer.flush()
            }
            #[cfg(test)]
            Lines::Term(term) => {
                term.write_line(line)?;
                term.flush()
            }
        }
    }
}

/// Reports the progress of fit (one epoch after another), evaluate or predict as Keras does.
pub struct Progress {
    display: Display,
    target_steps: Option<usize>,
    clock: Box<dyn Clock>,
    /// The current epoch's state; created at the epoch's start or on the first update.
    bar: Option<Progbar>,
    /// The current epoch's live bar, once something was drawn.
    live: Option<LiveBar>,
    /// Steps reported so far in the current epoch.
    seen: usize,
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Progress")
            .field("display", &self.display)
            .field("target_steps", &self.target_steps)
            .field("seen", &self.seen)
            .finish_non_exhaustive()
    }
}

impl Progress {
    /// A reporter with Keras's `verbose` (0 silent, 1 live bar, 2 and above one line per
    /// epoch) for epochs of `target_steps` steps (`None`: unknown until the epoch ends).
    pub fn new(verbose: u8, target_steps: Option<usize>, out: ProgressOutput) -> Self {
        let display = match (verbose, out) {
            (0, _) => Display::Silent,
            (1, ProgressOutput::Stdout) if io::stdout().is_terminal() => {
                Display::Live(Screen::Stdout)
            }
            #[cfg(test)]
            (1, ProgressOutput::Terminal(term)) => Display::Live(Screen::Term(Arc::from(term))),
            (_, ProgressOutput::Stdout) => Display::EpochLines(Lines::Stdout),
            #[cfg(test)]
            (_, ProgressOutput::Writer(writer)) => Display::EpochLines(Lines::Writer(writer)),
            #[cfg(test)]
            (_, ProgressOutput::Terminal(term)) => {
                Display::EpochLines(Lines::Term(Arc::from(term)))
            }
        };
        Self {
            display,
            target_steps,
            clock: Box::new(SystemClock::new()),
            bar: None,
            live: None,
            seen: 0,
        }
    }

    /// Uses `clock` instead of the system clock (for reproducible output in tests).
    #[cfg(test)]
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Box::new(clock);
        self
    }

    fn now(&self) -> f64 {
        self.clock.now().as_secs_f64()
    }

    /// Starts an evaluate or predict run: its times count from now.
    pub fn begin(&mut self) {
        self.seen = 0;
        self.live = None;
        self.bar = Some(Progbar::new(self.target_steps, self.now()));
    }

    /// Starts epoch `epoch` (0-based) of `epochs`, printing `Epoch e/E` when `epochs > 1`.
    pub fn epoch_begin(&mut self, epoch: usize, epochs: usize) -> io::Result<()> {
        self.begin();
        if epochs > 1 {
            let line = format!("Epoch {}/{epochs}", epoch + 1);
            match &mut self.display {
                Display::Silent => {}
                Display::Live(screen) => screen.write_line(&line)?,
                Display::EpochLines(lines) => lines.write_line(&line)?,
            }
        }
        Ok(())
    }

    fn bar(&mut self) -> &mut Progbar {
        let now = self.now();
        let target = self.target_steps;
        self.bar.get_or_insert_with(|| Progbar::new(target, now))
    }

    /// Reports that `step` steps (1-based) are done, with the running metric values. Without
    /// `begin` or `epoch_begin`, times count from the first update.
    pub fn update(&mut self, step: usize, logs: &[(String, f64)]) -> io::Result<()> {
        self.seen = step;
        let live_display = matches!(self.display, Display::Live(_));
        let now = self.now();
        let bar = self.bar();
        if !live_display {
            // Keras's verbose 2 ignores the values and times of batch updates.
            return Ok(());
        }
        bar.record(logs);
        let Some(frame) = bar.live_frame(step, now, false) else {
            return Ok(());
        };
        if self.live.is_none() {
            if let Display::Live(screen) = &self.display {
                self.live = Some(screen.new_bar()?);
            }
        }
        if let Some(live) = &self.live {
            live.show(frame.styled);
        }
        Ok(())
    }

    /// Ends the epoch (or evaluate / predict run) with its final logs, `val_*` included.
    pub fn finish(&mut self, logs: &[(String, f64)]) -> io::Result<()> {
        let now = self.now();
        let mut bar = self
            .bar
            .take()
            .unwrap_or_else(|| Progbar::new(self.target_steps, now));
        let target = bar.set_target_if_unknown(self.seen);
        bar.record(logs);
        match &mut self.display {
            Display::Silent => {}
            Display::Live(screen) => {
                let frame = bar.live_frame(target, now, true);
                let live = match self.live.take() {
                    Some(live) => live,
                    None => screen.new_bar()?,
                };
                if let Some(frame) = frame {
                    live.finish(frame.styled);
                }
            }
            Display::EpochLines(lines) => {
                if let Some(line) = bar.epoch_line(target, now) {
                    lines.write_line(&line)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
