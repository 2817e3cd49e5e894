//! Jenks natural breaks (docs/model.md section 7): Fisher's exact optimal 1-D
//! partition into classes minimising the within-class sum of squared
//! deviations, over the distinct values weighted by their multiplicity, so
//! equal values are never split.
//!
//! When every value is an integer the objective is compared exactly (as a
//! rational number); otherwise in f64. Among equally optimal partitions the
//! one with the largest top class is taken, then the largest next class, and
//! so on, which is what jenkspy and mapclassify's FisherJenks return.
//! Reference: jenkspy 0.4.1 `jenks_breaks`, R classInt `style = "fisher"`.

use std::cmp::Ordering;

/// A partition of values into ordered classes.
#[derive(Clone, Debug, PartialEq)]
pub struct Partition {
    /// The class of each input value, 0 = the lowest values.
    pub class_of: Vec<usize>,
    /// The upper bound (largest value) of each class, ascending.
    pub upper_bounds: Vec<f64>,
    /// The smallest value.
    pub min: f64,
}

impl Partition {
    pub fn n_classes(&self) -> usize {
        self.upper_bounds.len()
    }

    /// The bounds in jenkspy's form: the minimum, then each class's upper bound.
    pub fn jenkspy_breaks(&self) -> Vec<f64> {
        let mut breaks = vec![self.min];
        breaks.extend(&self.upper_bounds);
        breaks
    }
}

/// The class score that the optimisation maximises: S²/W, where S is the
/// weighted sum and W the weight of a class. Minimising the within-class SSE
/// is maximising Σ S²/W, since Σ w·x² is the same for every partition.
trait Score: Copy {
    fn add(self, other: Self) -> Self;
    fn cmp(self, other: Self) -> Ordering;
}

/// An exact rational num/den. Never reduced: [`partition`] uses it only when
/// a bound on the inputs shows that no sum or cross product can overflow.
#[derive(Clone, Copy, Debug)]
struct Exact {
    num: i128,
    den: i128,
}

impl Score for Exact {
    fn add(self, other: Exact) -> Exact {
        Exact { num: self.num * other.den + other.num * self.den, den: self.den * other.den }
    }

    fn cmp(self, other: Exact) -> Ordering {
        (self.num * other.den).cmp(&(other.num * self.den))
    }
}

/// A float score; values within a relative rounding error count as equal, so
/// the tie-break rule decides between them.
#[derive(Clone, Copy, Debug)]
struct Float(f64);

impl Score for Float {
    fn add(self, other: Float) -> Float {
        Float(self.0 + other.0)
    }

    fn cmp(self, other: Float) -> Ordering {
        let (x, y) = (self.0, other.0);
        if (x - y).abs() <= 1e-12 * x.abs().max(y.abs()) { Ordering::Equal } else { x.total_cmp(&y) }
    }
}

/// Partition `values` into at most `n_classes` classes (fewer when there are
/// fewer distinct values). Values must be finite; an empty input gives an
/// empty partition.
pub fn partition(values: &[f64], n_classes: usize) -> Partition {
    if values.is_empty() || n_classes == 0 {
        return Partition { class_of: vec![0; values.len()], upper_bounds: Vec::new(), min: f64::NAN };
    }
    let mut scratch = Scratch::default();
    scratch.sorted.extend_from_slice(values);
    scratch.sorted.sort_unstable_by(f64::total_cmp);
    let upper_bounds = scratch.upper_bounds(n_classes).to_vec();
    let k = upper_bounds.len();
    let class_of = values.iter().map(|v| upper_bounds.iter().position(|u| v <= u).unwrap_or(k - 1)).collect();
    Partition { class_of, upper_bounds, min: scratch.distinct[0] }
}

/// The buffers of [`partition`], for a caller that partitions again and
/// again without allocating once they have grown.
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    /// The values to partition, sorted ascending (by `total_cmp`): the
    /// caller fills it before [`Scratch::upper_bounds`].
    pub sorted: Vec<f64>,
    distinct: Vec<f64>,
    weight: Vec<u64>,
    prefix_w: Vec<u64>,
    prefix_exact: Vec<i128>,
    prefix_float: Vec<f64>,
    best_exact: Vec<Option<Exact>>,
    best_float: Vec<Option<Float>>,
    ends: Vec<usize>,
    upper_bounds: Vec<f64>,
    /// 1/w for every class size w up to the number of values (the filter's
    /// scores multiply by it instead of dividing).
    reciprocals: Vec<f64>,
}

