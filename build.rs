//! Compiles the protobuf schemas in `proto/` to Rust with the pure-Rust `protox`
//! compiler and `prost-build`, so building needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "tf2npy/types.proto",
        "tf2npy/tensor.proto",
        "tf2npy/checkpoint.proto",
        "tf2npy/graph.proto",
        "tf2npy/example.proto",
        "tf2npy/struct.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed=proto/{f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    prost_build::Config::new()
        // An `AttrValue` holding its `TensorProto` inline would take 400 bytes for
        // every attribute, however small (bounded decoding, src/formats/graph/prescan.rs).
        .boxed(".tensorflow.AttrValue.value.tensor")
        .compile_fds(fds)?;
    Ok(())
}
