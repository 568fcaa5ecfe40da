//! A host behind a process boundary: the adapter protocol over a child's stdin and stdout.
//!
//! Every limit is explicit: one answer per input within the step timeout, lines of at most
//! [`LINE_BYTES_MAX`] bytes, stderr kept to its last [`STDERR_BYTES_KEPT`] bytes for error messages.
//! The child is killed when the host is dropped, whatever happened.
//!
//! One rule makes verdicts independent of timing: every line the adapter prints is the answer to
//! the oldest input not yet answered, whenever it was printed, and must carry that input's `seq`.
//! An adapter that answers before it has read its input is taken at its word; one that prints a
//! line twice, or skips one, is caught by the `seq` of the next line the runner reads, whichever
//! thread saw it first.

use crate::host::{Host, HostError};
use crate::protocol::{Input, Output};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The longest line an adapter may print.
pub const LINE_BYTES_MAX: usize = 1 << 20;
/// How much of the adapter's stderr is kept for error messages.
pub const STDERR_BYTES_KEPT: usize = 4096;

enum Line {
    Text(String),
    Oversized,
    Eof,
    Failed(String),
}

/// The environment variable that marks an adapter and everything it starts: descendants inherit
/// it, whatever session or process group they move to, so the runner can find and kill them all.
pub const MARKER: &str = "MCP_COHERENCE_ADAPTER";

/// An adapter process.
pub struct ProcessHost {
    command: String,
    child: Marked,
    stdin: Option<ChildStdin>,
    lines: Receiver<Line>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_closed: Arc<std::sync::atomic::AtomicBool>,
    timeout: Duration,
    seq: u64,
}

