//! Conversions between the wire aggregate and [`zonesweep_shared::aggregate::Aggregate`].
//! Decoding checks everything a peer could get wrong, so a malformed result
//! is refused before it reaches a merge.

use std::collections::BTreeMap;

use prost::Message;
use zonesweep_shared::aggregate::{Aggregate, FailureKind, Shape};
use zonesweep_shared::histogram::{LinearHistogram, LogHistogram};

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

fn log_to_pb(h: &LogHistogram) -> pb::LogHistogram {
    pb::LogHistogram {
        non_positive: h.non_positive,
        bins: h.bins.keys().copied().collect(),
        counts: h.bins.values().copied().collect(),
    }
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
        zone_counts: a.zone_counts.clone(),
        total_counts: a.total_counts.clone(),
        score_counts: a.score_counts.clone(),
        cep_counts: a.cep_counts.clone(),
        peak_counts: a.peak_counts.clone(),
        neutral_counts: a.neutral_counts.clone(),
        ce_milestone: a.ce_milestone.iter().map(log_to_pb).collect(),
        ce_horizon: a.ce_horizon.iter().map(log_to_pb).collect(),
        regional_ce: a.regional_ce.iter().map(log_to_pb).collect(),
        coefficients: a.coefficients.iter().map(linear_to_pb).collect(),
        r2: Some(linear_to_pb(&a.r2)),
        k: Some(linear_to_pb(&a.k)),
    }
}

fn bins_from<K: Ord + Copy>(what: &str, bins: &[K], counts: &[u64]) -> Result<BTreeMap<K, u64>, ProtoError> {
    if bins.len() != counts.len() {
        return Err(ProtoError::Malformed(format!("{what}: {} bins but {} counts", bins.len(), counts.len())));
    }
    if !bins.windows(2).all(|w| w[0] < w[1]) {
        return Err(ProtoError::Malformed(format!("{what}: bins are not strictly ascending")));
    }
    Ok(bins.iter().copied().zip(counts.iter().copied()).collect())
}

fn log_from_pb(what: &str, h: &pb::LogHistogram) -> Result<LogHistogram, ProtoError> {
    Ok(LogHistogram { non_positive: h.non_positive, bins: bins_from(what, &h.bins, &h.counts)? })
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
    if shape.horizon < shape.base_year || shape.horizon - shape.base_year > 1000 {
        return Err(ProtoError::Malformed(format!("implausible projection years {shape:?}")));
    }
    let mut failures = BTreeMap::new();
    for f in &a.failures {
        let kept = FailureKind { count: f.count, samples: f.samples.clone(), example: f.example.clone() };
        if failures.insert(f.kind.clone(), kept).is_some() {
            return Err(ProtoError::Malformed(format!("failure kind `{}` appears twice", f.kind)));
        }
    }
    let logs = |what: &str, list: &[pb::LogHistogram]| -> Result<Vec<LogHistogram>, ProtoError> {
        list.iter().map(|h| log_from_pb(what, h)).collect()
    };
    let aggregate = Aggregate {
        shape: Shape {
            n_units: shape.n_units as usize,
            n_zones: shape.n_zones as usize,
            base_year: shape.base_year,
            milestone: shape.milestone,
            horizon: shape.horizon,
        },
        samples_ok: a.samples_ok,
        failures,
        zone_counts: a.zone_counts.clone(),
        total_counts: a.total_counts.clone(),
        score_counts: a.score_counts.clone(),
        cep_counts: a.cep_counts.clone(),
        peak_counts: a.peak_counts.clone(),
        neutral_counts: a.neutral_counts.clone(),
        ce_milestone: logs("ce_milestone", &a.ce_milestone)?,
        ce_horizon: logs("ce_horizon", &a.ce_horizon)?,
        regional_ce: logs("regional_ce", &a.regional_ce)?,
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
    let wire = pb::Aggregate::decode(bytes).map_err(|e| ProtoError::Malformed(format!("undecodable aggregate: {e}")))?;
    aggregate_from_pb(&wire)
}
