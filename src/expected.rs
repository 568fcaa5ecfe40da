//! The expected verdict table, read from SPEC.md §7, and its comparison with computed verdicts.
//!
//! SPEC.md is the reference a review cites; the checker recomputes every verdict on every run and
//! fails when the two disagree, so the document cannot drift from the model. The table is parsed
//! from between two HTML comments; each cell is `holds` or `violated (n)`, n being the length of
//! the shortest counterexample.

use coherence_model::{Bounds, CheckReport, INVARIANTS};
use std::collections::BTreeMap;

/// SPEC.md, as compiled into the binary.
pub const SPEC: &str = include_str!("../SPEC.md");

const BEGIN: &str = "<!-- verdict-table:begin -->";
const END: &str = "<!-- verdict-table:end -->";

/// One cell of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The invariant holds within the bounds.
    Holds,
    /// It is violated; the shortest counterexample has this many steps.
    Violated(usize),
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Holds => f.write_str("holds"),
            Verdict::Violated(n) => write!(f, "violated ({n})"),
        }
    }
}

/// The verdicts SPEC.md records: policy name, then invariant ID.
pub type Table = BTreeMap<String, BTreeMap<String, Verdict>>;

/// Reads the verdict table out of a SPEC.md text.
pub fn parse_table(spec: &str) -> Result<Table, String> {
    let start = spec.find(BEGIN).ok_or("SPEC.md has no verdict-table:begin marker")? + BEGIN.len();
    let end = spec[start..].find(END).ok_or("SPEC.md has no verdict-table:end marker")? + start;
    let mut rows = spec[start..end].lines().map(str::trim).filter(|l| l.starts_with('|'));
    let cells = |line: &str| -> Vec<String> {
        line.trim_matches('|').split('|').map(|c| c.trim().trim_matches('`').to_owned()).collect()
    };
    let header = cells(rows.next().ok_or("the verdict table is empty")?);
    if header.first().map(String::as_str) != Some("policy") {
        return Err("the verdict table's first column must be `policy`".to_owned());
    }
    let ids = &header[1..];
    let mut table = Table::new();
    for line in rows.filter(|l| !l.starts_with("|-") && !l.starts_with("| -")) {
        let row = cells(line);
        if row.len() != header.len() {
            return Err(format!("verdict table row `{line}` has {} cells, expected {}", row.len(), header.len()));
        }
        let mut verdicts = BTreeMap::new();
        for (id, cell) in ids.iter().zip(&row[1..]) {
            verdicts.insert(id.clone(), parse_cell(cell).map_err(|e| format!("{} / {id}: {e}", row[0]))?);
        }
        table.insert(row[0].clone(), verdicts);
    }
    Ok(table)
}

fn parse_cell(cell: &str) -> Result<Verdict, String> {
    if cell == "holds" {
        return Ok(Verdict::Holds);
    }
    cell.strip_prefix("violated (")
        .and_then(|rest| rest.strip_suffix(')'))
        .and_then(|n| n.parse().ok())
        .map(Verdict::Violated)
        .ok_or_else(|| format!("cell `{cell}` is neither `holds` nor `violated (n)`"))
}

/// The verdict the checker computed.
pub fn computed(report: &CheckReport, id: &str) -> Verdict {
    let outcome = report.invariants.iter().find(|o| o.invariant.id == id).expect("every invariant is checked");
    match &outcome.counterexample {
        None => Verdict::Holds,
        Some(trace) => Verdict::Violated(trace.len()),
    }
}

/// One disagreement between SPEC.md and the checker.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Difference {
    /// The policy.
    pub policy: String,
    /// The invariant.
    pub id: String,
    /// What SPEC.md says (`absent` when it has no cell).
    pub expected: String,
    /// What the checker computed.
    pub computed: String,
}

/// Compares computed reports with the table. The table applies to the default bounds only;
/// with other bounds, `None` (nothing to compare).
pub fn compare(reports: &[CheckReport], table: &Table) -> Option<Vec<Difference>> {
    let bounds = reports.first()?.bounds;
    if (Bounds { symmetry: Bounds::DEFAULT.symmetry, ..bounds }) != Bounds::DEFAULT {
        return None;
    }
    let mut differences = Vec::new();
    for report in reports {
        let row = table.get(report.policy.name);
        for invariant in INVARIANTS {
            let got = computed(report, invariant.id);
            let want = row.and_then(|r| r.get(invariant.id));
            if want != Some(&got) {
                differences.push(Difference {
                    policy: report.policy.name.to_owned(),
                    id: invariant.id.to_owned(),
                    expected: want.map_or("absent".to_owned(), ToString::to_string),
                    computed: got.to_string(),
                });
            }
        }
    }
    Some(differences)
}
