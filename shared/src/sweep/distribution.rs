//! The distributions a sweep can give an uncertain parameter (docs/model.md
//! section 8), each sampled by its quantile function so that every design
//! (Monte Carlo, Latin hypercube, Sobol') only has to supply a uniform number.

use serde::{Deserialize, Serialize};

use crate::numerics::math;

/// A distribution, written in a sweep spec as an inline table with a `dist`
/// key, e.g. `{ dist = "truncated-normal", mean = 1.0, sd = 0.1, low = 0.5, high = 1.5 }`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Distribution {
    Fixed {
        value: f64,
    },
    Uniform {
        low: f64,
        high: f64,
    },
    Normal {
        mean: f64,
        sd: f64,
    },
    TruncatedNormal {
        mean: f64,
        sd: f64,
        low: f64,
        high: f64,
    },
    Triangular {
        low: f64,
        mode: f64,
        high: f64,
    },
    /// exp(N(mu, sigma)): `mu` and `sigma` are of the logarithm.
    Lognormal {
        mu: f64,
        sigma: f64,
    },
}

impl Distribution {
    /// Why these parameters are not a distribution, if they are not.
    pub fn problem(&self) -> Option<String> {
        use Distribution::*;
        let finite = |values: &[f64]| values.iter().all(|v| v.is_finite());
        match *self {
            Fixed { value } if !finite(&[value]) => Some("`value` must be finite".into()),
            Uniform { low, high } if !finite(&[low, high]) => Some("`low` and `high` must be finite".into()),
            Uniform { low, high } if low > high => Some(format!("`low` {low} is greater than `high` {high}")),
            Normal { mean, sd } if !finite(&[mean, sd]) || sd <= 0.0 => {
                Some(format!("needs a finite `mean` and `sd` > 0 (got mean {mean}, sd {sd})"))
            }
            TruncatedNormal { mean, sd, low, high } => {
                if !finite(&[mean, sd, low, high]) || sd <= 0.0 {
                    Some(format!("needs finite values and `sd` > 0 (got sd {sd})"))
                } else if low > high {
                    Some(format!("`low` {low} is greater than `high` {high}"))
                } else {
                    let mass = math::normal_cdf((high - mean) / sd) - math::normal_cdf((low - mean) / sd);
                    (mass < 1e-12 && low < high)
                        .then(|| format!("[{low}, {high}] holds no probability of N({mean}, {sd})"))
                }
            }
            Triangular { low, mode, high } if !(finite(&[low, mode, high]) && low <= mode && mode <= high) => {
                Some(format!("needs low ≤ mode ≤ high (got {low}, {mode}, {high})"))
            }
            Lognormal { mu, sigma } if !finite(&[mu, sigma]) || sigma <= 0.0 => {
                Some(format!("needs a finite `mu` and `sigma` > 0 (got mu {mu}, sigma {sigma})"))
            }
            _ => None,
        }
    }

    /// The smallest value the distribution can give (−∞ for a normal).
    pub fn lower_bound(&self) -> f64 {
        match *self {
            Distribution::Fixed { value } => value,
            Distribution::Uniform { low, .. }
            | Distribution::TruncatedNormal { low, .. }
            | Distribution::Triangular { low, .. } => low,
            Distribution::Normal { .. } => f64::NEG_INFINITY,
            // exp(·) > 0; the smallest float it can round to is 0.
            Distribution::Lognormal { .. } => 0.0,
        }
    }

    /// Whether the distribution has a single value (and so needs no draw).
    pub fn is_fixed(&self) -> bool {
        match *self {
            Distribution::Fixed { .. } => true,
            Distribution::Uniform { low, high } => low == high,
            Distribution::TruncatedNormal { low, high, .. } => low == high,
            Distribution::Triangular { low, high, .. } => low == high,
            _ => false,
        }
    }
}

/// A distribution whose parameters were checked ([`Distribution::problem`]):
/// the only form a sweep plan holds and samples from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Checked(Distribution, TruncationCdf);

/// A truncated normal's standard normal CDF at its two bounds, computed
/// once when the distribution is checked instead of at every quantile
/// (the same numbers either way); zeros for other distributions.
#[derive(Clone, Copy, Debug, PartialEq)]
struct TruncationCdf(f64, f64);

impl TruncationCdf {
    fn of(distribution: &Distribution) -> TruncationCdf {
        match *distribution {
            Distribution::TruncatedNormal { mean, sd, low, high } => {
                TruncationCdf(math::normal_cdf((low - mean) / sd), math::normal_cdf((high - mean) / sd))
            }
            _ => TruncationCdf(0.0, 0.0),
        }
    }
}

