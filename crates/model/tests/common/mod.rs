//! Helpers shared by the hostile-file tests: a small saved model, header surgery, and peak
//! memory measured in a child process.

#![allow(dead_code)] // Each test binary uses a different part.

pub mod corpus;
pub mod peak;

use std::path::Path;

use rkeras_layers::{Dense, Input};
use rkeras_model::saving::save;
use rkeras_model::Model;
use serde_json::{Map, Value};

/// in(3) -> hidden Dense(2, relu) -> out Dense(1).
pub fn small_model() -> Model {
    let input = Input::named("in", &[3]);
    let hidden = Dense::new(2).activation("relu").name("hidden")(input);
    Model::named("small", input, Dense::new(1).name("out")(hidden)).unwrap()
}

/// The bytes of `model` saved to a file.
pub fn saved_bytes(model: &Model) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    save(model, &path).unwrap();
    std::fs::read(path).unwrap()
}

/// The small model's file.
pub fn small_model_bytes() -> Vec<u8> {
    saved_bytes(&small_model())
}

/// A safetensors file made of a header's text and data bytes.
pub fn with_header(header: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

/// The header (as a JSON object) and the data bytes of a well-formed file.
pub fn split(bytes: &[u8]) -> (Map<String, Value>, Vec<u8>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    (header, bytes[8 + n..].to_vec())
}

/// `bytes` with `edit` applied to its header (the data is kept as it is).
pub fn edited(bytes: &[u8], edit: impl FnOnce(&mut Map<String, Value>)) -> Vec<u8> {
    let (mut header, data) = split(bytes);
    edit(&mut header);
    with_header(&Value::Object(header).to_string(), &data)
}

/// `bytes` with every occurrence of `from` replaced by `to` in tensor names and in every
/// string of the architecture JSON.
pub fn renamed(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    fn rename(value: &mut Value, from: &str, to: &str) {
        match value {
            Value::String(s) => *s = s.replace(from, to),
            Value::Array(items) => items.iter_mut().for_each(|v| rename(v, from, to)),
            Value::Object(map) => map.values_mut().for_each(|v| rename(v, from, to)),
            _ => {}
        }
    }
    edited(bytes, |header| {
        let metadata = header["__metadata__"].as_object_mut().unwrap();
        let mut model: Value = serde_json::from_str(metadata["model"].as_str().unwrap()).unwrap();
        rename(&mut model, from, to);
        metadata.insert("model".into(), model.to_string().into());
        let names: Vec<String> = header.keys().cloned().collect();
        for name in names {
            let entry = header.remove(&name).unwrap();
            header.insert(name.replace(from, to), entry);
        }
    })
}

/// Writes `bytes` to `dir/name` and returns the path.
pub fn write_case(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}
