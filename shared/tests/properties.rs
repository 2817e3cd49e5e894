//! Properties of the trend, natural-breaks and ridge functions that hold for
//! every input, checked on random inputs with proptest.

mod common;

use common::{SEN_LINEAR_ATOL, SEN_LINEAR_RTOL, close};
use proptest::prelude::*;
use zonesweep_shared::numerics::jenks::partition;
use zonesweep_shared::numerics::ridge::{N_PREDICTORS, standardize};
use zonesweep_shared::numerics::trend::{mann_kendall, sen_slope};

/// A series with frequent exact ties: small integers mixed with arbitrary
/// finite values.
fn series(max_len: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(prop_oneof![(0i32..5).prop_map(f64::from), -1e3f64..1e3], 2..max_len)
}

/// Values for Jenks: integer totals like the zoning's (many ties), or floats.
fn jenks_values() -> impl Strategy<Value = Vec<f64>> {
    prop_oneof![
        prop::collection::vec((10i32..=50).prop_map(f64::from), 1..90),
        prop::collection::vec((0i32..6).prop_map(f64::from), 1..30),
        prop::collection::vec(-100.0f64..100.0, 1..60),
    ]
}

/// Values and a permutation of their positions.
fn jenks_values_and_permutation() -> impl Strategy<Value = (Vec<f64>, Vec<usize>)> {
    jenks_values().prop_flat_map(|v| {
        let n = v.len();
        (Just(v), Just((0..n).collect::<Vec<usize>>()).prop_shuffle())
    })
}

fn distinct_count(values: &[f64]) -> usize {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.dedup();
    sorted.len()
}

/// A random design: six independent uniform predictors (well conditioned for
/// n ≥ 30) and a response that depends on them plus noise.
fn design() -> impl Strategy<Value = (Vec<[f64; N_PREDICTORS]>, Vec<f64>)> {
    (30usize..150).prop_flat_map(|n| {
        (
            prop::collection::vec(prop::array::uniform6(-1.0f64..1.0), n),
            prop::collection::vec(-1.0f64..1.0, n),
            prop::array::uniform6(-2.0f64..2.0),
        )
            .prop_map(|(x, noise, b)| {
                let y = x
                    .iter()
                    .zip(&noise)
                    .map(|(row, e)| row.iter().zip(&b).map(|(xi, bi)| xi * bi).sum::<f64>() + 0.5 * e)
                    .collect();
                (x, y)
            })
    })
}

