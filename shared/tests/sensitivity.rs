//! Variance-based group sensitivity (docs/model.md section 8, "Group sensitivity"): the spec's
//! groups, a design whose A samples are the plain sweep's, sums that do not
//! depend on how the samples were split, and indices that rank the groups
//! as one-group-at-a-time sweeps do.

use std::collections::BTreeMap;

use zonesweep_shared::data::dataset::Dataset;
use zonesweep_shared::data::demo;
use zonesweep_shared::model::config::Config;
use zonesweep_shared::sweep::aggregate::{Aggregate, MIN_TOTAL};
use zonesweep_shared::sweep::distribution::Distribution;
use zonesweep_shared::sweep::runner::SweepRunner;
use zonesweep_shared::sweep::sensitivity::Output;
use zonesweep_shared::sweep::{
    Design, NoiseEntry, ReadingEntry, SensitivityGroups, SensitivityMethod, SensitivitySpec, SweepError, SweepSpec,
};

fn saltelli(groups: SensitivityGroups) -> Option<SensitivitySpec> {
    Some(SensitivitySpec { method: SensitivityMethod::Saltelli, groups })
}

fn custom(groups: &[(&str, &[&str])]) -> SensitivityGroups {
    SensitivityGroups::Custom(
        groups.iter().map(|(name, globs)| (name.to_string(), globs.iter().map(|g| g.to_string()).collect())).collect(),
    )
}

fn noise(group: &str, sigma: f64) -> NoiseEntry {
    NoiseEntry { group: group.into(), sigma }
}

fn run(dataset: &Dataset, spec: &SweepSpec, range: std::ops::Range<u64>) -> Aggregate {
    SweepRunner::new(dataset, &Config::default(), spec).unwrap().run_range(range)
}

fn group_names(spec: &SweepSpec) -> Vec<String> {
    spec.plan(&Config::default()).unwrap().sensitivity.expect("a sensitivity plan").group_names()
}

fn refused(spec: &SweepSpec) -> String {
    match spec.plan(&Config::default()) {
        Ok(_) => panic!("the spec should be refused: {spec:?}"),
        Err(e @ SweepError::Invalid(_)) => e.to_string(),
        Err(e) => panic!("expected SweepError::Invalid, got {e}"),
    }
}

#[test]
fn the_a_samples_are_the_plain_sweep_s_samples_byte_for_byte() {
    let dataset = demo::generate(4, 5).unwrap();
    let n = 12;
    let noisy = SweepSpec { noise: vec![noise("energy", 0.05)], ..SweepSpec::default() };
    for base in [
        SweepSpec { samples: n, ..SweepSpec::default() },
        SweepSpec { samples: n, design: Design::LatinHypercube, ..SweepSpec::default() },
        SweepSpec { samples: n, design: Design::Sobol, ..SweepSpec::default() },
        SweepSpec { samples: n, ..noisy },
    ] {
        let plain = run(&dataset, &base, 0..n);
        let spec = SweepSpec { sensitivity: saltelli(SensitivityGroups::Default), ..base.clone() };
        let mut with = run(&dataset, &spec, 0..n);
        let sums = with.sensitivity.take().expect("a sensitivity sweep has sums");
        assert_eq!(sums.samples + sums.incomplete, with.samples_ok);
        assert!(sums.samples > 0, "{:?}", base.design);
        assert_eq!(serde_json::to_string(&with).unwrap(), serde_json::to_string(&plain).unwrap(), "{:?}", base.design);
        assert_eq!(with, plain);
    }
}

