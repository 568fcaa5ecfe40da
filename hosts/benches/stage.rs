//! What a black-box run costs per host: starting `rmcp-host` on a stage (a server, the model
//! endpoint, the process, its first lists, quiet), one user turn (a user line, the model request
//! with tools answered, the turn's end), and one committed fixture replayed and judged through
//! `WireHost` (what `coherence conform --host` does per fixture), over HTTP and over stdio.

use coherence_wire::mcp::{Behaviour, Protection, Tool};
use coherence_wire::model_api::Reply;
use coherence_wire::stage::{Connector, Pacing, Stage, Transport};
use criterion::{Criterion, criterion_group, criterion_main};
use std::time::Duration;

/// The `coherence` binary (the stdio relay) beside this bench's: `cargo bench --workspace`.
fn coherence() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(|deps| deps.parent()).unwrap().join("coherence");
    assert!(bin.exists(), "{} is missing: run `cargo build --release` first", bin.display());
    bin
}

/// The quiet the stage waits for is part of every start; a run chooses it.
const PACING: Pacing = Pacing {
    quiet: Duration::from_millis(20),
    deadline: Duration::from_secs(10),
    startup: Duration::from_secs(10),
    probe: false,
};

fn stage(transport: Transport) -> Stage {
    let gmail = Connector {
        name: "gmail".into(),
        tools: Tool::stubs("gmail"),
        behaviour: Behaviour::ADVERTISED,
        protection: Protection::Open,
        transport,
    };
    let command = format!("{} --policy recommended", env!("CARGO_BIN_EXE_rmcp-host"));
    Stage::start(&command, &[gmail], &coherence(), PACING).unwrap()
}

fn turn(stage: &mut Stage) {
    stage.say(&serde_json::json!({ "type": "user", "text": "Send the draft." })).unwrap();
    stage.offer().unwrap().answer(Reply::Text { text: "Not available.".into() });
    stage.line().unwrap();
}

fn bench_stage(c: &mut Criterion) {
    let mut group = c.benchmark_group("stage");
    group.sample_size(20).measurement_time(Duration::from_secs(10));
    for (name, transport) in [("http", Transport::Http), ("stdio", Transport::Stdio)] {
        group.bench_function(format!("start/rmcp-host/{name}/quiet=20ms"), |b| b.iter(|| drop(stage(transport))));
        // A stage answers at most 1,000 model requests (past them the host floods): a fresh one
        // every 500 turns, its start not timed.
        group.bench_function(format!("turn/rmcp-host/{name}"), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let mut on = stage(transport);
                    let now = std::time::Instant::now();
                    for _ in 0..left.min(500) {
                        turn(&mut on);
                    }
                    timed += now.elapsed();
                    left -= left.min(500);
                }
                timed
            })
        });
    }
    group.finish();
}

/// The fixtures a conformance bench replays: the motivating report, and a longer one that
/// releases lists, delivers a notification and has the agent call a tool.
const FIXTURES: [&str; 2] = ["scenario--ConnectorAuthMidSession.json", "scenario--ListChangedIgnored.json"];

fn bench_conform(c: &mut Criterion) {
    use coherence_sim::engine::{Verdict, replay};
    use coherence_wire::conform::{WireHost, WireOptions};
    let mut group = c.benchmark_group("conform-host");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    for (name, transport) in [("http", Transport::Http), ("stdio", Transport::Stdio)] {
        for file in FIXTURES {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures").join(file);
            let fixture = coherence_sim::fixture::Fixture::read(&path).unwrap();
            let options = WireOptions {
                command: format!("{} --policy recommended", env!("CARGO_BIN_EXE_rmcp-host")),
                transport,
                relay: coherence(),
                pacing: PACING,
                phrases: coherence_wire::reading::Phrases::standard(),
                revision: coherence_wire::conform::Revision::Handshake,
                ttl_ms: coherence_wire::conform::LONG_TTL_MS,
                hang_ms: None,
            };
            let mut host = WireHost::new(options);
            let id = format!("fixture/rmcp-host/{name}/quiet=20ms/{}", fixture.id);
            group.bench_function(id, |b| {
                b.iter(|| {
                    let run = replay(&fixture, &mut host);
                    assert!(matches!(run.verdict, Verdict::Pass), "{:?}", run.verdict);
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_stage, bench_conform);
criterion_main!(benches);
