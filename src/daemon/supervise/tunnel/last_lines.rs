//! The last lines kubectl printed, kept to explain why an attempt failed.

use super::LAST_LINES;

/// The last `LAST_LINES` lines kubectl printed.
#[derive(Default)]
pub(super) struct LastLines(std::collections::VecDeque<String>);

impl LastLines {
    pub(super) fn push(&mut self, line: String) {
        if self.0.len() == LAST_LINES {
            self.0.pop_front();
        }
        self.0.push_back(line);
    }

    /// `: line / line / ...`, the lines that say something, or nothing.
    pub(super) fn explain(&self) -> String {
        let lines: Vec<&str> = self
            .0
            .iter()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty() && !l.starts_with("Handling connection"))
            .collect();
        if lines.is_empty() {
            String::new()
        } else {
            format!(": {}", lines.join(" / "))
        }
    }
}
