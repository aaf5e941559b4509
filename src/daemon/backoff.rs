//! Restart delays: from 100 ms, doubling, capped at 30 s, and back to 100 ms after a run that stayed
//! up for a minute.

use std::time::Duration;

const FIRST: Duration = Duration::from_millis(100);
const MAX: Duration = Duration::from_secs(30);
/// A run this long counts as healthy and resets the delay.
const HEALTHY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::with_max(MAX)
    }
}

impl Backoff {
    /// Backoff capped at `max` instead of 30 s.
    pub fn with_max(max: Duration) -> Self {
        Backoff {
            next: FIRST.min(max),
            max,
        }
    }

    /// Starts over, as after a healthy run: a restart asked for by a user is a fresh start.
    pub fn reset(&mut self) {
        self.next = FIRST.min(self.max);
    }

    /// The delay before the next start, given how long the run that just ended lasted.
    pub fn after_run(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= HEALTHY {
            self.next = FIRST.min(self.max);
        }
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_caps_and_resets() {
        let mut b = Backoff::default();
        let quick = Duration::from_millis(5);
        let delays: Vec<u128> = (0..11).map(|_| b.after_run(quick).as_millis()).collect();
        assert_eq!(
            delays,
            [
                100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000
            ]
        );
        assert_eq!(b.after_run(Duration::from_secs(61)), FIRST);
        assert_eq!(b.after_run(quick), Duration::from_millis(200));
        b.reset();
        assert_eq!(b.after_run(quick), FIRST);
    }
}
