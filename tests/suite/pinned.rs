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
session-start-only 1424986
stub-guidance 1424986
delta-notice 3357974
refresh-on-demand 12524743
list-changed-naive 3054751
list-changed-guarded 6560291
restart-banner 1963341
recommended 14179264
recommended-mcp 5119130
fetch-per-turn 3107995
invalidate-on-notify 2304965
snapshot-at-connect 694351
cache-until-invalidated 1920367
broken-advertised-only 13681043
broken-concurrent 59929100
broken-trusts-read 14323317
broken-no-hold 15077432
broken-no-timeout 15144456
broken-no-stub-refresh 14399389
broken-opaque-stubs 14179264
broken-silent-failure 11163681
broken-mcp-hint 5841433
broken-no-reinit 14453029
broken-unexplained 14179264
broken-stale-notice 15258879
broken-misroute 14179264
broken-first-page 15243336
broken-abort-on-stubs 3266819
"
    );
}

#[test]
fn unique_states_without_symmetry_at_small_bounds() {
    let bounds = Bounds { turns: 1, auth_changes: 1, symmetry: false, ..Bounds::DEFAULT };
    assert_eq!(
        counts(&check_all(&all_policies(), bounds, 2)),
        "\
session-start-only 159080
stub-guidance 159080
delta-notice 244132
refresh-on-demand 912564
list-changed-naive 230006
list-changed-guarded 314032
restart-banner 220276
recommended 1054658
recommended-mcp 483291
fetch-per-turn 191372
invalidate-on-notify 150660
snapshot-at-connect 110450
cache-until-invalidated 205904
broken-advertised-only 1017196
broken-concurrent 2797908
broken-trusts-read 1058291
broken-no-hold 1089138
broken-no-timeout 1125638
broken-no-stub-refresh 1051678
broken-opaque-stubs 1054658
broken-silent-failure 987370
broken-mcp-hint 341214
broken-no-reinit 1055666
broken-unexplained 1054658
broken-stale-notice 1105178
broken-misroute 1054658
broken-first-page 1141670
broken-abort-on-stubs 128935
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
