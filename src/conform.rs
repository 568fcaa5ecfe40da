//! `coherence conform` and `coherence gen`: running fixtures through a host, and rendering results.

use coherence_model::story::step_words_with;
use coherence_sim::engine::{Origin, Run, Verdict, replay};
use coherence_sim::fixture::Fixture;
use coherence_sim::host::{Host, HostError};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The most fixtures one `conform` run reads.
pub const FIXTURES_MAX: usize = 100_000;

/// Reads every `*.json` fixture under `dir` (recursively), sorted by path.
pub fn read_fixtures(dir: &Path) -> anyhow::Result<Vec<Fixture>> {
    let mut paths = Vec::new();
    collect(dir, &mut paths)?;
    paths.sort();
    if paths.is_empty() {
        anyhow::bail!("no fixtures (*.json) under {}", dir.display());
    }
    if paths.len() > FIXTURES_MAX {
        anyhow::bail!("{} fixtures under {}; at most {FIXTURES_MAX}", paths.len(), dir.display());
    }
    let mut fixtures: Vec<Fixture> = Vec::with_capacity(paths.len());
    let mut ids = std::collections::BTreeMap::new();
    for path in paths {
        let fixture = Fixture::read(&path)?;
        if let Some(other) = ids.insert(fixture.id.clone(), path.clone()) {
            anyhow::bail!("{} and {} both have the id `{}`", other.display(), path.display(), fixture.id);
        }
        fixtures.push(fixture);
    }
    Ok(fixtures)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("cannot read fixture directory {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        // Links are not followed and only regular files are read: no loops, no FIFOs. A `*.json`
        // that is anything else is an error, never skipped without a word.
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            if !kind.is_file() {
                anyhow::bail!(
                    "{} is not a regular file (a link, a FIFO or a device): fixtures must be regular files",
                    path.display()
                );
            }
            out.push(path);
        }
    }
    Ok(())
}

/// The outcome of one fixture.
pub struct FixtureResult {
    /// The fixture.
    pub fixture: Fixture,
    /// Its replay.
    pub run: Run,
    /// What the host's wire showed, for a fixture that did not pass (black-box runs).
    pub wire_log: Vec<String>,
}

impl FixtureResult {
    /// Passed.
    pub fn passed(&self) -> bool {
        matches!(self.run.verdict, Verdict::Pass)
    }

    /// Not run because the runner cannot play what the fixture needs: neither a pass nor a fail.
    pub fn outside_reach(&self) -> Option<&str> {
        match &self.run.verdict {
            Verdict::HostFailed { error: HostError::Unsupported(why), .. } => Some(why),
            _ => None,
        }
    }
}

/// Whether a run's results let it succeed: every fixture run passed, and at least one ran.
pub fn succeeded(results: &[FixtureResult]) -> bool {
    let run = results.iter().filter(|r| r.outside_reach().is_none());
    run.clone().all(FixtureResult::passed) && run.count() > 0
}

/// What a run judged: a host through its adapter, or a host black-box on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// `--adapter CMD`.
    Adapter(String),
    /// An adapter command, its observations seen as a black-box run would see them
    /// (`--seen-on-the-wire`).
    AdapterSeenOnTheWire(String),
    /// `--host CMD --transport T`.
    Host {
        /// The host command.
        command: String,
        /// `http` or `stdio`.
        transport: String,
        /// `--revision`, if not the default.
        revision: Option<String>,
        /// `--ttl-ms`, if not the default.
        ttl_ms: Option<u64>,
        /// `--hang-ms`, if given.
        hang_ms: Option<u64>,
    },
}

impl Subject {
    /// In words, for reports.
    pub fn words(&self) -> String {
        match self {
            Subject::Adapter(command) => format!("adapter `{command}`"),
            Subject::AdapterSeenOnTheWire(command) => format!("adapter `{command}` seen as on the wire"),
            Subject::Host { command, transport, revision, ttl_ms, hang_ms } => {
                let mut words = format!("host `{command}` over {transport}");
                if let Some(revision) = revision {
                    words.push_str(&format!(", servers speaking {revision}"));
                }
                if let Some(ttl_ms) = ttl_ms {
                    words.push_str(&format!(", a long TTL of {ttl_ms} ms"));
                }
                if let Some(hang_ms) = hang_ms {
                    words.push_str(&format!(", {hang_ms} ms for a list that never returns"));
                }
                words
            }
        }
    }

