//! Per-thread buffers that the convolution passes reuse from call to call.
//!
//! A buffer made for each call is fresh memory: `resize` zeroes it (and the kernel zeroes its
//! pages again on first touch when it is large) before the pass overwrites it anyway. Each thread
//! keeps its buffers instead, and a pass takes a prefix of the length it needs, so only growth is
//! ever zeroed.

use std::cell::RefCell;

/// A thread's reusable buffers; their contents are whatever the last pass left.
#[derive(Default)]
pub(crate) struct Scratch {
    /// The masked output gradient or its channel-major planes (backward), the output planes
    /// (projecting forward).
    pub dy: Vec<f32>,
    /// Unfolded rows, or projected planes.
    pub cols: Vec<f32>,
    /// One padded image.
    pub frame: Vec<f32>,
    /// A chunk's output before its max pooling (forward through a pooling), or the output
    /// gradient routed back through the pooling (backward).
    pub output: Vec<f32>,
    /// The products of a Winograd pass's 16 positions, or its transformed output gradient.
    pub products: Vec<f32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

/// Runs `work` with this thread's buffers, or with new ones when they are in use (a pass that
/// waits for another and runs a part of it on this thread meanwhile).
pub(crate) fn with_scratch<T>(work: impl FnOnce(&mut Scratch) -> T) -> T {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => work(&mut scratch),
        Err(_) => work(&mut Scratch::default()),
    })
}

/// The first `len` floats of `buffer`, which grows with zeros when it is shorter; the values are
/// whatever an earlier pass left, for callers that overwrite them.
pub(crate) fn prefix(buffer: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
    &mut buffer[..len]
}
