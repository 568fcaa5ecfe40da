//! Host designs as files (`coherence check --host-design FILE`): a host team's own choices of
//! SPEC.md §5, checked exactly as a built-in policy is. The format is
//! [`HostDesigns`](coherence_model::policy::HostDesigns): TOML (`[[policy]]` tables) or JSON
//! (`{"policy": [...]}`), every choice written out (but an optional one left out for none: no
//! `banner`, no `stub_guidance`), nothing else accepted; the JSON Schema is
//! `schemas/host-design.schema.json`. `coherence policies --format toml` prints the built-in
//! policies in it, as a starting point.

use coherence_model::HostPolicy;
use coherence_model::policy::HostDesigns;

/// The largest design file read.
pub const BYTES_MAX: u64 = 1 << 20;

/// How a design file is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// TOML.
    Toml,
    /// JSON.
    Json,
}

impl Format {
    /// The format a file's name says (`.json`; anything else is read as TOML).
    pub fn of(path: &std::path::Path) -> Format {
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) { Format::Json } else { Format::Toml }
    }
}

/// The designs `text` holds, or why it holds none: the error names the field, the allowed values
/// and (TOML) the line.
pub fn parse(text: &str, format: Format) -> Result<Vec<HostPolicy>, String> {
    let designs: HostDesigns = match format {
        Format::Toml => toml::from_str(text).map_err(|e| e.to_string())?,
        Format::Json => {
            let mut json = serde_json::Deserializer::from_str(text);
            serde_path_to_error::deserialize(&mut json).map_err(|e| format!("at {}: {}", e.path(), e.inner()))?
        }
    };
    if designs.policy.is_empty() {
        return Err("no design: write at least one [[policy]] table".to_owned());
    }
    let mut names = std::collections::BTreeSet::new();
    for design in &designs.policy {
        let name = design.name;
        let valid = !name.is_empty()
            && name.len() <= 64
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid {
            return Err(format!("policy name `{name}`: use 1 to 64 of a-z, 0-9 and -"));
        }
        if !names.insert(name) {
            return Err(format!("two designs are named `{name}`"));
        }
    }
    Ok(designs.policy)
}

/// `policies` as a design file: every field of each, in SPEC.md §5's order.
pub fn render(policies: &[HostPolicy], format: Format) -> String {
    let designs = HostDesigns { policy: policies.to_vec() };
    match format {
        Format::Toml => toml::to_string(&designs).expect("a design is TOML"),
        Format::Json => serde_json::to_string_pretty(&designs).expect("a design is JSON") + "\n",
    }
}