    /// The flags that name it on the command line.
    pub fn flags(&self) -> String {
        match self {
            Subject::Adapter(command) => format!("--adapter {}", shell_quote(command)),
            Subject::AdapterSeenOnTheWire(command) => {
                format!("--adapter {} --seen-on-the-wire", shell_quote(command))
            }
            Subject::Host { command, transport, revision, ttl_ms, hang_ms } => {
                let revision = revision.as_ref().map(|r| format!(" --revision {r}")).unwrap_or_default();
                let ttl = ttl_ms.map(|t| format!(" --ttl-ms {t}")).unwrap_or_default();
                let hang = hang_ms.map(|h| format!(" --hang-ms {h}")).unwrap_or_default();
                format!("--host {} --transport {transport}{revision}{ttl}{hang}", shell_quote(command))
            }
        }
    }
}

/// What bounds a whole run.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// No fixture starts after this.
    pub deadline: Option<std::time::Instant>,
    /// After this many fixtures in a row end with an adapter failure, the rest are not run.
    pub consecutive_failures: usize,
    /// Print a line on stderr as each fixture ends (its number, id, verdict and time).
    pub progress: bool,
    /// Fixtures replayed at once, each worker with hosts of its own (at least 1).
    pub jobs: usize,
}

impl Limits {
    /// No deadline; stop after 5 consecutive adapter failures; one fixture at a time.
    pub const DEFAULT: Limits = Limits { deadline: None, consecutive_failures: 5, progress: false, jobs: 1 };
}

/// What the workers of a run share: the fixtures left, and why the run stopped, if it did.
struct Queue {
    left: std::collections::VecDeque<(usize, Fixture)>,
    done: usize,
    failures_in_a_row: usize,
    stopped: Option<String>,
}

/// Replays every fixture through hosts from `host`. One host serves fixture after fixture (each
/// starts with `hello` and `reset`); after a host fails, the next fixture gets a fresh one. Once
/// `limits` stop the run, every fixture left is an error that says why: never a pass. With
/// `limits.jobs` above 1, that many workers take the fixtures in order, each with hosts of its
/// own; "in a row" counts fixtures as they end, and the results come back in the fixtures' order.
pub fn conform(
    fixtures: Vec<Fixture>,
    limits: Limits,
    host: impl Fn() -> anyhow::Result<Box<dyn Host>> + Sync,
) -> anyhow::Result<Vec<FixtureResult>> {
    let total = fixtures.len();
    let queue = std::sync::Mutex::new(Queue {
        left: fixtures.into_iter().enumerate().collect(),
        done: 0,
        failures_in_a_row: 0,
        stopped: None,
    });
    let worker = || -> anyhow::Result<Vec<(usize, FixtureResult)>> {
        let mut results = Vec::new();
        let mut current: Option<Box<dyn Host>> = None;
        loop {
            let (index, fixture, stopped) = {
                let mut q = queue.lock().expect("a worker panicked");
                let Some((index, fixture)) = q.left.pop_front() else { return Ok(results) };
                if q.stopped.is_none() && limits.deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                    q.stopped = Some("the run's deadline (--deadline) passed before it started".to_owned());
                }
                (index, fixture, q.stopped.clone())
            };
            if let Some(reason) = stopped {
                let run = Run::not_run(&fixture, reason);
                results.push((index, FixtureResult { fixture, run, wire_log: Vec::new() }));
                continue;
            }
            let started = std::time::Instant::now();
            let h = match &mut current {
                Some(h) => h,
                None => match host() {
                    Ok(h) => current.insert(h),
                    Err(e) => {
                        // The run cannot go on: the other workers take nothing more.
                        queue.lock().expect("a worker panicked").left.clear();
                        return Err(e);
                    }
                },
            };
            let run = replay(&fixture, h.as_mut());
            let wire_log = if matches!(run.verdict, Verdict::Pass) { Vec::new() } else { h.wire_log() };
            let mut q = queue.lock().expect("a worker panicked");
            q.done += 1;
            if limits.progress {
                let verdict = match &run.verdict {
                    Verdict::Pass => "pass".to_owned(),
                    Verdict::Fail(v) => format!("FAIL {}", v.invariant.id),
                    Verdict::HostFailed { error: HostError::Unsupported(_), .. } => "not run".to_owned(),
                    Verdict::HostFailed { .. } => "ERROR".to_owned(),
                };
                let ms = started.elapsed().as_millis();
                eprintln!("conform: [{}/{total}] {}: {verdict} ({ms} ms)", q.done, fixture.id);
            }
            if let Verdict::HostFailed { error: HostError::Unsupported(_), .. } = run.verdict {
                // The runner's limit, not the host's failure.
                current = None;
            } else if matches!(run.verdict, Verdict::HostFailed { .. }) {
                current = None;
                q.failures_in_a_row += 1;
                if q.failures_in_a_row >= limits.consecutive_failures && q.stopped.is_none() {
                    q.stopped = Some(format!(
                        "the adapter failed {} fixtures in a row (--max-adapter-failures), so the run stopped",
                        q.failures_in_a_row
                    ));
                }
            } else {
                q.failures_in_a_row = 0;
            }
            drop(q);
            results.push((index, FixtureResult { fixture, run, wire_log }));
        }
    };
    let mut results = Vec::with_capacity(total);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let workers: Vec<_> = (0..limits.jobs.max(1)).map(|_| scope.spawn(worker)).collect();
        for w in workers {
            results.extend(w.join().expect("a worker panicked")?);
        }
        Ok(())
    })?;
    results.sort_by_key(|(index, _)| *index);
    Ok(results.into_iter().map(|(_, r)| r).collect())
}

