//! A job's result as the coordinator takes it: an aggregate of a few samples
//! whose count tables keep only their entries that are not zero and whose
//! histograms lie in a few flat arrays. A one-sample result of the 81-unit
//! demonstration dataset has about 18,000 table entries of which about 1,000
//! are not zero, and about 600 histograms of one bin each: as an
//! [`Aggregate`] it takes some 150 KiB and 600 allocations to decode, check
//! and merge; as a [`SparseAggregate`] a few KiB and a dozen.
//!
//! It is checked ([`SparseAggregate::check_lengths`],
//! [`SparseAggregate::check_consistency`]) exactly as its dense form would
//! be, and [`Aggregate::merge_sparse`] adds it bit-identically to
//! [`Aggregate::merge`] of its dense form ([`SparseAggregate::to_aggregate`]).

use std::collections::BTreeMap;

use crate::sweep::aggregate::{
    Aggregate, FailureKind, MergeError, Shape, check_failures, check_list_lengths, check_regression, merge_failures,
    merge_sensitivity,
};
use crate::sweep::count_table::CountTable;
use crate::sweep::histogram::{Gathered, LinearHistogram, LogHistogram, SparseBins};
use crate::sweep::sensitivity::SensitivitySums;

/// A count table of `len` entries (row after row, as
/// [`CountTable::as_flat`]) that keeps its entries that are not zero, by
/// strictly ascending index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SparseCounts {
    len: usize,
    entries: Vec<(u32, u64)>,
}

impl SparseCounts {
    /// A table of `len` entries from (index, count) pairs by strictly
    /// ascending index, each below `len`; pairs whose count is zero are
    /// dropped. The error says which pair is out of place.
    pub fn new(len: usize, mut entries: Vec<(u32, u64)>) -> Result<SparseCounts, String> {
        for (n, pair) in entries.windows(2).enumerate() {
            if pair[0].0 >= pair[1].0 {
                return Err(format!(
                    "entry {} (index {}) does not follow index {} in ascending order",
                    n + 1,
                    pair[1].0,
                    pair[0].0
                ));
            }
        }
        if let Some(&(index, _)) = entries.last()
            && index as usize >= len
        {
            return Err(format!("entry {index} is beyond its {len} entries"));
        }
        entries.retain(|&(_, count)| count != 0);
        Ok(SparseCounts { len, entries })
    }

    /// The entries of `flat` that are not zero.
    pub fn of(flat: &[u64]) -> SparseCounts {
        let entries = flat.iter().enumerate().filter(|(_, c)| **c != 0).map(|(i, &c)| (i as u32, c)).collect();
        SparseCounts { len: flat.len(), entries }
    }

    /// The number of entries, zeros included.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The (index, count) pairs that are not zero, by ascending index.
    pub fn entries(&self) -> &[(u32, u64)] {
        &self.entries
    }

    /// The dense table, `width` entries per row.
    pub fn to_table(&self, width: usize) -> Option<CountTable> {
        let mut flat = vec![0; self.len];
        for &(i, c) in &self.entries {
            flat[i as usize] = c;
        }
        CountTable::from_flat(width, flat)
    }

    /// The first of `rows` rows of `width` entries (a row with no entry
    /// sums to zero) whose sum is `bad`, with that sum.
    fn first_row_where(&self, width: usize, rows: usize, mut bad: impl FnMut(u128) -> bool) -> Option<(usize, u128)> {
        let width = width.max(1);
        let mut entries = self.entries.iter().peekable();
        for row in 0..rows {
            let end = (row + 1) * width;
            let mut sum = 0u128;
            while let Some(&&(i, c)) = entries.peek() {
                if (i as usize) >= end {
                    break;
                }
                sum += u128::from(c);
                entries.next();
            }
            if bad(sum) {
                return Some((row, sum));
            }
        }
        None
    }
}

