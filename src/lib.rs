//! `coherence`: the command-line front of mcp-coherence.
//!
//! The model and its checker live in [`coherence_model`]; the simulator and conformance kit in
//! [`coherence_sim`]. This crate renders their results ([`report`]) and holds SPEC.md's expected
//! verdict table ([`expected`]), so that the binary stays argument parsing and exit codes.

pub mod conform;
pub mod design;
pub mod expected;
pub mod explain;
pub mod finding;
pub mod html;
pub mod report;
