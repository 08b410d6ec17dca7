//! Save the model or its weights during training, every epoch or every few batches,
//! optionally only when the monitored quantity improves.
//!
//! Follows Keras 3's `keras/src/callbacks/model_checkpoint.py`.

use std::path::{Path, PathBuf};

use super::monitor::{Mode, Monitor};
use super::{Callback, Logs, TrainingControl};
use crate::format::{format_fixed, format_template, FormatValue};
use crate::{Error, Result};

/// When [`ModelCheckpoint`] considers saving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaveFreq {
    /// At the end of every epoch (Keras's `"epoch"`).
    #[default]
    Epoch,
    /// After every this many training batches, counted across epochs (at least 1).
    Batches(usize),
}

/// Saves the whole model (through [`TrainingControl::save_model`]) or only its weights
/// (through [`TrainingControl::save_weights`]) to a path built from a template.
///
/// The template is filled as Python's `str.format` would be: `{epoch}` is the epoch counted
/// from 1, `{batch}` the batch counted from 1 (when saving by batches), and any other name
/// is a value of the logs, so `"ckpt-{epoch:02d}-{val_loss:.4f}.keras"` gives
/// `ckpt-03-0.0785.keras`. Missing parent folders are created.
///
/// Keras's defaults: monitor `val_loss`, [`Mode::Auto`], save every epoch, save the whole
/// model, save even without improvement, no initial threshold, quiet.
///
/// ```
/// use rkeras_fit::callbacks::{Mode, ModelCheckpoint};
/// let checkpoint = ModelCheckpoint::new("checkpoints/best.safetensors")
///     .monitor("val_accuracy")
///     .mode(Mode::Max)
///     .save_best_only(true)
///     .save_weights_only(true);
/// ```
pub struct ModelCheckpoint {
    filepath: String,
    monitor: Monitor,
    save_best_only: bool,
    save_weights_only: bool,
    save_freq: SaveFreq,
    verbose: bool,
    best: Option<f64>,
    current_epoch: usize,
    batches_since_last_save: usize,
    last_batch_seen: Option<usize>,
}

impl ModelCheckpoint {
    /// Saves to `filepath` (a template, see above) with Keras's defaults.
    pub fn new(filepath: impl Into<String>) -> Self {
        Self {
            filepath: filepath.into(),
            monitor: Monitor::new("val_loss", Mode::Auto, 0.0),
            save_best_only: false,
            save_weights_only: false,
            save_freq: SaveFreq::Epoch,
            verbose: false,
            best: None,
            current_epoch: 0,
            batches_since_last_save: 0,
            last_batch_seen: None,
        }
    }

    /// The logged quantity that decides what is best (default `"val_loss"`).
    pub fn monitor(mut self, key: impl Into<String>) -> Self {
        self.monitor.key = key.into();
        self
    }

