//! `ref-host`: the model's own host logic for a policy (the reference host adapter mode replays),
//! on the official Rust MCP SDK's client and the Anthropic Messages API, for black-box conformance
//! (SPEC.md §11.5). Configured and driven as `rmcp-host` is: `MCP_CONFIG`, `ANTHROPIC_BASE_URL`,
//! `ANTHROPIC_API_KEY`; JSON lines on stdin (`user`, `command`), `turn_end` lines on stdout.
//!
//! `ref-host --policy P [--mutant M] [--list-timeout-ms N]`: the policies and mutants `coherence
//! policies` and `coherence mutants` list, except those that read the account (no wire gives a
//! host that). A policy that times out gives up on a `tools/list` after N ms (10 000 by default);
//! `coherence conform --hang-ms` must give it longer than that.

use anyhow::{Context, Result, bail};
use coherence_hosts::reference::Bridge;

const USAGE: &str = "usage: ref-host [--policy NAME] [--mutant NAME] [--list-timeout-ms N]";

/// How long a policy that times out waits for a `tools/list` by default.
const LIST_TIMEOUT_MS: u64 = 10_000;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let mut policy = String::from("recommended-mcp");
    let mut mutant = None;
    let mut list_timeout_ms = LIST_TIMEOUT_MS;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().with_context(|| format!("{flag} needs a value; {USAGE}"))?;
        match flag.as_str() {
            "--policy" => policy = value,
            "--mutant" => mutant = Some(value),
            "--list-timeout-ms" => {
                list_timeout_ms =
                    value.parse().with_context(|| format!("--list-timeout-ms {value}: not a number of ms"))?;
            }
            _ => bail!("unknown flag {flag}; {USAGE}"),
        }
    }
    let policy = coherence_model::policy_named(&policy)
        .with_context(|| format!("no policy {policy}; `coherence policies` lists them"))?;
    let mutant = match mutant {
        Some(name) => Some(
            coherence_model::Mutant::named(&name)
                .with_context(|| format!("no mutant {name}; `coherence mutants` lists them"))?,
        ),
        None => None,
    };
    let list_timeout = std::time::Duration::from_millis(list_timeout_ms);
    Bridge::start(policy, mutant, list_timeout).await?.run().await
}
