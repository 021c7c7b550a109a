//! Finding a checkpoint from what the user typed: a prefix, a `.index` or `.data-*` file,
//! a folder with a `checkpoint` state file, or a folder holding one checkpoint.
//! (Being written for issue 3.)

use crate::error::{Error, Result};
use crate::source::Container;
use std::path::Path;

/// True when `path` is a file that belongs to a checkpoint (a table file or a data shard).
pub fn is_checkpoint_file(_path: &Path) -> Result<bool> {
    Ok(false)
}

/// Opens the checkpoint that `path` names.
pub fn open_checkpoint(path: &Path) -> Result<Box<dyn Container>> {
    Err(Error::usage(format!(
        "{}: no such file or checkpoint",
        path.display()
    )))
}
