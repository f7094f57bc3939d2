//! Helpers shared by the store's test files.

use std::os::unix::fs::FileExt;

pub fn ledger_file(dir: &std::path::Path, id: u64, ext: &str) -> std::path::PathBuf {
    dir.join(format!("{id:020}.{ext}"))
}

pub fn open_rw(path: &std::path::Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap()
}

/// Overwrites the byte at `offset` of `path` with `X`.
pub fn damage_byte_at(path: &std::path::Path, offset: u64) {
    open_rw(path).write_all_at(b"X", offset).unwrap();
}
