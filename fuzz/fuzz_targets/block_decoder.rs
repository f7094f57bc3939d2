//! Any bytes as a data block: an error or records, never a panic or a huge allocation.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = offload::format::block::decode_block(data);
});
