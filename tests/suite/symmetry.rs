//! Symmetry reduction changes state counts, never verdicts; and stateright's own checker explores
//! exactly the states this crate's checker does over whole states.

use crate::all_policies;
use coherence_model::{Bounds, CoherenceModel, Key, check_all, check_model_keyed};
use stateright::{Checker, HasDiscoveries, Model};
use std::collections::BTreeSet;

const SMALL: Bounds = Bounds { turns: 1, auth_changes: 1, ..Bounds::DEFAULT };

fn verdicts(reports: &[coherence_model::CheckReport]) -> Vec<(String, &'static str, Option<usize>, bool)> {
    reports
        .iter()
        .flat_map(|r| {
            r.invariants.iter().map(|o| {
                (
                    r.policy.name.to_owned(),
                    o.invariant.id,
                    o.counterexample.as_ref().map(|t| t.len()),
                    o.witness.is_some(),
                )
            })
        })
        .collect()
}

#[test]
fn symmetry_keeps_every_verdict_and_length() {
    let policies = all_policies();
    let on = check_all(&policies, SMALL, 2);
    let off = check_all(&policies, Bounds { symmetry: false, ..SMALL }, 2);
    assert_eq!(verdicts(&on), verdicts(&off));
    for (a, b) in on.iter().zip(&off) {
        assert!(a.unique_states < b.unique_states, "{}: symmetry reduces nothing", a.policy.name);
    }
}

fn stateright_unique_states(model: CoherenceModel, symmetry: bool) -> usize {
    // A property name that no property has: the search runs to completion.
    let never = HasDiscoveries::AnyOf(BTreeSet::from(["(no such property)"]));
    let builder = model.checker().threads(2).finish_when(never);
    let builder = if symmetry { builder.symmetry() } else { builder };
    // Stateright 0.31 applies symmetry in its depth-first checker only.
    builder.spawn_dfs().join().unique_state_count()
}

#[test]
fn stateright_explores_the_same_states() {
    for name in ["session-start-only", "list-changed-naive", "recommended"] {
        let policy = coherence_model::policy_named(name).unwrap();
        for symmetry in [false, true] {
            let bounds = Bounds { symmetry, ..SMALL };
            // Stateright tells states apart whole, events included (SPEC.md §4.3).
            let ours = check_model_keyed(&CoherenceModel::new(policy, bounds), 2, Key::Whole).unique_states;
            let theirs = stateright_unique_states(CoherenceModel::new(policy, bounds), symmetry);
            assert_eq!(ours, theirs, "{name}, symmetry {symmetry}");
        }
    }
}

#[test]
fn the_model_lists_the_same_properties_for_stateright() {
    let model = CoherenceModel::new(coherence_model::RECOMMENDED, SMALL);
    let names: Vec<&str> = model.properties().iter().map(|p| p.name).collect();
    assert_eq!(names.len(), 2 * coherence_model::INVARIANTS.len());
    let n = coherence_model::INVARIANTS.len();
    assert!(names.iter().take(n).all(|n| n.starts_with("INV-")));
    assert!(names.iter().skip(n).all(|n| n.starts_with("REACH-")));
}
