//! Generate the gRPC code from `proto/zonesweep.proto` with protox, so no
//! system `protoc` is needed on a build machine, in a container or on an HPC node.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/zonesweep.proto");
    let descriptors = protox::compile(["proto/zonesweep.proto"], ["proto"])?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
