//! The `coherence` binary: argument parsing, printing and exit codes.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use coherence::expected::{Profile, SPEC, compare, render_table};
use coherence::report::{self, Timing};
use coherence_model::system::{Fault, Faults, Revisions, ServerKind, Servers};
use coherence_model::{
    BROKEN_POLICIES, Bounds, CoherenceModel, HostPolicy, Key, POLICIES, Store, check_all_models,
    check_all_models_stored, policy_named,
};
use std::process::ExitCode;

/// Checks MCP host policies against the tool-catalogue coherence model of SPEC.md.
#[derive(Parser)]
#[command(name = "coherence", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check host policies exhaustively within bounds and print the verdict table.
    Check(CheckArgs),
    /// List the host policies, or print them as a host design file (`--format toml|json`), the
    /// starting point of your own (`check --host-design`).
    Policies(PoliciesArgs),
    /// Generate fixtures from the model.
    Gen(GenArgs),
    /// Replay fixtures through a host's adapter and judge every step by the invariants.
    Conform(ConformArgs),
    /// Speak the adapter protocol on stdin/stdout with the model's host logic for a policy.
    RefAdapter(RefAdapterArgs),
    /// List the host mutants; classify them with the checker; measure how a corpus kills them.
    Mutants(MutantsArgs),
    /// What MCP 2026-07-28 servers must do (SPEC.md §7.4's finding, computed): per kind of
    /// server (notifies on listen streams or not; a long TTL or `ttlMs` 0), whether the hosts of
    /// the revision keep INV-1, as the Markdown table SPEC.md holds.
    ServerFinding(ServerFindingArgs),
    /// Explain one policy's violation of one invariant, for a design review: its shortest
    /// counterexample as a story, a Mermaid sequence diagram, or Markdown with both and the
    /// invariant's text from SPEC.md.
    Explain(ExplainArgs),
    /// Write the verdict table and every counterexample, with its sequence diagram, as one
    /// self-contained HTML page for a design review (`DIR/index.html`).
    Report(ReportArgs),
    /// Serve the model in stateright's Explorer on 127.0.0.1, to walk any path by hand: each
    /// state shows the story of its step and the path so far as a sequence diagram.
    Explore(ExploreArgs),
    /// Swarm search: many seeded, bounded random searches, run anywhere, then merged.
    #[command(subcommand)]
    Swarm(SwarmCommand),
    /// Play the language model on 127.0.0.1 for a host configured to use it, answer every
    /// request the same way, and print what each request offers (one JSON line per request).
    ModelEndpoint(ModelEndpointArgs),
    /// Serve one connector's MCP server on streamable HTTP on 127.0.0.1 for a host configured to
    /// use it, driven by lines on stdin (`actions`, `stubs`, `notify`, `grant`, `revoke`,
    /// `expire`, `lose`, `end-listens`, `quit`); print what the server sees (one JSON line per
    /// event).
    McpServer(McpServerArgs),
    /// Write the JSON Schemas of the adapter protocol and the fixture format.
    Schema {
        /// The directory to write into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: std::path::PathBuf,
    },
}

#[derive(clap::Args)]
struct ModelEndpointArgs {
    /// The port on 127.0.0.1 (0: any free one; the first line printed says which).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// What the model answers every request: `text:WORDS`, or `call:TOOL` (a call of the tool the
    /// host offers under that name, with no arguments).
    #[arg(long, default_value = "text:That is not available with the tools I have.")]
    reply: String,
    /// Stop after answering this many model requests (past it, requests get a rate-limit error).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    requests: Option<u32>,
    /// Stop after this many seconds, whatever happened.
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    seconds: u64,
}

#[derive(clap::Args)]
struct McpServerArgs {
    /// The connector: tools are named `<connector>_<tool>`.
    #[arg(long, default_value = "gmail", value_parser = connector_name)]
    connector: String,
    /// The port on 127.0.0.1 (0: any free one; the first line printed says which).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// What it lists first: its authentication stubs, or its action tools.
    #[arg(long, value_enum, default_value_t = FirstList::Stubs)]
    tools: FirstList,
    /// Protect it with OAuth: every request needs a bearer token, which `/authorize` issues only
    /// after `grant`.
    #[arg(long)]
    oauth: bool,
    /// Neither declare nor send `notifications/tools/list_changed`.
    #[arg(long)]
    silent: bool,
    /// Page `tools/list`, at most this many tools a page.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    page_size: Option<u32>,
    /// Speak the stateless revision 2026-07-28 too (`server/discover`, `subscriptions/listen`,
    /// cache hints), besides the handshake revisions: a client picks its era.
    #[arg(long)]
    modern: bool,
    /// With `--modern`: the `ttlMs` of `tools/list` results (0: immediately stale).
    #[arg(long, default_value_t = 0, requires = "modern", value_parser = clap::value_parser!(u64).range(0..=86_400_000))]
    ttl_ms: u64,
    /// With `--modern`: the `cacheScope` of `tools/list` results.
    #[arg(long, value_enum, default_value_t = Scope::Private, requires = "modern")]
    cache_scope: Scope,
    /// Stop after this many seconds, whatever happened.
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    seconds: u64,
    /// Be the stdio transport of a server the runner plays: relay stdin and stdout, a JSON-RPC
    /// message a line, to its socket at ADDR (`127.0.0.1:PORT`). What a host's configuration
    /// spawns.
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["port", "tools", "oauth", "silent", "page_size", "modern"])]
    relay: Option<std::net::SocketAddr>,
}

/// Who may be served a cached `tools/list` result (SEP-2549).
#[derive(Clone, Copy, clap::ValueEnum)]
enum Scope {
    /// Any authorization context.
    Public,
    /// Only the one that obtained it.
    Private,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum FirstList {
    /// `<connector>_authenticate` and `<connector>_complete_authentication`.
    Stubs,
    /// `<connector>_search`, `_read` and `_send`.
    Actions,
}

/// A connector name: lowercase letters, digits and `-`, starting with a letter (it becomes part
/// of tool names and the session ids in headers).
fn connector_name(name: &str) -> std::result::Result<String, String> {
    let valid = name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        Ok(name.to_owned())
    } else {
        Err(format!("`{name}`: use 1 to 32 of a-z, 0-9 and -, starting with a letter"))
    }
}

#[derive(Subcommand)]
enum SwarmCommand {
    /// Run one task of a swarm and write its report (JSON).
    Run(SwarmRunArgs),
    /// Merge task reports: the shortest counterexample known of each invariant, confirmed by
    /// replay, and the states the tasks visited together.
    Merge {
        /// Task reports (from `coherence swarm run`).
        #[arg(required = true, value_name = "REPORT")]
        reports: Vec<std::path::PathBuf>,
    },
}