impl Scratch {
    /// The upper bound of each class of the optimal partition of the
    /// non-empty `sorted` values into at most `n_classes` (≥ 1) classes,
    /// ascending: [`partition`]'s `upper_bounds`.
    pub fn upper_bounds(&mut self, n_classes: usize) -> &[f64] {
        let Scratch {
            sorted,
            distinct,
            weight,
            prefix_w,
            prefix_exact,
            prefix_float,
            best_exact,
            best_float,
            ends,
            upper_bounds,
            reciprocals,
        } = self;
        // Distinct values and their multiplicities.
        distinct.clear();
        weight.clear();
        for &v in sorted.iter() {
            if distinct.last() == Some(&v) {
                *weight.last_mut().expect("pushed together") += 1;
            } else {
                distinct.push(v);
                weight.push(1);
            }
        }
        let k = n_classes.min(distinct.len());
        prefix_w.clear();
        prefix_w.push(0);
        for (i, w) in weight.iter().enumerate() {
            prefix_w.push(prefix_w[i] + w);
        }
        // Exact arithmetic when every value is an integer and the largest cross
        // product of two k-class sums, k · max|v|² · n^(2k+1), fits in i128 with
        // room to spare (81 units of totals ≤ 50 in 5 classes: about 10²⁵).
        let n = sorted.len() as f64;
        let max_abs = distinct.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let bound = k as f64 * max_abs * max_abs * n.powi(2 * k as i32 + 1);
        if distinct.iter().all(|v| v.fract() == 0.0) && bound < 1e36 {
            prefix_exact.clear();
            prefix_exact.push(0);
            for i in 0..distinct.len() {
                prefix_exact.push(prefix_exact[i] + weight[i] as i128 * distinct[i] as i128);
            }
            // The same sums in f64 (exact while every prefix sum is below
            // 2^53) decide every comparison whose sides differ clearly; the
            // exact scores decide the rest. Beyond that, or with very many
            // classes, every comparison is exact.
            let exact_in_f64 = prefix_exact.iter().all(|v| v.unsigned_abs() < 1 << 53) && k <= MAX_FILTERED_CLASSES;
            let exact_score = |i: usize, j: usize| {
                let s = prefix_exact[j] - prefix_exact[i];
                Exact { num: s * s, den: (prefix_w[j] - prefix_w[i]) as i128 }
            };
            if !exact_in_f64 {
                optimal_ends(distinct.len(), k, best_exact, ends, exact_score);
                upper_bounds.clear();
                upper_bounds.extend(ends.iter().map(|&e| distinct[e - 1]));
                return upper_bounds;
            }
            prefix_float.clear();
            prefix_float.extend(prefix_exact.iter().map(|&v| v as f64));
            if reciprocals.len() != sorted.len() + 1 {
                reciprocals.clear();
                reciprocals.extend((0..=sorted.len()).map(|w| 1.0 / w as f64));
            }
            optimal_ends_filtered(distinct.len(), k, best_exact, best_float, ends, exact_score, |i, j| {
                let s = prefix_float[j] - prefix_float[i];
                s * s * reciprocals[(prefix_w[j] - prefix_w[i]) as usize]
            })
        } else {
            prefix_float.clear();
            prefix_float.push(0.0);
            for i in 0..distinct.len() {
                prefix_float.push(prefix_float[i] + weight[i] as f64 * distinct[i]);
            }
            optimal_ends(distinct.len(), k, best_float, ends, |i, j| {
                let s = prefix_float[j] - prefix_float[i];
                Float(s * s / (prefix_w[j] - prefix_w[i]) as f64)
            })
        };
        upper_bounds.clear();
        upper_bounds.extend(ends.iter().map(|&e| distinct[e - 1]));
        upper_bounds
    }
}

