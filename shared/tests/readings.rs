//! Readings of the paper as uncertain parameters: a sweep spec's
//! `[[reading]]` entries draw `fit`, `cei`, `interval_years` and
//! `neutral_sink` per sample, each with given weights.

use zonesweep_shared::data::dataset::Dataset;
use zonesweep_shared::data::demo;
use zonesweep_shared::model::chain::{self, Detail, Parameters};
use zonesweep_shared::model::config::{CeiBasis, Config, Fit, Readings};
use zonesweep_shared::numerics::ridge::N_PREDICTORS;
use zonesweep_shared::sweep::aggregate::Aggregate;
use zonesweep_shared::sweep::distribution::Distribution;
use zonesweep_shared::sweep::runner::SweepRunner;
use zonesweep_shared::sweep::{Design, ReadingEntry, SweepError, SweepSpec};

fn reading(name: &str, weights: &[(&str, f64)]) -> ReadingEntry {
    ReadingEntry { name: name.into(), weights: weights.iter().map(|&(k, w)| (k.to_owned(), w)).collect() }
}

/// Nothing uncertain but K, fixed at the paper's value.
fn quiet_spec(samples: u64) -> SweepSpec {
    SweepSpec {
        samples,
        k: Some(Distribution::Fixed { value: 0.02 }),
        rate: vec![],
        cap: vec![],
        coefficient: vec![],
        ..SweepSpec::default()
    }
}

fn dataset() -> Dataset {
    demo::generate(24, 11).expect("the demo generator gives a valid dataset")
}

fn earlier_readings() -> Config {
    let text = "[stirpat]\nfit = \"pooled\"\ncei = \"secondary_gdp\"\n[scenarios]\ninterval_years = 1\n";
    Config::from_toml_overrides(text, "earlier").expect("valid")
}

#[test]
fn drawing_a_reading_leaves_every_other_parameter_unchanged() {
    let config = Config::default();
    let rows = dataset();
    for design in [Design::MonteCarlo, Design::LatinHypercube, Design::Sobol] {
        let without = SweepSpec { design, samples: 64, ..SweepSpec::default() };
        let with = SweepSpec {
            reading: vec![
                reading("fit", &[("regional", 0.5), ("pooled", 0.5)]),
                reading("interval_years", &[("1", 1.0), ("5", 1.0)]),
            ],
            ..without.clone()
        };
        let (a, b) = (without.plan(&config).unwrap(), with.plan(&config).unwrap());
        assert_eq!(b.dimensions.len(), a.dimensions.len() + 2);
        let mut seen = [false; 2];
        for k in 0..64 {
            let plain = a.draw(k, &config, rows.rows()).parameters;
            let mut drawn = b.draw(k, &config, rows.rows()).parameters;
            seen[usize::from(drawn.readings.fit == Fit::Pooled)] = true;
            assert_eq!(drawn.readings.cei, CeiBasis::Gdp, "cei is not drawn");
            drawn.readings = plain.readings;
            assert_eq!(drawn, plain, "{design:?} sample {k}");
        }
        assert_eq!(seen, [true, true], "{design:?}: both fits drawn in 64 samples");
    }
}