#[derive(clap::Args)]
struct SwarmRunArgs {
    /// Which task, `i/n` with 1 <= i <= n (a job index from 0 is `$((INDEX + 1))/n`).
    #[arg(long, value_name = "i/n")]
    task: String,
    /// The swarm's seed: every task of a swarm takes the same.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Random walks per policy.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..=i64::from(coherence_sim::swarm::WALKS_MAX)))]
    walks: u32,
    /// The longest walk, in steps (each task draws its own, from half this up to this).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=i64::from(coherence_sim::swarm::DEPTH_MAX)))]
    depth: u32,
    /// Write the report here instead of to standard output.
    #[arg(long, value_name = "PATH")]
    out: Option<std::path::PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Strategy {
    /// One fixture per counterexample of every policy other than recommended.
    Counterexample,
    /// Seeded random walks of the recommended model, with randomised bounds.
    Walk,
    /// The scripted scenarios (`*.scenario`) of the scenario directory.
    Scenario,
    /// The fewest traces found that cover every reachable abstract transition (SPEC.md §11.2).
    Coverage,
    /// Walks of host mutants, until every mutant is killed by --kills fixtures (SPEC.md §11.4).
    Mutant,
    /// Every strategy.
    All,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Tier {
    /// The corpus's strategies (`--strategy`): what `fixtures/` holds.
    Standard,
    /// Deep walks only: 4 connectors, 3 sessions, every budget at its largest, up to 200 steps
    /// (SPEC.md §11.2).
    Deep,
}

#[derive(clap::Args)]
struct GenArgs {
    /// The directory to write fixtures into (created if missing).
    #[arg(long, value_name = "DIR")]
    out: std::path::PathBuf,
    /// Which generation strategy.
    #[arg(long, value_enum, default_value = "all")]
    strategy: Strategy,
    /// Which tier: the standard corpus, or deep walks (`--walks` of them, seeded by `--seed`).
    #[arg(long, value_enum, default_value = "standard")]
    tier: Tier,
    /// The seed of the random walks.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How many random walks.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    walks: u32,
    /// Do only shard i of n (1 <= i <= n) of the work, and write it as a part into --out: merge
    /// the n parts with --merge (SPEC.md §11.2).
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// Merge the parts that `--shard 1/N` .. `--shard N/N` wrote into the corpus in --out, the same
    /// byte for byte as the unsharded run's. The settings come from the parts.
    #[arg(long, value_name = "PART", num_args = 1.., conflicts_with_all = ["shard", "strategy", "tier", "seed", "walks", "kills", "scenarios"])]
    merge: Vec<std::path::PathBuf>,
    /// Where the scripted scenarios are.
    #[arg(long, value_name = "DIR", default_value = "scenarios")]
    scenarios: std::path::PathBuf,
    /// Also write every fixture as an ITF trace (Quint, Apalache) into this directory.
    #[arg(long, value_name = "DIR")]
    itf: Option<std::path::PathBuf>,
    /// The mutant strategy adds fixtures until every host mutant is killed by this many.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=100))]
    kills: u32,
    /// Also write the mutant strategy's kill counts here, the weakest first.
    #[arg(long, value_name = "FILE")]
    kill_matrix: Option<std::path::PathBuf>,
}

#[derive(clap::Args)]
struct ConformArgs {
    /// The adapter command, run with `sh -c`.
    #[arg(long, value_name = "CMD", required_unless_present = "host", conflicts_with = "host")]
    adapter: Option<String>,
    /// Judge a real host black-box instead (SPEC.md §11.5): run it with `sh -c` on a stage where
    /// the kit plays its MCP servers and its language model, configured from `MCP_CONFIG` and
    /// `ANTHROPIC_BASE_URL` / `OPENAI_BASE_URL`, driven by JSON lines on stdin.
    #[arg(long, value_name = "CMD")]
    host: Option<String>,
    /// With --adapter: judge only what a black-box run could see of the host (SPEC.md §11.5):
    /// its catalogue only while a model request waits, the notices of its last offer.
    #[arg(long, conflicts_with = "host")]
    seen_on_the_wire: bool,
    /// With --host: how the host reaches the connectors' servers.
    #[arg(long, value_enum, conflicts_with = "adapter", default_value_t = WireTransport::Stdio)]
    transport: WireTransport,
    /// With --host: the protocol revisions the kit's servers speak. `2026-07-28` adds the stateless
    /// revision, which a host that speaks it picks (SPEC.md §11.5).
    #[arg(long, value_enum, conflicts_with = "adapter", default_value_t = WireRevision::Handshake)]
    revision: WireRevision,
    /// With --host: the `ttlMs` a fixture's `long` TTL is played as (default an hour, so a TTL
    /// never runs out: such fixtures are not run). Shorter, the runner plays a TTL running out by
    /// waiting that long after the list reached the host (SPEC.md §11.5).
    #[arg(long, conflicts_with = "adapter", default_value_t = coherence_wire::conform::LONG_TTL_MS, value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    ttl_ms: u64,
    /// With --host: play a `tools/list` that never returns by waiting this long (ms) after the
    /// host sent it for the host to give it up (by default such fixtures are not run): a host
    /// whose own timeout is longer is judged as one that has none (SPEC.md §11.5).
    #[arg(long, conflicts_with = "adapter", value_parser = clap::value_parser!(u64).range(100..=600_000))]
    hang_ms: Option<u64>,
    /// With --host: a JSON file of the phrases that make a line a notice or an error
    /// (`{"recovery": [...], "error": [...]}`); default: the kit's own.
    #[arg(long, value_name = "FILE", conflicts_with = "adapter")]
    phrases: Option<std::path::PathBuf>,
    /// With --host: how long (ms) nothing new must happen on any wire before the host is taken to
    /// have done what an input made it do.
    #[arg(long, default_value_t = 150, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    quiet_ms: u64,
    /// With --host: always wait out the whole quiet. By default a wait ends once a sixth of it
    /// has passed if the operating system shows that the host cannot act on its own:
    /// every thread waiting on input, or on a timer due after the quiet, twice with nothing run
    /// between (Linux on x86-64; SPEC.md §11.5, "Pacing").
    #[arg(long, conflicts_with = "adapter")]
    quiet_only: bool,
    /// With --host: how long (ms) the host may take to start, that is to connect to every
    /// connector (an interpreter's imports count).
    #[arg(long, conflicts_with = "adapter", default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(100..=600_000))]
    startup_ms: u64,
    /// The fixture directory.
    #[arg(long, value_name = "DIR", default_value = "fixtures")]
    fixtures: std::path::PathBuf,
    /// Replay only the fixture with this id (repeatable).
    #[arg(long = "fixture", value_name = "ID")]
    only: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Also write a JUnit XML report here.
    #[arg(long, value_name = "FILE")]
    junit: Option<std::path::PathBuf>,
    /// How long the adapter may take to answer one input.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    timeout_ms: u64,
    /// No fixture starts later than this many seconds after the run began; the rest are errors.
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=604_800))]
    deadline: u64,
    /// Stop after the adapter fails this many fixtures in a row; the rest are errors.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_adapter_failures: u64,
    /// Replay this many fixtures at once, each worker with hosts (adapter processes, or stages
    /// with a host process each) of its own; the report is the same, in the fixtures' order.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    jobs: u64,
}

/// How a host reaches the connectors' servers in a black-box run.
#[derive(Clone, Copy, ValueEnum)]
enum WireTransport {
    /// Streamable HTTP on 127.0.0.1.
    Http,
    /// stdio: the host spawns `coherence mcp-server --relay`.
    Stdio,
}

/// The protocol revisions the kit's servers speak in a black-box run.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum WireRevision {
    /// The handshake revisions, 2025-03-26 to 2025-11-25.
    #[value(name = "2025")]
    Handshake,
    /// 2026-07-28 as well.
    #[value(name = "2026-07-28")]
    Stateless,
}

