//! Generates the ONNX protobuf messages (`prost`) from the vendored `proto/onnx.proto`, compiled
//! by `protox` (a protobuf compiler in Rust): building needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    let fds = protox::compile(["onnx.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
