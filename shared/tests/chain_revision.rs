//! The model chain's revision ([`zonesweep_shared::CHAIN_REVISION`]) pinned
//! to what samples compute: every bit of the outcomes of a few samples of the
//! demonstration dataset, under three specs (Monte Carlo, Sobol', data
//! noise), digested.
//!
//! The coordinator takes workers of its own revision only, so a change that
//! moves any bit of any sample must raise the revision; this test fails
//! until it does. When it fails: if the change is meant to alter samples,
//! raise `CHAIN_REVISION` and put the printed digest beside it in
//! [`PINNED`]; if not, the change altered samples by mistake.
//!
//! The digest is also the same on every machine (docs/model.md,
//! "Determinism"): CI runs this test, so a machine that computes another bit
//! fails it.

use sha2::{Digest, Sha256};
use zonesweep_shared::CHAIN_REVISION;
use zonesweep_shared::data::dataset::Dataset;
use zonesweep_shared::model::config::Config;
use zonesweep_shared::sweep::aggregate::Outcome;
use zonesweep_shared::sweep::runner::SweepRunner;
use zonesweep_shared::sweep::{Design, NoiseEntry, SweepSpec};

/// Each revision and the digest of its samples.
const PINNED: &[(u32, &str)] = &[(1, "783e635d7d89f6bae3e9641cc8fe89671c1f4eb7ed5bbc0b95cdbd658d99b58c")];

/// Prepares the process before the test: nothing here. `portable.rs`
/// runs this test again with its own `setup`, which takes the portable
/// code.
#[allow(dead_code)]
fn setup() {}

fn digest_outcome(hasher: &mut Sha256, outcome: &Outcome) {
    let mut f = |v: f64| hasher.update(v.to_bits().to_le_bytes());
    for unit in &outcome.units {
        f(f64::from(unit.zone));
        f(f64::from(unit.total));
        unit.scores.iter().for_each(|&s| f(f64::from(s)));
        f(f64::from(unit.cep));
        for scenario in &unit.scenarios {
            f(scenario.peak_year.map_or(-1.0, f64::from));
            f(f64::from(u8::from(scenario.peaked_by_milestone)));
            f(f64::from(u8::from(scenario.neutral)));
            f(scenario.ce_milestone.unwrap_or(f64::NAN));
            f(scenario.ce_horizon);
        }
    }
    for series in &outcome.regional_ce {
        f(series.len() as f64);
        series.iter().copied().for_each(&mut f);
    }
    outcome.coefficients.iter().copied().for_each(&mut f);
    f(outcome.r2);
    f(outcome.k);
}

#[test]
fn the_chain_revision_pins_every_bit_of_a_few_samples() {
    crate::setup();
    let dataset =
        Dataset::from_csv(include_str!("../../data/demo/units.csv"), include_str!("../../data/demo/panel.csv"), None)
            .expect("the demonstration dataset is valid");
    let config = Config::default();
    let specs = [
        (SweepSpec { seed: 11, ..SweepSpec::default() }, 24),
        (SweepSpec { seed: 12, design: Design::Sobol, ..SweepSpec::default() }, 8),
        (SweepSpec { seed: 13, noise: vec![NoiseEntry { group: "*".into(), sigma: 0.05 }], ..SweepSpec::default() }, 8),
    ];
    let mut hasher = Sha256::new();
    for (spec, samples) in specs {
        let runner = SweepRunner::new(&dataset, &config, &spec).expect("the spec is valid");
        for k in 0..samples {
            match runner.sample(k) {
                Ok(outcome) => digest_outcome(&mut hasher, &outcome),
                Err(error) => hasher.update(error.to_string().as_bytes()),
            }
        }
    }
    let digest = hex::encode(hasher.finalize());
    let pinned = PINNED.iter().find(|(revision, _)| *revision == CHAIN_REVISION).map(|(_, d)| *d);
    assert_eq!(
        pinned,
        Some(digest.as_str()),
        "the samples' digest is {digest} under chain revision {CHAIN_REVISION}: a change altered what samples \
         compute; if it is meant to, raise CHAIN_REVISION and pin this digest beside it (see this file's header)"
    );
}
