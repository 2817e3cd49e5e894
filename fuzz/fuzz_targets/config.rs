//! A model configuration file (`--config`, `submit`'s configuration): the
//! default configuration overridden by the input's TOML. Every input is
//! either refused with a message or gives a configuration that `evaluate`
//! (with `--k auto` too) and a worker run on a small dataset, the worker's
//! result passing the coordinator's checks.

#![no_main]

use libfuzzer_sys::fuzz_target;
use zonesweep_fuzz::{fixture_dataset, run_as_worker};
use zonesweep_shared::model::chain::{self, Detail, Parameters};
use zonesweep_shared::model::config::Config;
use zonesweep_shared::model::evaluation::EvaluateDocument;
use zonesweep_shared::numerics::ridge;
use zonesweep_shared::sweep::SweepSpec;

/// A configuration is a few kilobytes; the default one written out is ~12 KiB.
const MAX_INPUT: usize = 32 * 1024;

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT {
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    let config = match Config::from_toml_overrides(text, "fuzz.toml") {
        Ok(config) => config,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    assert!(config.problems().is_empty());
    let dataset = fixture_dataset();
    let mut parameters = Parameters::nominal(&config);
    if let Ok((trace, _)) = chain::ridge_trace(dataset, &config, &parameters) {
        parameters.k = ridge::automatic_k(&trace, config.ridge.vif_limit, config.ridge.stability);
    }
    if let Ok(result) = chain::run(dataset, &config, &parameters, Detail::Full) {
        let _ = EvaluateDocument::new(dataset, &result);
    }
    run_as_worker(dataset, &config, &SweepSpec { samples: 2, ..SweepSpec::default() }, &[0, 1]);
});
