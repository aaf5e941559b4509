//! A beat every second that notices when the daemon did not run for a while: the machine slept
//! (the wall clock jumped), or the process was frozen (SIGSTOP, a debugger, a VM paused). After
//! that, every stream to the API server may be dead without anyone having been told, so native
//! tunnels drop the streams they hold ready and check their pod at once.

use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often the beat is scheduled.
const BEAT: Duration = Duration::from_secs(1);
/// How much later than scheduled a beat must come to count as a wake.
const LATE: Duration = Duration::from_secs(3);

/// Counts the wakes; tunnels watch it.
pub struct Heartbeat {
    wakes: watch::Sender<u64>,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat {
            wakes: watch::Sender::new(0),
        }
    }
}

impl Heartbeat {
    /// Changes after every wake.
    pub fn wakes(&self) -> watch::Receiver<u64> {
        self.wakes.subscribe()
    }

    /// Beats until `stop`; each wake is counted and logged.
    pub async fn run(&self, stop: CancellationToken) {
        loop {
            let (mono, wall) = (Instant::now(), SystemTime::now());
            tokio::select! {
                _ = tokio::time::sleep(BEAT) => {}
                _ = stop.cancelled() => return,
            }
            let away = mono.elapsed().max(wall.elapsed().unwrap_or_default());
            if let Some(asleep) = asleep_for(away) {
                tracing::info!(
                    "the daemon did not run for {:.1} s (the machine slept or the process was frozen): native tunnels check their pods",
                    asleep.as_secs_f64()
                );
                self.wakes.send_modify(|n| *n += 1);
            }
        }
    }
}

/// How long the daemon was away, when a beat scheduled `BEAT` ahead came `away` later.
fn asleep_for(away: Duration) -> Option<Duration> {
    let late = away.saturating_sub(BEAT);
    (late >= LATE).then_some(late)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_beat_that_comes_late_is_a_wake_and_an_ordinary_one_is_not() {
        let heartbeat = std::sync::Arc::new(Heartbeat::default());
        let mut wakes = heartbeat.wakes();
        let stop = CancellationToken::new();
        let beating = tokio::spawn({
            let heartbeat = heartbeat.clone();
            let stop = stop.clone();
            async move { heartbeat.run(stop).await }
        });
        // An hour of ordinary beats: no wake.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(!wakes.has_changed().unwrap());
        // The runtime is away for 15 s (a freeze): the next beat is late, which is one wake.
        tokio::time::advance(Duration::from_secs(15)).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(wakes.has_changed().unwrap());
        wakes.borrow_and_update();
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!wakes.has_changed().unwrap(), "one freeze, one wake");
        stop.cancel();
        beating.await.unwrap();
    }

    #[test]
    fn lateness_under_three_seconds_is_noise() {
        assert_eq!(asleep_for(Duration::from_millis(1200)), None);
        assert_eq!(asleep_for(Duration::from_millis(3900)), None);
        assert_eq!(
            asleep_for(Duration::from_secs(16)),
            Some(Duration::from_secs(15))
        );
    }
}
