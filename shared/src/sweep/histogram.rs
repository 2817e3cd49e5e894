//! Sparse fixed-bin histograms with exact, order-independent merging: the
//! bins are fixed in advance (not fitted to the data), so two histograms of
//! the same quantity add bin by bin, and memory grows with the number of
//! bins hit, never with the number of values.

use crate::numerics::math;
use serde::{Deserialize, Serialize};

/// Counts by bin, kept as a vector sorted by bin: cloning and merging are
/// linear scans over contiguous memory, which matters because the
/// coordinator copies and merges whole aggregates on every commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SparseBins<K> {
    entries: Vec<(K, u64)>,
}

impl<K> Default for SparseBins<K> {
    fn default() -> Self {
        SparseBins { entries: Vec::new() }
    }
}

impl<K: Ord + Copy> SparseBins<K> {
    /// Add `count` to `bin`.
    pub fn add(&mut self, bin: K, count: u64) {
        match self.entries.binary_search_by(|(k, _)| k.cmp(&bin)) {
            Ok(i) => self.entries[i].1 += count,
            Err(i) => self.entries.insert(i, (bin, count)),
        }
    }

    /// Add every count of `other`.
    pub fn merge(&mut self, other: &SparseBins<K>) {
        self.merge_sorted(&other.entries);
    }

