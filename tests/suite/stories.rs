//! The counterexample stories, as reviewed snapshots.

use crate::{any_report, default_report};
use coherence::report::counterexample_text;
use coherence_model::INVARIANTS;

fn stories(policy: &str) -> String {
    let report = any_report(policy);
    INVARIANTS
        .iter()
        .filter_map(|i| counterexample_text(report, i.id).map(|t| format!("{} {}\n{t}", i.id, i.name)))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_headline_counterexample_tells_the_report() {
    let text = counterexample_text(default_report("session-start-only"), "INV-1").unwrap();
    insta::assert_snapshot!("headline", text);
    for needle in [
        "Sessions start.",
        "The user authenticates gmail on the web",
        "the user asks for a gmail capability",
        "only the auth stubs",
        "answers that gmail is not available",
        "no notice",
        "silently missing",
    ] {
        assert!(text.contains(needle), "the headline story lacks `{needle}`:\n{text}");
    }
}

/// Every counterexample of every design policy, as a reviewed snapshot: a changed story is a
/// reviewed change.
#[test]
fn every_policy_has_its_stories_snapshotted() {
    snapshot_stories(coherence_model::POLICIES);
}

/// [`every_policy_has_its_stories_snapshotted`] for the broken policies. Heavy.
#[test]
#[ignore = "heavy tier: cargo test --workspace --release -- --ignored"]
fn every_broken_policy_has_its_stories_snapshotted() {
    snapshot_stories(coherence_model::BROKEN_POLICIES);
}

fn snapshot_stories(policies: &[coherence_model::HostPolicy]) {
    for policy in policies {
        let text = stories(policy.name);
        if text.is_empty() {
            // `recommended` has no counterexample, hence no snapshot.
            assert_eq!(policy.name, "recommended", "{} has no counterexample", policy.name);
            continue;
        }
        insta::assert_snapshot!(format!("stories-{}", policy.name), text);
    }
}
