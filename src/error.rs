//! Library errors, grouped by who is to blame: the input file ([`Error::Corrupt`]),
//! something valid that tf2npy cannot express ([`Error::Unsupported`]), the caller
//! ([`Error::Usage`]) or the environment ([`Error::Io`]). Every message names the file and,
//! where there is one, the tensor. `main.rs` maps each group to an exit code.
//!
//! `Display` escapes control characters and invalid UTF-8 in every part (paths, tensor
//! names, details: see [`crate::text`]), so a crafted name cannot forge output lines.

use crate::text::{self, escape};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The result type of every fallible tf2npy library function.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while reading TensorFlow files or writing NumPy files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system error on a named file (open, read, write, rename).
    #[error("{}: {}", text::path(.path), escape(&.err.to_string()))]
    Io {
        /// The file the operation was about.
        path: PathBuf,
        /// The underlying error.
        err: io::Error,
    },
    /// The input is damaged or is not what it claims to be.
    #[error("{}: {}{}", text::path(.file), TensorPrefix(.tensor), escape(.detail))]
    Corrupt {
        /// The input file at fault.
        file: PathBuf,
        /// The tensor being read, if any.
        tensor: Option<String>,
        /// What is wrong, in words.
        detail: String,
    },
    /// The input is valid but holds something tf2npy cannot write (e.g. a variant tensor
    /// asked for by name, or a big-endian checkpoint).
    #[error("{}: {}{}", text::path(.file), TensorPrefix(.tensor), escape(.detail))]
    Unsupported {
        /// The input file.
        file: PathBuf,
        /// The tensor concerned, if any.
        tensor: Option<String>,
        /// What is not supported, in words.
        detail: String,
    },
    /// The input is a file of another kind (TFLite, ONNX, a NumPy file, ...), recognised
    /// by its content: `verdict` says what it is and what to do, on the first line; the
    /// protobuf decoding detail follows on a second line.
    #[error(
        "{}: {}\n  (as a protobuf: {})",
        text::path(.file),
        escape(.verdict),
        escape(.detail)
    )]
    Foreign {
        /// The input file.
        file: PathBuf,
        /// What the file is and what to do with it, in one line.
        verdict: String,
        /// Why it is not a TensorFlow protobuf, in words.
        detail: String,
    },
    /// The command line or the caller asked for something impossible (unknown tensor name,
    /// two tensors under one output name, `.npy` output with several tensors, ...).
    #[error("{}", escape(.0))]
    Usage(String),
}

struct TensorPrefix<'a>(&'a Option<String>);

impl fmt::Display for TensorPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(t) => write!(f, "tensor `{}`: ", escape(t)),
            None => Ok(()),
        }
    }
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl AsRef<Path>, err: io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            err,
        }
    }

    /// A damaged-input error in `file`, not tied to a tensor.
    pub fn corrupt(file: impl AsRef<Path>, detail: impl Into<String>) -> Self {
        Error::Corrupt {
            file: file.as_ref().to_path_buf(),
            tensor: None,
            detail: detail.into(),
        }
    }

    /// An unsupported-content error in `file`, not tied to a tensor.
    pub fn unsupported(file: impl AsRef<Path>, detail: impl Into<String>) -> Self {
        Error::Unsupported {
            file: file.as_ref().to_path_buf(),
            tensor: None,
            detail: detail.into(),
        }
    }

    /// A usage error.
    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }

    /// Attaches a tensor name to a `Corrupt` or `Unsupported` error that has none yet.
    pub fn in_tensor(mut self, name: &str) -> Self {
        match &mut self {
            Error::Corrupt { tensor, .. } | Error::Unsupported { tensor, .. }
                if tensor.is_none() =>
            {
                *tensor = Some(name.to_string());
            }
            _ => {}
        }
        self
    }

    /// Prefixes the detail of a `Corrupt` error with `prefix` (e.g. which slice of a
    /// tensor was damaged); other errors pass through unchanged.
    pub fn with_detail_prefix(self, prefix: &str) -> Self {
        match self {
            Error::Corrupt {
                file,
                tensor,
                detail,
            } => Error::Corrupt {
                file,
                tensor,
                detail: format!("{prefix}: {detail}"),
            },
            other => other,
        }
    }

    /// True when writing to a closed pipe failed (`tf2npy ... -o - | head`): not an error
    /// by Unix convention.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Io { err, .. } if err.kind() == io::ErrorKind::BrokenPipe)
    }

    /// True for errors caused by the caller rather than by the input or the system.
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::Usage(_))
    }
}

/// A file-and-tensor context that parsers carry to build precise errors cheaply.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// The file being parsed.
    pub file: PathBuf,
    /// The tensor being read, if any.
    pub tensor: Option<String>,
}

impl Ctx {
    /// A context for `file` with no tensor.
    pub fn file(file: impl AsRef<Path>) -> Self {
        Ctx {
            file: file.as_ref().to_path_buf(),
            tensor: None,
        }
    }

    /// The same file, now about `tensor`.
    pub fn tensor(&self, tensor: &str) -> Self {
        Ctx {
            file: self.file.clone(),
            tensor: Some(tensor.to_string()),
        }
    }

    /// A `Corrupt` error in this context.
    pub fn corrupt(&self, detail: impl Into<String>) -> Error {
        Error::Corrupt {
            file: self.file.clone(),
            tensor: self.tensor.clone(),
            detail: detail.into(),
        }
    }

    /// An `Unsupported` error in this context.
    pub fn unsupported(&self, detail: impl Into<String>) -> Error {
        Error::Unsupported {
            file: self.file.clone(),
            tensor: self.tensor.clone(),
            detail: detail.into(),
        }
    }

    /// An `Io` error on this context's file.
    pub fn io(&self, err: io::Error) -> Error {
        Error::io(&self.file, err)
    }
}
