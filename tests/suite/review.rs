//! Design reviews: `coherence report` (one HTML page) and `coherence explore` (stateright's
//! Explorer serving the model). The page's rendering in a real browser is checked by
//! `scripts/report-browser`.

use coherence::expected::{Profile, Verdict, computed};
use coherence::html::{Page, anchor, page};
use coherence::report::Timing;
use coherence_model::explore::check_all;
use coherence_model::{Bounds, INVARIANTS, policy_named};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn coherence(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coherence")).args(args).output().expect("the binary runs")
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("coherence-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The cells of the page's verdict table: (policy, invariant, cell text, link).
fn cells(html: &str) -> Vec<(String, String, String, Option<String>)> {
    let mut out = Vec::new();
    let table = &html[html.find("<table class=\"verdicts\">").unwrap()..];
    let table = &table[..table.find("</table>").unwrap()];
    for row in table.split("<tr>").skip(2) {
        let policy = row.split("id=\"policy-").nth(1).unwrap().split('"').next().unwrap().to_owned();
        for (cell, invariant) in row.split("<td class=\"").skip(2).zip(INVARIANTS) {
            let body = &cell[cell.find('>').unwrap() + 1..cell.find("</td>").unwrap()];
            let link = body.split("href=\"#").nth(1).map(|l| l.split('"').next().unwrap().to_owned());
            let text = body.split('>').filter(|t| !t.is_empty()).map(|t| t.split('<').next().unwrap()).collect();
            out.push((policy.clone(), invariant.id.to_owned(), text, link));
        }
    }
    out
}

/// The page the command writes: its cells are the checker's verdicts (those `check` prints), every
/// violated cell links to a section holding that counterexample's story and diagram, nothing is
/// fetched, the commit is named, and two runs write the same bytes.
#[test]
fn report_writes_one_page_with_every_verdict_and_counterexample() {
    let bounds = ["--sessions", "1", "--faults", "1", "--commands", "0"];
    let args = |dir: &str| -> Vec<String> {
        let mut a: Vec<String> =
            ["report", "--policy", "session-start-only", "--policy", "delta-notice", "--no-timing"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        a.extend(bounds.iter().map(|s| s.to_string()));
        a.extend(["--out".to_owned(), dir.to_owned()]);
        a
    };
    let (one, two) = (temp_dir("report-1"), temp_dir("report-2"));
    for dir in [&one, &two] {
        let a = args(dir.to_str().unwrap());
        let out = coherence(&a.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let html = std::fs::read_to_string(one.join("index.html")).unwrap();
    assert!(html == std::fs::read_to_string(two.join("index.html")).unwrap(), "two runs differ");

    let check = coherence(
        &[&["check", "--policy", "session-start-only", "--policy", "delta-notice", "--format", "json"][..], &bounds]
            .concat(),
    );
    let doc: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    let cells = cells(&html);
    assert_eq!(cells.len(), 2 * INVARIANTS.len());
    let mut violated = 0;
    for (policy, id, text, link) in &cells {
        let row = doc["policies"].as_array().unwrap().iter().find(|p| p["policy"] == policy.as_str()).unwrap();
        let property = row["properties"].as_array().unwrap().iter().find(|p| p["id"] == id.as_str()).unwrap();
        let steps = property["counterexample"].as_array().map(Vec::len);
        match steps {
            Some(_) => {
                violated += 1;
                assert!(text.starts_with("violated ("), "{policy} × {id}: `{text}`, check: {property}");
                let target = anchor(policy, id);
                assert_eq!(link.as_deref(), Some(target.as_str()));
                let section =
                    &html[html.find(&format!("<section class=\"counterexample\" id=\"{target}\">")).unwrap()..];
                let section = &section[..section.find("</section>").unwrap()];
                assert!(section.contains(&format!("violates {id}:")), "{section}");
                assert!(section.contains("<svg ") && section.contains(&format!("{id} violated")), "{section}");
                assert!(
                    section.contains("Mermaid source") && section.contains("coherence explain --policy"),
                    "{section}"
                );
            }
            None => {
                assert!(text == "holds" || text == "holds (vacuous)", "{policy} × {id}: `{text}`");
                assert_eq!(link, &None);
            }
        }
    }
    assert!(violated > 5, "{violated} violated cells");
    assert_eq!(html.matches("<section class=\"counterexample\"").count(), violated);
    assert!(!html.contains("src=") && !html.contains("href=\"http") && !html.contains("<script"), "the page fetches");
    assert!(html.contains("SPEC.md §7 records no table for these bounds"), "not the default bounds");
    if let Ok(git) = Command::new("git").args(["rev-parse", "HEAD"]).output()
        && git.status.success()
    {
        let head = String::from_utf8(git.stdout).unwrap();
        assert!(html.contains(&format!("<code id=\"commit\">{}</code>", head.trim())), "the commit is not named");
    }
    for dir in [one, two] {
        std::fs::remove_dir_all(dir).unwrap();
    }

    // An output directory that cannot be made is an error, not a page written elsewhere.
    let file = temp_dir("report-file");
    std::fs::write(&file, "").unwrap();
    let out = coherence(&["report", "--policy", "recommended", "--turns", "1", "--out", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot make"), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_file(file).unwrap();
}

/// At the default bounds the page says whether SPEC.md §7 agrees; with a second profile, exactly
/// the cells whose verdict differs there are marked bound-sensitive.
#[test]
fn report_compares_with_spec_and_marks_bound_sensitive_cells() {
    let reports = crate::default_reports();
    let differences = coherence::expected::compare(reports, coherence::expected::SPEC).unwrap().unwrap();
    let html = page(&Page {
        reports,
        deep: None,
        differences: Some(&differences),
        host_design: None,
        commit: "c0ffee",
        timing: Timing::Hidden,
    });
    assert!(html.contains("SPEC.md §7 agrees with every cell"), "SPEC.md differs: {differences:?}");
    assert!(!html.contains("class=\"holds sensitive\"") && !html.contains("violated sensitive"));

    // Two small profiles stand in for default and deep: one fault against none.
    let policies = [policy_named("session-start-only").unwrap(), policy_named("delta-notice").unwrap()];
    let small = Bounds { sessions: 1, commands: 0, ..Profile::Default.bounds(coherence_model::system::Servers::Any) };
    let without = check_all(&policies, Bounds { faults: 0, ..small }, 2);
    let with = check_all(&policies, small, 2);
    let wrong = [coherence::expected::Difference {
        policy: "delta-notice".into(),
        id: "INV-1".into(),
        expected: "holds".into(),
        computed: "violated (4)".into(),
    }];
    let html = page(&Page {
        reports: &without,
        deep: Some(&with),
        differences: Some(&wrong),
        host_design: None,
        commit: "c0ffee",
        timing: Timing::Hidden,
    });
    assert!(html.contains("SPEC.md §7 disagrees with 1 cells"), "{html}");
    let mut differing = 0;
    for (a, b) in without.iter().zip(&with) {
        for invariant in INVARIANTS {
            let (x, y): (Verdict, Verdict) = (computed(a, invariant.id), computed(b, invariant.id));
            if x != y {
                differing += 1;
                assert!(html.contains(&format!("{x}; deep: {y}")), "{} × {}", a.policy.name, invariant.id);
            }
        }
    }
    assert!(differing > 0, "a fault changes some verdict");
    assert_eq!(html.matches(" sensitive\"").count(), differing);
}

/// A running `coherence explore`, stopped when dropped.
struct Explorer(Child);

impl Drop for Explorer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.0 exchange with a deadline: the status code and the body.
fn http(address: SocketAddr, method: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(stream, "{method} {path} HTTP/1.0\r\nHost: {address}\r\nContent-Length: 0\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    Ok((status, body))
}

/// `coherence explore` serves stateright's Explorer over the model: its page, its status, and a
/// scripted walk along the path its checker found to an INV-1 violation, state by state, whose
/// last state's diagram marks INV-1 broken and whose steps read as the story does. A port that is
/// taken is a clear error.
#[test]
fn explore_serves_the_model_and_a_scripted_walk_reaches_a_violation() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let args = ["explore", "--policy", "session-start-only", "--sessions", "1", "--faults", "0", "--commands", "0"];
    let child = Command::new(env!("CARGO_BIN_EXE_coherence"))
        .args(args)
        .args(["--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _explorer = Explorer(child);
    let started = Instant::now();
    let page = loop {
        match http(address, "GET", "/") {
            Ok(answer) => break answer,
            Err(_) if started.elapsed() < Duration::from_secs(30) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("the explorer does not answer: {e}"),
        }
    };
    assert_eq!(page.0, 200);
    assert!(page.1.contains("<html") || page.1.contains("<!DOCTYPE"), "not the Explorer's page");

    // Its checker runs on request; the INV-1 discovery is a path of indices.
    assert_eq!(http(address, "POST", "/.runtocompletion").unwrap().0, 200);
    let path = loop {
        let (_, status) = http(address, "GET", "/.status").unwrap();
        let status: serde_json::Value = serde_json::from_str(&status).unwrap();
        let inv1 =
            status["properties"].as_array().unwrap().iter().find(|p| p[1] == "INV-1 never silently missing tools");
        if let Some(path) = inv1.and_then(|p| p[2].as_str()) {
            break path.to_owned();
        }
        assert!(started.elapsed() < Duration::from_secs(120), "no INV-1 discovery: {status}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let indices: Vec<usize> = path.split('/').map(|i| i.parse().unwrap()).collect();
    assert!(indices.len() >= 3, "{path}");

    // Walk it: each step is offered where the path says, and the last one breaks INV-1.
    let mut walked = String::new();
    let mut last = serde_json::Value::Null;
    for &index in &indices {
        let (status, body) = http(address, "GET", &format!("/.states{walked}")).unwrap();
        assert_eq!(status, 200, "{walked}: {body}");
        let offered: serde_json::Value = serde_json::from_str(&body).unwrap();
        last = offered
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["actionIndex"] == index)
            .cloned()
            .unwrap_or_else(|| panic!("{walked}: no step {index} offered"));
        walked.push_str(&format!("/{index}"));
    }
    let svg = last["svg"].as_str().unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("INV-1 violated: never silently missing tools"), "{svg}");
    let action = last["action"].as_str().unwrap();
    assert!(action.starts_with("Agent") && action.contains("(cli)"), "{action}");
    assert!(last["outcome"].as_str().unwrap().starts_with("The agent in cli"), "{last}");

    // A second explorer on the same port is refused with a clear error.
    let taken = coherence(&[&args[..], &["--port", &port.to_string()]].concat());
    assert_eq!(taken.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&taken.stderr).contains(&format!("cannot listen on {address}")));
}

/// Each counterexample's "again" command prints the diagram the page shows, under 2026-07-28 too:
/// the page names every flag that made its model.
#[test]
fn report_commands_reproduce_their_diagrams() {
    let dir = temp_dir("report-again");
    let out = coherence(&[
        "report",
        "--policy",
        "ttl-only",
        "--revisions",
        "stateless",
        "--sessions",
        "1",
        "--faults",
        "0",
        "--no-timing",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(html.contains("revisions=stateless"), "the bounds do not name the revision");
    let unescape = |t: &str| t.replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
    let mut sections = 0;
    for section in html.split("<section class=\"counterexample\"").skip(1) {
        let source = section.split("<pre class=\"mermaid-source\">").nth(1).unwrap().split("</pre>").next().unwrap();
        let command = section.split("Again: <code>").nth(1).unwrap().split("</code>").next().unwrap();
        let args: Vec<String> = unescape(command).split(' ').skip(1).map(str::to_owned).collect();
        assert!(args.contains(&"stateless".to_owned()), "{command}");
        let again = coherence(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(again.status.success(), "{command}: {}", String::from_utf8_lossy(&again.stderr));
        assert_eq!(String::from_utf8(again.stdout).unwrap(), unescape(source), "{command}");
        sections += 1;
    }
    assert!(sections > 3, "{sections} counterexamples");
    std::fs::remove_dir_all(dir).unwrap();
}
