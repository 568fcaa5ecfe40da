//! Fixtures: traces of the model, in a versioned JSON format (SPEC.md §11).
//!
//! A fixture is the world's side of a behaviour: the initial account and servers, then a list of
//! stimuli (model actions). A host is replayed through it by the runner, which adapts the agent's
//! and the network's steps to what the host does and judges every step by the invariants. The
//! `reference` of each step says what the `recommended` host shows there, for readers; it is never
//! what a host is compared with.

use coherence_model::state::{Answer, Auth, CacheScope, ConnectorId, Listing, Notice, Notify, Revision, Ttl};
use coherence_model::system::{Fault, Faults};
use coherence_model::{Action, Bounds};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The value of the `format` field.
pub const FORMAT: &str = "mcp-coherence/fixture";
/// The fixture format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// The SPEC.md version the fixtures are generated from.
pub const SPEC_VERSION: u32 = 1;
/// The largest fixture file the runner reads.
pub const FIXTURE_BYTES_MAX: u64 = 4 << 20;
/// The most steps one fixture may have.
pub const STEPS_MAX: usize = 10_000;

/// One connector at the start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectorInit {
    /// Its name.
    pub name: ConnectorId,
    /// Its account state.
    pub auth: Auth,
    /// Its server's notification behaviour.
    pub notify: Notify,
    /// The protocol revision its server speaks (absent: `handshake`, the 2025 revisions).
    #[serde(default, skip_serializing_if = "coherence_model::state::is_default")]
    pub revision: Revision,
    /// The TTL of its `tools/list` results (2026-07-28 only; absent: `zero`).
    #[serde(default, skip_serializing_if = "coherence_model::state::is_default")]
    pub ttl: Ttl,
    /// The `cacheScope` of its `tools/list` results (2026-07-28 only; absent: `private`).
    #[serde(default, skip_serializing_if = "coherence_model::state::is_default")]
    pub scope: CacheScope,
    /// With two authorization contexts, the second user's authorization of it, fixed for the run
    /// (absent: `unauthenticated`); every session but `cli` is that user's.
    #[serde(default, skip_serializing_if = "coherence_model::state::is_default")]
    pub other: Auth,
}

impl ConnectorInit {
    /// The connector as `state` starts it.
    pub fn of(state: &coherence_model::State, c: ConnectorId) -> ConnectorInit {
        let k = state.connector(c);
        ConnectorInit {
            name: c,
            auth: k.auth,
            notify: k.notify,
            revision: k.revision,
            ttl: k.ttl,
            scope: k.scope,
            other: k.other,
        }
    }
}

/// How the fixture was made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// The generation strategy.
    pub strategy: String,
    /// The policy whose behaviour the trace is (for counterexamples, the policy that breaks).
    pub policy: String,
    /// The host mutant planted in `policy` (SPEC.md §11.4), for a trace of the mutant's behaviour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutant: Option<String>,
    /// The invariant a counterexample breaks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invariant: Option<String>,
    /// The seed of a random walk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The bounds the trace lies within.
    pub bounds: Bounds,
    /// The SPEC.md version.
    pub spec_version: u32,
}

/// What `recommended` shows after a step: its catalogue, notices and answer, in one session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferenceView {
    /// Offered per connector (absent: nothing).
    pub catalogue: BTreeMap<ConnectorId, Listing>,
    /// Notices per connector.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub notices: BTreeMap<ConnectorId, Notice>,
    /// The answer, when the step ended a turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<Answer>,
}

/// One step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The stimulus.
    pub action: Action,
    /// The step in words, as the model tells it for the generating policy.
    pub story: String,
    /// What `recommended` shows in the step's session afterwards (none for world-only steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<ReferenceView>,
}

/// What a fixture exercises.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Exercises {
    /// Invariants whose premise the trace reaches (under `recommended`), or that it breaks.
    pub invariants: Vec<String>,
    /// The actions it takes, by name, each once.
    pub actions: Vec<String>,
}

