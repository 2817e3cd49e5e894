//! A dataset folder as `data validate`, `evaluate --data` and `submit` read
//! it: `units.csv`, NUL, `panel.csv`, and optionally NUL, `units.geojson`.
//! Every input is either refused with its problems or gives a dataset that
//! writes back to files read the same, survives the coordinator's blob, and
//! runs through the nominal chain into a result the coordinator accepts.

#![no_main]

use libfuzzer_sys::fuzz_target;
use zonesweep_fuzz::{run_as_worker, texts};
use zonesweep_shared::data::blob::DatasetBlob;
use zonesweep_shared::data::dataset::{Dataset, MIN_YEARS};
use zonesweep_shared::model::chain::{self, Detail, Parameters};
use zonesweep_shared::model::config::Config;
use zonesweep_shared::model::evaluation::EvaluateDocument;
use zonesweep_shared::sweep::SweepSpec;

/// Larger inputs only slow the search down.
const MAX_INPUT: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT {
        return;
    }
    let Some(parts) = texts(data) else { return };
    let (units, panel, geojson) = match parts[..] {
        [units, panel] => (units, panel, None),
        [units, panel, geojson] => (units, panel, Some(geojson)),
        _ => return,
    };
    let dataset = match Dataset::from_csv(units, panel, geojson) {
        Ok(dataset) => dataset,
        Err(e) => {
            assert!(!e.problems.is_empty(), "a dataset refused without a problem");
            let _ = e.to_string();
            return;
        }
    };
    // What `data validate` shows.
    let _ = dataset.warnings();
    let years = dataset.years();
    assert!(years.len() >= MIN_YEARS && dataset.n_units() > 0);
    assert_eq!(dataset.base_year(), years[years.len() - 1]);

    // The dataset's own files (`data demo`, `Dataset::from_parts`) read back the same.
    let (units_csv, panel_csv) = dataset.to_csv();
    let again = Dataset::from_csv(&units_csv, &panel_csv, None)
        .unwrap_or_else(|e| panic!("a valid dataset's own files are refused: {e}"));
    assert_eq!(again.units(), dataset.units());
    assert_eq!(again.years(), dataset.years());
    assert_eq!(again.rows(), dataset.rows());

    // The coordinator stores the files as a blob; a worker parses it back.
    let blob = DatasetBlob {
        units_csv: units.to_owned(),
        panel_csv: panel.to_owned(),
        units_geojson: geojson.map(str::to_owned),
    };
    let fetched = DatasetBlob::from_bytes(&blob.to_bytes()).expect("a blob reads back");
    assert_eq!(fetched.parse().expect("a stored dataset parses again"), dataset);

    // `evaluate --data` and one sample of a default sweep, on small datasets.
    if dataset.n_units() > 30 || dataset.n_years() > 40 {
        return;
    }
    let config = Config::default();
    let parameters = Parameters::nominal(&config);
    if let Ok(result) = chain::run(&dataset, &config, &parameters, Detail::Full) {
        let _ = EvaluateDocument::new(&dataset, &result);
    }
    run_as_worker(&dataset, &config, &SweepSpec { samples: 1, ..SweepSpec::default() }, &[0]);
});
