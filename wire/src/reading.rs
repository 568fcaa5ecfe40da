//! Reading what a host tells the model (SPEC.md §11.5): which connector an offered tool belongs
//! to, whatever the host's naming scheme, and which of the texts a host added are notices or
//! errors about a connector.
//!
//! **Tool names.** The kit names every tool of a connector with the connector's name first
//! (`gmail_create_draft`, `gmail_authenticate`), so no tool name of one connector ends another's.
//! An offered name belongs to the connector one of whose tool names it *ends with at a boundary*
//! (the start of the name, or a character that is not a letter or digit before it): `gmail_x`,
//! `mcp__gmail__gmail_x`, `gmail-server.gmail_x` all map to the tool `gmail_x`.
//!
//! **Notices and errors.** A host's added text is read line by line. A line *names* a connector
//! when it holds the connector's name or one of its tool names as a whole word (case ignored;
//! letters and digits make words). A line that names a connector and holds a *recovery phrase*
//! (restart, refresh, `/mcp`, authenticate again, ...) is a notice about it; one that names it and
//! holds an *error phrase* (failed, not found, unauthorized, ...) is an error about it. Both lists
//! are [`Phrases`], replaceable from a JSON file; matching ignores case.

use coherence_model::state::{Notice, NoticeReason, Recovery};
use serde::{Deserialize, Serialize};

/// The phrases that make a line a notice or an error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phrases {
    /// A recovery step: a line naming a connector with one of these is a notice about it.
    pub recovery: Vec<String>,
    /// A failure: a line naming a connector with one of these is an error about it.
    pub error: Vec<String>,
}

impl Phrases {
    /// The phrases the kit uses unless told otherwise.
    pub fn standard() -> Phrases {
        let words = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect();
        Phrases {
            recovery: words(&[
                "restart",
                "refresh",
                "reload",
                "reconnect",
                "re-authenticate",
                "reauthenticate",
                "re-authorize",
                "reauthorize",
                "authenticate again",
                "sign in again",
                "log in again",
                "/mcp",
                "re-list",
                "new session",
            ]),
            error: words(&[
                "error",
                "failed",
                "failure",
                "unavailable",
                "not available",
                "unauthorized",
                "forbidden",
                "not found",
                "unknown tool",
                "no such tool",
                "could not",
                "couldn't",
                "cannot",
                "can't",
                "expired",
                "revoked",
                "denied",
            ]),
        }
    }

    /// Reads phrases from JSON: `{"recovery": [...], "error": [...]}`, each phrase non-empty.
    pub fn from_json(text: &str) -> Result<Phrases, String> {
        let phrases: Phrases = serde_json::from_str(text).map_err(|e| format!("phrases: {e}"))?;
        if phrases.recovery.iter().chain(&phrases.error).any(|p| p.trim().is_empty()) {
            return Err("phrases: a phrase is empty".to_owned());
        }
        Ok(phrases)
    }
}

/// A connector as the texts may name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connector {
    /// Its name (`gmail`).
    pub name: String,
    /// Its tool names, as its server lists them.
    pub tools: Vec<String>,
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric()
}

