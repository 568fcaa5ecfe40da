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
session-start-only 1161636
stub-guidance 1161636
delta-notice 2813293
refresh-on-demand 10892913
list-changed-naive 2451347
list-changed-guarded 5322147
restart-banner 1587831
recommended 12136923
recommended-mcp 4259471
fetch-per-turn 2631683
invalidate-on-notify 1590284
snapshot-at-connect 548926
cache-until-invalidated 1606815
broken-advertised-only 11780112
broken-concurrent 52780030
broken-trusts-read 12278146
broken-no-hold 12834693
broken-no-timeout 13102115
broken-no-stub-refresh 12324048
broken-opaque-stubs 12136923
broken-silent-failure 9435212
broken-mcp-hint 4784527
broken-no-reinit 12393906
broken-unexplained 12136923
broken-stale-notice 13195438
broken-misroute 12136923
broken-abort-on-stubs 2805149
"
    );
}

#[test]
fn unique_states_without_symmetry_at_small_bounds() {
    let bounds = Bounds { turns: 1, auth_changes: 1, symmetry: false, ..Bounds::DEFAULT };
    assert_eq!(
        counts(&check_all(&all_policies(), bounds, 2)),
        "\
session-start-only 132048
stub-guidance 132048
delta-notice 202788
refresh-on-demand 792312
list-changed-naive 184998
list-changed-guarded 247992
restart-banner 178980
recommended 899010
recommended-mcp 402231
fetch-per-turn 149196
invalidate-on-notify 109308
snapshot-at-connect 90570
cache-until-invalidated 165960
broken-advertised-only 873492
broken-concurrent 2436252
broken-trusts-read 902007
broken-no-hold 925290
broken-no-timeout 969990
broken-no-stub-refresh 896502
broken-opaque-stubs 899010
broken-silent-failure 835338
broken-mcp-hint 267702
broken-no-reinit 893658
broken-unexplained 899010
broken-stale-notice 949506
broken-misroute 899010
broken-abort-on-stubs 103275
"
    );
}

/// Two concurrent sessions on one account, at bounds a test can afford. With no faults and no
/// commands, `recommended`'s catalogue is never stale when the agent acts, so the premises of
/// INV-1, INV-2, INV-3, INV-5 and INV-7 are never reached; nor are INV-11's (no hung request) and
/// INV-12's (no outdated reply), and INV-14's (it never aborts a turn). "Holds" there says nothing, and the test says so: what two
/// sessions show is that nothing else breaks and the rest of the premises are reached.
#[test]
fn two_sessions_are_checkable() {
    let bounds = Bounds { sessions: 2, faults: 0, commands: 0, ..Bounds::DEFAULT };
    let report = check(RECOMMENDED, bounds);
    assert_eq!(report.unique_states, 12341910);
    assert!(report.invariants.iter().all(|o| o.counterexample.is_none()), "recommended holds with two sessions");
    let vacuous: Vec<&str> = report.invariants.iter().filter(|o| o.witness.is_none()).map(|o| o.invariant.id).collect();
    assert_eq!(vacuous, ["INV-1", "INV-2", "INV-3", "INV-5", "INV-7", "INV-11", "INV-12", "INV-14"]);
    let naive = check(POLICIES[0], bounds);
    assert!(naive.invariants[0].counterexample.is_some(), "session-start-only still breaks INV-1");
}
