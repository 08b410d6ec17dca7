//! A scripted stand-in for the training loop, and temporary folders, for callback tests.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use candle_core::{Device, Tensor};

use super::{Callback, Logs, TrainingControl};
use crate::{Error, Result};

/// Records what callbacks ask of the training loop. Like a Keras optimizer, it keeps the
/// learning rate as float32. Its "model" has one weight, a scalar.
pub(crate) struct FakeControl {
    pub stop_requested: bool,
    learning_rate: f32,
    weight: f32,
    pub restored: Vec<f32>,
}

impl FakeControl {
    pub fn new(learning_rate: f32) -> Self {
        Self {
            stop_requested: false,
            learning_rate,
            weight: 0.0,
            restored: Vec::new(),
        }
    }

    /// What training has made of the model's single weight.
    pub fn set_weight(&mut self, weight: f32) {
        self.weight = weight;
    }

    pub fn weight(&self) -> f32 {
        self.weight
    }

    pub fn lr(&self) -> f32 {
        self.learning_rate
    }

    fn write(path: &Path, what: &str) -> Result<()> {
        std::fs::write(path, what).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

impl TrainingControl for FakeControl {
    fn stop_training(&mut self) {
        self.stop_requested = true;
    }

    fn learning_rate(&self) -> f64 {
        f64::from(self.learning_rate)
    }

    fn set_learning_rate(&mut self, learning_rate: f64) {
        self.learning_rate = learning_rate as f32;
    }

    fn get_weights(&self) -> Result<Vec<Tensor>> {
        Ok(vec![Tensor::new(self.weight, &Device::Cpu)?])
    }

    fn set_weights(&mut self, weights: &[Tensor]) -> Result<()> {
        let [weight] = weights else {
            panic!("expected one weight, got {}", weights.len());
        };
        self.weight = weight.to_scalar::<f32>()?;
        self.restored.push(self.weight);
        Ok(())
    }

    fn save_model(&self, path: &Path) -> Result<()> {
        Self::write(path, "model")
    }

    fn save_weights(&self, path: &Path) -> Result<()> {
        Self::write(path, "weights")
    }
}

/// The names of the files in `dir`, sorted: how tests see what the fake saved.
pub(crate) fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// A fresh, empty folder under the system's temporary folder, removed when dropped.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let unique = format!(
            "rkeras-fit-{label}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(unique);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Builds logs from `(key, value)` pairs.
pub(crate) fn logs(pairs: &[(&str, f64)]) -> Logs {
    pairs.iter().map(|&(k, v)| (k.to_string(), v)).collect()
}

/// Runs whole epochs of `callback` over the scripted epoch logs, as the training loop would,
/// stopping after the epoch in which it asks to stop. `weights[i]` is what training has made
/// of the weight by the end of epoch `i`. Returns the number of epochs run.
pub(crate) fn run_epochs(
    callback: &mut dyn Callback,
    ctl: &mut FakeControl,
    epoch_logs: &[Logs],
    weights: &[f32],
) -> usize {
    callback.on_train_begin(ctl).unwrap();
    let mut last = Logs::new();
    let mut epochs_run = 0;
    for (epoch, logs) in epoch_logs.iter().enumerate() {
        callback.on_epoch_begin(epoch, ctl).unwrap();
        ctl.set_weight(weights[epoch]);
        last = logs.clone();
        callback.on_epoch_end(epoch, &mut last, ctl).unwrap();
        epochs_run += 1;
        if ctl.stop_requested {
            break;
        }
    }
    callback.on_train_end(&last, ctl).unwrap();
    epochs_run
}