#[test]
fn sensitivity_sums_do_not_depend_on_how_the_samples_were_split() {
    let dataset = demo::generate(3, 2).unwrap();
    let n = 10;
    let spec = SweepSpec {
        samples: n,
        noise: vec![noise("energy", 0.1), noise("socioeconomic", 0.05)],
        sensitivity: saltelli(custom(&[
            ("growth", &["rate.*"]),
            ("k", &["k"]),
            ("energy data", &["noise.energy"]),
            ("other", &["cap.*", "coefficient.*", "noise.socio*"]),
        ])),
        ..SweepSpec::default()
    };
    let whole = run(&dataset, &spec, 0..n);
    whole.check_consistency().unwrap();
    let sums = whole.sensitivity.as_ref().unwrap();
    assert_eq!(sums.groups, ["energy data", "growth", "k", "other"]);
    assert!(sums.group.iter().any(|&s| s != 0), "A_B runs differ from A");
    // Noise from B changes the energy group's runs on its own.
    let shape = whole.shape;
    let moved = (0..shape.n_units).any(|u| sums.moments(&shape, u, Output::Total).groups[0].mean_z > 0.0);
    assert!(moved, "the energy-noise group's A_B runs never changed a total");
    for splits in [vec![0..3, 3..10], vec![7..10, 0..1, 4..7, 1..4], vec![5..6, 0..5, 6..10]] {
        let mut merged = run(&dataset, &spec, splits[0].clone());
        for range in &splits[1..] {
            merged.merge(&run(&dataset, &spec, range.clone())).unwrap();
        }
        assert_eq!(merged, whole, "{splits:?}");
    }
    // A tampered sum is caught; a plain aggregate does not merge with it.
    let mut tampered = whole.clone();
    tampered.sensitivity.as_mut().unwrap().incomplete += 1;
    assert!(tampered.check_consistency().is_err());
    let plain = run(&dataset, &SweepSpec { sensitivity: None, ..spec.clone() }, 0..2);
    assert!(whole.clone().merge(&plain).unwrap_err().0.contains("sensitivity sums"));
}

#[test]
fn default_groups_follow_the_kinds_of_parameters() {
    let spec = SweepSpec { sensitivity: saltelli(SensitivityGroups::Default), ..SweepSpec::default() };
    assert_eq!(
        group_names(&spec),
        [
            "k",
            "rate.P",
            "rate.W",
            "rate.IS",
            "rate.TI",
            "rate.UR",
            "rate.CEI",
            "cap",
            "coefficient.cropland",
            "coefficient.energy",
            "coefficient.breathing",
            "coefficient.livestock",
            "coefficient.crops",
            "coefficient.land_sink",
            "coefficient.nep",
        ]
    );
    let spec = SweepSpec {
        // A fixed K is no factor, so there is no `k` group.
        k: Some(Distribution::Fixed { value: 0.02 }),
        trend_threshold: Some(Distribution::Uniform { low: 1.5, high: 2.5 }),
        rate: vec![],
        cap: vec![],
        coefficient: vec![],
        noise: vec![noise("energy", 0.1), noise("land_use", 0.0)],
        reading: vec![ReadingEntry {
            name: "fit".into(),
            weights: [("regional".to_owned(), 1.0), ("pooled".to_owned(), 1.0)].into(),
        }],
        sensitivity: saltelli(SensitivityGroups::Default),
        ..SweepSpec::default()
    };
    assert_eq!(group_names(&spec), ["trend_threshold", "reading.fit", "noise.energy"]);
}

#[test]
fn the_spec_round_trips_and_a_plain_spec_serializes_as_before() {
    let plain = SweepSpec::default();
    assert!(!plain.to_toml().contains("sensitivity"));
    let text = "samples = 10\nsensitivity = { method = \"saltelli\" }\n";
    let spec = SweepSpec::from_toml(text, "spec.toml").unwrap();
    assert_eq!(spec.sensitivity, saltelli(SensitivityGroups::Default));
    assert_eq!(SweepSpec::from_toml(&spec.to_toml(), "again").unwrap(), spec);
    let text = "[[rate]]\nmultiplier = { dist = \"uniform\", low = 0.9, high = 1.1 }\n[[cap]]\noffset = { dist = \"uniform\", low = -1.0, high = 1.0 }\n\
                [sensitivity]\nmethod = \"saltelli\"\ngroups = { growth = [\"rate.*\"], caps = [\"cap.*\"] }\n";
    let spec = SweepSpec::from_toml(text, "spec.toml").unwrap();
    assert_eq!(spec.sensitivity, saltelli(custom(&[("caps", &["cap.*"]), ("growth", &["rate.*"])])));
    assert_eq!(SweepSpec::from_toml(&spec.to_toml(), "again").unwrap(), spec);
    assert_eq!(group_names(&spec), ["caps", "growth"]);
}

