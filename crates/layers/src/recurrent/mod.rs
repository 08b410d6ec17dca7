//! Recurrent layers (`keras/src/layers/rnn/`): `LSTM`, `GRU` and `SimpleRNN`, a cell run over
//! each step of a sequence by the layer in `rnn`, and the wrappers Keras keeps beside them:
//! `Bidirectional` (a recurrent layer run both ways) and `TimeDistributed` (a layer applied to
//! every time step).

pub mod bidirectional;
pub mod gru;
pub mod lstm;
pub mod options;
#[cfg(test)]
mod reference;
pub mod rnn;
pub mod simple_rnn;
#[cfg(test)]
mod tests;
pub mod time_distributed;
pub mod wrapper;
#[cfg(test)]
mod wrapper_tests;
