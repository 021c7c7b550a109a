//! tf2npy's integration tests: one test binary, modules per area.

mod cli;
mod common;
mod numpy;
mod tensorproto;
