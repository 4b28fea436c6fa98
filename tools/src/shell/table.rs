//! Text layouts of results, as cqlsh prints them.
//!
//! Tables: column names left-aligned in the header, a `-+-` separator line, values
//! right-aligned. Expanded (vertical) output: one `@ Row N` block per row. Listings of names
//! (DESCRIBE KEYSPACES / TABLES) in columns, like Python's `cmd.Cmd.columnize`.

use unicode_width::UnicodeWidthStr;

/// The display width of `s` in a terminal (wide characters count two).
#[must_use]
pub fn display_width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

fn pad_right(s: &str, width: usize) -> String {
    let mut out = s.to_string();
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(display_width(s))));
    out
}

fn pad_left(s: &str, width: usize) -> String {
    let mut out: String = std::iter::repeat_n(' ', width.saturating_sub(display_width(s))).collect();
    out.push_str(s);
    out
}

/// Column widths: the widest of each column's name and values.
#[must_use]
pub fn column_widths(names: &[String], rows: &[Vec<String>]) -> Vec<usize> {
    let mut widths: Vec<usize> = names.iter().map(|n| display_width(n)).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(display_width(cell));
        }
    }
    widths
}

/// The header and separator lines of a table.
#[must_use]
pub fn header_lines(names: &[String], widths: &[usize]) -> Vec<String> {
    let header: Vec<String> = names.iter().zip(widths).map(|(n, w)| pad_right(n, *w)).collect();
    let header = format!(" {}", header.join(" | "));
    let separator: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    vec![header.trim_end().to_string(), format!("-{}-", separator.join("-+-"))]
}

/// The lines of rows of a table, values right-aligned.
#[must_use]
pub fn row_lines(rows: &[Vec<String>], widths: &[usize]) -> Vec<String> {
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row.iter().zip(widths).map(|(c, w)| pad_left(c, *w)).collect();
            format!(" {}", cells.join(" | "))
        })
        .collect()
}

/// A whole table: header, separator and rows.
#[must_use]
pub fn render_table(names: &[String], rows: &[Vec<String>]) -> Vec<String> {
    let widths = column_widths(names, rows);
    let mut lines = header_lines(names, &widths);
    lines.extend(row_lines(rows, &widths));
    lines
}

/// Expanded output: for each row, `@ Row N` (numbered from `first_row_number`), a separator,
/// and one `name | value` line per column, then a blank line.
#[must_use]
pub fn render_vertical(names: &[String], rows: &[Vec<String>], first_row_number: usize) -> Vec<String> {
    let name_width = names.iter().map(|n| display_width(n)).max().unwrap_or(0);
    let value_width = rows.iter().flatten().map(|v| display_width(v)).max().unwrap_or(0);
    let mut lines = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        lines.push(format!("@ Row {}", first_row_number + i));
        lines.push(format!("-{}-+-{}-", "-".repeat(name_width), "-".repeat(value_width)));
        for (name, value) in names.iter().zip(row) {
            lines.push(format!(" {} | {}", pad_right(name, name_width), value));
        }
        lines.push(String::new());
    }
    lines
}

/// Names in as few rows as fit in `total_width` columns, two spaces apart, filled column by
/// column (Python's `cmd.Cmd.columnize`, without its trailing spaces).
#[must_use]
pub fn columnize(names: &[String], total_width: usize) -> Vec<String> {
    if names.is_empty() {
        return vec!["<empty>".to_string()];
    }
    if names.len() == 1 {
        return vec![names[0].clone()];
    }
    let size = names.len();
    let mut layout: Option<(usize, Vec<usize>)> = None;
    for nrows in 1..size {
        let ncols = size.div_ceil(nrows);
        let mut widths = Vec::with_capacity(ncols);
        let mut total: isize = -2;
        for col in 0..ncols {
            let width = (0..nrows)
                .filter_map(|row| names.get(row + nrows * col))
                .map(|n| display_width(n))
                .max()
                .unwrap_or(0);
            widths.push(width);
            total += width as isize + 2;
            if total > total_width as isize {
                break;
            }
        }
        if total <= total_width as isize {
            layout = Some((nrows, widths));
            break;
        }
    }
    let (nrows, widths) = layout.unwrap_or((size, vec![0]));
    let ncols = size.div_ceil(nrows);
    let mut lines = Vec::with_capacity(nrows);
    for row in 0..nrows {
        let mut texts: Vec<&str> =
            (0..ncols).map(|col| names.get(row + nrows * col).map_or("", String::as_str)).collect();
        while texts.last().is_some_and(|t| t.is_empty()) {
            texts.pop();
        }
        let cells: Vec<String> = texts
            .iter()
            .enumerate()
            .map(|(col, t)| pad_right(t, widths.get(col).copied().unwrap_or(0)))
            .collect();
        lines.push(cells.join("  ").trim_end().to_string());
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(items: &[&str]) -> Vec<String> {
        items.iter().map(|i| i.to_string()).collect()
    }

    #[test]
    fn table_like_cqlsh() {
        let lines = render_table(
            &s(&["k", "value"]),
            &[s(&["1", "a"]), s(&["1000", "longer text"]), s(&["2", "null"])],
        );
        assert_eq!(
            lines,
            [
                " k    | value",
                "------+-------------",
                "    1 |           a",
                " 1000 | longer text",
                "    2 |        null",
            ]
        );
    }

    #[test]
    fn header_only_table_for_no_rows() {
        assert_eq!(render_table(&s(&["key", "v"]), &[]), [" key | v", "-----+---"]);
    }

    #[test]
    fn wide_characters_count_twice() {
        let lines = render_table(&s(&["n"]), &[s(&["東京"]), s(&["ab"])]);
        assert_eq!(lines, [" n", "------", " 東京", "   ab"]);
    }

    #[test]
    fn vertical_layout() {
        let lines = render_vertical(&s(&["k", "value"]), &[s(&["1", "a"]), s(&["2", "bcd"])], 1);
        assert_eq!(
            lines,
            [
                "@ Row 1",
                "-------+-----",
                " k     | 1",
                " value | a",
                "",
                "@ Row 2",
                "-------+-----",
                " k     | 2",
                " value | bcd",
                "",
            ]
        );
    }

    #[test]
    fn columnize_fills_columns_first() {
        let names = s(&["system", "system_auth", "system_schema", "ks1", "ks2"]);
        assert_eq!(columnize(&names, 80), ["system  system_auth  system_schema  ks1  ks2"]);
        let lines = columnize(&names, 31);
        assert_eq!(lines, ["system       system_schema  ks2", "system_auth  ks1"]);
        assert_eq!(columnize(&[], 80), ["<empty>"]);
        assert_eq!(columnize(&s(&["one"]), 80), ["one"]);
    }
}
