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
    sen_slope_in(x, &mut Vec::with_capacity(n * (n - 1) / 2))
}

/// [`sen_slope`] with the pairwise slopes in `slopes` (cleared first), so a
/// caller that repeats it allocates once.
pub fn sen_slope_in(x: &[f64], slopes: &mut Vec<f64>) -> f64 {
    let n = x.len();
    if n < 2 {
        return 0.0;
    }
    slopes.clear();
    for j in 1..n {
        for k in 0..j {
            slopes.push((x[j] - x[k]) / (j - k) as f64);
        }
    }
    median_in_place(slopes)
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
    mann_kendall_finish(s, tie_term, n)
}

/// [`mann_kendall`] of many series of equal length at once: `values` holds
/// `n_series` series of `n` values one after another. The pair comparisons
/// run across series (year-major), which vectorizes; the results are the
/// same numbers as one call per series.
pub fn mann_kendall_many(values: &[f64], n_series: usize, n: usize) -> Vec<MannKendall> {
    assert_eq!(values.len(), n_series * n, "n_series series of n values");
    // Year-major, padded to whole blocks of LANES series so every block has
    // the same shape; the padding lanes are computed and ignored.
    let width = n_series.div_ceil(MK_LANES) * MK_LANES;
    let mut by_year = vec![0.0; n * width];
    for (series, chunk) in values.chunks_exact(n.max(1)).enumerate() {
        for (t, v) in chunk.iter().enumerate() {
            by_year[t * width + series] = *v;
        }
    }
    let mut s = vec![0i64; width];
    let mut equal_pairs = vec![0i64; width];
    mann_kendall_counts(&by_year, width, n, &mut s, &mut equal_pairs);
    (0..n_series)
        .map(|series| {
            let tie_term =
                if equal_pairs[series] > 0 { tie_correction(&values[series * n..(series + 1) * n]) } else { 0 };
            mann_kendall_finish(s[series], tie_term, n)
        })
        .collect()
}

/// The block width of [`mann_kendall_counts`].
pub const MK_LANES: usize = 8;

/// S and the number of pairs neither greater nor less (exactly equal, or
/// involving a NaN) of `width` series (a multiple of [`MK_LANES`]) of `n`
/// values stored year-major: value t of series u at `by_year[t * width + u]`.
/// The kernel of [`mann_kendall_many`]; a sweep calls it on indices it
/// computed year-major. (A pair with a NaN makes its series' tie term be
/// computed, which then finds no tie in it: the result is the same.)
#[inline(always)]
pub fn mann_kendall_counts(by_year: &[f64], width: usize, n: usize, s: &mut [i64], equal_pairs: &mut [i64]) {
    // Counters in memory, 64 series at a time: in code built without AVX2
    // (the reference chain's) this runs twice as fast as counters kept in
    // registers, which do not fit there.
    pair_counts_chunked(by_year, width, n, s, equal_pairs);
}

/// [`mann_kendall_counts`] on the values rounded to f32, twice as many
/// lanes per instruction: S and the number of pairs whose f32 values are
/// not strictly ordered. Rounding to f32 keeps order (a < b gives
/// f32(a) ≤ f32(b)), so for a series with no such pair every pair compares
/// the same in f64 and S is exact; a series with one (a tie in f64, or two
/// values too close for f32) must be counted again in f64.
#[inline(always)]
pub fn mann_kendall_counts_f32(by_year: &[f32], width: usize, n: usize, s: &mut [i64], not_ordered: &mut [i64]) {
    pair_counts::<f32, { 2 * MK_LANES }>(by_year, width, n, s, not_ordered);
}

