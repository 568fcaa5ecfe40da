//! The stage of a black-box run with the hosts of this package: a good host is driven turn by
//! turn over both transports; each bad host ends the run with a clear error, and nothing is left
//! behind (no process, no port, no file).

use crate::common;

use coherence_wire::model_api::Reply;
use coherence_wire::stage::{Pacing, Stage, StageError, Transport};
use common::start;
use std::time::{Duration, Instant};

fn bad(mode: &str) -> String {
    format!("{} {mode}", env!("CARGO_BIN_EXE_bad-host"))
}

/// Nothing of the stage outlives it: the host process, the servers' ports, the configuration.
fn leaves_nothing(stage: Stage) {
    let pid = stage.host_pid();
    let config = stage.config().to_owned();
    let addresses: Vec<String> = stage.servers().iter().map(|s| s.url()).collect();
    drop(stage);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "the host {pid} outlived the stage");
    assert!(!config.exists(), "{} outlived the stage", config.display());
    for url in addresses {
        let address = url.trim_start_matches("http://").trim_end_matches("/mcp");
        assert!(std::net::TcpStream::connect(address).is_err(), "{address} still listens");
    }
}

#[test]
fn a_host_is_driven_turn_by_turn_over_both_transports() {
    for transport in [Transport::Http, Transport::Stdio] {
        let mut stage = start(env!("CARGO_BIN_EXE_rmcp-host"), transport).unwrap();
        assert_eq!(stage.lines(), [r#"{"type":"ready"}"#]);
        stage.say(&serde_json::json!({ "type": "user", "text": "Send the draft." })).unwrap();
        let offer = stage.offer().unwrap();
        let offered: Vec<&str> = offer.request.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(offered, ["gmail_authenticate", "gmail_complete_authentication"], "{transport:?}");
        offer.answer(Reply::Text { text: "gmail is not available.".into() });
        let end: serde_json::Value = serde_json::from_str(&stage.line().unwrap()).unwrap();
        assert_eq!(end["type"], "turn_end");
        stage.settle().unwrap();
        leaves_nothing(stage);
    }
}

/// The operating system's word ends a wait for quiet early only when the host cannot act on its
/// own: a host that ends its turn 40 ms after the question, on a timer, is seen doing so within a
/// quiet of 100 ms (the wait ends a sixth of the way in if the timer is taken for input); a host
/// waiting on input alone ends a quiet of 3 s at once.
#[test]
fn a_wait_for_quiet_ends_early_only_for_a_host_that_cannot_act() {
    for transport in [Transport::Http, Transport::Stdio] {
        let mut stage = start(&bad("acts-late"), transport).unwrap();
        stage.say(&serde_json::json!({ "type": "user", "text": "Hello." })).unwrap();
        stage.settle().unwrap();
        assert!(stage.lines().iter().any(|l| l.contains("turn_end")), "{transport:?}: {:?}", stage.lines());
        leaves_nothing(stage);
    }
    let pacing = Pacing { quiet: Duration::from_secs(3), deadline: Duration::from_secs(10), ..common::PACING };
    let started = Instant::now();
    let mut stage =
        Stage::start(env!("CARGO_BIN_EXE_rmcp-host"), &common::gmail(Transport::Stdio), &common::coherence(), pacing)
            .unwrap();
    let settled = Instant::now();
    stage.settle().unwrap();
    assert!(settled.elapsed() < Duration::from_secs(1), "a parked host's quiet took {:?}", settled.elapsed());
    assert!(started.elapsed() < Duration::from_secs(2), "the start took {:?}", started.elapsed());
    leaves_nothing(stage);
}

#[test]
fn a_host_that_ignores_its_configuration_is_named_so() {
    let Err(error) = start(&bad("ignores-config"), Transport::Http) else { panic!("started") };
    let text = error.to_string();
    assert!(text.contains("no first connection to every connector within 3000 ms"), "{text}");
    assert!(text.contains("MCP_CONFIG"), "{text}");
}

#[test]
fn a_host_that_never_calls_the_model_is_named_so() {
    let mut stage = start(&bad("never-calls-model"), Transport::Stdio).unwrap();
    stage.say(&serde_json::json!({ "type": "user", "text": "Hello." })).unwrap();
    let Err(error) = stage.offer() else { panic!("an offer") };
    assert_eq!(error.to_string(), "the host sent no model request with tools within 3000 ms");
    leaves_nothing(stage);
}

#[test]
fn a_host_that_crashes_mid_turn_is_named_so() {
    let mut stage = start(&bad("crashes-mid-turn"), Transport::Http).unwrap();
    stage.say(&serde_json::json!({ "type": "user", "text": "Hello." })).unwrap();
    let Err(error) = stage.offer() else { panic!("an offer") };
    let text = error.to_string();
    assert!(text.starts_with("the host exited (exit status: 3) while a model request was awaited"), "{text}");
    assert!(text.ends_with("its stderr ends with: bad-host: crashing mid-turn"), "{text}");
    leaves_nothing(stage);
}

#[test]
fn a_host_that_floods_the_model_is_named_so() {
    let mut stage = start(&bad("floods"), Transport::Http).unwrap();
    stage.say(&serde_json::json!({ "type": "user", "text": "Hello." })).unwrap();
    let error = loop {
        match stage.offer() {
            Ok(offer) => offer.answer(Reply::Text { text: "Again?".into() }),
            Err(error) => break error,
        }
    };
    assert_eq!(error, StageError::Flooded);
    assert!(error.to_string().contains("more than 1000 model requests"));
    leaves_nothing(stage);
}

#[test]
fn a_host_that_prints_garbage_is_named_so() {
    let mut stage = start(&bad("garbage"), Transport::Http).unwrap();
    stage.say(&serde_json::json!({ "type": "user", "text": "Hello." })).unwrap();
    let Err(error) = stage.line() else { panic!("a line") };
    assert_eq!(error.to_string(), "the host printed a line that is not UTF-8");
    leaves_nothing(stage);
}
