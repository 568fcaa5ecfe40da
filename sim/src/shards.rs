//! Generation in shards (SPEC.md §11.2): the work of `coherence gen` as a list of items, the
//! share of it each shard does, the part a shard writes, and the merge of the parts into the
//! corpus the unsharded run writes, byte for byte.
//!
//! An item is a unit of work whose fixtures depend on nothing else: the checker's
//! counterexamples of one policy, the random walks, the cover, the scenarios, one mutant's
//! candidates, one deep walk. The strategies depend on each other in one place only: how many
//! fixtures the mutant strategy takes for a mutant depends on how many fixtures of the rest of
//! the corpus kill it. That is left to the merge, which is cheap: a shard finds every candidate a
//! mutant could need (at most `kills`, in the order the strategy finds them), and the merge takes
//! as many as the rest of the corpus leaves wanting ([`crate::generate::Candidates::select`]).
//! The unsharded run is the merge of one part that holds every item.
//!
//! Items are dealt to shards by their estimated cost, the dearest first, each to the shard with
//! the least so far (longest processing time first). The estimates only balance the shards:
//! whatever they say, the merged corpus is the same.

use crate::coverage::{AbstractTransition, COVERAGE_BOUNDS, STATELESS_COVERAGE_BOUNDS, cover, transitions_of};
use crate::fixture::{FORMAT_VERSION, Fixture, SPEC_VERSION};
use crate::generate::{
    Candidates, MutantKills, Shard, counterexample_reports_of, counterexamples, coverage_fixtures, deep_walk_fixture,
    kills_mutant, mutant_candidates, mutant_policies, random_walks,
};
use coherence_model::{HostPolicy, Mutant, policy_named};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::Path;

/// The `format` field of a part's manifest.
pub const MANIFEST_FORMAT: &str = "mcp-coherence-gen-part";

/// The version of the manifest's format this build writes and reads.
pub const MANIFEST_VERSION: u32 = 1;

/// The name of a part's manifest in its directory: not `*.json`, so that `coherence conform`,
/// which reads every `*.json` under a directory, can replay a part as it stands.
pub const MANIFEST_FILE: &str = "gen-part.manifest";

/// The largest manifest read (the cover's reachable transitions make most of it).
pub const MANIFEST_BYTES_MAX: u64 = 64 << 20;

/// A generation strategy of the standard tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// One fixture per counterexample of every policy other than `recommended`.
    Counterexample,
    /// Seeded random walks of `recommended`.
    Walk,
    /// The fewest traces found that cover every reachable abstract transition.
    Coverage,
    /// The scripted scenarios.
    Scenario,
    /// Fixtures until every host mutant is killed `kills` times.
    Mutant,
}

impl Strategy {
    /// Every strategy, in the order the corpus lists them.
    pub const ALL: [Strategy; 5] =
        [Strategy::Counterexample, Strategy::Walk, Strategy::Coverage, Strategy::Scenario, Strategy::Mutant];
}

/// Which fixtures a generation makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tier {
    /// The corpus's strategies: what `fixtures/` holds.
    Standard,
    /// Deep walks only.
    Deep,
}

/// What a generation makes. Every shard of a generation and its merge agree on these.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The tier.
    pub tier: Tier,
    /// The standard tier's strategies, in [`Strategy::ALL`]'s order (none for the deep tier).
    pub strategies: Vec<Strategy>,
    /// The seed of every walk.
    pub seed: u64,
    /// How many random walks (deep walks in the deep tier).
    pub walks: u32,
    /// How many fixtures should kill each host mutant.
    pub kills: u32,
}

impl Settings {
    fn has(&self, strategy: Strategy) -> bool {
        self.tier == Tier::Standard && self.strategies.contains(&strategy)
    }
}

/// A unit of generation work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item {
    /// The checker's counterexamples of one policy (by name), at the default bounds and at
    /// [`crate::generate::DEEP_FAULT_BOUNDS`].
    Counterexamples(&'static str),
    /// Every random walk.
    Walks,
    /// The coverage-directed traces.
    Cover,
    /// Every scripted scenario.
    Scenarios,
    /// The candidates of the host mutant numbered so in [`Mutant::all`].
    Candidates(usize),
    /// Deep walk number so.
    DeepWalk(usize),
}

