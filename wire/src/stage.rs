//! The stage of a black-box run (SPEC.md §11.5): the connectors' servers and the model a host is
//! configured with, the host process itself, and the pacing that says when the host has done what
//! an input made it do.
//!
//! **Configuration.** The host command runs with `sh -c` in a process group of its own, with:
//! `MCP_CONFIG`, a file in the `mcpServers` JSON shape (`{"type": "http", "url": …}`, or for stdio
//! `{"command": …, "args": […]}` spawning `coherence mcp-server --relay`); `ANTHROPIC_BASE_URL`
//! and `OPENAI_BASE_URL` (the model endpoint, the latter with `/v1`); `ANTHROPIC_API_KEY` and
//! `OPENAI_API_KEY` (a dummy). **Driving.** User turns and commands reach it as JSON lines on
//! stdin ([`Stage::say`]); what it prints on stdout is read a line at a time. **Pacing.** The
//! host is *quiet* when no server, the model endpoint nor its stdout has seen anything new for
//! [`Pacing::quiet`]; every wait ends by [`Pacing::deadline`] with an error that says what did
//! not happen. The first wait is for the host's first `tools/list` of every connector.
//!
//! Dropping the stage kills the host and everything it started, stops every server and frees its
//! port, and removes the configuration file.

use crate::endpoint::{Limits, ModelEndpoint};
use crate::idle::{Parked, Probe};
use crate::mcp::{Behaviour, McpServer, Protection, Seen, Tool};
use crate::model_api::{ModelRequest, Reply};
use coherence_sim::adapter::{Marked, keep_tail};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a host reaches a connector's server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Streamable HTTP.
    Http,
    /// stdio, through `coherence mcp-server --relay`.
    Stdio,
}

/// One connector on the stage.
#[derive(Clone, Debug)]
pub struct Connector {
    /// Its name.
    pub name: String,
    /// What its server lists first.
    pub tools: Vec<Tool>,
    /// How its server behaves.
    pub behaviour: Behaviour,
    /// How it guards its tools.
    pub protection: Protection,
    /// How the host reaches it.
    pub transport: Transport,
}

/// How long the stage waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pacing {
    /// Nothing new on any wire for this long: the host has done what it was going to.
    pub quiet: Duration,
    /// The longest any wait lasts, but the first.
    pub deadline: Duration,
    /// The longest the host may take to start: to connect to every connector.
    pub startup: Duration,
    /// Ask the operating system whether the host can still act ([`crate::idle::Probe`]): once a
    /// sixth of the quiet has passed with nothing new, a host whose every thread waits on input
    /// alone, twice with nothing run between, is quiet without waiting out the rest.
    pub probe: bool,
}

impl Pacing {
    /// 150 ms of quiet, 10 s at most, 60 s to start, the probe on.
    pub const DEFAULT: Pacing = Pacing {
        quiet: Duration::from_millis(150),
        deadline: Duration::from_secs(10),
        startup: Duration::from_secs(60),
        probe: true,
    };

    /// How long nothing new must happen before the probe is asked: a sixth of the quiet, 2 ms at
    /// least (time for what the runner sent last to reach the host and wake it).
    pub fn floor(&self) -> Duration {
        (self.quiet / 6).max(Duration::from_millis(2))
    }
}

/// The most model requests one stage answers: past it, the host floods the model.
pub const MODEL_REQUESTS_MAX: usize = 1000;

/// How much of the host's stderr is kept for error messages.
const STDERR_KEPT: usize = 4096;

/// The longest line the host may print.
const LINE_MAX: u64 = 1 << 20;

