//! `check` of `recommended`: one exhaustive search per iteration. Throughput is in unique states.

use coherence_model::{Bounds, RECOMMENDED, check};
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
    group.finish();
}

criterion_group!(benches, bench_check);
criterion_main!(benches);