/// A list of log histograms in three flat arrays: histogram h has
/// `non_positive[h]` and the bins `bins[ends[h − 1]..ends[h]]`, each
/// histogram's bins by strictly ascending bin.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SparseLogs {
    non_positive: Vec<u64>,
    ends: Vec<u32>,
    bins: Vec<(i32, u64)>,
}

impl SparseLogs {
    /// Histogram h from `non_positive[h]` and the next `lens[h]` pairs of
    /// `bins`; every histogram's bins must be strictly ascending.
    pub fn new(non_positive: Vec<u64>, lens: &[u32], bins: Vec<(i32, u64)>) -> Result<SparseLogs, String> {
        if lens.len() != non_positive.len() {
            return Err(format!("{} lengths for {} histograms", lens.len(), non_positive.len()));
        }
        let total: u64 = lens.iter().map(|&l| u64::from(l)).sum();
        if total != bins.len() as u64 {
            return Err(format!("the lengths add up to {total}, not {}", bins.len()));
        }
        let mut ends = Vec::with_capacity(lens.len());
        let mut start = 0usize;
        for (h, &len) in lens.iter().enumerate() {
            let end = start + len as usize;
            if !bins[start..end].windows(2).all(|w| w[0].0 < w[1].0) {
                return Err(format!("histogram {h}: bins are not strictly ascending"));
            }
            // `total` fits in `bins.len()`, so every end fits in u32 when
            // the bins do; a larger list is refused.
            ends.push(u32::try_from(end).map_err(|_| format!("{end} bins are too many"))?);
            start = end;
        }
        Ok(SparseLogs { non_positive, ends, bins })
    }

    /// The flat form of `list`.
    pub fn of(list: &[LogHistogram]) -> SparseLogs {
        let mut logs = SparseLogs {
            non_positive: Vec::with_capacity(list.len()),
            ends: Vec::with_capacity(list.len()),
            bins: Vec::with_capacity(list.iter().map(|h| h.bins.len()).sum()),
        };
        for h in list {
            logs.non_positive.push(h.non_positive);
            logs.bins.extend_from_slice(h.bins.as_slice());
            logs.ends.push(logs.bins.len() as u32);
        }
        logs
    }

    /// The number of histograms.
    pub fn len(&self) -> usize {
        self.non_positive.len()
    }

    pub fn is_empty(&self) -> bool {
        self.non_positive.is_empty()
    }

    /// Each histogram's values ≤ 0 and its bins.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &[(i32, u64)])> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        self.non_positive
            .iter()
            .zip(starts.zip(&self.ends))
            .map(|(&n, (start, &end))| (n, &self.bins[start as usize..end as usize]))
    }

    /// Histogram `h`'s values ≤ 0 and bins; `None` past the last.
    #[inline]
    pub fn histogram(&self, h: usize) -> Option<(u64, &[(i32, u64)])> {
        let end = *self.ends.get(h)? as usize;
        let start = if h == 0 { 0 } else { self.ends[h - 1] as usize };
        Some((self.non_positive[h], &self.bins[start..end]))
    }

    /// The histograms, one by one.
    pub fn to_histograms(&self) -> Vec<LogHistogram> {
        self.iter()
            .map(|(non_positive, bins)| LogHistogram {
                non_positive,
                bins: SparseBins::from_sorted(bins.to_vec()).expect("checked ascending"),
            })
            .collect()
    }

    /// The `list`-wide part of the consistency check (see
    /// [`Aggregate::check_consistency`]).
    fn check_counts(&self, what: &str, ok: u128, exact: bool) -> Result<(), MergeError> {
        for (i, (non_positive, bins)) in self.iter().enumerate() {
            if bins.iter().any(|&(_, c)| c == 0) {
                return Err(MergeError(format!("{what}[{i}] has an empty bin")));
            }
            let count = u128::from(non_positive) + bins.iter().map(|&(_, c)| u128::from(c)).sum::<u128>();
            if (exact && count != ok) || count > ok {
                return Err(MergeError(format!("{what}[{i}] counts {count} values for {ok} samples")));
            }
        }
        Ok(())
    }
}

