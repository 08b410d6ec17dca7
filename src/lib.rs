pub use rkeras_layers as layers;
