//! The sweep's fast path against the reference chain: in
//! [`Mode::Verify`] the runner compares every sample's outcome bit for bit
//! and the two aggregates, and panics on any difference. These tests run it
//! over the readings, designs and datasets a sweep can meet, including
//! samples the fast path must leave to the reference chain.

use zonesweep_shared::data::dataset::Dataset;
use zonesweep_shared::data::demo;
use zonesweep_shared::model::config::Config;
use zonesweep_shared::sweep::distribution::Distribution;
use zonesweep_shared::sweep::runner::{Mode, SweepRunner};
use zonesweep_shared::sweep::{
    Design, NoiseEntry, ReadingEntry, SensitivityGroups, SensitivityMethod, SensitivitySpec, SweepSpec,
};

/// Prepares the process before each test: nothing here. `portable.rs`
/// runs these tests again with its own `setup`, which takes the portable
/// code.
#[allow(dead_code)]
fn setup() {}

fn demo_dataset() -> Dataset {
    Dataset::from_csv(include_str!("../../data/demo/units.csv"), include_str!("../../data/demo/panel.csv"), None)
        .expect("the demonstration dataset is valid")
}

fn reading(name: &str, weights: &[(&str, f64)]) -> ReadingEntry {
    ReadingEntry { name: name.into(), weights: weights.iter().map(|&(k, w)| (k.to_owned(), w)).collect() }
}

/// Run `range` in verify mode and check it equals the reference alone.
fn verify(dataset: &Dataset, config: &Config, spec: &SweepSpec, range: std::ops::Range<u64>) {
    let runner = SweepRunner::new(dataset, config, spec).expect("a valid sweep");
    assert!(runner.has_fast_path(), "this sweep takes the fast path");
    let taken = range.clone().filter(|&k| runner.fast_path_takes(k)).count();
    let reference = runner.clone().with_mode(Mode::Reference).run_range(range.clone());
    assert!(
        taken as u64 >= reference.samples_ok * 9 / 10,
        "the fast path took only {taken} of {} successful samples",
        reference.samples_ok
    );
    let verified = runner.clone().with_mode(Mode::Verify).run_range(range.clone());
    let fast = runner.with_mode(Mode::Fast).run_range(range);
    assert!(verified == reference && fast == reference, "the modes' aggregates differ");
}

#[test]
fn the_default_spec_on_the_demonstration_dataset_is_bit_identical() {
    crate::setup();
    verify(&demo_dataset(), &Config::default(), &SweepSpec::default(), 0..600);
}

#[test]
fn every_reading_and_design_is_bit_identical() {
    crate::setup();
    let dataset = demo::generate(40, 7).expect("a valid demo dataset");
    let config = Config::default();
    let readings = vec![
        reading("fit", &[("regional", 1.0), ("pooled", 1.0)]),
        reading("cei", &[("gdp", 1.0), ("secondary_gdp", 1.0)]),
        reading("interval_years", &[("1", 1.0), ("5", 1.0), ("3", 1.0)]),
        reading("neutral_sink", &[("base-year", 1.0), ("sen-extrapolation", 1.0)]),
    ];
    for design in [Design::MonteCarlo, Design::LatinHypercube, Design::Sobol] {
        let spec = SweepSpec { design, samples: 300, reading: readings.clone(), seed: 5, ..SweepSpec::default() };
        verify(&dataset, &config, &spec, 0..300);
    }
    // The earlier readings as the configuration's own.
    let text = "[stirpat]\nfit = \"pooled\"\ncei = \"secondary_gdp\"\n[scenarios]\ninterval_years = 1\nneutral_sink = \"sen-extrapolation\"\n";
    let earlier = Config::from_toml_overrides(text, "earlier").expect("valid");
    verify(&dataset, &earlier, &SweepSpec { samples: 200, ..SweepSpec::default() }, 0..200);
}

#[test]
fn samples_the_fast_path_gives_up_on_come_out_as_the_reference_gives_them() {
    crate::setup();
    // K far outside its usual range and rates that collapse drivers make
    // some samples fail (singular fits, projections below zero): the fast
    // path leaves them to the reference chain, which records the failure.
    let dataset = demo::generate(30, 3).expect("a valid demo dataset");
    let config = Config::default();
    let spec = SweepSpec {
        samples: 300,
        k: Some(Distribution::Uniform { low: 0.0, high: 0.02 }),
        rate: vec![zonesweep_shared::sweep::RateEntry {
            scenario: "low".into(),
            variable: "TI".into(),
            period: "first".into(),
            multiplier: Distribution::Uniform { low: -40.0, high: 40.0 },
        }],
        ..SweepSpec::default()
    };
    let runner = SweepRunner::new(&dataset, &config, &spec).expect("a valid sweep");
    let reference = runner.clone().with_mode(Mode::Reference).run_range(0..300);
    assert!(
        reference.samples_failed() > 0 && reference.samples_ok > 0,
        "the spec makes some samples fail: {} ok, {:?}",
        reference.samples_ok,
        reference.failures
    );
    verify(&dataset, &config, &spec, 0..300);
}

