//! SPEC.md and the code name the same things.

use coherence::expected::{SPEC, Verdict, compare, parse_table};
use coherence_model::{Action, BROKEN_POLICIES, INVARIANTS, POLICIES};
use std::collections::BTreeSet;

/// Every `INV-n` SPEC.md mentions.
fn spec_ids() -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut rest = SPEC;
    while let Some(at) = rest.find("INV-") {
        let digits: String = rest[at + 4..].chars().take_while(char::is_ascii_digit).collect();
        if !digits.is_empty() {
            ids.insert(format!("INV-{digits}"));
        }
        rest = &rest[at + 4..];
    }
    ids
}

#[test]
fn spec_defines_exactly_the_invariants_the_code_checks() {
    let code: BTreeSet<String> = INVARIANTS.iter().map(|i| i.id.to_owned()).collect();
    assert_eq!(spec_ids(), code, "SPEC.md and model/src/invariants.rs disagree on invariant IDs");
    for invariant in INVARIANTS {
        let heading = format!("### {}: {}", invariant.id, invariant.name);
        assert!(SPEC.contains(&heading), "SPEC.md lacks the heading `{heading}`");
    }
}

#[test]
fn spec_names_every_action_and_only_those() {
    let section = &SPEC[SPEC.find("## 3. Actions").unwrap()..SPEC.find("### 3.1").unwrap()];
    let named: BTreeSet<&str> =
        section.lines().filter_map(|l| l.strip_prefix("| `")).map(|l| l.split(['(', '`']).next().unwrap()).collect();
    let code: BTreeSet<&str> = Action::NAMES.into_iter().collect();
    assert_eq!(named, code);
}

#[test]
fn the_verdict_table_has_a_row_per_policy() {
    let table = parse_table(SPEC).unwrap();
    let rows: BTreeSet<&str> = table.keys().map(String::as_str).collect();
    let policies: BTreeSet<&str> = POLICIES.iter().chain(BROKEN_POLICIES).map(|p| p.name).collect();
    assert_eq!(rows, policies);
    for policy in POLICIES {
        assert!(SPEC.contains(&format!("- `{}`:", policy.name)), "SPEC.md §5 does not describe {}", policy.name);
    }
}

#[test]
fn spec_matches_the_computed_verdicts() {
    let table = parse_table(SPEC).unwrap();
    let differences = compare(crate::default_reports(), &table).expect("default bounds are compared");
    assert_eq!(differences, vec![]);
}

#[test]
fn a_drifted_table_is_caught() {
    let drifted = SPEC.replacen(
        "| recommended | holds | holds | holds | holds | holds | holds | holds | holds |",
        "| recommended | violated (3) | holds | holds | holds | holds | holds | holds | holds |",
        1,
    );
    assert_ne!(drifted, SPEC);
    let differences = compare(crate::default_reports(), &parse_table(&drifted).unwrap()).unwrap();
    assert_eq!(differences.len(), 1);
    assert_eq!(differences[0].policy, "recommended");
    assert_eq!(differences[0].expected, "violated (3)");
    assert_eq!(differences[0].computed, "holds");
}

#[test]
fn malformed_tables_are_rejected() {
    #[track_caller]
    fn check(spec: &str, error: &str) {
        assert_eq!(parse_table(spec).unwrap_err(), error);
    }
    check("no table", "SPEC.md has no verdict-table:begin marker");
    check("<!-- verdict-table:begin -->", "SPEC.md has no verdict-table:end marker");
    check(
        "<!-- verdict-table:begin -->\n| policy | INV-1 |\n|---|---|\n| p | maybe |\n<!-- verdict-table:end -->",
        "p / INV-1: cell `maybe` is neither `holds` nor `violated (n)`",
    );
    check(
        "<!-- verdict-table:begin -->\n| policy | INV-1 |\n|---|---|\n| p |\n<!-- verdict-table:end -->",
        "verdict table row `| p |` has 1 cells, expected 2",
    );
    let ok = parse_table(
        "<!-- verdict-table:begin -->\n| policy | INV-1 |\n|---|---|\n| p | violated (4) |\n<!-- verdict-table:end -->",
    )
    .unwrap();
    assert_eq!(ok["p"]["INV-1"], Verdict::Violated(4));
}