/// The story of a run up to step `last` (inclusive), numbered from 1.
pub fn run_story(run: &Run, last: usize) -> Vec<String> {
    let mut lines = vec![format!("0. {}", coherence_model::story::initial_words(&run.model, &run.init))];
    let mut before = run.init;
    for (i, e) in run.executed.iter().enumerate().take(last + 1) {
        let how = match e.origin {
            Origin::Fixture => String::new(),
            Origin::Substituted => {
                " [the fixture's agent step, replaced: the host's catalogue did not allow it]".to_owned()
            }
            Origin::Drained => " [delivered by the runner so that the run can proceed]".to_owned(),
        };
        // Told from what the host sent, never from what its states suggest.
        let relisted = |s, c| e.relisted.contains(&(s, c));
        lines.push(format!("{}. {}{how}", i + 1, step_words_with(&run.model, &before, e.action, &e.state, &relisted)));
        before = e.state;
    }
    lines
}

/// The human report.
pub fn text(results: &[FixtureResult], subject: &Subject, dir: &Path) -> String {
    let mut out = String::new();
    let w = &mut out;
    for r in results {
        let id = &r.fixture.id;
        match &r.run.verdict {
            Verdict::Pass => {
                let mut notes = Vec::new();
                if r.run.skipped > 0 {
                    notes.push(format!("{} of {} steps adapted away", r.run.skipped, r.fixture.steps.len()));
                }
                if r.run.judged_moments() == 0 {
                    notes.push("no user-visible moment judged".to_owned());
                }
                let notes = if notes.is_empty() { String::new() } else { format!(" ({})", notes.join("; ")) };
                writeln!(w, "ok    {id}{notes}").unwrap()
            }
            Verdict::Fail(v) => {
                writeln!(w, "FAIL  {id}").unwrap();
                writeln!(w, "      {} {} violated at step {}", v.invariant.id, v.invariant.name, v.step + 1).unwrap();
                writeln!(w, "      required: {}", v.required).unwrap();
                writeln!(w, "      seen:     {}", v.seen).unwrap();
                let others = &r.run.violations[1..];
                if !others.is_empty() {
                    writeln!(w, "      also broken, most harmful first:").unwrap();
                    for o in others {
                        writeln!(
                            w,
                            "        {} {} at step {}: {}",
                            o.invariant.id,
                            o.invariant.name,
                            o.step + 1,
                            o.seen
                        )
                        .unwrap();
                    }
                }
                if let Some(stopped) = &r.run.stopped {
                    writeln!(w, "      then {stopped}").unwrap();
                }
                writeln!(w, "      trace:").unwrap();
                for line in run_story(&r.run, last_step(&r.run)) {
                    writeln!(w, "        {line}").unwrap();
                }
                write_wire_log(w, &r.wire_log);
                writeln!(w, "      reproduce: {}", reproduce(subject, dir, id)).unwrap();
            }
            Verdict::HostFailed { error: HostError::Unsupported(why), .. } => {
                writeln!(w, "SKIP  {id}").unwrap();
                writeln!(w, "      not run: {why}").unwrap();
                writeln!(w, "      reproduce: {}", reproduce(subject, dir, id)).unwrap();
            }
            Verdict::HostFailed { during, error, .. } => {
                writeln!(w, "ERROR {id}").unwrap();
                writeln!(w, "      {} failed during {during}: {error}", subject.words()).unwrap();
                write_wire_log(w, &r.wire_log);
                writeln!(w, "      reproduce: {}", reproduce(subject, dir, id)).unwrap();
            }
        }
    }
    let failed = results.iter().filter(|r| matches!(r.run.verdict, Verdict::Fail(_))).count();
    let outside = results.iter().filter(|r| r.outside_reach().is_some()).count();
    let errors = results.iter().filter(|r| matches!(r.run.verdict, Verdict::HostFailed { .. })).count() - outside;
    let passed = results.len() - failed - errors - outside;
    writeln!(w).unwrap();
    let outside_words =
        if outside > 0 { format!(", {outside} not run (outside what this runner plays)") } else { String::new() };
    writeln!(
        w,
        "conform: {passed} passed, {failed} failed, {errors} errors{outside_words} ({} fixtures, {})",
        results.len(),
        subject.words()
    )
    .unwrap();
    let skipped: usize = results.iter().map(|r| r.run.skipped).sum();
    let steps: usize = results.iter().map(|r| r.fixture.steps.len()).sum();
    let unjudged = results.iter().filter(|r| r.run.judged_moments() == 0).count();
    writeln!(
        w,
        "conform: {skipped} of {steps} fixture steps adapted away to this host (SPEC.md §11.3); \
         {unjudged} fixtures judged no user-visible moment (only convergence)"
    )
    .unwrap();
    out
}

