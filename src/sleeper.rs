//! The body of `rhizome sleeper`: a real child process that counts, for trying rhizome out and for
//! tests.

use std::io::Write;
use std::time::Duration;

use crate::cli::SleeperArgs;

/// Prints 0..count, each line followed by a pause of one interval. `SLEEP_OVERRIDE` (seconds, as in the original
/// design) replaces the interval; one that is not a number of seconds (`nan`, `-1`) is ignored.
pub fn run(args: &SleeperArgs) -> i32 {
    let seconds = |text: &str| Duration::try_from_secs_f64(text.trim().parse().ok()?).ok();
    let interval = std::env::var("SLEEP_OVERRIDE")
        .ok()
        .and_then(|value| seconds(&value))
        .or_else(|| Duration::try_from_secs_f64(args.interval).ok())
        .unwrap_or(Duration::from_secs(1));
    let mut stdout = std::io::stdout().lock();
    for i in 0..args.count {
        if writeln!(stdout, "{i}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            return 1;
        }
        std::thread::sleep(interval);
    }
    0
}
