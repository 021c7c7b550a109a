//! tf2npy's integration tests: one test binary, modules per area.

mod big;
mod bundle_writer;
mod cli;
mod common;
mod containers;
mod make;
mod numpy;
mod tensorproto;
mod v1;
mod v2;
