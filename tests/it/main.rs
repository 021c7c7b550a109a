//! tf2npy's integration tests: one test binary, modules per area.

mod cli;
mod common;
mod make;
mod numpy;
mod tensorproto;
