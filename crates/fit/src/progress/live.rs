//! Drawing the live bar on a terminal through indicatif: each Keras frame becomes the message
//! of a `{msg}`-only progress bar, which indicatif redraws in place.

use std::fmt;
use std::io;
#[cfg(test)]
use std::sync::Arc;

#[cfg(test)]
use indicatif::TermLike;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where live bars are drawn.
#[derive(Clone)]
pub(crate) enum Screen {
    /// The process's standard output.
    Stdout,
    /// A terminal given by the caller (shared by the bars of successive epochs): a test's.
    #[cfg(test)]
    Term(Arc<dyn TermLike>),
}

impl fmt::Debug for Screen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Screen::Stdout => f.write_str("Stdout"),
            #[cfg(test)]
            Screen::Term(term) => f.debug_tuple("Term").field(term).finish(),
        }
    }
}

/// Lets several indicatif draw targets share one caller-provided terminal.
#[cfg(test)]
#[derive(Debug)]
struct SharedTerm(Arc<dyn TermLike>);

#[cfg(test)]
impl TermLike for SharedTerm {
    fn width(&self) -> u16 {
        self.0.width()
    }
    fn height(&self) -> u16 {
        self.0.height()
    }
    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        self.0.move_cursor_up(n)
    }
    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        self.0.move_cursor_down(n)
    }
    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        self.0.move_cursor_right(n)
    }
    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        self.0.move_cursor_left(n)
    }
    fn write_line(&self, s: &str) -> io::Result<()> {
        self.0.write_line(s)
    }
    fn write_str(&self, s: &str) -> io::Result<()> {
        self.0.write_str(s)
    }
    fn clear_line(&self) -> io::Result<()> {
        self.0.clear_line()
    }
    fn flush(&self) -> io::Result<()> {
        self.0.flush()
    }
}

impl Screen {
    /// Writes a whole line (such as `Epoch 2/10`) outside any bar.
    pub(crate) fn write_line(&self, line: &str) -> io::Result<()> {
        match self {
            Screen::Stdout => {
                use std::io::Write;
                let mut stdout = io::stdout().lock();
                writeln!(stdout, "{line}")?;
                stdout.flush()
            }
            #[cfg(test)]
            Screen::Term(term) => {
                term.write_line(line)?;
                term.flush()
            }
        }
    }

    /// A new bar on this screen that shows only its message.
    pub(crate) fn new_bar(&self) -> io::Result<LiveBar> {
        let target = match self {
            Screen::Stdout => ProgressDrawTarget::stdout(),
            #[cfg(test)]
            Screen::Term(term) => ProgressDrawTarget::term_like(Box::new(SharedTerm(term.clone()))),
        };
        let style = ProgressStyle::with_template("{msg}").map_err(io::Error::other)?;
        Ok(LiveBar(
            ProgressBar::with_draw_target(None, target).with_style(style),
        ))
    }
}

/// One epoch's live bar.
#[derive(Debug)]
pub(crate) struct LiveBar(ProgressBar);

impl LiveBar {
    /// Replaces the displayed line (indicatif may skip draws that come faster than 20 per second).
    pub(crate) fn show(&self, line: String) {
        self.0.set_message(line);
    }

    /// Draws the final line and leaves it on screen.
    pub(crate) fn finish(self, line: String) {
        self.0.finish_with_message(line);
    }
}
