//! tf2npy's integration tests: one test binary, modules per area.

mod big;
mod bundle_writer;
mod cli;
mod common;
mod containers;
mod damage;
mod damaged;
mod kernel_copy;
mod make;
mod memory;
mod numpy;
mod records;
mod tensorproto;
mod v1;
mod v2;