/// Whether `needle` occurs in `hay` with no letter or digit right before or after it.
fn holds_word(hay: &str, needle: &str) -> bool {
    let (hay, needle) = (hay.to_lowercase(), needle.to_lowercase());
    if needle.is_empty() {
        return false;
    }
    hay.match_indices(&needle).any(|(at, _)| {
        let before = hay[..at].chars().next_back();
        let after = hay[at + needle.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

/// Whether the offered name `offered` ends with the tool name `tool` at a boundary (the start of
/// the name, or a character other than a letter or digit before it).
pub fn ends_with_tool(offered: &str, tool: &str) -> bool {
    offered.strip_suffix(tool).is_some_and(|head| !head.chars().next_back().is_some_and(is_word))
}

/// The connector (by index in `connectors`) the offered tool name `offered` belongs to: the one
/// with a tool name `offered` ends with at a boundary (the longest such, if several).
pub fn connector_of(offered: &str, connectors: &[Connector]) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (k, connector) in connectors.iter().enumerate() {
        for tool in &connector.tools {
            if !ends_with_tool(offered, tool) {
                continue;
            }
            if best.is_none_or(|(_, len)| tool.len() > len) {
                best = Some((k, tool.len()));
            }
        }
    }
    best.map(|(k, _)| k)
}

/// One line of added text, as read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Line {
    /// The line, as the host wrote it.
    pub text: String,
    /// The connectors it names, by index.
    pub names: Vec<usize>,
    /// The first recovery phrase it holds.
    pub recovery: Option<String>,
    /// The first error phrase it holds.
    pub error: Option<String>,
}

/// The recovery step a phrase names: `restart` and `new session` a restart; a phrase about
/// authenticating, signing or logging in authentication; any other a refresh.
pub fn recovery_of(phrase: &str) -> Recovery {
    let phrase = phrase.to_lowercase();
    if phrase.contains("restart") || phrase.contains("new session") {
        Recovery::Restart
    } else if ["auth", "sign in", "log in"].iter().any(|p| phrase.contains(p)) {
        Recovery::Authenticate
    } else {
        Recovery::Refresh
    }
}

impl Line {
    /// The notice the line is, if it holds a recovery phrase: its recovery is the phrase's; its
    /// reason a failed refresh if the line is also an error, needs-authentication if the recovery
    /// is authentication, changed elsewhere otherwise.
    pub fn notice(&self) -> Option<Notice> {
        let recovery = recovery_of(self.recovery.as_deref()?);
        let reason = if self.error.is_some() {
            NoticeReason::RefreshFailed
        } else if recovery == Recovery::Authenticate {
            NoticeReason::NeedsAuthentication
        } else {
            NoticeReason::ChangedElsewhere
        };
        Some(Notice { reason, recovery })
    }

    /// Whether the line is a notice about connector `k`.
    pub fn is_notice_about(&self, k: usize) -> bool {
        self.names.contains(&k) && self.recovery.is_some()
    }

    /// Whether the line is an error about connector `k`.
    pub fn is_error_about(&self, k: usize) -> bool {
        self.names.contains(&k) && self.error.is_some()
    }

    /// The line as a failure report shows it: the text, and why it counts or not for `k`.
    pub fn explain(&self, k: usize, connectors: &[Connector]) -> String {
        let name = &connectors[k].name;
        let why = match (self.names.contains(&k), &self.recovery, &self.error) {
            (false, _, _) => format!("does not name {name}"),
            (true, Some(r), Some(e)) => format!("a notice about {name} (\"{r}\") and an error (\"{e}\")"),
            (true, Some(r), None) => format!("a notice about {name} (\"{r}\")"),
            (true, None, Some(e)) => format!("an error about {name} (\"{e}\"), naming no recovery step"),
            (true, None, None) => format!("names {name} but holds no recovery or error phrase"),
        };
        format!("\"{}\": {why}", self.text)
    }
}

/// Reads every line of `texts` (what a host added, in order).
pub fn read_lines(texts: &[String], connectors: &[Connector], phrases: &Phrases) -> Vec<Line> {
    let first = |list: &[String], line: &str| {
        let lower = line.to_lowercase();
        list.iter().find(|p| lower.contains(&p.to_lowercase())).cloned()
    };
    texts
        .iter()
        .flat_map(|t| t.lines())
        .filter(|l| !l.trim().is_empty())
        .map(|line| Line {
            text: line.trim().to_owned(),
            names: (0..connectors.len())
                .filter(|&k| {
                    let c = &connectors[k];
                    holds_word(line, &c.name) || c.tools.iter().any(|t| holds_word(line, t))
                })
                .collect(),
            recovery: first(&phrases.recovery, line),
            error: first(&phrases.error, line),
        })
        .collect()
}
