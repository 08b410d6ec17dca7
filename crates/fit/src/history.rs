//! `History`, the record of a `fit` run that Keras returns: per-epoch logs and the run's params.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The settings of the run, as Keras's `history.params`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct HistoryParams {
    /// Number of epochs requested.
    pub epochs: usize,
    /// Steps per epoch.
    pub steps: usize,
    /// The `verbose` setting.
    pub verbose: u8,
}

/// What `fit` returns: `epoch` lists the epochs (0-based) that ran, and `history` maps each
/// log name (`loss`, `val_loss`, metrics) to its value at the end of each of those epochs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct History {
    /// The 0-based index of each recorded epoch, in order.
    pub epoch: Vec<usize>,
    /// Per-name values, one per recorded epoch in which the name was logged.
    pub history: BTreeMap<String, Vec<f64>>,
    /// The run's settings.
    pub params: HistoryParams,
}

impl History {
    /// An empty history for a run of `epochs` epochs of `steps` steps.
    pub fn new(epochs: usize, steps: usize, verbose: u8) -> Self {
        Self {
            params: HistoryParams {
                epochs,
                steps,
                verbose,
            },
            ..Self::default()
        }
    }

    /// Appends the end-of-epoch `logs` of `epoch` (0-based), as Keras's `History.on_epoch_end`.
    pub fn record_epoch(&mut self, epoch: usize, logs: &BTreeMap<String, f64>) {
        self.epoch.push(epoch);
        for (name, value) in logs {
            self.history.entry(name.clone()).or_default().push(*value);
        }
    }

    /// The values logged as `key`, one per epoch.
    pub fn get(&self, key: &str) -> Option<&[f64]> {
        self.history.get(key).map(Vec::as_slice)
    }

    /// The training loss per epoch (empty before the first epoch).
    pub fn loss(&self) -> &[f64] {
        self.get("loss").unwrap_or_default()
    }

    /// The validation loss per epoch (empty without validation data).
    pub fn val_loss(&self) -> &[f64] {
        self.get("val_loss").unwrap_or_default()
    }

    /// The history as pretty-printed JSON.
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Reads a history written by [`History::to_json`].
    pub fn from_json(json: &str) -> Result<Self> {
        Ok(serde_json::from_str(json)?)
    }

    /// Writes the JSON to `path` atomically: to a temporary file beside it, then renamed.
    pub fn save_json(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let json = self.to_json()?;
        let file_name = path.file_name().ok_or_else(|| {
            Error::Config(format!(
                "{}: expected a file path, not a directory",
                path.display()
            ))
        })?;
        let mut temporary_name = std::ffi::OsString::from(".");
        temporary_name.push(file_name);
        temporary_name.push(format!(".{}.tmp", std::process::id()));
        let temporary = path.with_file_name(temporary_name);
        let io_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&temporary)?;
            file.write_all(json.as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()
        };
        if let Err(error) = write() {
            let _ = std::fs::remove_file(&temporary);
            return Err(io_error(&temporary)(error));
        }
        std::fs::rename(&temporary, path).map_err(|error| {
            let _ = std::fs::remove_file(&temporary);
            io_error(path)(error)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs(entries: &[(&str, f64)]) -> BTreeMap<String, f64> {
        entries.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn two_epochs() -> History {
        let mut history = History::new(2, 235, 1);
        history.record_epoch(
            0,
            &logs(&[("loss", 0.27), ("val_loss", 0.18), ("accuracy", 0.9)]),
        );
        history.record_epoch(
            1,
            &logs(&[("val_loss", 0.12), ("loss", 0.15), ("accuracy", 0.95)]),
        );
        history
    }

    #[test]
    fn epochs_are_recorded_in_order() {
        let history = two_epochs();
        assert_eq!(history.epoch, [0, 1]);
        assert_eq!(history.loss(), [0.27, 0.15]);
        assert_eq!(history.val_loss(), [0.18, 0.12]);
        assert_eq!(history.get("accuracy"), Some(&[0.9, 0.95][..]));
        assert_eq!(history.get("val_accuracy"), None);
        assert!(History::default().loss().is_empty());
    }

    #[test]
    fn json_round_trip() {
        let history = two_epochs();
        let json = history.to_json().unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["history"]["loss"], serde_json::json!([0.27, 0.15]));
        assert_eq!(value["epoch"], serde_json::json!([0, 1]));
        assert_eq!(value["params"]["steps"], serde_json::json!(235));
        assert_eq!(History::from_json(&json).unwrap(), history);
    }

    #[test]
    fn save_json_replaces_the_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("rkeras-history-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("history.json");
        std::fs::write(&path, "old").unwrap();
        let history = two_epochs();
        history.save_json(&path).unwrap();
        let saved = std::fs::read_to_string(&path).unwrap();
        assert_eq!(History::from_json(&saved).unwrap(), history);
        let entries: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(entries.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn save_json_reports_the_failing_path() {
        let path = std::env::temp_dir().join("rkeras-missing-dir-for-history/history.json");
        let error = History::default().save_json(&path).unwrap_err();
        assert!(matches!(error, Error::Io { .. }), "{error}");
        assert!(
            error.to_string().contains("rkeras-missing-dir-for-history"),
            "{error}"
        );
    }
}
