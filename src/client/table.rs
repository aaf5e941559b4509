//! Tables for people that fit the terminal: columns two spaces apart, none after the last, and
//! rows that never wrap. When a row is too wide, the columns allowed to give up width do, the
//! widest first, down to their header's width; what no longer fits a cell ends in `…`.
//!
//! The layout is worked out on the plain text and colors are added to each cell afterwards, so
//! escape codes never count as width and an elided cell keeps its color.

use anstyle::Style;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::style::Paint;

/// Between two columns.
const GAP: usize = 2;
/// Ends a cell that was cut short.
const ELLIPSIS: char = '…';

/// How wide rows may be: `COLUMNS` when it is set to a number, else the width of the terminal on
/// stdout, else (a pipe, a file) no limit, so that nothing a script reads is cut.
pub fn width() -> Option<usize> {
    let columns = std::env::var("COLUMNS").ok();
    match columns.as_deref().map(str::trim).map(str::parse::<usize>) {
        Some(Ok(n)) if n > 0 => Some(n),
        _ => terminal_size::terminal_size_of(std::io::stdout()).map(|(w, _)| usize::from(w.0)),
    }
}

/// One column: its header, and how it behaves when the row is too wide.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub header: &'static str,
    /// At least this wide, so that a column of numbers (pids) does not shift as they grow.
    pub min: usize,
    /// May give up width when the row is too wide (the number breaks ties between columns as
    /// wide: lower gives way first); `None`: never (ids, states).
    pub shrink: Option<u8>,
}

impl Column {
    /// A column that keeps its width.
    pub const fn keep(header: &'static str) -> Column {
        Column {
            header,
            min: 0,
            shrink: None,
        }
    }

    /// A column that gives up width in `order` (lower first).
    pub const fn shrink(header: &'static str, order: u8) -> Column {
        Column {
            header,
            min: 0,
            shrink: Some(order),
        }
    }

    pub const fn at_least(mut self, min: usize) -> Column {
        self.min = min;
        self
    }
}

/// One cell: its text (already escaped) and its color.
#[derive(Debug, Clone)]
pub struct Cell {
    text: String,
    style: Style,
}

impl Cell {
    pub fn new(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            style: Style::new(),
        }
    }

    pub fn styled(text: impl Into<String>, style: Style) -> Cell {
        Cell {
            text: text.into(),
            style,
        }
    }
}

/// A table for people.
#[derive(Debug, Clone)]
pub struct Table {
    columns: Vec<Column>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn new(columns: Vec<Column>) -> Table {
        Table {
            columns,
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are empty, extra ones are dropped.
    pub fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    /// The header and the rows, each line at most `width` wide (when that can be done at all),
    /// without trailing spaces, each ending in a newline.
    pub fn render(&self, width: Option<usize>, paint: Paint) -> String {
        let widths = self.widths(width);
        let header: Vec<Cell> = self.columns.iter().map(|c| Cell::new(c.header)).collect();
        let mut out = String::new();
        for cells in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, &w) in widths.iter().enumerate() {
                if i > 0 {
                    line.push_str(&" ".repeat(GAP));
                }
                let cell = cells.get(i);
                let text = elide(cell.map_or("", |c| c.text.as_str()), w);
                let pad = w - text.width();
                line.push_str(&paint.paint(cell.map_or(Style::new(), |c| c.style), &text));
                line.push_str(&" ".repeat(pad));
            }
            out.push_str(line.trim_end_matches(' '));
            out.push('\n');
        }
        out
    }

    /// Each column's width: what its widest cell needs, less what a too-wide row takes back from
    /// the columns that may shrink (down to their header's width, the widest first). A row still too wide is cut
    /// where the limit falls: that column gets what is left, the ones after it are not shown.
    fn widths(&self, limit: Option<usize>) -> Vec<usize> {
        let mut widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, column)| {
                let cells = self.rows.iter().filter_map(|row| row.get(i));
                cells
                    .map(|cell| cell.text.width())
                    .chain([column.header.width(), column.min])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let Some(limit) = limit else {
            return widths;
        };
        // The widest column that may shrink gives up one character at a time, so long cells
        // share the room; between two as wide, the one with the lower order gives way first.
        let total =
            |widths: &[usize]| widths.iter().sum::<usize>() + GAP * widths.len().saturating_sub(1);
        let floor = |i: usize| self.columns[i].header.width().max(1);
        let mut over = total(&widths).saturating_sub(limit);
        while over > 0 {
            let widest = (0..widths.len())
                .filter(|&i| self.columns[i].shrink.is_some() && widths[i] > floor(i))
                .max_by_key(|&i| (widths[i], std::cmp::Reverse(self.columns[i].shrink)));
            let Some(i) = widest else { break };
            widths[i] -= 1;
            over -= 1;
        }
        let (mut used, mut shown) = (0, widths.len());
        for (i, width) in widths.iter_mut().enumerate() {
            let start = if i == 0 { 0 } else { used + GAP };
            if start >= limit {
                shown = i;
                break;
            }
            *width = (*width).min(limit - start);
            used = start + *width;
        }
        widths.truncate(shown);
        widths
    }
}

/// `text` if it fits `width`, else as much of it as fits with `…` after it.
fn elide(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    if width > 0 {
        out.push(ELLIPSIS);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> Paint {
        Paint::forced(false)
    }

    fn table() -> Table {
        let mut table = Table::new(vec![
            Column::keep("ID"),
            Column::shrink("NAME", 1),
            Column::keep("PID").at_least(5),
            Column::shrink("COMMAND", 0),
        ]);
        table.row(vec![
            Cell::new("1"),
            Cell::new("web-frontend"),
            Cell::new("42"),
            Cell::new("python3 -m http.server 8000"),
        ]);
        table.row(vec![Cell::new("2"), Cell::new("db"), Cell::new("")]);
        table
    }

    #[test]
    fn without_a_limit_nothing_is_cut_and_no_line_ends_in_spaces() {
        assert_eq!(
            table().render(None, plain()),
            "ID  NAME          PID    COMMAND\n\
             1   web-frontend  42     python3 -m http.server 8000\n\
             2   db\n"
        );
    }

    #[test]
    fn the_widest_cells_give_way_first_and_then_share() {
        let at = |width| table().render(Some(width), plain());
        assert_eq!(
            at(40),
            "ID  NAME          PID    COMMAND\n\
             1   web-frontend  42     python3 -m htt…\n\
             2   db\n"
        );
        // COMMAND is down to NAME's width; then they take turns.
        assert_eq!(
            at(30),
            "ID  NAME       PID    COMMAND\n\
             1   web-fron…  42     python3…\n\
             2   db\n"
        );
        // Still too wide: cut where the limit falls.
        assert_eq!(at(12), "ID  NAME  P…\n1   web…  42\n2   db\n");
        for width in [1, 2, 10, 20, 25, 30, 40, 60] {
            for line in at(width).lines() {
                assert!(line.width() <= width, "{width}: {line:?}");
            }
        }
    }

    #[test]
    fn wide_characters_count_twice_and_colors_not_at_all() {
        assert_eq!(elide("日本語テキスト", 7), "日本語…");
        assert_eq!(elide("abc", 3), "abc");
        assert_eq!(elide("abcd", 3), "ab…");
        let mut table = Table::new(vec![Column::keep("STATUS"), Column::keep("X")]);
        table.row(vec![
            Cell::styled("ok", crate::client::style::GOOD),
            Cell::new("1"),
        ]);
        assert_eq!(
            table.render(None, Paint::forced(true)),
            "STATUS  X\n\x1b[32mok\x1b[0m      1\n"
        );
    }
}
