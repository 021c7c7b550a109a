//! The LevelDB-style table format of `.index` files and V1 checkpoints (tf-formats.md §1).
//! (Being written for issue 3.)
