//! Any bytes as a WAL extent's records, an extent key's value or a flush record: an error or
//! the decoded value, never a panic or a huge allocation.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let bytes = bytes::Bytes::copy_from_slice(data);
    let entries = data.first().copied().unwrap_or(0) as u64;
    let _ = wal::format::decode_extent("fuzz", &bytes, entries);
    let _ = wal::format::decode_extent("fuzz", &bytes, u64::MAX);
    let _ = wal::Extent::decode("fuzz", data);
    if let Ok(record) = wal::FlushRecord::decode("fuzz", data) {
        for p in &record.parts {
            let _ = record.extent_of(&p.managed_ledger, p.ledger_id);
        }
    }
});
