//! The committed demonstration dataset, `demo::generate(DEMO_UNITS,
//! DEMO_SEED)`, meets every calibration target of
//! `zonesweep_shared::data::demo::calibration` (figures of Huo et al. 2025 run
//! through the nominal chain), except those listed in [`KNOWN_MISSES`].

use zonesweep_shared::data::demo::calibration::{self, Target};
use zonesweep_shared::data::demo::{self, DEMO_SEED, DEMO_UNITS};

/// Targets the calibration search could not meet, by name, with the reason.
/// Each is still measured and printed; the test fails if one of them becomes
/// met (so the list stays true) or if any other target is missed.
const KNOWN_MISSES: &[(&str, &str)] = &[];

#[test]
fn the_demo_dataset_meets_its_calibration_targets() {
    let dataset = demo::generate(DEMO_UNITS, DEMO_SEED).expect("the demo generator works");
    let targets: Vec<Target> = calibration::targets(&dataset).expect("the nominal chain runs on the demo");
    println!("{}", calibration::table(&targets));
    for (name, _) in KNOWN_MISSES {
        assert!(targets.iter().any(|t| t.name == *name), "KNOWN_MISSES names an unknown target: {name}");
    }
    let unexpected: Vec<String> = targets
        .iter()
        .filter(|t| !t.met() && !KNOWN_MISSES.iter().any(|(name, _)| *name == t.name))
        .map(|t| format!("{}: {} not in {}", t.name, t.value, t.range()))
        .collect();
    assert!(unexpected.is_empty(), "missed targets:\n{}", unexpected.join("\n"));
    let now_met: Vec<&str> = KNOWN_MISSES
        .iter()
        .filter(|(name, _)| targets.iter().any(|t| t.name == *name && t.met()))
        .map(|m| m.0)
        .collect();
    assert!(now_met.is_empty(), "these targets are met now; remove them from KNOWN_MISSES: {now_met:?}");
}

#[test]
fn other_sizes_and_seeds_still_run_the_chain() {
    // Not calibrated, but valid and usable by the nominal chain.
    for (n, seed) in [(5, 3), (24, 11), (200, 1)] {
        let dataset = demo::generate(n, seed).expect("a valid dataset");
        assert_eq!(dataset.n_units(), n);
        calibration::targets(&dataset).unwrap_or_else(|e| panic!("{n} units, seed {seed}: {e}"));
    }
}
