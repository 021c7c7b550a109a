//! tf2npy's integration tests: one test binary, modules per area.

mod big;
mod bundle_writer;
mod cli;
mod common;
mod containers;
mod damage;
mod damaged;
mod make;
mod memory;
mod numpy;
mod tensorproto;
mod v1;
mod v2;
mod verbatim_tensors;