/// What went wrong with the host.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StageError {
    /// The stage could not be set up.
    #[error("cannot set the stage up: {0}")]
    Setup(String),
    /// The host process ended.
    #[error("the host exited ({status}) {during}{stderr}")]
    Exited {
        /// How it ended.
        status: String,
        /// What the stage was waiting for.
        during: String,
        /// The end of its stderr.
        stderr: String,
    },
    /// The host did not do what was awaited in time.
    #[error("{0}")]
    Timeout(String),
    /// The host sent more model requests than a run allows.
    #[error("the host sent more than {MODEL_REQUESTS_MAX} model requests: it floods the model")]
    Flooded,
    /// The host printed something that is not a line of text.
    #[error("the host printed {0}")]
    Garbage(String),
}

/// A model request waiting for the model's answer.
pub struct Offer {
    /// Its number at the endpoint.
    pub index: usize,
    /// The request.
    pub request: ModelRequest,
    answer: SyncSender<Reply>,
}

impl Offer {
    pub(crate) fn new(index: usize, request: ModelRequest, answer: SyncSender<Reply>) -> Offer {
        Offer { index, request, answer }
    }

    /// Answers it.
    pub fn answer(self, reply: Reply) {
        let _ = self.answer.send(reply);
    }
}

enum Said {
    Line(String),
    Garbage(String),
}

/// The servers, the model endpoint and the host.
pub struct Stage {
    // Field order is drop order: the host dies before its servers and its model go.
    host: Marked,
    stdin: Option<std::process::ChildStdin>,
    said: Receiver<Said>,
    stderr: Arc<Mutex<Vec<u8>>>,
    servers: Vec<McpServer>,
    // Model requests go before the model: the endpoint stops only once every request's handler
    // is done, and a handler waits for its request's answer until the request is dropped.
    offers: Receiver<Offer>,
    /// Model requests received and not yet taken, oldest first.
    waiting: std::collections::VecDeque<Offer>,
    model: ModelEndpoint,
    config: PathBuf,
    pacing: Pacing,
    /// Lines the host printed, in order.
    lines: Vec<String>,
    /// The host's process tree, probed, if [`Pacing::probe`] and the system allow.
    probe: Option<Probe>,
}

