//! Jenks natural breaks (MODEL.md section 6): Fisher's exact optimal 1-D
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

/// The class cost in the form that the optimisation maximises: S²/W, where S
/// is the weighted sum and W the weight of a class. Minimising the within-class
/// SSE is maximising Σ S²/W, since Σ w·x² is the same for every partition.
#[derive(Clone, Copy, Debug)]
enum Score {
    Exact { num: i128, den: i128 },
    Float(f64),
}

impl Score {
    fn as_f64(self) -> f64 {
        match self {
            Score::Exact { num, den } => num as f64 / den as f64,
            Score::Float(v) => v,
        }
    }

    fn add(self, other: Score) -> Score {
        if let (Score::Exact { num: a, den: b }, Score::Exact { num: c, den: d }) = (self, other) {
            let sum = a
                .checked_mul(d)
                .and_then(|ad| c.checked_mul(b).and_then(|cb| ad.checked_add(cb)))
                .and_then(|num| b.checked_mul(d).map(|den| (num, den)));
            if let Some((num, den)) = sum {
                // Not reduced: a gcd per step costs more than the wider
                // numbers, which stay far inside i128 for realistic inputs.
                return Score::Exact { num, den };
            }
        }
        Score::Float(self.as_f64() + other.as_f64())
    }

    fn cmp(self, other: Score) -> Ordering {
        if let (Score::Exact { num: a, den: b }, Score::Exact { num: c, den: d }) = (self, other) {
            if let (Some(ad), Some(cb)) = (a.checked_mul(d), c.checked_mul(b)) {
                return ad.cmp(&cb);
            }
        }
        let (x, y) = (self.as_f64(), other.as_f64());
        // Float scores within a relative rounding error count as equal, so the
        // tie-break rule decides between them.
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
    let mut sorted = values.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    // Distinct values and their multiplicities.
    let mut distinct: Vec<f64> = Vec::new();
    let mut weight: Vec<u64> = Vec::new();
    for &v in &sorted {
        if distinct.last() == Some(&v) {
            *weight.last_mut().expect("pushed together") += 1;
        } else {
            distinct.push(v);
            weight.push(1);
        }
    }
    let m = distinct.len();
    let k = n_classes.min(m);
    let exact = distinct.iter().all(|v| v.fract() == 0.0 && v.abs() < 1e12);

    // Prefix sums over distinct values for O(1) class scores.
    let mut prefix_w = vec![0u64; m + 1];
    let mut prefix_s_int = vec![0i128; m + 1];
    let mut prefix_s = vec![0.0f64; m + 1];
    for i in 0..m {
        prefix_w[i + 1] = prefix_w[i] + weight[i];
        if exact {
            prefix_s_int[i + 1] = prefix_s_int[i] + weight[i] as i128 * distinct[i] as i128;
        }
        prefix_s[i + 1] = prefix_s[i] + weight[i] as f64 * distinct[i];
    }
    // Score of the class holding distinct values [i, j).
    let class_score = |i: usize, j: usize| -> Score {
        let w = (prefix_w[j] - prefix_w[i]) as i128;
        if exact {
            let s = prefix_s_int[j] - prefix_s_int[i];
            match s.checked_mul(s) {
                Some(num) => Score::Exact { num, den: w },
                None => Score::Float((s as f64) * (s as f64) / w as f64),
            }
        } else {
            let s = prefix_s[j] - prefix_s[i];
            Score::Float(s * s / w as f64)
        }
    };

    // best[c][j]: the best score of the first j distinct values in c+1 classes.
    let mut best = vec![vec![None::<Score>; m + 1]; k];
    for j in 1..=m {
        best[0][j] = Some(class_score(0, j));
    }
    for c in 1..k {
        for j in (c + 1)..=m {
            let mut top: Option<Score> = None;
            for i in c..j {
                let Some(below) = best[c - 1][i] else { continue };
                let candidate = below.add(class_score(i, j));
                if top.is_none_or(|t| candidate.cmp(t) == Ordering::Greater) {
                    top = Some(candidate);
                }
            }
            best[c][j] = top;
        }
    }

    // Reconstruct from the top class down, taking the largest top class among
    // the optimal choices at each step.
    let mut upper_index = vec![0usize; k]; // exclusive end of each class in `distinct`
    let mut end = m;
    for c in (0..k).rev() {
        upper_index[c] = end;
        if c == 0 {
            break;
        }
        let target = best[c][end].expect("reachable");
        let start = (c..end)
            .find(|&i| best[c - 1][i].is_some_and(|below| below.add(class_score(i, end)).cmp(target) == Ordering::Equal))
            .expect("the optimum is attained");
        end = start;
    }
    let upper_bounds: Vec<f64> = upper_index.iter().map(|&e| distinct[e - 1]).collect();
    let class_of = values
        .iter()
        .map(|v| upper_bounds.iter().position(|u| v <= u).unwrap_or(k - 1))
        .collect();
    Partition { class_of, upper_bounds, min: distinct[0] }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn single_class_and_empty() {
        let p = partition(&[5.0, 2.0], 1);
        assert_eq!(p.upper_bounds, vec![5.0]);
        assert_eq!(partition(&[], 5).upper_bounds, Vec::<f64>::new());
    }
}
