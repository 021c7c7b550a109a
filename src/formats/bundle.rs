//! V2 tensor bundles: `prefix.index` + `prefix.data-NNNNN-of-MMMMM` (tf-formats.md §2-§3).
//! (Being written for issue 3.)
