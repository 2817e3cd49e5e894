//! Conversions between the wire aggregate and [`zonesweep_shared::sweep::aggregate::Aggregate`].
//! Decoding checks everything a peer could get wrong, so a malformed result
//! is refused before it reaches a merge.

use std::collections::BTreeMap;

use prost::Message;
use zonesweep_shared::sweep::aggregate::{Aggregate, FailureKind, Shape};
use zonesweep_shared::sweep::count_table::CountTable;
use zonesweep_shared::sweep::histogram::{LinearHistogram, LogHistogram, SparseBins};

use crate::{ProtoError, pb};

fn shape_to_pb(shape: &Shape) -> pb::Shape {
    pb::Shape {
        n_units: shape.n_units as u32,
        n_zones: shape.n_zones as u32,
        base_year: shape.base_year,
        milestone: shape.milestone,
        horizon: shape.horizon,
    }
}

fn counts_to_pb(counts: &[u64]) -> pb::Counts {
    let mut wire = pb::Counts { len: counts.len() as u32, gap: Vec::new(), count: Vec::new() };
    let mut previous = 0;
    for (i, &c) in counts.iter().enumerate() {
        if c != 0 {
            wire.gap.push((i - previous) as u32);
            wire.count.push(c);
            previous = i;
        }
    }
    wire
}

/// Decode a count table that must have the layout `(rows, width)` (from the
/// shape): the length is checked before anything is allocated.
fn counts_from_pb(
    what: &str,
    wire: Option<&pb::Counts>,
    (rows, width): (usize, usize),
) -> Result<CountTable, ProtoError> {
    let expected = rows * width;
    let wire = wire.ok_or_else(|| ProtoError::Malformed(format!("{what} is missing")))?;
    if wire.gap.len() != wire.count.len() {
        return Err(ProtoError::Malformed(format!("{what}: {} gaps but {} counts", wire.gap.len(), wire.count.len())));
    }
    if wire.len as usize != expected {
        return Err(ProtoError::Malformed(format!("{what} has {} entries; the shape needs {expected}", wire.len)));
    }
    let mut counts = vec![0u64; wire.len as usize];
    let mut index = 0usize;
    for (n, (&gap, &count)) in wire.gap.iter().zip(&wire.count).enumerate() {
        if n > 0 && gap == 0 {
            return Err(ProtoError::Malformed(format!("{what}: an entry is given twice")));
        }
        index += gap as usize;
        let slot = counts.get_mut(index).ok_or_else(|| {
            ProtoError::Malformed(format!("{what}: entry {index} is beyond its {} entries", wire.len))
        })?;
        *slot = count;
    }
    CountTable::from_flat(width, counts)
        .ok_or_else(|| ProtoError::Malformed(format!("{what}: {rows}×{width} is not a table")))
}

fn logs_to_pb(list: &[LogHistogram]) -> pb::LogHistograms {
    let total: usize = list.iter().map(|h| h.bins.len()).sum();
    let mut wire = pb::LogHistograms {
        non_positive: Vec::with_capacity(list.len()),
        lens: Vec::with_capacity(list.len()),
        bins: Vec::with_capacity(total),
        counts: Vec::with_capacity(total),
    };
    for h in list {
        wire.non_positive.push(h.non_positive);
        wire.lens.push(h.bins.len() as u32);
        for &(bin, count) in &h.bins {
            wire.bins.push(bin);
            wire.counts.push(count);
        }
    }
    wire
}

fn linear_to_pb(h: &LinearHistogram) -> pb::LinearHistogram {
    pb::LinearHistogram {
        width: h.width,
        non_finite: h.non_finite,
        bins: h.bins.keys().copied().collect(),
        counts: h.bins.values().copied().collect(),
    }
}

