//! Single tensors: a serialized `TensorProto` (`tf.io.serialize_tensor`, a `Const`
//! value) and serialized sparse tensors (`tf.io.serialize_sparse`).

pub mod serialized_sparse;
pub mod tensorproto;
