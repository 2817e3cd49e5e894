//! STIRPAT by ridge regression in correlation form (docs/model.md section 5): the
//! "ridge trace" method of SPSS and NCSS that the paper used.

use nalgebra::{Matrix6, Vector6};
// The t distribution is computed with the platform's functions, which may
// differ in the last bit between machines (see `math`): only the t-test's
// p-value, which `evaluate` prints and no sweep uses, takes it.
#[allow(clippy::disallowed_types)]
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::error::ChainError;

/// The number of STIRPAT predictors (P, W, IS, TI, UR, CEI).
pub const N_PREDICTORS: usize = 6;

/// The standardized problem: means, standard deviations and correlations of
/// the logged predictors and response, from which a fit at any K follows.
#[derive(Clone, Debug)]
pub struct Standardized {
    pub n_rows: usize,
    pub mean_x: [f64; N_PREDICTORS],
    pub sd_x: [f64; N_PREDICTORS],
    pub mean_y: f64,
    pub sd_y: f64,
    /// R, the correlation matrix of the predictors.
    pub corr_xx: Matrix6<f64>,
    /// r, the correlation of each predictor with the response.
    pub corr_xy: Vector6<f64>,
}

/// A ridge fit at one K.
#[derive(Clone, Debug, PartialEq)]
pub struct RidgeFit {
    pub k: f64,
    pub intercept: f64,
    /// b…g on the original (logged) scale.
    pub coefficients: [f64; N_PREDICTORS],
    /// β*, on the correlation scale.
    pub standardized: [f64; N_PREDICTORS],
    pub vif: [f64; N_PREDICTORS],
}

/// One point of the ridge trace.
#[derive(Clone, Debug, PartialEq)]
pub struct TracePoint {
    pub k: f64,
    pub standardized: [f64; N_PREDICTORS],
    pub vif: [f64; N_PREDICTORS],
    pub r2: f64,
}

/// A standard deviation at or below this fraction of the column's mean
/// (in absolute value) counts as none: equal values give rounding noise of
/// about 1e-16 relative, and a real driver series varies by far more.
pub const RELATIVE_SD_FLOOR: f64 = 1e-12;

/// Means, sample standard deviations (n − 1) and correlations of `x` and `y`.
/// Two passes (means, then centred cross-products) for accuracy.
pub fn standardize(x: &[[f64; N_PREDICTORS]], y: &[f64]) -> Result<Standardized, ChainError> {
    let n = x.len();
    if n < N_PREDICTORS + 2 || y.len() != n {
        return Err(ChainError::Regression(format!("{n} rows are too few for {N_PREDICTORS} predictors")));
    }
    let nf = n as f64;
    let mut mean_x = [0.0; N_PREDICTORS];
    let mut mean_y = 0.0;
    for (row, &yi) in x.iter().zip(y) {
        for j in 0..N_PREDICTORS {
            mean_x[j] += row[j];
        }
        mean_y += yi;
    }
    for m in &mut mean_x {
        *m /= nf;
    }
    mean_y /= nf;
    let mut sxx = Matrix6::<f64>::zeros();
    let mut sxy = Vector6::<f64>::zeros();
    let mut syy = 0.0;
    for (row, &yi) in x.iter().zip(y) {
        let d = Vector6::from_fn(|j, _| row[j] - mean_x[j]);
        let dy = yi - mean_y;
        sxx.ger(1.0, &d, &d, 1.0);
        sxy.axpy(dy, &d, 1.0);
        syy += dy * dy;
    }
    let sd_x: [f64; N_PREDICTORS] = std::array::from_fn(|j| (sxx[(j, j)] / (nf - 1.0)).sqrt());
    let sd_y = (syy / (nf - 1.0)).sqrt();
    const NAMES: [&str; N_PREDICTORS] = ["ln P", "ln W", "ln IS", "ln TI", "ln UR", "ln CEI"];
    // A column of equal values can get a standard deviation of a few ulps
    // from the rounding of its mean; that is no variation either.
    let varies = |sd: f64, mean: f64| sd.is_finite() && sd > RELATIVE_SD_FLOOR * mean.abs();
    for j in 0..N_PREDICTORS {
        if !varies(sd_x[j], mean_x[j]) {
            return Err(ChainError::Regression(format!("{} does not vary, so its correlation is undefined", NAMES[j])));
        }
    }
    if !varies(sd_y, mean_y) {
        return Err(ChainError::Regression("ln CE does not vary".to_owned()));
    }
    let norm_x: [f64; N_PREDICTORS] = std::array::from_fn(|j| sxx[(j, j)].sqrt());
    let corr_xx = Matrix6::from_fn(|i, j| sxx[(i, j)] / (norm_x[i] * norm_x[j]));
    let corr_xy = Vector6::from_fn(|j, _| sxy[j] / (norm_x[j] * syy.sqrt()));
    Ok(Standardized { n_rows: n, mean_x, sd_x, mean_y, sd_y, corr_xx, corr_xy })
}