impl From<WireTransport> for coherence_wire::stage::Transport {
    fn from(t: WireTransport) -> Self {
        match t {
            WireTransport::Http => coherence_wire::stage::Transport::Http,
            WireTransport::Stdio => coherence_wire::stage::Transport::Stdio,
        }
    }
}

#[derive(clap::Args)]
struct RefAdapterArgs {
    /// The policy whose host logic answers.
    #[arg(long, default_value = "recommended")]
    policy: String,
    /// Plant this defect in the policy's host logic (`coherence mutants` lists them).
    #[arg(long, value_name = "NAME")]
    mutant: Option<String>,
    /// Declare no commands (no /mcp, restart or in-session authentication), as a black-box run
    /// does: with it, adapter mode replays what `ref-host` is asked on the wire.
    #[arg(long)]
    no_commands: bool,
}

#[derive(clap::Args)]
struct MutantsArgs {
    /// The policy whose host logic the mutants change.
    #[arg(long, default_value = "recommended")]
    policy: String,
    /// Only this mutant (repeatable); default: every mutant.
    #[arg(long = "mutant", value_name = "NAME")]
    mutants: Vec<String>,
    /// Classify every mutant with the checker: equivalent, allowed by SPEC.md, or a defect.
    #[arg(long)]
    classify: bool,
    /// Replay these fixtures through every mutant and print the kill matrix, the weakest kills
    /// first (implies --classify).
    #[arg(long, value_name = "DIR")]
    fixtures: Option<std::path::PathBuf>,
    /// With --fixtures: fail unless every defect is killed by at least this many fixtures.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    min_kills: u32,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Threads.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    threads: u16,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(clap::Args)]
struct ExplainArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The invariant, as SPEC.md §6 names it (`INV-1`).
    #[arg(long, value_name = "ID")]
    invariant: String,
    /// `text`: the story; `mermaid`: a sequence diagram; `markdown`: both, with the invariant's
    /// text from SPEC.md.
    #[arg(long, value_enum, default_value = "text")]
    format: coherence::explain::Format,
}