    /// Whether lower or higher values are better (default [`Mode::Auto`]).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.monitor.mode = mode;
        self
    }

    /// Whether to save only when the monitored quantity improves on the best so far
    /// (default false). When the quantity is missing from the logs, Keras saves anyway.
    pub fn save_best_only(self, save_best_only: bool) -> Self {
        Self {
            save_best_only,
            ..self
        }
    }

    /// Whether to save only the weights instead of the whole model (default false).
    pub fn save_weights_only(self, save_weights_only: bool) -> Self {
        Self {
            save_weights_only,
            ..self
        }
    }

    /// When to consider saving (default [`SaveFreq::Epoch`]).
    pub fn save_freq(self, save_freq: SaveFreq) -> Self {
        Self { save_freq, ..self }
    }

    /// A value the first saved checkpoint must already improve on, with `save_best_only`
    /// (default none).
    pub fn initial_value_threshold(self, threshold: f64) -> Self {
        Self {
            best: Some(threshold),
            ..self
        }
    }

    /// Whether to print a line each time a save is considered (default false).
    pub fn verbose(self, verbose: bool) -> Self {
        Self { verbose, ..self }
    }

    /// Counts batches as Keras's `_should_save_on_batch` does: a batch index that does not
    /// go up starts a new epoch.
    fn batch_due(&mut self, batch: usize, every: usize) -> bool {
        let added = match self.last_batch_seen {
            Some(last) if batch > last => batch - last,
            _ => batch + 1,
        };
        self.batches_since_last_save += added;
        self.last_batch_seen = Some(batch);
        if self.batches_since_last_save >= every {
            self.batches_since_last_save = 0;
            true
        } else {
            false
        }
    }

    /// Fills the template (Keras's `_get_file_path`).
    fn file_path(&self, epoch: usize, batch: Option<usize>, logs: &Logs) -> Result<PathBuf> {
        let lookup = |name: &str| match name {
            "epoch" => Some(FormatValue::Int(epoch as i64 + 1)),
            "batch" if !logs.contains_key("batch") => batch.map(|b| FormatValue::Int(b as i64 + 1)),
            _ => logs.get(name).copied().map(FormatValue::Float),
        };
        let path = format_template(&self.filepath, &lookup).map_err(|e| {
            Error::Config(format!(
                "failed to format the ModelCheckpoint filepath {:?}: {e}",
                self.filepath
            ))
        })?;
        Ok(PathBuf::from(path))
    }

    /// Decides whether to save (Keras's `_should_save_model`), updating the best value.
    fn should_save(
        &mut self,
        epoch: usize,
        logs: &Logs,
        path: &Path,
        ctl: &dyn TrainingControl,
    ) -> Result<bool> {
        if !self.save_best_only {
            if self.verbose {
                println!("\nEpoch {}: saving model to {}", epoch + 1, path.display());
            }
            return Ok(true);
        }
        let Some(&current) = logs.get(&self.monitor.key) else {
            eprintln!(
                "Warning: Can save best model only with {} available.",
                self.monitor.key
            );
            return Ok(true);
        };
        let direction = self.monitor.direction("ModelCheckpoint", ctl)?;
        let best = self
            .best
            .map_or_else(|| "None".to_string(), |b| format_fixed(b, 5));
        if self.monitor.is_improvement(direction, current, self.best) {
            if self.verbose {
                println!(
                    "\nEpoch {}: {} improved from {best} to {}, saving model to {}",
                    epoch + 1,
                    self.monitor.key,
                    format_fixed(current, 5),
                    path.display()
                );
            }
            self.best = Some(current);
            Ok(true)
        } else {
            if self.verbose {
                println!(
                    "\nEpoch {}: {} did not improve from {best}",
                    epoch + 1,
                    self.monitor.key
                );
            }
            Ok(false)
        }
    }

    /// Saves if due (Keras's `_save_model`).
    fn save(
        &mut self,
        epoch: usize,
        batch: Option<usize>,
        logs: &Logs,
        ctl: &dyn TrainingControl,
    ) -> Result<()> {
        let path = self.file_path(epoch, batch, logs)?;
        if !self.should_save(epoch, logs, &path, ctl)? {
            return Ok(());
        }
        if path.is_dir() {
            return Err(Error::Config(format!(
                "ModelCheckpoint needs a file path, but {} is an existing directory",
                path.display()
            )));
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| Error::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        if self.save_weights_only {
            ctl.save_weights(&path)?;
        } else {
            ctl.save_model(&path)?;
        }
        if self.verbose {
            println!(
                "\nEpoch {}: finished saving model to {}",
                epoch + 1,
                path.display()
            );
        }
        Ok(())
    }
}

impl Callback for ModelCheckpoint {
    fn on_train_begin(&mut self, _ctl: &mut dyn TrainingControl) -> Result<()> {
        if self.save_freq == SaveFreq::Batches(0) {
            return Err(Error::Config(
                "ModelCheckpoint save_freq must be at least 1 batch".to_string(),
            ));
        }
        Ok(())
    }

    fn on_epoch_begin(&mut self, epoch: usize, _ctl: &mut dyn TrainingControl) -> Result<()> {
        self.current_epoch = epoch;
        Ok(())
    }