impl Stage {
    /// Starts a server per connector and the model endpoint, writes the configuration, starts
    /// `command`, and waits until the host has listed every connector and is quiet. `relay` is the
    /// `coherence` binary a stdio connector's configuration spawns.
    pub fn start(
        command: &str,
        connectors: &[Connector],
        relay: &std::path::Path,
        pacing: Pacing,
    ) -> Result<Stage, StageError> {
        let setup = |what: &str, e: std::io::Error| StageError::Setup(format!("{what}: {e}"));
        let mut servers = Vec::new();
        let mut entries = serde_json::Map::new();
        for c in connectors {
            let server = McpServer::start(&c.name, c.tools.clone(), c.behaviour, c.protection)
                .map_err(|e| setup(&format!("the server of {}", c.name), e))?;
            let entry = match c.transport {
                Transport::Http => serde_json::json!({ "type": "http", "url": server.url() }),
                Transport::Stdio => serde_json::json!({
                    "command": relay,
                    "args": ["mcp-server", "--relay", server.relay_addr().to_string(), "--connector", c.name],
                }),
            };
            entries.insert(c.name.clone(), entry);
            servers.push(server);
        }
        let (offered, offers) = channel::<Offer>();
        let offered = Mutex::new(offered);
        let wait = pacing.deadline * 6;
        let responder = move |request: &ModelRequest, index: usize| {
            // A request with no `tools` array (a title, a summary) is answered at once and never
            // judged; one with an empty array offers the model nothing, and is.
            if !request.offers {
                return Reply::Text { text: "OK.".to_owned() };
            }
            let (answer, answered) = sync_channel(1);
            let offer = Offer::new(index, request.clone(), answer);
            if offered.lock().expect("one sender").send(offer).is_err() {
                return Reply::Text { text: "(the run is over)".to_owned() };
            }
            answered.recv_timeout(wait).unwrap_or(Reply::Text { text: "(the runner gave no answer)".to_owned() })
        };
        let limits = Limits { requests: MODEL_REQUESTS_MAX, ..Limits::DEFAULT };
        let model = ModelEndpoint::start(responder, limits).map_err(|e| setup("the model endpoint", e))?;
        let config = config_path();
        let text = serde_json::json!({ "mcpServers": entries }).to_string();
        std::fs::write(&config, text).map_err(|e| setup(&config.display().to_string(), e))?;
        let base = model.base_url();
        let env = [
            ("MCP_CONFIG", config.display().to_string()),
            ("ANTHROPIC_BASE_URL", base.clone()),
            ("ANTHROPIC_API_KEY", "mcp-coherence-dummy-key".to_owned()),
            ("OPENAI_BASE_URL", format!("{base}/v1")),
            ("OPENAI_API_KEY", "mcp-coherence-dummy-key".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v));
        let mut host = match Marked::spawn(command, &env) {
            Ok(host) => host,
            Err(e) => {
                let _ = std::fs::remove_file(&config);
                return Err(setup(&format!("`{command}`"), e));
            }
        };
        let stdin = host.stdin.take();
        let stdout = host.stdout.take().expect("piped");
        let stderr_pipe = host.stderr.take().expect("piped");
        let (line, said) = channel();
        std::thread::spawn(move || read_stdout(stdout, &line));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        std::thread::spawn({
            let kept = Arc::clone(&stderr);
            move || keep_tail(stderr_pipe, &kept, STDERR_KEPT)
        });
        let probe = if pacing.probe { Probe::new(host.id()) } else { None };
        let mut stage = Stage {
            probe,
            host,
            stdin,
            said,
            stderr,
            servers,
            model,
            offers,
            waiting: Default::default(),
            config,
            pacing,
            lines: Vec::new(),
        };
        // A host is ready once every connector is connected: listed, or initialised (discovered,
        // in the stateless revision) by a host that lists on first use (the quiet that follows
        // shows whether it lists at start).
        stage.until("first connection to every connector", pacing.startup, |stage| {
            stage.servers.iter().all(|s| {
                s.seen().iter().any(|e| {
                    matches!(
                        e,
                        Seen::List { .. } | Seen::Held { .. } | Seen::Initialized { .. } | Seen::Discover { .. }
                    )
                })
            })
        })?;
        stage.settle()?;
        Ok(stage)
    }

    /// The connectors' servers, in the order given.
    pub fn servers(&self) -> &[McpServer] {
        &self.servers
    }

    /// The model endpoint.
    pub fn model(&self) -> &ModelEndpoint {
        &self.model
    }

    /// The host process's id.
    pub fn host_pid(&self) -> u32 {
        self.host.id()
    }

    /// The configuration file given to the host.
    pub fn config(&self) -> &std::path::Path {
        &self.config
    }

    /// Every line the host printed so far.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// Writes one JSON line to the host's stdin.
    pub fn say(&mut self, line: &serde_json::Value) -> Result<(), StageError> {
        let written = match self.stdin.as_mut() {
            Some(stdin) => writeln!(stdin, "{line}").and_then(|()| stdin.flush()),
            None => Err(std::io::Error::other("stdin is closed")),
        };
        written.map_err(|_| {
            self.exited(&format!("before it read `{line}`"))
                .unwrap_or_else(|| StageError::Timeout(format!("cannot write `{line}` to the host's stdin")))
        })
    }

    /// The next model request with tools, waiting at most the deadline.
    pub fn offer(&mut self) -> Result<Offer, StageError> {
        let deadline = Instant::now() + self.pacing.deadline;
        loop {
            self.drain()?;
            if let Some(offer) = self.waiting.pop_front() {
                return Ok(offer);
            }
            if let Ok(offer) = self.offers.recv_timeout(Duration::from_millis(10)) {
                return Ok(offer);
            }
            if let Some(error) = self.exited("while a model request was awaited") {
                return Err(error);
            }
            if Instant::now() >= deadline {
                return Err(StageError::Timeout(format!(
                    "the host sent no model request with tools within {} ms",
                    self.pacing.deadline.as_millis()
                )));
            }
        }
    }