/// What `coherence check --include-broken` took per policy at the default bounds (its time
/// column, seconds, two policies at once on 2 cores): the estimates that balance shards.
const CHECK_SECONDS: &[(&str, u32)] = &[
    ("session-start-only", 3),
    ("stub-guidance", 2),
    ("delta-notice", 6),
    ("refresh-on-demand", 19),
    ("list-changed-naive", 4),
    ("list-changed-guarded", 10),
    ("restart-banner", 3),
    ("recommended-mcp", 8),
    ("fetch-per-turn", 4),
    ("invalidate-on-notify", 3),
    ("snapshot-at-connect", 1),
    ("cache-until-invalidated", 3),
    ("broken-advertised-only", 22),
    ("broken-concurrent", 103),
    ("broken-trusts-read", 22),
    ("broken-no-hold", 24),
    ("broken-no-timeout", 22),
    ("broken-no-stub-refresh", 21),
    ("broken-opaque-stubs", 21),
    ("broken-silent-failure", 15),
    ("broken-mcp-hint", 7),
    ("broken-no-reinit", 19),
    ("broken-unexplained", 20),
    ("broken-stale-notice", 24),
    ("broken-misroute", 22),
    ("broken-first-page", 17),
    ("broken-abort-on-stubs", 5),
];

impl Item {
    /// The item's name, as a part's manifest lists it.
    pub fn name(&self) -> String {
        match self {
            Item::Counterexamples(policy) => format!("counterexamples/{policy}"),
            Item::Walks => "walks".to_owned(),
            Item::Cover => "cover".to_owned(),
            Item::Scenarios => "scenarios".to_owned(),
            Item::Candidates(k) => format!("candidates/{}", Mutant::all()[*k]),
            Item::DeepWalk(k) => format!("deep-walk/{k}"),
        }
    }

    /// The estimated cost, in core-seconds: only for balancing shards.
    pub fn cost(&self) -> u32 {
        match self {
            // A policy nobody timed yet costs what a typical policy does.
            Item::Counterexamples(policy) => CHECK_SECONDS.iter().find(|(p, _)| p == policy).map_or(20, |(_, s)| *s),
            Item::Cover => 45,
            Item::Candidates(_) => 2,
            Item::Walks | Item::Scenarios | Item::DeepWalk(_) => 1,
        }
    }
}

/// Every item of a generation, in a fixed order.
pub fn items(settings: &Settings) -> Vec<Item> {
    if settings.tier == Tier::Deep {
        return (0..settings.walks as usize).map(Item::DeepWalk).collect();
    }
    let mut items = Vec::new();
    if settings.has(Strategy::Counterexample) {
        items.extend(mutant_policies().iter().map(|p| Item::Counterexamples(p.name)));
    }
    if settings.has(Strategy::Walk) {
        items.push(Item::Walks);
    }
    if settings.has(Strategy::Coverage) {
        items.push(Item::Cover);
    }
    if settings.has(Strategy::Scenario) {
        items.push(Item::Scenarios);
    }
    if settings.has(Strategy::Mutant) {
        items.extend((0..Mutant::all().len()).map(Item::Candidates));
    }
    items
}

/// The shard (from 0) of each of `items`, `count` shards in all: the dearest item first, each to
/// the shard with the least estimated cost so far (the lowest-numbered on a tie).
pub fn deal(items: &[Item], count: u32) -> Vec<u32> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&k| std::cmp::Reverse(items[k].cost()));
    let mut load = vec![0u64; count.max(1) as usize];
    let mut owner = vec![0u32; items.len()];
    for k in order {
        let least = (0..load.len()).min_by_key(|&s| (load[s], s)).expect("at least one shard");
        load[least] += u64::from(items[k].cost());
        owner[k] = least as u32;
    }
    owner
}

/// The items `shard` does, in the items' order.
pub fn share(settings: &Settings, shard: Shard) -> Vec<Item> {
    let items = items(settings);
    let owner = deal(&items, shard.count);
    items.into_iter().zip(owner).filter(|(_, s)| *s == shard.index).map(|(i, _)| i).collect()
}

/// What the cover found: the merge measures what the corpus covers against it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoverFound {
    /// How many traces the cover took.
    pub traces: usize,
    /// Every reachable abstract transition, as JSON.
    pub reachable: Vec<serde_json::Value>,
}

/// What one shard made.
#[derive(Clone, Debug)]
pub struct Part {
    /// The generation.
    pub settings: Settings,
    /// Which shard.
    pub shard: Shard,
    /// The items done, by name.
    pub items: Vec<String>,
    /// The fixtures of the corpus the items made (every one but the mutant strategy's).
    pub fixtures: Vec<Fixture>,
    /// The mutant strategy's candidates, per mutant.
    pub candidates: Vec<Candidates>,
    /// The cover's figures, if the part did the cover.
    pub cover: Option<CoverFound>,
}

