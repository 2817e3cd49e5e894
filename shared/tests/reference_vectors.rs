//! Reference values from the libraries users already trust (see
//! tests/vectors/*.json, copied from the project's shared reference vectors):
//! pymannkendall and scipy for trends, jenkspy for natural breaks, a numpy
//! correlation-form ridge checked against scikit-learn, scipy for Welch's t.
//! Tolerances are in `common/mod.rs`.

mod common;

use common::*;
use serde_json::Value;
use zonesweep_shared::numerics::jenks::partition;
use zonesweep_shared::numerics::ridge::{N_PREDICTORS, standardize, welch_t_test};
use zonesweep_shared::numerics::trend::{mann_kendall, sen_slope};

fn load(text: &str) -> Vec<Value> {
    let doc: Value = serde_json::from_str(text).expect("valid JSON");
    doc["cases"].as_array().expect("cases").clone()
}

#[test]
fn mann_kendall_and_sen_match_pymannkendall_and_scipy() {
    let cases = load(include_str!("vectors/mann_kendall_sen.json"));
    assert_eq!(cases.len(), 10);
    let mut bad = Mismatches::default();
    for (i, case) in cases.iter().enumerate() {
        let x = f64s(&case["x"]);
        let mk = mann_kendall(&x);
        bad.check(|| format!("case {i} (n={}) s", x.len()), mk.s, num(&case["s"]), MK_S_EXACT, MK_S_EXACT);
        bad.check(|| format!("case {i} var_s"), mk.var_s, num(&case["var_s"]), MK_VAR_RTOL, 0.0);
        bad.check(|| format!("case {i} z"), mk.z, num(&case["z"]), MK_Z_RTOL, TREND_ATOL);
        let sen = sen_slope(&x);
        bad.check(|| format!("case {i} sen_slope (pymannkendall)"), sen, num(&case["sen_slope"]), SEN_RTOL, TREND_ATOL);
        bad.check(
            || format!("case {i} sen_slope (scipy theilslopes)"),
            sen,
            num(&case["scipy_theilslopes_slope"]),
            SEN_RTOL,
            TREND_ATOL,
        );
    }
    bad.assert_none("Mann-Kendall / Sen reference vectors");
}

#[test]
fn jenks_matches_jenkspy() {
    let cases = load(include_str!("vectors/jenks.json"));
    assert_eq!(cases.len(), 6);
    let mut bad = Mismatches::default();
    for (i, case) in cases.iter().enumerate() {
        let values = f64s(&case["values"]);
        let n_classes = case["n_classes"].as_u64().expect("n_classes") as usize;
        let expected = f64s(&case["breaks"]);
        let p = partition(&values, n_classes);
        if p.n_classes() != n_classes {
            bad.push(format!("case {i}: {} classes, expected {n_classes}", p.n_classes()));
        }
        let breaks = p.jenkspy_breaks();
        // Exact (JENKS_EXACT in common): breaks are input values.
        if breaks != expected {
            bad.push(format!("case {i} (n={}): breaks {breaks:?}, jenkspy {expected:?}", values.len()));
        }
        // class_of agrees with jenkspy's upper-inclusive classes.
        for (v, &c) in values.iter().zip(&p.class_of) {
            let want = (1..expected.len()).find(|&b| *v <= expected[b]).map_or(n_classes - 1, |b| b - 1);
            if c != want {
                bad.push(format!("case {i}: value {v} in class {c}, jenkspy bounds put it in {want}"));
            }
        }
    }
    bad.assert_none("Jenks reference vectors");
}

