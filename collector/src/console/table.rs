//! Plain-text tables that fit a terminal width: columns sized to their
//! content, one flexible column shortened with `…` when the row is too wide,
//! and every cell cleaned of control characters (the text comes from remote
//! hosts and must not drive the operator's terminal).

/// How a column's cells line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A column: its header, its alignment, and whether it gives up width
/// when the table is too wide (flexible columns do, in their order).
#[derive(Debug, Clone)]
pub struct Column {
    pub header: &'static str,
    pub align: Align,
    pub flex: bool,
}

impl Column {
    pub fn left(header: &'static str) -> Column {
        Column {
            header,
            align: Align::Left,
            flex: false,
        }
    }

    pub fn right(header: &'static str) -> Column {
        Column {
            header,
            align: Align::Right,
            flex: false,
        }
    }

    pub fn flex(header: &'static str) -> Column {
        Column {
            header,
            align: Align::Left,
            flex: true,
        }
    }
}

/// The gap between two columns.
const GAP: &str = "  ";

/// The narrowest a flexible column is shortened to.
const MIN_FLEX: usize = 16;

/// The widest any fixed left-aligned column grows.
const MAX_FIXED: usize = 24;

/// A table being built.
#[derive(Debug, Clone)]
pub struct Table {
    columns: Vec<Column>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(columns: Vec<Column>) -> Table {
        Table {
            columns,
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are empty and extra cells are dropped.
    pub fn row(&mut self, cells: Vec<String>) {
        let mut cells: Vec<String> = cells.into_iter().map(|c| clean(&c)).collect();
        cells.resize(self.columns.len(), String::new());
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as lines no wider than `width` characters (when the fixed
    /// columns allow it), each ending in a newline.
    pub fn render(&self, width: usize) -> String {
        let mut widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, col)| {
                let content = self.rows.iter().map(|r| chars(&r[i])).max().unwrap_or(0);
                let w = content.max(chars(col.header));
                if !col.flex && col.align == Align::Left {
                    w.min(MAX_FIXED.max(chars(col.header)))
                } else {
                    w
                }
            })
            .collect();
        let total = |widths: &[usize]| {
            widths.iter().sum::<usize>() + GAP.len() * widths.len().saturating_sub(1)
        };
        // Flexible columns give up width in their order, each down to its
        // floor, until the table fits.
        let mut excess = total(&widths).saturating_sub(width);
        for (i, col) in self.columns.iter().enumerate() {
            if excess == 0 {
                break;
            }
            if !col.flex {
                continue;
            }
            let floor = MIN_FLEX.max(chars(col.header)).min(widths[i]);
            let give = excess.min(widths[i] - floor);
            widths[i] -= give;
            excess -= give;
        }

        let mut out = String::new();
        let headers: Vec<String> = self.columns.iter().map(|c| c.header.to_string()).collect();
        self.line(&mut out, &headers, &widths);
        for row in &self.rows {
            self.line(&mut out, row, &widths);
        }
        out
    }

    fn line(&self, out: &mut String, cells: &[String], widths: &[usize]) {
        let mut line = String::new();
        for (i, (col, cell)) in self.columns.iter().zip(cells).enumerate() {
            let w = widths[i];
            let text = shorten(cell, w);
            let pad = w.saturating_sub(chars(&text));
            if i > 0 {
                line.push_str(GAP);
            }
            match col.align {
                Align::Left => {
                    line.push_str(&text);
                    line.extend(std::iter::repeat_n(' ', pad));
                }
                Align::Right => {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(&text);
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// `s` cut to `width` characters, the last one replaced by `…` when cut.
pub fn shorten(s: &str, width: usize) -> String {
    if chars(s) <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(width - 1).collect();
    out.push('…');
    out
}

/// `s` with every control character (newlines, escapes) replaced by `?`.
pub fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