/// Fisher's dynamic programme over m distinct values in k classes: the
/// exclusive end of each class in the optimal partition into `ends`, taking
/// the largest top class among equally optimal choices, then the largest
/// next, and so on.
fn optimal_ends<S: Score>(
    m: usize,
    k: usize,
    best: &mut Vec<Option<S>>,
    ends: &mut Vec<usize>,
    class_score: impl Fn(usize, usize) -> S,
) {
    // best[c * (m + 1) + j]: the best score of the first j distinct values in c+1 classes.
    let at = |c: usize, j: usize| c * (m + 1) + j;
    best.clear();
    best.resize(k * (m + 1), None);
    for j in 1..=m {
        best[at(0, j)] = Some(class_score(0, j));
    }
    for c in 1..k {
        for j in (c + 1)..=m {
            let mut top: Option<S> = None;
            for i in c..j {
                let Some(below) = best[at(c - 1, i)] else { continue };
                let candidate = below.add(class_score(i, j));
                if top.is_none_or(|t| candidate.cmp(t) == Ordering::Greater) {
                    top = Some(candidate);
                }
            }
            best[at(c, j)] = top;
        }
    }
    reconstruct(m, k, ends, |c, i, end| {
        let target = best[at(c, end)].expect("reachable");
        best[at(c - 1, i)].is_some_and(|below| below.add(class_score(i, end)).cmp(target) == Ordering::Equal)
    });
}

/// The class ends from the top class down: class c ends at `end`, and class
/// c − 1 at the first i for which `attains(c, i, end)` (its best score plus
/// that of the class [i, end) is the optimum of c + 1 classes over the
/// first `end` values).
fn reconstruct(m: usize, k: usize, ends: &mut Vec<usize>, attains: impl Fn(usize, usize, usize) -> bool) {
    ends.clear();
    ends.resize(k, 0);
    let mut end = m;
    for c in (0..k).rev() {
        ends[c] = end;
        if c == 0 {
            break;
        }
        end = (c..end).find(|&i| attains(c, i, end)).expect("the optimum is attained");
    }
}

/// Relative difference below which two f64 scores are compared exactly.
/// With every prefix sum below 2^53 a class's sum s is exact in f64, and its
/// score s²·(1/n) is rounded three times (s², the reciprocal, the product:
/// within 3u of s²/n, u = 2⁻⁵³); a candidate adds at most k such positive
/// scores with k − 1 roundings, so it is within (k + 2)u + O(u²) ≤ 3k·2⁻⁵³
/// (relative) of the exact one: below 10⁻¹³ for k ≤
/// [`MAX_FILTERED_CLASSES`]. A difference above 10⁻¹² thus has the exact
/// difference's sign.
const FILTER: f64 = 1e-12;

/// The most classes for which [`FILTER`] holds as above.
const MAX_FILTERED_CLASSES: usize = 256;

