//! Sweep specs, plans, designs and the sample runner (docs/model.md section 8,
//! ARCHITECTURE.md invariant 1): spec parsing and wildcard resolution, the draws of
//! sample k depending on (seed, k) alone, the stratification of the Latin
//! hypercube and Sobol' designs, and aggregates that do not depend on how a
//! sweep's samples were split or ordered.

#![allow(clippy::disallowed_methods)] // expectations stated with the platform's functions

use std::collections::BTreeSet;

use zonesweep_shared::data::dataset::Dataset;
use zonesweep_shared::data::demo;
use zonesweep_shared::data::fields::{Field, FieldGroup};
use zonesweep_shared::model::chain::Parameters;
use zonesweep_shared::model::coefficients::{Coefficients, N_COEFFICIENTS};
use zonesweep_shared::model::config::{Config, Driver, Period, Scenario};
use zonesweep_shared::sweep::aggregate::{Aggregate, KEPT_FAILED_SAMPLES};
use zonesweep_shared::sweep::distribution::Distribution;
use zonesweep_shared::sweep::runner::SweepRunner;
use zonesweep_shared::sweep::{
    CapEntry, CoefficientEntry, Design, NoiseEntry, Plan, RateEntry, SweepError, SweepSpec, Target, design_points,
};

// --- helpers -----------------------------------------------------------------

fn plan(spec: &SweepSpec) -> Plan {
    spec.plan(&Config::default()).unwrap_or_else(|e| panic!("the spec should plan: {e}"))
}

/// The problems of a spec that must not plan, joined for `contains` checks.
fn refused(spec: &SweepSpec) -> String {
    match spec.plan(&Config::default()) {
        Ok(_) => panic!("the spec should be refused: {spec:?}"),
        Err(e @ SweepError::Invalid(_)) => e.to_string(),
        Err(e) => panic!("expected SweepError::Invalid, got {e}"),
    }
}

fn parse(text: &str) -> Result<SweepSpec, SweepError> {
    SweepSpec::from_toml(text, "spec.toml")
}

fn parse_error(text: &str) -> String {
    match parse(text) {
        Ok(spec) => panic!("the spec should not parse: {spec:?}"),
        Err(e @ SweepError::Parse { .. }) => e.to_string(),
        Err(e) => panic!("expected SweepError::Parse, got {e}"),
    }
}

fn rate(scenario: &str, variable: &str, period: &str, multiplier: Distribution) -> RateEntry {
    RateEntry { scenario: scenario.into(), variable: variable.into(), period: period.into(), multiplier }
}

fn cap(scenario: &str, variable: &str, period: &str, offset: Distribution) -> CapEntry {
    CapEntry { scenario: scenario.into(), variable: variable.into(), period: period.into(), offset }
}

fn coefficient(name: &str, multiplier: Distribution) -> CoefficientEntry {
    CoefficientEntry { name: name.into(), multiplier }
}

/// A spec with nothing uncertain, to add entries to.
fn empty_spec() -> SweepSpec {
    SweepSpec {
        k: None,
        trend_threshold: None,
        rate: vec![],
        cap: vec![],
        coefficient: vec![],
        noise: vec![],
        ..SweepSpec::default()
    }
}

const UNIFORM: Distribution = Distribution::Uniform { low: 0.9, high: 1.1 };
const OTHER: Distribution = Distribution::Uniform { low: 2.0, high: 3.0 };

fn dimension_distribution(plan: &Plan, target: Target) -> Option<Distribution> {
    plan.dimensions.iter().find(|d| d.target == target).map(|d| d.distribution.spec())
}

/// A small synthetic dataset: the runner tests run a few hundred samples.
fn small_dataset() -> Dataset {
    demo::generate(24, 11).expect("the demo generator gives a valid dataset")
}

fn json(aggregate: &Aggregate) -> String {
    serde_json::to_string(aggregate).expect("an aggregate serializes")
}

// --- the default spec --------------------------------------------------------

#[test]
fn default_spec_round_trips_and_has_125_dimensions() {
    let spec = SweepSpec::default();
    let text = spec.to_toml();
    let back = SweepSpec::from_toml(&text, "default.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(back, spec, "{text}");

    let plan = plan(&spec);
    let count = |f: fn(&Target) -> bool| plan.dimensions.iter().filter(|d| f(&d.target)).count();
    assert_eq!(count(|t| matches!(t, Target::K)), 1);
    assert_eq!(count(|t| matches!(t, Target::TrendThreshold)), 0);
    assert_eq!(count(|t| matches!(t, Target::Rate { .. })), 36);
    assert_eq!(count(|t| matches!(t, Target::Cap { .. })), 12);
    assert_eq!(count(|t| matches!(t, Target::Coefficient(_))), 76);
    assert_eq!(N_COEFFICIENTS, 76);
    assert_eq!(plan.dimensions.len(), 125);
    // Caps exist only on the IS and UR rules of the default configuration.
    for d in &plan.dimensions {
        if let Target::Cap { driver, .. } = d.target {
            assert!(matches!(driver, Driver::IS | Driver::UR), "{}", d.name);
        }
    }
    // Names are unique and readable.
    let names: BTreeSet<&str> = plan.dimensions.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names.len(), 125);
    assert!(names.contains("k"));
    assert!(names.contains("rate.low.P.first"));
    assert!(names.contains("cap.high.UR.second"));
    assert!(names.contains("coefficient.breathing"));
    assert!(!plan.has_noise());
    assert_eq!((plan.samples, plan.seed, plan.design), (10_000, 1, Design::MonteCarlo));
}

