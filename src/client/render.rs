//! Formatting that more than one command's output shares: durations (tables are `table`).

/// `3s`, `2m`, `1h4m`, `2d3h`: the two largest units, as people say it.
pub fn human_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m"),
        (0, _, 0) => format!("{h}h"),
        (0, _, _) => format!("{h}h{m}m"),
        (_, 0, _) => format!("{d}d"),
        (_, _, _) => format!("{d}d{h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::human_duration;

    #[test]
    fn durations_read_like_speech() {
        assert_eq!(human_duration(3), "3s");
        assert_eq!(human_duration(150), "2m");
        assert_eq!(human_duration(3840), "1h4m");
        assert_eq!(human_duration(7200), "2h");
        assert_eq!(human_duration(2 * 86400 + 3 * 3600 + 5), "2d3h");
    }
}