#[test]
fn bad_sensitivity_specs_are_refused_naming_the_value_and_the_choices() {
    let parse_error = |text: &str| SweepSpec::from_toml(text, "spec.toml").unwrap_err().to_string();
    let error = parse_error("sensitivity = { method = \"sobol\" }");
    assert!(error.contains("sobol") && error.contains("saltelli"), "{error}");
    let error = parse_error("sensitivity = { method = \"saltelli\", groups = \"all\" }");
    assert!(error.contains("`all`") && error.contains("\"default\""), "{error}");
    let error = parse_error("sensitivity = { method = \"saltelli\", groups = 3 }");
    assert!(error.contains("\"default\" or a table of groups"), "{error}");
    let error = parse_error("sensitivity = { groups = \"default\" }");
    assert!(error.contains("method"), "{error}");

    let with = |groups: &[(&str, &[&str])]| SweepSpec { sensitivity: saltelli(custom(groups)), ..SweepSpec::default() };
    let error = refused(&with(&[("growth", &[])]));
    assert!(error.contains("sensitivity group `growth` is empty"), "{error}");
    let error = refused(&with(&[("growth", &["rates.*"])]));
    assert!(
        error.contains("`rates.*` matches no uncertain parameter (or noisy field group); they are k, rate.low.P.first"),
        "{error}"
    );
    let error = refused(&with(&[("a", &["rate.*"]), ("b", &["rate.low.*"])]));
    assert!(error.contains("`rate.low.P.first` is in sensitivity groups `a` and `b`"), "{error}");
    let error = refused(&with(&[]));
    assert!(error.contains("empty table"), "{error}");
    let error = refused(&with(&[("", &["k"])]));
    assert!(error.contains("a group name must be"), "{error}");
    // A fixed parameter is no factor: a glob of it alone matches nothing.
    let fixed_k = SweepSpec { k: Some(Distribution::Fixed { value: 0.02 }), ..with(&[("k", &["k"])]) };
    assert!(refused(&fixed_k).contains("`k` matches no uncertain parameter"));
    // Sobol' needs two dimensions per parameter: the default spec's 125
    // and a threshold and four readings make 130, more than 256 / 2.
    let reading = |name: &str, options: &[&str]| ReadingEntry {
        name: name.into(),
        weights: options.iter().map(|o| (o.to_string(), 1.0)).collect(),
    };
    let sobol = SweepSpec {
        design: Design::Sobol,
        trend_threshold: Some(Distribution::Uniform { low: 1.5, high: 2.5 }),
        reading: vec![
            reading("fit", &["regional", "pooled"]),
            reading("cei", &["gdp", "secondary_gdp"]),
            reading("interval_years", &["4", "5"]),
            reading("neutral_sink", &["base-year", "sen-extrapolation"]),
        ],
        sensitivity: saltelli(SensitivityGroups::Default),
        ..SweepSpec::default()
    };
    let error = refused(&sobol);
    assert!(error.contains("two dimensions per uncertain parameter, at most 256; this spec has 130"), "{error}");
    let plain = SweepSpec { sensitivity: None, ..sobol.clone() };
    assert!(plain.plan(&Config::default()).is_ok());
    let small = SweepSpec { coefficient: vec![], ..sobol };
    assert!(small.plan(&Config::default()).is_ok());
}

