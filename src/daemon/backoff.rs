//! Restart delays: from 100 ms, doubling, capped at 30 s, and back to 100 ms after a run that stayed
//! up for a minute; and `Limit`, which gives up after `--max-restarts` restarts in a row whose runs
//! did not stay up that long (a crash loop).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

const FIRST: Duration = Duration::from_millis(100);
const MAX: Duration = Duration::from_secs(30);
/// A run this long counts as healthy: it resets the delay and the count of failed restarts.
pub const HEALTHY: Duration = Duration::from_secs(60);

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

/// Rebuilds of a tunnel path that carried traffic and then broke: each is at once, whatever came
/// before, so a tunnel whose kubectl dies every few minutes is never away for seconds. More than
/// `REBUILDS_PER_MINUTE` in a minute is a tight loop, and the doubling delay takes over.
#[derive(Debug, Clone, Default)]
pub struct Rebuilds {
    recent: VecDeque<Instant>,
}

/// The most rebuilds at once within a minute.
pub const REBUILDS_PER_MINUTE: usize = 10;

impl Rebuilds {
    /// Whether a rebuild at `now` may be at once; if so it is counted.
    pub fn at_once(&mut self, now: Instant) -> bool {
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= REBUILDS_PER_MINUTE {
            return false;
        }
        self.recent.push_back(now);
        true
    }
}

/// Counts the restarts in a row that failed (their run ended before it was `HEALTHY`), against
/// the most that may fail in a row.
#[derive(Debug, Clone)]
pub struct Limit {
    max: Option<u32>,
    /// Restarts in a row whose runs ended early.
    failed: u32,
    /// Whether a run has ended yet: the first run was a start, not a restart, so its ending
    /// early fails no restart.
    ended_one: bool,
}

/// What follows a run that ended and would be restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Start it again; `failed` restarts in a row have failed so far.
    Restart { failed: u32 },
    /// The limit is reached: `failed` restarts in a row failed, and this run ended early too.
    CrashLoop { failed: u32 },
}

impl Limit {
    /// At most `max` failed restarts in a row; `None` for no limit.
    pub fn new(max: Option<u32>) -> Limit {
        Limit {
            max,
            failed: 0,
            ended_one: false,
        }
    }

    /// The most failed restarts in a row, if there is a limit.
    pub fn max(&self) -> Option<u32> {
        self.max
    }

    /// Judges a run that ended after `ran_for`.
    pub fn after_run(&mut self, ran_for: Duration) -> Verdict {
        let was_restart = std::mem::replace(&mut self.ended_one, true);
        if ran_for >= HEALTHY {
            self.failed = 0;
            return Verdict::Restart { failed: 0 };
        }
        self.failed = self.failed.saturating_add(u32::from(was_restart));
        let failed = self.failed;
        match self.max {
            Some(max) if failed >= max => Verdict::CrashLoop { failed },
            _ => Verdict::Restart { failed },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebuilds_are_at_once_until_a_tight_loop() {
        let mut rebuilds = Rebuilds::default();
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        for i in 0..REBUILDS_PER_MINUTE as u64 {
            assert!(rebuilds.at_once(at(i)), "rebuild {i}");
        }
        assert!(
            !rebuilds.at_once(at(30)),
            "the eleventh within a minute waits"
        );
        assert!(
            rebuilds.at_once(at(60)),
            "a minute after the first, one is free again"
        );
        assert!(!rebuilds.at_once(at(60)), "and only one");
        assert!(rebuilds.at_once(at(200)));
    }

    #[test]
    fn a_crash_loop_is_so_many_failed_restarts_in_a_row() {
        let quick = Duration::from_millis(5);
        let healthy = HEALTHY;
        // The first run ending early fails no restart; three restarts may fail, not a fourth run.
        let mut limit = Limit::new(Some(3));
        let verdicts: Vec<Verdict> = (0..4).map(|_| limit.after_run(quick)).collect();
        assert_eq!(
            verdicts,
            [
                Verdict::Restart { failed: 0 },
                Verdict::Restart { failed: 1 },
                Verdict::Restart { failed: 2 },
                Verdict::CrashLoop { failed: 3 },
            ]
        );
        // A healthy run in between starts the count again.
        let mut limit = Limit::new(Some(2));
        assert_eq!(limit.after_run(quick), Verdict::Restart { failed: 0 });
        assert_eq!(limit.after_run(quick), Verdict::Restart { failed: 1 });
        assert_eq!(limit.after_run(healthy), Verdict::Restart { failed: 0 });
        assert_eq!(limit.after_run(quick), Verdict::Restart { failed: 1 });
        assert_eq!(limit.after_run(quick), Verdict::CrashLoop { failed: 2 });
        // Zero: no restart after a run that ended early, but after a healthy one.
        let mut limit = Limit::new(Some(0));
        assert_eq!(limit.after_run(quick), Verdict::CrashLoop { failed: 0 });
        let mut limit = Limit::new(Some(0));
        assert_eq!(limit.after_run(healthy), Verdict::Restart { failed: 0 });
        assert_eq!(limit.after_run(quick), Verdict::CrashLoop { failed: 1 });
        // No limit: for good.
        let mut limit = Limit::new(None);
        for n in 0..1000 {
            assert_eq!(limit.after_run(quick), Verdict::Restart { failed: n });
        }
    }

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
