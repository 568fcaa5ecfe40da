//! `check` of `recommended`: one exhaustive search per iteration, on one thread and on two.
//! Throughput is in unique states. Then the same search keyed on whole states and without the
//! event (SPEC.md §4.3), on two threads: the time of one check either way. Then one check with
//! and without deploys admitted (SPEC.md §4, `DeployTools`): what the fault costs. Then one
//! check on two threads with the frontier and paths in memory and on disk (`--spill`): what the
//! disk costs.

use coherence_model::system::Fault;
use coherence_model::{
    Bounds, CoherenceModel, Key, RECOMMENDED, Store, check, check_model_keyed, check_model_on, check_model_stored,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::time::Duration;

fn bench_check(c: &mut Criterion) {
    let mut group = c.benchmark_group("check");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(20));
    let configs = [
        ("recommended/connectors=2", Bounds::DEFAULT),
        ("recommended/connectors=3", Bounds { connectors: 3, turns: 1, auth_changes: 1, ..Bounds::DEFAULT }),
    ];
    for (id, bounds) in configs {
        let states = check(RECOMMENDED, bounds).unique_states;
        group.throughput(Throughput::Elements(states as u64));
        group.bench_function(id, |b| b.iter(|| check(RECOMMENDED, bounds)));
    }
    let model = CoherenceModel::new(RECOMMENDED, Bounds::DEFAULT);
    group.throughput(Throughput::Elements(check(RECOMMENDED, Bounds::DEFAULT).unique_states as u64));
    group.bench_function("recommended/connectors=2/threads=2", |b| b.iter(|| check_model_on(&model, 2)));
    group.finish();

    let mut group = c.benchmark_group("key");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(20));
    for policy in ["recommended", "list-changed-guarded"] {
        let model = CoherenceModel::new(coherence_model::policy_named(policy).unwrap(), Bounds::DEFAULT);
        for (name, key) in [("whole", Key::Whole), ("without-event", Key::WithoutEvent)] {
            group.bench_function(format!("{policy}/{name}"), |b| b.iter(|| check_model_keyed(&model, 2, key)));
        }
    }
    group.finish();

    let mut group = c.benchmark_group("deploys");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(20));
    let guarded = CoherenceModel::new(coherence_model::policy_named("list-changed-guarded").unwrap(), Bounds::DEFAULT);
    let deploying = CoherenceModel { faults: guarded.faults.with(Fault::DeployTools), ..guarded.clone() };
    for (name, model) in [("list-changed-guarded/without", &guarded), ("list-changed-guarded/with", &deploying)] {
        group.bench_function(name, |b| b.iter(|| check_model_on(model, 2)));
    }
    group.finish();

    let mut group = c.benchmark_group("spill");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(20));
    let model = CoherenceModel::new(RECOMMENDED, Bounds::DEFAULT);
    group.throughput(Throughput::Elements(check(RECOMMENDED, Bounds::DEFAULT).unique_states as u64));
    // On the disk the build is on (a system's temporary directory may be a tmpfs, in memory).
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    for (name, store) in [("recommended/memory", Store::Memory), ("recommended/disk", Store::Disk(dir))] {
        group.bench_function(name, |b| b.iter(|| check_model_stored(&model, 2, Key::default(), &store).unwrap()));
    }
    group.finish();
}

criterion_group!(benches, bench_check);
criterion_main!(benches);
