//! Any bytes on a broker connection: frames or an error that closes the connection, never a
//! panic or an allocation beyond the frame limit.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let dec = protocol::FrameDecoder::new(64 * 1024);
    let mut buf = bytes::BytesMut::from(data);
    while let Ok(Some(f)) = dec.decode(&mut buf) {
        if let Some(p) = f.payload {
            let _ = protocol::parse_entry(&p.entry);
        }
    }
});
