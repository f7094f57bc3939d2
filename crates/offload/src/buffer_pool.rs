//! Read buffers that go back to a pool when the last [`Bytes`] of them is dropped.
//!
//! Why: a re-read from the disk cache reads ranges of up to 8 MiB into fresh buffers. Fresh
//! memory of that size comes from the OS (the allocator returns freed large blocks to it), and
//! the kernel zeroes every page on its first touch — with transparent huge pages 2 MiB at a
//! time. Measured on a cache re-read, that zeroing was 12% of the broker's CPU, as much as
//! one checksum pass. A buffer that held a range the reader is done with is reused instead.
//!
//! The pool keeps at most `max_idle_bytes` of idle buffers; what does not fit
//! goes back to the allocator.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

#[derive(Debug)]
pub struct BufferPool {
    idle: Mutex<Vec<Vec<u8>>>,
    max_idle_bytes: usize,
}

impl BufferPool {
    pub fn new(max_idle_bytes: usize) -> Arc<Self> {
        Arc::new(BufferPool {
            idle: Mutex::new(Vec::new()),
            max_idle_bytes,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        // A list of empty buffers: nothing a panic elsewhere could leave half-done.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An empty buffer with room for at least `capacity` bytes: the smallest idle one that is
    /// large enough, else a new one.
    pub fn take(&self, capacity: usize) -> Vec<u8> {
        let mut idle = self.lock();
        let best = idle
            .iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() >= capacity)
            .min_by_key(|(_, b)| b.capacity())
            .map(|(i, _)| i);
        match best {
            Some(i) => idle.swap_remove(i),
            None => {
                drop(idle);
                Vec::with_capacity(capacity)
            }
        }
    }

    /// `buf`'s bytes, shared; the buffer comes back to the pool when the last clone or slice
    /// of them is dropped.
    pub fn freeze(self: &Arc<Self>, buf: Vec<u8>) -> Bytes {
        Bytes::from_owner(Pooled {
            buf,
            pool: Arc::clone(self),
        })
    }

    /// Keeps `buf` for reuse if the idle buffers leave room for it.
    fn give_back(&self, mut buf: Vec<u8>) {
        buf.clear();
        let mut idle = self.lock();
        let held: usize = idle.iter().map(Vec::capacity).sum();
        if held + buf.capacity() <= self.max_idle_bytes {
            idle.push(buf);
        }
    }

    /// Bytes of idle buffers held now.
    #[cfg(test)]
    fn idle_bytes(&self) -> usize {
        self.lock().iter().map(Vec::capacity).sum()
    }
}

struct Pooled {
    buf: Vec<u8>,
    pool: Arc<BufferPool>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_comes_back_when_its_last_slice_is_dropped() {
        let pool = BufferPool::new(1 << 20);
        let mut buf = pool.take(4096);
        buf.extend_from_slice(&[7u8; 4096]);
        let ptr = buf.as_ptr();
        let bytes = pool.freeze(buf);
        let slice = bytes.slice(100..200);
        drop(bytes);
        assert_eq!(pool.idle_bytes(), 0, "a slice still holds it");
        assert_eq!(&slice[..], &[7u8; 100][..]);
        drop(slice);
        assert!(pool.idle_bytes() >= 4096);
        let again = pool.take(1000);
        assert_eq!(again.as_ptr(), ptr, "the same memory is reused");
        assert!(again.is_empty());
    }

    #[test]
    fn the_smallest_large_enough_buffer_is_taken_and_idle_bytes_stay_bounded() {
        let pool = BufferPool::new(3 << 20);
        let taken: Vec<Bytes> = [2 << 20, 1 << 20, 1 << 20]
            .into_iter()
            .map(|size| pool.freeze(pool.take(size)))
            .collect();
        drop(taken);
        // 2 MiB + 1 MiB fit; the second 1 MiB buffer did not.
        assert_eq!(pool.idle_bytes(), 3 << 20);
        assert_eq!(pool.take(1 << 20).capacity(), 1 << 20);
        assert_eq!(pool.take(1 << 20).capacity(), 2 << 20);
        assert_eq!(pool.idle_bytes(), 0);
        // None large enough: a new one.
        assert_eq!(pool.take(5 << 20).capacity(), 5 << 20);
    }
}