/// An aggregate with sparse count tables and flat log histograms: the form
/// in which the coordinator decodes, checks and merges a job's result. Its
/// fields mean what [`Aggregate`]'s of the same name do.
#[derive(Clone, Debug, PartialEq)]
pub struct SparseAggregate {
    pub shape: Shape,
    pub samples_ok: u64,
    pub failures: BTreeMap<String, FailureKind>,
    pub zone_counts: SparseCounts,
    pub total_counts: SparseCounts,
    pub score_counts: SparseCounts,
    pub cep_counts: SparseCounts,
    pub peak_counts: SparseCounts,
    pub neutral_counts: SparseCounts,
    pub ce_milestone: SparseLogs,
    pub ce_horizon: SparseLogs,
    pub regional_ce: SparseLogs,
    pub regional_peak_counts: SparseCounts,
    pub zone_size_counts: SparseCounts,
    pub coefficients: Vec<LinearHistogram>,
    pub r2: LinearHistogram,
    pub k: LinearHistogram,
    pub sensitivity: Option<SensitivitySums>,
}

impl From<&Aggregate> for SparseAggregate {
    fn from(a: &Aggregate) -> SparseAggregate {
        SparseAggregate {
            shape: a.shape,
            samples_ok: a.samples_ok,
            failures: a.failures.clone(),
            zone_counts: SparseCounts::of(a.zone_counts.as_flat()),
            total_counts: SparseCounts::of(a.total_counts.as_flat()),
            score_counts: SparseCounts::of(a.score_counts.as_flat()),
            cep_counts: SparseCounts::of(a.cep_counts.as_flat()),
            peak_counts: SparseCounts::of(a.peak_counts.as_flat()),
            neutral_counts: SparseCounts::of(a.neutral_counts.as_flat()),
            ce_milestone: SparseLogs::of(&a.ce_milestone),
            ce_horizon: SparseLogs::of(&a.ce_horizon),
            regional_ce: SparseLogs::of(&a.regional_ce),
            regional_peak_counts: SparseCounts::of(a.regional_peak_counts.as_flat()),
            zone_size_counts: SparseCounts::of(a.zone_size_counts.as_flat()),
            coefficients: a.coefficients.clone(),
            r2: a.r2.clone(),
            k: a.k.clone(),
            sensitivity: a.sensitivity.clone(),
        }
    }
}

impl From<Aggregate> for SparseAggregate {
    fn from(a: Aggregate) -> SparseAggregate {
        SparseAggregate::from(&a)
    }
}

impl SparseAggregate {
    /// Every sample counted, successful or not.
    pub fn samples_total(&self) -> u64 {
        self.samples_ok + self.failures.values().map(|f| f.count).sum::<u64>()
    }

