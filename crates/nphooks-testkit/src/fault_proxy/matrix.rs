//! The fault matrix as markdown: rows are port calls, columns fault classes, cells the
//! outcome a test observed. A test renders its section of `docs/fault-matrix.md` from
//! what it saw and compares it with the file ([`check_section`]); `NPHOOKS_BLESS=1`
//! rewrites the section instead.

use std::ops::RangeInclusive;
use std::path::Path;

use super::{Fault, FaultProxy};

/// The fault classes: the matrix's column names, shared by every section.
pub mod column {
    pub const THROTTLED_ONCE: &str = "throttled once";
    pub const THROTTLED: &str = "throttled on every attempt";
    pub const E500: &str = "500 on every attempt";
    pub const E503: &str = "503 on every attempt";
    pub const INVALID: &str = "ValidationException";
    pub const RESET: &str = "connection reset on every attempt";
    pub const STALL: &str = "stall past the timeout";
    pub const LOST_ONCE: &str = "lost answer once";
    pub const LOST: &str = "lost answer on every attempt";
    pub const RACE: &str = "conditional-check race";
    pub const TWICE: &str = "forwarded twice";

    /// Every fault class, in the matrix's order.
    pub const ALL: [&str; 11] = [
        THROTTLED_ONCE,
        THROTTLED,
        E500,
        E503,
        INVALID,
        RESET,
        STALL,
        LOST_ONCE,
        LOST,
        RACE,
        TWICE,
    ];
}

