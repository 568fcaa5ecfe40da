//! Generation in shards (SPEC.md §11.2): the deal splits the work, the parts go to disk and back,
//! and their merge is the unsharded corpus, byte for byte; a merge of the wrong parts fails.

use crate::conform::{coherence, corpus, tempdir};
use coherence_model::Mutant;
use coherence_sim::fixture::Fixture;
use coherence_sim::generate::{Shard, mutant_candidates, mutant_fixtures};
use coherence_sim::shards::{
    Item, MANIFEST_FILE, Part, Settings, Strategy, Tier, deal, generate, items, merge, run, share,
};
use std::path::Path;

fn settings(strategies: &[Strategy], walks: u32) -> Settings {
    Settings { tier: Tier::Standard, strategies: strategies.to_vec(), seed: 1, walks, kills: 5 }
}

fn scenarios() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"))
}

/// Every item goes to exactly one shard, and no shard's estimate passes a fair share by more than
/// the dearest item (what dealing the dearest first guarantees).
#[test]
fn the_deal_gives_every_item_to_one_shard_and_balances_the_estimates() {
    let all = items(&settings(&Strategy::ALL, 64));
    assert_eq!(all.len(), coherence_sim::generate::mutant_policies().len() + 3 + Mutant::all().len());
    let total: u64 = all.iter().map(|i| u64::from(i.cost())).sum();
    let dearest = all.iter().map(|i| u64::from(i.cost())).max().unwrap();
    for count in 1..=8u32 {
        let owner = deal(&all, count);
        assert!(owner.iter().all(|&s| s < count));
        let mut names: Vec<String> = (0..count)
            .flat_map(|index| share(&settings(&Strategy::ALL, 64), Shard { index, count }))
            .map(|i| i.name())
            .collect();
        names.sort();
        let mut whole: Vec<String> = all.iter().map(Item::name).collect();
        whole.sort();
        assert_eq!(names, whole, "{count} shards");
        for index in 0..count {
            let load: u64 =
                all.iter().zip(&owner).filter(|(_, s)| **s == index).map(|(i, _)| u64::from(i.cost())).sum();
            assert!(load <= total / u64::from(count) + dearest, "shard {index} of {count}: {load} of {total}");
        }
    }
}

fn written(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    files
}