/// A fixture.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`FORMAT_VERSION`].
    pub version: u32,
    /// A stable, path-safe identifier.
    pub id: String,
    /// One sentence.
    pub description: String,
    /// How it was made.
    pub provenance: Provenance,
    /// The bounds its world lies within (sessions and connectors in use).
    pub bounds: Bounds,
    /// A step deploys (`DeployTools`, SPEC.md §4): a server's list changes without an auth change.
    /// The model admits deploys only then; a host needs adapter protocol 8. Absent means false.
    #[serde(default, skip_serializing_if = "coherence_model::state::is_default")]
    pub deploys: bool,
    /// The connectors at the start; every session starts with each one's listing.
    pub connectors: Vec<ConnectorInit>,
    /// The stimuli.
    pub steps: Vec<Step>,
    /// What it exercises.
    pub exercises: Exercises,
}

/// Why a fixture cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// Not JSON, or not this format.
    #[error("{path}: not a fixture: {message}")]
    Malformed {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Cannot be read.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

impl Fixture {
    /// Serialises to the canonical text: pretty JSON, fields in declaration order, a final newline.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a fixture serialises") + "\n"
    }

    /// Parses and validates a fixture; `path` names it in errors.
    pub fn from_json(text: &str, path: &str) -> Result<Fixture, FixtureError> {
        let malformed = |message: String| FixtureError::Malformed { path: path.to_owned(), message };
        let value = crate::strict_json::parse(text).map_err(malformed)?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(malformed(format!("the `format` field must be \"{FORMAT}\"")));
        }
        match value.get("version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(FORMAT_VERSION) => {}
            Some(v) => {
                return Err(malformed(format!(
                    "format version {v} is not supported; this build reads version {FORMAT_VERSION}"
                )));
            }
            None => return Err(malformed("the `version` field is missing".to_owned())),
        }
        let fixture: Fixture = serde_json::from_value(value).map_err(|e| malformed(e.to_string()))?;
        fixture.validate().map_err(malformed)?;
        fixture.check_behaviour().map_err(malformed)?;
        Ok(fixture)
    }

    /// Checks that the steps are a behaviour of the model under the fixture's policy, so that no
    /// step can be skipped for being impossible (the runner still adapts steps to the host under
    /// test, SPEC.md §11.3). The error names the step and the steps that were enabled there.
    pub fn check_behaviour(&self) -> Result<(), String> {
        let model = self.model()?;
        let policy = model.policy;
        let mut state = self.initial_state(&model).ok_or("the connectors are not an initial state of the model")?;
        let words = |a: &coherence_model::Action| {
            let args = crate::scenario::action_arguments(a);
            if args.is_empty() { a.name().to_owned() } else { format!("{} {}", a.name(), args.join(" ")) }
        };
        let mut enabled = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            enabled.clear();
            model.enabled_actions(&state, &mut enabled);
            if !enabled.contains(&step.action) {
                let shown: Vec<String> = enabled.iter().map(words).collect();
                return Err(format!(
                    "step {} (`{}`) is not a behaviour of the model under {}; enabled there: {}",
                    i + 1,
                    words(&step.action),
                    policy.name,
                    if shown.is_empty() { "nothing".to_owned() } else { shown.join(", ") }
                ));
            }
            state = model.step(&state, step.action).expect("enabled actions step");
        }
        Ok(())
    }

    /// The model the fixture's trace is a behaviour of: its provenance's policy, with its mutant
    /// if it names one, within its bounds.
    pub fn model(&self) -> Result<coherence_model::CoherenceModel, String> {
        let policy = coherence_model::policy_named(&self.provenance.policy)
            .ok_or_else(|| format!("provenance names unknown policy `{}`", self.provenance.policy))?;
        let mutant = match &self.provenance.mutant {
            None => None,
            Some(name) => Some(
                coherence_model::Mutant::named(name)
                    .ok_or_else(|| format!("provenance names unknown mutant `{name}`"))?,
            ),
        };
        Ok(coherence_model::CoherenceModel { mutant, ..self.model_of(policy) })
    }

    /// The fault kinds the fixture's model admits: the servers', and deploys if a step deploys.
    pub fn faults(&self) -> Faults {
        let admitted = Faults::admitted_by(self.bounds.servers);
        if self.deploys { admitted.with(Fault::DeployTools) } else { admitted }
    }

    /// The model of `policy` the fixture lies within: its bounds and fault kinds.
    pub fn model_of(&self, policy: coherence_model::HostPolicy) -> coherence_model::CoherenceModel {
        coherence_model::CoherenceModel {
            faults: self.faults(),
            ..coherence_model::CoherenceModel::new(policy, self.bounds)
        }
    }

    /// Reads a fixture file, refusing anything but a regular file, and files over
    /// [`FIXTURE_BYTES_MAX`].
    pub fn read(path: &std::path::Path) -> Result<Fixture, FixtureError> {
        Fixture::read_with_text(path).map(|(fixture, _)| fixture)
    }

    /// [`Fixture::read`], with the file's text as read.
    pub fn read_with_text(path: &std::path::Path) -> Result<(Fixture, String), FixtureError> {
        let name = path.display().to_string();
        let io = |e: std::io::Error| FixtureError::Io { path: name.clone(), message: e.to_string() };
        let meta = std::fs::symlink_metadata(path).map_err(io)?;
        if !meta.file_type().is_file() {
            return Err(FixtureError::Io {
                path: name.clone(),
                message: "not a regular file (a link, a directory, a FIFO or a device): fixtures are regular files"
                    .to_owned(),
            });
        }
        let size = meta.len();
        if size > FIXTURE_BYTES_MAX {
            return Err(FixtureError::Malformed {
                path: name.clone(),
                message: format!("{size} bytes; fixtures are at most {FIXTURE_BYTES_MAX}"),
            });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let fixture = Fixture::from_json(&text, &name)?;
        Ok((fixture, text))
    }

    fn validate(&self) -> Result<(), String> {
        self.bounds.validate().map_err(|e| format!("bounds: {e}"))?;
        self.provenance.bounds.validate().map_err(|e| format!("provenance bounds: {e}"))?;
        if self.connectors.len() != usize::from(self.bounds.connectors) {
            return Err(format!("{} connectors listed, bounds say {}", self.connectors.len(), self.bounds.connectors));
        }
        for (i, c) in self.connectors.iter().enumerate() {
            if c.name.index() != i {
                return Err(format!("connector {i} must be named {}", ConnectorId(i as u8)));
            }
            if !matches!(c.auth, Auth::Unauthenticated | Auth::Authenticated)
                || !matches!(c.other, Auth::Unauthenticated | Auth::Authenticated)
            {
                return Err(format!("{} starts {:?}; fixtures start unauthenticated or authenticated", c.name, c.auth));
            }
            if c.other != Auth::Unauthenticated && self.bounds.contexts == coherence_model::state::Contexts::One {
                return Err(format!("{}: `other` is the second user's authorization: bounds say one context", c.name));
            }
        }
        let deploys = self.steps.iter().any(|s| matches!(s.action, Action::DeployTools { .. }));
        if deploys != self.deploys {
            return Err(format!(
                "`deploys` is {}, yet {} step deploys: it says whether one does",
                self.deploys,
                if deploys { "a" } else { "no" }
            ));
        }
        if self.steps.len() > STEPS_MAX {
            return Err(format!("{} steps; at most {STEPS_MAX}", self.steps.len()));
        }
        if self.id.is_empty()
            || !self.id.chars().all(|ch| ch.is_ascii_alphanumeric() || "-_./".contains(ch))
            || self.id.contains("..")
        {
            return Err(format!("id `{}` is not path-safe", self.id));
        }
        Ok(())
    }

    /// The initial state of `model` the fixture starts in (the connectors' auth and notify
    /// behaviour; every session with each connector's listing). `None` if `model`'s bounds do not
    /// fit the fixture.
    pub fn initial_state(&self, model: &coherence_model::CoherenceModel) -> Option<coherence_model::State> {
        model.initial_states().into_iter().find(|s| {
            s.shape.connectors == self.bounds.connectors
                && s.shape.sessions == self.bounds.sessions
                && s.shape.contexts == self.bounds.contexts
                && self.connectors.iter().all(|c| ConnectorInit::of(s, c.name) == *c)
        })
    }

    /// The file name the fixture is written under.
    pub fn file_name(&self) -> String {
        format!("{}.json", self.id.replace('/', "--"))
    }
}