/// The pair-counting kernel of [`mann_kendall_counts_f32`] (the fast
/// path's, built for AVX2). It takes `WIDE` series at a time (then
/// [`MK_LANES`] for the rest), whose counters stay in vector registers over
/// every pair of years (fixed-size arrays, which the compiler keeps there);
/// each pair is a load and two compares of whole vectors. (With 64 series
/// at a time, the counters went to memory and back for every pair: 8 %
/// more time per fast-path sample than 16 f32 lanes.) The counters are
/// 32-bit: a series has at most as many values as the dataset's years
/// allow, far below the 65,536 whose pairs would not fit.
#[inline(always)]
fn pair_counts<T: Copy + PartialOrd, const WIDE: usize>(
    by_year: &[T],
    width: usize,
    n: usize,
    s: &mut [i64],
    not_ordered: &mut [i64],
) {
    assert!(width % MK_LANES == 0 && by_year.len() >= n * width && s.len() >= width && not_ordered.len() >= width);
    assert!(n <= 1 << 16, "a series of {n} values has more pairs than 32-bit counters hold");
    let wide = width - width % WIDE;
    for lane0 in (0..wide).step_by(WIDE) {
        lane_counts::<T, WIDE>(by_year, width, n, lane0, s, not_ordered);
    }
    for lane0 in (wide..width).step_by(MK_LANES) {
        lane_counts::<T, MK_LANES>(by_year, width, n, lane0, s, not_ordered);
    }
}

/// The pair-counting kernel of [`mann_kendall_counts`]: counters for a
/// chunk of up to 64 series stay in L1 over every pair of years, and each
/// pair is one pass of full-width vector compares. 32-bit counters, as in
/// [`pair_counts`].
#[inline(always)]
fn pair_counts_chunked(by_year: &[f64], width: usize, n: usize, s: &mut [i64], not_ordered: &mut [i64]) {
    assert!(width % MK_LANES == 0 && by_year.len() >= n * width && s.len() >= width && not_ordered.len() >= width);
    assert!(n <= 1 << 16, "a series of {n} values has more pairs than 32-bit counters hold");
    let pairs = (n * n.saturating_sub(1) / 2) as i32;
    const CHUNK: usize = 64;
    for lane0 in (0..width).step_by(CHUNK) {
        let lanes = CHUNK.min(width - lane0);
        let mut greater = [0i32; CHUNK];
        let mut less = [0i32; CHUNK];
        let (greater_lanes, less_lanes) = (&mut greater[..lanes], &mut less[..lanes]);
        for k in 0..n {
            let earlier = &by_year[k * width + lane0..][..lanes];
            for l in k + 1..n {
                let later = &by_year[l * width + lane0..][..lanes];
                for (((g, s), &a), &b) in greater_lanes.iter_mut().zip(less_lanes.iter_mut()).zip(earlier).zip(later) {
                    *g += i32::from(b > a);
                    *s += i32::from(b < a);
                }
            }
        }
        for u in 0..lanes {
            s[lane0 + u] = i64::from(greater[u] - less[u]);
            not_ordered[lane0 + u] = i64::from(pairs - greater[u] - less[u]);
        }
    }
}

/// [`pair_counts`] of the `L` series from `lane0` on.
#[inline(always)]
fn lane_counts<T: Copy + PartialOrd, const L: usize>(
    by_year: &[T],
    width: usize,
    n: usize,
    lane0: usize,
    s: &mut [i64],
    not_ordered: &mut [i64],
) {
    let pairs = (n * n.saturating_sub(1) / 2) as i32;
    assert!(
        lane0 + L <= width && n.checked_mul(width).is_some_and(|values| by_year.len() >= values),
        "the L series from lane0 in every one of n years"
    );
    // The L values of year t < n: checked once above instead of at every
    // pair, which is a few vector instructions.
    let lanes_at = |t: usize| -> [T; L] {
        debug_assert!(t < n);
        // SAFETY: t < n, lane0 + L ≤ width and n · width ≤ by_year.len()
        // (asserted above), so the L values from t · width + lane0 lie in
        // `by_year`; an array of T has T's alignment.
        unsafe { *by_year.as_ptr().add(t * width + lane0).cast::<[T; L]>() }
    };
    let mut greater = [0i32; L];
    let mut less = [0i32; L];
    for k in 0..n {
        let earlier = lanes_at(k);
        // Two later years a pass (the counts are integers: their order
        // does not matter), then the last one if one is left.
        let mut l = k + 1;
        while l + 1 < n {
            let (first, second) = (lanes_at(l), lanes_at(l + 1));
            for j in 0..L {
                greater[j] += i32::from(first[j] > earlier[j]) + i32::from(second[j] > earlier[j]);
                less[j] += i32::from(first[j] < earlier[j]) + i32::from(second[j] < earlier[j]);
            }
            l += 2;
        }
        if l < n {
            let later = lanes_at(l);
            for j in 0..L {
                greater[j] += i32::from(later[j] > earlier[j]);
                less[j] += i32::from(later[j] < earlier[j]);
            }
        }
    }
    for j in 0..L {
        s[lane0 + j] = i64::from(greater[j] - less[j]);
        not_ordered[lane0 + j] = i64::from(pairs - greater[j] - less[j]);
    }
}

