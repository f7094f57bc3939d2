//! Compiles the vendored PulsarApi.proto with the protoc shipped by `protoc-bin-vendored`, so a
//! fresh machine needs no system protobuf compiler.

use prost_types::field_descriptor_proto::{Label, Type};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; prost-build reads PROTOC from the environment.
    unsafe { std::env::set_var("PROTOC", protoc) };
    println!("cargo:rerun-if-changed=proto/PulsarApi.proto");
    let mut config = prost_build::Config::new();
    config.bytes(["."]);
    let fds = config.load_fds(&["proto/PulsarApi.proto"], &["proto"])?;
    // BaseCommand holds one optional field per command, inline: ~4.5 KB that every frame
    // initialises, moves (decode, frame, channels) and walks (length, drop) to carry the one
    // command it has. Boxed, it is ~0.5 KB and the command is one small allocation.
    let base = fds
        .file
        .iter()
        .flat_map(|f| f.message_type.iter())
        .find(|m| m.name() == "BaseCommand")
        .ok_or("PulsarApi.proto has no BaseCommand")?;
    for field in &base.field {
        if field.r#type() == Type::Message && field.label() != Label::Repeated {
            config.boxed(format!(".pulsar.proto.BaseCommand.{}", field.name()));
        }
    }
    config.compile_fds(fds)?;
    Ok(())
}
