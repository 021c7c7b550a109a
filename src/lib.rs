//! # tf2npy
//!
//! Converts what TensorFlow saves to disk (V2 and V1 checkpoints, SavedModels, frozen
//! GraphDefs, serialized TensorProtos and sparse tensors) into NumPy `.npy` / `.npz`
//! files, without TensorFlow, streaming every tensor in bounded memory.
//!
//! The pipeline, one folder per step:
//!
//! ```text
//! formats::open(path, opts)    input detection + reader: a Container listing Entries
//!   -> plan::build(...)        select, rename, skip what NumPy cannot hold
//!   -> plan::convert::to_numpy TF storage -> .npy header + payload stream (dtype table)
//!   -> write::*                .npy / .npz / folder / stdout, atomically
//! ```
//!
//! Between the steps, tensor bytes flow through [`stream::ByteStream`] in bounded
//! chunks; [`densify`] turns sparse parts into a dense stream for readers and the plan.
//! [`run::convert`] runs the whole pipeline for one [`run::Job`].

#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod cli;
pub mod densify;
pub mod dtype;
pub mod error;
pub mod formats;
pub mod limits;
pub mod listing;
mod output_paths;
pub mod plan;
pub mod run;
pub mod source;
pub mod stream;
pub mod text;
pub mod verify;
pub mod write;

pub use error::{Error, Result};