/// The cases of `row`, a call of `operation`, under each of `columns`: each fault class
/// with the rule that makes it (throttling is `ProvisionedThroughputExceededException` for
/// DynamoDB, `ThrottlingException` for the others).
///
/// # Panics
/// When a column is not one of [`column::ALL`].
pub fn cases(row: &'static str, operation: &'static str, columns: &[&'static str]) -> Vec<Case> {
    let dynamodb = ["PutItem", "UpdateItem", "DeleteItem", "GetItem"].contains(&operation);
    let throttled = if dynamodb {
        Fault::ProvisionedThroughput
    } else {
        Fault::Throttling
    };
    let once = 1..=1;
    columns
        .iter()
        .map(|&name| {
            let (calls, fault) = match name {
                column::THROTTLED_ONCE => (once.clone(), throttled),
                column::THROTTLED => (EVERY, throttled),
                column::E500 => (EVERY, Fault::InternalError),
                column::E503 => (EVERY, Fault::Unavailable),
                column::INVALID => (EVERY, Fault::Validation),
                column::RESET => (EVERY, Fault::Reset),
                column::STALL => (EVERY, Fault::Stall),
                column::LOST_ONCE => (once.clone(), Fault::LostAnswer),
                column::LOST => (EVERY, Fault::LostAnswer),
                column::RACE => (once.clone(), Fault::ConditionalRace),
                column::TWICE => (once.clone(), Fault::ForwardTwice),
                other => panic!("{other:?} is not a fault class of the matrix"),
            };
            Case::new(row, name, operation, calls, fault)
        })
        .collect()
}

/// How many cells run at once: enough to keep the matrix within seconds, few enough that
/// moto answers well inside the receiver's 700 ms attempt timeout on a busy machine.
pub const AT_ONCE: usize = 8;

/// Every call of an operation (a rule's `calls`).
pub const EVERY: RangeInclusive<usize> = 1..=usize::MAX;

/// One cell of the matrix: a port call (row), a fault class (column), and the proxy
/// rules that make it.
#[derive(Debug, Clone)]
pub struct Case {
    pub row: &'static str,
    pub column: &'static str,
    pub rules: Vec<(&'static str, RangeInclusive<usize>, Fault)>,
}

impl Case {
    /// Calls `calls` of `operation` get `fault`.
    pub fn new(
        row: &'static str,
        column: &'static str,
        operation: &'static str,
        calls: RangeInclusive<usize>,
        fault: Fault,
    ) -> Self {
        Case {
            row,
            column,
            rules: vec![(operation, calls, fault)],
        }
    }

    /// Also calls `calls` of `operation` get `fault`.
    pub fn and(
        mut self,
        operation: &'static str,
        calls: RangeInclusive<usize>,
        fault: Fault,
    ) -> Self {
        self.rules.push((operation, calls, fault));
        self
    }

    /// Installs the case's rules on `proxy`.
    pub fn arm(&self, proxy: &FaultProxy) {
        for (operation, calls, fault) in &self.rules {
            proxy.fail(operation, calls.clone(), *fault);
        }
    }

    /// Panics unless `proxy` injected something (a case that tests nothing).
    pub fn assert_injected(&self, proxy: &FaultProxy) {
        assert!(
            !proxy.injected().is_empty(),
            "{} / {}: no fault was injected",
            self.row,
            self.column
        );
    }
}

/// Renders `outcomes` of `cases` under `columns` and checks them against `section` of
/// the repository's `docs/fault-matrix.md` ([`check_section`]).
///
/// # Panics
/// With the diff, when the file says otherwise (and `NPHOOKS_BLESS` is not `1`).
pub fn check_docs(section: &str, columns: &[&str], cases: &[(&Case, String)]) {
    let mut matrix = Matrix::new(columns);
    for (case, outcome) in cases {
        matrix.set(case.row, case.column, outcome.clone());
    }
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/fault-matrix.md");
    if let Err(diff) = check_section(&doc, section, &matrix.markdown()) {
        panic!("{diff}");
    }
}

/// One section of the matrix, filled cell by cell.
#[derive(Debug, Default)]
pub struct Matrix {
    columns: Vec<String>,
    rows: Vec<(String, Vec<Option<String>>)>,
}

impl Matrix {
    /// A matrix with these fault classes as columns, in order.
    pub fn new(columns: &[&str]) -> Self {
        Matrix {
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Records the outcome of `row` (a port call) under `column` (a fault class).
    ///
    /// # Panics
    /// When `column` is not one of the matrix's columns (a typo in a test).
    pub fn set(&mut self, row: &str, column: &str, outcome: impl Into<String>) {
        let index = self
            .columns
            .iter()
            .position(|c| c == column)
            .unwrap_or_else(|| panic!("{column:?} is not a column of the fault matrix"));
        let width = self.columns.len();
        let cells = match self.rows.iter().position(|(name, _)| name == row) {
            Some(at) => &mut self.rows[at].1,
            None => {
                self.rows.push((row.to_owned(), vec![None; width]));
                &mut self.rows.last_mut().expect("just pushed").1
            }
        };
        cells[index] = Some(outcome.into());
    }

    /// The markdown table; a cell no test filled is `—`.
    pub fn markdown(&self) -> String {
        let mut out = format!("| port call | {} |\n", self.columns.join(" | "));
        out.push_str(&format!("|---|{}\n", "---|".repeat(self.columns.len())));
        for (row, cells) in &self.rows {
            let cells: Vec<&str> = cells.iter().map(|c| c.as_deref().unwrap_or("—")).collect();
            out.push_str(&format!("| {row} | {} |\n", cells.join(" | ")));
        }
        out
    }
}

/// Compares `body` with the part of the file at `path` between `<!-- section -->` and
/// `<!-- /section -->`. With `NPHOOKS_BLESS=1` the part is rewritten instead.
///
/// # Errors
/// A line diff when they disagree, or what is wrong with the file.
pub fn check_section(path: &Path, section: &str, body: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let (open, close) = (
        format!("<!-- {section} -->\n"),
        format!("<!-- /{section} -->"),
    );
    let start = text
        .find(&open)
        .map(|at| at + open.len())
        .ok_or_else(|| format!("{} has no {open:?} marker", path.display()))?;
    let end = text[start..]
        .find(&close)
        .map(|at| start + at)
        .ok_or_else(|| format!("{} has no {close:?} marker", path.display()))?;
    let current = &text[start..end];
    if current == body {
        return Ok(());
    }
    if std::env::var("NPHOOKS_BLESS").is_ok_and(|v| v == "1") {
        let updated = format!("{}{body}{}", &text[..start], &text[end..]);
        return std::fs::write(path, updated)
            .map_err(|e| format!("cannot write {}: {e}", path.display()));
    }
    Err(format!(
        "{} section {section} is not what the tests observed (NPHOOKS_BLESS=1 rewrites it):\n{}",
        path.display(),
        diff(current, body)
    ))
}

/// The lines only in `old` (`-`) and only in `new` (`+`), in order.
fn diff(old: &str, new: &str) -> String {
    let old_lines: Vec<&str> = old.lines().collect();
    let new_lines: Vec<&str> = new.lines().collect();
    let mut out = String::new();
    for line in &old_lines {
        if !new_lines.contains(line) {
            out.push_str(&format!("- {line}\n"));
        }
    }
    for line in &new_lines {
        if !old_lines.contains(line) {
            out.push_str(&format!("+ {line}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_two_cells_then_the_table_has_a_dash_where_none_was_set() {
        // GIVEN a matrix with two columns and two cells set in different rows
        let mut matrix = Matrix::new(&["throttled", "5xx"]);
        matrix.set("PutItem", "5xx", "200");
        matrix.set("SendMessage", "throttled", "503");

        // THEN the table keeps the rows' order and marks the empty cells
        assert_eq!(
            matrix.markdown(),
            "| port call | throttled | 5xx |\n|---|---|---|\n| PutItem | — | 200 |\n| SendMessage | 503 | — |\n"
        );
    }

    #[test]
    fn given_a_changed_cell_then_the_diff_names_both_lines() {
        let d = diff("| a | 1 |\n| b | 2 |\n", "| a | 1 |\n| b | 3 |\n");
        assert_eq!(d, "- | b | 2 |\n+ | b | 3 |\n");
    }
}
