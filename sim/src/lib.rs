//! The simulator and conformance kit: fixtures generated from the model, and a runner that replays
//! them through a host and judges what it shows by the model's invariants.
//!
//! ```
//! use coherence_sim::{engine::{replay, Verdict}, generate::{random_walks, Shard}, host::ReferenceHost};
//! use coherence_model::RECOMMENDED;
//!
//! let fixtures = random_walks(7, 3, Shard::ALL);
//! for fixture in &fixtures {
//!     let run = replay(fixture, &mut ReferenceHost::new(RECOMMENDED));
//!     assert!(matches!(run.verdict, Verdict::Pass));
//! }
//! ```
//!
//! Read ADAPTER.md for the protocol a host implements, [`engine`] for how a replay is judged, and
//! [`generate`] for where fixtures come from.

pub mod adapter;
pub mod coverage;
pub mod engine;
pub mod fixture;
pub mod fuzz;
pub mod generate;
pub mod host;
pub mod itf;
pub mod mutants;
pub mod protocol;
pub mod scenario;
pub mod schema;
pub mod shards;
pub mod strict_json;
pub mod swarm;
