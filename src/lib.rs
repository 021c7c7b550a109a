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
//!
//! ## Reading tensors from Rust
//!
//! [`open`] gives a [`Reader`] over any input the command line reads. [`Reader::read`]
//! returns a tensor as an [`ndarray::ArrayD`] of the Rust type its NumPy dtype maps to
//! ([`ElementType`]: `f32` for float32 and for the widened bfloat16 and float8,
//! [`half::f16`] for float16, [`num_complex::Complex`] for complex, `Vec<u8>` per
//! string element, ...), checked against the tensor's dtype and holding the same
//! values, bit for bit, as the `.npy` the CLI writes. [`Reader::for_each`] and
//! [`Reader::for_each_chunk`] stream a tensor larger than memory in bounded slices.
//! [`Options`] chooses names (`short_names`, `var_names`) and the dtype policy like
//! the CLI's flags.
//!
//! ```
//! # fn main() -> Result<(), tf2npy::Error> {
//! // A Keras 3 checkpoint: weights keyed by where the optimizer found them; the object
//! // graph records their variable names.
//! let ckpt = tf2npy::Options::new()
//!     .var_names(true)
//!     .open("fixtures/v2/keras_adam/ckpt")?;
//! for t in ckpt.tensors().iter().filter(|t| !t.hidden) {
//!     println!("{}: {} {:?} (key {})", t.name, t.dtype, t.shape, t.key);
//! }
//! let kernel: ndarray::ArrayD<f32> = ckpt.read("sequential/dense/kernel")?;
//! assert_eq!(kernel.shape(), &[3, 4]);
//!
//! // The type is checked against the tensor's dtype.
//! let err = ckpt.read::<f64>("sequential/dense/kernel").unwrap_err();
//! assert!(err.is_usage(), "{err}");
//!
//! // A tensor larger than memory: stream it in slices.
//! let mut sum = 0.0f64;
//! let n = ckpt.for_each("sequential/dense/kernel", |xs: &[f32]| {
//!     sum += xs.iter().map(|&x| f64::from(x)).sum::<f64>();
//!     Ok::<_, tf2npy::Error>(())
//! })?;
//! assert_eq!(n, 12);
//! # let _ = sum;
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod api;
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

pub use api::{open, Element, ElementType, Options, Reader, TensorInfo};
pub use error::{Error, Result};
/// The `half` crate, whose [`half::f16`] float16 tensors read as.
pub use half;
/// The `ndarray` crate [`Reader::read`] returns arrays of (re-exported so the versions
/// match).
pub use ndarray;
/// The `num-complex` crate, whose [`num_complex::Complex`] complex tensors read as.
pub use num_complex;
