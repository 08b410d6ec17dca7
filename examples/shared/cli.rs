//! The command-line options every tutorial example takes.
#![allow(dead_code)]

use std::path::PathBuf;

use rkeras::prelude::Device;

/// `--epochs N --steps-per-epoch N --batch-size N --data DIR --out DIR --history FILE --save FILE
/// --seed N --device NAME`.
pub struct Args {
    /// Epochs to train (0: build, print the summaries and stop).
    pub epochs: usize,
    /// Steps per epoch instead of a full pass over the data.
    pub steps_per_epoch: Option<usize>,
    /// Samples per step.
    pub batch_size: usize,
    /// Where the MNIST files are (default: the usual search, see `rkeras::datasets::mnist`).
    pub data: Option<PathBuf>,
    /// Where pictures and the history go.
    pub out: PathBuf,
    /// Where to write the History as JSON (default: `<out>/history.json`).
    pub history: Option<PathBuf>,
    /// Where to save the trained model.
    pub save: Option<PathBuf>,
    /// The random seed (weights, shuffling, noise).
    pub seed: u64,
    /// Where the weights live and the training runs.
    pub device: Device,
}

impl Args {
    /// Parses the process arguments, with the tutorial's settings as defaults.
    pub fn parse(example: &str, epochs: usize, batch_size: usize) -> Result<Args, String> {
        let mut args = Args {
            epochs,
            steps_per_epoch: None,
            batch_size,
            data: None,
            out: PathBuf::from("target/examples").join(example),
            history: None,
            save: None,
            seed: 0,
            device: Device::Cpu,
        };
        let mut device_name = String::from("auto");
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            if flag == "--help" || flag == "-h" {
                return Err(format!(
                    "usage: cargo run --release --example {example} -- [--epochs N (default {epochs})] \
                     [--steps-per-epoch N] [--batch-size N (default {batch_size})] [--data DIR] \
                     [--out DIR] [--history FILE] [--save FILE] [--seed N] \
                     [--device auto|cpu|cuda[:N]|metal[:N] (default auto: the first GPU the build \
                     supports, else the CPU)]"
                ));
            }
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = |v: &str| {
                v.parse::<usize>()
                    .map_err(|_| format!("{flag} takes a number, got '{v}'"))
            };
            match flag.as_str() {
                "--epochs" => args.epochs = number(&value)?,
                "--steps-per-epoch" => args.steps_per_epoch = Some(number(&value)?),
                "--batch-size" => args.batch_size = number(&value)?,
                "--data" => args.data = Some(value.into()),
                "--out" => args.out = value.into(),
                "--history" => args.history = Some(value.into()),
                "--save" => args.save = Some(value.into()),
                "--seed" => args.seed = number(&value)? as u64,
                "--device" => device_name = value,
                other => return Err(format!("unknown option '{other}' (try --help)")),
            }
        }
        args.device = named_device(&device_name)?;
        Ok(args)
    }
}

/// The device `name` means: `cpu`, `cuda`, `cuda:N`, `metal`, `metal:N`, or `auto` (GPU `N`
/// (default 0) by CUDA or Metal where the build supports it and the machine has it, else the
/// CPU).
fn named_device(name: &str) -> Result<Device, String> {
    let (kind, ordinal) = match name.split_once(':') {
        Some((kind, n)) => (
            kind,
            n.parse::<usize>()
                .map_err(|_| format!("--device {name}: '{n}' is not a device number"))?,
        ),
        None => (name, 0),
    };
    let device = match kind {
        "auto" => Ok(Device::new_cuda(ordinal)
            .or_else(|_| Device::new_metal(ordinal))
            .unwrap_or(Device::Cpu)),
        "cpu" => Ok(Device::Cpu),
        "cuda" => Device::new_cuda(ordinal),
        "metal" => Device::new_metal(ordinal),
        other => {
            return Err(format!(
                "--device takes auto, cpu, cuda[:N] or metal[:N], got '{other}'"
            ))
        }
    };
    device.map_err(|e| format!("--device {name}: {e}"))
}
