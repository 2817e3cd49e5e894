//! Trend statistics (docs/model.md section 4): the Theil-Sen slope and the
//! Mann-Kendall test with tie correction.

/// The Theil-Sen slope: the median over all pairs j > k of
/// (x_j − x_k)/(j − k), the mean of the two middle values when the number of
/// pairs is even. Matches `scipy.stats.theilslopes` and
/// `pymannkendall.sens_slope` for series without missing values.
/// Returns 0 for fewer than two values.
pub fn sen_slope(x: &[f64]) -> f64 {
    let n = x.len();
    if n < 2 {
        return 0.0;
    }
    let mut slopes = Vec::with_capacity(n * (n - 1) / 2);
    for j in 1..n {
        for k in 0..j {
            slopes.push((x[j] - x[k]) / (j - k) as f64);
        }
    }
    median_in_place(&mut slopes)
}

/// The median of a non-empty slice, reordering it.
fn median_in_place(values: &mut [f64]) -> f64 {
    let m = values.len();
    let upper_index = m / 2;
    let (lower, upper, _) = values.select_nth_unstable_by(upper_index, f64::total_cmp);
    let upper = *upper;
    if m % 2 == 1 {
        upper
    } else {
        let lower_max = lower.iter().copied().max_by(f64::total_cmp).expect("an even count ≥ 2");
        (lower_max + upper) / 2.0
    }
}

/// The Mann-Kendall statistics of a series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MannKendall {
    /// S = Σ_{k<j} sign(x_j − x_k), exact comparison.
    pub s: f64,
    /// Var(S) with the tie correction over groups of exactly equal values.
    pub var_s: f64,
    /// The continuity-corrected normal score.
    pub z: f64,
}

/// The Mann-Kendall test as `pymannkendall.original_test` computes S, Var(S)
/// and Z (and R `trend::mk.test`). Ties are exact equality; Z is 0 when S is
/// 0 or Var(S) is 0.
pub fn mann_kendall(x: &[f64]) -> MannKendall {
    let n = x.len();
    let mut s: i64 = 0;
    let mut equal_pairs: i64 = 0;
    for k in 0..n {
        let xk = x[k];
        let later = &x[k + 1..];
        // Counting loops of this form vectorize; a signed sum per pair does not.
        let greater = later.iter().filter(|&&xj| xj > xk).count() as i64;
        let less = later.iter().filter(|&&xj| xj < xk).count() as i64;
        s += greater - less;
        equal_pairs += later.len() as i64 - greater - less;
    }
    // Tie groups only matter when some pair is equal; most series have none.
    let tie_term = if equal_pairs > 0 { tie_correction(x) } else { 0 };
    finish(s, tie_term, n)
}

/// [`mann_kendall`] of many series of equal length at once: `values` holds
/// `n_series` series of `n` values one after another. The pair comparisons
/// run across series (year-major), which vectorizes; the results are the
/// same numbers as one call per series.
pub fn mann_kendall_many(values: &[f64], n_series: usize, n: usize) -> Vec<MannKendall> {
    assert_eq!(values.len(), n_series * n, "n_series series of n values");
    // Year-major, padded to whole blocks of LANES series so every block has
    // the same shape; the padding lanes are computed and ignored.
    const LANES: usize = 8;
    let blocks = n_series.div_ceil(LANES);
    let width = blocks * LANES;
    let mut by_year = vec![0.0; n * width];
    for (series, chunk) in values.chunks_exact(n.max(1)).enumerate() {
        for (t, v) in chunk.iter().enumerate() {
            by_year[t * width + series] = *v;
        }
    }
    let mut s = vec![0i64; width];
    let mut equal_pairs = vec![0i64; width];
    for block in 0..blocks {
        let lane0 = block * LANES;
        // Counters in registers for a block of series over every pair;
        // 64-bit like the f64 comparison masks, so the lanes vectorize.
        let mut block_s = [0i64; LANES];
        let mut block_equal = [0i64; LANES];
        for k in 0..n {
            let earlier: &[f64; LANES] = by_year[k * width + lane0..][..LANES].try_into().expect("a whole block");
            for j in (k + 1)..n {
                let later: &[f64; LANES] = by_year[j * width + lane0..][..LANES].try_into().expect("a whole block");
                for u in 0..LANES {
                    let (a, b) = (later[u], earlier[u]);
                    block_s[u] += i64::from(a > b) - i64::from(a < b);
                    block_equal[u] += i64::from(a == b);
                }
            }
        }
        s[lane0..lane0 + LANES].copy_from_slice(&block_s);
        equal_pairs[lane0..lane0 + LANES].copy_from_slice(&block_equal);
    }
    (0..n_series)
        .map(|series| {
            let tie_term =
                if equal_pairs[series] > 0 { tie_correction(&values[series * n..(series + 1) * n]) } else { 0 };
            finish(s[series], tie_term, n)
        })
        .collect()
}

