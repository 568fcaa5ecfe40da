//! The `coherence` binary: flags, exit codes, formats, determinism.

use std::process::{Command, Output};

fn coherence(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coherence")).args(args).output().expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

const SMALL: &[&str] = &["--turns", "1", "--auth-changes", "1"];

#[track_caller]
fn check_rejected(args: &[&str], message: &str) {
    let out = coherence(args);
    assert_eq!(out.status.code(), Some(2), "{args:?} must exit 2; stderr: {}", stderr(&out));
    assert!(stderr(&out).contains(message), "{args:?}: stderr lacks `{message}`:\n{}", stderr(&out));
    assert!(stdout(&out).is_empty());
}

#[test]
fn bad_input_is_rejected_with_a_clear_error() {
    check_rejected(&["check", "--connectors", "9"], "connectors must be between 1 and 4, got 9");
    check_rejected(&["check", "--sessions", "0"], "sessions must be between 1 and 3, got 0");
    check_rejected(&["check", "--turns", "7"], "turns must be between 1 and 6, got 7");
    check_rejected(
        &["check", "--contexts", "two", "--sessions", "1"],
        "two authorization contexts need at least 2 sessions (one for each), got 1",
    );
    check_rejected(&["check", "--contexts", "three"], "invalid value 'three' for '--contexts <CONTEXTS>'");
    check_rejected(
        &["check", "--contexts", "two", "--write-table"],
        "--write-table: SPEC.md has no table for these servers, revisions, contexts and faults",
    );
    check_rejected(&["check", "--faults", "300"], "invalid value '300'");
    check_rejected(&["check", "--faults", "-1"], "unexpected argument '-1'");
    check_rejected(&["check", "--policy", "nope"], "unknown policy `nope`; known policies: session-start-only");
    check_rejected(&["check", "--format", "xml"], "invalid value 'xml'");
    check_rejected(&["check", "--bogus"], "unexpected argument '--bogus'");
    check_rejected(
        &["conform", "--adapter", "x", "--hang-ms", "1000"],
        "'--adapter <CMD>' cannot be used with '--hang-ms <HANG_MS>'",
    );
    check_rejected(
        &["conform", "--adapter", "x", "--ttl-ms", "1000"],
        "'--adapter <CMD>' cannot be used with '--ttl-ms <TTL_MS>'",
    );
    check_rejected(
        &["conform", "--host", "x", "--seen-on-the-wire"],
        "'--host <CMD>' cannot be used with '--seen-on-the-wire'",
    );
    for flag in [
        &["--transport", "http"][..],
        &["--revision", "2026-07-28"],
        &["--phrases", "p.json"],
        &["--startup-ms", "500"],
        &["--quiet-only"],
    ] {
        check_rejected(&[&["conform", "--adapter", "x"][..], flag].concat(), "'--adapter <CMD>' cannot be used with");
    }
    check_rejected(&["conform", "--host", "x", "--hang-ms", "5"], "invalid value '5' for '--hang-ms <HANG_MS>'");
    check_rejected(&["frobnicate"], "unrecognized subcommand 'frobnicate'");
    check_rejected(&["check", "--spec", "/nonexistent/SPEC.md"], "cannot read /nonexistent/SPEC.md");
    check_rejected(&["check", "--spill", "/nonexistent/dir"], "--spill: cannot spill to /nonexistent/dir");
    check_rejected(
        &["check", "--without-fault", "Gremlins"],
        "unknown fault kind `Gremlins`; known kinds: LoseNotification",
    );
    check_rejected(
        &["check", "--write-table", "--without-fault", "ServeLate"],
        "--write-table writes SPEC.md's table, which admits the default fault kinds",
    );
    check_rejected(
        &["check", "--server-kind", "silent,long"],
        "--server-kind sets what every 2026-07-28 server does: give --revisions stateless",
    );
    check_rejected(
        &["check", "--revisions", "stateless", "--server-kind", "loud,long"],
        "`loud,long` is not a server kind; known: advertised,long, advertised,zero, silent,long, silent,zero",
    );
    check_rejected(
        &["check", "--revisions", "stateless", "--server-kind", "silent,long", "--write-table"],
        "drop --without-fault, other --with-fault, --no-agent-handshake and --server-kind",
    );
    check_rejected(
        &["check", "--with-fault", "DeployTools", "--servers", "reliable", "--write-table"],
        "--write-table: SPEC.md has no table for these servers, revisions, contexts and faults",
    );
    check_rejected(&["check", "--with-fault", "Deploy"], "DeployTools");
    check_rejected(&["server-finding", "--threads", "0"], "invalid value '0'");
}

/// A design review asks "does this host need to be checked under that fault?": the flags take a
/// fault kind out (or add a server defect to reliable servers), the report says which kinds it
/// admitted, and the verdicts are not held to SPEC.md's table, which admits the default ones.
#[test]
fn fault_kinds_can_be_taken_out_and_added() {
    let guarded = ["check", "--policy", "list-changed-guarded", "--connectors", "1", "--no-timing", "--format", "json"];
    let inv12 = |args: &[&str]| -> (String, serde_json::Value) {
        let out = coherence(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        let props = doc["policies"][0]["properties"].as_array().unwrap().clone();
        let inv12 = props.into_iter().find(|p| p["id"] == "INV-12").unwrap();
        (inv12["verdict"].as_str().unwrap().to_owned(), doc)
    };
    let (with, doc) = inv12(&guarded);
    assert_eq!(with, "violated", "served out of order, the generation guard breaks INV-12");
    assert!(doc.get("fault_kinds").is_none(), "the default kinds are not listed");
    let without: Vec<&str> = guarded.iter().copied().chain(["--without-fault", "ServeLate"]).collect();
    let (verdict, doc) = inv12(&without);
    assert_eq!(verdict, "holds");
    let kinds: Vec<&str> = doc["fault_kinds"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
    assert!(!kinds.contains(&"ServeLate") && kinds.contains(&"HangListing"), "{kinds:?}");
    assert_eq!(doc["expected"]["compared"], false, "another fault model is not compared with SPEC.md");
    // Reliable servers with one defect admitted: recommended-mcp misses tools under a silent refresh.
    let out = coherence(&[
        "check",
        "--policy",
        "recommended-mcp",
        "--servers",
        "reliable",
        "--with-fault",
        "RefreshTokenSilently",
        "--connectors",
        "1",
        "--no-timing",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.lines().next().unwrap().ends_with(
            " servers=reliable fault-kinds=RefreshTokenSilently,FailListing,LoseTransportSession,HangListing,ServeLate,PageListing,FailAccountRead"
        ),
        "{text}"
    );
    assert!(text.contains("recommended-mcp × INV-1 never silently missing tools: violated"), "{text}");
}

/// The agent's in-turn authentication is in the default model; `--no-agent-handshake` leaves it
/// out (SPEC.md §4.1): the report says so, has fewer states, and is not compared with SPEC.md's
/// tables, which are computed with it.
#[test]
fn the_agent_handshake_can_be_left_out() {
    let args = ["check", "--policy", "recommended", "--connectors", "1", "--turns", "1", "--no-timing"];
    let plain = coherence(&args);
    assert!(!stdout(&plain).contains("agent-handshake"), "{}", stdout(&plain));
    let without: Vec<&str> = args.iter().copied().chain(["--no-agent-handshake", "--format", "json"]).collect();
    let out = coherence(&without);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["agent_handshake"], false);
    assert_eq!(doc["expected"]["compared"], false);
    let states = |text: &str| -> u64 {
        let line = text.lines().find(|l| l.starts_with("recommended ")).unwrap();
        line.split_whitespace().last().unwrap().replace(',', "").parse().unwrap()
    };
    assert!(doc["policies"][0]["unique_states"].as_u64().unwrap() < states(&stdout(&plain)));
    let text: Vec<&str> = args.iter().copied().chain(["--no-agent-handshake"]).collect();
    assert!(stdout(&coherence(&text)).contains("agent-handshake=off"));
}

#[test]
fn text_output_is_reproducible_and_names_everything() {
    let args = [&["check", "--policy", "session-start-only", "--policy", "recommended", "--no-timing"], SMALL].concat();
    let a = coherence(&args);
    let b = coherence(&args);
    assert_eq!(a.status.code(), Some(0));
    assert_eq!(a.stdout, b.stdout, "two runs print different bytes");
    let text = stdout(&a);
    for needle in ["INV-1", "INV-8", "unique states", "session-start-only × INV-1", "not compared"] {
        assert!(text.contains(needle), "lacks `{needle}`:\n{text}");
    }
}

#[test]
fn json_output_has_the_documented_shape() {
    let args = [
        &["check", "--format", "json", "--no-timing", "--policy", "session-start-only", "--policy", "recommended"],
        SMALL,
    ]
    .concat();
    let out = coherence(&args);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, coherence(&args).stdout);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let policies = doc["policies"].as_array().unwrap();
    assert_eq!(policies.len(), 2);
    for policy in policies {
        assert!(policy["unique_states"].as_u64().unwrap() > 0);
        let properties = policy["properties"].as_array().unwrap();
        assert_eq!(properties.len(), coherence_model::INVARIANTS.len());
        for p in properties {
            let violated = p["verdict"] == "violated";
            assert!(p["id"].as_str().unwrap().starts_with("INV-"));
            assert!(p["name"].is_string());
            assert!(p["verdict"] == "holds" || violated);
            assert_eq!(p.get("counterexample").is_some(), violated);
            if violated {
                let steps = p["counterexample"].as_array().unwrap();
                assert!(steps.len() >= 2);
                assert!(steps[1]["action"]["action"].is_string());
                assert!(steps[1]["text"].is_string());
            }
        }
    }
    assert_eq!(policies[0]["properties"][0]["verdict"], "violated");
    assert_eq!(policies[1]["properties"][0]["verdict"], "holds");
}

/// The default bounds are compared with SPEC.md §7; a drifted table fails the run, naming the cell.
#[test]
fn drift_from_the_spec_exits_non_zero() {
    let spec = coherence::expected::SPEC.replacen(
        "| session-start-only | violated (3) |",
        "| session-start-only | holds |",
        1,
    );
    let path = std::env::temp_dir().join(format!("coherence-drift-{}.md", std::process::id()));
    std::fs::write(&path, spec).unwrap();
    let out = coherence(&["check", "--policy", "session-start-only", "--spec", path.to_str().unwrap(), "--no-timing"]);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("1 verdicts differ from SPEC.md §7"), "{text}");
    assert!(
        text.contains("session-start-only × INV-1: SPEC.md says holds, the checker computed violated (3)"),
        "{text}"
    );
}

#[test]
fn the_policies_command_lists_every_policy() {
    let out = coherence(&["policies"]);
    assert_eq!(out.status.code(), Some(0));
    for policy in coherence_model::POLICIES.iter().chain(coherence_model::BROKEN_POLICIES) {
        assert!(stdout(&out).contains(policy.name));
    }
}

/// `coherence model-endpoint` says where it listens, prints a line per model request with the
/// tools offered and the text added, answers as told, and stops after `--requests`.
#[test]
fn the_model_endpoint_prints_what_each_request_offers() {
    use std::io::{BufRead, Read, Write};
    let mut child = Command::new(env!("CARGO_BIN_EXE_coherence"))
        .args(["model-endpoint", "--reply", "call:gmail__create_draft", "--requests", "1", "--seconds", "30"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    said.read_line(&mut first).unwrap();
    let url = first.split("base URL ").nth(1).unwrap().split(';').next().unwrap().to_owned();
    let addr = url.trim_start_matches("http://");
    let body = r#"{"model":"m","max_tokens":8,"system":"Be brief.","tools":[{"name":"gmail__create_draft","input_schema":{}}],"messages":[{"role":"user","content":"Draft."}]}"#;
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.contains(r#""name":"gmail__create_draft""#) && response.contains(r#""stop_reason":"tool_use""#),
        "{response}"
    );
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let line: serde_json::Value = serde_json::from_str(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    assert_eq!(
        line,
        serde_json::json!({"index": 0, "api": "anthropic", "model": "m", "stream": false,
                           "tools": ["gmail__create_draft"], "added": ["Be brief.", "Draft."]})
    );
    let mut rest = String::new();
    said.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("1 model requests answered, 0 refused, 0 other requests"), "{rest}");
    let bad = coherence(&["model-endpoint", "--reply", "say:hi"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("neither `text:WORDS` nor `call:TOOL`"));
}

/// One HTTP/1.1 POST of a JSON-RPC message to `url` (`http://ADDR/mcp`): the whole response.
fn post_mcp(url: &str, session: Option<&str>, body: &str) -> String {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://").trim_end_matches("/mcp");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let session = session.map(|s| format!("mcp-session-id: {s}\r\n")).unwrap_or_default();
    write!(
        stream,
        "POST /mcp HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\n{session}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// `coherence mcp-server` says where it listens, lists what it is told to, changes its list on
/// stdin's commands, and prints what it saw as JSON lines.
#[test]
fn the_mcp_server_lists_what_stdin_says_and_prints_what_it_saw() {
    use std::io::{BufRead, Write};
    let mut child = Command::new(env!("CARGO_BIN_EXE_coherence"))
        .args(["mcp-server", "--connector", "gmail", "--tools", "stubs", "--seconds", "30"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    said.read_line(&mut first).unwrap();
    let url = first.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(url.starts_with("http://127.0.0.1:") && url.ends_with("/mcp"), "{first}");
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"cli-test","version":"0"}}}"#;
    assert!(post_mcp(&url, None, init).contains("mcp-session-id: gmail-1"));
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    assert!(post_mcp(&url, Some("gmail-1"), list).contains("gmail_complete_authentication"));
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "actions").unwrap();
    // The command is applied before the next list: wait until it is printed back as applied.
    let mut listed = String::new();
    for _ in 0..100 {
        listed = post_mcp(&url, Some("gmail-1"), list);
        if listed.contains("gmail_send") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(listed.contains("gmail_send") && !listed.contains("gmail_authenticate"), "{listed}");
    writeln!(stdin, "dance").unwrap();
    writeln!(stdin, "quit").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let seen: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(
        seen[0],
        serde_json::json!({"seen": "initialize", "session": "gmail-1", "protocol": "2025-06-18", "client": "cli-test"})
    );
    assert_eq!(seen[1], serde_json::json!({"seen": "list", "session": "gmail-1", "version": 0, "cursor": null}));
    assert!(seen.iter().any(|s| s["seen"] == "list" && s["version"] == 1), "{seen:#?}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut said, &mut rest).unwrap();
    assert!(rest.contains("unknown command `dance`"), "{rest}");
    let bad = coherence(&["mcp-server", "--connector", "Gmail!"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("use 1 to 32 of a-z, 0-9 and -"), "{}", stderr(&bad));
}

/// `coherence mcp-server --modern` speaks 2026-07-28 too, with the cache hints its flags give;
/// the hints without `--modern`, or a relay with it, are refused as usage errors.
#[test]
fn the_mcp_server_speaks_the_stateless_revision_when_asked() {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_coherence"))
        .args(["mcp-server", "--tools", "actions", "--modern", "--ttl-ms", "5000", "--cache-scope", "public"])
        .args(["--seconds", "30"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stderr.take().unwrap()).read_line(&mut first).unwrap();
    let url = first.trim().rsplit(' ').next().unwrap().to_owned();
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
    let listed = post_mcp(&url, None, list);
    assert!(listed.starts_with("HTTP/1.1 200"), "{listed}");
    assert!(listed.contains(r#""ttlMs":5000"#) && listed.contains(r#""cacheScope":"public""#), "{listed}");
    assert!(!listed.contains("mcp-session-id"), "stateless: {listed}");
    drop(child.stdin.take());
    child.kill().unwrap();
    child.wait().unwrap();
    for bad in [
        &["mcp-server", "--ttl-ms", "5"][..],
        &["mcp-server", "--modern", "--relay", "127.0.0.1:1"],
        &["mcp-server", "--modern", "--cache-scope", "shared"],
    ] {
        let out = coherence(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", stderr(&out));
    }
}

/// `--jobs`: fixtures replayed at once, each worker with an adapter of its own, give the report
/// that one at a time gives, byte for byte and in the fixtures' order; a run's limits still stop
/// it, and a zero is refused.
#[test]
fn fixtures_replayed_at_once_give_the_same_report() {
    let adapter = format!("{} ref-adapter --policy session-start-only", env!("CARGO_BIN_EXE_coherence"));
    let fixtures =
        ["scenario/ConnectorAuthMidSession", "scenario/ListChangedIgnored", "scenario/TokenExpiryMidSession"];
    let mut args = vec!["conform", "--adapter", &adapter, "--format", "json"];
    for f in &fixtures {
        args.extend(["--fixture", f]);
    }
    args.extend(crate::conform::corpus().iter().take(9).flat_map(|f| ["--fixture", f.id.as_str()]));
    let one = coherence(&args);
    let three = coherence(&[&args[..], &["--jobs", "3"]].concat());
    assert_eq!(one.status.code(), Some(1), "session-start-only fails some: {}", stderr(&one));
    assert_eq!(three.status.code(), one.status.code());
    assert_eq!(stdout(&one), stdout(&three), "--jobs 3 changed the report");
    let report: serde_json::Value = serde_json::from_str(&stdout(&one)).unwrap();
    let verdicts: std::collections::BTreeSet<_> =
        report["fixtures"].as_array().unwrap().iter().map(|r| r["verdict"].as_str().unwrap().to_owned()).collect();
    assert!(verdicts.contains("pass") && verdicts.contains("fail"), "{verdicts:?}");

    let crashing = ["conform", "--adapter", "exit 3", "--format", "json", "--jobs", "2", "--max-adapter-failures", "2"];
    let out = coherence(&crashing);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let rows = report["fixtures"].as_array().unwrap();
    assert!(rows.iter().all(|r| r["verdict"] == "error"), "a crashing adapter passed a fixture");
    let stopped = rows.iter().filter(|r| r["error"].as_str().unwrap().contains("fixtures in a row")).count();
    assert!(
        stopped + 4 >= rows.len(),
        "the run went on after the adapter failed twice in a row: {stopped} of {} stopped",
        rows.len()
    );
    check_rejected(&["conform", "--adapter", "true", "--jobs", "0"], "0 is not in 1..=64");
}

/// A host design file is checked exactly as the built-in policy it writes out: every built-in
/// policy, printed by `policies --format toml` (and `json`) and read back by `check
/// --host-design`, gives the same report, byte for byte (rows, counterexamples, non-vacuity).
#[test]
fn a_host_design_is_checked_as_the_built_in_policy_it_writes_out() {
    let dir = std::env::temp_dir().join(format!("coherence-designs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bounds = ["--turns", "1", "--auth-changes", "1", "--faults", "1", "--commands", "0", "--no-timing"];
    let built_in = coherence(&[&["check", "--include-broken"][..], &bounds].concat());
    assert!(built_in.status.success(), "{}", stderr(&built_in));
    for format in ["toml", "json"] {
        let printed = coherence(&["policies", "--format", format]);
        assert!(printed.status.success(), "{}", stderr(&printed));
        let file = dir.join(format!("all.{format}"));
        std::fs::write(&file, &printed.stdout).unwrap();
        let designed = coherence(&[&["check", "--host-design", file.to_str().unwrap()][..], &bounds].concat());
        assert!(designed.status.success(), "{format}: {}", stderr(&designed));
        assert!(stdout(&designed) == stdout(&built_in), "{format}: the designs' report differs from the policies'");
    }
    // The JSON form is what the committed schema describes.
    let schema: serde_json::Value =
        serde_json::from_str(include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/host-design.schema.json")))
            .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&coherence(&["policies", "--format", "json"]).stdout).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    assert!(validator.is_valid(&json), "{:?}", validator.iter_errors(&json).map(|e| e.to_string()).collect::<Vec<_>>());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A design file that is not one is refused with an error naming the field and what it may be
/// (and, in TOML, where), exit status 2; never checked as something else.
#[test]
fn a_bad_host_design_is_refused_naming_the_field() {
    let dir = std::env::temp_dir().join(format!("coherence-bad-designs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = stdout(&coherence(&["policies", "--format", "toml", "--policy", "recommended"]));
    let cases = [
        ("value", good.replace(r#"on_list_changed = "relist""#, r#"on_list_changed = "sometimes""#), "on_list_changed"),
        (
            "value",
            good.replace(r#"on_list_changed = "relist""#, r#"on_list_changed = "sometimes""#),
            "relist_if_advertised",
        ),
        ("unknown", good.replace("follow_cursor = true", "follow_cursor = true\nfollow_links = true"), "follow_links"),
        ("missing", good.replace("follow_cursor = true\n", ""), "follow_cursor"),
        ("name", good.replace(r#"name = "recommended""#, r#"name = "My Host""#), "use 1 to 64 of a-z"),
        ("twice", format!("{good}\n{good}"), "two designs are named `recommended`"),
        ("empty", "policy = []\n".to_owned(), "no design"),
        ("type", good.replace("follow_cursor = true", "follow_cursor = \"yes\""), "follow_cursor"),
    ];
    for (what, text, named) in cases {
        let file = dir.join("design.toml");
        std::fs::write(&file, &text).unwrap();
        let out = coherence(&["check", "--host-design", file.to_str().unwrap(), "--turns", "1"]);
        assert_eq!(out.status.code(), Some(2), "{what}: {}", stdout(&out));
        let error = stderr(&out);
        assert!(error.contains("is not a host design") && error.contains(named), "{what}: {error}");
    }
    // JSON errors name the field by its path.
    let json = stdout(&coherence(&["policies", "--format", "json", "--policy", "recommended"]));
    let file = dir.join("design.json");
    std::fs::write(&file, json.replace(r#""catalogue": "kept""#, r#""catalogue": "cached""#)).unwrap();
    let out = coherence(&["check", "--host-design", file.to_str().unwrap(), "--turns", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("at policy[0].catalogue: unknown variant `cached`"), "{}", stderr(&out));
    let missing = coherence(&["check", "--host-design", "/nonexistent/design.toml"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("cannot read /nonexistent/design.toml"), "{}", stderr(&missing));
    let table = coherence(&["check", "--host-design", dir.join("design.toml").to_str().unwrap(), "--write-table"]);
    assert_eq!(table.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `coherence explain`: the shortest counterexample of one policy and one invariant, for a design
/// review, as a Mermaid sequence diagram and as Markdown with the invariant's text from SPEC.md;
/// a host design explains as a built-in policy does; an invariant that holds has nothing to explain
/// (exit 1), and a bad request is a usage error (exit 2).
#[test]
fn explain_renders_the_shortest_counterexample_for_a_review() {
    let args = ["explain", "--policy", "session-start-only", "--invariant", "INV-1", "--format"];
    let mermaid = coherence(&[&args[..], &["mermaid"]].concat());
    assert!(mermaid.status.success(), "{}", stderr(&mermaid));
    insta::assert_snapshot!("explain-mermaid", stdout(&mermaid));
    let markdown = coherence(&[&args[..], &["markdown"]].concat());
    assert!(markdown.status.success(), "{}", stderr(&markdown));
    let markdown = stdout(&markdown);
    assert!(
        markdown.starts_with("# `session-start-only` violates INV-1: never silently missing tools\n"),
        "{markdown}"
    );
    assert!(markdown.contains(&coherence::expected::invariant_section("INV-1").unwrap()), "SPEC.md's text: {markdown}");
    assert!(markdown.contains(&format!("```mermaid\n{}```\n", stdout(&mermaid))), "{markdown}");
    let text = stdout(&coherence(&[&args[..], &["text"]].concat()));
    assert!(text.contains("3. The agent in cli answers that gmail is not available."), "{text}");

    let dir = std::env::temp_dir().join(format!("coherence-explain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let design = dir.join("mine.toml");
    let printed = stdout(&coherence(&["policies", "--format", "toml", "--policy", "session-start-only"]));
    std::fs::write(&design, printed.replace(r#"name = "session-start-only""#, r#"name = "mine""#)).unwrap();
    let mine = coherence(&[
        "explain",
        "--host-design",
        design.to_str().unwrap(),
        "--invariant",
        "INV-1",
        "--format",
        "mermaid",
    ]);
    assert!(stdout(&mine) == stdout(&mermaid), "a design explains as the policy it writes out");
    std::fs::remove_dir_all(&dir).unwrap();

    let holds = coherence(&["explain", "--policy", "recommended", "--invariant", "INV-1", "--turns", "1"]);
    assert_eq!(holds.status.code(), Some(1));
    assert!(stderr(&holds).contains("recommended holds INV-1 within these bounds"), "{}", stderr(&holds));
    for bad in [
        &["explain", "--policy", "session-start-only", "--invariant", "INV-99"][..],
        &["explain", "--invariant", "INV-1"],
        &["explain", "--policy", "recommended", "--policy", "session-start-only", "--invariant", "INV-1"],
        &["explain", "--policy", "session-start-only"],
    ] {
        let out = coherence(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", stderr(&out));
    }
}