/// The wire log of a fixture that did not pass, its last lines.
fn write_wire_log(w: &mut String, log: &[String]) {
    const SHOWN: usize = 40;
    if log.is_empty() {
        return;
    }
    let from = log.len().saturating_sub(SHOWN);
    let more = if from > 0 { format!(" (the last {SHOWN} of {})", log.len()) } else { String::new() };
    writeln!(w, "      wire log{more}:").unwrap();
    for line in &log[from..] {
        writeln!(w, "        {line}").unwrap();
    }
}

/// The last step a failure's trace must reach: where its last broken invariant first broke.
fn last_step(run: &coherence_sim::engine::Run) -> usize {
    run.violations.iter().map(|v| v.step).max().unwrap_or(0)
}

/// One broken invariant, for the JSON report.
#[derive(Serialize)]
struct JsonViolation {
    invariant: &'static str,
    name: &'static str,
    step: usize,
    required: String,
    seen: String,
}

fn shell_quote(s: &str) -> String {
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:".contains(c)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The command that replays just one fixture.
pub fn reproduce(subject: &Subject, dir: &Path, id: &str) -> String {
    format!(
        "coherence conform {} --fixtures {} --fixture {}",
        subject.flags(),
        shell_quote(&dir.display().to_string()),
        shell_quote(id)
    )
}

#[derive(Serialize)]
struct JsonResult<'a> {
    id: &'a str,
    verdict: &'static str,
    /// Every invariant broken, the most harmful first (SPEC.md §11.1).
    violated: Vec<&'static str>,
    /// Each of them, where it first broke, with what was required and what was seen.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    violations: Vec<JsonViolation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    step: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// What the spec requires, for a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    required: Option<String>,
    /// What the host did, for a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    seen: Option<String>,
    /// The story up to the failing step.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    trace: Vec<String>,
    /// The command that replays just this fixture, for a failure or an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    reproduce: Option<String>,
    /// What the host's wire showed, for a black-box fixture that did not pass.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    wire_log: Vec<String>,
    steps_executed: usize,
    steps_skipped: usize,
    judged_moments: usize,
}

