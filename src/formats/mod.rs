//! Input detection and the readers, one module per TensorFlow container format.
//!
//! [`open`] decides what a path is by its layout and content, not by its name alone:
//! a checkpoint (prefix, `.index`, `.data-*`, or a folder), or a protobuf file
//! (TensorProto, GraphDef, SavedModel), and returns a validated [`Container`].

pub mod bundle;
pub mod locate;
pub mod proto;
pub mod table;
pub mod tensorproto;

use crate::error::{Error, Result};
use crate::source::Container;
use std::path::Path;

/// Largest protobuf file tf2npy will read whole (protobuf's own limit is 2 GiB).
pub const MAX_PROTO_FILE_BYTES: u64 = 2 << 30;

/// Opens `path` as whatever TensorFlow container it is.
pub fn open(path: &Path) -> Result<Box<dyn Container>> {
    if path.is_file() && !locate::is_checkpoint_file(path)? {
        return open_protobuf_file(path);
    }
    locate::open_checkpoint(path)
}

/// Opens a file that is not a checkpoint table: a serialized protobuf.
fn open_protobuf_file(path: &Path) -> Result<Box<dyn Container>> {
    let len = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    if len > MAX_PROTO_FILE_BYTES {
        return Err(Error::corrupt(
            path,
            format!(
                "{len} bytes is larger than any protobuf file (2 GiB limit) and not a checkpoint"
            ),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    Ok(Box::new(tensorproto::TensorProtoFile::parse(path, &bytes)?))
}