#[test]
fn a_written_spec_parses_with_defaults_for_missing_keys() {
    let text = r#"
        samples = 500
        seed = 7
        design = "latin-hypercube"
        k = { dist = "truncated-normal", mean = 0.02, sd = 0.01, low = 0.0, high = 0.1 }
        trend_threshold = { dist = "triangular", low = 1.5, mode = 1.66, high = 2.0 }

        [[rate]]
        variable = "CEI"
        multiplier = { dist = "lognormal", mu = 0.0, sigma = 0.1 }

        [[cap]]
        scenario = "high"
        variable = "UR"
        period = "second"
        offset = { dist = "fixed", value = 1.0 }

        [[coefficient]]
        name = "energy.*.carbon"
        multiplier = { dist = "normal", mean = 1.0, sd = 0.02 }

        [[noise]]
        group = "energy"
        sigma = 0.05
    "#;
    let spec = parse(text).unwrap();
    assert_eq!(spec.samples, 500);
    assert_eq!(spec.design, Design::LatinHypercube);
    assert_eq!(spec.rate[0].scenario, "*");
    assert_eq!(spec.rate[0].period, "*");
    let plan = plan(&spec);
    // k, threshold, 6 CEI rates, 1 cap, 11 energy carbon coefficients.
    assert_eq!(plan.dimensions.len(), 1 + 1 + 6 + 1 + 11);
    assert!(plan.has_noise());
    assert_eq!(parse(&spec.to_toml()).unwrap(), spec);

    let empty = parse("").unwrap();
    assert_eq!((empty.samples, empty.seed, empty.design), (10_000, 1, Design::MonteCarlo));
    assert!(empty.k.is_none() && empty.rate.is_empty());
}

// --- wildcards and refusals --------------------------------------------------

#[test]
fn a_later_entry_overrides_an_earlier_one_for_the_cells_it_matches() {
    let spec = SweepSpec {
        rate: vec![rate("*", "*", "*", UNIFORM), rate("low", "P", "*", OTHER)],
        cap: vec![cap("*", "*", "*", UNIFORM), cap("baseline", "UR", "first", OTHER)],
        coefficient: vec![coefficient("*", UNIFORM), coefficient("crops.*.water", OTHER)],
        ..empty_spec()
    };
    let plan = plan(&spec);
    assert_eq!(plan.dimensions.len(), 36 + 12 + 76);
    for scenario in Scenario::ALL {
        for driver in Driver::ALL {
            for period in Period::ALL {
                let expected = if scenario == Scenario::Low && driver == Driver::P { OTHER } else { UNIFORM };
                assert_eq!(
                    dimension_distribution(&plan, Target::Rate { scenario, driver, period }),
                    Some(expected),
                    "rate {scenario:?} {driver:?} {period:?}"
                );
                let cap_expected = match (scenario, driver, period) {
                    (_, Driver::P | Driver::W | Driver::TI | Driver::CEI, _) => None,
                    (Scenario::Baseline, Driver::UR, Period::First) => Some(OTHER),
                    _ => Some(UNIFORM),
                };
                assert_eq!(
                    dimension_distribution(&plan, Target::Cap { scenario, driver, period }),
                    cap_expected,
                    "cap {scenario:?} {driver:?} {period:?}"
                );
            }
        }
    }
    for (c, name) in zonesweep_shared::model::coefficients::COEFFICIENT_NAMES.iter().enumerate() {
        let expected = if name.starts_with("crops.") && name.ends_with(".water") { OTHER } else { UNIFORM };
        assert_eq!(dimension_distribution(&plan, Target::Coefficient(c)), Some(expected), "{name}");
    }

    // The draws follow the winning entry.
    let config = Config::default();
    for k in 0..8 {
        let p = plan.draw(k, &config, &[]).parameters;
        for (s, row) in p.adjustments.rate_multiplier.iter().enumerate() {
            for (d, periods) in row.iter().enumerate() {
                for m in periods {
                    let range =
                        if s == Scenario::Low as usize && d == Driver::P as usize { 2.0..=3.0 } else { 0.9..=1.1 };
                    assert!(range.contains(m), "sample {k}: rate multiplier {m} of scenario {s}, driver {d}");
                }
            }
        }
    }

    // The other way round, the wildcard hides the specific entry everywhere:
    // it has no effect, and is refused like an entry that matches nothing.
    let reversed = SweepSpec { rate: vec![rate("low", "P", "*", OTHER), rate("*", "*", "*", UNIFORM)], ..empty_spec() };
    let problems = refused(&reversed);
    assert!(problems.contains("rate[0]") && !problems.contains("rate[1]"), "{problems}");
}