/// The JSON report: one document.
pub fn json(results: &[FixtureResult], subject: &Subject, dir: &Path) -> String {
    let rows: Vec<JsonResult> = results
        .iter()
        .map(|r| {
            let mut row = JsonResult {
                id: &r.fixture.id,
                verdict: "pass",
                violated: vec![],
                violations: vec![],
                step: None,
                error: None,
                required: None,
                seen: None,
                trace: vec![],
                reproduce: None,
                wire_log: r.wire_log.clone(),
                steps_executed: r.run.executed.len(),
                steps_skipped: r.run.skipped,
                judged_moments: r.run.judged_moments(),
            };
            match &r.run.verdict {
                Verdict::Pass => {}
                Verdict::Fail(v) => {
                    row.verdict = "fail";
                    row.violated = r.run.violations.iter().map(|v| v.invariant.id).collect();
                    row.violations = r
                        .run
                        .violations
                        .iter()
                        .map(|v| JsonViolation {
                            invariant: v.invariant.id,
                            name: v.invariant.name,
                            step: v.step + 1,
                            required: v.required.clone(),
                            seen: v.seen.clone(),
                        })
                        .collect();
                    row.step = Some(v.step + 1);
                    row.required = Some(v.required.clone());
                    row.seen = Some(v.seen.clone());
                    row.error = r.run.stopped.clone();
                    row.trace = run_story(&r.run, last_step(&r.run));
                    row.reproduce = Some(reproduce(subject, dir, &r.fixture.id));
                }
                Verdict::HostFailed { error: HostError::Unsupported(why), .. } => {
                    row.verdict = "not_run";
                    row.error = Some(why.clone());
                    row.reproduce = Some(reproduce(subject, dir, &r.fixture.id));
                }
                Verdict::HostFailed { step, during, error } => {
                    row.verdict = "error";
                    row.step = Some(step + 1);
                    row.error = Some(format!("during {during}: {error}"));
                    row.reproduce = Some(reproduce(subject, dir, &r.fixture.id));
                }
            }
            row
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({ "fixtures": rows })).expect("serialises") + "\n"
}

fn xml_escape(s: &str) -> String {
    // XML 1.0 allows no control characters but tab, newline and carriage return.
    let allowed: String =
        s.chars().map(|c| if c.is_control() && !"\t\n\r".contains(c) { '\u{fffd}' } else { c }).collect();
    allowed.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A JUnit XML report, one test case per fixture.
pub fn junit(results: &[FixtureResult], subject: &Subject, dir: &Path) -> String {
    let failures = results.iter().filter(|r| matches!(r.run.verdict, Verdict::Fail(_))).count();
    let skipped = results.iter().filter(|r| r.outside_reach().is_some()).count();
    let errors = results.iter().filter(|r| matches!(r.run.verdict, Verdict::HostFailed { .. })).count() - skipped;
    let mut out = String::new();
    let w = &mut out;
    writeln!(w, r#"<?xml version="1.0" encoding="UTF-8"?>"#).unwrap();
    writeln!(
        w,
        r#"<testsuite name="coherence conform" tests="{}" failures="{failures}" errors="{errors}" skipped="{skipped}">"#,
        results.len()
    )
    .unwrap();
    for r in results {
        let name = xml_escape(&r.fixture.id);
        match &r.run.verdict {
            Verdict::Pass => writeln!(w, r#"  <testcase classname="conform" name="{name}"/>"#).unwrap(),
            Verdict::Fail(v) => {
                let broken: Vec<String> = r
                    .run
                    .violations
                    .iter()
                    .map(|o| format!("{} at step {}: {}", o.invariant.id, o.step + 1, o.seen))
                    .collect();
                let body = format!(
                    "required: {}\nseen: {}\nbroken, most harmful first:\n{}\n{}{}\nreproduce: {}",
                    v.required,
                    v.seen,
                    broken.join("\n"),
                    r.run.stopped.as_ref().map(|s| format!("then {s}\n")).unwrap_or_default(),
                    run_story(&r.run, last_step(&r.run)).join("\n"),
                    reproduce(subject, dir, &r.fixture.id)
                );
                let also: Vec<&str> = r.run.violations[1..].iter().map(|o| o.invariant.id).collect();
                let also = if also.is_empty() { String::new() } else { format!(" (also {})", also.join(", ")) };
                writeln!(w, r#"  <testcase classname="conform" name="{name}">"#).unwrap();
                writeln!(
                    w,
                    r#"    <failure message="{} {} violated at step {}{}">{}</failure>"#,
                    v.invariant.id,
                    xml_escape(v.invariant.name),
                    v.step + 1,
                    also,
                    xml_escape(&body)
                )
                .unwrap();
                writeln!(w, "  </testcase>").unwrap();
            }
            Verdict::HostFailed { error: HostError::Unsupported(why), .. } => {
                writeln!(w, r#"  <testcase classname="conform" name="{name}">"#).unwrap();
                writeln!(w, r#"    <skipped message="{}"/>"#, xml_escape(why)).unwrap();
                writeln!(w, "  </testcase>").unwrap();
            }
            Verdict::HostFailed { during, error, .. } => {
                writeln!(w, r#"  <testcase classname="conform" name="{name}">"#).unwrap();
                writeln!(
                    w,
                    r#"    <error message="during {}: {}"/>"#,
                    xml_escape(during),
                    xml_escape(&error.to_string())
                )
                .unwrap();
                writeln!(w, "  </testcase>").unwrap();
            }
        }
    }
    writeln!(w, "</testsuite>").unwrap();
    out
}