    /// Add every count of `other`, (bin, count) pairs sorted by strictly
    /// ascending bin (as [`SparseBins::as_slice`] gives them).
    pub fn merge_sorted(&mut self, other: &[(K, u64)]) {
        if other.is_empty() {
            return;
        }
        if self.entries.is_empty() {
            // Room for a few more: a batch's delta takes one bin per result.
            self.entries.reserve(other.len().max(8));
            self.entries.extend_from_slice(other);
            return;
        }
        // A small result (one job's few bins), or a few bins into many (a
        // batch's into a sweep's, most of them bins the sweep has already),
        // goes in place: each bin found by a binary search from where the
        // one before it went, without a new vector.
        if other.len() <= 8 || other.len() * 8 <= self.entries.len() {
            let mut from = 0;
            for &(bin, count) in other {
                let at = match self.entries[from..].binary_search_by(|(k, _)| k.cmp(&bin)) {
                    Ok(i) => {
                        self.entries[from + i].1 += count;
                        from + i
                    }
                    Err(i) => {
                        self.entries.insert(from + i, (bin, count));
                        from + i
                    }
                };
                from = at + 1;
            }
            return;
        }
        // Otherwise merged in place from the back, after counting the bins
        // that are new: no second vector, and the entries' memory is
        // reused from commit to commit.
        let entries = &mut self.entries;
        let (mut i, mut new) = (0, 0);
        for &(bin, _) in other {
            while i < entries.len() && entries[i].0 < bin {
                i += 1;
            }
            if i == entries.len() || entries[i].0 != bin {
                new += 1;
            }
        }
        let (mut i, mut j) = (entries.len(), other.len());
        entries.resize(i + new, other[0]);
        let mut at = entries.len();
        while j > 0 {
            at -= 1;
            let (bin, count) = other[j - 1];
            if i > 0 && entries[i - 1].0 > bin {
                entries[at] = entries[i - 1];
                i -= 1;
            } else if i > 0 && entries[i - 1].0 == bin {
                entries[at] = (bin, entries[i - 1].1 + count);
                i -= 1;
                j -= 1;
            } else {
                entries[at] = (bin, count);
                j -= 1;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.entries.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &u64> {
        self.entries.iter().map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = &(K, u64)> {
        self.entries.iter()
    }

    /// The (bin, count) pairs, by ascending bin.
    pub fn as_slice(&self) -> &[(K, u64)] {
        &self.entries
    }

    /// Build from entries sorted by strictly ascending bin; `None` otherwise.
    pub fn from_sorted(entries: Vec<(K, u64)>) -> Option<SparseBins<K>> {
        entries.windows(2).all(|w| w[0].0 < w[1].0).then_some(SparseBins { entries })
    }
}

/// (bin, count) pairs gathered in any order, bins repeated, and added to
/// a [`SparseBins`] at once ([`Gathered::add_to`]): a batch's results add
/// a few values each to hundreds of histograms, and one pass per histogram
/// costs less than a search and an insertion per value. Its buffers are
/// kept from histogram to histogram.
#[derive(Debug, Default)]
pub struct Gathered {
    pairs: Vec<(i32, u64)>,
    counts: Vec<u64>,
    seen: Vec<bool>,
}

impl Gathered {
    /// The bytes its buffers hold.
    pub fn heap_bytes(&self) -> usize {
        self.pairs.capacity() * std::mem::size_of::<(i32, u64)>() + self.counts.capacity() * 8 + self.seen.capacity()
    }

    #[inline]
    pub fn push(&mut self, pair: (i32, u64)) {
        self.pairs.push(pair);
    }

    /// Add the pairs gathered to `bins` and forget them: the same bins
    /// and counts as [`SparseBins::add`] of each pair in turn. `bins` grows
    /// to exactly what it holds (a coordinator keeps merged histograms for
    /// a sweep's life).
    pub fn add_to(&mut self, bins: &mut SparseBins<i32>) {
        if self.pairs.is_empty() {
            return;
        }
        self.pairs.extend_from_slice(&bins.entries);
        let (mut low, mut high) = (i64::MAX, i64::MIN);
        for &(bin, _) in &self.pairs {
            low = low.min(i64::from(bin));
            high = high.max(i64::from(bin));
        }
        let span = (high - low) as u64 + 1;
        bins.entries.clear();
        if span <= 4 * self.pairs.len() as u64 + 64 {
            // Bins close together (a histogram's values of a few samples):
            // counted in place, read out in order.
            let span = span as usize;
            self.counts.clear();
            self.counts.resize(span, 0);
            self.seen.clear();
            self.seen.resize(span, false);
            let mut distinct = 0;
            for &(bin, count) in &self.pairs {
                let at = (i64::from(bin) - low) as usize;
                self.counts[at] += count;
                distinct += usize::from(!self.seen[at]);
                self.seen[at] = true;
            }
            bins.entries.reserve_exact(distinct);
            for (at, (&count, &seen)) in self.counts.iter().zip(&self.seen).enumerate() {
                if seen {
                    bins.entries.push(((low + at as i64) as i32, count));
                }
            }
        } else {
            self.pairs.sort_unstable_by_key(|&(bin, _)| bin);
            let distinct = 1 + self.pairs.windows(2).filter(|w| w[0].0 != w[1].0).count();
            bins.entries.reserve_exact(distinct);
            for &(bin, count) in &self.pairs {
                match bins.entries.last_mut() {
                    Some(last) if last.0 == bin => last.1 += count,
                    _ => bins.entries.push((bin, count)),
                }
            }
        }
        self.pairs.clear();
    }
}

impl<'a, K> IntoIterator for &'a SparseBins<K> {
    type Item = &'a (K, u64);
    type IntoIter = std::slice::Iter<'a, (K, u64)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}

/// Bins of constant relative width: bin i holds [(1+w)^i, (1+w)^(i+1)), with
/// w = [`LOG_BIN_WIDTH`]. A quantile read from it is within w/2 relative.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogHistogram {
    /// Values ≤ 0 (or not finite), which have no logarithm.
    pub non_positive: u64,
    pub bins: SparseBins<i32>,
}

/// The relative bin width of [`LogHistogram`]: 1 %.
pub const LOG_BIN_WIDTH: f64 = 0.01;

/// ln(1 + [`LOG_BIN_WIDTH`]), the width of a bin of logarithms, as a
/// constant (a test checks it is `math::ln_1p`'s value bit for bit): a
/// call would be made for every value binned.
const LOG_STEP: f64 = f64::from_bits(0x3f84_60d6_ccca_3677);

fn log_step() -> f64 {
    LOG_STEP
}

impl LogHistogram {
    pub fn bin_of(value: f64) -> Option<i32> {
        (value > 0.0 && value.is_finite()).then(|| (math::ln(value) / log_step()).floor() as i32)
    }

    /// [`LogHistogram::bin_of`] of each of four values side by side, bit for
    /// bit, with `None` for a value that has no bin.
    #[inline(always)]
    pub fn bins_of(values: [f64; 4]) -> [Option<i32>; 4] {
        let binned = values.map(math::positive_and_finite);
        let logs: [f64; 4] = math::ln_each(std::array::from_fn(|i| if binned[i] { values[i] } else { 1.0 }));
        std::array::from_fn(|i| binned[i].then(|| (logs[i] / log_step()).floor() as i32))
    }

    /// The geometric middle of bin i.
    pub fn representative(bin: i32) -> f64 {
        math::exp((f64::from(bin) + 0.5) * log_step())
    }

    pub fn add(&mut self, value: f64) {
        match Self::bin_of(value) {
            Some(bin) => self.bins.add(bin, 1),
            None => self.non_positive += 1,
        }
    }

    pub fn count(&self) -> u64 {
        self.non_positive + self.bins.values().sum::<u64>()
    }

    pub fn merge(&mut self, other: &LogHistogram) {
        self.non_positive += other.non_positive;
        self.bins.merge(&other.bins);
    }

    /// The q-quantile (q in [0, 1]) to within half a bin (0.5 % relative);
    /// values ≤ 0 count as 0. `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).max(1);
        if rank <= self.non_positive {
            return Some(0.0);
        }
        let mut seen = self.non_positive;
        for (bin, count) in &self.bins {
            seen += count;
            if seen >= rank {
                return Some(Self::representative(*bin));
            }
        }
        None
    }
}

/// Bins of constant absolute width: bin i holds [i·w, (i+1)·w).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinearHistogram {
    pub width: f64,
    /// Values that are not finite.
    pub non_finite: u64,
    pub bins: SparseBins<i64>,
}

impl LinearHistogram {
    pub fn new(width: f64) -> LinearHistogram {
        LinearHistogram { width, non_finite: 0, bins: SparseBins::default() }
    }

    pub fn add(&mut self, value: f64) {
        if value.is_finite() {
            self.bins.add((value / self.width).floor() as i64, 1);
        } else {
            self.non_finite += 1;
        }
    }

    pub fn count(&self) -> u64 {
        self.non_finite + self.bins.values().sum::<u64>()
    }

    /// Add another histogram of the same bin width.
    pub fn merge(&mut self, other: &LinearHistogram) -> Result<(), String> {
        if self.width != other.width {
            return Err(format!("histogram bin widths differ: {} and {}", self.width, other.width));
        }
        self.non_finite += other.non_finite;
        self.bins.merge(&other.bins);
        Ok(())
    }

    /// The q-quantile as the middle of its bin; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n: u64 = self.bins.values().sum();
        if n == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bin, count) in &self.bins {
            seen += count;
            if seen >= rank {
                return Some((*bin as f64 + 0.5) * self.width);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    /// Four bins side by side are the bins one at a time, for values with
    /// and without a bin (zero, negative, subnormal, infinite, NaN).
    #[test]
    fn bins_side_by_side_are_the_bins_one_at_a_time() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let special = [0.0, -0.0, -3.0, 1e-310, f64::MIN_POSITIVE, f64::INFINITY, f64::NAN, 1.0, f64::MAX];
        let (mut side_by_side, mut checked) = (0, 0);
        for _ in 0..100_000 {
            let values: [f64; 4] = std::array::from_fn(|_| match rng.random_range(0..20) {
                0 => special[rng.random_range(0..special.len())],
                1 => f64::from_bits(rng.random::<u64>()),
                _ => math::pow(10.0, rng.random_range(-3.0..9.0)),
            });
            side_by_side += usize::from(values.iter().all(|&v| v >= f64::MIN_POSITIVE && v.is_finite()));
            for (value, bin) in values.iter().zip(LogHistogram::bins_of(values)) {
                assert_eq!(bin, LogHistogram::bin_of(*value), "{value:e}");
                checked += 1;
            }
        }
        assert!(side_by_side > 10_000 && checked == 400_000, "{side_by_side}");
    }

    #[test]
    fn the_log_step_is_ln_1p_of_the_bin_width() {
        assert_eq!(LOG_STEP.to_bits(), math::ln_1p(LOG_BIN_WIDTH).to_bits());
    }

    /// Merging sorted bins, small into large or large into small, gives
    /// the bins of adding each pair in turn.
    #[test]
    fn merging_sorted_bins_adds_bin_by_bin() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(12);
        for case in 0..3000 {
            let random = |n: usize, rng: &mut rand::rngs::StdRng| {
                let mut bins = SparseBins::default();
                for _ in 0..n {
                    bins.add(rng.random_range(-50..50), rng.random_range(1..9));
                }
                bins
            };
            let (a, b) = (rng.random_range(0..80), rng.random_range(0..80));
            let (mut merged, other) = (random(a, &mut rng), random(b, &mut rng));
            let mut expected = merged.clone();
            for &(bin, count) in other.as_slice() {
                expected.add(bin, count);
            }
            merged.merge(&other);
            assert_eq!(merged, expected, "case {case}");
        }
    }

    /// Pairs gathered and added at once give the bins that adding them one
    /// by one gives: bins close together (counted in place) and far apart
    /// (sorted), into empty and filled histograms, zero counts included.
    #[test]
    fn gathered_pairs_add_as_pairs_one_by_one() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut gathered = Gathered::default();
        let (mut dense, mut sorted) = (0, 0);
        for case in 0..3000 {
            let spread: i32 = [3, 40, 1000, i32::MAX][case % 4];
            let centre: i32 = rng.random_range(-1000..1000);
            let bin = |rng: &mut rand::rngs::StdRng| {
                (i64::from(centre) + rng.random_range(-i64::from(spread)..=i64::from(spread)))
                    .clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
            };
            let mut before = SparseBins::default();
            for _ in 0..rng.random_range(0..20) {
                before.add(bin(&mut rng), rng.random_range(1..5));
            }
            let pairs: Vec<(i32, u64)> =
                (0..rng.random_range(0..60)).map(|_| (bin(&mut rng), rng.random_range(0..4))).collect();
            let mut expected = before.clone();
            for &(b, c) in &pairs {
                expected.add(b, c);
            }
            let mut actual = before.clone();
            for &pair in &pairs {
                gathered.push(pair);
            }
            gathered.add_to(&mut actual);
            assert_eq!(actual, expected, "case {case}");
            if !pairs.is_empty() {
                if spread <= 40 { dense += 1 } else { sorted += 1 }
            }
        }
        assert!(dense > 1000 && sorted > 1000, "{dense} dense, {sorted} sorted");
    }