#[test]
fn fixed_values_apply_without_spending_a_dimension_draw() {
    let spec = SweepSpec {
        k: Some(Distribution::Fixed { value: 0.03 }),
        coefficient: vec![coefficient("breathing", Distribution::Fixed { value: 2.0 })],
        ..empty_spec()
    };
    let plan = plan(&spec);
    let config = Config::default();
    let draw = plan.draw(5, &config, &[]);
    assert_eq!(draw.parameters.k, 0.03);
    let breathing = Coefficients::index_of("breathing").unwrap();
    assert_eq!(draw.parameters.coefficients.get(breathing), 2.0 * config.coefficients.get(breathing));
    assert!(draw.rows.is_none());

    // A fixed value takes no random number (Monte Carlo) and no Sobol'
    // dimension: the other draws are those of the spec without it. (A Latin
    // hypercube keys its permutations by dimension position, so there the
    // draws after a fixed entry are other, equally valid, draws.)
    for design in [Design::MonteCarlo, Design::Sobol] {
        let base = SweepSpec {
            design,
            samples: 16,
            coefficient: vec![coefficient("energy.*", UNIFORM)],
            ..SweepSpec::default()
        };
        let with_fixed = SweepSpec {
            trend_threshold: Some(Distribution::Fixed { value: 1.96 }),
            coefficient: vec![
                coefficient("energy.*", UNIFORM),
                coefficient("breathing", Distribution::Uniform { low: 1.5, high: 1.5 }),
            ],
            ..base.clone()
        };
        let (a, b) = (self::plan(&with_fixed), self::plan(&base));
        assert_eq!(a.dimensions.len(), b.dimensions.len() + 2);
        for k in 0..16 {
            let (mut pa, pb) = (a.draw(k, &config, &[]).parameters, b.draw(k, &config, &[]).parameters);
            assert_eq!(pa.trend_threshold, 1.96);
            assert_eq!(pa.coefficients.get(breathing), 1.5 * config.coefficients.get(breathing));
            pa.trend_threshold = pb.trend_threshold;
            pa.coefficients.set(breathing, pb.coefficients.get(breathing));
            assert_eq!(pa, pb, "{design:?} sample {k}");
        }
    }
}

#[test]
fn patterns_that_match_nothing_are_refused_naming_the_entry() {
    let problems = refused(&SweepSpec {
        rate: vec![rate("*", "*", "*", UNIFORM), rate("medium", "*", "*", UNIFORM)],
        ..empty_spec()
    });
    assert!(problems.contains("rate[1]"), "{problems}");
    assert!(!problems.contains("rate[0]"), "{problems}");

    let problems = refused(&SweepSpec { rate: vec![rate("*", "GDP", "*", UNIFORM)], ..empty_spec() });
    assert!(problems.contains("rate[0]"), "{problems}");

    let problems = refused(&SweepSpec { cap: vec![cap("*", "*", "third", UNIFORM)], ..empty_spec() });
    assert!(problems.contains("cap[0]"), "{problems}");

    let problems = refused(&SweepSpec { coefficient: vec![coefficient("energy.uranium.*", UNIFORM)], ..empty_spec() });
    assert!(problems.contains("coefficient[0]") && problems.contains("energy.uranium.*"), "{problems}");

    let problems =
        refused(&SweepSpec { noise: vec![NoiseEntry { group: "weather".into(), sigma: 0.1 }], ..empty_spec() });
    assert!(problems.contains("noise[0]") && problems.contains("weather"), "{problems}");

    let problems = refused(&SweepSpec { rate: vec![rate("[", "*", "*", UNIFORM)], ..empty_spec() });
    assert!(problems.contains("rate[0]") && problems.contains("not a valid pattern"), "{problems}");

    // Every problem is reported, not just the first.
    let problems = refused(&SweepSpec {
        samples: 0,
        rate: vec![rate("medium", "*", "*", UNIFORM)],
        coefficient: vec![coefficient("nothing", UNIFORM)],
        ..empty_spec()
    });
    for what in ["samples", "rate[0]", "coefficient[0]"] {
        assert!(problems.contains(what), "{what} in {problems}");
    }
}

#[test]
fn a_cap_entry_naming_exactly_a_rule_without_a_cap_is_refused() {
    let problems = refused(&SweepSpec { cap: vec![cap("low", "P", "first", UNIFORM)], ..empty_spec() });
    assert!(problems.contains("cap[0]") && problems.contains("low.P.first"), "{problems}");
    let problems = refused(&SweepSpec {
        cap: vec![cap("*", "P", "*", UNIFORM), cap("high", "TI", "second", UNIFORM)],
        ..empty_spec()
    });
    assert!(problems.contains("cap[1]") && problems.contains("high.TI.second"), "{problems}");
    // A wildcard over capped and uncapped rules offsets only the capped ones.
    let plan = plan(&SweepSpec { cap: vec![cap("low", "*", "*", UNIFORM)], ..empty_spec() });
    assert_eq!(plan.dimensions.len(), 4);
    // A wildcard over uncapped rules only is accepted and offsets nothing.
    let plan = self::plan(&SweepSpec { cap: vec![cap("*", "P", "*", UNIFORM)], ..empty_spec() });
    assert!(plan.dimensions.is_empty());
}