/// Σ_g t_g(t_g−1)(2t_g+5) over the groups of exactly equal values.
pub fn tie_correction(x: &[f64]) -> i64 {
    tie_correction_in(&mut x.to_vec())
}

/// [`tie_correction`] of `x`, reordering it.
pub fn tie_correction_in(sorted: &mut [f64]) -> i64 {
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

/// Var(S) and Z from S and the tie term of a series of n values.
pub fn mann_kendall_finish(s: i64, tie_term: i64, n: usize) -> MannKendall {
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
    fn f32_counts_are_exact_or_flag_the_series() {
        // Eight series of five values, year-major: strictly ordered ones,
        // one with an exact tie, one whose values differ only beyond f32.
        let series: [[f64; 5]; 8] = [
            [1.0, 2.0, 3.0, 4.0, 5.0],
            [5.0, 4.0, 3.0, 2.0, 1.0],
            [1.0, 3.0, 2.0, 5.0, 4.0],
            [2.0, 2.0, 1.0, 3.0, 0.5],
            [1.0, 1.0 + 1e-12, 1.0 + 2e-12, 1.0 + 3e-12, 1.0 + 4e-12],
            [1e30, 1e-30, 7.0, -7.0, 0.0],
            [3.0, 1.0, 4.0, 1.5, 9.0],
            [0.1, 0.2, 0.3, 0.4, 0.5],
        ];
        let by_year: Vec<f64> = (0..5).flat_map(|t| series.iter().map(move |x| x[t])).collect();
        let narrow: Vec<f32> = by_year.iter().map(|&v| v as f32).collect();
        let (mut s32, mut flagged) = (vec![0; 8], vec![0; 8]);
        mann_kendall_counts_f32(&narrow, 8, 5, &mut s32, &mut flagged);
        let (mut s64, mut equal) = (vec![0; 8], vec![0; 8]);
        mann_kendall_counts(&by_year, 8, 5, &mut s64, &mut equal);
        for u in 0..8 {
            if flagged[u] == 0 {
                assert_eq!(s32[u], s64[u], "series {u}");
                assert_eq!(equal[u], 0, "series {u}");
            }
        }
        assert!(flagged[3] > 0 && equal[3] > 0, "an exact tie is flagged");
        assert!(flagged[4] > 0 && equal[4] == 0 && s64[4] == 10, "values equal in f32 only are flagged");
        assert_eq!(flagged.iter().filter(|&&f| f > 0).count(), 2);
    }

    /// The f32 kernel (16 series at a time, then 8; two later years a pass,
    /// then the last one) counts every pair of every series as a plain
    /// double loop does, for odd and even numbers of years.
    #[test]
    fn f32_counts_are_those_of_every_pair() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(21);
        for n in (0..=13).chain([21, 30]) {
            for width in [8, 16, 24, 40] {
                let by_year: Vec<f32> = (0..n * width)
                    .map(|_| match rng.random_range(0..6) {
                        0 => 1.0,
                        1 => f32::NAN,
                        _ => rng.random_range(-3.0..3.0),
                    })
                    .collect();
                let (mut s, mut not_ordered) = (vec![0; width], vec![0; width]);
                mann_kendall_counts_f32(&by_year, width, n, &mut s, &mut not_ordered);
                for u in 0..width {
                    let (mut greater, mut less) = (0i64, 0i64);
                    for k in 0..n {
                        for l in k + 1..n {
                            let (a, b) = (by_year[k * width + u], by_year[l * width + u]);
                            greater += i64::from(b > a);
                            less += i64::from(b < a);
                        }
                    }
                    let pairs = (n * n.saturating_sub(1) / 2) as i64;
                    assert_eq!(
                        (s[u], not_ordered[u]),
                        (greater - less, pairs - greater - less),
                        "n {n}, width {width}"
                    );
                }
            }
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