    /// The oldest model request with tools that is waiting for its answer, if any (no wait).
    pub fn take_offer(&mut self) -> Result<Option<Offer>, StageError> {
        self.drain()?;
        Ok(self.waiting.pop_front())
    }

    /// Whether a model request with tools is waiting for its answer (as of the last wait).
    pub fn has_offer(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// The pacing.
    pub fn pacing(&self) -> Pacing {
        self.pacing
    }

    /// Waits, at most the deadline, until `done` holds; the error names `what` was awaited.
    pub fn wait_until(&mut self, what: &str, done: impl Fn(&Stage) -> bool) -> Result<(), StageError> {
        self.until(what, self.pacing.deadline, done)
    }

    /// The next line the host prints, waiting at most the deadline.
    pub fn line(&mut self) -> Result<String, StageError> {
        let seen = self.lines.len();
        self.until("a line on the host's stdout", self.pacing.deadline, |stage| stage.lines.len() > seen)?;
        Ok(self.lines[seen].clone())
    }

    /// Waits until nothing new has happened on any wire for [`Pacing::quiet`].
    pub fn settle(&mut self) -> Result<(), StageError> {
        self.settle_until(|_| false, self.pacing.quiet)
    }

    /// Waits until nothing new has happened on any wire for [`Pacing::quiet`], or, once `blocked`
    /// holds (the host waits on the runner: a model request or a list is waiting for an answer,
    /// or it ended its turn), for a fifth of it: long enough to see what the host sent at the same
    /// time, without waiting out the quiet when the host can do nothing more on its own. `quiet`
    /// replaces [`Pacing::quiet`] while the host is not blocked (a runner that expects the host
    /// to act waits longer before it concludes that it will not). With the probe, the wait ends
    /// as soon as [`Pacing::floor`] has passed with nothing new and the host's process tree was
    /// parked at two looks with nothing run between ([`crate::idle`]): it cannot act on its own.
    pub fn settle_until(&mut self, blocked: impl Fn(&Stage) -> bool, quiet: Duration) -> Result<(), StageError> {
        let deadline = Instant::now() + self.pacing.deadline;
        let grace = (self.pacing.quiet / 5).max(Duration::from_millis(5));
        let mut last = self.activity();
        let mut since = Instant::now();
        // The last look at a parked tree since anything new happened.
        let mut parked: Option<Parked> = None;
        loop {
            // Wake at the host's next line, or in 2 ms to look at the other wires.
            if let Ok(said) = self.said.recv_timeout(Duration::from_millis(2)) {
                self.take(said)?;
            }
            self.drain()?;
            if let Some(error) = self.exited("while the stage waited for quiet") {
                return Err(error);
            }
            let now = self.activity();
            if now != last {
                (last, since, parked) = (now, Instant::now(), None);
            }
            let wait = if blocked(self) { grace } else { quiet };
            if since.elapsed() >= wait {
                return Ok(());
            }
            if since.elapsed() >= self.pacing.floor().min(wait)
                && let Some(probe) = self.probe.as_mut()
            {
                // Parked at two looks with nothing run between, and no timeout of the host's
                // ends before the quiet would: waiting it out would conclude the same.
                let look = probe.look();
                if let (Some(now), Some(before)) = (&look, &parked)
                    && now.same(before)
                    && now.until.is_none_or(|until| until > since + wait)
                {
                    return Ok(());
                }
                parked = look;
            }
            if Instant::now() >= deadline {
                return Err(StageError::Timeout(format!(
                    "the host was never quiet for {} ms within {} ms",
                    self.pacing.quiet.as_millis(),
                    self.pacing.deadline.as_millis()
                )));
            }
        }
    }

    /// Waits, at most the deadline, until `done` holds.
    fn until(&mut self, what: &str, within: Duration, done: impl Fn(&Stage) -> bool) -> Result<(), StageError> {
        let deadline = Instant::now() + within;
        loop {
            self.drain()?;
            if done(self) {
                return Ok(());
            }
            if let Some(error) = self.exited(&format!("while the stage waited for {what}")) {
                return Err(error);
            }
            if Instant::now() >= deadline {
                return Err(StageError::Timeout(format!(
                    "no {what} within {} ms (is the host configured from MCP_CONFIG and ANTHROPIC_BASE_URL or OPENAI_BASE_URL?){}",
                    within.as_millis(),
                    self.stderr_tail()
                )));
            }
            // Wake at the host's next line, or in 10 ms to look at the other wires.
            if let Ok(said) = self.said.recv_timeout(Duration::from_millis(10)) {
                self.take(said)?;
            }
        }
    }

    /// Everything seen so far, counted: it changes whenever anything happens on a wire.
    fn activity(&self) -> (usize, usize, usize) {
        let servers = self.servers.iter().map(|s| s.seen_count()).sum();
        (servers, self.model.counts().0, self.lines.len())
    }

    /// Takes one thing the host printed.
    fn take(&mut self, said: Said) -> Result<(), StageError> {
        match said {
            Said::Line(line) => {
                self.lines.push(line);
                Ok(())
            }
            Said::Garbage(what) => Err(StageError::Garbage(what)),
        }
    }

    /// Takes the host's new lines and model requests; a flood or garbage is an error.
    fn drain(&mut self) -> Result<(), StageError> {
        while let Ok(said) = self.said.try_recv() {
            self.take(said)?;
        }
        while let Ok(offer) = self.offers.try_recv() {
            self.waiting.push_back(offer);
        }
        if self.model.counts().1 > 0 {
            return Err(StageError::Flooded);
        }
        Ok(())
    }

    /// The error to report if the host has exited.
    fn exited(&mut self, during: &str) -> Option<StageError> {
        let status = self.host.try_wait().ok().flatten()?;
        // Let the stderr reader catch up with what the process wrote before it died.
        std::thread::sleep(Duration::from_millis(50));
        Some(StageError::Exited { status: status.to_string(), during: during.to_owned(), stderr: self.stderr_tail() })
    }

    fn stderr_tail(&self) -> String {
        let kept = self.stderr.lock().expect("stderr buffer");
        let text = String::from_utf8_lossy(&kept).trim().to_owned();
        if text.is_empty() { String::new() } else { format!("; its stderr ends with: {text}") }
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        // Model requests left unanswered are refused now: the endpoint stops only once each
        // request's handler is done.
        self.waiting.clear();
        while self.offers.try_recv().is_ok() {}
        drop(self.stdin.take());
        let _ = std::fs::remove_file(&self.config);
    }
}

/// A configuration file of its own in the temporary directory.
fn config_path() -> PathBuf {
    static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("mcp-coherence-{}-{n}.json", std::process::id()))
}

fn read_stdout(stdout: std::process::ChildStdout, said: &Sender<Said>) {
    let mut reader = BufReader::new(stdout);
    loop {
        let mut buf = Vec::new();
        let said_now = match reader.by_ref().take(LINE_MAX + 1).read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) if buf.len() as u64 > LINE_MAX => Said::Garbage(format!("a line longer than {LINE_MAX} bytes")),
            Ok(_) => match String::from_utf8(buf) {
                Ok(text) => Said::Line(text.trim_end_matches(['\n', '\r']).to_owned()),
                Err(_) => Said::Garbage("a line that is not UTF-8".to_owned()),
            },
        };
        let garbage = matches!(said_now, Said::Garbage(_));
        if said.send(said_now).is_err() || garbage {
            return;
        }
    }
}