#[test]
fn sums_too_large_for_the_dataset_are_refused_before_the_sweep_runs() {
    use zonesweep_shared::sweep::aggregate::Shape;
    use zonesweep_shared::sweep::sensitivity::{MAX_SENSITIVITY_SUMS, SensitivitySums};
    let shape = Shape { n_units: 20_000, n_zones: 5, base_year: 2020, milestone: 2030, horizon: 2060 };
    // 20,000 units × 6 outputs × (4 + 6 × 15) sums.
    let problem = SensitivitySums::size_problem(&shape, 15).expect("too many sums");
    assert!(problem.contains("15 groups over 20000 units and 5 zones keeps 11280000 sums"), "{problem}");
    assert!(problem.contains(&MAX_SENSITIVITY_SUMS.to_string()), "{problem}");
    assert_eq!(SensitivitySums::size_problem(&shape, 6), None);
    assert_eq!(SensitivitySums::size_problem(&Shape { n_units: 81, ..shape }, 15), None);
}

/// With a TI growth multiplier that often makes the projection diverge, A
/// fails in some samples (ordinary failures) and B or an A_B run in others
/// (counted in the plain aggregate, left out of the sums as incomplete).
#[test]
fn samples_whose_b_or_a_b_runs_fail_count_as_incomplete() {
    use zonesweep_shared::sweep::RateEntry;
    let dataset = demo::generate(3, 2).unwrap();
    let n = 40;
    let rate = |variable: &str, period: &str, multiplier| RateEntry {
        scenario: if variable == "*" { "*" } else { "low" }.into(),
        variable: variable.into(),
        period: period.into(),
        multiplier,
    };
    let plain = SweepSpec {
        samples: n,
        seed: 5,
        rate: vec![
            rate("*", "*", Distribution::TruncatedNormal { mean: 1.0, sd: 0.1, low: 0.5, high: 1.5 }),
            rate("TI", "first", Distribution::Uniform { low: -300.0, high: 300.0 }),
        ],
        ..SweepSpec::default()
    };
    let spec =
        SweepSpec { sensitivity: saltelli(custom(&[("ti", &["rate.low.TI.first"]), ("k", &["k"])])), ..plain.clone() };
    let config = Config::default();
    let runner = SweepRunner::new(&dataset, &config, &spec).unwrap();
    let (mut failed, mut incomplete, mut complete) = (0, 0, 0);
    for k in 0..n {
        match runner.sensitivity_sample(k) {
            Err(_) => failed += 1,
            Ok((_, Err(_))) => incomplete += 1,
            Ok((_, Ok((_, ab)))) => {
                assert_eq!(ab.len(), 2);
                complete += 1;
            }
        }
    }
    assert!(failed > 0 && incomplete > 0 && complete > 0, "{failed} {incomplete} {complete}");
    let mut aggregate = runner.run_range(0..n);
    aggregate.check_consistency().unwrap();
    assert_eq!(aggregate.samples_failed(), failed);
    let sums = aggregate.sensitivity.take().unwrap();
    assert_eq!((sums.samples, sums.incomplete), (complete, incomplete));
    assert_eq!(aggregate, run(&dataset, &plain, 0..n), "the plain counts hold every sample whose A succeeded");
}

#[test]
fn custom_groups_leave_unmatched_parameters_out_of_the_analysis() {
    let dataset = demo::generate(3, 4).unwrap();
    let spec = SweepSpec {
        samples: 6,
        sensitivity: saltelli(custom(&[("k", &["k"]), ("caps", &["cap.*"])])),
        ..SweepSpec::default()
    };
    assert_eq!(group_names(&spec), ["caps", "k"]);
    let aggregate = run(&dataset, &spec, 0..6);
    aggregate.check_consistency().unwrap();
    let sums = aggregate.sensitivity.as_ref().unwrap();
    assert_eq!(sums.samples + sums.incomplete, 6 - aggregate.samples_failed());
}