/// Through the command line: three shards' parts merge to what the unsharded run writes, byte for
/// byte; a part can be replayed as it stands; a wrong merge fails and says why.
#[test]
fn sharded_generation_merges_to_the_unsharded_corpus() {
    let whole = tempdir::Dir::new("gen-whole");
    let merged = tempdir::Dir::new("gen-merged");
    let parts: Vec<tempdir::Dir> = (1..=3).map(|i| tempdir::Dir::new(&format!("gen-part-{i}"))).collect();
    let common = ["--strategy", "walk", "--walks", "9", "--seed", "5"];
    let ok = |args: &[&str]| {
        let out = coherence(args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let path = |d: &tempdir::Dir| d.path().to_str().unwrap().to_owned();
    ok(&[&["gen", "--out", &path(&whole)][..], &common].concat());
    for (i, part) in parts.iter().enumerate() {
        let shard = format!("{}/3", i + 1);
        let said = ok(&[&["gen", "--out", &path(part), "--shard", &shard][..], &common].concat());
        assert!(said.contains(&format!("gen: shard {shard}:")), "{said}");
    }
    let mut merge = vec!["gen".to_owned(), "--out".to_owned(), path(&merged), "--merge".to_owned()];
    merge.extend(parts.iter().map(path));
    let merge: Vec<&str> = merge.iter().map(String::as_str).collect();
    ok(&merge);
    assert_eq!(written(whole.path()), written(merged.path()));
    assert_eq!(written(whole.path()).len(), 9);

    let fail = |args: &[&str], says: &str| {
        let out = coherence(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: `{err}` does not say `{says}`");
    };
    let (p1, p2, p3) = (path(&parts[0]), path(&parts[1]), path(&parts[2]));
    let out = path(&tempdir::Dir::new("gen-out"));
    fail(&["gen", "--out", &out, "--merge", &p1, &p2], "is missing");
    fail(&["gen", "--out", &out, "--merge", &p1, &p2, &p2, &p3], "given twice");
    fail(&["gen", "--out", &p1, "--merge", &p1, &p2, &p3], "is one of the parts");
    fail(&["gen", "--out", &out, "--merge", &p1, "--walks", "3"], "cannot be used with");
    let empty = tempdir::Dir::new("gen-empty");
    fail(&["gen", "--out", &out, "--merge", &path(&empty)], "a part is the directory");
    fail(&["gen", "--out", &out, "--shard", "1/3", "--kill-matrix", "x"], "go with --merge");
    // A part of another generation.
    let other = tempdir::Dir::new("gen-other");
    ok(&["gen", "--out", &path(&other), "--shard", "3/3", "--strategy", "walk", "--walks", "8", "--seed", "5"]);
    fail(&["gen", "--out", &out, "--merge", &p1, &p2, &path(&other)], "another generation");
    // A fixture edited after the shard wrote it.
    let owner = parts.iter().find(|p| written(p.path()).len() > 1).expect("the walks went to some shard");
    let (name, text) = written(owner.path()).into_iter().find(|(n, _)| n != MANIFEST_FILE).unwrap();
    std::fs::write(owner.path().join(&name), String::from_utf8(text).unwrap().replace("\"steps\"", "\"steps\" "))
        .unwrap();
    fail(&["gen", "--out", &out, "--merge", &p1, &p2, &p3], "not as `coherence gen` wrote it");
}

/// In the library: parts written and read back merge to the one-part generation, and a part whose
/// items are not its deal, or whose candidates are missing, is refused.
#[test]
fn parts_survive_the_disk_and_a_wrong_part_is_refused() {
    let settings = settings(&[Strategy::Walk, Strategy::Scenario], 12);
    let whole = generate(&settings, scenarios(), 1).unwrap();
    let dirs: Vec<tempdir::Dir> = (0..2).map(|i| tempdir::Dir::new(&format!("lib-part-{i}"))).collect();
    let mut parts = Vec::new();
    for (index, dir) in dirs.iter().enumerate() {
        let shard = Shard { index: index as u32, count: 2 };
        run(&settings, shard, &share(&settings, shard), scenarios(), 1).unwrap().write(dir.path()).unwrap();
        parts.push(Part::read(dir.path()).unwrap());
    }
    let merged = merge(parts.clone(), 2).unwrap();
    let json = |f: &[Fixture]| f.iter().map(Fixture::to_json).collect::<Vec<_>>();
    assert_eq!(json(&merged.fixtures), json(&whole.fixtures));
    assert_eq!(merged.fixtures.len(), 12 + 21);
    // A manifest that names a file outside its part.
    let manifest = dirs[0].path().join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&manifest).unwrap();
    let first = parts[0].fixtures[0].file_name();
    std::fs::write(&manifest, text.replacen(&format!("\"{first}\""), "\"../escape.json\"", 1)).unwrap();
    assert!(Part::read(dirs[0].path()).unwrap_err().contains("`../escape.json` is not the name of a fixture file"));
    let mut swapped = parts.clone();
    swapped[0].items.reverse();
    swapped[0].items.push("walks".to_owned());
    assert!(merge(swapped, 1).unwrap_err().contains("did other items than the deal gives it"));
}

/// A mutant's candidates are found in an order that does not depend on how many are wanted: the
/// candidates wanted when the rest of the corpus kills it `b` times are the first `kills - b` of
/// the candidates wanted when nothing does, and their walk count is the strategy's.
#[test]
fn fewer_candidates_are_a_prefix_of_more() {
    let all = Mutant::all();
    // One mutant the walks kill, and one the walks kill too seldom, whose last candidates come
    // from the search.
    let cases: [(&str, &[usize]); 2] =
        [("apply-reply/wrong-session", &[0, 1, 2, 3, 4, 5, 6]), ("explain-unknown-tool/drop", &[0, 4])];
    for (name, bases) in cases {
        let k = all.iter().position(|m| m.name() == name).unwrap();
        let most = mutant_candidates(1, 5, k, all[k]);
        assert_eq!(most.found.len(), 5, "{name} has candidates");
        for &by_base in bases {
            let fewer = mutant_candidates(1, 5usize.saturating_sub(by_base), k, all[k]);
            let (taken, kills) = most.select(by_base, 5);
            assert_eq!(
                taken.iter().map(Fixture::to_json).collect::<Vec<_>>(),
                fewer.found.iter().map(|(_, f)| f.to_json()).collect::<Vec<_>>()
            );
            assert_eq!(kills.total(), (by_base + taken.len()));
            if by_base >= 5 {
                assert_eq!(kills.walks, 0);
            }
            if taken.last().is_some_and(|f| f.id.contains("/search-")) {
                assert_eq!(kills.walks, coherence_sim::generate::MUTANT_WALKS_MAX);
            }
        }
    }
}

/// The mutant strategy's fixtures are what it generates now, byte for byte, from the rest of the
/// committed corpus: every mutant's. Heavy: the `--ignored` tier.
#[test]
#[ignore = "heavy tier: cargo test --workspace --release -- --ignored"]
fn the_committed_mutant_fixtures_regenerate_byte_for_byte() {
    let base: Vec<Fixture> = corpus().iter().filter(|f| f.provenance.strategy != "mutant").cloned().collect();
    let (fresh, _) = mutant_fixtures(1, 5, &base, 2);
    let mut fresh: Vec<String> = fresh.iter().map(Fixture::to_json).collect();
    fresh.sort();
    let mut committed: Vec<String> =
        corpus().iter().filter(|f| f.provenance.strategy == "mutant").map(Fixture::to_json).collect();
    committed.sort();
    assert_eq!(fresh.len(), committed.len(), "run `coherence gen --out fixtures`");
    assert!(
        fresh == committed,
        "the mutant fixtures differ from a fresh generation: run `coherence gen --out fixtures`"
    );
}

/// Three shards of the walks, scenarios and mutant strategy merge to the walks, the scenarios and
/// the mutant strategy run on them in one piece. Heavy: the `--ignored` tier.
#[test]
#[ignore = "heavy tier: cargo test --workspace --release -- --ignored"]
fn sharded_mutant_candidates_merge_to_the_mutant_strategy() {
    let settings = settings(&[Strategy::Walk, Strategy::Scenario, Strategy::Mutant], 16);
    let parts: Vec<Part> = (0..3)
        .map(|index| {
            let shard = Shard { index, count: 3 };
            run(&settings, shard, &share(&settings, shard), scenarios(), 2).unwrap()
        })
        .collect();
    let merged = merge(parts, 2).unwrap();
    let mut base = coherence_sim::generate::random_walks(1, 16, Shard::ALL);
    base.extend(coherence_sim::scenario::scenario_fixtures(scenarios()).unwrap());
    let (added, kills) = mutant_fixtures(1, 5, &base, 2);
    assert_eq!(merged.kills.as_deref(), Some(&kills[..]));
    let mut expected: Vec<String> = base.iter().chain(&added).map(Fixture::to_json).collect();
    expected.sort();
    let mut got: Vec<String> = merged.fixtures.iter().map(Fixture::to_json).collect();
    got.sort();
    assert!(got == expected, "the merged corpus is not the mutant strategy's");
}
