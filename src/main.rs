//! The `coherence` binary: argument parsing, printing and exit codes.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use coherence::expected::{SPEC, compare, parse_table};
use coherence::report::{self, Timing};
use coherence_model::{BROKEN_POLICIES, Bounds, HostPolicy, POLICIES, check_all, policy_named};
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
    /// List the host policies.
    Policies,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(clap::Args)]
struct CheckArgs {
    /// Check only this policy (repeatable); default: every policy of the design space.
    #[arg(long = "policy", value_name = "NAME")]
    policies: Vec<String>,
    /// Also check the deliberately broken policies kept to show every invariant can fail.
    #[arg(long)]
    include_broken: bool,
    /// Connectors on the account (1-4).
    #[arg(long, default_value_t = Bounds::DEFAULT.connectors)]
    connectors: u8,
    /// Concurrent host sessions (1-3).
    #[arg(long, default_value_t = Bounds::DEFAULT.sessions)]
    sessions: u8,
    /// User turns over the whole run (1-6).
    #[arg(long, default_value_t = Bounds::DEFAULT.turns)]
    turns: u8,
    /// Auth changes: web authenticate or revoke, token expiry, in-session authentication (0-6).
    #[arg(long, default_value_t = Bounds::DEFAULT.auth_changes)]
    auth_changes: u8,
    /// Injected faults (0-6).
    #[arg(long, default_value_t = Bounds::DEFAULT.faults)]
    faults: u8,
    /// User commands: /mcp and restarts (0-6).
    #[arg(long, default_value_t = Bounds::DEFAULT.commands)]
    commands: u8,
    /// Turn symmetry reduction off.
    #[arg(long)]
    no_symmetry: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Policies checked at once.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    threads: u16,
    /// Leave wall-clock times out, so that two runs print the same bytes.
    #[arg(long)]
    no_timing: bool,
    /// Read the expected verdict table from this file instead of the SPEC.md built in.
    #[arg(long, value_name = "PATH")]
    spec: Option<std::path::PathBuf>,
}

fn main() -> ExitCode {
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
        Command::Policies => {
            for policy in POLICIES.iter().chain(BROKEN_POLICIES) {
                let tag = if policy.broken { " (broken, for tests)" } else { "" };
                println!("{}{tag}\n    {}", policy.name, policy.summary);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Check(args) => check(args),
    }
}

fn check(args: CheckArgs) -> Result<ExitCode> {
    let bounds = Bounds {
        connectors: args.connectors,
        sessions: args.sessions,
        turns: args.turns,
        auth_changes: args.auth_changes,
        faults: args.faults,
        commands: args.commands,
        symmetry: !args.no_symmetry,
    };
    bounds.validate().context("impossible bounds")?;
    let policies: Vec<HostPolicy> = if args.policies.is_empty() {
        let broken = if args.include_broken { BROKEN_POLICIES } else { &[] };
        POLICIES.iter().chain(broken).copied().collect()
    } else {
        let mut chosen = Vec::new();
        for name in &args.policies {
            let Some(policy) = policy_named(name) else {
                let known: Vec<&str> = POLICIES.iter().chain(BROKEN_POLICIES).map(|p| p.name).collect();
                bail!("unknown policy `{name}`; known policies: {}", known.join(", "));
            };
            chosen.push(policy);
        }
        chosen
    };
    let spec = match &args.spec {
        None => SPEC.to_owned(),
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
    };
    let table = parse_table(&spec).map_err(anyhow::Error::msg).context("the verdict table is malformed")?;
    let reports = check_all(&policies, bounds, usize::from(args.threads));
    let differences = compare(&reports, &table);
    let timing = if args.no_timing { Timing::Hidden } else { Timing::Shown };
    let out = match args.format {
        Format::Text => report::text(&reports, differences.as_deref(), timing),
        Format::Json => report::json(&reports, differences.as_deref(), timing),
    };
    print!("{out}");
    let drifted = differences.is_some_and(|d| !d.is_empty());
    Ok(if drifted { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