    fn on_train_batch_end(
        &mut self,
        batch: usize,
        logs: &Logs,
        ctl: &mut dyn TrainingControl,
    ) -> Result<()> {
        if let SaveFreq::Batches(every) = self.save_freq {
            if self.batch_due(batch, every) {
                self.save(self.current_epoch, Some(batch), logs, ctl)?;
            }
        }
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &mut Logs,
        ctl: &mut dyn TrainingControl,
    ) -> Result<()> {
        // Keras settles the monitor's direction at every epoch end, saving or not.
        self.monitor.direction("ModelCheckpoint", ctl)?;
        if self.save_freq == SaveFreq::Epoch {
            self.save(epoch, None, logs, ctl)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callbacks::test_support::{files_in, logs, run_epochs, FakeControl, TempDir};

    fn template(dir: &TempDir, name: &str) -> String {
        dir.path().join(name).to_str().unwrap().to_string()
    }

    fn val_losses(values: &[f64]) -> Vec<Logs> {
        values.iter().map(|&v| logs(&[("val_loss", v)])).collect()
    }

    #[test]
    fn saves_every_epoch_under_a_formatted_name() {
        let dir = TempDir::new("ckpt-every");
        let mut checkpoint =
            ModelCheckpoint::new(template(&dir, "m-{epoch:02d}-{val_loss:.4f}.keras"));
        let mut ctl = FakeControl::new(0.1);
        let script = val_losses(&[0.5, 0.25, 0.75]);
        run_epochs(&mut checkpoint, &mut ctl, &script, &[0.0; 3]);
        assert_eq!(
            files_in(dir.path()),
            [
                "m-01-0.5000.keras",
                "m-02-0.2500.keras",
                "m-03-0.7500.keras"
            ]
        );
        let content = std::fs::read_to_string(dir.path().join("m-01-0.5000.keras")).unwrap();
        assert_eq!(content, "model");
    }

    #[test]
    fn save_weights_only_saves_weights() {
        let dir = TempDir::new("ckpt-weights");
        let mut checkpoint =
            ModelCheckpoint::new(template(&dir, "w.safetensors")).save_weights_only(true);
        let mut ctl = FakeControl::new(0.1);
        run_epochs(&mut checkpoint, &mut ctl, &val_losses(&[0.5]), &[0.0]);
        let content = std::fs::read_to_string(dir.path().join("w.safetensors")).unwrap();
        assert_eq!(content, "weights");
    }

    #[test]
    fn save_best_only_saves_improvements() {
        // val_loss 1.0 (first: saved), 0.5 (better: saved), 0.7 (no), 0.4 (saved).
        let dir = TempDir::new("ckpt-best");
        let mut checkpoint =
            ModelCheckpoint::new(template(&dir, "{epoch}.keras")).save_best_only(true);
        let mut ctl = FakeControl::new(0.1);
        run_epochs(
            &mut checkpoint,
            &mut ctl,
            &val_losses(&[1.0, 0.5, 0.7, 0.4]),
            &[0.0; 4],
        );
        assert_eq!(files_in(dir.path()), ["1.keras", "2.keras", "4.keras"]);
    }

    #[test]
    fn max_mode_keeps_the_highest_accuracy() {
        let dir = TempDir::new("ckpt-max");
        let mut checkpoint = ModelCheckpoint::new(template(&dir, "{epoch}.keras"))
            .monitor("val_accuracy")
            .save_best_only(true);
        let mut ctl = FakeControl::new(0.1);
        let script: Vec<Logs> = [0.5, 0.4, 0.9, 0.9]
            .iter()
            .map(|&a| logs(&[("val_accuracy", a)]))
            .collect();
        run_epochs(&mut checkpoint, &mut ctl, &script, &[0.0; 4]);
        assert_eq!(files_in(dir.path()), ["1.keras", "3.keras"]);
    }

    #[test]
    fn the_initial_threshold_must_be_beaten_and_is_kept_across_fits() {
        let dir = TempDir::new("ckpt-threshold");
        let mut checkpoint = ModelCheckpoint::new(template(&dir, "{epoch}.keras"))
            .save_best_only(true)
            .initial_value_threshold(0.6);
        let mut ctl = FakeControl::new(0.1);
        run_epochs(
            &mut checkpoint,
            &mut ctl,
            &val_losses(&[1.0, 0.5, 0.7]),
            &[0.0; 3],
        );
        assert_eq!(files_in(dir.path()), ["2.keras"]);
        // Keras does not reset the best value between fits: 0.45 must beat 0.5.
        run_epochs(
            &mut checkpoint,
            &mut ctl,
            &val_losses(&[0.55, 0.45]),
            &[0.0; 2],
        );
        assert_eq!(files_in(dir.path()), ["2.keras"]);
    }

    #[test]
    fn a_missing_monitor_saves_anyway() {
        let dir = TempDir::new("ckpt-missing");
        let mut checkpoint =
            ModelCheckpoint::new(template(&dir, "{epoch}.keras")).save_best_only(true);
        let mut ctl = FakeControl::new(0.1);
        let script = vec![logs(&[("loss", 1.0)]), logs(&[("loss", 2.0)])];
        run_epochs(&mut checkpoint, &mut ctl, &script, &[0.0; 2]);
        assert_eq!(files_in(dir.path()), ["1.keras", "2.keras"]);
    }

    #[test]
    fn saves_every_few_batches_across_epochs() {
        // Batches(3) with 4 batches an epoch: Keras counts 1, 2, 3 (save at epoch 0 batch 2),
        // 1, then a new epoch adds batch + 1: 2, 3 (save at epoch 1 batch 1), 1, 2, then
        // 3 (save at epoch 2 batch 0), 1, 2, 3 (save at epoch 2 batch 3). Names count epochs
        // and batches from 1.
        let dir = TempDir::new("ckpt-batches");
        let mut checkpoint = ModelCheckpoint::new(template(&dir, "e{epoch}-b{batch}.keras"))
            .save_freq(SaveFreq::Batches(3));
        let mut ctl = FakeControl::new(0.1);
        checkpoint.on_train_begin(&mut ctl).unwrap();
        for epoch in 0..3 {
            checkpoint.on_epoch_begin(epoch, &mut ctl).unwrap();
            for batch in 0..4 {
                checkpoint
                    .on_train_batch_end(batch, &logs(&[("loss", 1.0)]), &mut ctl)
                    .unwrap();
            }
            let mut epoch_logs = logs(&[("loss", 1.0), ("val_loss", 1.0)]);
            checkpoint
                .on_epoch_end(epoch, &mut epoch_logs, &mut ctl)
                .unwrap();
        }
        assert_eq!(
            files_in(dir.path()),
            ["e1-b3.keras", "e2-b2.keras", "e3-b1.keras", "e3-b4.keras"]
        );
    }

    #[test]
    fn creates_missing_folders() {
        let dir = TempDir::new("ckpt-folders");
        let mut checkpoint = ModelCheckpoint::new(template(&dir, "a/b/{epoch}.keras"));
        let mut ctl = FakeControl::new(0.1);
        run_epochs(&mut checkpoint, &mut ctl, &val_losses(&[1.0]), &[0.0]);
        assert_eq!(files_in(&dir.path().join("a/b")), ["1.keras"]);
    }

    #[test]
    fn bad_templates_directories_and_frequencies_are_errors() {
        let dir = TempDir::new("ckpt-errors");
        let mut ctl = FakeControl::new(0.1);
        let mut epoch_logs = logs(&[("val_loss", 1.0)]);

        let mut missing = ModelCheckpoint::new(template(&dir, "{val_acc:.2f}.keras"));
        let err = missing
            .on_epoch_end(0, &mut epoch_logs, &mut ctl)
            .unwrap_err()
            .to_string();
        assert!(err.contains("val_acc"), "{err}");

        let mut into_dir = ModelCheckpoint::new(dir.path().to_str().unwrap());
        let err = into_dir
            .on_epoch_end(0, &mut epoch_logs, &mut ctl)
            .unwrap_err()
            .to_string();
        assert!(err.contains("directory"), "{err}");

        let mut zero = ModelCheckpoint::new("x.keras").save_freq(SaveFreq::Batches(0));
        assert!(zero.on_train_begin(&mut ctl).is_err());

        let mut unclassifiable = ModelCheckpoint::new(template(&dir, "x.keras")).monitor("foo");
        assert!(unclassifiable
            .on_epoch_end(0, &mut epoch_logs, &mut ctl)
            .is_err());
        assert!(files_in(dir.path()).is_empty());
    }
}