impl TryFrom<Distribution> for Checked {
    type Error = String;

    fn try_from(distribution: Distribution) -> Result<Checked, String> {
        match distribution.problem() {
            Some(problem) => Err(problem),
            None => Ok(Checked(distribution, TruncationCdf::of(&distribution))),
        }
    }
}

impl Checked {
    /// U(0, 1): a categorical draw's uniform number.
    pub const UNIT_UNIFORM: Checked = Checked(Distribution::Uniform { low: 0.0, high: 1.0 }, TruncationCdf(0.0, 0.0));

    /// The distribution as written in the spec.
    pub fn spec(&self) -> Distribution {
        self.0
    }

    pub fn lower_bound(&self) -> f64 {
        self.0.lower_bound()
    }

    pub fn is_fixed(&self) -> bool {
        self.0.is_fixed()
    }

    /// The value at probability `u` ∈ (0, 1): the quantile function.
    pub fn quantile(&self, u: f64) -> f64 {
        match self.0 {
            Distribution::Fixed { value } => value,
            Distribution::Uniform { low, high } => low + u * (high - low),
            Distribution::Normal { mean, sd } => mean + sd * math::normal_quantile(u),
            Distribution::TruncatedNormal { mean, sd, low, high } => {
                if low == high {
                    return low;
                }
                let TruncationCdf(a, b) = self.1;
                (mean + sd * math::normal_quantile(a + u * (b - a))).clamp(low, high)
            }
            Distribution::Triangular { low, mode, high } => {
                if low == high {
                    return low;
                }
                let width = high - low;
                if u < (mode - low) / width {
                    low + (u * width * (mode - low)).sqrt()
                } else {
                    high - ((1.0 - u) * width * (high - mode)).sqrt()
                }
            }
            Distribution::Lognormal { mu, sigma } => math::exp(mu + sigma * math::normal_quantile(u)),
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn checked(d: Distribution) -> Checked {
        Checked::try_from(d).expect("a valid distribution")
    }

    #[test]
    fn quantiles() {
        let u = checked(Distribution::Uniform { low: 1.0, high: 3.0 });
        assert_eq!(u.quantile(0.25), 1.5);
        let n = checked(Distribution::Normal { mean: 1.0, sd: 2.0 });
        assert!((n.quantile(0.5) - 1.0).abs() < 1e-12);
        assert!((n.quantile(0.975) - (1.0 + 2.0 * 1.959963984540054)).abs() < 1e-9);
        let t = checked(Distribution::TruncatedNormal { mean: 1.0, sd: 0.1, low: 0.95, high: 1.5 });
        assert!(t.quantile(1e-9) >= 0.95 && t.quantile(0.999999) <= 1.5);
        assert!((t.quantile(0.0) - 0.95).abs() < 1e-9);
        let tri = checked(Distribution::Triangular { low: 0.0, mode: 1.0, high: 2.0 });
        assert_eq!(tri.quantile(0.5), 1.0);
        let ln = checked(Distribution::Lognormal { mu: 0.0, sigma: 1.0 });
        assert!((ln.quantile(0.5) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn problems() {
        assert!(Distribution::Uniform { low: 2.0, high: 1.0 }.problem().unwrap().contains("greater"));
        assert!(Distribution::Normal { mean: 0.0, sd: 0.0 }.problem().is_some());
        assert!(Distribution::TruncatedNormal { mean: 0.0, sd: 1.0, low: 50.0, high: 60.0 }.problem().is_some());
        assert!(Distribution::Triangular { low: 0.0, mode: 3.0, high: 2.0 }.problem().is_some());
        assert!(Distribution::Lognormal { mu: 0.0, sigma: -1.0 }.problem().is_some());
        assert!(Distribution::Uniform { low: 1.0, high: 2.0 }.problem().is_none());
        let refused = Checked::try_from(Distribution::Normal { mean: 0.0, sd: -1.0 }).unwrap_err();
        assert!(refused.contains("sd"), "{refused}");
    }

    #[test]
    fn unknown_fields_are_refused() {
        #[derive(Deserialize)]
        struct Holder {
            #[allow(dead_code)]
            d: Distribution,
        }
        assert!(toml::from_str::<Holder>("d = { dist = \"uniform\", low = 1.0, high = 2.0 }").is_ok());
        assert!(toml::from_str::<Holder>("d = { dist = \"uniform\", low = 1.0, hi = 2.0 }").is_err());
        assert!(toml::from_str::<Holder>("d = { dist = \"gamma\", k = 1.0 }").is_err());
    }
}
