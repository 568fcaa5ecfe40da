//! What the tests of this package share: the stage's connectors and the relay binary.

use coherence_wire::mcp::{Behaviour, Protection, Tool};
use coherence_wire::stage::{Connector, Pacing, Stage, StageError, Transport};
use std::time::Duration;

/// The kit's `coherence` binary (the stdio relay), built beside this package's by
/// `cargo test --workspace`.
pub fn coherence() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(|deps| deps.parent()).unwrap().join("coherence");
    assert!(bin.exists(), "{} is missing: run the tests with `cargo test --workspace`", bin.display());
    bin
}

/// gmail, listing its stubs first.
pub fn gmail(transport: Transport) -> Vec<Connector> {
    vec![Connector {
        name: "gmail".into(),
        tools: Tool::stubs("gmail"),
        behaviour: Behaviour::ADVERTISED,
        protection: Protection::Open,
        transport,
    }]
}

/// Short waits: these hosts answer in milliseconds.
pub const PACING: Pacing = Pacing {
    quiet: Duration::from_millis(100),
    deadline: Duration::from_secs(3),
    startup: Duration::from_secs(3),
    probe: true,
};

/// `command` on a stage with gmail.
pub fn start(command: &str, transport: Transport) -> Result<Stage, StageError> {
    Stage::start(command, &gmail(transport), &coherence(), PACING)
}