/// The wire form of an aggregate.
pub fn aggregate_to_pb(a: &Aggregate) -> pb::Aggregate {
    pb::Aggregate {
        shape: Some(shape_to_pb(&a.shape)),
        samples_ok: a.samples_ok,
        failures: a
            .failures
            .iter()
            .map(|(kind, f)| pb::FailureKind {
                kind: kind.clone(),
                count: f.count,
                samples: f.samples.clone(),
                example: f.example.clone(),
            })
            .collect(),
        zone_counts: Some(counts_to_pb(a.zone_counts.as_flat())),
        total_counts: Some(counts_to_pb(a.total_counts.as_flat())),
        score_counts: Some(counts_to_pb(a.score_counts.as_flat())),
        cep_counts: Some(counts_to_pb(a.cep_counts.as_flat())),
        peak_counts: Some(counts_to_pb(a.peak_counts.as_flat())),
        neutral_counts: Some(counts_to_pb(a.neutral_counts.as_flat())),
        ce_milestone: Some(logs_to_pb(&a.ce_milestone)),
        ce_horizon: Some(logs_to_pb(&a.ce_horizon)),
        regional_ce: Some(logs_to_pb(&a.regional_ce)),
        coefficients: a.coefficients.iter().map(linear_to_pb).collect(),
        r2: Some(linear_to_pb(&a.r2)),
        k: Some(linear_to_pb(&a.k)),
    }
}

fn bins_from<K: Ord + Copy>(what: &str, bins: &[K], counts: &[u64]) -> Result<SparseBins<K>, ProtoError> {
    if bins.len() != counts.len() {
        return Err(ProtoError::Malformed(format!("{what}: {} bins but {} counts", bins.len(), counts.len())));
    }
    SparseBins::from_sorted(bins.iter().copied().zip(counts.iter().copied()).collect())
        .ok_or_else(|| ProtoError::Malformed(format!("{what}: bins are not strictly ascending")))
}

fn logs_from_pb(what: &str, wire: Option<&pb::LogHistograms>) -> Result<Vec<LogHistogram>, ProtoError> {
    let wire = wire.ok_or_else(|| ProtoError::Malformed(format!("{what} is missing")))?;
    if wire.lens.len() != wire.non_positive.len() || wire.bins.len() != wire.counts.len() {
        return Err(ProtoError::Malformed(format!("{what}: array lengths do not agree")));
    }
    let total: u64 = wire.lens.iter().map(|&l| u64::from(l)).sum();
    if total != wire.bins.len() as u64 {
        return Err(ProtoError::Malformed(format!("{what}: the lengths add up to {total}, not {}", wire.bins.len())));
    }
    let mut list = Vec::with_capacity(wire.lens.len());
    let mut start = 0;
    for (&len, &non_positive) in wire.lens.iter().zip(&wire.non_positive) {
        let end = start + len as usize;
        let bins = bins_from(what, &wire.bins[start..end], &wire.counts[start..end])?;
        list.push(LogHistogram { non_positive, bins });
        start = end;
    }
    Ok(list)
}

fn linear_from_pb(what: &str, h: Option<&pb::LinearHistogram>) -> Result<LinearHistogram, ProtoError> {
    let h = h.ok_or_else(|| ProtoError::Malformed(format!("{what} is missing")))?;
    Ok(LinearHistogram { width: h.width, non_finite: h.non_finite, bins: bins_from(what, &h.bins, &h.counts)? })
}