#[test]
fn data_noise_runs_the_reference_chain() {
    crate::setup();
    let dataset = demo::generate(12, 2).expect("a valid demo dataset");
    let config = Config::default();
    let noisy = SweepSpec { noise: vec![NoiseEntry { group: "*".into(), sigma: 0.05 }], ..SweepSpec::default() };
    let runner = SweepRunner::new(&dataset, &config, &noisy).unwrap();
    assert!(!runner.has_fast_path());
    assert_eq!(runner.clone().run_range(0..20), runner.with_mode(Mode::Reference).run_range(0..20));
}

/// A sensitivity design takes the fast path for each of its runs (A, B
/// and every A_B^g): verified run by run, and the aggregate with its
/// sensitivity sums equal to the reference chain's, by `run_range` and by
/// `run_into` alike.
#[test]
fn a_sensitivity_design_takes_the_fast_path_run_by_run() {
    crate::setup();
    let dataset = demo_dataset();
    let config = Config::default();
    let spec = SweepSpec {
        design: Design::Sobol,
        reading: vec![reading("fit", &[("regional", 1.0), ("pooled", 1.0)])],
        sensitivity: Some(SensitivitySpec { method: SensitivityMethod::Saltelli, groups: SensitivityGroups::Default }),
        ..SweepSpec::default()
    };
    let runner = SweepRunner::new(&dataset, &config, &spec).expect("a valid sweep");
    assert!(runner.has_fast_path());
    let verified = runner.clone().with_mode(Mode::Verify).run_range(0..40);
    let reference = runner.clone().with_mode(Mode::Reference).run_range(0..40);
    assert!(verified == reference, "the verified aggregate differs from the reference chain's");
    assert!(reference.sensitivity.as_ref().is_some_and(|sums| sums.samples > 0));
    let mut accumulator = runner.accumulator();
    runner.run_into(0..40, &mut Default::default(), &mut accumulator);
    assert!(accumulator.finish() == reference, "run_into differs from the reference chain");
}

#[test]
fn the_accumulator_counts_extreme_and_non_finite_values_as_aggregate_add_does() {
    crate::setup();
    let dataset = demo::generate(9, 4).expect("a valid demo dataset");
    let config = Config::default();
    let runner = SweepRunner::new(&dataset, &config, &SweepSpec::default()).expect("a valid sweep");
    let mut outcomes = Vec::new();
    for k in 0..40 {
        let mut outcome = runner.sample(k).expect("the sample succeeds");
        // Values at the ends of the bins' range and beyond it.
        match k % 4 {
            0 => outcome.coefficients[0] = -1e19,
            1 => outcome.coefficients[1] = f64::NAN,
            2 => outcome.r2 = f64::NEG_INFINITY,
            _ => outcome.coefficients[2] = 1e300,
        }
        outcome.units[0].scenarios[0].ce_horizon = if k % 2 == 0 { 0.0 } else { f64::INFINITY };
        // Values far apart (the accumulator's dense counters then spill
        // into the sparse bins and start again), in both directions.
        outcome.units[2].scenarios[0].ce_horizon = [1e-300, 1e300, 1.0, 1e150, 1e-150][k as usize % 5];
        outcome.units[3].scenarios[1].ce_horizon = 1e-3 * 1.5f64.powi(k as i32 * if k % 2 == 0 { 1 } else { -1 });
        outcome.regional_ce[1][3] = -5.0;
        // Slots without a value, which neither counts.
        if k % 3 == 0 {
            outcome.units[1].scenarios[2].ce_milestone = None;
            let years = outcome.regional_ce[2].len();
            outcome.regional_ce[2].truncate(years - 2);
        }
        outcomes.push(outcome);
    }
    let mut reference = runner.empty_aggregate();
    let mut accumulator = runner.accumulator();
    for outcome in &outcomes {
        reference.add(outcome);
        accumulator.add(outcome);
    }
    assert!(accumulator.finish() == reference, "the accumulator and Aggregate::add differ");
}

/// A sample whose indices are not finite (a net ecosystem productivity
/// multiplied by 10⁻³²⁰, so the carbon footprint overflows): the reference
/// chain refuses every such sample, and the fast path leaves each to it.
#[test]
fn a_non_finite_index_leaves_the_sample_to_the_reference_chain() {
    crate::setup();
    let dataset = demo::generate(12, 5).expect("a valid demo dataset");
    let config = Config::default();
    let spec = SweepSpec {
        coefficient: vec![zonesweep_shared::sweep::CoefficientEntry {
            name: "nep.cropland".into(),
            multiplier: Distribution::Fixed { value: 1e-320 },
        }],
        ..SweepSpec::default()
    };
    let runner = SweepRunner::new(&dataset, &config, &spec).expect("a valid sweep");
    let reference = runner.clone().with_mode(Mode::Reference).run_range(0..20);
    assert_eq!(reference.samples_failed(), 20, "every sample fails: {:?}", reference.failures);
    assert!(reference.failures.keys().all(|kind| kind.ends_with("not finite")), "{:?}", reference.failures);
    assert!((0..20).all(|k| !runner.fast_path_takes(k)), "the fast path took a sample with a non-finite index");
    assert!(runner.clone().with_mode(Mode::Verify).run_range(0..20) == reference);
    assert!(runner.with_mode(Mode::Fast).run_range(0..20) == reference);
}