    /// The eight count tables in [`Aggregate::count_layouts`]'s order.
    pub fn count_tables(&self) -> [(&'static str, &SparseCounts); 8] {
        [
            ("zone_counts", &self.zone_counts),
            ("total_counts", &self.total_counts),
            ("score_counts", &self.score_counts),
            ("cep_counts", &self.cep_counts),
            ("peak_counts", &self.peak_counts),
            ("neutral_counts", &self.neutral_counts),
            ("regional_peak_counts", &self.regional_peak_counts),
            ("zone_size_counts", &self.zone_size_counts),
        ]
    }

    /// Every array has the length its shape implies, as
    /// [`Aggregate::check_lengths`] requires of the dense form.
    pub fn check_lengths(&self) -> Result<(), MergeError> {
        let s = self.shape;
        for ((what, table), (rows, width)) in self.count_tables().into_iter().zip(Aggregate::count_layouts(&s)) {
            if Some(table.len()) != rows.checked_mul(width) {
                return Err(MergeError(format!("{what} has {} entries; the shape needs {rows}×{width}", table.len())));
            }
        }
        check_list_lengths(
            &s,
            [self.ce_milestone.len(), self.ce_horizon.len(), self.regional_ce.len()],
            (&self.coefficients, &self.r2, &self.k),
            self.sensitivity.as_ref(),
        )
    }

    /// [`Aggregate::check_consistency`] of the dense form, with the same
    /// verdict and message, reading only the entries that are not zero. Like
    /// the dense check it does not check the lengths: the decoder has
    /// ([`SparseAggregate::check_lengths`]), and the merge does again. With
    /// other lengths its verdict is still an answer, never a panic.
    pub fn check_consistency(&self) -> Result<(), MergeError> {
        let ok = check_failures(self.samples_ok, &self.failures)?;
        let layouts = Aggregate::count_layouts(&self.shape);
        // Every table but neutral_counts (index 5) has rows that sum to ok.
        for (t, (what, table)) in self.count_tables().into_iter().enumerate() {
            if t == 5 {
                continue;
            }
            let (rows, width) = layouts[t];
            if let Some((i, sum)) = table.first_row_where(width, rows, |sum| sum != ok) {
                return Err(MergeError(format!("{what}: row {i} counts {sum} samples, not {ok}")));
            }
        }
        // Σ k·(samples with k units in zone z) = Σ over units of (samples
        // with the unit in zone z).
        // (A shape without zones, which `Shape::check` refuses, counts as one.)
        let n_zones = self.shape.n_zones.max(1);
        let (mut members, mut units) = (vec![0u128; n_zones], vec![0u128; n_zones]);
        for &(i, c) in self.zone_counts.entries() {
            members[i as usize % n_zones] += u128::from(c);
        }
        let size_width = self.shape.n_units + 1;
        for &(i, c) in self.zone_size_counts.entries() {
            let (z, k) = (i as usize / size_width, i as usize % size_width);
            match units.get_mut(z) {
                Some(units) => *units += k as u128 * u128::from(c),
                None => return Err(MergeError(format!("zone_size_counts has an entry for zone {}", z + 1))),
            }
        }
        for z in 0..n_zones {
            if units[z] != members[z] {
                return Err(MergeError(format!(
                    "zone_size_counts: zone {} holds {} unit-samples, but zone_counts has {}",
                    z + 1,
                    units[z],
                    members[z]
                )));
            }
        }
        if let Some(&(i, _)) = self.neutral_counts.entries().iter().find(|&&(_, c)| u128::from(c) > ok) {
            return Err(MergeError(format!("neutral_counts[{i}] exceeds the {ok} samples")));
        }
        self.ce_milestone.check_counts("ce_milestone", ok, false)?;
        self.ce_horizon.check_counts("ce_horizon", ok, true)?;
        self.regional_ce.check_counts("regional_ce", ok, true)?;
        check_regression(&self.coefficients, &self.r2, &self.k, self.samples_ok)?;
        if let Some(sums) = &self.sensitivity {
            sums.check_consistency(self.samples_ok)?;
        }
        Ok(())
    }

    /// The dense form.
    pub fn to_aggregate(&self) -> Result<Aggregate, MergeError> {
        self.check_lengths()?;
        let layouts = Aggregate::count_layouts(&self.shape);
        let table = |t: usize, counts: &SparseCounts| {
            counts.to_table(layouts[t].1).ok_or_else(|| MergeError("a table's layout is empty".to_owned()))
        };
        Ok(Aggregate {
            shape: self.shape,
            samples_ok: self.samples_ok,
            failures: self.failures.clone(),
            zone_counts: table(0, &self.zone_counts)?,
            total_counts: table(1, &self.total_counts)?,
            score_counts: table(2, &self.score_counts)?,
            cep_counts: table(3, &self.cep_counts)?,
            peak_counts: table(4, &self.peak_counts)?,
            neutral_counts: table(5, &self.neutral_counts)?,
            ce_milestone: self.ce_milestone.to_histograms(),
            ce_horizon: self.ce_horizon.to_histograms(),
            regional_ce: self.regional_ce.to_histograms(),
            regional_peak_counts: table(6, &self.regional_peak_counts)?,
            zone_size_counts: table(7, &self.zone_size_counts)?,
            coefficients: self.coefficients.clone(),
            r2: self.r2.clone(),
            k: self.k.clone(),
            sensitivity: self.sensitivity.clone(),
        })
    }
}

impl Aggregate {
    /// Add a sparse aggregate of the same sweep: the same as
    /// [`Aggregate::merge`] of its dense form, touching only its entries
    /// that are not zero. A refused one leaves `self` unchanged.
    pub fn merge_sparse(&mut self, other: &SparseAggregate) -> Result<(), MergeError> {
        self.merge_sparse_but_logs(other)?;
        self.add_sparse_logs(&[other]);
        Ok(())
    }