/// Does `items` of a generation, on `threads` threads; the scenarios are read from `scenarios`.
pub fn run(
    settings: &Settings,
    shard: Shard,
    items: &[Item],
    scenarios: &Path,
    threads: usize,
) -> Result<Part, String> {
    let policies: Vec<HostPolicy> = items
        .iter()
        .filter_map(|item| match item {
            Item::Counterexamples(name) => Some(policy_named(name).expect("items name known policies")),
            _ => None,
        })
        .collect();
    // The cover takes one thread for most of a minute: it runs beside the checker.
    let (reports, found) = std::thread::scope(|scope| {
        let cover = items.contains(&Item::Cover).then(|| {
            scope.spawn(|| [COVERAGE_BOUNDS, STATELESS_COVERAGE_BOUNDS].map(|bounds| (cover(bounds), bounds)))
        });
        let reports = if policies.is_empty() { Vec::new() } else { counterexample_reports_of(&policies, threads) };
        (reports, cover.map(|c| c.join().expect("the cover does not panic")))
    });
    let mut fixtures = counterexamples(&reports);
    if items.contains(&Item::Walks) {
        fixtures.extend(random_walks(settings.seed, settings.walks as usize, Shard::ALL));
    }
    let cover = found.map(|found| {
        let mut reachable = std::collections::BTreeSet::new();
        let mut traces = 0;
        for (found, bounds) in &found {
            fixtures.extend(coverage_fixtures(found, *bounds, Shard::ALL));
            reachable.extend(found.reachable.iter().copied());
            traces += found.traces.len();
        }
        let reachable = reachable.iter().map(|t| serde_json::to_value(t).expect("a transition serialises"));
        CoverFound { traces, reachable: reachable.collect() }
    });
    if items.contains(&Item::Scenarios) {
        fixtures.extend(crate::scenario::scenario_fixtures(scenarios)?);
    }
    for item in items {
        if let Item::DeepWalk(k) = item {
            fixtures.push(deep_walk_fixture(settings.seed, *k));
        }
    }
    let all = Mutant::all();
    let mutants: Vec<usize> = items
        .iter()
        .filter_map(|item| match item {
            Item::Candidates(k) => Some(*k),
            _ => None,
        })
        .collect();
    let candidates = crate::mutants::par_map(&mutants, threads, |&k| {
        mutant_candidates(settings.seed, settings.kills as usize, k, all[k])
    });
    Ok(Part {
        settings: settings.clone(),
        shard,
        items: items.iter().map(Item::name).collect(),
        fixtures,
        candidates,
        cover,
    })
}

/// A part's manifest: what its directory holds besides the fixture files.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    format: String,
    version: u32,
    /// The version of mcp-coherence that wrote the part.
    coherence: String,
    spec_version: u32,
    fixture_version: u32,
    /// `i/n`, from 1.
    shard: String,
    settings: Settings,
    items: Vec<String>,
    /// The corpus's fixture files, by name.
    fixtures: Vec<String>,
    candidates: Vec<ManifestCandidates>,
    cover: Option<CoverFound>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestCandidates {
    mutant: String,
    /// The fixture files, in the order found, each with the walk that found it (none: the search).
    found: Vec<(String, Option<usize>)>,
}

