//! The integration test suite: one binary, one module per concern.

mod cli;
mod conform;
mod deep;
mod designs;
mod holds;
mod itf;
mod judge;
mod mutants;
mod nonvacuity;
mod parallel;
mod pinned;
mod props;
mod reduction;
mod review;
mod rules;
mod runner;
mod schema;
mod shards;
mod spec;
mod stories;
mod swarm;
mod symmetry;
mod wire;

use coherence_model::{BROKEN_POLICIES, Bounds, CheckReport, HostPolicy, POLICIES, check_all};
use std::sync::OnceLock;

/// Every policy, design space first, then the broken variants.
pub fn all_policies() -> Vec<HostPolicy> {
    POLICIES.iter().chain(BROKEN_POLICIES).copied().collect()
}

/// Every design policy checked at the default bounds, once per test run.
///
/// The broken policies are [`broken_reports`]: each is `recommended` with one defect, so each
/// searches about as many states as `recommended` does, and together they cost four minutes of
/// the README's test command. The test command shows each of them failing through the runner (the
/// corpus kills every one, on its own counterexamples); the heavy tier checks them.
pub fn default_reports() -> &'static [CheckReport] {
    static REPORTS: OnceLock<Vec<CheckReport>> = OnceLock::new();
    REPORTS.get_or_init(|| check_all(POLICIES, Bounds::DEFAULT, 2))
}

/// Every broken policy checked at the default bounds, once per test run. Heavy: only tests of the
/// `--ignored` tier call it.
pub fn broken_reports() -> &'static [CheckReport] {
    static REPORTS: OnceLock<Vec<CheckReport>> = OnceLock::new();
    REPORTS.get_or_init(|| check_all(BROKEN_POLICIES, Bounds::DEFAULT, 2))
}

/// Every design policy checked at the default bounds with reliable servers, once per test run.
pub fn reliable_reports() -> &'static [CheckReport] {
    static REPORTS: OnceLock<Vec<CheckReport>> = OnceLock::new();
    let bounds = Bounds { servers: coherence_model::system::Servers::Reliable, ..Bounds::DEFAULT };
    REPORTS.get_or_init(|| check_all(POLICIES, bounds, 2))
}

/// Every design policy checked at the default bounds with every server speaking 2026-07-28 (SPEC.md
/// §7.4), once per test run.
pub fn stateless_reports() -> &'static [CheckReport] {
    static REPORTS: OnceLock<Vec<CheckReport>> = OnceLock::new();
    let bounds = Bounds { revisions: coherence_model::system::Revisions::Stateless, ..Bounds::DEFAULT };
    REPORTS.get_or_init(|| check_all(POLICIES, bounds, 2))
}

/// [`stateless_reports`] with servers that meet SPEC.md §7.4's S-1 and S-2.
pub fn stateless_reliable_reports() -> &'static [CheckReport] {
    static REPORTS: OnceLock<Vec<CheckReport>> = OnceLock::new();
    let bounds = Bounds {
        revisions: coherence_model::system::Revisions::Stateless,
        servers: coherence_model::system::Servers::Reliable,
        ..Bounds::DEFAULT
    };
    REPORTS.get_or_init(|| check_all(POLICIES, bounds, 2))
}

/// SPEC.md §7.5's table: two authorization contexts, 2026-07-28 servers that meet S-1, S-2, S-4.
pub fn contexts_reliable_reports() -> &'static [CheckReport] {
    static REPORTS: OnceLock<Vec<CheckReport>> = OnceLock::new();
    let bounds = Bounds {
        revisions: coherence_model::system::Revisions::Stateless,
        servers: coherence_model::system::Servers::Reliable,
        ..Bounds::DEFAULT
    }
    .with_two_contexts();
    REPORTS.get_or_init(|| check_all(POLICIES, bounds, 2))
}

/// The report of one design policy at the default bounds.
pub fn default_report(policy: &str) -> &'static CheckReport {
    default_reports().iter().find(|r| r.policy.name == policy).expect("a design policy")
}

/// The report of one policy, design or broken, at the default bounds. Heavy for a broken one.
pub fn any_report(policy: &str) -> &'static CheckReport {
    match default_reports().iter().find(|r| r.policy.name == policy) {
        Some(report) => report,
        None => broken_reports().iter().find(|r| r.policy.name == policy).expect("a known policy"),
    }
}
