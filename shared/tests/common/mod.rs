//! Shared helpers of the integration tests: every numeric tolerance in one
//! place (in the style of statrs' `prec.rs`), and float comparison.
//!
//! Each tolerance says what it is for and why it is as tight as it is. A
//! comparison passes when |actual − expected| ≤ rtol·max(|actual|, |expected|)
//! or |actual − expected| ≤ atol.
//!
//! Integration tests are separate crates; not every test uses every item.
#![allow(dead_code)]

use serde_json::Value;

// --- Mann-Kendall / Sen (reference: pymannkendall 1.4.3, scipy theilslopes) ---

/// S is an integer count: exact.
pub const MK_S_EXACT: f64 = 0.0;
/// Var(S) is an integer divided by 18, computed in i64 then one f64 division;
/// the reference is the same quotient in numpy float64. Differences are at
/// most one rounding.
pub const MK_VAR_RTOL: f64 = 1e-15;
/// Z = (S ∓ 1)/√Var(S): two roundings on each side.
pub const MK_Z_RTOL: f64 = 1e-14;
/// The Sen slope is one pairwise slope (or the mean of two), so the same
/// f64 operations as numpy's: a few ulps.
pub const SEN_RTOL: f64 = 1e-14;
/// Absolute floor for slopes and Z that are exactly 0 in the reference.
pub const TREND_ATOL: f64 = 1e-15;

// --- Jenks (reference: jenkspy 0.4.1) ---

/// Breaks are input values themselves (class minima/maxima), not computed
/// numbers: compared exactly.
pub const JENKS_EXACT: f64 = 0.0;

// --- Ridge (reference: numpy correlation-form ridge, checked against sklearn) ---

/// Intercept, coefficients, standardized coefficients, VIF and R² of the
/// correlation-form ridge on a reasonably conditioned problem (every
/// reference VIF < 100: all K > 0 cases and the 3-predictor K = 0 case).
/// Observed: agreement to < 1e-14 relative.
pub const RIDGE_RTOL: f64 = 1e-12;
/// The same on an ill-conditioned problem: the two 6-predictor K = 0 cases,
/// whose VIFs are ~1000–4100 (R has a condition number of order 1e4, so
/// solving R·β = r amplifies the ~1e-16 rounding of R and r; VIF needs R⁻¹
/// twice). Observed: up to 2.0e-11 on β* and b, 5.1e-12 on VIF and 4.9e-11 on
/// the intercept (a = ȳ − Σ b_j x̄_j cancels: −0.42 from terms of order 10).
/// This is the rounding of the problem, not a defect of either solver.
pub const RIDGE_ILL_CONDITIONED_RTOL: f64 = 1e-9;
/// The reference VIF above which a case counts as ill-conditioned.
pub const RIDGE_ILL_CONDITIONED_VIF: f64 = 100.0;
/// Absolute floor for ridge quantities that are ~0 (the zero coefficients
/// of the padding columns in the 3-predictor cases).
pub const RIDGE_ATOL: f64 = 1e-12;

// --- Welch t-test (reference: scipy.stats.ttest_ind(equal_var=False)) ---

/// t is a handful of sums and one square root. Observed: < 1e-14.
pub const WELCH_T_RTOL: f64 = 1e-12;
/// p goes through statrs' Student-t CDF (a continued-fraction regularized
/// incomplete beta), scipy's through its own special-function code; the two
/// agree to a few 1e-13 (observed 7.0e-13 at p = 0.245).
pub const WELCH_P_RTOL: f64 = 1e-11;

// --- Whole chain (reference: an independent implementation of the model specification) ---

/// Floats of the `evaluate --json` document against the fixtures'
/// `expected.json` (`shared/tests/fixtures/`): relative 1e-6, absolute 1e-12.
/// The reference is a different implementation with different summation
/// orders, splines and solvers, so this is the documented contract.
pub const CHAIN_RTOL: f64 = 1e-6;
pub const CHAIN_ATOL: f64 = 1e-12;

/// Spline fills of a dataset's interior gaps against a natural cubic spline
/// evaluated in exact rational arithmetic on the decimal CSV values.
pub const FILL_RTOL: f64 = 1e-12;

// --- Properties ---

/// Sen slope of an exactly linear series a + b·i: every pairwise slope is b
/// up to the rounding of a + b·i and of the division.
pub const SEN_LINEAR_RTOL: f64 = 1e-9;
pub const SEN_LINEAR_ATOL: f64 = 1e-9;

/// Whether `actual` is within `rtol` (relative to the larger magnitude) or
/// `atol` of `expected`. NaN matches only NaN.
pub fn close(actual: f64, expected: f64, rtol: f64, atol: f64) -> bool {
    if actual.is_nan() || expected.is_nan() {
        return actual.is_nan() && expected.is_nan();
    }
    if actual == expected {
        return true;
    }
    let d = (actual - expected).abs();
    d <= atol || d <= rtol * actual.abs().max(expected.abs())
}

/// The relative difference, for messages.
pub fn rel_diff(actual: f64, expected: f64) -> f64 {
    let d = (actual - expected).abs();
    if d == 0.0 { 0.0 } else { d / actual.abs().max(expected.abs()) }
}

/// Collects mismatches so that a test reports all of them, not the first.
/// Also tracks the largest relative difference seen among compared values
/// (printed with `--nocapture`), to show the margin under each tolerance.
#[derive(Default)]
pub struct Mismatches(pub Vec<String>, pub f64);

impl Mismatches {
    pub fn check(&mut self, what: impl FnOnce() -> String, actual: f64, expected: f64, rtol: f64, atol: f64) {
        if actual.is_finite() && expected.is_finite() && expected != 0.0 {
            self.1 = self.1.max(rel_diff(actual, expected));
        }
        if !close(actual, expected, rtol, atol) {
            self.0.push(format!(
                "{}: expected {expected:?}, actual {actual:?} (rel {:.3e}, rtol {rtol:e}, atol {atol:e})",
                what(),
                rel_diff(actual, expected)
            ));
        }
    }

    pub fn push(&mut self, message: String) {
        self.0.push(message);
    }

    /// Panic listing every mismatch, if there are any.
    pub fn assert_none(&self, context: &str) {
        println!("{context}: largest relative difference {:.3e}", self.1);
        if !self.0.is_empty() {
            panic!("{context}: {} mismatch(es):\n  {}", self.0.len(), self.0.join("\n  "));
        }
    }
}

/// A JSON array of numbers.
pub fn f64s(value: &Value) -> Vec<f64> {
    value.as_array().expect("an array").iter().map(|v| v.as_f64().expect("a number")).collect()
}

/// A JSON number.
pub fn num(value: &Value) -> f64 {
    value.as_f64().expect("a number")
}