impl Standardized {
    /// β*(K) = (R + K·I)⁻¹ r and VIF(K) = diag((R+KI)⁻¹ R (R+KI)⁻¹).
    pub fn solve(&self, k: f64) -> Result<([f64; N_PREDICTORS], [f64; N_PREDICTORS]), ChainError> {
        let shifted = self.corr_xx + Matrix6::identity() * k;
        let inverse =
            shifted.try_inverse().ok_or_else(|| ChainError::Regression(format!("R + K·I is singular at K = {k}")))?;
        let beta = inverse * self.corr_xy;
        let vif_matrix = inverse * self.corr_xx * inverse;
        let standardized: [f64; N_PREDICTORS] = std::array::from_fn(|j| beta[j]);
        let vif: [f64; N_PREDICTORS] = std::array::from_fn(|j| vif_matrix[(j, j)]);
        if standardized.iter().chain(&vif).any(|v| !v.is_finite()) {
            return Err(ChainError::Regression(format!("non-finite coefficients at K = {k}")));
        }
        Ok((standardized, vif))
    }

    /// The fit at K, back on the logged scale: b_j = β*_j·s_y/s_x,j and
    /// a = ȳ − Σ b_j·x̄_j.
    pub fn fit(&self, k: f64) -> Result<RidgeFit, ChainError> {
        let (standardized, vif) = self.solve(k)?;
        let coefficients: [f64; N_PREDICTORS] = std::array::from_fn(|j| standardized[j] * self.sd_y / self.sd_x[j]);
        let intercept = self.mean_y - (0..N_PREDICTORS).map(|j| coefficients[j] * self.mean_x[j]).sum::<f64>();
        Ok(RidgeFit { k, intercept, coefficients, standardized, vif })
    }

    /// The ridge trace at the K values of `grid`, with R² of each fit on `x`, `y`.
    pub fn trace(&self, grid: &[f64], x: &[[f64; N_PREDICTORS]], y: &[f64]) -> Result<Vec<TracePoint>, ChainError> {
        grid.iter()
            .map(|&k| {
                let fit = self.fit(k)?;
                Ok(TracePoint { k, standardized: fit.standardized, vif: fit.vif, r2: fit.r_squared(x, y) })
            })
            .collect()
    }
}

/// Automatic K from a ridge trace: the smallest grid K at which every VIF is
/// below `vif_limit` and no standardized coefficient moves by more than
/// `stability` of its value (at that K) to the next grid point. The last grid
/// point cannot qualify; when none does, the last grid K (1 by default).
pub fn automatic_k(trace: &[TracePoint], vif_limit: f64, stability: f64) -> f64 {
    for pair in trace.windows(2) {
        let (here, next) = (&pair[0], &pair[1]);
        let vif_ok = here.vif.iter().all(|v| *v < vif_limit);
        let stable = (0..N_PREDICTORS)
            .all(|j| (next.standardized[j] - here.standardized[j]).abs() <= stability * here.standardized[j].abs());
        if vif_ok && stable {
            return here.k;
        }
    }
    trace.last().map_or(1.0, |p| p.k)
}

impl RidgeFit {
    /// The fitted ln CE of one row.
    pub fn predict(&self, row: &[f64; N_PREDICTORS]) -> f64 {
        self.intercept + (0..N_PREDICTORS).map(|j| self.coefficients[j] * row[j]).sum::<f64>()
    }

    /// R² = 1 − SSE/SST of the fitted ln CE on these rows.
    pub fn r_squared(&self, x: &[[f64; N_PREDICTORS]], y: &[f64]) -> f64 {
        let mean = y.iter().sum::<f64>() / y.len() as f64;
        let (mut sse, mut sst) = (0.0, 0.0);
        for (row, &yi) in x.iter().zip(y) {
            let e = yi - self.predict(row);
            sse += e * e;
            sst += (yi - mean) * (yi - mean);
        }
        1.0 - sse / sst
    }
}

/// Welch's two-sided t-test of two independent samples with unequal
/// variances: (t, p). Matches `scipy.stats.ttest_ind(a, b, equal_var=False)`.
/// Returns NaN for both when either sample has fewer than two values or both
/// variances are zero. Its p-value is not one of the chain's bit-identical
/// results (see the `use` of `StudentsT`).
#[allow(clippy::disallowed_types)]
pub fn welch_t_test(a: &[f64], b: &[f64]) -> (f64, f64) {
    fn mean_var(x: &[f64]) -> (f64, f64) {
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0);
        (mean, var)
    }
    if a.len() < 2 || b.len() < 2 {
        return (f64::NAN, f64::NAN);
    }
    let (mean_a, var_a) = mean_var(a);
    let (mean_b, var_b) = mean_var(b);
    let (se_a, se_b) = (var_a / a.len() as f64, var_b / b.len() as f64);
    let se = se_a + se_b;
    if se <= 0.0 || !se.is_finite() {
        return (f64::NAN, f64::NAN);
    }
    let t = (mean_a - mean_b) / se.sqrt();
    let df = se * se / (se_a * se_a / (a.len() as f64 - 1.0) + se_b * se_b / (b.len() as f64 - 1.0));
    let p = match StudentsT::new(0.0, 1.0, df) {
        Ok(dist) => 2.0 * dist.cdf(-t.abs()),
        Err(_) => f64::NAN,
    };
    (t, p)
}