/// The variance of one unit's total score in an aggregate.
fn total_variance(aggregate: &Aggregate, unit: usize) -> f64 {
    let row = aggregate.total_counts.row(unit);
    let n = row.iter().sum::<u64>() as f64;
    let score = |i: usize| f64::from(MIN_TOTAL) + i as f64;
    let mean = row.iter().enumerate().map(|(i, &c)| score(i) * c as f64).sum::<f64>() / n;
    row.iter().enumerate().map(|(i, &c)| (score(i) - mean).powi(2) * c as f64).sum::<f64>() / n
}

/// Rank names by value, largest first.
fn ranking(values: &BTreeMap<&str, f64>) -> Vec<String> {
    let mut names: Vec<_> = values.iter().collect();
    names.sort_by(|a, b| b.1.total_cmp(a.1));
    names.into_iter().map(|(n, _)| n.to_string()).collect()
}

#[test]
fn the_indices_rank_groups_as_one_group_at_a_time_sweeps_do() {
    // 12 demo units, 300 base samples: V·S_g summed over units (the part of
    // the total scores' variance each group explains alone) against the
    // variance of one-group-at-a-time sweeps (the others at their nominal
    // values), which for a mostly additive output are close.
    let units = 12;
    let n = 300;
    let dataset = demo::generate(units, 3).unwrap();
    let base = SweepSpec { samples: n, design: Design::Sobol, ..SweepSpec::default() };
    let groups: [(&str, &[&str]); 4] =
        [("k", &["k"]), ("growth", &["rate.*"]), ("caps", &["cap.*"]), ("coefficients", &["coefficient.*"])];
    let spec = SweepSpec { sensitivity: saltelli(custom(&groups)), ..base.clone() };
    let aggregate = run(&dataset, &spec, 0..n);
    let sums = aggregate.sensitivity.as_ref().unwrap();
    assert_eq!(sums.samples, n, "no run failed");
    let mut first = BTreeMap::new();
    let mut total = BTreeMap::new();
    let mut alone = BTreeMap::new();
    for (name, _) in groups {
        let only = SweepSpec {
            k: if name == "k" { base.k } else { None },
            rate: if name == "growth" { base.rate.clone() } else { vec![] },
            cap: if name == "caps" { base.cap.clone() } else { vec![] },
            coefficient: if name == "coefficients" { base.coefficient.clone() } else { vec![] },
            ..base.clone()
        };
        let one = run(&dataset, &only, 0..n);
        let (mut s, mut st, mut v) = (0.0, 0.0, 0.0);
        for u in 0..units {
            let analysis = sums.analyse(&aggregate.shape, u, Output::Total);
            let g = analysis.groups.iter().find(|g| g.group == name).unwrap();
            if let (Some(first), Some(total)) = (g.first, g.total) {
                s += first.estimate * analysis.variance;
                st += total.estimate * analysis.variance;
            }
            v += total_variance(&one, u);
        }
        first.insert(name, s);
        total.insert(name, st);
        alone.insert(name, v);
    }
    let order = ranking(&alone);
    assert_eq!(order, ["coefficients", "k", "growth", "caps"], "one at a time: {alone:?}");
    assert_eq!(ranking(&first), order, "first order {first:?} vs one at a time {alone:?}");
    assert_eq!(ranking(&total), order, "total {total:?} vs one at a time {alone:?}");
    // The main effects explain most of what each group does alone, and the
    // total effects (with interactions) at least that, within sampling error.
    for name in ["coefficients", "k", "growth"] {
        let (s, st, v) = (first[name], total[name], alone[name]);
        assert!(s > 0.15 * v && s < 1.3 * v, "{name}: V·S {s} vs {v}");
        assert!(st > 0.7 * v && st < 1.5 * v, "{name}: V·ST {st} vs {v}");
    }
}
