//! The rate every producer of a perf run shares.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A smooth token bucket: `rate` permits per second shared by every producer.
pub(super) struct RateLimiter {
    interval_ns: u64,
    next: Mutex<Instant>,
}

impl RateLimiter {
    pub(super) fn new(rate: u64) -> Option<Arc<RateLimiter>> {
        (rate > 0).then(|| {
            Arc::new(RateLimiter {
                interval_ns: 1_000_000_000 / rate,
                next: Mutex::new(Instant::now()),
            })
        })
    }

    /// Reserves the next permit; returns when it may be used.
    pub(super) fn reserve(&self) -> Instant {
        self.reserve_at(Instant::now())
    }

    /// [`Self::reserve`] as of `now`.
    fn reserve_at(&self, now: Instant) -> Instant {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        // Permits not taken on time are kept for at most RATE_CREDIT: a sender that wakes late
        // (a timer fires up to a millisecond after its deadline) catches up, while one back
        // from idling gets no burst beyond that. With one interval of credit instead, a
        // single producer at 2000 msg/s lost every late wake-up and sent about 1000.
        if *next + RATE_CREDIT < now {
            *next = now;
        }
        let at = *next;
        *next += Duration::from_nanos(self.interval_ns);
        at
    }
}

/// How far behind its schedule [`RateLimiter`] lets senders fall and still catch up.
const RATE_CREDIT: Duration = Duration::from_millis(10);

#[cfg(test)]
mod tests {
    use super::*;

    /// A sender that sleeps until each permit and wakes `late` after it (as timers do), when
    /// the permit is still ahead: how long `n` permits take.
    fn paced(rate: u64, late: Duration, n: usize) -> Duration {
        let limiter = RateLimiter::new(rate).expect("a rate");
        let start = *limiter.next.lock().unwrap();
        let mut now = start;
        for _ in 0..n {
            let at = limiter.reserve_at(now);
            if at > now {
                now = at + late;
            }
        }
        now - start
    }

    #[test]
    fn a_sender_woken_late_by_its_timer_still_gets_the_whole_rate() {
        // 2000 permits at 2000/s, each wake-up 1.3 ms late: one second, not two.
        let took = paced(2000, Duration::from_micros(1300), 2000);
        assert!(took < Duration::from_millis(1050), "{took:?}");
        assert!(took >= Duration::from_millis(999), "{took:?}");
    }

    #[test]
    fn after_idling_a_sender_gets_no_burst_beyond_the_credit() {
        let limiter = RateLimiter::new(1000).expect("a rate");
        let later = Instant::now() + Duration::from_secs(5);
        let first = limiter.reserve_at(later);
        assert_eq!(first, later, "no permits saved up over 5 s of idling");
        assert_eq!(limiter.reserve_at(later), later + Duration::from_millis(1));
    }
}
