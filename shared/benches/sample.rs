//! One sample of the demonstration dataset under the default sweep spec, by
//! the fast path (a thread's reused buffers and accumulator) and by the
//! reference chain (chain, outcome and `Aggregate::add`), side by side; and
//! the reference chain with data noise, which has no fast path. The issue's
//! target is 20,000 samples/s per core; `zonesweep bench sample` prints the
//! same comparison with the ratio.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use zonesweep_shared::data::dataset::Dataset;
use zonesweep_shared::model::config::Config;
use zonesweep_shared::sweep::fast::Scratch;
use zonesweep_shared::sweep::runner::{Mode, SweepRunner};
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
    let mut scratch = Scratch::default();
    let mut accumulator = runner.accumulator();
    let mut k = 0;
    group.bench_function("default spec, fast path", |b| {
        b.iter(|| {
            k += 1;
            runner.run_into(k..k + 1, &mut scratch, &mut accumulator)
        })
    });
    let reference = runner.clone().with_mode(Mode::Reference);
    let mut aggregate = reference.empty_aggregate();
    group.bench_function("default spec, reference chain", |b| {
        b.iter(|| {
            k += 1;
            reference.add_sample(&mut aggregate, k)
        })
    });
    let noisy = SweepSpec { noise: vec![NoiseEntry { group: "*".into(), sigma: 0.05 }], ..SweepSpec::default() };
    let runner = SweepRunner::new(&dataset, &config, &noisy).expect("the noisy spec is valid");
    let mut aggregate = runner.empty_aggregate();
    group.bench_function("default spec + 5% noise on every field (reference chain)", |b| {
        b.iter(|| {
            k += 1;
            runner.add_sample(&mut aggregate, k)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