#[test]
fn unknown_keys_are_refused_everywhere() {
    let problem = parse_error("samples = 10\nsampels = 10\n");
    assert!(problem.contains("spec.toml") && problem.contains("sampels"), "{problem}");
    let problem = parse_error("[[rate]]\nscenario = \"low\"\nmultipler = { dist = \"fixed\", value = 1.0 }\n");
    assert!(problem.contains("multipler"), "{problem}");
    let problem = parse_error("[[rate]]\nscenaro = \"low\"\nmultiplier = { dist = \"fixed\", value = 1.0 }\n");
    assert!(problem.contains("scenaro"), "{problem}");
    let problem =
        parse_error("[[coefficient]]\nname = \"*\"\nmultiplier = { dist = \"uniform\", low = 0.9, hi = 1.1 }\n");
    assert!(problem.contains("hi"), "{problem}");
    let problem = parse_error("k = { dist = \"uniform\", low = 0.01, high = 0.05, mode = 0.02 }\n");
    assert!(problem.contains("mode"), "{problem}");
    let problem = parse_error("[[noise]]\ngroup = \"energy\"\nsigma = 0.1\nmu = 0.0\n");
    assert!(problem.contains("mu"), "{problem}");
    let problem = parse_error("[[cap]]\nvariable = \"UR\"\noffset = { dist = \"fixed\", value = 1.0 }\nfactor = 2\n");
    assert!(problem.contains("factor"), "{problem}");
    // Unknown distributions and designs too.
    let problem = parse_error("k = { dist = \"gamma\", shape = 1.0 }\n");
    assert!(problem.contains("gamma"), "{problem}");
    let problem = parse_error("design = \"halton\"\n");
    assert!(problem.contains("halton"), "{problem}");
}

#[test]
fn bad_values_are_refused() {
    let problems = refused(&SweepSpec {
        rate: vec![rate("*", "*", "*", Distribution::Uniform { low: 1.2, high: 0.8 })],
        ..empty_spec()
    });
    assert!(problems.contains("rate[0].multiplier") && problems.contains("greater"), "{problems}");

    let problems = refused(&SweepSpec { k: Some(Distribution::Normal { mean: 0.02, sd: 0.01 }), ..empty_spec() });
    assert!(problems.contains("k:") && problems.contains("below 0"), "{problems}");
    let problems = refused(&SweepSpec { k: Some(Distribution::Uniform { low: -0.01, high: 0.05 }), ..empty_spec() });
    assert!(problems.contains("below 0"), "{problems}");
    for ok in [
        Distribution::TruncatedNormal { mean: 0.02, sd: 0.01, low: 0.0, high: 0.1 },
        Distribution::Lognormal { mu: -4.0, sigma: 0.3 },
        Distribution::Triangular { low: 0.0, mode: 0.02, high: 0.05 },
    ] {
        plan(&SweepSpec { k: Some(ok), ..empty_spec() });
    }

    let problems = refused(&SweepSpec { samples: 0, ..SweepSpec::default() });
    assert!(problems.contains("samples"), "{problems}");

    let problems = refused(&SweepSpec { noise: vec![NoiseEntry { group: "*".into(), sigma: -0.1 }], ..empty_spec() });
    assert!(problems.contains("noise[0]"), "{problems}");
    let problems =
        refused(&SweepSpec { noise: vec![NoiseEntry { group: "*".into(), sigma: f64::NAN }], ..empty_spec() });
    assert!(problems.contains("noise[0]"), "{problems}");

    let problems =
        refused(&SweepSpec { trend_threshold: Some(Distribution::Normal { mean: 1.66, sd: 0.1 }), ..empty_spec() });
    assert!(problems.contains("trend_threshold"), "{problems}");

    let problems = refused(&SweepSpec {
        cap: vec![cap("*", "*", "*", Distribution::TruncatedNormal { mean: 0.0, sd: 1.0, low: 50.0, high: 60.0 })],
        ..empty_spec()
    });
    assert!(problems.contains("cap[0].offset"), "{problems}");

    // A runner refuses an invalid configuration as well.
    let dataset = small_dataset();
    let mut config = Config::default();
    config.ridge.k = -1.0;
    match SweepRunner::new(&dataset, &config, &SweepSpec::default()) {
        Ok(_) => panic!("an invalid configuration should be refused"),
        Err(e) => assert!(e.to_string().contains("ridge.k"), "{e}"),
    }
}

#[test]
fn sobol_plans_the_default_spec() {
    let spec = SweepSpec { design: Design::Sobol, samples: 1 << 10, ..SweepSpec::default() };
    let plan = plan(&spec);
    assert_eq!(plan.design, Design::Sobol);
    assert_eq!(plan.dimensions.len(), 125);
    // The largest spec there is, every parameter uncertain (K, z*, every
    // rate, cap and coefficient, every reading), fits the Sobol' generator.
    let everything = SweepSpec {
        design: Design::Sobol,
        trend_threshold: Some(Distribution::Uniform { low: 1.5, high: 2.0 }),
        reading: ["fit", "cei", "interval_years", "neutral_sink"]
            .iter()
            .zip([("pooled", "regional"), ("gdp", "secondary_gdp"), ("1", "5"), ("base-year", "sen-extrapolation")])
            .map(|(name, (a, b))| zonesweep_shared::sweep::ReadingEntry {
                name: (*name).to_owned(),
                weights: [(a.to_owned(), 1.0), (b.to_owned(), 1.0)].into_iter().collect(),
            })
            .collect(),
        ..SweepSpec::default()
    };
    let largest = self::plan(&everything);
    assert_eq!(largest.dimensions.len(), 125 + 1 + 4);
    assert!(largest.dimensions.len() <= zonesweep_shared::sweep::SOBOL_MAX_DIMENSIONS);
    let problems =
        refused(&SweepSpec { design: Design::Sobol, samples: u64::from(u32::MAX) + 1, ..SweepSpec::default() });
    assert!(problems.contains("Sobol"), "{problems}");
}