    #[test]
    fn log_quantiles_are_within_half_a_percent() {
        let mut h = LogHistogram::default();
        let values: Vec<f64> = (1..=1000).map(|i| f64::from(i) * 1234.5).collect();
        for v in &values {
            h.add(*v);
        }
        for q in [0.05, 0.5, 0.95] {
            let exact = values[((q * 1000.0) as usize).saturating_sub(1)];
            let got = h.quantile(q).unwrap();
            assert!((got - exact).abs() / exact < 0.0051, "q {q}: {got} vs {exact}");
        }
        h.add(0.0);
        assert_eq!(h.quantile(0.0), Some(0.0));
        assert_eq!(h.count(), 1001);
    }

    #[test]
    fn merge_is_bin_by_bin() {
        let (mut a, mut b) = (LogHistogram::default(), LogHistogram::default());
        a.add(10.0);
        b.add(10.0);
        b.add(-1.0);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!(a.bins.len(), 1);
        let mut l = LinearHistogram::new(0.1);
        l.add(0.25);
        l.add(-0.05);
        assert_eq!(l.bins.keys().copied().collect::<Vec<_>>(), vec![-1, 2]);
        assert!(l.merge(&LinearHistogram::new(0.2)).is_err());
        assert!((l.quantile(1.0).unwrap() - 0.25).abs() < 1e-12);
    }
}
