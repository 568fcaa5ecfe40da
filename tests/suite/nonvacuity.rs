//! Every invariant can fail, and where `recommended` satisfies one it reaches its premise.

use crate::default_report;
use coherence_model::{Bounds, INVARIANTS, check, policy_named};

/// For each invariant, a policy the checker must find violating it, at the default bounds.
const BREAKERS: &[(&str, &str)] = &[
    ("INV-1", "session-start-only"),
    ("INV-2", "session-start-only"),
    ("INV-3", "broken-stale-notice"),
    ("INV-4", "list-changed-naive"),
    ("INV-5", "session-start-only"),
    ("INV-6", "broken-mcp-hint"),
    ("INV-7", "broken-silent-failure"),
    ("INV-8", "broken-misroute"),
];

#[test]
fn every_invariant_has_a_policy_that_breaks_it() {
    for invariant in INVARIANTS {
        let (_, policy) = BREAKERS
            .iter()
            .find(|(id, _)| *id == invariant.id)
            .unwrap_or_else(|| panic!("{} has no breaking policy listed", invariant.id));
        let outcome = &default_report(policy).invariants.iter().find(|o| o.invariant.id == invariant.id).unwrap();
        assert!(outcome.counterexample.is_some(), "{policy} must violate {}", invariant.id);
    }
}

#[test]
fn recommended_reaches_every_premise_and_breaks_nothing() {
    for outcome in &default_report("recommended").invariants {
        assert!(outcome.counterexample.is_none(), "recommended violates {}", outcome.invariant.id);
        assert!(outcome.witness.is_some(), "recommended never reaches the premise of {}", outcome.invariant.id);
    }
}

/// Each broken variant differs from `recommended` in one choice, and that choice matters.
#[test]
fn every_broken_variant_is_caught() {
    for policy in coherence_model::BROKEN_POLICIES {
        let report = if policy.name == "broken-opaque-stubs" {
            // Stub guidance matters only after two faults (SPEC.md §7).
            let bounds = Bounds { connectors: 1, faults: 2, commands: 0, ..Bounds::DEFAULT };
            &check(*policy, bounds)
        } else {
            default_report(policy.name)
        };
        let broken: Vec<_> =
            report.invariants.iter().filter(|o| o.counterexample.is_some()).map(|o| o.invariant.id).collect();
        assert!(!broken.is_empty(), "{} breaks no invariant", policy.name);
    }
    let stubs = check(
        policy_named("broken-opaque-stubs").unwrap(),
        Bounds { connectors: 1, faults: 2, commands: 0, ..Bounds::DEFAULT },
    );
    assert_eq!(stubs.invariants[4].invariant.id, "INV-5");
    assert_eq!(stubs.invariants[4].counterexample.as_ref().map(|t| t.len()), Some(8));
}

/// A counterexample is a real behaviour: replaying its actions from its initial state through the
/// model reproduces every state, and its last state breaks the invariant.
#[test]
fn counterexamples_replay() {
    for report in crate::default_reports() {
        let model = coherence_model::CoherenceModel::new(report.policy, report.bounds);
        for outcome in &report.invariants {
            let Some(trace) = &outcome.counterexample else { continue };
            let mut state = trace.init;
            assert!(model.initial_states().contains(&state));
            for (action, next) in &trace.steps {
                let mut enabled = Vec::new();
                model.enabled_actions(&state, &mut enabled);
                assert!(
                    enabled.contains(action),
                    "{} × {}: {action:?} not enabled",
                    report.policy.name,
                    outcome.invariant.id
                );
                state = model.step(&state, *action).unwrap();
                assert_eq!(&state, next);
            }
            assert!(!outcome.invariant.holds(&model, &state));
            // The trace ends at its first violation.
            let mut state = trace.init;
            for (action, _) in &trace.steps[..trace.len() - 1] {
                state = model.step(&state, *action).unwrap();
                assert!(outcome.invariant.holds(&model, &state), "the trace goes on past a violation");
            }
        }
    }
}
