//! Any bytes as an offload index object: an error or an index, never a panic or a huge allocation.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(index) = offload::format::index::decode_index(data) {
        // Lookups on whatever decoded must be safe too.
        for e in [0i64, 1, index.last_entry_id, i64::MAX] {
            let _ = index.block_of(e);
        }
    }
});
