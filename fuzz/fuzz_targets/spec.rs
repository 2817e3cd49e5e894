//! A submission's sweep spec and configuration, as `submit` sends them and
//! the coordinator prepares them: the spec's TOML, and optionally NUL and
//! the configuration's TOML, over a small fixed dataset. Every input is
//! either refused or gives a sweep whose stored spec and configuration a
//! worker reads back and runs, its results passing the coordinator's checks.

#![no_main]

use libfuzzer_sys::fuzz_target;
use zonesweep_coordinator::submission::{JobSizing, Submission, prepare};
use zonesweep_fuzz::{fixture_csv, fixture_dataset, run_as_worker, texts};
use zonesweep_shared::model::config::Config;
use zonesweep_shared::sweep::SweepSpec;

/// A spec is a few kilobytes at most.
const MAX_INPUT: usize = 32 * 1024;

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT {
        return;
    }
    let Some(parts) = texts(data) else { return };
    let (spec_toml, config_toml) = match parts[..] {
        [spec] => (spec, ""),
        [spec, config] => (spec, config),
        _ => return,
    };
    let (units_csv, panel_csv) = fixture_csv().clone();
    let submission = Submission {
        units_csv,
        panel_csv,
        config_toml: config_toml.to_owned(),
        spec_toml: spec_toml.to_owned(),
        ..Submission::default()
    };
    let prepared = match prepare(submission, JobSizing::Fixed(100)) {
        Ok(prepared) => prepared,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    // A worker fetches the stored configuration and spec by hash and parses them.
    let blob = |i: usize| std::str::from_utf8(&prepared.blobs[i].1).expect("stored blobs are text");
    let config = Config::from_toml_overrides(blob(1), "the configuration")
        .unwrap_or_else(|e| panic!("a stored configuration is refused: {e}"));
    let spec = SweepSpec::from_toml(blob(2), "the sweep spec")
        .unwrap_or_else(|e| panic!("a stored spec is refused: {e}\n{}", blob(2)));
    assert_eq!(spec.to_toml(), blob(2), "a stored spec changes when written again");
    let record = &prepared.record;
    assert_eq!((spec.samples, spec.seed), (record.samples, record.seed));
    let last = record.samples.saturating_sub(1);
    let aggregate = run_as_worker(fixture_dataset(), &config, &spec, &[0, last])
        .unwrap_or_else(|| panic!("a worker cannot run a sweep the coordinator accepted"));
    assert_eq!(aggregate.shape, prepared.empty.shape);
});