/// [`optimal_ends`] with [`Exact`] scores, deciding each comparison in f64
/// (`float_score`, the same score rounded) unless the two sides are within
/// [`FILTER`] of each other, and exactly then: the same ends, for a fraction
/// of the 128-bit arithmetic.
fn optimal_ends_filtered(
    m: usize,
    k: usize,
    best: &mut Vec<Option<Exact>>,
    best_float: &mut Vec<Option<Float>>,
    ends: &mut Vec<usize>,
    class_score: impl Fn(usize, usize) -> Exact,
    float_score: impl Fn(usize, usize) -> f64,
) {
    let at = |c: usize, j: usize| c * (m + 1) + j;
    best.clear();
    best.resize(k * (m + 1), None);
    best_float.clear();
    best_float.resize(k * (m + 1), None);
    let float = |best_float: &[Option<Float>], c: usize, j: usize| best_float[at(c, j)].map_or(f64::NAN, |f| f.0);
    let clearly = |a: f64, b: f64| {
        let d = a - b;
        if d > FILTER * b.abs() {
            Some(Ordering::Greater)
        } else if d < -FILTER * b.abs() {
            Some(Ordering::Less)
        } else {
            None
        }
    };
    for j in 1..=m {
        best[at(0, j)] = Some(class_score(0, j));
        best_float[at(0, j)] = Some(Float(float_score(0, j)));
    }
    for c in 1..k {
        // The first split attaining the optimum of j values never comes
        // before that of j − 1 values (the within-class sum of squares
        // satisfies the quadrangle inequality, so the least optimal split
        // is monotone in j), so the search for j starts there.
        let mut first_optimal = c;
        for j in (c + 1)..=m {
            let mut top: Option<(usize, f64)> = None;
            for i in first_optimal..j {
                let Some(below) = best_float[at(c - 1, i)] else { continue };
                let candidate = below.0 + float_score(i, j);
                let greater = match top {
                    None => true,
                    Some((t, top_score)) => match clearly(candidate, top_score) {
                        Some(order) => order == Ordering::Greater,
                        None => {
                            #[cfg(test)]
                            tests::EXACT_COMPARISONS.with(|n| n.set(n.get() + 1));
                            let exact =
                                |i: usize| best[at(c - 1, i)].expect("set with its float").add(class_score(i, j));
                            exact(i).cmp(exact(t)) == Ordering::Greater
                        }
                    },
                };
                if greater {
                    top = Some((i, candidate));
                }
            }
            if let Some((i, score)) = top {
                best[at(c, j)] = Some(best[at(c - 1, i)].expect("set with its float").add(class_score(i, j)));
                best_float[at(c, j)] = Some(Float(score));
                first_optimal = i;
            }
        }
    }
    // The first split attaining the optimum exactly, as `optimal_ends`
    // finds it; the f64 scores only skip splits that clearly do not.
    reconstruct(m, k, ends, |c, i, end| {
        let target = best[at(c, end)].expect("reachable");
        best[at(c - 1, i)].is_some_and(|below| {
            clearly(float(best_float, c - 1, i) + float_score(i, end), float(best_float, c, end)).is_none()
                && below.add(class_score(i, end)).cmp(target) == Ordering::Equal
        })
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        /// Comparisons the filtered search left to exact scores, on this thread.
        pub(super) static EXACT_COMPARISONS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    #[test]
    fn fewer_distinct_values_than_classes() {
        let p = partition(&[3.0, 1.0, 3.0, 1.0], 5);
        assert_eq!(p.upper_bounds, vec![1.0, 3.0]);
        assert_eq!(p.class_of, vec![1, 0, 1, 0]);
    }

    #[test]
    fn ties_prefer_the_larger_top_class() {
        // {1,2} {3} and {1} {2,3} are equally good; the larger top class wins.
        let p = partition(&[1.0, 2.0, 3.0], 2);
        assert_eq!(p.upper_bounds, vec![1.0, 3.0]);
    }

    /// The f64 filter changes no split: random integer data with many
    /// exact ties between candidate splits (few distinct values, repeated
    /// weights) give the same ends as the all-exact search.
    #[test]
    fn the_filtered_search_finds_the_exact_ends() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for case in 0..20_000 {
            let n = rng.random_range(1..120);
            let range = [3, 8, 41, 1000][case % 4];
            let values: Vec<i128> = (0..n).map(|_| rng.random_range(0..range)).collect();
            let mut distinct: Vec<i128> = values.clone();
            distinct.sort_unstable();
            distinct.dedup();
            let weight: Vec<u64> = distinct.iter().map(|d| values.iter().filter(|v| *v == d).count() as u64).collect();
            let m = distinct.len();
            let k = rng.random_range(1..7).min(m);
            let mut prefix_w = vec![0u64];
            let mut prefix = vec![0i128];
            for i in 0..m {
                prefix_w.push(prefix_w[i] + weight[i]);
                prefix.push(prefix[i] + weight[i] as i128 * distinct[i]);
            }
            let exact = |i: usize, j: usize| {
                let s = prefix[j] - prefix[i];
                Exact { num: s * s, den: (prefix_w[j] - prefix_w[i]) as i128 }
            };
            let float = |i: usize, j: usize| {
                let s = (prefix[j] - prefix[i]) as f64;
                s * s / (prefix_w[j] - prefix_w[i]) as f64
            };
            let (mut best, mut best_float, mut plain, mut filtered) = (vec![], vec![], vec![], vec![]);
            optimal_ends(m, k, &mut best, &mut plain, exact);
            optimal_ends_filtered(m, k, &mut best, &mut best_float, &mut filtered, exact, float);
            assert_eq!(plain, filtered, "case {case}: {values:?} in {k} classes");
        }
        // Ties the f64 scores could not order were ordered exactly.
        let exact_comparisons = EXACT_COMPARISONS.with(|n| n.get());
        assert!(exact_comparisons > 100, "{exact_comparisons} comparisons fell back to exact scores");
    }

    #[test]
    fn single_class_and_empty() {
        let p = partition(&[5.0, 2.0], 1);
        assert_eq!(p.upper_bounds, vec![5.0]);
        assert_eq!(partition(&[], 5).upper_bounds, Vec::<f64>::new());
    }
}
