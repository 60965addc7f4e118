//! The one output convention of every listing command (`ps`, `events`, `image ls`,
//! and later `ctl status/events`), after the aws CLI's habit:
//!
//! - `--output table` (the default): a header line, then one aligned line per row,
//!   with human sizes (`4.2 MiB`) and ages (`3m`). An empty list prints the header.
//! - `--output json`: one JSON array of objects with raw numbers (bytes, pids, exit
//!   codes) and RFC 3339 UTC times (`2026-12-01T23:10:24.000Z`). An empty list is `[]`.
//!   A command that follows (`-f`) prints one JSON object per line instead, since
//!   an array cannot stay open.
//! - `--json` is an alias of `--output json`.
//!
//! API: flatten [`OutputArgs`] into a command's clap args, build one `Serialize`
//! struct per row implementing [`Row`] (its `Serialize` is the JSON form, its
//! [`Row::cells`] the table form), and call [`print_rows`]. [`Table`] renders
//! incrementally for following commands; [`human_size`], [`human_age`], [`age_since`]
//! and [`rfc3339`] are the shared formatters. Nothing here reads state.

use std::io::Write;

use serde::Serialize;

/// `--output` values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns with a header, human sizes and ages.
    #[default]
    Table,
    /// A JSON array, raw numbers, RFC 3339 times.
    Json,
}

/// The output flags of a listing command: `#[command(flatten)] output: OutputArgs`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table, value_name = "FORMAT")]
    pub output: OutputFormat,
    /// Same as --output json.
    #[arg(long)]
    pub json: bool,
}

impl OutputArgs {
    /// The chosen format (`--json` wins over the default table).
    pub fn format(&self) -> OutputFormat {
        if self.json {
            OutputFormat::Json
        } else {
            self.output
        }
    }
}

/// How a column's cells line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A table column: its header and alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub align: Align,
}

impl Column {
    /// A left-aligned column (text).
    pub const fn left(name: &'static str) -> Self {
        Self {
            name,
            align: Align::Left,
        }
    }

    /// A right-aligned column (numbers, sizes, ages).
    pub const fn right(name: &'static str) -> Self {
        Self {
            name,
            align: Align::Right,
        }
    }
}

/// One row of a listing: `Serialize` gives its JSON object, `cells` its table line.
pub trait Row: Serialize {
    /// The table's columns, in order.
    const COLUMNS: &'static [Column];
    /// One cell per column, formatted for people (`-` for nothing).
    fn cells(&self) -> Vec<String>;
}

/// Prints `rows` to stdout in `format`: a table (header even when empty) or a JSON
/// array (`[]` when empty).
pub fn print_rows<R: Row>(format: OutputFormat, rows: &[R]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, rows)?;
            writeln!(out)
        }
        OutputFormat::Table => {
            let cells: Vec<Vec<String>> = rows.iter().map(Row::cells).collect();
            out.write_all(render_table(R::COLUMNS, &cells).as_bytes())
        }
    }
}

/// Prints one row as a JSON object on its own line (for `--follow`).
pub fn print_json_line<T: Serialize>(row: &T) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, row)?;
    writeln!(out)
}

/// A table rendered line by line; columns are as wide as the widest cell seen so
/// far ([`Table::fit`]). The last column is never padded.
#[derive(Debug, Clone)]
pub struct Table {
    columns: &'static [Column],
    widths: Vec<usize>,
}

impl Table {
    /// A table whose columns are as wide as their headers.
    pub fn new(columns: &'static [Column]) -> Self {
        Self {
            columns,
            widths: columns.iter().map(|c| c.name.chars().count()).collect(),
        }
    }

    /// Widens the columns to hold `cells`.
    pub fn fit(&mut self, cells: &[String]) {
        for (w, c) in self.widths.iter_mut().zip(cells) {
            *w = (*w).max(c.chars().count());
        }
    }