#[test]
fn a_fifty_fifty_fit_shows_both_readings_in_the_aggregate() {
    let dataset = dataset();
    let config = Config::default();
    let n = 200;
    let spec = SweepSpec { reading: vec![reading("fit", &[("regional", 1.0), ("pooled", 1.0)])], ..quiet_spec(n) };
    let runner = SweepRunner::new(&dataset, &config, &spec).unwrap();
    let aggregate: Aggregate = runner.run_range(0..n);
    assert_eq!(aggregate.samples_ok, n, "{:?}", aggregate.failures);

    // With K fixed and nothing else uncertain, each fit gives one set of
    // coefficients: the P histogram has exactly the two fits' bins, counted
    // as often as each fit was drawn.
    let pooled_draws = (0..n)
        .filter(|&k| runner.plan().draw(k, &config, dataset.rows()).parameters.readings.fit == Fit::Pooled)
        .count();
    assert!((70..=130).contains(&pooled_draws), "{pooled_draws} of {n} pooled");
    let fit_of = |fit| {
        let mut config = config.clone();
        config.stirpat.fit = fit;
        chain::run(&dataset, &config, &Parameters::nominal(&config), Detail::Sample).unwrap().stirpat.fit.coefficients
    };
    let (regional, pooled) = (fit_of(Fit::Regional), fit_of(Fit::Pooled));
    for j in 0..N_PREDICTORS {
        let histogram = &aggregate.coefficients[j];
        let bin = |v: f64| (v / histogram.width).floor() as i64;
        if bin(regional[j]) == bin(pooled[j]) {
            continue;
        }
        let counts: Vec<(i64, u64)> = histogram.bins.iter().copied().collect();
        assert_eq!(
            counts,
            {
                let mut expected =
                    vec![(bin(regional[j]), (n as usize - pooled_draws) as u64), (bin(pooled[j]), pooled_draws as u64)];
                expected.sort();
                expected
            },
            "coefficient {j}"
        );
    }
    assert_ne!(bin_of(regional[0]), bin_of(pooled[0]), "the two fits give different P elasticities");
}

fn bin_of(v: f64) -> i64 {
    (v / zonesweep_shared::sweep::aggregate::COEFFICIENT_BIN_WIDTH).floor() as i64
}

#[test]
fn a_drawn_reading_gives_what_the_configured_reading_gives() {
    let dataset = dataset();
    let drawn_config = Config::default();
    let spec = SweepSpec {
        reading: vec![
            reading("fit", &[("pooled", 1.0)]),
            reading("cei", &[("secondary_gdp", 2.0), ("gdp", 0.0)]),
            reading("interval_years", &[("1", 1.0)]),
        ],
        ..quiet_spec(20)
    };
    let configured = earlier_readings();
    let drawn = SweepRunner::new(&dataset, &drawn_config, &spec).unwrap();
    let fixed = SweepRunner::new(&dataset, &configured, &quiet_spec(20)).unwrap();
    assert_eq!(
        drawn.plan().draw(3, &drawn_config, dataset.rows()).parameters.readings,
        Readings::of(&configured),
        "every sample draws the only option with weight"
    );
    for k in 0..20 {
        assert_eq!(drawn.sample(k).unwrap(), fixed.sample(k).unwrap(), "sample {k}");
    }
    // And the earlier readings really differ from the defaults here.
    let default = SweepRunner::new(&dataset, &drawn_config, &quiet_spec(20)).unwrap();
    assert_ne!(default.sample(0).unwrap(), fixed.sample(0).unwrap());
}

#[test]
fn the_neutral_sink_rule_can_be_drawn() {
    let text = "samples = 10\n[[reading]]\nname = \"neutral_sink\"\nweights = { base-year = 1, sen-extrapolation = 3 }\n\
                [[reading]]\nname = \"interval_years\"\nweights = { 1 = 0.5, 5 = 0.5 }\n";
    let spec = SweepSpec::from_toml(text, "spec.toml").unwrap();
    let config = Config::default();
    let plan = spec.plan(&config).unwrap();
    assert_eq!(plan.interval_years_drawn(&config), vec![5, 1]);
    let names: Vec<&str> = plan.dimensions.iter().rev().take(2).map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["reading.interval_years", "reading.neutral_sink"]);
    // The spec round-trips through its TOML.
    assert_eq!(SweepSpec::from_toml(&spec.to_toml(), "again").unwrap(), spec);
    let dataset = dataset();
    let runner = SweepRunner::new(&dataset, &config, &spec).unwrap();
    assert_eq!(runner.run_range(0..10).samples_ok, 10);
}

