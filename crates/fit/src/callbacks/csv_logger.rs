//! Stream each epoch's logs to a CSV file.
//!
//! Follows Keras 3's `keras/src/callbacks/csv_logger.py`, which writes through Python's
//! `csv.DictWriter` with the `excel` dialect.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{Callback, Logs, TrainingControl};
use crate::format::float_repr;
use crate::{Error, Result};

/// Writes one row per epoch: the epoch counted from 0, then the logged values in the sorted
/// order of the first epoch's keys. When the first epoch has no `val_` key, the columns
/// `val_<key>` are added anyway and hold `NA`, as do keys missing from a later epoch.
/// Values are printed as Python's `repr(float)` (`0.07850000262260437`); rows end in `\r\n`;
/// fields holding the separator, a quote or a line break are quoted. The file is flushed
/// after every epoch and closed when training ends.
///
/// Keras's defaults: separator `,`, overwrite rather than append.
///
/// ```
/// use rkeras_fit::callbacks::CsvLogger;
/// let logger = CsvLogger::new("training.log").separator('\t').append(true);
/// ```
pub struct CsvLogger {
    filename: PathBuf,
    separator: char,
    append: bool,
    file: Option<BufWriter<File>>,
    keys: Option<Vec<String>>,
    write_header: bool,
}

impl CsvLogger {
    /// Logs to `filename`, comma-separated, replacing any existing file.
    pub fn new(filename: impl Into<PathBuf>) -> Self {
        Self {
            filename: filename.into(),
            separator: ',',
            append: false,
            file: None,
            keys: None,
            write_header: true,
        }
    }

    /// The character between fields (default `,`); not a quote or a line break.
    pub fn separator(self, separator: char) -> Self {
        Self { separator, ..self }
    }

    /// Whether to add to an existing file, writing the header only if the file is empty
    /// (default false: start the file afresh).
    pub fn append(self, append: bool) -> Self {
        Self { append, ..self }
    }

    fn io_error(&self, source: std::io::Error) -> Error {
        Error::Io {
            path: self.filename.clone(),
            source,
        }
    }