impl ProcessHost {
    /// Starts `command` with `sh -c`, in a process group of its own and with a marker in its
    /// environment, so that everything it starts is killed with it (see [`Drop`]).
    pub fn spawn(command: &str, timeout: Duration) -> Result<ProcessHost, HostError> {
        let mut child =
            Marked::spawn(command, &[]).map_err(|e| HostError::Crashed(format!("cannot start `{command}`: {e}")))?;
        let stdout = child.stdout.take().expect("piped");
        let stderr_pipe = child.stderr.take().expect("piped");
        let (send, lines) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut buf = Vec::new();
                let line = match reader.by_ref().take(LINE_BYTES_MAX as u64 + 1).read_until(b'\n', &mut buf) {
                    Err(e) => Line::Failed(e.to_string()),
                    Ok(0) => Line::Eof,
                    Ok(_) if buf.len() > LINE_BYTES_MAX => Line::Oversized,
                    Ok(_) => match String::from_utf8(buf) {
                        Ok(text) => Line::Text(text),
                        Err(_) => Line::Failed("a line is not UTF-8".to_owned()),
                    },
                };
                let last = !matches!(line, Line::Text(_));
                if send.send(line).is_err() || last {
                    return;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stderr_closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let kept = Arc::clone(&stderr);
        let closed = Arc::clone(&stderr_closed);
        std::thread::spawn(move || {
            keep_tail(stderr_pipe, &kept, STDERR_BYTES_KEPT);
            closed.store(true, std::sync::atomic::Ordering::Release);
        });
        let stdin = child.stdin.take();
        Ok(ProcessHost { command: command.to_owned(), child, stdin, lines, stderr, stderr_closed, timeout, seq: 0 })
    }

    fn with_stderr(&self, error: HostError) -> HostError {
        match error {
            HostError::Protocol(m) => HostError::Protocol(format!("{m}{}", self.stderr_tail())),
            other => other,
        }
    }

    fn stderr_tail(&self) -> String {
        let buf = self.stderr.lock().expect("stderr buffer");
        let text = String::from_utf8_lossy(&buf).trim().to_owned();
        if text.is_empty() { String::new() } else { format!("; its stderr ends with: {text}") }
    }

    fn exit_words(&mut self) -> String {
        // Give a dying process a moment to be reaped, so its status can be reported.
        for _ in 0..20 {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the stderr reader catch up with what the process wrote before it died.
                for _ in 0..20 {
                    if self.stderr_closed.load(std::sync::atomic::Ordering::Acquire) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                return format!("`{}` exited ({status}){}", self.command, self.stderr_tail());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        format!("`{}` closed its stdout{}", self.command, self.stderr_tail())
    }
}

impl Host for ProcessHost {
    fn handle(&mut self, input: &Input) -> Result<Output, HostError> {
        let seq = self.seq;
        self.seq += 1;
        let mut line = crate::protocol::input_line(input, seq);
        line.push('\n');
        let written = match self.stdin.as_mut() {
            Some(stdin) => stdin.write_all(line.as_bytes()).and_then(|()| stdin.flush()),
            None => Err(std::io::Error::other("stdin closed")),
        };
        if let Err(e) = written {
            // An adapter that printed its answer and exited before reading: its line is waiting.
            if let Ok(Line::Text(text)) = self.lines.recv_timeout(Duration::from_millis(100)) {
                // It answered before it read: take the answer; its exit shows at the next input.
                return parse(&text, Some(seq)).map_err(|e| self.with_stderr(e));
            }
            // Whether the write or the read notices first that the process died is a race: an
            // adapter that exited is reported by its exit alone, the same either way.
            let words = self.exit_words();
            if self.child.try_wait().is_ok_and(|status| status.is_some()) {
                return Err(HostError::Crashed(words));
            }
            return Err(HostError::Crashed(format!("cannot write to the adapter ({e}): {words}")));
        }
        match self.lines.recv_timeout(self.timeout) {
            Ok(Line::Text(text)) => parse(&text, Some(seq)).map_err(|e| self.with_stderr(e)),
            Ok(Line::Oversized) => Err(self
                .with_stderr(HostError::Protocol(format!("the adapter printed a line over {LINE_BYTES_MAX} bytes")))),
            Ok(Line::Failed(e)) => {
                Err(self.with_stderr(HostError::Protocol(format!("cannot read the adapter's output: {e}"))))
            }
            Ok(Line::Eof) | Err(RecvTimeoutError::Disconnected) => Err(HostError::Crashed(self.exit_words())),
            Err(RecvTimeoutError::Timeout) => {
                Err(HostError::Timeout(self.timeout.as_millis() as u64, self.stderr_tail()))
            }
        }
    }
}

/// Parses an output line; with `expected`, its `seq` must be that one.
fn parse(text: &str, expected: Option<u64>) -> Result<Output, HostError> {
    let shown: String = text.trim_end().chars().take(200).collect();
    let garbage = |e: String| {
        HostError::Protocol(format!("the adapter printed a line that is not a protocol message ({e}): `{shown}`"))
    };
    let (seq, value) = crate::protocol::split_seq(text).map_err(garbage)?;
    if let Some(expected) = expected
        && seq != expected
    {
        return Err(HostError::Protocol(format!(
            "the adapter answered input {expected} with a line for input {seq}: it printed a line twice or skipped one: `{shown}`"
        )));
    }
    serde_json::from_value(value).map_err(|e| garbage(e.to_string()))
}

/// The live processes of this machine (zombies aside), as (pid, parent pid, whether its
/// environment holds `marker`).
fn processes(marker: &str) -> Vec<(u32, u32, bool)> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let needle = format!("{MARKER}={marker}");
    entries
        .filter_map(|e| {
            let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid ...`: comm may hold spaces and parentheses; the last `)` ends it.
            let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
            if fields.next()? == "Z" {
                return None;
            }
            let ppid = fields.next()?.parse().ok()?;
            let marked = std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == needle.as_bytes()));
            Some((pid, ppid, marked))
        })
        .collect()
}

/// Every live process started by the adapter `root` (marked with `marker`): its descendants by
/// parentage, and every process that carries the marker (a descendant that left the process group
/// with `setsid`, or whose parent died and left it to init).
fn doomed(root: u32, marker: &str) -> Vec<u32> {
    let all = processes(marker);
    let mut found: Vec<u32> = all.iter().filter(|p| p.2).map(|p| p.0).collect();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for &(pid, ppid, _) in &all {
            if ppid == parent && !found.contains(&pid) {
                found.push(pid);
                frontier.push(pid);
            }
        }
    }
    found.retain(|&pid| pid != std::process::id());
    found
}

impl Drop for ProcessHost {
    fn drop(&mut self) {
        // The adapter's stdin closes first; then `Marked` kills everything it started.
        drop(self.stdin.take());
    }
}

/// Reads `pipe` to its end, keeping its last `limit` bytes in `kept`.
pub fn keep_tail(mut pipe: impl Read, kept: &Mutex<Vec<u8>>, limit: usize) {
    let mut chunk = [0u8; 1024];
    while let Ok(n) = pipe.read(&mut chunk) {
        if n == 0 {
            break;
        }
        let mut buf = kept.lock().expect("no reader panics holding the buffer");
        buf.extend_from_slice(&chunk[..n]);
        let excess = buf.len().saturating_sub(limit);
        buf.drain(..excess);
    }
}

/// A process started with `sh -c`, in a process group of its own and with a marker in its
/// environment; dropping it kills it and everything it started, wherever that went (see
/// [`doomed`]). Derefs to its [`Child`], whose pipes are taken by the owner.
pub struct Marked {
    child: Child,
    marker: String,
}

impl Marked {
    /// Starts `command`, with `env` added to the environment, its stdin, stdout and stderr piped.
    pub fn spawn(command: &str, env: &[(String, String)]) -> std::io::Result<Marked> {
        use std::os::unix::process::CommandExt as _;
        static STARTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let marker = format!("{}.{n}", std::process::id());
        let child = Command::new("sh")
            .arg("-c")
            .arg(command)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env(MARKER, &marker)
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        Ok(Marked { child, marker })
    }
}

impl std::ops::Deref for Marked {
    type Target = Child;

    fn deref(&self) -> &Child {
        &self.child
    }
}

impl std::ops::DerefMut for Marked {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for Marked {
    fn drop(&mut self) {
        use rustix::process::{Pid, Signal, kill_process, kill_process_group};
        let root = self.child.id();
        let pid = |p: u32| i32::try_from(p).ok().and_then(Pid::from_raw);
        // The whole process group first: `sh -c` may have started the command as a child of its own.
        if let Some(group) = pid(root) {
            let _ = kill_process_group(group, Signal::KILL);
        }
        // Then everything else it started, until nothing is left (a dying parent can leave a child
        // for a moment): a bounded number of rounds, looking again after 1, 2, 4 … 16 ms.
        for round in 0..50 {
            let pids = doomed(root, &self.marker);
            if pids.is_empty() {
                break;
            }
            for p in pids.into_iter().filter_map(pid) {
                let _ = kill_process(p, Signal::KILL);
            }
            let _ = self.child.try_wait();
            std::thread::sleep(Duration::from_millis(1 << round.min(4)));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
