//! One full sample of the demonstration dataset under the default sweep spec,
//! and with data noise on. Target (issue 2): ≥ 5,000 samples/s per core.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use zonesweep_shared::data::dataset::Dataset;
use zonesweep_shared::model::config::Config;
use zonesweep_shared::sweep::runner::SweepRunner;
use zonesweep_shared::sweep::{NoiseEntry, SweepSpec};

fn demo() -> Dataset {
    Dataset::from_csv(include_str!("../../data/demo/units.csv"), include_str!("../../data/demo/panel.csv"), None)
        .expect("the demonstration dataset is valid")
}

fn bench(c: &mut Criterion) {
    let dataset = demo();
    let config = Config::default();
    let mut group = c.benchmark_group("sample");
    group.throughput(Throughput::Elements(1));
    let spec = SweepSpec::default();
    let runner = SweepRunner::new(&dataset, &config, &spec).expect("the default spec is valid");
    let mut k = 0;
    group.bench_function("default spec", |b| {
        b.iter(|| {
            k += 1;
            runner.sample(k)
        })
    });
    let noisy = SweepSpec { noise: vec![NoiseEntry { group: "*".into(), sigma: 0.05 }], ..SweepSpec::default() };
    let runner = SweepRunner::new(&dataset, &config, &noisy).expect("the noisy spec is valid");
    group.bench_function("default spec + 5% noise on every field", |b| {
        b.iter(|| {
            k += 1;
            runner.sample(k)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