/// Decode and check a wire aggregate: every array must have the length its
/// shape implies and every histogram must be well formed.
pub fn aggregate_from_pb(a: &pb::Aggregate) -> Result<Aggregate, ProtoError> {
    let shape = a.shape.as_ref().ok_or_else(|| ProtoError::Malformed("aggregate without a shape".into()))?;
    if shape.n_units == 0 || shape.n_units > 10_000_000 || shape.n_zones == 0 || shape.n_zones > 50 {
        return Err(ProtoError::Malformed(format!("implausible shape {shape:?}")));
    }
    if shape.horizon < shape.base_year || i64::from(shape.horizon) - i64::from(shape.base_year) > 1000 {
        return Err(ProtoError::Malformed(format!("implausible projection years {shape:?}")));
    }
    let mut failures = BTreeMap::new();
    for f in &a.failures {
        let kept = FailureKind { count: f.count, samples: f.samples.clone(), example: f.example.clone() };
        if failures.insert(f.kind.clone(), kept).is_some() {
            return Err(ProtoError::Malformed(format!("failure kind `{}` appears twice", f.kind)));
        }
    }
    let shape = Shape {
        n_units: shape.n_units as usize,
        n_zones: shape.n_zones as usize,
        base_year: shape.base_year,
        milestone: shape.milestone,
        horizon: shape.horizon,
    };
    let lengths = Aggregate::count_layouts(&shape);
    let aggregate = Aggregate {
        shape,
        samples_ok: a.samples_ok,
        failures,
        zone_counts: counts_from_pb("zone_counts", a.zone_counts.as_ref(), lengths[0])?,
        total_counts: counts_from_pb("total_counts", a.total_counts.as_ref(), lengths[1])?,
        score_counts: counts_from_pb("score_counts", a.score_counts.as_ref(), lengths[2])?,
        cep_counts: counts_from_pb("cep_counts", a.cep_counts.as_ref(), lengths[3])?,
        peak_counts: counts_from_pb("peak_counts", a.peak_counts.as_ref(), lengths[4])?,
        neutral_counts: counts_from_pb("neutral_counts", a.neutral_counts.as_ref(), lengths[5])?,
        ce_milestone: logs_from_pb("ce_milestone", a.ce_milestone.as_ref())?,
        ce_horizon: logs_from_pb("ce_horizon", a.ce_horizon.as_ref())?,
        regional_ce: logs_from_pb("regional_ce", a.regional_ce.as_ref())?,
        coefficients: a
            .coefficients
            .iter()
            .map(|h| linear_from_pb("coefficients", Some(h)))
            .collect::<Result<_, _>>()?,
        r2: linear_from_pb("r2", a.r2.as_ref())?,
        k: linear_from_pb("k", a.k.as_ref())?,
    };
    aggregate.check_lengths().map_err(|e| ProtoError::Malformed(e.to_string()))?;
    Ok(aggregate)
}

/// The aggregate in the compact binary form used for storage.
pub fn encode_aggregate(a: &Aggregate) -> Vec<u8> {
    aggregate_to_pb(a).encode_to_vec()
}

/// Decode [`encode_aggregate`]'s bytes.
pub fn decode_aggregate(bytes: &[u8]) -> Result<Aggregate, ProtoError> {
    let wire =
        pb::Aggregate::decode(bytes).map_err(|e| ProtoError::Malformed(format!("undecodable aggregate: {e}")))?;
    aggregate_from_pb(&wire)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_counts_round_trip_and_refuse_bad_input() {
        let counts = vec![0, 3, 0, 0, 7, 1];
        let table = counts_from_pb("x", Some(&counts_to_pb(&counts)), (2, 3)).unwrap();
        assert_eq!((table.as_flat(), table.row(1)), (&counts[..], &[0, 7, 1][..]));
        assert_eq!(counts_from_pb("x", Some(&counts_to_pb(&[0, 0])), (1, 2)).unwrap().as_flat(), &[0, 0]);
        let beyond = pb::Counts { len: 2, gap: vec![5], count: vec![1] };
        assert!(counts_from_pb("x", Some(&beyond), (1, 2)).is_err());
        let twice = pb::Counts { len: 4, gap: vec![1, 0], count: vec![1, 1] };
        assert!(counts_from_pb("x", Some(&twice), (2, 2)).is_err());
        let uneven = pb::Counts { len: 4, gap: vec![1], count: vec![] };
        assert!(counts_from_pb("x", Some(&uneven), (2, 2)).is_err());
        // A huge declared length is refused before anything is allocated.
        let huge = pb::Counts { len: u32::MAX, gap: vec![], count: vec![] };
        assert!(counts_from_pb("x", Some(&huge), (2, 2)).is_err());
        assert!(counts_from_pb("x", None, (0, 1)).is_err());
    }

    #[test]
    fn flattened_histograms_round_trip_and_refuse_bad_lengths() {
        let mut a = LogHistogram::default();
        a.add(10.0);
        a.add(1000.0);
        a.add(-1.0);
        let list = vec![a, LogHistogram::default()];
        assert_eq!(logs_from_pb("x", Some(&logs_to_pb(&list))).unwrap(), list);
        let mut bad = logs_to_pb(&list);
        bad.lens[0] = 5;
        assert!(logs_from_pb("x", Some(&bad)).is_err());
        let mut unsorted = logs_to_pb(&list);
        unsorted.bins.swap(0, 1);
        assert!(logs_from_pb("x", Some(&unsorted)).is_err());
    }
}