proptest! {
    /// The Sen slope of an exactly linear series a + b·i is b.
    #[test]
    fn sen_slope_of_a_line_is_its_slope(a in -1e3f64..1e3, b in -1e3f64..1e3, n in 2usize..40) {
        let x: Vec<f64> = (0..n).map(|i| a + b * i as f64).collect();
        let sen = sen_slope(&x);
        prop_assert!(close(sen, b, SEN_LINEAR_RTOL, SEN_LINEAR_ATOL), "sen {sen} for slope {b} (a {a}, n {n})");
    }

    /// Reversing a series negates S and Z exactly and keeps Var(S).
    #[test]
    fn mann_kendall_reversal_negates_s_and_z(x in series(40)) {
        let forward = mann_kendall(&x);
        let reversed: Vec<f64> = x.iter().rev().copied().collect();
        let backward = mann_kendall(&reversed);
        prop_assert_eq!(backward.s, -forward.s);
        prop_assert_eq!(backward.z, -forward.z);
        prop_assert_eq!(backward.var_s, forward.var_s);
    }

    /// Var(S) depends only on n and the tie groups, so on no ordering at all.
    #[test]
    fn mann_kendall_variance_ignores_order(
        (x, permuted) in series(40).prop_flat_map(|x| (Just(x.clone()), Just(x).prop_shuffle())),
    ) {
        prop_assert_eq!(mann_kendall(&permuted).var_s, mann_kendall(&x).var_s);
    }

    /// Jenks: equal values share a class, classes are ordered by value, the
    /// number of classes is min(k, distinct values), every class is non-empty
    /// and its upper bound is its largest value.
    #[test]
    fn jenks_classes_are_ordered_and_never_split_ties(values in jenks_values(), k in 1usize..8) {
        let p = partition(&values, k);
        let distinct = distinct_count(&values);
        prop_assert_eq!(p.n_classes(), k.min(distinct));
        prop_assert_eq!(p.class_of.len(), values.len());
        for i in 0..values.len() {
            prop_assert!(p.class_of[i] < p.n_classes());
            for j in 0..values.len() {
                if values[i] == values[j] {
                    prop_assert_eq!(p.class_of[i], p.class_of[j], "equal values {} split", values[i]);
                } else if values[i] < values[j] {
                    prop_assert!(p.class_of[i] <= p.class_of[j],
                        "{} in class {} but the larger {} in class {}", values[i], p.class_of[i], values[j], p.class_of[j]);
                }
            }
        }
        for c in 0..p.n_classes() {
            let max = values.iter().zip(&p.class_of).filter(|(_, k)| **k == c).map(|(v, _)| *v).fold(f64::NEG_INFINITY, f64::max);
            prop_assert_eq!(max, p.upper_bounds[c], "class {} is empty or its bound is not its maximum", c);
        }
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        prop_assert_eq!(p.min, min);
    }

    /// Permuting the input permutes `class_of` the same way and changes
    /// nothing else.
    #[test]
    fn jenks_commutes_with_permutation((values, perm) in jenks_values_and_permutation(), k in 1usize..8) {
        let p = partition(&values, k);
        let permuted: Vec<f64> = perm.iter().map(|&i| values[i]).collect();
        let q = partition(&permuted, k);
        prop_assert_eq!(&q.upper_bounds, &p.upper_bounds);
        prop_assert_eq!(q.min, p.min);
        let expected: Vec<usize> = perm.iter().map(|&i| p.class_of[i]).collect();
        prop_assert_eq!(q.class_of, expected);
    }

    /// On small integer inputs, the partition is the exact optimum of the
    /// within-class sum of squares (found by enumerating every partition of
    /// the distinct values into contiguous classes), and among equal optima
    /// the one with the largest top class, then the next (docs/model.md section 7).
    #[test]
    fn jenks_is_the_exact_optimum_with_the_documented_tie_break(
        values in prop::collection::vec((0i64..12).prop_map(|v| v as f64), 1..30),
        k in 1usize..6,
    ) {
        let p = partition(&values, k);
        let best = brute_force_jenks(&values, k);
        prop_assert_eq!(p.upper_bounds, best);
    }

    /// As K grows the standardized coefficients vanish like r/K: β*(K) =
    /// (R + K·I)⁻¹ r, so K·β* → r and |β*_j| ≤ ‖r‖/K ≤ √6/K.
    #[test]
    fn ridge_coefficients_vanish_as_k_grows((x, y) in design()) {
        let s = standardize(&x, &y).expect("a well-conditioned design");
        for k in [1e6, 1e9, 1e12] {
            let fit = s.fit(k).expect("a fit");
            for j in 0..N_PREDICTORS {
                prop_assert!(fit.standardized[j].abs() <= 6f64.sqrt() / k, "K {k}: β*[{j}] = {}", fit.standardized[j]);
                // K·β* = r − R·r/K + O(1/K²): |K·β* − r| ≤ ‖R‖·‖r‖/K ≤ 6·√6/K.
                let scaled = k * fit.standardized[j];
                prop_assert!((scaled - s.corr_xy[j]).abs() <= 15.0 / k + 1e-12,
                    "K {k}: K·β*[{j}] = {scaled}, r = {}", s.corr_xy[j]);
            }
        }
        // And ‖β*(K)‖ never grows with K: Σ (u_i·r)²/(λ_i + K)².
        let mut last = f64::INFINITY;
        for k in [0.0, 0.001, 0.01, 0.02, 0.1, 0.5, 1.0, 10.0, 1e3] {
            let fit = s.fit(k).expect("a fit");
            let norm = fit.standardized.iter().map(|b| b * b).sum::<f64>().sqrt();
            prop_assert!(norm <= last * (1.0 + 1e-12), "‖β*‖ grew from {last} to {norm} at K {k}");
            last = norm;
        }
    }

    /// At K = 0, VIF_j = [R⁻¹]_jj = 1/(1 − R²_j) ≥ 1. (Allowing one part in
    /// 1e12 for rounding; on random data R²_j ~ 6/n is far above that.)
    #[test]
    fn vif_at_k_zero_is_at_least_one((x, y) in design()) {
        let fit = standardize(&x, &y).and_then(|s| s.fit(0.0)).expect("a well-conditioned design");
        for (j, vif) in fit.vif.iter().enumerate() {
            prop_assert!(*vif >= 1.0 - 1e-12, "VIF[{j}] = {vif}");
        }
    }
}

/// The optimal Jenks upper bounds by exhaustive search over contiguous
/// partitions of the distinct values, compared exactly: maximise Σ S_c²/W_c
/// (equivalent to minimising the within-class sum of squares), ties going to
/// the largest top class, then the largest next class, and so on.
fn brute_force_jenks(values: &[f64], k: usize) -> Vec<f64> {
    let mut distinct: Vec<i64> = values.iter().map(|v| *v as i64).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let weight: Vec<i128> =
        distinct.iter().map(|d| values.iter().filter(|v| **v as i64 == *d).count() as i128).collect();
    let m = distinct.len();
    let k = k.min(m);
    // Every choice of k − 1 cut points among the m − 1 gaps, as class starts.
    let mut best: Option<((i128, i128), Vec<usize>)> = None;
    let mut starts: Vec<usize> = (0..k).collect(); // starts[0] = 0 always
    loop {
        // Score Σ S²/W as one fraction num/den.
        let (mut num, mut den) = (0i128, 1i128);
        for c in 0..k {
            let end = if c + 1 < k { starts[c + 1] } else { m };
            let s: i128 = (starts[c]..end).map(|i| weight[i] * distinct[i] as i128).sum();
            let w: i128 = (starts[c]..end).map(|i| weight[i]).sum();
            num = num * w + s * s * den;
            den *= w;
        }
        let better = match &best {
            None => true,
            Some(((bn, bd), bstarts)) => {
                let (lhs, rhs) = (num * bd, bn * den);
                // Larger score wins; on a tie, the smaller start of the top
                // class (a larger top class), then of the next class down.
                lhs > rhs || (lhs == rhs && starts.iter().rev().lt(bstarts.iter().rev()))
            }
        };
        if better {
            best = Some(((num, den), starts.clone()));
        }
        // Next combination of starts[1..k] from 1..m, increasing.
        let mut c = k;
        loop {
            if c <= 1 {
                let starts = best.expect("at least one partition").1;
                return (0..k).map(|c| distinct[if c + 1 < k { starts[c + 1] } else { m } - 1] as f64).collect();
            }
            c -= 1;
            if starts[c] < m - (k - c) {
                starts[c] += 1;
                for d in c + 1..k {
                    starts[d] = starts[d - 1] + 1;
                }
                break;
            }
        }
    }
}
