//! The stdio transport, relayed: a host spawns `coherence mcp-server --relay ADDR --connector C`
//! from its configuration, and that process copies its stdin to a local socket of the server and
//! the socket to its stdout, a JSON-RPC message a line. So the server the host talks to over stdio
//! is the same server, held lists, notifications and log included, as over HTTP.
//!
//! A connection is a session (`<connector>-<n>`), opened when the relay connects; its first line
//! is the relay's hello, `{"relay":"mcp-coherence","connector":C}`. Notifications are written on
//! the connection. stdio has no HTTP status: a held list released as 401 or 503, or a call
//! refused as 401, is a JSON-RPC error, and a list released as a lost session closes the
//! connection (the server process the host spawned exits), as does
//! [`super::ServerHandle::lose_sessions`].
//!
//! A connection whose first request is of the stateless revision 2026-07-28 speaks it from then
//! on, if the server does ([`super::modern`]): its listen streams share the connection, and it
//! gets no unsolicited notification.

use super::{Seen, Shared, answer, initialized, listed, modern, open_session, refuses_call, rpc_error};
use crate::mcp::{Release, hold};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// The longest line a relay may send.
const MAX_LINE: usize = 4 << 20;

/// How often a blocked thread looks whether the server has stopped.
const POLL: Duration = Duration::from_millis(50);

/// The JSON-RPC error code a stdio server answers where an HTTP one answers 401.
const UNAUTHORIZED: i64 = -32001;

/// The relay's first line names this.
pub const RELAY: &str = "mcp-coherence";

/// The socket relays connect to, and its connections' threads.
pub(super) struct Relay {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    pub(super) fn start(shared: Arc<Shared>) -> std::io::Result<Relay> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new().name(format!("relay-{}", shared.connector)).spawn({
            let stop = Arc::clone(&stop);
            move || accept(&listener, &shared, &stop)
        })?;
        Ok(Relay { addr, stop, thread: Some(thread) })
    }

    pub(super) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // A connection of its own wakes the accepting thread, which then sees the stop. Should
        // none get through, the thread is left to the process's end rather than waited on.
        let woken = TcpStream::connect_timeout(&self.addr, POLL).is_ok();
        if let Some(thread) = self.thread.take().filter(|_| woken) {
            let _ = thread.join();
        }
    }
}

fn accept(listener: &TcpListener, shared: &Arc<Shared>, stop: &Arc<AtomicBool>) {
    let mut connections = Vec::new();
    // Blocking: the relay's drop connects to wake it.
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok(_) if stop.load(Ordering::Relaxed) => break,
            Ok((stream, _)) => {
                let (shared, stop) = (Arc::clone(shared), Arc::clone(stop));
                connections.push(std::thread::spawn(move || connection(stream, &shared, &stop)));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
        connections.retain(|c| !c.is_finished());
    }
    for connection in connections {
        let _ = connection.join();
    }
}

/// Reads a line of at most [`MAX_LINE`] bytes; `None` at the end of the stream, on an error, when
/// the line is too long, or when `gone` says to stop.
fn read_line(reader: &mut BufReader<TcpStream>, gone: &dyn Fn() -> bool) -> Option<String> {
    let mut line = Vec::new();
    loop {
        if gone() {
            return None;
        }
        let available = match reader.fill_buf() {
            Ok([]) => return None,
            Ok(available) => available,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(_) => return None,
        };
        let (taken, done) = match available.iter().position(|&b| b == b'\n') {
            Some(at) => (at + 1, true),
            None => (available.len(), false),
        };
        line.extend_from_slice(&available[..taken]);
        reader.consume(taken);
        if line.len() > MAX_LINE {
            return None;
        }
        if done {
            return String::from_utf8(line).ok();
        }
    }
}

