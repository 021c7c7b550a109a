//! TensorFlow checkpoints: the LevelDB-style table both versions are stored in, the V2
//! tensor bundle, V1 `SavedTensorSlices`, slice reassembly, the `checkpoint` state file,
//! the TF2 object graph, and finding a checkpoint from whatever path names it.

pub mod bundle;
pub mod locate;
pub mod object_graph;
pub mod slice_key;
pub mod state;
pub mod table;
pub mod v1;
