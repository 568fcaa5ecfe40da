//! SPEC.md §7.4's finding for servers, computed: for each kind of MCP 2026-07-28 server (whether
//! it notifies on listen streams, and the TTL it gives its lists), whether the hosts that follow
//! the revision can keep INV-1, never silently missing tools. Every server of the model is of the
//! row's kind; the network is reliable (no notification lost or late, no stream ended), so that
//! the row's kind is the only thing that differs. `coherence server-finding` prints the table;
//! SPEC.md holds it between `<!-- server-finding:begin -->` and `<!-- server-finding:end -->`,
//! and a test holds the two equal.

use crate::expected::{Profile, computed};
use coherence_model::explore::check_all_models;
use coherence_model::state::Contexts;
use coherence_model::system::{Revisions, ServerKind, Servers};
use coherence_model::{CheckReport, CoherenceModel, policy_named};

/// The hosts of the table's columns: the generic MCP host, the revision's own machinery with and
/// without a listen stream, a host with no cache, and the platform host that reads the account.
pub const HOSTS: [&str; 5] = ["recommended-mcp", "ttl-and-listen", "ttl-only", "fetch-per-turn", "recommended"];

/// The invariant each cell is the verdict of.
pub const INVARIANT: &str = "INV-1";

/// The checks of one server kind: one report per host of [`HOSTS`], in that order.
pub struct Row {
    /// The kind every server is of.
    pub kind: ServerKind,
    /// Per host.
    pub reports: Vec<CheckReport>,
}

/// Checks every host of [`HOSTS`] with every server of each kind ([`ServerKind::ALL`]), at the
/// default bounds with reliable 2026-07-28 servers, `threads` checks at a time.
pub fn compute(threads: usize) -> Vec<Row> {
    let bounds = Profile::Default.bounds_with(Servers::Reliable, Revisions::Stateless, Contexts::One);
    let mut models = Vec::new();
    for kind in ServerKind::ALL {
        for host in HOSTS {
            let policy = policy_named(host).expect("a built-in policy");
            models.push(CoherenceModel { server_kind: Some(kind), ..CoherenceModel::new(policy, bounds) });
        }
    }
    let mut reports = check_all_models(&models, threads).into_iter();
    ServerKind::ALL
        .into_iter()
        .map(|kind| Row { kind, reports: reports.by_ref().take(HOSTS.len()).collect() })
        .collect()
}

/// The table as SPEC.md writes it.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from("| every server |");
    for host in HOSTS {
        out.push_str(&format!(" {host} |"));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(HOSTS.len()));
    out.push('\n');
    for row in rows {
        out.push_str(&format!("| {} |", row.kind));
        for report in &row.reports {
            out.push_str(&format!(" {} |", computed(report, INVARIANT)));
        }
        out.push('\n');
    }
    out
}
