//! Pinned state counts: any change to the model shows up here as a diff to review.

use crate::{all_policies, default_reports};
use coherence_model::{Bounds, POLICIES, RECOMMENDED, check, check_all};

fn counts(reports: &[coherence_model::CheckReport]) -> String {
    reports.iter().map(|r| format!("{} {}\n", r.policy.name, r.unique_states)).collect()
}

#[test]
fn unique_states_at_the_default_bounds() {
    assert_eq!(
        counts(default_reports()),
        "\
session-start-only 482033
stub-guidance 482033
delta-notice 789545
refresh-on-demand 2969264
list-changed-naive 937959
list-changed-guarded 2243206
recommended 3718169
broken-unguarded 9735288
broken-stale-notice 3904635
broken-opaque-stubs 3718169
broken-mcp-hint 2357456
broken-misroute 3328451
broken-silent-failure 2486741
broken-no-turn-check 4297912
"
    );
}

#[test]
fn unique_states_without_symmetry_at_small_bounds() {
    let bounds = Bounds { turns: 1, auth_changes: 1, symmetry: false, ..Bounds::DEFAULT };
    assert_eq!(
        counts(&check_all(&all_policies(), bounds, 2)),
        "\
session-start-only 82410
stub-guidance 82410
delta-notice 102570
refresh-on-demand 331431
list-changed-naive 110856
list-changed-guarded 151074
recommended 319254
broken-unguarded 510348
broken-stale-notice 325512
broken-opaque-stubs 319254
broken-mcp-hint 161700
broken-misroute 288924
broken-silent-failure 262434
broken-no-turn-check 372990
"
    );
}

/// Two concurrent sessions on one account, at bounds a test can afford.
#[test]
fn two_sessions_are_checkable() {
    let bounds = Bounds { sessions: 2, faults: 0, commands: 0, ..Bounds::DEFAULT };
    let report = check(RECOMMENDED, bounds);
    assert_eq!(report.unique_states, 7906370);
    assert!(report.invariants.iter().all(|o| o.counterexample.is_none()), "recommended holds with two sessions");
    let naive = check(POLICIES[0], bounds);
    assert!(naive.invariants[0].counterexample.is_some(), "session-start-only still breaks INV-1");
}
