//! Recurrent layers (`keras/src/layers/rnn/`): `LSTM` and `GRU`, a cell run over each step of
//! a sequence by the layer in `rnn`.

pub mod gru;
pub mod lstm;
pub mod options;
#[cfg(test)]
mod reference;
pub mod rnn;
#[cfg(test)]
mod tests;
