//! Loads arbitrary bytes as a saved model: every input must give `Ok` or `Err`, never a
//! panic, an abort, a hang or a huge allocation.
//!
//! `cargo fuzz run load_model seeds/load_model -- -dict=load_model.dict -max_len=1048576
//! -rss_limit_mb=2048 -timeout=10`

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use rkeras_layers::session::clear_session;
use rkeras_model::saving::{read_bytes, Registry};

fuzz_target!(|bytes: &[u8]| {
    // Forget the symbolic tensors of earlier inputs, so that memory stays flat.
    clear_session();
    let mut registry = Registry::default();
    registry.register_lambda("identity", |x| Ok(x.clone()), None);
    let _ = read_bytes(bytes, Path::new("fuzz.safetensors"), &registry);
});