impl Part {
    /// Writes the part into `dir` (created if missing): every fixture and candidate as a file,
    /// named as in the corpus, and the manifest.
    pub fn write(&self, dir: &Path) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
        };
        let mut names = BTreeSet::new();
        let candidates = self.candidates.iter().flat_map(|c| c.found.iter().map(|(_, f)| f));
        for fixture in self.fixtures.iter().chain(candidates) {
            if !names.insert(fixture.file_name()) {
                return Err(format!("two fixtures would both be written as {}", fixture.file_name()));
            }
            write(&fixture.file_name(), &fixture.to_json())?;
        }
        let manifest = Manifest {
            format: MANIFEST_FORMAT.to_owned(),
            version: MANIFEST_VERSION,
            coherence: env!("CARGO_PKG_VERSION").to_owned(),
            spec_version: SPEC_VERSION,
            fixture_version: FORMAT_VERSION,
            shard: format!("{}/{}", self.shard.index + 1, self.shard.count),
            settings: self.settings.clone(),
            items: self.items.clone(),
            fixtures: self.fixtures.iter().map(Fixture::file_name).collect(),
            candidates: self
                .candidates
                .iter()
                .map(|c| ManifestCandidates {
                    mutant: c.mutant.name(),
                    found: c.found.iter().map(|(walk, f)| (f.file_name(), *walk)).collect(),
                })
                .collect(),
            cover: self.cover.clone(),
        };
        write(MANIFEST_FILE, &(serde_json::to_string_pretty(&manifest).expect("a manifest serialises") + "\n"))
    }

    /// Reads the part a shard wrote into `dir`: its manifest and every fixture the manifest
    /// names, each of which must be as `gen` wrote it (its canonical text, under its own name).
    pub fn read(dir: &Path) -> Result<Part, String> {
        let path = dir.join(MANIFEST_FILE);
        let shown = path.display();
        let meta = std::fs::symlink_metadata(&path).map_err(|e| {
            format!("{shown}: {e}; a part is the directory `coherence gen --shard I/N --out DIR` wrote")
        })?;
        if !meta.file_type().is_file() || meta.len() > MANIFEST_BYTES_MAX {
            return Err(format!("{shown}: not a regular file of at most {MANIFEST_BYTES_MAX} bytes"));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{shown}: {e}"))?;
        let value = crate::strict_json::parse(&text).map_err(|e| format!("{shown}: {e}"))?;
        if value.get("format").and_then(|f| f.as_str()) != Some(MANIFEST_FORMAT) {
            return Err(format!("{shown}: the `format` field must be \"{MANIFEST_FORMAT}\""));
        }
        if value.get("version").and_then(|v| v.as_u64()) != Some(u64::from(MANIFEST_VERSION)) {
            return Err(format!("{shown}: this build reads manifest version {MANIFEST_VERSION}"));
        }
        let manifest: Manifest = serde_json::from_value(value).map_err(|e| format!("{shown}: {e}"))?;
        let ours = (env!("CARGO_PKG_VERSION"), SPEC_VERSION, FORMAT_VERSION);
        if (manifest.coherence.as_str(), manifest.spec_version, manifest.fixture_version) != ours {
            return Err(format!(
                "{shown}: written by mcp-coherence {} (spec {}, fixtures version {}); this is {} (spec {}, fixtures version {}): \
                 generate every part with the same build",
                manifest.coherence, manifest.spec_version, manifest.fixture_version, ours.0, ours.1, ours.2
            ));
        }
        let shard = Shard::parse(&manifest.shard).map_err(|e| format!("{shown}: {e}"))?;
        let read = |name: &str| -> Result<Fixture, String> {
            if name.contains(['/', '\\']) || name.starts_with('.') || !name.ends_with(".json") {
                return Err(format!("{shown}: `{name}` is not the name of a fixture file in the part"));
            }
            let path = dir.join(name);
            let (fixture, text) = Fixture::read_with_text(&path).map_err(|e| e.to_string())?;
            if fixture.file_name() != name || fixture.to_json() != text {
                return Err(format!("{}: not as `coherence gen` wrote it (edited or renamed)", path.display()));
            }
            Ok(fixture)
        };
        let fixtures = manifest.fixtures.iter().map(|name| read(name)).collect::<Result<Vec<_>, _>>()?;
        let mut candidates = Vec::new();
        for c in &manifest.candidates {
            let mutant = Mutant::named(&c.mutant).ok_or_else(|| format!("{shown}: unknown mutant `{}`", c.mutant))?;
            let mut found = Vec::new();
            for (name, walk) in &c.found {
                let fixture = read(name)?;
                if fixture.provenance.mutant.as_deref() != Some(c.mutant.as_str()) {
                    return Err(format!("{}: not a fixture of mutant {}", dir.join(name).display(), c.mutant));
                }
                found.push((*walk, fixture));
            }
            candidates.push(Candidates { mutant, found });
        }
        Ok(Part {
            settings: manifest.settings,
            shard,
            items: manifest.items,
            fixtures,
            candidates,
            cover: manifest.cover,
        })
    }
}

/// The merged corpus, with what the report of a generation tells.
#[derive(Clone, Debug)]
pub struct Corpus {
    /// The generation.
    pub settings: Settings,
    /// Every fixture, by file name.
    pub fixtures: Vec<Fixture>,
    /// How the mutant strategy did per mutant, in [`Mutant::all`]'s order (if it ran).
    pub kills: Option<Vec<MutantKills>>,
    /// The cover's figures (if it ran).
    pub cover: Option<Coverage>,
}

