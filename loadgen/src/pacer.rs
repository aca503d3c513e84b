//! The rate limiter shared by all connections for `--rate`.
//!
//! A virtual-schedule token bucket (GCRA): each batch of `n` records reserves the next `n / rate`
//! seconds of the schedule and may start at the beginning of its slot. When senders fall behind
//! (a slow server) the schedule restarts from "now" instead of bursting to catch up, so the
//! offered rate never exceeds `--rate`. Time is passed in, so the arithmetic is testable without
//! clocks.

#[derive(Debug, Clone)]
pub struct Pacer {
    /// Records per second, > 0.
    rate: f64,
    /// Start of the next free slot, seconds since the run started.
    next: f64,
}

impl Pacer {
    pub fn new(rate: f64) -> Pacer {
        assert!(rate > 0.0 && rate.is_finite(), "rate must be positive");
        Pacer { rate, next: 0.0 }
    }

    /// Reserves a slot for `n` records at time `now` (seconds since the start) and returns how
    /// long to wait before sending, in seconds (0 when the slot has already begun).
    pub fn reserve(&mut self, now: f64, n: u64) -> f64 {
        let start = self.next.max(now);
        self.next = start + n as f64 / self.rate;
        start - now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn back_to_back_reservations_are_spaced_by_batch_over_rate() {
        // 10,000 logs/s in batches of 1,000: one batch every 100 ms.
        let mut p = Pacer::new(10_000.0);
        let delays: Vec<f64> = (0..5).map(|_| p.reserve(0.0, 1000)).collect();
        for (i, d) in delays.iter().enumerate() {
            assert!(close(*d, i as f64 * 0.1), "{delays:?}");
        }
    }

    #[test]
    fn many_senders_together_get_the_configured_rate() {
        // Eight connections asking as fast as they can for 10 simulated seconds.
        let rate = 50_000.0;
        let mut p = Pacer::new(rate);
        let mut clocks = [0.0f64; 8];
        let mut sent = 0u64;
        loop {
            let (i, &now) = clocks
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(b.1))
                .unwrap();
            let at = now + p.reserve(now, 500);
            if at >= 10.0 {
                break;
            }
            sent += 500;
            clocks[i] = at + 0.003; // each request takes 3 ms
        }
        let achieved = sent as f64 / 10.0;
        assert!((achieved / rate - 1.0).abs() < 0.01, "achieved {achieved}");
    }

    #[test]
    fn no_burst_after_idle_time() {
        let mut p = Pacer::new(1000.0);
        assert!(close(p.reserve(0.0, 100), 0.0));
        // Idle until t=5: the next request goes at once, but the one after waits a full slot.
        assert!(close(p.reserve(5.0, 100), 0.0));
        assert!(close(p.reserve(5.0, 100), 0.1));
        assert!(close(p.reserve(5.05, 100), 0.15));
    }

    #[test]
    fn a_slow_sender_is_not_delayed() {
        // Requests come in slower than the rate allows: never wait.
        let mut p = Pacer::new(1000.0);
        for i in 0..10 {
            assert!(close(p.reserve(i as f64 * 0.5, 100), 0.0));
        }
    }

    #[test]
    fn batch_size_is_weighed() {
        let mut p = Pacer::new(100.0);
        assert!(close(p.reserve(0.0, 1), 0.0));
        assert!(close(p.reserve(0.0, 50), 0.01));
        assert!(close(p.reserve(0.0, 1), 0.51));
    }
}
