//! Sealed ledger bytes mapped instead of copied, for the read-ahead.
//!
//! A catch-up read of a sealed ledger copies every byte three times on this side of the socket
//! when it reads with `pread`: page cache → read buffer, then the CRC check reads the buffer,
//! then the send copies it into the socket. Mapped, the CRC check reads the page cache where it
//! is and the send copies from there: one pass less over every byte (a catch-up to a consumer on
//! the same two CPUs went from 2.9 to 3.3-3.4 GB/s on average, `./scripts/bench catchup`).
//!
//! What a mapping risks, and why it is confined:
//! - Reading a mapped page that cannot be read (a disk error, or a file truncated under it)
//!   raises `SIGBUS` and ends the process, where `pread` returns an error. So a window is
//!   populated with `MADV_POPULATE_READ` first, which reads every page in and reports a failure
//!   as an error instead (Linux 5.14); the CRC check that follows touches the pages at once.
//! - After that the process reads the bytes again only where it must: an entry's metadata when
//!   it is dispatched, and every byte on a TLS connection (encrypted in user space). A plain
//!   connection's send copies them in the kernel, where a page that fails to read fails that
//!   write (`EFAULT`), not the process. What remains — the kernel reclaiming a populated page
//!   under memory pressure and the disk failing to read it again before the window is used —
//!   ends the broker as any crash does (nothing acknowledged is lost: sealed ledgers are
//!   durable and immutable); Lucene and Prometheus accept the same for their mapped files.
//! - Sealed ledger files are never written once sealed. The store shortens one only to free a
//!   deleted ledger's blocks (the `deleter` module), and each mapping holds a pin of its file
//!   from before it is made until it is unmapped: the deleter does not begin while a pin is held,
//!   and no pin is given once it has begun (the window is read with `pread`). So an entry queued
//!   on a stalled consumer's connection keeps its bytes across the ledger's deletion. A file
//!   shortened by someone else (an operator, under the running broker) is not covered: a
//!   window already populated then ends the broker when touched, as Lucene's or Prometheus's
//!   mapped files do.
//! - A kernel that refuses the mapping (the process's mapping count at its limit, say) is not an
//!   error: the caller reads with `pread` instead.

use std::fs::File;
use std::path::Path;
use std::ptr::NonNull;

use bytes::Bytes;

use crate::deleter::MapPin;
use crate::error::{HotTierError, Result};

/// A read-only shared mapping of part of a file, unmapped when dropped; the pin goes after the
/// unmapping (fields drop after `drop`).
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    _pin: MapPin,
}

// SAFETY: the mapping is read-only and nothing writes through it; the pointer is only read.
unsafe impl Send for Mapping {}
// SAFETY: as above: shared reads of immutable memory.
unsafe impl Sync for Mapping {}

impl AsRef<[u8]> for Mapping {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `ptr..ptr + len` is mapped readable for as long as `self` lives.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `mmap` returned; the last `Bytes` borrowing it is gone.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// The `len` bytes of `file` from `offset`, mapped (under `pin`, taken before) and read in;
/// `Ok(None)` when the kernel refuses to map them (read them instead), an error when they
/// cannot be read.
pub(crate) fn map_populated(
    file: &File,
    path: &Path,
    offset: u64,
    len: usize,
    pin: MapPin,
) -> Result<Option<Bytes>> {
    if len == 0 {
        return Ok(Some(Bytes::new()));
    }
    let page = rustix::param::page_size() as u64;
    let map_offset = offset - offset % page;
    let lead = (offset - map_offset) as usize;
    let Some(map_len) = lead.checked_add(len) else {
        return Ok(None);
    };
    // SAFETY: a new read-only mapping at an address the kernel chooses; it aliases nothing of
    // ours, and the file's bytes in that range do not change (see the module doc).
    let mapped = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            map_len,
            rustix::mm::ProtFlags::READ,
            rustix::mm::MapFlags::SHARED,
            file,
            map_offset,
        )
    };
    let Some(ptr) = mapped.ok().and_then(|p| NonNull::new(p.cast::<u8>())) else {
        return Ok(None);
    };
    let mapping = Mapping {
        ptr,
        len: map_len,
        _pin: pin,
    };
    // SAFETY: advice on the mapping made above, whole; populating only reads pages in.
    let populated = unsafe {
        rustix::mm::madvise(
            ptr.as_ptr().cast(),
            map_len,
            rustix::mm::Advice::LinuxPopulateRead,
        )
    };
    match populated {
        Ok(()) => Ok(Some(Bytes::from_owner(mapping).slice(lead..))),
        // Before 5.14 the advice is unknown: read instead.
        Err(rustix::io::Errno::INVAL) => Ok(None),
        // EFAULT: a page could not be read in (past the file's end, or an I/O error).
        Err(e) => Err(HotTierError::io("read (mapped)", path, e.into())),
    }
}
