//! Generation and replay throughput of the conformance kit. Fixed seeds and sizes, named in the IDs.

use coherence_model::RECOMMENDED;
use coherence_sim::adapter::ProcessHost;
use coherence_sim::engine::replay;
use coherence_sim::fixture::Fixture;
use coherence_sim::generate::{Shard, random_walks, walk, walk_seed, walk_within};
use coherence_sim::host::{Host, ReferenceHost};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::path::Path;
use std::time::Duration;

const WALKS: u64 = 2000;

fn corpus() -> Vec<Fixture> {
    coherence::conform::read_fixtures(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures"))
        .expect("the committed corpus")
}

fn bench_gen(c: &mut Criterion) {
    let mut group = c.benchmark_group("gen");
    group.sample_size(10).measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(WALKS));
    let steps: usize = (0..WALKS).map(|k| walk(walk_seed(1, k)).1.len()).sum();
    println!("gen/walk-traces: {WALKS} traces, {:.1} steps each on average", steps as f64 / WALKS as f64);
    group.bench_function("walk-traces/seed=1/n=2000", |b| {
        b.iter(|| (0..WALKS).map(|k| walk(walk_seed(1, k)).1.len()).sum::<usize>())
    });
    // Walks that run their full 30 steps, for comparison with simulators' ~30-step traces.
    let wide = coherence_model::Bounds {
        connectors: 2,
        sessions: 2,
        turns: 6,
        auth_changes: 6,
        faults: 6,
        commands: 6,
        symmetry: false,
        servers: coherence_model::system::Servers::Any,
        revisions: coherence_model::system::Revisions::Handshake,
        contexts: coherence_model::state::Contexts::One,
    };
    let mut rng = <rand_chacha::ChaCha8Rng as rand_core::SeedableRng>::seed_from_u64(1);
    let steps: usize = (0..WALKS).map(|_| walk_within(wide, &mut rng).len()).sum();
    println!("gen/walk-traces-30: {WALKS} traces, {:.1} steps each on average", steps as f64 / WALKS as f64);
    group.bench_function("walk-traces-30/seed=1/n=2000", |b| {
        b.iter(|| {
            let mut rng = <rand_chacha::ChaCha8Rng as rand_core::SeedableRng>::seed_from_u64(1);
            (0..WALKS).map(|_| walk_within(wide, &mut rng).len()).sum::<usize>()
        })
    });
    group.throughput(Throughput::Elements(200));
    group.bench_function("walk-fixtures/seed=1/n=200", |b| b.iter(|| random_walks(1, 200, Shard::ALL)));
    group.finish();
}

fn bench_replay(c: &mut Criterion) {
    let fixtures = corpus();
    let steps: usize = fixtures.iter().map(|f| replay(f, &mut ReferenceHost::new(RECOMMENDED)).executed.len()).sum();
    println!("replay: corpus of {} fixtures, {steps} executed steps", fixtures.len());
    let mut group = c.benchmark_group("replay");
    group.sample_size(10).measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(steps as u64));
    group.bench_function("in-process/corpus", |b| {
        b.iter(|| {
            let mut host = ReferenceHost::new(RECOMMENDED);
            fixtures.iter().map(|f| replay(f, &mut host).executed.len()).sum::<usize>()
        })
    });
    let command = format!("{} ref-adapter", env!("CARGO_BIN_EXE_coherence"));
    group.bench_function("stdio/corpus", |b| {
        b.iter(|| {
            let mut host = ProcessHost::spawn(&command, Duration::from_secs(5)).expect("the adapter starts");
            let host: &mut dyn Host = &mut host;
            fixtures.iter().map(|f| replay(f, host).executed.len()).sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_gen, bench_replay);
criterion_main!(benches);