    /// The header line (with its newline).
    pub fn header(&self) -> String {
        let names: Vec<String> = self.columns.iter().map(|c| c.name.to_string()).collect();
        self.line(&names)
    }

    /// One row's line (with its newline); missing cells print as `-`.
    pub fn line(&self, cells: &[String]) -> String {
        let mut out = String::new();
        let last = self.columns.len().saturating_sub(1);
        for (i, (col, width)) in self.columns.iter().zip(&self.widths).enumerate() {
            let cell = cells.get(i).map_or("-", String::as_str);
            let pad = width.saturating_sub(cell.chars().count());
            if i > 0 {
                out.push_str("  ");
            }
            match col.align {
                Align::Right => {
                    out.extend(std::iter::repeat_n(' ', pad));
                    out.push_str(cell);
                }
                Align::Left if i == last => out.push_str(cell),
                Align::Left => {
                    out.push_str(cell);
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
        }
        out.push('\n');
        out
    }
}

/// The whole table: header, then one line per row, columns fitted to all rows.
pub fn render_table(columns: &'static [Column], rows: &[Vec<String>]) -> String {
    let mut table = Table::new(columns);
    for r in rows {
        table.fit(r);
    }
    let mut out = table.header();
    for r in rows {
        out.push_str(&table.line(r));
    }
    out
}

/// Bytes for people, in binary units: `512 B`, `1.5 KiB`, `4.2 MiB`, `1.0 GiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A duration in milliseconds for people, in its largest whole unit: `45s`, `12m`,
/// `3h`, `5d` (under a second: `0s`).
pub fn human_age(ms: u64) -> String {
    let secs = ms / 1000;
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// The age of a wall-clock time `then_ms` at `now_ms` ([`human_age`]); a time in the
/// future (a clock set back) shows as `0s`.
pub fn age_since(then_ms: u64, now_ms: u64) -> String {
    human_age(now_ms.saturating_sub(then_ms))
}

/// Milliseconds since the epoch as an RFC 3339 UTC time with milliseconds.
pub fn rfc3339(ms: u64) -> String {
    crate::runtime::logfile::format_rfc3339_ms(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_human_size_uses_binary_units() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1024), "1.0 KiB");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(4_404_019), "4.2 MiB");
        assert_eq!(human_size(1 << 30), "1.0 GiB");
        assert_eq!(human_size(u64::MAX), "16384.0 PiB");
    }

    #[test]
    fn output_human_age_picks_the_largest_whole_unit() {
        assert_eq!(human_age(999), "0s");
        assert_eq!(human_age(59_999), "59s");
        assert_eq!(human_age(60_000), "1m");
        assert_eq!(human_age(3_599_999), "59m");
        assert_eq!(human_age(7_200_000), "2h");
        assert_eq!(human_age(5 * 86_400_000), "5d");
        assert_eq!(age_since(10_000, 5_000), "0s");
        assert_eq!(age_since(0, 90_000), "1m");
    }

    const COLS: &[Column] = &[
        Column::left("NAME"),
        Column::right("SIZE"),
        Column::left("NOTE"),
    ];

    #[test]
    fn output_table_aligns_and_keeps_the_header_when_empty() {
        assert_eq!(render_table(COLS, &[]), "NAME  SIZE  NOTE\n");
        let rows = vec![
            vec!["busybox:latest".into(), "1.0 MiB".into(), "x".into()],
            vec!["a".into(), "2 B".into()],
        ];
        assert_eq!(
            render_table(COLS, &rows),
            "NAME               SIZE  NOTE\n\
             busybox:latest  1.0 MiB  x\n\
             a                   2 B  -\n"
        );
    }

    #[test]
    fn output_json_flag_is_an_alias_of_output_json() {
        let a = OutputArgs {
            output: OutputFormat::Table,
            json: true,
        };
        assert_eq!(a.format(), OutputFormat::Json);
        assert_eq!(OutputArgs::default().format(), OutputFormat::Table);
    }
}
