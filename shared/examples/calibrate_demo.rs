//! Search the demonstration generator's parameters ([`DemoParameters`]) for
//! a dataset that meets the calibration targets of
//! `zonesweep_shared::data::demo::calibration`, with the nominal chain in the loop.
//!
//! ```sh
//! cargo run --release -p zonesweep-shared --example calibrate_demo -- --show
//! cargo run --release -p zonesweep-shared --example calibrate_demo -- --evals 3000
//! cargo run --release -p zonesweep-shared --example calibrate_demo -- --seeds 2000..2100
//! ```
//!
//! `--show` prints the target table and the regional diagnostics of the
//! calibrated parameters. The default is an adaptive coordinate search
//! from the calibrated parameters (each step tries one parameter up and down,
//! on both cores; a success widens that parameter's step, a failure narrows
//! it; with `--temperature T` a worse point is accepted with probability
//! exp(−Δ/T), T falling to 0), printing progress and, at the end, the best parameters as Rust and
//! their target table. The objective is the sum of the targets' distances
//! (0 when all are met), a quarter for each missed target, plus a small pull of each target towards the middle
//! of its range, so the search keeps going towards a robust dataset after
//! every target is met (`--pull W` sets its weight, 0.002 by default). `--seeds A..B` scores the calibrated parameters
//! under each seed of the range instead (to choose DEMO_SEED).

// A search heuristic (simulated annealing), not part of any result.
#![allow(clippy::disallowed_methods)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use zonesweep_shared::data::demo::calibration::{self, Target};
use zonesweep_shared::data::demo::{self, DEMO_SEED, DEMO_UNITS, DemoParameters};
use zonesweep_shared::model::chain::{self, Parameters};
use zonesweep_shared::model::config::Config;
use zonesweep_shared::model::indices::IndexKey;

/// The weight of the pull to the middle of the ranges (`--pull`, default
/// 0.002), as f64 bits.
static PULL: AtomicU64 = AtomicU64::new(0x3F60_624D_D2F1_A9FC);

/// The objective of a target list: distances, and a pull to the middle.
fn objective(targets: &[Target], pull_weight: f64) -> f64 {
    let pull: f64 = targets
        .iter()
        .filter(|t| t.low.is_finite() && t.high.is_finite() && t.high > t.low)
        .map(|t| {
            let middle = (t.low + t.high) / 2.0;
            let half = (t.high - t.low) / 2.0;
            ((t.value - middle) / half).powi(2)
        })
        .sum();
    let missed = targets.iter().filter(|t| !t.met()).count() as f64;
    calibration::total_distance(targets) + 0.25 * missed + pull_weight * pull
}

fn evaluate(p: &DemoParameters, seed: u64) -> (f64, Vec<Target>) {
    let pull_weight = f64::from_bits(PULL.load(Ordering::Relaxed));
    let dataset = match demo::generate_with(DEMO_UNITS, seed, p) {
        Ok(d) => d,
        Err(_) => return (f64::INFINITY, Vec::new()),
    };
    match calibration::targets(&dataset) {
        Ok(targets) => (objective(&targets, pull_weight), targets),
        Err(_) => (f64::INFINITY, Vec::new()),
    }
}

fn print_parameters(p: &DemoParameters) {
    println!("parameters (for demo_parameters! in shared/src/data/demo/mod.rs):");
    for (i, name) in DemoParameters::NAMES.iter().enumerate() {
        println!("    {name} = {:.7},", p.get(i));
    }
}

