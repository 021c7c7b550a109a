//! tf2npy's integration tests: one test binary, modules per area.

mod api;
mod big;
mod bounded;
mod bundle_writer;
mod cli;
mod common;
mod containers;
mod damage;
mod damaged;
mod exit_status;
mod keras;
mod make;
mod memory;
mod newuser;
mod npy_readback;
mod numpy;
mod outputs;
mod readme;
mod records;
mod safetensors;
mod tensorproto;
mod v1;
mod v2;
mod verbatim_tensors;