// --- determinism (ARCHITECTURE.md invariant 1) -------------------------------------

fn designs() -> [Design; 3] {
    [Design::MonteCarlo, Design::LatinHypercube, Design::Sobol]
}

#[test]
fn sample_k_draws_the_same_parameters_whatever_was_drawn_before() {
    let config = Config::default();
    for design in designs() {
        let spec = SweepSpec {
            design,
            samples: 64,
            seed: 42,
            trend_threshold: Some(Distribution::Uniform { low: 1.5, high: 2.0 }),
            ..SweepSpec::default()
        };
        let plan = plan(&spec);
        let forward: Vec<Parameters> = (0..64).map(|k| plan.draw(k, &config, &[]).parameters).collect();
        let backward: Vec<Parameters> = (0..64).rev().map(|k| plan.draw(k, &config, &[]).parameters).collect();
        let shuffled_order: Vec<u64> = (0..64).map(|i| (i * 37 + 11) % 64).collect();
        for (i, k) in shuffled_order.iter().enumerate() {
            // Interleave unrelated draws, of this plan and of another one.
            if i % 3 == 0 {
                let _ = plan.draw((k + 5) % 64, &config, &[]);
                let _ = self::plan(&SweepSpec { seed: 43, ..spec.clone() }).draw(*k, &config, &[]);
            }
            let alone = self::plan(&spec).draw(*k, &config, &[]).parameters;
            assert_eq!(plan.draw(*k, &config, &[]).parameters, forward[*k as usize], "{design:?} sample {k}");
            assert_eq!(alone, forward[*k as usize], "{design:?} sample {k} from a fresh plan");
            assert_eq!(backward[63 - *k as usize], forward[*k as usize], "{design:?} sample {k} drawn backward");
        }
        // The draws really vary between samples and stay in range.
        assert_ne!(forward[0], forward[1], "{design:?}");
        for p in &forward {
            assert!((0.01..=0.05).contains(&p.k), "{design:?}: K {}", p.k);
            assert!((1.5..=2.0).contains(&p.trend_threshold));
            for m in p.adjustments.rate_multiplier.iter().flatten().flatten() {
                assert!((0.5..=1.5).contains(m), "{design:?}: rate multiplier {m}");
            }
            for (c, value) in p.coefficients.values().iter().enumerate() {
                let ratio = value / config.coefficients.get(c);
                assert!((0.8 - 1e-12..=1.2 + 1e-12).contains(&ratio), "{design:?}: coefficient {c} × {ratio}");
            }
        }
        // Caps are offset only where the configuration has a cap.
        for p in &forward {
            for (s, scenario) in Scenario::ALL.iter().enumerate() {
                for (d, driver) in Driver::ALL.iter().enumerate() {
                    for (q, period) in Period::ALL.iter().enumerate() {
                        let offset = p.adjustments.cap_offset[s][d][q];
                        if config.scenarios.rules(*scenario).get(*driver).get(*period).cap.is_some() {
                            assert!((-2.0..=2.0).contains(&offset));
                        } else {
                            assert_eq!(offset, 0.0);
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn different_seeds_draw_differently() {
    let config = Config::default();
    for design in designs() {
        let a = plan(&SweepSpec { design, samples: 16, seed: 1, ..SweepSpec::default() });
        let b = plan(&SweepSpec { design, samples: 16, seed: 2, ..SweepSpec::default() });
        for k in 0..16 {
            assert_ne!(a.draw(k, &config, &[]).parameters, b.draw(k, &config, &[]).parameters, "{design:?} sample {k}");
        }
    }
}

#[test]
fn noise_is_deterministic_per_seed_and_sample_and_touches_only_its_group() {
    let dataset = small_dataset();
    let config = Config::default();
    let sigma = 0.1;
    let spec = SweepSpec {
        samples: 8,
        seed: 9,
        noise: vec![NoiseEntry { group: "energy".into(), sigma }],
        ..SweepSpec::default()
    };
    let plan = plan(&spec);
    assert!(plan.has_noise());
    for field in Field::ALL {
        let expected = if field.group() == FieldGroup::Energy { sigma } else { 0.0 };
        assert_eq!(plan.noise_sigma[field as usize], expected, "{}", field.name());
    }
    let rows = dataset.rows();
    let noisy = |k| plan.draw(k, &config, rows).rows.expect("a plan with noise gives rows");
    let first = noisy(3);
    let _ = noisy(4);
    let _ = noisy(0);
    assert_eq!(first, noisy(3), "the same (seed, k) gives the same noise");
    let fresh = self::plan(&spec).draw(3, &config, rows).rows.unwrap();
    assert_eq!(first, fresh);
    assert_ne!(first, noisy(4), "another sample, other noise");
    let other_seed = self::plan(&SweepSpec { seed: 10, ..spec.clone() }).draw(3, &config, rows).rows.unwrap();
    assert_ne!(first, other_seed, "another seed, other noise");

    assert_eq!(first.len(), rows.len());
    let mut log_ratios = Vec::new();
    for (noisy_row, row) in first.iter().zip(rows) {
        for field in Field::ALL {
            let (a, b) = (noisy_row[field as usize], row[field as usize]);
            if field.group() == FieldGroup::Energy {
                if b > 0.0 {
                    let r = (a / b).ln();
                    assert!(r.abs() < 7.0 * sigma, "{}: ×{}", field.name(), a / b);
                    log_ratios.push(r);
                } else {
                    assert_eq!(a, 0.0);
                }
            } else {
                assert_eq!(a.to_bits(), b.to_bits(), "{} must not be touched", field.name());
            }
        }
    }
    // ln of the factors is N(0, σ): check mean and sd loosely.
    let n = log_ratios.len() as f64;
    assert!(n > 1000.0);
    let mean = log_ratios.iter().sum::<f64>() / n;
    let sd = (log_ratios.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    assert!(mean.abs() < 4.0 * sigma / n.sqrt(), "mean {mean}");
    assert!((sd - sigma).abs() < 0.1 * sigma, "sd {sd}");

    // The parameter draws do not depend on whether there is noise.
    let quiet = self::plan(&SweepSpec { noise: vec![], ..spec.clone() });
    assert_eq!(quiet.draw(3, &config, rows).parameters, plan.draw(3, &config, rows).parameters);
    assert!(quiet.draw(3, &config, rows).rows.is_none());

    // A glob over several groups.
    let two = self::plan(&SweepSpec { noise: vec![NoiseEntry { group: "l*".into(), sigma: 0.2 }], ..spec });
    for field in Field::ALL {
        let expected = if matches!(field.group(), FieldGroup::LandUse | FieldGroup::Livestock) { 0.2 } else { 0.0 };
        assert_eq!(two.noise_sigma[field as usize], expected, "{}", field.name());
    }
}

// --- designs -----------------------------------------------------------------

#[test]
fn latin_hypercube_puts_one_sample_in_each_stratum_of_every_dimension() {
    for (n, seed) in [(1u64, 1u64), (2, 5), (7, 3), (64, 1), (100, 2), (257, 77), (1000, 123)] {
        let plan = plan(&SweepSpec { design: Design::LatinHypercube, samples: n, seed, ..SweepSpec::default() });
        let points = design_points(&plan, n);
        assert_eq!(points.len(), n as usize);
        for d in 0..plan.dimensions.len() {
            let mut strata: Vec<u64> = points
                .iter()
                .map(|u| {
                    assert!(u[d] > 0.0 && u[d] < 1.0, "u = {}", u[d]);
                    (u[d] * n as f64).floor() as u64
                })
                .collect();
            strata.sort_unstable();
            assert_eq!(strata, (0..n).collect::<Vec<_>>(), "n {n}, dimension {}", plan.dimensions[d].name);
        }
        // Strata are shuffled independently per dimension.
        if n >= 64 {
            let order = |d: usize| points.iter().map(|u| (u[d] * n as f64).floor() as u64).collect::<Vec<_>>();
            assert_ne!(order(0), order(1), "n {n}");
            assert_ne!(order(1), order(2), "n {n}");
            assert_ne!(order(0), (0..n).collect::<Vec<_>>(), "n {n}: the strata should be shuffled");
        }
    }
}

#[test]
fn sobol_points_are_inside_and_stratified_per_dimension() {
    let m_max = 9;
    let n = 1u64 << m_max;
    for seed in [1u64, 2, 0xDEAD_BEEF_0000_0001] {
        let plan = plan(&SweepSpec { design: Design::Sobol, samples: n, seed, ..SweepSpec::default() });
        let points = design_points(&plan, n);
        for d in 0..plan.dimensions.len() {
            for u in &points {
                assert!(u[d] > 0.0 && u[d] < 1.0, "u = {}", u[d]);
            }
            for m in 0..=m_max {
                let count = 1u64 << m;
                let mut strata: Vec<u64> =
                    points[..count as usize].iter().map(|u| (u[d] * count as f64).floor() as u64).collect();
                strata.sort_unstable();
                assert_eq!(
                    strata,
                    (0..count).collect::<Vec<_>>(),
                    "seed {seed}, dimension {}, first 2^{m}",
                    plan.dimensions[d].name
                );
            }
        }
        // Dimensions are not copies of each other.
        let column = |d: usize| points.iter().map(|u| u[d]).collect::<Vec<_>>();
        assert_ne!(column(0), column(1));
    }
}

#[test]
fn monte_carlo_uniforms_are_inside_and_look_uniform() {
    let n = 2000;
    let plan = plan(&SweepSpec { samples: n, ..SweepSpec::default() });
    let points = design_points(&plan, n);
    for d in [0, 1, 50, 124] {
        let mut bins = [0u32; 10];
        for u in &points {
            assert!(u[d] > 0.0 && u[d] < 1.0);
            bins[(u[d] * 10.0) as usize] += 1;
        }
        // Each decile ~200 ± 5σ (σ ≈ 13.4).
        assert!(bins.iter().all(|b| (133..=267).contains(b)), "dimension {d}: {bins:?}");
    }
}

// --- the runner --------------------------------------------------------------

fn runner_spec() -> SweepSpec {
    SweepSpec {
        samples: 40,
        seed: 2024,
        trend_threshold: Some(Distribution::Triangular { low: 1.3, mode: 1.66, high: 2.3 }),
        noise: vec![
            NoiseEntry { group: "energy".into(), sigma: 0.03 },
            NoiseEntry { group: "socioeconomic".into(), sigma: 0.02 },
        ],
        ..SweepSpec::default()
    }
}

#[test]
fn a_sample_alone_equals_the_same_sample_inside_a_range() {
    let dataset = small_dataset();
    let config = Config::default();
    for design in [Design::MonteCarlo, Design::LatinHypercube] {
        let runner = SweepRunner::new(&dataset, &config, &SweepSpec { design, ..runner_spec() }).unwrap();
        let range = runner.run_range(0..12);
        let mut singles = Aggregate::empty(runner.shape());
        for k in [7, 3, 11, 0, 5, 9, 1, 10, 2, 8, 4, 6] {
            let one = runner.run_range(k..k + 1);
            let mut alone = Aggregate::empty(runner.shape());
            runner.add_sample(&mut alone, k);
            assert_eq!(json(&one), json(&alone), "{design:?} sample {k}");
            assert_eq!(one.samples_total(), 1);
            // And the outcome itself is a pure function of k.
            assert_eq!(runner.sample(k), runner.sample(k));
            singles.merge(&one).unwrap();
        }
        assert_eq!(json(&singles), json(&range), "{design:?}");
        assert_eq!(range.samples_total(), 12);
    }
}

#[test]
fn a_range_equals_the_merge_of_its_parts_in_any_order() {
    let dataset = small_dataset();
    let config = Config::default();
    let runner = SweepRunner::new(&dataset, &config, &runner_spec()).unwrap();
    let whole = runner.run_range(0..40);
    assert_eq!(whole.samples_total(), 40);
    assert!(whole.samples_ok > 0);
    whole.check_lengths().unwrap();
    whole.check_consistency().unwrap();
    assert!(json(&whole).contains("\"regional_peak_counts\"") && json(&whole).contains("\"zone_size_counts\""));
    let expected = json(&whole);

    let parts = [runner.run_range(0..13), runner.run_range(13..29), runner.run_range(29..40)];
    assert_eq!(parts.iter().map(Aggregate::samples_total).sum::<u64>(), 40);
    for order in [[0, 1, 2], [2, 1, 0], [1, 0, 2], [1, 2, 0], [2, 0, 1], [0, 2, 1]] {
        // Left fold from an empty aggregate.
        let mut merged = Aggregate::empty(runner.shape());
        for i in order {
            merged.merge(&parts[i]).unwrap();
        }
        assert_eq!(json(&merged), expected, "order {order:?}");
        assert_eq!(merged, whole);
        // The regional answers, named: they are in the JSON and the equality
        // above, and are what the regional queries read.
        assert_eq!(merged.regional_peak_counts, whole.regional_peak_counts, "order {order:?}");
        assert_eq!(merged.zone_size_counts, whole.zone_size_counts, "order {order:?}");
        merged.check_consistency().unwrap();
        // Starting from one of the parts, and nesting: a + (b + c).
        let mut inner = parts[order[1]].clone();
        inner.merge(&parts[order[2]]).unwrap();
        let mut nested = parts[order[0]].clone();
        nested.merge(&inner).unwrap();
        assert_eq!(json(&nested), expected, "nested order {order:?}");
    }
    // Empty ranges are neutral.
    let mut with_empty = runner.run_range(5..5);
    assert_eq!(with_empty.samples_total(), 0);
    with_empty.merge(&whole).unwrap();
    with_empty.merge(&runner.run_range(40..40)).unwrap();
    assert_eq!(json(&with_empty), expected);
    // The same aggregate from another runner of the same inputs; another
    // from a different seed.
    let again = SweepRunner::new(&dataset, &config, &runner_spec()).unwrap().run_range(29..40);
    assert_eq!(json(&again), json(&parts[2]));
    let other =
        SweepRunner::new(&dataset, &config, &SweepSpec { seed: 2025, ..runner_spec() }).unwrap().run_range(29..40);
    assert_ne!(json(&other), json(&parts[2]));
}

/// A spec whose low-carbon TI rate multiplier is often a large negative
/// number: the annual rate goes below −100 %, the projected TI level turns
/// negative and the chain fails with "projection diverges".
fn failing_spec(samples: u64) -> SweepSpec {
    SweepSpec {
        samples,
        seed: 5,
        rate: vec![
            rate("*", "*", "*", Distribution::TruncatedNormal { mean: 1.0, sd: 0.1, low: 0.5, high: 1.5 }),
            rate("low", "TI", "first", Distribution::Uniform { low: -300.0, high: 300.0 }),
        ],
        ..SweepSpec::default()
    }
}

#[test]
fn failing_samples_are_recorded_with_index_and_reason() {
    let dataset = small_dataset();
    let config = Config::default();
    let n = 60;
    let runner = SweepRunner::new(&dataset, &config, &failing_spec(n)).unwrap();
    let aggregate = runner.run_range(0..n);

    // Which samples fail, and why, one by one.
    let mut failed = Vec::new();
    let mut kinds = BTreeSet::new();
    for k in 0..n {
        if let Err(error) = runner.sample(k) {
            kinds.insert(error.kind());
            failed.push((k, error));
        }
    }
    assert!(failed.len() > KEPT_FAILED_SAMPLES, "the spec should make many samples fail, not {}", failed.len());
    assert!((failed.len() as u64) < n, "some samples should succeed");
    assert!(kinds.contains("projection diverges"), "{kinds:?}");

    assert_eq!(aggregate.samples_ok + aggregate.samples_failed(), n);
    assert_eq!(aggregate.samples_total(), n);
    assert_eq!(aggregate.samples_failed(), failed.len() as u64);
    assert_eq!(aggregate.failures.keys().cloned().collect::<BTreeSet<_>>(), kinds);
    for (kind, failure) in &aggregate.failures {
        let of_kind: Vec<&(u64, _)> = failed.iter().filter(|(_, e)| &e.kind() == kind).collect();
        assert_eq!(failure.count, of_kind.len() as u64, "{kind}");
        let smallest: Vec<u64> = of_kind.iter().map(|(k, _)| *k).take(KEPT_FAILED_SAMPLES).collect();
        assert_eq!(failure.samples, smallest, "{kind}: the smallest indices, sorted");
        assert!(failure.samples.len() <= KEPT_FAILED_SAMPLES);
        assert!(failure.samples.windows(2).all(|w| w[0] < w[1]));
        let (first, error) = of_kind[0];
        assert_eq!(failure.example, format!("sample {first}: {error}"), "{kind}");
        assert!(failure.example.contains("diverges") || kind != "projection diverges", "{}", failure.example);
    }
    // Failed samples are in no count: every unit's zone counts add up to the
    // successful samples only.
    for u in 0..aggregate.shape.n_units {
        let total: u64 = aggregate.zone_counts.row(u).iter().sum();
        assert_eq!(total, aggregate.samples_ok);
    }
    assert_eq!(aggregate.k.count(), aggregate.samples_ok);

    // Splitting a sweep with failures changes nothing either, including the
    // kept indices and the example, in any order.
    let expected = json(&aggregate);
    let parts = [runner.run_range(31..n), runner.run_range(0..9), runner.run_range(9..31)];
    for order in [[0, 1, 2], [2, 0, 1], [1, 2, 0]] {
        let mut merged = Aggregate::empty(runner.shape());
        for i in order {
            merged.merge(&parts[i]).unwrap();
        }
        assert_eq!(json(&merged), expected, "order {order:?}");
    }
}

#[test]
fn a_coefficient_that_makes_emissions_negative_fails_the_samples_it_reaches() {
    // Energy carbon coefficients scaled by a negative factor make CE, and with
    // it the CEI driver, non-positive: its logarithm is undefined.
    let dataset = small_dataset();
    let config = Config::default();
    let spec = SweepSpec {
        samples: 12,
        seed: 3,
        coefficient: vec![coefficient("energy.*.carbon", Distribution::Uniform { low: -3.0, high: -2.0 })],
        ..empty_spec()
    };
    let runner = SweepRunner::new(&dataset, &config, &spec).unwrap();
    let aggregate = runner.run_range(0..12);
    assert_eq!(aggregate.samples_ok, 0, "{:?}", aggregate.failures);
    assert_eq!(aggregate.samples_failed(), 12);
    let (kind, failure) = aggregate.failures.iter().next().unwrap();
    assert_eq!(kind, "CEI not positive");
    assert_eq!(failure.samples, (0..12).collect::<Vec<_>>());
    assert!(
        failure.example.starts_with("sample 0: CEI of unit ") && failure.example.contains("logarithm is undefined"),
        "{}",
        failure.example
    );
}

/// The runner checks the configuration against the dataset itself, before
/// anything is sized by it, and says that it is the configuration.
#[test]
fn a_configuration_that_does_not_fit_the_dataset_is_refused_by_the_runner() {
    let dataset = small_dataset();
    let base_year = dataset.base_year();
    let spec = SweepSpec { samples: 10, ..SweepSpec::default() };
    let with_years = |horizon: i32, milestone: i32| {
        let mut config = Config::default();
        config.scenarios.horizon = horizon;
        config.scenarios.milestone = milestone;
        config
    };
    for (horizon, milestone, expected) in [
        (base_year - 10, base_year - 15, format!("scenarios.horizon is {}", base_year - 10)),
        (base_year, base_year - 5, format!("must be {}–2200", base_year + 1)),
        (3100, 2030, "scenarios.horizon is 3100; it must be a year 1900–2200".to_owned()),
        (3_000_000, 2030, "scenarios.horizon is 3000000".to_owned()),
        (i32::MAX, 2030, "scenarios.horizon is 2147483647".to_owned()),
        (-2_147_483_000, -2_147_483_600, "scenarios.horizon is -2147483000".to_owned()),
    ] {
        let config = with_years(horizon, milestone);
        match SweepRunner::new(&dataset, &config, &spec) {
            Err(e @ SweepError::Config(_)) => {
                let message = e.to_string();
                assert!(message.starts_with("the configuration has"), "{message}");
                assert!(message.contains(&expected), "{message}");
            }
            Err(e) => panic!("expected SweepError::Config, got {e}"),
            Ok(_) => panic!("horizon {horizon} with base year {base_year} should be refused"),
        }
    }
    let farthest = with_years((base_year + 200).min(2200), base_year + 10);
    let runner = SweepRunner::new(&dataset, &farthest, &spec).unwrap();
    assert_eq!(runner.shape().check(), Ok(()));
}