#[test]
fn bad_reading_entries_are_refused_naming_the_choices() {
    let refused = |entries: Vec<ReadingEntry>| match (SweepSpec { reading: entries, ..quiet_spec(10) })
        .plan(&Config::default())
    {
        Err(e @ SweepError::Invalid(_)) => e.to_string(),
        other => panic!("expected a refusal, got {other:?}"),
    };
    let e = refused(vec![reading("fits", &[("regional", 1.0)])]);
    assert!(e.contains("reading[0]") && e.contains("`fits` is not a reading") && e.contains("interval_years"), "{e}");
    let e = refused(vec![reading("fit", &[("regionall", 1.0)])]);
    assert!(e.contains("no option `regionall`") && e.contains("regional, pooled"), "{e}");
    let e = refused(vec![reading("cei", &[("gdp", -1.0), ("secondary_gdp", 1.0)])]);
    assert!(e.contains("weight of `gdp` is -1"), "{e}");
    let e = refused(vec![reading("cei", &[("gdp", 0.0)])]);
    assert!(e.contains("at least one option with a weight > 0"), "{e}");
    let e = refused(vec![reading("cei", &[])]);
    assert!(e.contains("at least one option"), "{e}");
    let e = refused(vec![reading("interval_years", &[("0", 1.0)])]);
    assert!(e.contains("from 1 to 100"), "{e}");
    let e = refused(vec![reading("fit", &[("pooled", 1.0)]), reading("fit", &[("regional", 1.0)])]);
    assert!(e.contains("reading[1]") && e.contains("named twice"), "{e}");
    let e = SweepSpec::from_toml("[[reading]]\nname = \"fit\"\nweight = { pooled = 1 }\n", "s.toml").unwrap_err();
    assert!(e.to_string().contains("weight"), "{e}");
}

#[test]
fn the_configured_readings_are_checked() {
    let e = Config::from_toml_overrides("[stirpat]\nfit = \"both\"\n", "c.toml").unwrap_err().to_string();
    assert!(e.contains("stirpat.fit") && e.contains("regional") && e.contains("pooled"), "{e}");
    let e = Config::from_toml_overrides("[scenarios]\ninterval_years = 0\n", "c.toml").unwrap_err().to_string();
    assert!(e.contains("scenarios.interval_years is 0"), "{e}");
}

/// A regional series that does not vary is a clear error of the run, not a NaN.
#[test]
fn a_regional_series_without_variance_is_a_clear_error() {
    use zonesweep_shared::data::fields::Field;
    let dataset = dataset();
    let mut rows = dataset.rows().to_vec();
    let n_years = dataset.n_years();
    // Every unit's population constant over the years: the regional P is flat.
    for (i, row) in rows.iter_mut().enumerate() {
        let first = dataset.rows()[i - i % n_years][Field::Population as usize];
        let share = row[Field::UrbanPopulation as usize] / row[Field::Population as usize];
        row[Field::Population as usize] = first;
        row[Field::UrbanPopulation as usize] = share * first;
    }
    let flat = Dataset::from_parts(dataset.units().to_vec(), dataset.years().to_vec(), rows).unwrap();
    let config = Config::default();
    let error = match chain::run(&flat, &config, &Parameters::nominal(&config), Detail::Full) {
        Ok(result) => panic!("a flat regional P fitted: {:?}", result.stirpat),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("regional fit over 21 years") && error.contains("ln P does not vary"), "{error}");
}

/// An option of weight 0 is never drawn, wherever it sorts among the others.
#[test]
fn an_option_of_weight_zero_is_never_drawn() {
    let config = Config::default();
    let rows = dataset();
    for design in [Design::MonteCarlo, Design::LatinHypercube, Design::Sobol] {
        let spec = SweepSpec {
            design,
            reading: vec![reading("cei", &[("gdp", 1.0), ("secondary_gdp", 0.0)])],
            ..quiet_spec(64)
        };
        let plan = spec.plan(&config).unwrap();
        assert_eq!(plan.readings[0].options.len(), 1, "{:?}", plan.readings[0]);
        for k in 0..64 {
            assert_eq!(plan.draw(k, &config, rows.rows()).parameters.readings.cei, CeiBasis::Gdp);
        }
        assert_eq!(plan.readings[0].pick(1.0), zonesweep_shared::sweep::ReadingValue::Cei(CeiBasis::Gdp));
    }
}