fn connection(stream: TcpStream, shared: &Arc<Shared>, stop: &AtomicBool) {
    let refuse =
        |why: String| shared.inner().seen.push(Seen::Refused { status: 400, why, asked: "a stdio relay".into() });
    let Ok(writer) = stream.try_clone() else { return };
    // A message a line, each flushed: Nagle's algorithm would hold small writes for an ACK the
    // other side delays (40 ms a message).
    if stream.set_read_timeout(Some(POLL)).and_then(|()| stream.set_nodelay(true)).is_err() {
        return;
    }
    let mut reader = BufReader::new(stream);
    let hello = read_line(&mut reader, &|| stop.load(Ordering::Relaxed));
    let hello: Option<Value> = hello.and_then(|line| serde_json::from_str(&line).ok());
    let relay = hello.as_ref().and_then(|h| h.get("relay")).and_then(Value::as_str);
    let connector = hello.as_ref().and_then(|h| h.get("connector")).and_then(Value::as_str);
    if relay != Some(RELAY) || connector != Some(shared.connector.as_str()) {
        refuse(format!("the relay's hello is not {{\"relay\":\"{RELAY}\",\"connector\":\"{}\"}}", shared.connector));
        return;
    }
    let (sender, mut outgoing) = mpsc::unbounded_channel::<Value>();
    let session = open_session(shared, Some(sender.clone()), reader.get_ref().try_clone().ok());
    shared.inner().seen.push(Seen::Connected { session: session.clone() });
    let writing = std::thread::spawn(move || {
        let mut writer = writer;
        while let Some(message) = outgoing.blocking_recv() {
            let mut line = message.to_string();
            line.push('\n');
            if writer.write_all(line.as_bytes()).and_then(|()| writer.flush()).is_err() {
                break;
            }
        }
        let _ = writer.shutdown(std::net::Shutdown::Both);
    });
    let lost = || shared.inner().sessions.iter().find(|s| s.id == session).is_none_or(|s| s.lost);
    let gone = || stop.load(Ordering::Relaxed) || lost();
    let mut waiting = Vec::new();
    while let Some(line) = read_line(&mut reader, &gone) {
        if line.trim().is_empty() {
            continue;
        }
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            refuse(format!("not a JSON-RPC message: {}", line.trim_end().chars().take(80).collect::<String>()));
            continue;
        };
        if let Some(thread) = handle(shared, &session, &message, &sender) {
            waiting.push(thread);
        }
        waiting.retain(|t: &std::thread::JoinHandle<()>| !t.is_finished());
    }
    // The connection is over: its held lists are given up, its session ends.
    let mut inner = shared.inner();
    let (gone_held, kept): (Vec<_>, Vec<_>) =
        std::mem::take(&mut inner.holding.held).into_iter().partition(|(held, _)| held.session == session);
    inner.holding.held = kept;
    inner.seen.extend(gone_held.into_iter().map(|(held, _)| Seen::Abandoned { id: held.id }));
    if let Some(ended) = inner.sessions.iter_mut().find(|s| s.id == session) {
        ended.lose();
    }
    inner.seen.push(Seen::Disconnected { session });
    drop(inner);
    drop(sender);
    for thread in waiting {
        let _ = thread.join();
    }
    let _ = writing.join();
}

/// Answers one message of `session`; a held list is answered from a thread of its own, returned.
fn handle(
    shared: &Arc<Shared>,
    session: &str,
    message: &Value,
    out: &mpsc::UnboundedSender<Value>,
) -> Option<std::thread::JoinHandle<()>> {
    let method = message.get("method").and_then(Value::as_str);
    let Some(id) = message.get("id").cloned().filter(|_| method.is_some()) else {
        let seen = match method {
            Some("notifications/initialized") => Seen::Initialized { session: session.to_owned() },
            other => Seen::Other { session: session.to_owned(), method: other.unwrap_or("response").to_owned() },
        };
        shared.inner().seen.push(seen);
        return None;
    };
    let method = method.expect("filtered above");
    let params = message.get("params");
    let modern = {
        let mut inner = shared.inner();
        let speaks = inner.behaviour.modern.is_some();
        let live = inner.sessions.iter_mut().find(|s| s.id == session);
        // The connection's first request of the stateless revision settles its era.
        live.is_some_and(|live| {
            live.modern |= speaks && modern::is_stateless(None, message);
            live.modern
        })
    };
    if modern {
        if let Some(refused) = modern::refusal(None, message) {
            let why = refused.pointer("/error/message").and_then(Value::as_str).unwrap_or("").to_owned();
            shared.inner().seen.push(Seen::Refused { status: 400, why, asked: method.to_owned() });
            let _ = out.send(refused);
            return None;
        }
        match method {
            "server/discover" => {
                let _ = out.send(modern::discover(shared, &mut shared.inner(), session, &id, message));
                return None;
            }
            "subscriptions/listen" => {
                modern::listen(&mut shared.inner(), session, &id, message, out.clone());
                return None;
            }
            _ => {}
        }
    }
    if method == "initialize" {
        let _ = out.send(initialized(shared, session, &id, message));
        return None;
    }
    if method == "tools/list" {
        let cursor = params.and_then(|p| p.get("cursor")).and_then(Value::as_str).map(str::to_owned);
        if let Some(waiting) = hold(shared, session, cursor) {
            let (shared, session, out) = (Arc::clone(shared), session.to_owned(), out.clone());
            return Some(std::thread::spawn(move || {
                // Given up (the connection ended, the server stopped): the sender is dropped.
                let Ok(release) = waiting.blocking_recv() else { return };
                match release {
                    Release::Tools { tools, next_cursor } => {
                        let _ = out.send(listed(&shared, modern, &id, &tools, next_cursor));
                    }
                    Release::Unauthorized => {
                        let _ = out.send(rpc_error(
                            &id,
                            UNAUTHORIZED,
                            "unauthorized: the token expired or access was revoked",
                        ));
                    }
                    Release::Failed => {
                        let _ = out.send(rpc_error(&id, -32603, "the request failed"));
                    }
                    Release::SessionLost => {
                        // The server process "exits": the connection closes.
                        if let Some(lost) = shared.inner().sessions.iter_mut().find(|s| s.id == session) {
                            lost.lose();
                        }
                    }
                }
            }));
        }
    }
    if refuses_call(shared, method, params) {
        let _ = out.send(rpc_error(&id, UNAUTHORIZED, "unauthorized: the token expired or access was revoked"));
        return None;
    }
    let reply = answer(shared, session, method, &id, params);
    let reply = if modern {
        let behaviour = shared.inner().behaviour;
        modern::decorate(shared, &behaviour, method, reply)
    } else {
        reply
    };
    let _ = out.send(reply);
    None
}
