//! Runs the fast path on N samples of the demonstration dataset under the
//! default spec, for a profiler: `valgrind --tool=callgrind
//! target/release/examples/profile_sweep 300` counts instructions exactly
//! (the figure to compare between two versions on this noisy machine);
//! `profile_sweep 4000 jobs` also times 100-sample jobs that each build
//! their own runner, as a worker does; `profile_sweep 300 noise` runs a
//! sweep with data noise (the reference chain); `units=N` (after the count)
//! runs a generated dataset of N units instead of the demonstration one.

use zonesweep_shared::data::dataset::Dataset;
use zonesweep_shared::model::config::Config;
use zonesweep_shared::sweep::SweepSpec;
use zonesweep_shared::sweep::fast::Scratch;
use zonesweep_shared::sweep::runner::SweepRunner;

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|v| v.parse().ok()).unwrap_or(2000);
    let units = std::env::args().skip(2).find_map(|arg| arg.strip_prefix("units=").and_then(|n| n.parse().ok()));
    let dataset = match units {
        Some(n) => {
            let (units_csv, panel_csv) =
                zonesweep_shared::data::demo::generate(n, 1).expect("a demonstration dataset of that size").to_csv();
            Dataset::from_csv(&units_csv, &panel_csv, None).expect("a generated dataset is valid")
        }
        None => Dataset::from_csv(
            include_str!("../../data/demo/units.csv"),
            include_str!("../../data/demo/panel.csv"),
            None,
        )
        .expect("the demonstration dataset is valid"),
    };
    let config = Config::default();
    // `noise` as the third argument: 5 % noise on every field (no fast path).
    let spec = if std::env::args().nth(2).as_deref() == Some("noise") {
        SweepSpec {
            noise: vec![zonesweep_shared::sweep::NoiseEntry { group: "*".into(), sigma: 0.05 }],
            ..SweepSpec::default()
        }
    } else {
        SweepSpec::default()
    };
    let runner = SweepRunner::new(&dataset, &config, &spec).expect("the default spec is valid");
    let mut scratch = Scratch::default();
    let mut accumulator = runner.accumulator();
    let started = std::time::Instant::now();
    runner.run_into(0..n, &mut scratch, &mut accumulator);
    let elapsed = started.elapsed();
    let finishing = std::time::Instant::now();
    let aggregate = accumulator.finish();
    println!(
        "{n} samples: {:.1} µs per sample ({} failed); the job's aggregate from its counters: {:.2} ms",
        elapsed.as_secs_f64() * 1e6 / n as f64,
        aggregate.failures.len(),
        finishing.elapsed().as_secs_f64() * 1e3
    );
    if std::env::args().nth(2).as_deref() == Some("jobs") {
        let started = std::time::Instant::now();
        for j in 0..20u64 {
            let runner = SweepRunner::new(&dataset, &config, &spec).expect("the default spec is valid");
            std::hint::black_box(runner.run_range(j * 100..j * 100 + 100));
        }
        println!("a 100-sample job with its own runner: {:.2} ms", started.elapsed().as_secs_f64() * 1e3 / 20.0);
    }
}