#[derive(clap::Args)]
struct PoliciesArgs {
    /// `text`: names and summaries; `toml` or `json`: every choice, as a host design file.
    #[arg(long, value_enum, default_value = "text")]
    format: PoliciesFormat,
    /// Only this policy (repeatable); default: every policy, the broken ones last.
    #[arg(long = "policy", value_name = "NAME")]
    policies: Vec<String>,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum PoliciesFormat {
    Text,
    Toml,
    Json,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum ServersArg {
    /// Any server: silent, unadvertised or advertised; notifications may be lost or late.
    Any,
    /// Servers that meet SPEC.md's requirements S-1 and S-2 (SPEC.md §7.2).
    Reliable,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum RevisionsArg {
    /// The 2025 revisions.
    Handshake,
    /// 2026-07-28.
    Stateless,
    /// Either, connector by connector.
    Mixed,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum ContextsArg {
    /// Every session is the one account's.
    One,
    /// Session `cli` is the account's, the others a second user's (SPEC.md §2.6).
    Two,
}

/// The model a command checks: its policies, bounds and fault kinds.
#[derive(clap::Args)]
struct ModelArgs {
    /// Check only this policy (repeatable); default: every policy of the design space.
    #[arg(long = "policy", value_name = "NAME")]
    policies: Vec<String>,
    /// Check the host designs of this file (TOML, or JSON if it ends in .json; SPEC.md §5,
    /// `coherence policies --format toml` prints the built-in ones), after the policies of
    /// --policy if any, instead of the design space otherwise. Their rows are not compared with
    /// SPEC.md §7.
    #[arg(long, value_name = "FILE")]
    host_design: Option<std::path::PathBuf>,
    /// Also check the deliberately broken policies kept to show every invariant can fail.
    #[arg(long)]
    include_broken: bool,
    /// The bounds to start from: `default` (SPEC.md §4) or `deep`; the flags below override them.
    #[arg(long, value_enum, default_value = "default")]
    profile: Profile,
    /// Which servers the model admits.
    #[arg(long, value_enum, default_value = "any")]
    servers: ServersArg,
    /// The protocol revisions the servers speak: `handshake` (2025: initialize, transport
    /// sessions, pushed list_changed), `stateless` (2026-07-28: listen streams, TTLs), or `mixed`
    /// (each connector either).
    #[arg(long, value_enum, default_value = "handshake")]
    revisions: RevisionsArg,
    /// The authorization contexts: `one` (every session the account's) or `two` (a second user
    /// behind the same host or gateway; the bounds become SPEC.md §4.1's two-context ones).
    #[arg(long, value_enum, default_value = "one")]
    contexts: ContextsArg,
    /// Connectors on the account (1-4).
    #[arg(long)]
    connectors: Option<u8>,
    /// Concurrent host sessions (1-3).
    #[arg(long)]
    sessions: Option<u8>,
    /// User turns over the whole run (1-6).
    #[arg(long)]
    turns: Option<u8>,
    /// Auth changes: web authenticate or revoke, token expiry, in-session authentication, silent
    /// token refresh (0-6).
    #[arg(long)]
    auth_changes: Option<u8>,
    /// Injected faults (0-6).
    #[arg(long)]
    faults: Option<u8>,
    /// User commands: /mcp and restarts (0-6).
    #[arg(long)]
    commands: Option<u8>,
    /// Leave this kind of fault out of the model (repeatable; SPEC.md §3 spells the names, e.g.
    /// ServeLate). The verdicts are then not compared with SPEC.md §7.
    #[arg(long = "without-fault", value_name = "KIND")]
    without_faults: Vec<String>,
    /// Admit this kind of fault although `--servers reliable` rules it out (repeatable).
    #[arg(long = "with-fault", value_name = "KIND")]
    with_faults: Vec<String>,
    /// Leave out the agent completing a connector's authentication handshake inside a turn
    /// (AgentCompleteAuthentication, SPEC.md §4.1). The verdicts are then not compared with
    /// SPEC.md §7.
    #[arg(long)]
    no_agent_handshake: bool,
    /// Turn symmetry reduction off.
    #[arg(long)]
    no_symmetry: bool,
    /// Every server of this kind alone (with `--revisions stateless`): `advertised` (notifies on
    /// listen streams) or `silent`, with a `long` or `zero` TTL, e.g. `silent,long` (SPEC.md
    /// §7.4's server finding). The verdicts are then not compared with SPEC.md §7.
    #[arg(long, value_name = "NOTIFY,TTL", value_parser = ServerKind::parse)]
    server_kind: Option<ServerKind>,
}

#[derive(clap::Args)]
struct ServerFindingArgs {
    /// Policies checked at once.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    threads: u16,
}

#[derive(clap::Args)]
struct CheckArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Print the verdict table as SPEC.md §7 writes it (checks both profiles).
    #[arg(long)]
    write_table: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Threads searching each policy, two policies at a time (the output is the same whatever the
    /// number).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    threads: u16,
    /// Leave wall-clock times out, so that two runs print the same bytes.
    #[arg(long)]
    no_timing: bool,
    /// Read the expected verdict table from this file instead of the SPEC.md built in.
    #[arg(long, value_name = "PATH")]
    spec: Option<std::path::PathBuf>,
    /// Tell states apart by the whole state, the event of the step that led to it included: the
    /// search without SPEC.md §4.3's reduction. Slower, more states; the same verdicts and the
    /// same lengths of counterexamples.
    #[arg(long)]
    whole_states: bool,
    /// Keep each search's frontier and paths in files in DIR instead of memory (unlinked as soon
    /// as made, so nothing is left behind): memory then holds the visited set and a few MB, for
    /// bounds whose frontier does not fit. The same output, slower. DIR on a disk, not a tmpfs.
    #[arg(long, value_name = "DIR")]
    spill: Option<std::path::PathBuf>,
}

#[derive(clap::Args)]
struct ReportArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The directory to write `index.html` to (made if missing).
    #[arg(long, value_name = "DIR")]
    out: std::path::PathBuf,
    /// Also check the same policies at the deep profile and mark the cells whose verdict differs
    /// there (about 10 minutes for every policy on 2 cores).
    #[arg(long)]
    deep: bool,
    /// Threads searching each policy, two policies at a time.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    threads: u16,
    /// Leave wall-clock times out, so that two runs write the same bytes.
    #[arg(long)]
    no_timing: bool,
}

#[derive(clap::Args)]
struct ExploreArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The port to serve on, on 127.0.0.1.
    #[arg(long, default_value_t = 3000)]
    port: u16,
}

fn main() -> ExitCode {
    // A closed stdout (`coherence check | head`) ends the program quietly, as it does for `cat`.
    std::panic::set_hook(Box::new(|info| {
        let message = info.payload().downcast_ref::<String>().map(String::as_str).unwrap_or("");
        if message.contains("Broken pipe") {
            std::process::exit(0);
        }
        eprintln!("coherence: internal error: {info}");
    }));
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("coherence: error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Policies(args) => {
            let policies = named_policies(&args.policies)?;
            let policies = if args.policies.is_empty() {
                POLICIES.iter().chain(BROKEN_POLICIES).copied().collect()
            } else {
                policies
            };
            let format = match args.format {
                PoliciesFormat::Toml => coherence::design::Format::Toml,
                PoliciesFormat::Json => coherence::design::Format::Json,
                PoliciesFormat::Text => {
                    for policy in &policies {
                        let tag = if policy.broken { " (broken, for tests)" } else { "" };
                        println!("{}{tag}\n    {}", policy.name, policy.summary);
                    }
                    return Ok(ExitCode::SUCCESS);
                }
            };
            emit(&coherence::design::render(&policies, format))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check(args) => check(args),
        Command::ServerFinding(args) => {
            let rows = coherence::finding::compute(usize::from(args.threads));
            emit(&coherence::finding::markdown(&rows))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Swarm(SwarmCommand::Run(args)) => swarm_run(args),
        Command::Swarm(SwarmCommand::Merge { reports }) => swarm_merge(&reports),
        Command::Gen(args) => generate(args),
        Command::ModelEndpoint(args) => model_endpoint(args),
        Command::McpServer(args) => mcp_server(args),
        Command::Conform(args) => conform(args),
        Command::RefAdapter(args) => ref_adapter(args),
        Command::Mutants(args) => mutants(args),
        Command::Explain(args) => explain(args),
        Command::Report(args) => report_page(args),
        Command::Explore(args) => explore(args),
        Command::Schema { out } => {
            std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
            for (name, text) in coherence_sim::schema::all() {
                let path = out.join(name);
                std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
            }
            println!("schema: wrote {} schemas to {}", coherence_sim::schema::all().len(), out.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn named_policy(name: &str) -> Result<HostPolicy> {
    policy_named(name).ok_or_else(|| {
        let known: Vec<&str> = POLICIES.iter().chain(BROKEN_POLICIES).map(|p| p.name).collect();
        anyhow::anyhow!("unknown policy `{name}`; known policies: {}", known.join(", "))
    })
}

fn named_mutant(name: &str) -> Result<coherence_model::Mutant> {
    coherence_model::Mutant::named(name).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown mutant `{name}`; `coherence mutants` lists them (site/operator, e.g. relist-on-notify/drop)"
        )
    })
}

fn mutants(args: MutantsArgs) -> Result<ExitCode> {
    use coherence_sim::mutants as m;
    let policy = named_policy(&args.policy)?;
    let chosen = if args.mutants.is_empty() {
        coherence_model::Mutant::all()
    } else {
        args.mutants.iter().map(|n| named_mutant(n)).collect::<Result<Vec<_>>>()?
    };
    let threads = usize::from(args.threads);
    if !args.classify && args.fixtures.is_none() {
        match args.format {
            Format::Text => emit(&m::listing_text(policy, &chosen))?,
            Format::Json => emit(&m::listing_json(policy, &chosen))?,
        }
        return Ok(ExitCode::SUCCESS);
    }
    let fixtures = args.fixtures.as_deref().map(coherence::conform::read_fixtures).transpose()?;
    let classified = m::classify(policy, &chosen, threads);
    let kills = fixtures.as_deref().map(|f| m::kills(policy, &chosen, f, threads));
    let min_kills = args.min_kills as usize;
    match args.format {
        Format::Text => emit(&m::text(policy, &classified, kills.as_deref(), min_kills))?,
        Format::Json => emit(&m::json(policy, &classified, kills.as_deref()))?,
    }
    let weak = kills.as_deref().map_or(Vec::new(), |k| m::weak_defects(&classified, k, min_kills));
    Ok(if weak.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn generate(args: GenArgs) -> Result<ExitCode> {
    use coherence_sim::generate::Shard;
    use coherence_sim::shards::{self, Part};
    if !args.merge.is_empty() {
        let mut parts = Vec::with_capacity(args.merge.len());
        for dir in &args.merge {
            if std::path::absolute(dir).ok() == std::path::absolute(&args.out).ok() {
                bail!("--out {} is one of the parts: merge into another directory", args.out.display());
            }
            parts.push(Part::read(dir).map_err(anyhow::Error::msg)?);
        }
        let corpus = shards::merge(parts, 2).map_err(anyhow::Error::msg)?;
        return write_corpus(&corpus, &args);
    }
    let settings = match args.tier {
        Tier::Deep if args.strategy != Strategy::All || args.kill_matrix.is_some() => {
            bail!("--tier deep is deep walks only: it takes no --strategy or --kill-matrix")
        }
        Tier::Deep => shards::Settings {
            tier: shards::Tier::Deep,
            strategies: Vec::new(),
            seed: args.seed,
            walks: args.walks,
            kills: args.kills,
        },
        Tier::Standard => {
            let strategies = match args.strategy {
                Strategy::All => shards::Strategy::ALL.to_vec(),
                Strategy::Counterexample => vec![shards::Strategy::Counterexample],
                Strategy::Walk => vec![shards::Strategy::Walk],
                Strategy::Coverage => vec![shards::Strategy::Coverage],
                Strategy::Scenario => vec![shards::Strategy::Scenario],
                Strategy::Mutant => vec![shards::Strategy::Mutant],
            };
            if args.kill_matrix.is_some() && !strategies.contains(&shards::Strategy::Mutant) {
                bail!("--kill-matrix needs the mutant strategy (--strategy mutant or all)");
            }
            shards::Settings {
                tier: shards::Tier::Standard,
                strategies,
                seed: args.seed,
                walks: args.walks,
                kills: args.kills,
            }
        }
    };
    let Some(text) = &args.shard else {
        let corpus = shards::generate(&settings, &args.scenarios, 2).map_err(anyhow::Error::msg)?;
        return write_corpus(&corpus, &args);
    };
    if args.itf.is_some() || args.kill_matrix.is_some() {
        bail!("--itf and --kill-matrix go with --merge: a shard writes a part, not the corpus");
    }
    let shard = Shard::parse(text).map_err(anyhow::Error::msg)?;
    let items = shards::share(&settings, shard);
    let part = shards::run(&settings, shard, &items, &args.scenarios, 2).map_err(anyhow::Error::msg)?;
    part.write(&args.out).map_err(anyhow::Error::msg)?;
    let candidates: usize = part.candidates.iter().map(|c| c.found.len()).sum();
    println!(
        "gen: shard {text}: {} items ({} estimated core-seconds of {}); wrote {} fixtures and {candidates} candidates of {} host mutants to {}",
        items.len(),
        items.iter().map(|i| u64::from(i.cost())).sum::<u64>(),
        shards::items(&settings).iter().map(|i| u64::from(i.cost())).sum::<u64>(),
        part.fixtures.len(),
        part.candidates.len(),
        args.out.display()
    );
    println!(
        "gen: merge the parts of shards 1/{0} to {0}/{0} with `coherence gen --merge DIR... --out DIR`",
        shard.count
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes a generated corpus as `gen` was asked to, and reports on it.
fn write_corpus(corpus: &coherence_sim::shards::Corpus, args: &GenArgs) -> Result<ExitCode> {
    let fixtures = &corpus.fixtures;
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    for fixture in fixtures {
        let path = args.out.join(fixture.file_name());
        std::fs::write(&path, fixture.to_json()).with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!("gen: wrote {} fixtures to {}", fixtures.len(), args.out.display());
    if corpus.settings.tier == coherence_sim::shards::Tier::Deep && !fixtures.is_empty() {
        let steps: Vec<usize> = fixtures.iter().map(|f| f.steps.len()).collect();
        let long = steps.iter().filter(|&&n| n >= 100).count();
        println!(
            "gen: deep tier: {} to {} steps ({} on average); {long} of {} walks have 100 steps or more",
            steps.iter().min().unwrap_or(&0),
            steps.iter().max().unwrap_or(&0),
            steps.iter().sum::<usize>() / steps.len(),
            steps.len()
        );
    }
    if let Some(dir) = &args.itf {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for fixture in fixtures {
            let itf = coherence_sim::itf::to_itf(fixture).map_err(anyhow::Error::msg)?;
            let path = dir.join(fixture.file_name().replace(".json", ".itf.json"));
            std::fs::write(&path, serde_json::to_string_pretty(&itf)? + "\n")
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        println!("gen: wrote {} ITF traces to {}", fixtures.len(), dir.display());
    }
    if let Some(found) = &corpus.kills {
        let kills = corpus.settings.kills as usize;
        let matrix = coherence_sim::generate::kill_matrix(found, kills);
        if let Some(path) = &args.kill_matrix {
            std::fs::write(path, &matrix).with_context(|| format!("cannot write {}", path.display()))?;
        }
        let weak: Vec<_> = found.iter().filter(|m| m.total() < kills).collect();
        println!(
            "gen: mutants: {} of {} host mutants are killed by at least {kills} fixtures; the mutant strategy added {}",
            found.len() - weak.len(),
            found.len(),
            found.iter().map(|m| m.added).sum::<usize>()
        );
        for m in weak {
            println!(
                "gen: mutants: {} is killed by {} (no other of {} walks, nor a breadth-first search at the classifying bounds, found a fixture that fails it; `coherence mutants --classify --mutant {}` says whether one can)",
                m.mutant,
                m.total(),
                m.walks,
                m.mutant
            );
        }
    }
    if let Some(c) = &corpus.cover {
        println!(
            "gen: coverage: {} traces cover the reachable abstract transitions of recommended at the default bounds \
             and, for MCP 2026-07-28, at one connector; the fixtures written cover {} of {} ({:.1}%)",
            c.traces,
            c.covered,
            c.reachable,
            100.0 * c.covered as f64 / c.reachable as f64
        );
        if c.walks > 0 {
            println!(
                "gen: coverage: the {} random walks alone cover {} ({:.1}%)",
                c.walks,
                c.by_walks,
                100.0 * c.by_walks as f64 / c.reachable as f64
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn model_endpoint(args: ModelEndpointArgs) -> Result<ExitCode> {
    use coherence_wire::endpoint::{Limits, ModelEndpoint};
    use coherence_wire::model_api::{ModelRequest, Reply, added_text};
    let reply = match args.reply.split_once(':') {
        Some(("text", words)) => Reply::Text { text: words.to_owned() },
        Some(("call", tool)) if !tool.is_empty() => {
            Reply::ToolCall { name: tool.to_owned(), input: serde_json::json!({}) }
        }
        _ => bail!("--reply `{}` is neither `text:WORDS` nor `call:TOOL`", args.reply),
    };
    let previous: std::sync::Mutex<Option<ModelRequest>> = std::sync::Mutex::new(None);
    let (seen, answered) = std::sync::mpsc::channel::<()>();
    let seen = std::sync::Mutex::new(seen);
    let responder = move |request: &ModelRequest, index: usize| {
        let mut previous = previous.lock().expect("one request at a time");
        let line = serde_json::json!({
            "index": index,
            "api": request.api,
            "model": request.model,
            "stream": request.stream,
            "tools": request.tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            "added": added_text(previous.as_ref(), request),
        });
        let _ = emit(&(line.to_string() + "\n"));
        *previous = Some(request.clone());
        let _ = seen.lock().expect("sender").send(());
        reply.clone()
    };
    let requests = args.requests.map_or(usize::MAX, |n| n as usize);
    let limits = Limits { requests, ..Limits::DEFAULT };
    let endpoint = ModelEndpoint::start_on(args.port, responder, limits)
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
    eprintln!(
        "model-endpoint: listening on {0} (Anthropic SDKs: base URL {0}; OpenAI-compatible: {0}/v1)",
        endpoint.base_url()
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(args.seconds);
    let mut count = 0;
    while count < requests {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if answered.recv_timeout(left).is_err() {
            break;
        }
        count += 1;
    }
    // Let the last answer reach the host before the server goes.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let log = endpoint.log();
    eprintln!(
        "model-endpoint: {} model requests answered, {} refused, {} other requests{}",
        log.exchanges.len(),
        log.refused,
        log.others.len(),
        if log.others.is_empty() { String::new() } else { format!(": {}", log.others.join(", ")) }
    );
    Ok(ExitCode::SUCCESS)
}

/// `coherence mcp-server --relay ADDR`: stdin to the server's socket, the socket to stdout, until
/// either ends. When the server ends the connection, the process exits at once, as a server
/// process that dies does.
fn mcp_relay(addr: std::net::SocketAddr, connector: &str) -> Result<ExitCode> {
    use std::io::{BufRead, Write};
    let socket = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(10))
        .with_context(|| format!("cannot reach the server's relay socket at {addr}"))?;
    // A message a line, each sent at once (no Nagle delay behind the server's delayed ACK).
    socket.set_nodelay(true).context("cannot set TCP_NODELAY on the relay socket")?;
    let mut to_server = socket.try_clone().context("cannot clone the relay socket")?;
    let hello = serde_json::json!({ "relay": coherence_wire::mcp::RELAY, "connector": connector });
    writeln!(to_server, "{hello}").context("cannot greet the server")?;
    std::thread::spawn(move || {
        let mut out = std::io::stdout().lock();
        for line in std::io::BufReader::new(socket).lines().map_while(std::result::Result::ok) {
            if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                break;
            }
        }
        std::process::exit(0);
    });
    for line in std::io::stdin().lock().lines() {
        let line = line.context("cannot read stdin")?;
        if writeln!(to_server, "{line}").is_err() {
            break;
        }
    }
    // The host closed stdin: the server process ends.
    let _ = to_server.shutdown(std::net::Shutdown::Both);
    Ok(ExitCode::SUCCESS)
}

fn mcp_server(args: McpServerArgs) -> Result<ExitCode> {
    use coherence_wire::mcp::{Behaviour, CacheHint, CacheScope, McpServer, Protection, Tool};
    if let Some(addr) = args.relay {
        return mcp_relay(addr, &args.connector);
    }
    let behaviour = Behaviour {
        declares_list_changed: !args.silent,
        sends_list_changed: !args.silent,
        page_size: args.page_size.map(|n| n as usize),
        notifies_on_authentication: !args.silent,
        modern: args.modern.then_some(CacheHint {
            ttl_ms: args.ttl_ms,
            scope: match args.cache_scope {
                Scope::Public => CacheScope::Public,
                Scope::Private => CacheScope::Private,
            },
        }),
    };
    let protection = if args.oauth { Protection::OAuth } else { Protection::Open };
    let connector = args.connector.as_str();
    let first = match args.tools {
        FirstList::Stubs => Tool::stubs(connector),
        FirstList::Actions => Tool::actions(connector),
    };
    let server = McpServer::start_on(args.port, connector, first, behaviour, protection)
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
    eprintln!("mcp-server: {connector} listening on {}", server.url());
    // Commands arrive on a thread of their own, so that the deadline holds while stdin is quiet.
    let (lines, commands) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines().map_while(std::result::Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(args.seconds);
    let mut printed = 0;
    let mut print_new = |server: &McpServer| -> Result<()> {
        let seen = server.seen();
        for event in &seen[printed..] {
            emit(&(serde_json::to_string(event)? + "\n"))?;
        }
        printed = seen.len();
        Ok(())
    };
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break;
        }
        let command = match commands.recv_timeout(left.min(std::time::Duration::from_millis(100))) {
            Ok(command) => command,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                print_new(&server)?;
                continue;
            }
            // Stdin closed: serve on until the deadline.
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                std::thread::sleep(left.min(std::time::Duration::from_millis(100)));
                print_new(&server)?;
                continue;
            }
        };
        match command.trim() {
            "actions" => server.set_tools(Tool::actions(connector)),
            "stubs" => server.set_tools(Tool::stubs(connector)),
            "notify" => eprintln!("mcp-server: list_changed sent on {} streams", server.notify_list_changed()),
            "grant" => server.grant(),
            "revoke" => server.revoke(),
            "expire" => server.expire_tokens(),
            "lose" => server.lose_sessions(),
            "end-listens" => eprintln!("mcp-server: {} listen streams ended", server.end_listens()),
            "quit" => break,
            "" => {}
            other => eprintln!(
                "mcp-server: unknown command `{other}`: use actions, stubs, notify, grant, revoke, expire, lose, end-listens or quit"
            ),
        }
        print_new(&server)?;
    }
    print_new(&server)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes a report to stdout. A reader that stops early (`| head`) closes the pipe: the rest of the
/// report goes nowhere, and the exit code still says what happened.
fn emit(text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}

fn conform(args: ConformArgs) -> Result<ExitCode> {
    use coherence::conform as c;
    use coherence_sim::adapter::ProcessHost;
    // A report that cannot be written fails now, not after the run.
    if let Some(path) = &args.junit {
        std::fs::File::create(path).with_context(|| format!("cannot write the JUnit report to {}", path.display()))?;
    }
    let mut fixtures = c::read_fixtures(&args.fixtures)?;
    if !args.only.is_empty() {
        for id in &args.only {
            if !fixtures.iter().any(|f| &f.id == id) {
                bail!("no fixture with id `{id}` under {}", args.fixtures.display());
            }
        }
        fixtures.retain(|f| args.only.contains(&f.id));
    }
    let timeout = std::time::Duration::from_millis(args.timeout_ms);
    let limits = c::Limits {
        deadline: Some(std::time::Instant::now() + std::time::Duration::from_secs(args.deadline)),
        consecutive_failures: args.max_adapter_failures as usize,
        // A black-box run takes seconds a fixture: say how it goes.
        progress: args.host.is_some(),
        jobs: args.jobs as usize,
    };
    let (subject, results) = match (&args.adapter, &args.host) {
        (Some(command), None) => {
            let lens = args.seen_on_the_wire;
            let results = c::conform(fixtures, limits, || {
                let host = ProcessHost::spawn(command, timeout).map_err(|e| anyhow::anyhow!("{e}"))?;
                Ok(if lens {
                    Box::new(coherence_sim::host::SeenOnTheWire::new(host)) as Box<dyn coherence_sim::host::Host>
                } else {
                    Box::new(host)
                })
            })?;
            let subject = if lens { c::Subject::AdapterSeenOnTheWire } else { c::Subject::Adapter };
            (subject(command.clone()), results)
        }
        (None, Some(command)) => {
            use coherence_wire::conform::{WireHost, WireOptions};
            let phrases = match &args.phrases {
                None => coherence_wire::reading::Phrases::standard(),
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("cannot read the phrases file {}", path.display()))?;
                    coherence_wire::reading::Phrases::from_json(&text)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
                }
            };
            let options = WireOptions {
                command: command.clone(),
                transport: args.transport.into(),
                relay: std::env::current_exe().context("cannot find the coherence binary for the stdio relay")?,
                pacing: coherence_wire::stage::Pacing {
                    quiet: std::time::Duration::from_millis(args.quiet_ms),
                    deadline: timeout,
                    startup: std::time::Duration::from_millis(args.startup_ms),
                    probe: !args.quiet_only,
                },
                phrases,
                revision: match args.revision {
                    WireRevision::Handshake => coherence_wire::conform::Revision::Handshake,
                    WireRevision::Stateless => coherence_wire::conform::Revision::Stateless,
                },
                ttl_ms: args.ttl_ms,
                hang_ms: args.hang_ms,
            };
            let results = c::conform(fixtures, limits, || {
                Ok(Box::new(WireHost::new(options.clone())) as Box<dyn coherence_sim::host::Host>)
            })?;
            let transport = args.transport.to_possible_value().expect("no variant is skipped").get_name().to_owned();
            let revision = (args.revision != WireRevision::Handshake)
                .then(|| args.revision.to_possible_value().expect("no variant is skipped").get_name().to_owned());
            let ttl_ms = (args.ttl_ms != coherence_wire::conform::LONG_TTL_MS).then_some(args.ttl_ms);
            let hang_ms = args.hang_ms;
            (c::Subject::Host { command: command.clone(), transport, revision, ttl_ms, hang_ms }, results)
        }
        _ => unreachable!("clap requires exactly one of --adapter and --host"),
    };
    let code = if c::succeeded(&results) { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    // Report files first: a closed stdout must not cost the JUnit file.
    if let Some(path) = &args.junit {
        std::fs::write(path, c::junit(&results, &subject, &args.fixtures))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    match args.format {
        Format::Text => emit(&c::text(&results, &subject, &args.fixtures))?,
        Format::Json => emit(&c::json(&results, &subject, &args.fixtures))?,
    }
    Ok(code)
}

fn ref_adapter(args: RefAdapterArgs) -> Result<ExitCode> {
    use coherence_sim::adapter::LINE_BYTES_MAX;
    use coherence_sim::host::{Host, ReferenceHost};
    use coherence_sim::protocol::{Input, Output};
    use std::io::{BufRead, Read, Write};
    let mutant = args.mutant.as_deref().map(named_mutant).transpose()?;
    let mut policy = named_policy(&args.policy)?;
    if args.no_commands {
        policy.commands = coherence_model::policy::Commands { refresh: false, restart: false, authenticate: false };
    }
    let mut host = ReferenceHost::mutated(policy, mutant);
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut stdout = std::io::stdout().lock();
    loop {
        let mut line = Vec::new();
        let n = input.by_ref().take(LINE_BYTES_MAX as u64 + 1).read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(ExitCode::SUCCESS);
        }
        let text = String::from_utf8_lossy(&line);
        let (seq, output) = if line.len() > LINE_BYTES_MAX {
            // The rest of the line is part of the same input: skip it, so that it gets one answer.
            if line.last() != Some(&b'\n') {
                let mut rest = Vec::new();
                loop {
                    rest.clear();
                    let n = input.by_ref().take(LINE_BYTES_MAX as u64).read_until(b'\n', &mut rest)?;
                    if n == 0 || rest.last() == Some(&b'\n') {
                        break;
                    }
                }
            }
            (0, Output::Error { message: format!("input line over {LINE_BYTES_MAX} bytes") })
        } else {
            match coherence_sim::protocol::split_seq(&text) {
                Err(e) => (0, Output::Error { message: format!("not a protocol input: {e}") }),
                Ok((seq, value)) => match serde_json::from_value::<Input>(value) {
                    Ok(input) => {
                        (seq, host.handle(&input).unwrap_or_else(|e| Output::Error { message: e.to_string() }))
                    }
                    Err(e) => (seq, Output::Error { message: format!("not a protocol input: {e}") }),
                },
            }
        };
        writeln!(stdout, "{}", coherence_sim::protocol::output_line(&output, seq))?;
        stdout.flush()?;
    }
}

/// The chosen policies, the bounds and the fault kinds.
/// The built-in policies of these names.
fn named_policies(names: &[String]) -> Result<Vec<HostPolicy>> {
    let mut chosen = Vec::new();
    for name in names {
        let Some(policy) = policy_named(name) else {
            let known: Vec<&str> = POLICIES.iter().chain(BROKEN_POLICIES).map(|p| p.name).collect();
            bail!("unknown policy `{name}`; known policies: {}", known.join(", "));
        };
        chosen.push(policy);
    }
    Ok(chosen)
}

/// The host designs of a file.
fn host_designs(path: &std::path::Path) -> Result<Vec<HostPolicy>> {
    let size = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?.len();
    if size > coherence::design::BYTES_MAX {
        bail!("{}: {size} bytes is over the {} a host design may take", path.display(), coherence::design::BYTES_MAX);
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    coherence::design::parse(&text, coherence::design::Format::of(path))
        .map_err(|e| anyhow::anyhow!("{} is not a host design: {e}", path.display()))
}

fn chosen_model(args: &ModelArgs) -> Result<(Vec<HostPolicy>, Bounds, Faults)> {
    let servers = match args.servers {
        ServersArg::Any => Servers::Any,
        ServersArg::Reliable => Servers::Reliable,
    };
    let revisions = match args.revisions {
        RevisionsArg::Handshake => Revisions::Handshake,
        RevisionsArg::Stateless => Revisions::Stateless,
        RevisionsArg::Mixed => Revisions::Mixed,
    };
    let base = Bounds { revisions, ..args.profile.bounds(servers) };
    let base = match args.contexts {
        ContextsArg::One => base,
        ContextsArg::Two => base.with_two_contexts(),
    };
    let bounds = Bounds {
        connectors: args.connectors.unwrap_or(base.connectors),
        sessions: args.sessions.unwrap_or(base.sessions),
        turns: args.turns.unwrap_or(base.turns),
        auth_changes: args.auth_changes.unwrap_or(base.auth_changes),
        faults: args.faults.unwrap_or(base.faults),
        commands: args.commands.unwrap_or(base.commands),
        symmetry: !args.no_symmetry,
        servers,
        revisions,
        contexts: base.contexts,
    };
    bounds.validate().context("impossible bounds")?;
    if args.server_kind.is_some() && revisions != Revisions::Stateless {
        bail!("--server-kind sets what every 2026-07-28 server does: give --revisions stateless");
    }
    let mut faults = Faults::admitted_by(servers);
    for (names, with) in [(&args.without_faults, false), (&args.with_faults, true)] {
        for name in names {
            let Some(fault) = Fault::named(name) else {
                let known: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
                bail!("unknown fault kind `{name}`; known kinds: {}", known.join(", "));
            };
            faults = if with { faults.with(fault) } else { faults.without(fault) };
        }
    }
    let mut policies: Vec<HostPolicy> = if args.policies.is_empty() && args.host_design.is_none() {
        let broken = if args.include_broken { BROKEN_POLICIES } else { &[] };
        POLICIES.iter().chain(broken).copied().collect()
    } else {
        named_policies(&args.policies)?
    };
    if let Some(path) = &args.host_design {
        policies.extend(host_designs(path)?);
    }
    Ok((policies, bounds, faults))
}

/// One model per policy, with the chosen bounds, fault kinds and handshake.
fn models_of(policies: &[HostPolicy], bounds: Bounds, faults: Faults, args: &ModelArgs) -> Vec<CoherenceModel> {
    policies
        .iter()
        .map(|&p| CoherenceModel {
            faults,
            agent_handshake: !args.no_agent_handshake,
            server_kind: args.server_kind,
            ..CoherenceModel::new(p, bounds)
        })
        .collect()
}

fn explain(args: ExplainArgs) -> Result<ExitCode> {
    let Some(invariant) = coherence_model::invariant(&args.invariant) else {
        let known: Vec<&str> = coherence_model::INVARIANTS.iter().map(|i| i.id).collect();
        bail!("unknown invariant `{}`; known: {}", args.invariant, known.join(", "));
    };
    let (policies, bounds, faults) = chosen_model(&args.model)?;
    let [policy] = policies[..] else {
        bail!("explain one policy: give one --policy NAME, or a --host-design FILE of one design");
    };
    let model = models_of(&[policy], bounds, faults, &args.model).remove(0);
    let report = coherence_model::explore::check_model(&model);
    let outcome =
        report.invariants.iter().find(|o| o.invariant.id == invariant.id).expect("every invariant is checked");
    if outcome.counterexample.is_none() {
        eprintln!(
            "explain: {} holds {} within these bounds ({} states): nothing to explain",
            policy.name, invariant.id, report.unique_states
        );
        return Ok(ExitCode::FAILURE);
    }
    let out = coherence::explain::render(&model, &report, invariant, args.format).expect("a counterexample");
    emit(&out)?;
    Ok(ExitCode::SUCCESS)
}

fn check(args: CheckArgs) -> Result<ExitCode> {
    let (policies, bounds, faults) = chosen_model(&args.model)?;
    let servers = bounds.servers;
    let spec = match &args.spec {
        None => SPEC.to_owned(),
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
    };
    let threads = usize::from(args.threads);
    let store = args.spill.clone().map_or(Store::Memory, Store::Disk);
    store.ready().context("--spill")?;
    if args.write_table {
        if args.model.host_design.is_some() {
            bail!("--write-table writes SPEC.md's table of the built-in policies: drop --host-design");
        }
        if args.whole_states {
            bail!("--write-table computes SPEC.md's table as it is recorded: drop --whole-states");
        }
        let configuration = coherence::expected::Configuration::of_model(bounds, faults);
        let Some(configuration) =
            configuration.filter(|_| !args.model.no_agent_handshake && args.model.server_kind.is_none())
        else {
            bail!(
                "--write-table writes SPEC.md's table, which admits the default fault kinds (or those and DeployTools), the agent handshake and every server: drop --without-fault, other --with-fault, --no-agent-handshake and --server-kind"
            );
        };
        if configuration.table_name().is_none() {
            bail!(
                "--write-table: SPEC.md has no table for these servers, revisions, contexts and faults (it has one for \
                 --revisions handshake or stateless, for --contexts two --revisions stateless --servers reliable, and for \
                 --with-fault DeployTools with any handshake servers)"
            );
        }
        let (revisions, contexts) = (bounds.revisions, bounds.contexts);
        let at = |profile: Profile| {
            let models = models_of(&policies, profile.bounds_with(servers, revisions, contexts), faults, &args.model);
            check_all_models_stored(&models, threads, Key::WithoutEvent, &store)
        };
        let default = at(Profile::Default)?;
        // The 2026-07-28, two-context and deploy tables record the default bounds alone: no deep marks.
        let deep = if configuration.recorded_at(Profile::Deep) { at(Profile::Deep)? } else { default.clone() };
        print!("{}", render_table(&default, &deep));
        return Ok(ExitCode::SUCCESS);
    }
    let models = models_of(&policies, bounds, faults, &args.model);
    let key = if args.whole_states { Key::Whole } else { Key::WithoutEvent };
    let reports = check_all_models_stored(&models, threads, key, &store)?;
    // Host designs have no row in SPEC.md: the built-in policies (first) are compared alone.
    let built_in = if args.model.host_design.is_some() { args.model.policies.len() } else { reports.len() };
    let differences =
        compare(&reports[..built_in], &spec).map_err(anyhow::Error::msg).context("the verdict table is malformed")?;
    let timing = if args.no_timing { Timing::Hidden } else { Timing::Shown };
    let out = match args.format {
        Format::Text => report::text(&reports, differences.as_deref(), timing),
        Format::Json => report::json(&reports, differences.as_deref(), timing),
    };
    let drifted = differences.is_some_and(|d| !d.is_empty());
    emit(&out)?;
    Ok(if drifted { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn swarm_run(args: SwarmRunArgs) -> Result<ExitCode> {
    let shard = coherence_sim::generate::Shard::parse(&args.task).map_err(|e| anyhow::anyhow!("--task: {e}"))?;
    let (policies, bounds, faults) = chosen_model(&args.model)?;
    let models = models_of(&policies, bounds, faults, &args.model);
    let plan = coherence_sim::swarm::Plan { seed: args.seed, walks: args.walks, depth: args.depth };
    let report = coherence_sim::swarm::run(&models, plan, shard);
    let text = serde_json::to_string_pretty(&report)? + "\n";
    match &args.out {
        Some(path) => std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?,
        None => emit(&text)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The largest task report `swarm merge` reads.
const SWARM_REPORT_BYTES_MAX: u64 = 64 << 20;

fn swarm_merge(paths: &[std::path::PathBuf]) -> Result<ExitCode> {
    let mut reports = Vec::with_capacity(paths.len());
    for path in paths {
        let size = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?.len();
        if size > SWARM_REPORT_BYTES_MAX {
            bail!("{}: {size} bytes is over the {SWARM_REPORT_BYTES_MAX} a task report may take", path.display());
        }
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let report: coherence_sim::swarm::TaskReport =
            serde_json::from_str(&text).with_context(|| format!("{} is not a swarm task report", path.display()))?;
        reports.push(report);
    }
    let union = coherence_sim::swarm::merge(&reports).map_err(anyhow::Error::msg).context("cannot merge")?;
    emit(&coherence_sim::swarm::text(&union))?;
    Ok(ExitCode::SUCCESS)
}

fn report_page(args: ReportArgs) -> Result<ExitCode> {
    let (policies, bounds, faults) = chosen_model(&args.model)?;
    let threads = usize::from(args.threads);
    let reports = check_all_models(&models_of(&policies, bounds, faults, &args.model), threads);
    let deep = args.deep.then(|| {
        let deep = Profile::Deep.bounds_with(bounds.servers, bounds.revisions, bounds.contexts);
        check_all_models(&models_of(&policies, deep, faults, &args.model), threads)
    });
    let built_in = if args.model.host_design.is_some() { args.model.policies.len() } else { reports.len() };
    let differences =
        compare(&reports[..built_in], SPEC).map_err(anyhow::Error::msg).context("the verdict table is malformed")?;
    let design = args.model.host_design.as_ref().map(|p| p.display().to_string());
    let page = coherence::html::page(&coherence::html::Page {
        reports: &reports,
        deep: deep.as_deref(),
        differences: differences.as_deref(),
        host_design: design.as_deref(),
        commit: env!("COHERENCE_COMMIT"),
        timing: if args.no_timing { Timing::Hidden } else { Timing::Shown },
    });
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot make {}", args.out.display()))?;
    let path = args.out.join("index.html");
    std::fs::write(&path, page).with_context(|| format!("cannot write {}", path.display()))?;
    let violated: usize =
        reports.iter().map(|r| r.invariants.iter().filter(|o| o.counterexample.is_some()).count()).sum();
    eprintln!("coherence report: {} policies, {violated} counterexamples: {}", reports.len(), path.display());
    Ok(ExitCode::SUCCESS)
}

fn explore(args: ExploreArgs) -> Result<ExitCode> {
    let (policies, bounds, faults) = chosen_model(&args.model)?;
    let [policy] = policies[..] else {
        bail!("explore one policy: give one --policy NAME, or a --host-design FILE of one design");
    };
    let model = models_of(&[policy], bounds, faults, &args.model).remove(0);
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], args.port));
    // Stateright's server panics on a port it cannot bind: find out first, and say so.
    drop(std::net::TcpListener::bind(address).with_context(|| format!("cannot listen on {address}"))?);
    eprintln!("coherence explore: {} at http://{address}/ (Ctrl-C stops)", policy.name);
    use stateright::Model as _;
    let _ = model.checker().serve(address);
    Ok(ExitCode::SUCCESS)
}
