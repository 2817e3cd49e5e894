//! The coordinator's work per job result, without the network and the
//! disk, for a profiler: N distinct one-sample results of the
//! demonstration dataset (computed first), each decoded from its wire
//! bytes, checked and merged into a batch's delta as the committer does (the log histograms
//! of a batch's results all at once);
//! every `batch` results the delta is encoded for storage and merged into
//! the sweep's aggregate. `valgrind --tool=callgrind
//! target/release/examples/profile_completions 2000` counts the
//! instructions of each step exactly (the figure to compare between two
//! versions on a noisy machine); without valgrind it prints the time of
//! each step.

use std::time::{Duration, Instant};

use prost::Message;
use zonesweep_proto::convert::{encode_aggregate_packed, result_from_pb, result_to_pb};
use zonesweep_proto::pb;
use zonesweep_shared::data::dataset::Dataset;
use zonesweep_shared::model::config::Config;
use zonesweep_shared::sweep::SweepSpec;
use zonesweep_shared::sweep::aggregate::Aggregate;
use zonesweep_shared::sweep::runner::SweepRunner;

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|v| v.parse().ok()).unwrap_or(2000);
    let batch: usize = std::env::args().nth(2).and_then(|v| v.parse().ok()).unwrap_or(32);
    let dataset =
        Dataset::from_csv(include_str!("../../data/demo/units.csv"), include_str!("../../data/demo/panel.csv"), None)
            .expect("the demonstration dataset is valid");
    let config = Config::default();
    let runner = SweepRunner::new(&dataset, &config, &SweepSpec { samples: n, ..SweepSpec::default() })
        .expect("the default spec is valid");
    let wires: Vec<Vec<u8>> = (0..n).map(|k| result_to_pb(&runner.run_range(k..k + 1)).encode_to_vec()).collect();
    let shape = runner.empty_aggregate().shape;

    let mut aggregate = runner.empty_aggregate();
    let mut times = [Duration::ZERO; 5];
    let mut delta: Option<Aggregate> = None;
    let mut batch_results = Vec::new();
    let mut stored_bytes = 0usize;
    for (i, bytes) in wires.iter().enumerate() {
        let t = Instant::now();
        let wire = pb::Aggregate::decode(bytes.as_slice()).expect("a result decodes");
        let result = result_from_pb(&wire, &shape).expect("a result is valid");
        times[0] += t.elapsed();
        let t = Instant::now();
        result.check_consistency().expect("a result is consistent");
        times[1] += t.elapsed();
        let t = Instant::now();
        delta.get_or_insert_with(|| Aggregate::empty(shape)).merge_sparse_but_logs(&result).expect("a result merges");
        times[2] += t.elapsed();
        batch_results.push(result);
        if (i + 1) % batch == 0 || i + 1 == wires.len() {
            let mut delta = delta.take().expect("merged above");
            let t = Instant::now();
            delta.add_sparse_logs(&batch_results.iter().collect::<Vec<_>>());
            times[2] += t.elapsed();
            batch_results.clear();
            let t = Instant::now();
            stored_bytes += encode_aggregate_packed(&delta).len();
            times[3] += t.elapsed();
            let t = Instant::now();
            aggregate.merge(&delta).expect("a delta merges");
            times[4] += t.elapsed();
        }
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
    println!(
        "{n} results of {} bytes on average, batches of {batch}: µs per result: decode {:.1}, check {:.1}, merge into the delta {:.1}, encode the delta {:.1} ({} bytes a batch), merge the delta {:.1}; {} samples merged",
        wires.iter().map(Vec::len).sum::<usize>() / wires.len().max(1),
        per(times[0]),
        per(times[1]),
        per(times[2]),
        per(times[3]),
        stored_bytes / (n as usize).div_ceil(batch),
        per(times[4]),
        aggregate.samples_ok
    );
}