/// Centred copy of `v`.
fn centred(v: &[f64]) -> Vec<f64> {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    v.iter().map(|x| x - m).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Widen a p-predictor design (p < 6) to the library's fixed six predictors by
/// adding columns whose centred values are orthogonal to every centred column
/// of X, to y and to each other. Their correlation block is then the identity
/// and their correlations with X and y are zero (to rounding, ~1e-16), so
/// R + K·I is block diagonal: β*, VIF, the original-scale coefficients, the
/// intercept and R² of the p real predictors are exactly those of the
/// p-predictor problem, and the padding coefficients are 0.
fn pad_design(x: &[Vec<f64>], y: &[f64]) -> Vec<[f64; N_PREDICTORS]> {
    let n = x.len();
    let p = x[0].len();
    // Orthonormal basis of the centred columns of X and y (modified Gram-Schmidt).
    let mut basis: Vec<Vec<f64>> = Vec::new();
    let add = |basis: &mut Vec<Vec<f64>>, v: Vec<f64>| -> Vec<f64> {
        let mut w = centred(&v);
        for _ in 0..2 {
            for b in basis.iter() {
                let c = dot(&w, b);
                for (wi, bi) in w.iter_mut().zip(b) {
                    *wi -= c * bi;
                }
            }
        }
        let norm = dot(&w, &w).sqrt();
        assert!(norm > 1e-6, "padding column is degenerate");
        let unit: Vec<f64> = w.iter().map(|v| v / norm).collect();
        basis.push(unit.clone());
        unit
    };
    for j in 0..p {
        add(&mut basis, x.iter().map(|r| r[j]).collect());
    }
    add(&mut basis, y.to_vec());
    let mut pads = Vec::new();
    for q in 0..N_PREDICTORS - p {
        let raw: Vec<f64> = (0..n).map(|i| ((i as f64 + 1.0) * (0.37 + 0.29 * q as f64)).sin()).collect();
        let unit = add(&mut basis, raw);
        // Any scale and offset: correlations do not see them.
        pads.push(unit.iter().map(|v| 3.0 + 2.0 * v).collect::<Vec<f64>>());
    }
    (0..n).map(|i| std::array::from_fn(|j| if j < p { x[i][j] } else { pads[j - p][i] })).collect()
}

#[test]
fn ridge_matches_correlation_form_reference() {
    let cases = load(include_str!("vectors/ridge.json"));
    assert_eq!(cases.len(), 12);
    let mut bad = Mismatches::default();
    for (i, case) in cases.iter().enumerate() {
        let x: Vec<Vec<f64>> = case["X"].as_array().expect("X").iter().map(f64s).collect();
        let y = f64s(&case["y"]);
        let k = num(&case["k"]);
        let p = x[0].len();
        let rows: Vec<[f64; N_PREDICTORS]> = if p == N_PREDICTORS {
            x.iter().map(|r| std::array::from_fn(|j| r[j])).collect()
        } else {
            pad_design(&x, &y)
        };
        let vif = f64s(&case["vif"]);
        let rtol =
            if vif.iter().any(|v| *v > RIDGE_ILL_CONDITIONED_VIF) { RIDGE_ILL_CONDITIONED_RTOL } else { RIDGE_RTOL };
        let label = format!("case {i} (n={}, p={p}, K={k}, rtol {rtol:e})", x.len());
        let fit = match standardize(&rows, &y).and_then(|s| s.fit(k)) {
            Ok(fit) => fit,
            Err(e) => {
                bad.push(format!("{label}: {e}"));
                continue;
            }
        };
        bad.check(|| format!("{label} intercept"), fit.intercept, num(&case["intercept"]), rtol, RIDGE_ATOL);
        for (name, got, want) in [
            ("coefficients", &fit.coefficients, f64s(&case["coefficients"])),
            ("standardized", &fit.standardized, f64s(&case["standardized"])),
        ] {
            for j in 0..N_PREDICTORS {
                let expected = if j < p { want[j] } else { 0.0 };
                bad.check(|| format!("{label} {name}[{j}]"), got[j], expected, rtol, RIDGE_ATOL);
            }
        }
        for j in 0..p {
            bad.check(|| format!("{label} vif[{j}]"), fit.vif[j], vif[j], rtol, RIDGE_ATOL);
        }
        // The padding columns are orthonormal and uncorrelated: VIF = 1/(1+K)².
        for j in p..N_PREDICTORS {
            bad.check(
                || format!("{label} vif[{j}] (padding)"),
                fit.vif[j],
                1.0 / ((1.0 + k) * (1.0 + k)),
                rtol,
                RIDGE_ATOL,
            );
        }
        bad.check(|| format!("{label} r2"), fit.r_squared(&rows, &y), num(&case["r2"]), rtol, RIDGE_ATOL);
        if fit.k != k {
            bad.push(format!("{label}: fit.k = {}", fit.k));
        }
    }
    bad.assert_none("ridge reference vectors");
}

#[test]
fn welch_matches_scipy() {
    let cases = load(include_str!("vectors/welch_t.json"));
    assert_eq!(cases.len(), 3);
    let mut bad = Mismatches::default();
    for (i, case) in cases.iter().enumerate() {
        let (t, p) = welch_t_test(&f64s(&case["a"]), &f64s(&case["b"]));
        bad.check(|| format!("case {i} t"), t, num(&case["t"]), WELCH_T_RTOL, 0.0);
        bad.check(|| format!("case {i} p"), p, num(&case["p"]), WELCH_P_RTOL, 0.0);
    }
    bad.assert_none("Welch t-test reference vectors");
}