/// What the corpus covers of the reachable abstract transitions of `recommended`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Coverage {
    /// How many traces the cover took.
    pub traces: usize,
    /// Reachable abstract transitions at the default bounds.
    pub reachable: usize,
    /// Of those, how many the corpus covers.
    pub covered: usize,
    /// How many random walks the corpus has.
    pub walks: usize,
    /// Of the reachable transitions, how many the random walks alone cover.
    pub by_walks: usize,
}

/// Merges the parts of every shard of one generation, on `threads` threads. It fails, naming the
/// part, when a part is missing, given twice, of another generation or another build, or not
/// the share the deal gives its shard.
pub fn merge(parts: Vec<Part>, threads: usize) -> Result<Corpus, String> {
    let first = parts.first().ok_or("no parts to merge")?;
    let (settings, count) = (first.settings.clone(), first.shard.count);
    let items = items(&settings);
    let owner = deal(&items, count);
    let mut seen = BTreeSet::new();
    for part in &parts {
        let which = format!("shard {}/{}", part.shard.index + 1, part.shard.count);
        if part.settings != settings || part.shard.count != count {
            return Err(format!(
                "{which} is of another generation than shard {}/{count}: every part must come from the same settings and shard count",
                first.shard.index + 1
            ));
        }
        if !seen.insert(part.shard.index) {
            return Err(format!("{which} is given twice"));
        }
        let dealt: Vec<String> =
            items.iter().zip(&owner).filter(|(_, s)| **s == part.shard.index).map(|(i, _)| i.name()).collect();
        if part.items != dealt {
            return Err(format!("{which} did other items than the deal gives it"));
        }
    }
    if let Some(missing) = (0..count).find(|i| !seen.contains(i)) {
        return Err(format!("shard {}/{count} is missing: merge the parts of every shard", missing + 1));
    }
    let mut fixtures: Vec<Fixture> = Vec::new();
    let mut candidates: Vec<Candidates> = Vec::new();
    let mut covers = Vec::new();
    for part in parts {
        fixtures.extend(part.fixtures);
        candidates.extend(part.candidates);
        covers.extend(part.cover);
    }
    let all = Mutant::all();
    candidates.sort_by_key(|c| all.iter().position(|m| *m == c.mutant));
    let wanted = items.iter().filter(|i| matches!(i, Item::Candidates(_))).count();
    if candidates.len() != wanted || candidates.windows(2).any(|w| w[0].mutant == w[1].mutant) {
        return Err(format!(
            "the parts hold candidates for {} mutants, not one for each of {wanted}",
            candidates.len()
        ));
    }
    let kills = settings.has(Strategy::Mutant).then(|| {
        let base = &fixtures;
        let chosen = crate::mutants::par_map(&candidates, threads, |c| {
            c.select(base.iter().filter(|f| kills_mutant(f, c.mutant)).count(), settings.kills as usize)
        });
        let (added, kills): (Vec<_>, Vec<_>) = chosen.into_iter().unzip();
        (added.into_iter().flatten().collect::<Vec<_>>(), kills)
    });
    let kills = kills.map(|(added, kills)| {
        fixtures.extend(added);
        kills
    });
    fixtures.sort_by_key(Fixture::file_name);
    if let Some(twice) = fixtures.windows(2).find(|w| w[0].file_name() == w[1].file_name()) {
        return Err(format!("two fixtures would both be written as {}: give them different ids", twice[0].file_name()));
    }
    let cover = covers.first().map(|found| {
        let reachable: BTreeSet<String> = found.reachable.iter().map(|v| v.to_string()).collect();
        let count = |fixtures: &[Fixture]| {
            let json = |t: &AbstractTransition| serde_json::to_value(t).expect("a transition serialises").to_string();
            transitions_of(fixtures).iter().filter(|t| reachable.contains(&json(t))).count()
        };
        let walks: Vec<Fixture> = fixtures.iter().filter(|f| f.provenance.strategy == "random-walk").cloned().collect();
        Coverage {
            traces: found.traces,
            reachable: reachable.len(),
            covered: count(&fixtures),
            walks: walks.len(),
            by_walks: count(&walks),
        }
    });
    Ok(Corpus { settings, fixtures, kills, cover })
}

/// The whole generation in this process: the merge of the one part that does every item.
pub fn generate(settings: &Settings, scenarios: &Path, threads: usize) -> Result<Corpus, String> {
    let part = run(settings, Shard::ALL, &items(settings), scenarios, threads)?;
    merge(vec![part], threads)
}
