//! Statistics that answer a policy team's questions from an [`Aggregate`]:
//! how sure each probability is (Wilson score intervals) and whether a sweep
//! is big enough (the largest interval half-width over all zone
//! probabilities).

use crate::sweep::aggregate::Aggregate;

/// The standard normal quantile of 0.975: the z of a two-sided 95 % interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// The Wilson score interval of a binomial proportion at `z`: `successes`
/// of `n` trials. Unlike the normal-approximation interval it stays inside
/// [0, 1] and is not degenerate at 0 or n successes. (0, 1) when n = 0.
pub fn wilson(successes: u64, n: u64, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let n_f = n as f64;
    let p = successes.min(n) as f64 / n_f;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n_f)) / (1.0 + z2 / n_f);
    let half = z / (1.0 + z2 / n_f) * (p * (1.0 - p) / n_f + z2 / (4.0 * n_f * n_f)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Half the width of the 95 % Wilson interval of `successes` of `n`.
pub fn wilson_half_width(successes: u64, n: u64) -> f64 {
    let (low, high) = wilson(successes, n, Z95);
    (high - low) / 2.0
}

impl Aggregate {
    /// The largest 95 % Wilson half-width over every unit's every zone
    /// probability: how far any zone probability of the sweep may still be
    /// from its limit. 0.5 before any sample succeeded.
    pub fn largest_zone_half_width(&self) -> f64 {
        let n = self.samples_ok;
        if n == 0 {
            return 0.5;
        }
        // The half-width grows as the count nears n/2, so only each row's
        // count closest to n/2 matters.
        self.zone_counts
            .rows()
            .flat_map(|row| row.iter().copied())
            .map(|count| wilson_half_width(count, n))
            .fold(0.0, f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The closed form at points worked by hand, and two points of SciPy's
    /// `binomtest(x, n).proportion_ci(method="wilson")`.
    #[test]
    fn wilson_matches_the_closed_form_at_known_points() {
        let close = |a: (f64, f64), b: (f64, f64)| (a.0 - b.0).abs() < 1e-12 && (a.1 - b.1).abs() < 1e-12;
        // p = 0.5, n = 100: centre 0.5, half z·sqrt(0.0025 + z²/40000)/(1 + z²/100).
        let z = Z95;
        let half = z * (0.0025f64 + z * z / 40_000.0).sqrt() / (1.0 + z * z / 100.0);
        assert!(close(wilson(50, 100, z), (0.5 - half, 0.5 + half)));
        // 0 of n: the lower bound is 0 and the upper z²/(n + z²).
        assert!(close(wilson(0, 20, z), (0.0, z * z / (20.0 + z * z))));
        assert!(close(wilson(20, 20, z), (20.0 / (20.0 + z * z), 1.0)));
        assert!(close(wilson(81, 263, z), (0.2552885198782742, 0.36620957698280004)));
        assert!(close(wilson(7, 40, z), (0.08745413746035918, 0.3194999033178771)));
        assert_eq!(wilson(0, 0, z), (0.0, 1.0));
    }

    #[test]
    fn half_widths_shrink_with_samples_and_peak_at_one_half() {
        assert!(wilson_half_width(500, 1000) > wilson_half_width(100, 1000));
        assert!(wilson_half_width(50, 100) > wilson_half_width(500, 1000));
        // ±0.01 at p = 0.5 needs about 9,600 samples.
        assert!(wilson_half_width(4_800, 9_600) < 0.0101 && wilson_half_width(4_700, 9_400) > 0.01);
    }
}