    /// [`Aggregate::merge_sparse`] but for the log histograms, which
    /// [`Aggregate::add_sparse_logs`] adds afterwards for many results at
    /// once: one sort per histogram instead of one search and insertion
    /// per value. A refused result leaves `self` unchanged.
    pub fn merge_sparse_but_logs(&mut self, other: &SparseAggregate) -> Result<(), MergeError> {
        if self.shape != other.shape {
            return Err(MergeError(format!("shapes differ: {:?} and {:?}", self.shape, other.shape)));
        }
        other.check_lengths()?;
        self.check_lengths()?;
        merge_sensitivity(&mut self.sensitivity, other.sensitivity.as_ref())?;
        self.samples_ok += other.samples_ok;
        merge_failures(&mut self.failures, &other.failures);
        fn scatter(table: &mut CountTable, counts: &SparseCounts) {
            let flat = table.as_flat_mut();
            for &(i, c) in counts.entries() {
                flat[i as usize] += c;
            }
        }
        scatter(&mut self.zone_counts, &other.zone_counts);
        scatter(&mut self.total_counts, &other.total_counts);
        scatter(&mut self.score_counts, &other.score_counts);
        scatter(&mut self.cep_counts, &other.cep_counts);
        scatter(&mut self.peak_counts, &other.peak_counts);
        scatter(&mut self.neutral_counts, &other.neutral_counts);
        scatter(&mut self.regional_peak_counts, &other.regional_peak_counts);
        scatter(&mut self.zone_size_counts, &other.zone_size_counts);
        for (a, b) in self.coefficients.iter_mut().zip(&other.coefficients) {
            a.merge(b).map_err(MergeError)?;
        }
        self.r2.merge(&other.r2).map_err(MergeError)?;
        self.k.merge(&other.k).map_err(MergeError)?;
        Ok(())
    }

    /// Add the log histograms of `results`, each already merged by
    /// [`Aggregate::merge_sparse_but_logs`] (which checked their lengths).
    pub fn add_sparse_logs(&mut self, results: &[&SparseAggregate]) {
        fn add<'a>(list: &mut [LogHistogram], sources: impl Iterator<Item = &'a SparseLogs>, gathered: &mut Gathered) {
            let sources: Vec<&SparseLogs> = sources.collect();
            for (h, histogram) in list.iter_mut().enumerate() {
                for source in &sources {
                    let Some((non_positive, bins)) = source.histogram(h) else { continue };
                    histogram.non_positive += non_positive;
                    // Mostly one bin: pushed, not copied by a call.
                    for &bin in bins {
                        gathered.push(bin);
                    }
                }
                gathered.add_to(&mut histogram.bins);
            }
        }
        let mut gathered = Gathered::default();
        add(&mut self.ce_milestone, results.iter().map(|r| &r.ce_milestone), &mut gathered);
        add(&mut self.ce_horizon, results.iter().map(|r| &r.ce_horizon), &mut gathered);
        add(&mut self.regional_ce, results.iter().map(|r| &r.regional_ce), &mut gathered);
    }
}