    /// Whether an existing file already starts with a line (Python's
    /// `bool(len(f.readline()))`), which only an empty file does not.
    fn has_content(path: &Path) -> std::io::Result<bool> {
        match std::fs::metadata(path) {
            Ok(metadata) => Ok(metadata.len() > 0),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// One CSV line: the fields, quoted where needed, joined by `separator`, ended by `\r\n`
/// (the `excel` dialect's line terminator).
fn csv_line(fields: impl IntoIterator<Item = String>, separator: char) -> String {
    let quoted: Vec<String> = fields
        .into_iter()
        .map(|field| quote_minimal(&field, separator))
        .collect();
    format!("{}\r\n", quoted.join(&separator.to_string()))
}

/// Python's `csv.QUOTE_MINIMAL`: quote a field holding the separator, a quote or a line
/// break, doubling its quotes.
fn quote_minimal(field: &str, separator: char) -> String {
    if field.contains([separator, '"', '\r', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

impl Callback for CsvLogger {
    fn on_train_begin(&mut self, _ctl: &mut dyn TrainingControl) -> Result<()> {
        if matches!(self.separator, '"' | '\r' | '\n') {
            return Err(Error::Config(format!(
                "CSVLogger separator must not be a quote or a line break, got {:?}",
                self.separator
            )));
        }
        self.write_header = if self.append {
            !Self::has_content(&self.filename).map_err(|e| self.io_error(e))?
        } else {
            true
        };
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .append(self.append)
            .truncate(!self.append)
            .open(&self.filename)
            .map_err(|e| self.io_error(e))?;
        self.file = Some(BufWriter::new(file));
        self.keys = None;
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &mut Logs,
        _ctl: &mut dyn TrainingControl,
    ) -> Result<()> {
        let keys = self.keys.get_or_insert_with(|| {
            // Logs are ordered by key, so this is Python's `sorted(logs.keys())`.
            let mut keys: Vec<String> = logs.keys().cloned().collect();
            if !keys.is_empty() && !keys.iter().any(|k| k.starts_with("val_")) {
                let validation: Vec<String> = keys.iter().map(|k| format!("val_{k}")).collect();
                keys.extend(validation);
            }
            keys
        });
        let mut text = String::new();
        if self.write_header {
            let header = std::iter::once("epoch".to_string()).chain(keys.iter().cloned());
            text += &csv_line(header, self.separator);
            self.write_header = false;
        }
        let values = keys.iter().map(|key| {
            logs.get(key)
                .map_or_else(|| "NA".to_string(), |&v| float_repr(v))
        });
        text += &csv_line(
            std::iter::once(epoch.to_string()).chain(values),
            self.separator,
        );
        let Some(file) = self.file.as_mut() else {
            return Err(Error::Config(
                "CSVLogger received an epoch before training began".to_string(),
            ));
        };
        let written = file.write_all(text.as_bytes()).and_then(|()| file.flush());
        written.map_err(|e| self.io_error(e))
    }

    fn on_train_end(&mut self, _logs: &Logs, _ctl: &mut dyn TrainingControl) -> Result<()> {
        if let Some(mut file) = self.file.take() {
            file.flush().map_err(|e| self.io_error(e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callbacks::test_support::{logs, run_epochs, FakeControl, TempDir};

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn writes_sorted_keys_and_python_reprs() {
        let dir = TempDir::new("csv-basic");
        let path = dir.path().join("log.csv");
        let mut logger = CsvLogger::new(&path);
        let mut ctl = FakeControl::new(0.1);
        let script = vec![
            logs(&[
                ("val_loss", 0.5),
                ("loss", f64::from(0.0785_f32)),
                ("accuracy", 1.0),
            ]),
            logs(&[("val_loss", 1e-5), ("loss", 0.25)]),
        ];
        run_epochs(&mut logger, &mut ctl, &script, &[0.0; 2]);
        assert_eq!(
            read(&path),
            "epoch,accuracy,loss,val_loss\r\n\
             0,1.0,0.07850000262260437,0.5\r\n\
             1,NA,0.25,1e-05\r\n"
        );
    }

    #[test]
    fn adds_validation_columns_when_there_are_none() {
        let dir = TempDir::new("csv-noval");
        let path = dir.path().join("log.csv");
        let mut logger = CsvLogger::new(&path).separator('\t');
        let mut ctl = FakeControl::new(0.1);
        let script = vec![logs(&[("loss", 2.0), ("mae", 1.5)])];
        run_epochs(&mut logger, &mut ctl, &script, &[0.0]);
        assert_eq!(
            read(&path),
            "epoch\tloss\tmae\tval_loss\tval_mae\r\n0\t2.0\t1.5\tNA\tNA\r\n"
        );
    }

    #[test]
    fn append_writes_the_header_once_and_overwrite_starts_afresh() {
        let dir = TempDir::new("csv-append");
        let path = dir.path().join("log.csv");
        let script = vec![logs(&[("loss", 1.0), ("val_loss", 2.0)])];
        let mut ctl = FakeControl::new(0.1);

        let mut logger = CsvLogger::new(&path).append(true);
        run_epochs(&mut logger, &mut ctl, &script, &[0.0]);
        run_epochs(&mut logger, &mut ctl, &script, &[0.0]);
        let row = "0,1.0,2.0\r\n";
        assert_eq!(read(&path), format!("epoch,loss,val_loss\r\n{row}{row}"));

        let mut logger = CsvLogger::new(&path);
        run_epochs(&mut logger, &mut ctl, &script, &[0.0]);
        assert_eq!(read(&path), format!("epoch,loss,val_loss\r\n{row}"));
    }

    #[test]
    fn each_epoch_is_on_disk_before_the_next() {
        let dir = TempDir::new("csv-flush");
        let path = dir.path().join("log.csv");
        let mut logger = CsvLogger::new(&path);
        let mut ctl = FakeControl::new(0.1);
        logger.on_train_begin(&mut ctl).unwrap();
        assert_eq!(read(&path), "");
        let mut epoch_logs = logs(&[("loss", 0.5), ("val_loss", 0.75)]);
        logger.on_epoch_end(0, &mut epoch_logs, &mut ctl).unwrap();
        assert_eq!(read(&path), "epoch,loss,val_loss\r\n0,0.5,0.75\r\n");
    }

    #[test]
    fn fields_with_the_separator_or_quotes_are_quoted() {
        assert_eq!(quote_minimal("a;b", ';'), "\"a;b\"");
        assert_eq!(quote_minimal("say \"hi\"", ','), "\"say \"\"hi\"\"\"");
        assert_eq!(quote_minimal("line\nbreak", ','), "\"line\nbreak\"");
        assert_eq!(quote_minimal("a;b", ','), "a;b");
    }

    #[test]
    fn bad_separators_and_unwritable_paths_are_errors() {
        let dir = TempDir::new("csv-errors");
        let mut ctl = FakeControl::new(0.1);
        let mut quote = CsvLogger::new(dir.path().join("log.csv")).separator('"');
        assert!(quote.on_train_begin(&mut ctl).is_err());
        let mut nowhere = CsvLogger::new(dir.path().join("missing/log.csv"));
        let err = nowhere.on_train_begin(&mut ctl).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
    }
}
