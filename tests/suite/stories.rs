//! The counterexample stories, as reviewed snapshots.

use crate::{any_report, default_report};
use coherence::explain::{Format, render};
use coherence::report::counterexample_text;
use coherence_model::{CheckReport, CoherenceModel, INVARIANTS};

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
        insta::assert_snapshot!(format!("diagrams-{}", policy.name), diagrams(any_report(policy.name)));
    }
}

/// `coherence explain --format mermaid` for every violated cell of a report's row, each after a
/// heading; and `--format text` tells the story its stories snapshot holds.
fn diagrams(report: &CheckReport) -> String {
    let model = CoherenceModel::new(report.policy, report.bounds);
    let mut out = Vec::new();
    for invariant in INVARIANTS {
        let Some(diagram) = render(&model, report, invariant, Format::Mermaid) else { continue };
        let text = render(&model, report, invariant, Format::Text).unwrap();
        let story = counterexample_text(report, invariant.id).unwrap();
        let told: Vec<String> =
            story.lines().map(|l| l.trim_start().replace(&format!("✗ {}: ", invariant.id), "")).collect();
        assert_eq!(text.lines().skip(1).collect::<Vec<_>>(), told, "explain tells another story than the snapshot");
        out.push(format!("{} {}\n{diagram}", invariant.id, invariant.name));
    }
    out.join("\n")
}

/// `explain --format mermaid` for every violated cell of SPEC.md §7.2's table (servers that meet
/// its requirements) and of §7.4's second (MCP 2026-07-28, reliable servers), as reviewed
/// snapshots.
#[test]
fn every_violated_cell_of_the_other_tables_has_its_diagram_snapshotted() {
    snapshot_diagrams("reliable", crate::reliable_reports());
    snapshot_diagrams("stateless-reliable", crate::stateless_reliable_reports());
    snapshot_diagrams("contexts-reliable", crate::contexts_reliable_reports());
}

/// [`every_violated_cell_of_the_other_tables_has_its_diagram_snapshotted`] for §7.4's first table
/// (any 2026-07-28 servers). Heavy: that table is a minute of checking.
#[test]
#[ignore = "heavy tier: cargo test --workspace --release -- --ignored"]
fn every_violated_cell_under_2026_07_28_has_its_diagram_snapshotted() {
    snapshot_diagrams("stateless", crate::stateless_reports());
}

fn snapshot_diagrams(table: &str, reports: &[CheckReport]) {
    for report in reports {
        let text = diagrams(report);
        if !text.is_empty() {
            insta::assert_snapshot!(format!("diagrams-{table}-{}", report.policy.name), text);
        }
    }
}

/// SPEC.md §7.5: a cache keyed by server alone serves the account's private list to the second
/// user's session in two steps, and the story says whose token it was listed with.
#[test]
fn a_cache_keyed_by_server_serves_another_users_private_list() {
    let report = crate::contexts_reliable_reports().iter().find(|r| r.policy.name == "shared-cache").unwrap();
    let text = counterexample_text(report, "INV-15").unwrap();
    assert_eq!(text.lines().count(), 4, "two steps:\n{text}");
    for needle in [
        "ide is another user's (a second token)",
        "from the shared cache, ide now offers only the auth stubs (listed with cli's token, private)",
        "a private tool list its shared cache got with another user's token",
    ] {
        assert!(text.contains(needle), "the story lacks `{needle}`:\n{text}");
    }
}

/// SPEC.md §7.4: a host that honours TTLs and never listens misses the tools behind a long TTL;
/// the story says why (no session listens, the list is fresh by its TTL).
#[test]
fn a_ttl_only_host_misses_tools_behind_a_stream_it_never_opened() {
    let bounds = coherence_model::Bounds {
        revisions: coherence_model::system::Revisions::Stateless,
        ..coherence_model::Bounds::DEFAULT
    };
    let ttl_only = coherence_model::policy_named("ttl-only").unwrap();
    let report = &coherence_model::check_all(&[ttl_only], bounds, 2)[0];
    let text = counterexample_text(report, "INV-1").unwrap();
    assert_eq!(text.lines().count(), 5, "three steps:\n{text}");
    for needle in [
        "speaks 2026-07-28",
        "fresh for a long TTL; no session listens",
        "sends no list_changed: no session listens",
        "answers that gmail is not available",
        "silently missing",
    ] {
        assert!(text.contains(needle), "the story lacks `{needle}`:\n{text}");
    }
}