/// Σ_g t_g(t_g−1)(2t_g+5) over the groups of exactly equal values.
fn tie_correction(x: &[f64]) -> i64 {
    let mut sorted = x.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    let mut tie_term = 0;
    let mut start = 0;
    while start < sorted.len() {
        let mut end = start + 1;
        while end < sorted.len() && sorted[end] == sorted[start] {
            end += 1;
        }
        let t = (end - start) as i64;
        tie_term += t * (t - 1) * (2 * t + 5);
        start = end;
    }
    tie_term
}

/// Var(S) and Z from S and the tie term.
fn finish(s: i64, tie_term: i64, n: usize) -> MannKendall {
    let n = n as i64;
    let var_s = (n * (n - 1) * (2 * n + 5) - tie_term) as f64 / 18.0;
    let s = s as f64;
    let z = if var_s <= 0.0 || s == 0.0 {
        0.0
    } else if s > 0.0 {
        (s - 1.0) / var_s.sqrt()
    } else {
        (s + 1.0) / var_s.sqrt()
    };
    MannKendall { s, var_s, z }
}

/// The five trend classes of paper Table 4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TrendClass {
    MarkedDecrease,
    ModerateDecrease,
    Unchanged,
    ModerateIncrease,
    MarkedIncrease,
}

impl TrendClass {
    /// The class of a Mann-Kendall Z at threshold z*.
    pub fn of(z: f64, threshold: f64) -> TrendClass {
        if z > threshold {
            TrendClass::MarkedIncrease
        } else if z > 0.0 {
            TrendClass::ModerateIncrease
        } else if z == 0.0 {
            TrendClass::Unchanged
        } else if z >= -threshold {
            TrendClass::ModerateDecrease
        } else {
            TrendClass::MarkedDecrease
        }
    }

    /// The score when an increase is good: marked increase 5 … marked decrease 1.
    pub fn score_increase_good(self) -> u8 {
        self as u8 + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_series_at_once_equal_one_at_a_time() {
        let series = [
            vec![1.0, 3.0, 2.0, 2.0, 5.0, 4.0],
            vec![6.0, 5.0, 4.0, 3.0, 2.0, 1.0],
            vec![2.0, 2.0, 2.0, 2.0, 2.0, 2.0],
            vec![0.5, -1.0, 7.0, 7.0, 7.0, 0.25],
        ];
        let flat: Vec<f64> = series.concat();
        let many = mann_kendall_many(&flat, series.len(), 6);
        for (one, batch) in series.iter().zip(&many) {
            assert_eq!(mann_kendall(one), *batch);
        }
    }

    #[test]
    fn median_even_and_odd() {
        assert_eq!(median_in_place(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median_in_place(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn s_of_plus_minus_one_gives_zero_z() {
        let mk = mann_kendall(&[1.0, 2.0]);
        assert_eq!((mk.s, mk.z), (1.0, 0.0));
        let mk = mann_kendall(&[2.0, 1.0]);
        assert_eq!((mk.s, mk.z), (-1.0, 0.0));
    }

    #[test]
    fn classes_at_the_threshold() {
        assert_eq!(TrendClass::of(1.66, 1.66), TrendClass::ModerateIncrease);
        assert_eq!(TrendClass::of(1.67, 1.66), TrendClass::MarkedIncrease);
        assert_eq!(TrendClass::of(-1.66, 1.66), TrendClass::ModerateDecrease);
        assert_eq!(TrendClass::of(-1.67, 1.66), TrendClass::MarkedDecrease);
        assert_eq!(TrendClass::of(0.0, 1.66), TrendClass::Unchanged);
        assert_eq!(TrendClass::MarkedIncrease.score_increase_good(), 5);
        assert_eq!(TrendClass::MarkedDecrease.score_increase_good(), 1);
    }
}