/// Correlations and relative spreads of the regional logged series.
fn diagnostics(p: &DemoParameters, seed: u64) {
    let dataset = demo::generate_with(DEMO_UNITS, seed, p).expect("a valid dataset");
    let config = Config::default();
    let (trace, s) = chain::ridge_trace(&dataset, &config, &Parameters::nominal(&config)).expect("a trace");
    let names = ["P", "W", "IS", "TI", "UR", "CEI"];
    println!("regional logged series: sd relative to ln CE, and correlations");
    for j in 0..6 {
        let row: Vec<String> = (0..6).map(|i| format!("{:+.3}", s.corr_xx[(j, i)])).collect();
        println!("  {:<4} sd {:6.3}  r(y) {:+.3}  [{}]", names[j], s.sd_x[j] / s.sd_y, s.corr_xy[j], row.join(" "));
    }
    let indices = zonesweep_shared::model::indices::compute(dataset.rows(), dataset.n_years(), &config.coefficients);
    let last = dataset.n_years() - 1;
    let mut ratios: Vec<f64> = (0..dataset.n_units())
        .map(|u| {
            let i = u * dataset.n_years() + last;
            indices.get(IndexKey::CE)[i] / indices.get(IndexKey::CS)[i]
        })
        .collect();
    ratios.sort_by(|a, b| b.total_cmp(a));
    println!(
        "  CE/CS 2020, highest units: {:?}",
        ratios[..20].iter().map(|r| (r * 100.0).round() / 100.0).collect::<Vec<_>>()
    );
    let first = &trace[0];
    println!("  OLS: coefficients (standardized) {:?}", first.standardized.map(|v| (v * 1000.0).round() / 1000.0));
    println!("  OLS: VIF {:?}", first.vif.map(|v| (v * 10.0).round() / 10.0));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value_of = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let seed: u64 = value_of("--seed").map_or(DEMO_SEED, |s| s.parse().expect("--seed N"));
    let mut best = DemoParameters::CALIBRATED;
    if let Some(w) = value_of("--pull") {
        PULL.store(w.parse::<f64>().expect("--pull W").to_bits(), Ordering::Relaxed);
    }

    if args.iter().any(|a| a == "--show") {
        let (score, targets) = evaluate(&best, seed);
        diagnostics(&best, seed);
        println!(
            "objective {score:.4}; {} of {} targets met",
            targets.iter().filter(|t| t.met()).count(),
            targets.len()
        );
        print!("{}", calibration::table(&targets));
        return;
    }
    if let Some(range) = value_of("--seeds") {
        let (a, b) = range.split_once("..").expect("--seeds A..B");
        let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
        let mut scored = Vec::new();
        for s in a..b {
            let (score, targets) = evaluate(&best, s);
            let missed = targets.iter().filter(|t| !t.met()).count();
            println!("seed {s}: objective {score:.4}, {missed} missed");
            scored.push((score, s));
        }
        scored.sort_by(|x, y| x.0.total_cmp(&y.0));
        println!("best seeds: {:?}", &scored[..scored.len().min(10)]);
        return;
    }

    let evals: usize = value_of("--evals").map_or(2000, |s| s.parse().expect("--evals N"));
    let n = DemoParameters::NAMES.len();
    let mut steps: Vec<f64> = DemoParameters::RANGES.iter().map(|(lo, hi)| (hi - lo) / 8.0).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(value_of("--search-seed").map_or(1, |s| s.parse().unwrap()));
    let (mut best_score, mut best_targets) = evaluate(&best, seed);
    // Annealing: the current point may accept a worse candidate with a
    // probability that falls with the temperature; the best is kept apart.
    let mut current = best.clone();
    let mut current_score = best_score;
    let temperature0: f64 = value_of("--temperature").map_or(0.0, |s| s.parse().expect("--temperature T"));
    let start = Instant::now();
    let mut done = 1;
    println!("start: objective {best_score:.4}");
    while done < evals {
        let temperature = temperature0 * (1.0 - done as f64 / evals as f64);
        let i = rng.random_range(0..n);
        let (lo, hi) = DemoParameters::RANGES[i];
        let candidates: Vec<DemoParameters> = [1.0, -1.0]
            .iter()
            .map(|sign| {
                let mut c = current.clone();
                c.set(i, (current.get(i) + sign * steps[i]).clamp(lo, hi));
                c
            })
            .collect();
        let results: Vec<(f64, Vec<Target>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = candidates.iter().map(|c| scope.spawn(move || evaluate(c, seed))).collect();
            handles.into_iter().map(|h| h.join().expect("an evaluation")).collect()
        });
        done += 2;
        let (k, (score, targets)) =
            results.into_iter().enumerate().min_by(|a, b| a.1.0.total_cmp(&b.1.0)).expect("two candidates");
        let accept = score < current_score
            || (temperature > 0.0 && rng.random::<f64>() < (-(score - current_score) / temperature).exp());
        if accept {
            current = candidates[k].clone();
            current_score = score;
            if score < current_score + 1e-12 && score < best_score {
                steps[i] = (steps[i] * 1.5).min((hi - lo) / 2.0);
            }
        } else {
            steps[i] *= 0.6;
            if steps[i] < (hi - lo) / 2000.0 {
                steps[i] = (hi - lo) / 16.0;
            }
        }
        if score < best_score {
            best = candidates[k].clone();
            best_score = score;
            best_targets = targets;
            let missed: Vec<&str> = best_targets.iter().filter(|t| !t.met()).map(|t| t.name).collect();
            println!(
                "{done:5} evals {:6.1} s: objective {best_score:.4} ({} = {:.4}); missed {}: {missed:?}",
                start.elapsed().as_secs_f64(),
                DemoParameters::NAMES[i],
                best.get(i),
                missed.len()
            );
        }
    }
    println!("{done} evaluations in {:.1} s", start.elapsed().as_secs_f64());
    print_parameters(&best);
    diagnostics(&best, seed);
    println!("objective {best_score:.4}");
    print!("{}", calibration::table(&best_targets));
}
