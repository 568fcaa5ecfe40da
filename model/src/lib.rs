//! The model of MCP tool-catalogue coherence: one account, its connectors' servers, and the host
//! sessions that cache their tools, as a [stateright] state machine.
//!
//! A host policy ([`HostPolicy`]) configures how the sessions react to notifications, user turns,
//! stub calls, failures and `/mcp`. [`check`] explores every reachable state of one policy within
//! [`Bounds`] and judges every invariant of SPEC.md §6; the result is one row of the verdict
//! table, with a shortest counterexample for each violated invariant.
//!
//! ```
//! use coherence_model::{Bounds, check, policy_named};
//!
//! let bounds = Bounds { connectors: 1, turns: 1, auth_changes: 1, faults: 0, commands: 0, ..Bounds::DEFAULT };
//! let report = check(policy_named("session-start-only").unwrap(), bounds);
//! let inv1 = &report.invariants[0];
//! assert_eq!(inv1.invariant.id, "INV-1");
//! // Authenticate on the web, ask, answer "not available": three steps.
//! assert_eq!(inv1.counterexample.as_ref().map(|t| t.len()), Some(3));
//! ```
//!
//! The model is pure: no I/O, no clock, no randomness (the checker touches files only when told
//! to keep its frontier on disk, [`Store::Disk`]). Read SPEC.md for the normative text,
//! [`system`] for the actions, [`invariants`] for the properties, then [`explore`] for the checker.

pub mod diagram;
pub mod explore;
pub mod invariants;
pub mod mutant;
pub mod packed;
pub mod policy;
mod spill;
pub mod state;
pub mod story;
pub mod symmetry;
pub mod system;
pub mod visited;

pub use explore::{
    CheckReport, InvariantOutcome, Key, Search, Trace, Visitor, check, check_all, check_all_models,
    check_all_models_keyed, check_all_models_stored, check_model, check_model_keyed, check_model_on,
    check_model_stored, fingerprint, search, search_stored, search_with,
};
pub use invariants::{INVARIANTS, Invariant, invariant};
pub use mutant::Mutant;
pub use policy::{BROKEN_POLICIES, HostPolicy, POLICIES, RECOMMENDED, RECOMMENDED_MCP, WORLD_ONLY, policy_named};
pub use spill::{SpillError, Store};
pub use state::State;
pub use system::{Action, Bounds, BoundsError, CoherenceModel};
