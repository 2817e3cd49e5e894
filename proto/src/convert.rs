//! Conversions between the wire and the domain: aggregates
//! ([`zonesweep_shared::sweep::aggregate::Aggregate`]) and sweep statuses and
//! results ([`crate::status`]). Decoding checks everything a peer could get
//! wrong, so a malformed result is refused before it reaches a merge.

use std::collections::BTreeMap;

use integer_encoding::VarInt;
use prost::Message;
use zonesweep_shared::sweep::aggregate::{Aggregate, FailureKind, Shape};
use zonesweep_shared::sweep::histogram::{LinearHistogram, LogHistogram, SparseBins};
use zonesweep_shared::sweep::sensitivity::{MAX_GROUPS, SensitivitySums};
use zonesweep_shared::sweep::sparse::{SparseAggregate, SparseCounts, SparseLogs};

use crate::ids::SweepId;
use crate::status::{Provenance, SweepResults, SweepState, SweepStatus};
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
    let mut wire = pb::Counts { len: counts.len() as u32, ..Default::default() };
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
/// shape), keeping its entries that are not zero: the length is checked
/// first, and nothing is allocated beyond what the message holds.
fn counts_from_pb(
    what: &str,
    wire: Option<&pb::Counts>,
    (rows, width): (usize, usize),
) -> Result<SparseCounts, ProtoError> {
    let expected = rows * width;
    let wire = wire.ok_or_else(|| ProtoError::Malformed(format!("{what} is missing")))?;
    if wire.gap.len() != wire.count.len() {
        return Err(ProtoError::Malformed(format!("{what}: {} gaps but {} counts", wire.gap.len(), wire.count.len())));
    }
    if wire.len as usize != expected {
        return Err(ProtoError::Malformed(format!("{what} has {} entries; the shape needs {expected}", wire.len)));
    }
    if !wire.packed.is_empty() && !wire.gap.is_empty() {
        return Err(ProtoError::Malformed(format!("{what} is given both packed and as lists")));
    }
    let malformed = |why: String| ProtoError::Malformed(format!("{what}: {why}"));
    let entries = if wire.packed.is_empty() {
        let mut entries = Vec::with_capacity(wire.count.len());
        let mut index = 0usize;
        for (n, (&gap, &count)) in wire.gap.iter().zip(&wire.count).enumerate() {
            index = next_index(n, index, u64::from(gap), expected).map_err(malformed)?;
            entries.push((index as u32, count));
        }
        entries
    } else {
        counts_from_packed(&wire.packed, expected).map_err(malformed)?
    };
    SparseCounts::new(expected, entries).map_err(malformed)
}

/// The index of entry `n` of a table of `expected` entries, `gap` past
/// entry n − 1 at `index` (the first entry's gap is its index).
#[inline(always)]
fn next_index(n: usize, index: usize, gap: u64, expected: usize) -> Result<usize, String> {
    if n > 0 && gap == 0 {
        return Err("an entry is given twice".to_owned());
    }
    let Some(next) = usize::try_from(gap).ok().and_then(|gap| index.checked_add(gap)) else {
        return Err(format!("an entry's index overflows (gap {gap} after entry {index})"));
    };
    if next >= expected {
        return Err(format!("entry {next} is beyond its {expected} entries"));
    }
    Ok(next)
}

/// The (index, count) pairs of a packed count table of `expected` entries.
fn counts_from_packed(bytes: &[u8], expected: usize) -> Result<Vec<(u32, u64)>, String> {
    // Two varints an entry, each ending in a byte below 0x80.
    let mut entries = Vec::with_capacity(varints(bytes) / 2);
    let mut packed = Packed::new(bytes);
    let mut index = 0usize;
    while !packed.is_empty() {
        let gap = packed.varint()?;
        let count = packed.varint()?;
        index = next_index(entries.len(), index, gap, expected)?;
        entries.push((index as u32, count));
    }
    Ok(entries)
}

/// The number of varints `bytes` ends, to size what they decode into.
fn varints(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b < 0x80).count()
}

/// A reader of a packed byte string of varints.
struct Packed<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Packed<'a> {
    fn new(bytes: &'a [u8]) -> Packed<'a> {
        Packed { bytes, at: 0 }
    }

    fn is_empty(&self) -> bool {
        self.at >= self.bytes.len()
    }

    /// The next varint (LEB128, at most 10 bytes, at most u64::MAX).
    #[inline(always)]
    fn varint(&mut self) -> Result<u64, String> {
        // Most numbers of a result (gaps, counts of a few samples) take
        // one byte.
        match self.bytes.get(self.at) {
            Some(&byte) if byte < 0x80 => {
                self.at += 1;
                Ok(u64::from(byte))
            }
            _ => self.long_varint(),
        }
    }

    #[cold]
    #[inline(never)]
    fn long_varint(&mut self) -> Result<u64, String> {
        let rest = &self.bytes[self.at.min(self.bytes.len())..];
        match u64::decode_var(rest) {
            Some((value, read)) => {
                self.at += read;
                Ok(value)
            }
            None => Err(self.why_not(rest)),
        }
    }

    /// The next varint as a zigzag-encoded i32, `Err` naming the raw value
    /// when it is out of range.
    #[inline(always)]
    fn zigzag_i32(&mut self) -> Result<Result<i32, u64>, String> {
        // A log histogram's first bin takes one or two bytes: read inline.
        let zigzag = |n: u32| (n >> 1) as i32 ^ -((n & 1) as i32);
        match (self.bytes.get(self.at), self.bytes.get(self.at + 1)) {
            (Some(&low), _) if low < 0x80 => {
                self.at += 1;
                return Ok(Ok(zigzag(u32::from(low))));
            }
            (Some(&low), Some(&high)) if high < 0x80 => {
                self.at += 2;
                return Ok(Ok(zigzag(u32::from(low & 0x7f) | u32::from(high) << 7)));
            }
            _ => {}
        }
        let rest = &self.bytes[self.at.min(self.bytes.len())..];
        match i32::decode_var(rest) {
            Some((value, read)) => {
                self.at += read;
                Ok(Ok(value))
            }
            None => self.varint().map(Err),
        }
    }

    /// Why `rest` does not start with a varint: it ends inside one, or the
    /// number passes 64 bits.
    fn why_not(&self, rest: &[u8]) -> String {
        const MAX_BYTES: usize = 10;
        if rest.len() < MAX_BYTES && rest.iter().all(|b| b & 0x80 != 0) {
            format!("the packed bytes end inside a number (byte {})", self.bytes.len())
        } else {
            format!("a packed number overflows 64 bits (byte {})", self.at + MAX_BYTES - 1)
        }
    }
}

/// Append `value` as a varint; most numbers of a result take one byte,
/// written inline.
#[inline(always)]
fn put_u64(out: &mut Vec<u8>, value: u64) {
    if value < 0x80 {
        out.push(value as u8);
    } else {
        put_varint(out, value);
    }
}

/// Append `value` as a varint (a zigzag one for a signed value).
fn put_varint(out: &mut Vec<u8>, value: impl VarInt) {
    let mut buffer = [0u8; 10];
    let written = value.encode_var(&mut buffer);
    out.extend_from_slice(&buffer[..written]);
}

/// [`counts_to_pb`] in the packed form.
fn counts_to_pb_packed(counts: &[u64]) -> pb::Counts {
    let mut packed = Vec::new();
    let mut previous = 0;
    for (i, &c) in counts.iter().enumerate() {
        if c != 0 {
            put_u64(&mut packed, (i - previous) as u64);
            put_u64(&mut packed, c);
            previous = i;
        }
    }
    pb::Counts { len: counts.len() as u32, gap: Vec::new(), count: Vec::new(), packed }
}

/// [`logs_to_pb`] in the packed form.
fn logs_to_pb_packed(list: &[LogHistogram]) -> pb::LogHistograms {
    let mut packed = Vec::with_capacity(list.len() * 5);
    for h in list {
        put_u64(&mut packed, h.non_positive);
        put_u64(&mut packed, h.bins.len() as u64);
        let mut previous = None;
        for &(bin, count) in &h.bins {
            match previous {
                None => put_varint(&mut packed, bin),
                Some(p) => put_u64(&mut packed, (i64::from(bin) - i64::from(p)) as u64),
            }
            put_u64(&mut packed, count);
            previous = Some(bin);
        }
    }
    pb::LogHistograms { packed, ..Default::default() }
}

/// Decode [`logs_to_pb_packed`]'s bytes: at most `expected` histograms.
fn logs_from_packed(bytes: &[u8], expected: usize) -> Result<SparseLogs, String> {
    let mut packed = Packed::new(bytes);
    // `expected` histograms (more are refused), their bins at most two
    // varints each past the two a histogram starts with.
    let bound = (varints(bytes) / 2).saturating_sub(expected);
    let (mut non_positive, mut lens, mut bins) =
        (Vec::with_capacity(expected), Vec::with_capacity(expected), Vec::with_capacity(bound));
    while !packed.is_empty() {
        let h = non_positive.len();
        if h == expected {
            return Err(format!("there are more than the {expected} histograms the shape has"));
        }
        non_positive.push(packed.varint()?);
        let len = packed.varint()?;
        if len > (bytes.len() / 2) as u64 {
            return Err(format!("histogram {h} claims {len} bins, more than its bytes hold"));
        }
        lens.push(len as u32);
        let mut previous: Option<i32> = None;
        for _ in 0..len {
            let bin = match previous {
                None => {
                    packed.zigzag_i32()?.map_err(|raw| format!("histogram {h}: bin {raw} (zigzag) is out of range"))?
                }
                Some(p) => match packed.varint()? {
                    0 => return Err(format!("histogram {h}: a bin is given twice")),
                    gap => i64::try_from(gap)
                        .ok()
                        .and_then(|gap| i64::from(p).checked_add(gap))
                        .and_then(|bin| i32::try_from(bin).ok())
                        .ok_or_else(|| format!("histogram {h}: a bin is out of range"))?,
                },
            };
            bins.push((bin, packed.varint()?));
            previous = Some(bin);
        }
    }
    SparseLogs::new(non_positive, &lens, bins)
}

fn logs_to_pb(list: &[LogHistogram]) -> pb::LogHistograms {
    let total: usize = list.iter().map(|h| h.bins.len()).sum();
    let mut wire = pb::LogHistograms {
        non_positive: Vec::with_capacity(list.len()),
        lens: Vec::with_capacity(list.len()),
        bins: Vec::with_capacity(total),
        counts: Vec::with_capacity(total),
        packed: Vec::new(),
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

/// The wire form of an aggregate, its count tables and log histograms as
/// lists: the form answered to queries (and stored by schema versions up
/// to 4).
pub fn aggregate_to_pb(a: &Aggregate) -> pb::Aggregate {
    to_pb(a, counts_to_pb, logs_to_pb)
}

/// The wire form of a job's result, its count tables and log histograms
/// packed in byte strings: what a worker sends. It decodes to the same
/// aggregate as [`aggregate_to_pb`]'s.
pub fn result_to_pb(a: &Aggregate) -> pb::Aggregate {
    to_pb(a, counts_to_pb_packed, logs_to_pb_packed)
}

fn to_pb(
    a: &Aggregate,
    counts_to_pb: fn(&[u64]) -> pb::Counts,
    logs_to_pb: fn(&[LogHistogram]) -> pb::LogHistograms,
) -> pb::Aggregate {
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
        regional_peak_counts: Some(counts_to_pb(a.regional_peak_counts.as_flat())),
        zone_size_counts: Some(counts_to_pb(a.zone_size_counts.as_flat())),
        sensitivity: a.sensitivity.as_ref().map(sensitivity_to_pb),
    }
}

fn sensitivity_to_pb(s: &SensitivitySums) -> pb::Sensitivity {
    pb::Sensitivity {
        groups: s.groups.clone(),
        samples: s.samples,
        incomplete: s.incomplete,
        base: s.base.clone(),
        group: s.group.clone(),
    }
}

/// Decode sensitivity sums for a shape: the group count and the lengths are
/// checked before the sums are copied.
fn sensitivity_from_pb(wire: &pb::Sensitivity, shape: &Shape) -> Result<SensitivitySums, ProtoError> {
    if wire.groups.is_empty() || wire.groups.len() > MAX_GROUPS {
        return Err(ProtoError::Malformed(format!(
            "the sensitivity sums name {} groups; 1–{MAX_GROUPS} are allowed",
            wire.groups.len()
        )));
    }
    if let Some(problem) = SensitivitySums::size_problem(shape, wire.groups.len()) {
        return Err(ProtoError::Malformed(problem));
    }
    let (base, group) = SensitivitySums::lengths(shape, wire.groups.len());
    if wire.base.len() != base || wire.group.len() != group {
        return Err(ProtoError::Malformed(format!(
            "the sensitivity sums have {} and {} entries; the shape and {} groups need {base} and {group}",
            wire.base.len(),
            wire.group.len(),
            wire.groups.len()
        )));
    }
    Ok(SensitivitySums {
        groups: wire.groups.clone(),
        samples: wire.samples,
        incomplete: wire.incomplete,
        base: wire.base.clone(),
        group: wire.group.clone(),
    })
}

fn bins_from<K: Ord + Copy>(what: &str, bins: &[K], counts: &[u64]) -> Result<SparseBins<K>, ProtoError> {
    if bins.len() != counts.len() {
        return Err(ProtoError::Malformed(format!("{what}: {} bins but {} counts", bins.len(), counts.len())));
    }
    SparseBins::from_sorted(bins.iter().copied().zip(counts.iter().copied()).collect())
        .ok_or_else(|| ProtoError::Malformed(format!("{what}: bins are not strictly ascending")))
}

fn logs_from_pb(what: &str, wire: Option<&pb::LogHistograms>, expected: usize) -> Result<SparseLogs, ProtoError> {
    let wire = wire.ok_or_else(|| ProtoError::Malformed(format!("{what} is missing")))?;
    let malformed = |why: String| ProtoError::Malformed(format!("{what}: {why}"));
    if !wire.packed.is_empty() {
        if !(wire.non_positive.is_empty() && wire.lens.is_empty() && wire.bins.is_empty() && wire.counts.is_empty()) {
            return Err(malformed("given both packed and as lists".to_owned()));
        }
        return logs_from_packed(&wire.packed, expected).map_err(malformed);
    }
    if wire.lens.len() != wire.non_positive.len() || wire.bins.len() != wire.counts.len() {
        return Err(malformed("array lengths do not agree".to_owned()));
    }
    let bins = wire.bins.iter().copied().zip(wire.counts.iter().copied()).collect();
    SparseLogs::new(wire.non_positive.clone(), &wire.lens, bins).map_err(malformed)
}

fn linear_from_pb(what: &str, h: Option<&pb::LinearHistogram>) -> Result<LinearHistogram, ProtoError> {
    let h = h.ok_or_else(|| ProtoError::Malformed(format!("{what} is missing")))?;
    Ok(LinearHistogram { width: h.width, non_finite: h.non_finite, bins: bins_from(what, &h.bins, &h.counts)? })
}

/// Decode and check a wire aggregate: its shape must be one a sweep can
/// have ([`Shape::check`], the bounds every submission is checked against),
/// every array must have the length its shape implies and every histogram
/// must be well formed.
pub fn aggregate_from_pb(a: &pb::Aggregate) -> Result<Aggregate, ProtoError> {
    sparse_from_pb(a)?.to_aggregate().map_err(|e| ProtoError::Malformed(e.to_string()))
}

/// [`aggregate_from_pb`], keeping the count tables sparse and the log
/// histograms flat: the form a job's result is checked and merged in.
pub fn sparse_from_pb(a: &pb::Aggregate) -> Result<SparseAggregate, ProtoError> {
    let wire = a.shape.as_ref().ok_or_else(|| ProtoError::Malformed("aggregate without a shape".into()))?;
    let shape = Shape {
        n_units: usize::try_from(wire.n_units).unwrap_or(usize::MAX),
        n_zones: usize::try_from(wire.n_zones).unwrap_or(usize::MAX),
        base_year: wire.base_year,
        milestone: wire.milestone,
        horizon: wire.horizon,
    };
    shape.check().map_err(ProtoError::Malformed)?;
    let mut failures = BTreeMap::new();
    for f in &a.failures {
        let kept = FailureKind { count: f.count, samples: f.samples.clone(), example: f.example.clone() };
        if failures.insert(f.kind.clone(), kept).is_some() {
            return Err(ProtoError::Malformed(format!("failure kind `{}` appears twice", f.kind)));
        }
    }
    let lengths = Aggregate::count_layouts(&shape);
    let aggregate = SparseAggregate {
        shape,
        samples_ok: a.samples_ok,
        failures,
        zone_counts: counts_from_pb("zone_counts", a.zone_counts.as_ref(), lengths[0])?,
        total_counts: counts_from_pb("total_counts", a.total_counts.as_ref(), lengths[1])?,
        score_counts: counts_from_pb("score_counts", a.score_counts.as_ref(), lengths[2])?,
        cep_counts: counts_from_pb("cep_counts", a.cep_counts.as_ref(), lengths[3])?,
        peak_counts: counts_from_pb("peak_counts", a.peak_counts.as_ref(), lengths[4])?,
        neutral_counts: counts_from_pb("neutral_counts", a.neutral_counts.as_ref(), lengths[5])?,
        ce_milestone: logs_from_pb("ce_milestone", a.ce_milestone.as_ref(), 3 * shape.n_units)?,
        ce_horizon: logs_from_pb("ce_horizon", a.ce_horizon.as_ref(), 3 * shape.n_units)?,
        regional_ce: logs_from_pb("regional_ce", a.regional_ce.as_ref(), 3 * shape.n_projected_years())?,
        regional_peak_counts: counts_from_pb("regional_peak_counts", a.regional_peak_counts.as_ref(), lengths[6])?,
        zone_size_counts: counts_from_pb("zone_size_counts", a.zone_size_counts.as_ref(), lengths[7])?,
        coefficients: a
            .coefficients
            .iter()
            .map(|h| linear_from_pb("coefficients", Some(h)))
            .collect::<Result<_, _>>()?,
        r2: linear_from_pb("r2", a.r2.as_ref())?,
        k: linear_from_pb("k", a.k.as_ref())?,
        sensitivity: a.sensitivity.as_ref().map(|s| sensitivity_from_pb(s, &shape)).transpose()?,
    };
    aggregate.check_lengths().map_err(|e| ProtoError::Malformed(e.to_string()))?;
    Ok(aggregate)
}

/// Decode a job's result for a sweep whose shape is known: a wire shape
/// other than `expected` is refused first, so a result cannot make the
/// decoder allocate more than its message holds. The result stays sparse
/// ([`SparseAggregate`]): a small job's count tables are mostly zeros.
pub fn result_from_pb(a: &pb::Aggregate, expected: &Shape) -> Result<SparseAggregate, ProtoError> {
    let wire = a.shape.as_ref().ok_or_else(|| ProtoError::Malformed("aggregate without a shape".into()))?;
    if *wire != shape_to_pb(expected) {
        return Err(ProtoError::Malformed(format!(
            "the result's shape ({} units, {} zones, years {}–{}, milestone {}) does not fit the sweep's ({} units, {} zones, years {}–{}, milestone {})",
            wire.n_units,
            wire.n_zones,
            wire.base_year,
            wire.horizon,
            wire.milestone,
            expected.n_units,
            expected.n_zones,
            expected.base_year,
            expected.horizon,
            expected.milestone
        )));
    }
    sparse_from_pb(a)
}

/// The aggregate's bytes in [`aggregate_to_pb`]'s listed form (what schema
/// versions up to 4 stored; the store now writes
/// [`encode_aggregate_packed`]).
pub fn encode_aggregate(a: &Aggregate) -> Vec<u8> {
    aggregate_to_pb(a).encode_to_vec()
}

/// An aggregate's bytes in [`result_to_pb`]'s packed form: its count
/// tables as the entries that are not zero, its log histograms packed; what
/// the coordinator stores. [`decode_aggregate`] reads them.
pub fn encode_aggregate_packed(a: &Aggregate) -> Vec<u8> {
    result_to_pb(a).encode_to_vec()
}

/// Decode [`encode_aggregate`]'s or [`encode_aggregate_packed`]'s bytes.
pub fn decode_aggregate(bytes: &[u8]) -> Result<Aggregate, ProtoError> {
    let wire =
        pb::Aggregate::decode(bytes).map_err(|e| ProtoError::Malformed(format!("undecodable aggregate: {e}")))?;
    aggregate_from_pb(&wire)
}

fn state_to_pb(state: SweepState) -> pb::SweepState {
    match state {
        SweepState::Running => pb::SweepState::Running,
        SweepState::Done => pb::SweepState::Done,
        SweepState::Failed => pb::SweepState::Failed,
        SweepState::Cancelled => pb::SweepState::Cancelled,
    }
}

fn state_from_pb(state: i32) -> Result<SweepState, ProtoError> {
    match pb::SweepState::try_from(state) {
        Ok(pb::SweepState::Running) => Ok(SweepState::Running),
        Ok(pb::SweepState::Done) => Ok(SweepState::Done),
        Ok(pb::SweepState::Failed) => Ok(SweepState::Failed),
        Ok(pb::SweepState::Cancelled) => Ok(SweepState::Cancelled),
        _ => Err(ProtoError::Malformed(format!("unknown sweep state {state}"))),
    }
}

/// The wire form of a sweep's status.
pub fn status_to_pb(status: &SweepStatus) -> pb::SweepStatus {
    pb::SweepStatus {
        sweep_id: status.id.as_str().to_owned(),
        state: state_to_pb(status.state) as i32,
        samples: status.samples,
        samples_done: status.samples_done,
        samples_failed: status.samples_failed,
        jobs: status.jobs,
        jobs_done: status.jobs_done,
        jobs_leased: status.jobs_leased,
        reason: status.reason.clone(),
        seed: status.seed,
        dataset_hash: status.dataset_hash.clone(),
        config_hash: status.config_hash.clone(),
        spec_hash: status.spec_hash.clone(),
        units: status.units,
        sequence: status.sequence,
        version: status.provenance.version.clone(),
        chain: status.provenance.chain,
        dataset_name: status.provenance.dataset_name.clone(),
        submitted_unix: status.provenance.submitted_unix.unwrap_or(0),
        ended_unix: status.provenance.ended_unix.unwrap_or(0),
        workers: status.provenance.workers.clone(),
        more_workers: status.provenance.more_workers,
        history_samples: status.provenance.history.iter().map(|p| p.0).collect(),
        history_half_width: status.provenance.history.iter().map(|p| p.1).collect(),
        largest_half_width: status.largest_half_width,
        until_ci: status.until_ci.unwrap_or(0.0),
        samples_max: status.samples_max.unwrap_or(0),
    }
}

/// Check a wire status: its sweep id and state.
pub fn status_from_pb(wire: pb::SweepStatus) -> Result<SweepStatus, ProtoError> {
    Ok(SweepStatus {
        id: SweepId::parse(&wire.sweep_id)?,
        state: state_from_pb(wire.state)?,
        reason: wire.reason,
        sequence: wire.sequence,
        seed: wire.seed,
        samples: wire.samples,
        samples_done: wire.samples_done,
        samples_failed: wire.samples_failed,
        jobs: wire.jobs,
        jobs_done: wire.jobs_done,
        jobs_leased: wire.jobs_leased,
        units: wire.units,
        dataset_hash: wire.dataset_hash,
        config_hash: wire.config_hash,
        spec_hash: wire.spec_hash,
        provenance: Provenance {
            history: {
                if wire.history_samples.len() != wire.history_half_width.len() {
                    return Err(ProtoError::Malformed(format!(
                        "the status's history has {} sample counts for {} half-widths",
                        wire.history_samples.len(),
                        wire.history_half_width.len()
                    )));
                }
                wire.history_samples.into_iter().zip(wire.history_half_width).collect()
            },
            version: wire.version,
            chain: wire.chain,
            dataset_name: wire.dataset_name,
            submitted_unix: (wire.submitted_unix > 0).then_some(wire.submitted_unix),
            ended_unix: (wire.ended_unix > 0).then_some(wire.ended_unix),
            workers: wire.workers,
            more_workers: wire.more_workers,
        },
        largest_half_width: wire.largest_half_width,
        until_ci: (wire.until_ci > 0.0).then_some(wire.until_ci),
        samples_max: (wire.samples_max > 0).then_some(wire.samples_max),
    })
}

/// The wire answer to a query.
pub fn results_to_pb(results: &SweepResults) -> pb::QueryResponse {
    pb::QueryResponse {
        status: Some(status_to_pb(&results.status)),
        unit_ids: results.unit_ids.clone(),
        unit_names: results.unit_names.clone(),
        aggregate: Some(aggregate_to_pb(&results.aggregate)),
        nominal_zones: results.nominal_zones.clone(),
    }
}

/// Check the answer to a query: a status, an aggregate that decodes, and
/// one unit id per unit of the aggregate's shape.
pub fn results_from_pb(wire: pb::QueryResponse) -> Result<SweepResults, ProtoError> {
    let status = status_from_pb(wire.status.ok_or_else(|| ProtoError::Malformed("the answer has no status".into()))?)?;
    let aggregate =
        wire.aggregate.as_ref().ok_or_else(|| ProtoError::Malformed("the answer has no aggregate".into()))?;
    let aggregate = aggregate_from_pb(aggregate)?;
    if wire.unit_ids.len() != aggregate.shape.n_units {
        return Err(ProtoError::Malformed(format!(
            "the answer names {} units for an aggregate of {}",
            wire.unit_ids.len(),
            aggregate.shape.n_units
        )));
    }
    let n_zones = aggregate.shape.n_zones;
    let nominal_fits = wire.nominal_zones.is_empty()
        || (wire.nominal_zones.len() == wire.unit_ids.len()
            && wire.nominal_zones.iter().all(|&z| (1..=n_zones).contains(&usize::from(z))));
    if !nominal_fits {
        return Err(ProtoError::Malformed(format!(
            "the answer has {} nominal zones for {} units of {n_zones} zones",
            wire.nominal_zones.len(),
            wire.unit_ids.len()
        )));
    }
    Ok(SweepResults {
        status,
        unit_ids: wire.unit_ids,
        unit_names: wire.unit_names,
        nominal_zones: wire.nominal_zones,
        aggregate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: SweepState) -> SweepStatus {
        SweepStatus {
            id: SweepId::parse("sw-0123").unwrap(),
            state,
            reason: "2 sample(s) failed: x (2)".into(),
            sequence: 4,
            seed: 7,
            samples: 100,
            samples_done: 40,
            samples_failed: 2,
            jobs: 10,
            jobs_done: 4,
            jobs_leased: 3,
            units: 2,
            dataset_hash: "d".repeat(64),
            config_hash: "c".repeat(64),
            spec_hash: "5".repeat(64),
            provenance: Provenance {
                version: "0.1.0".into(),
                chain: 7,
                dataset_name: "qinba".into(),
                submitted_unix: Some(1_790_000_000),
                ended_unix: None,
                workers: vec!["host/w-1".into()],
                more_workers: 2,
                history: vec![(100, 0.096), (200, 0.0685)],
            },
            largest_half_width: 0.0123,
            until_ci: Some(0.01),
            samples_max: None,
        }
    }

    #[test]
    fn statuses_round_trip_and_unknown_states_are_refused() {
        for state in SweepState::ALL {
            assert_eq!(status_from_pb(status_to_pb(&status(state))).unwrap(), status(state));
        }
        let unspecified =
            pb::SweepStatus { state: pb::SweepState::Unspecified as i32, ..status_to_pb(&status(SweepState::Done)) };
        assert!(matches!(status_from_pb(unspecified), Err(ProtoError::Malformed(m)) if m.contains("sweep state")));
        let bad_id = pb::SweepStatus { sweep_id: "../x".into(), ..status_to_pb(&status(SweepState::Done)) };
        assert!(matches!(status_from_pb(bad_id), Err(ProtoError::BadId { .. })));
    }

    #[test]
    fn a_result_is_decoded_against_its_sweep_shape() {
        let shape = Shape { n_units: 2, n_zones: 5, base_year: 2020, milestone: 2030, horizon: 2060 };
        let wire = aggregate_to_pb(&Aggregate::empty(shape));
        assert_eq!(result_from_pb(&wire, &shape).unwrap().to_aggregate().unwrap(), Aggregate::empty(shape));
        // A plausible but larger shape is refused before its arrays are read.
        let huge = Shape { n_units: 9_000_000, ..shape };
        let mut claims_huge = wire.clone();
        claims_huge.shape = Some(shape_to_pb(&huge));
        let error = result_from_pb(&claims_huge, &shape).unwrap_err();
        assert!(error.to_string().contains("does not fit the sweep's (2 units"), "{error}");
        let no_shape = pb::Aggregate { shape: None, ..wire };
        assert!(result_from_pb(&no_shape, &shape).is_err());
    }

    #[test]
    fn every_shape_a_submission_can_have_decodes_and_no_other() {
        let shape = Shape { n_units: 2, n_zones: 5, base_year: 2020, milestone: 2030, horizon: 2060 };
        for ok in [
            shape,
            Shape { base_year: 1900, milestone: 1900, horizon: 2100, ..shape },
            Shape { base_year: 2199, milestone: 2150, horizon: 2200, ..shape },
            Shape { n_zones: 50, milestone: 2020, horizon: 2021, ..shape },
        ] {
            assert_eq!(aggregate_from_pb(&aggregate_to_pb(&Aggregate::empty(ok))).unwrap(), Aggregate::empty(ok));
        }
        for bad in [
            Shape { horizon: 3100, ..shape },
            Shape { horizon: 2010, milestone: 2005, ..shape },
            Shape { base_year: 30, milestone: 2030, horizon: 2060, ..shape },
            Shape { base_year: 3070, milestone: 3080, horizon: 3100, ..shape },
            Shape { base_year: 9999, milestone: 10_000, horizon: 10_100, ..shape },
        ] {
            let mut wire = aggregate_to_pb(&Aggregate::empty(shape));
            wire.shape = Some(shape_to_pb(&bad));
            let error = aggregate_from_pb(&wire).unwrap_err().to_string();
            assert!(error.contains("implausible projection years"), "{bad:?}: {error}");
        }
    }

    #[test]
    fn results_name_one_unit_per_unit_of_their_shape() {
        let shape = Shape { n_units: 2, n_zones: 5, base_year: 2020, milestone: 2030, horizon: 2060 };
        let results = SweepResults {
            status: status(SweepState::Done),
            unit_ids: vec!["a".into(), "b".into()],
            unit_names: vec!["A".into(), "B".into()],
            nominal_zones: vec![3, 5],
            aggregate: Aggregate::empty(shape),
        };
        assert_eq!(results_from_pb(results_to_pb(&results)).unwrap(), results);
        assert_eq!(results.unit_index("b"), Some(1));
        let mut short = results_to_pb(&results);
        short.unit_ids.pop();
        let error = results_from_pb(short).unwrap_err();
        assert!(error.to_string().contains("names 1 units for an aggregate of 2"), "{error}");
        for bad in [vec![3], vec![3, 6], vec![0, 1]] {
            let mut wire = results_to_pb(&results);
            wire.nominal_zones = bad;
            let error = results_from_pb(wire).unwrap_err();
            assert!(error.to_string().contains("nominal zones"), "{error}");
        }
    }

    #[test]
    fn regional_parts_round_trip_and_are_checked_against_the_shape() {
        use zonesweep_shared::model::config::Config;
        use zonesweep_shared::sweep::SweepSpec;
        use zonesweep_shared::sweep::runner::SweepRunner;
        let dataset = zonesweep_shared::data::demo::generate(3, 1).unwrap();
        let config = Config::default();
        let spec = SweepSpec { samples: 10, ..SweepSpec::default() };
        let a = SweepRunner::new(&dataset, &config, &spec).unwrap().run_range(0..10);
        assert!(a.samples_ok > 0 && a.zone_size_counts.as_flat().iter().any(|&c| c > 0));
        let decoded = decode_aggregate(&encode_aggregate(&a)).unwrap();
        assert_eq!(decoded.regional_peak_counts, a.regional_peak_counts);
        assert_eq!(decoded.zone_size_counts, a.zone_size_counts);
        assert_eq!(decoded, a);
        let wire = aggregate_to_pb(&a);
        let missing = pb::Aggregate { regional_peak_counts: None, ..wire.clone() };
        let error = aggregate_from_pb(&missing).unwrap_err().to_string();
        assert!(error.contains("regional_peak_counts is missing"), "{error}");
        let missing = pb::Aggregate { zone_size_counts: None, ..wire.clone() };
        assert!(aggregate_from_pb(&missing).unwrap_err().to_string().contains("zone_size_counts is missing"));
        // One unit too few in the zone-size rows: 5 zones × 3 entries, not × 4.
        let short = pb::Aggregate { zone_size_counts: Some(counts_to_pb(&[0; 15])), ..wire.clone() };
        let error = aggregate_from_pb(&short).unwrap_err().to_string();
        assert!(error.contains("zone_size_counts has 15 entries; the shape needs 20"), "{error}");
        let long = pb::Aggregate { regional_peak_counts: Some(counts_to_pb(&[0; 200])), ..wire };
        assert!(aggregate_from_pb(&long).unwrap_err().to_string().contains("regional_peak_counts has 200 entries"));
    }

    #[test]
    fn sensitivity_sums_round_trip_and_refuse_bad_layouts() {
        let shape = Shape { n_units: 2, n_zones: 3, base_year: 2020, milestone: 2030, horizon: 2060 };
        let mut aggregate = Aggregate::empty(shape);
        let mut sums = SensitivitySums::zeros(&shape, vec!["k".into(), "cap".into()]);
        sums.base[0] = 40;
        sums.group[0] = -12;
        sums.group[1] = 144;
        sums.samples = 1;
        aggregate.sensitivity = Some(sums);
        let wire = aggregate_to_pb(&aggregate);
        assert_eq!(aggregate_from_pb(&wire).unwrap(), aggregate);
        assert_eq!(decode_aggregate(&encode_aggregate(&aggregate)).unwrap(), aggregate);
        // A plain aggregate has none, and its bytes are what they were.
        let plain = aggregate_to_pb(&Aggregate::empty(shape));
        assert!(plain.sensitivity.is_none());
        assert_eq!(aggregate_from_pb(&plain).unwrap().sensitivity, None);
        let mut short = wire.clone();
        short.sensitivity.as_mut().unwrap().group.pop();
        let error = aggregate_from_pb(&short).unwrap_err().to_string();
        assert!(error.contains("the shape and 2 groups need"), "{error}");
        let mut no_groups = wire.clone();
        no_groups.sensitivity.as_mut().unwrap().groups.clear();
        assert!(aggregate_from_pb(&no_groups).unwrap_err().to_string().contains("0 groups"));
        let mut many = wire.clone();
        many.sensitivity.as_mut().unwrap().groups = (0..=MAX_GROUPS).map(|g| g.to_string()).collect();
        assert!(aggregate_from_pb(&many).is_err());
        let mut repeated = wire;
        repeated.sensitivity.as_mut().unwrap().groups = vec!["k".into(), "k".into()];
        assert!(aggregate_from_pb(&repeated).unwrap_err().to_string().contains("repeated name"));
    }

    #[test]
    fn sparse_counts_round_trip_and_refuse_bad_input() {
        let counts = vec![0, 3, 0, 0, 7, 1];
        for encode in [counts_to_pb, counts_to_pb_packed] {
            let sparse = counts_from_pb("x", Some(&encode(&counts)), (2, 3)).unwrap();
            assert_eq!(sparse.entries(), &[(1, 3), (4, 7), (5, 1)]);
            let table = sparse.to_table(3).unwrap();
            assert_eq!((table.as_flat(), table.row(1)), (&counts[..], &[0, 7, 1][..]));
            let zeros = counts_from_pb("x", Some(&encode(&[0, 0])), (1, 2)).unwrap();
            assert_eq!(zeros.to_table(2).unwrap().as_flat(), &[0, 0]);
        }
        let beyond = pb::Counts { len: 2, gap: vec![5], count: vec![1], ..Default::default() };
        assert!(counts_from_pb("x", Some(&beyond), (1, 2)).is_err());
        let twice = pb::Counts { len: 4, gap: vec![1, 0], count: vec![1, 1], ..Default::default() };
        assert!(counts_from_pb("x", Some(&twice), (2, 2)).is_err());
        let uneven = pb::Counts { len: 4, gap: vec![1], count: vec![], ..Default::default() };
        assert!(counts_from_pb("x", Some(&uneven), (2, 2)).is_err());
        // A huge declared length is refused before anything is allocated.
        let huge = pb::Counts { len: u32::MAX, ..Default::default() };
        assert!(counts_from_pb("x", Some(&huge), (2, 2)).is_err());
        assert!(counts_from_pb("x", None, (0, 1)).is_err());
    }

    /// `packed` bytes for a count table of `len` entries.
    fn packed_counts(len: u32, packed: &[u8]) -> pb::Counts {
        pb::Counts { len, packed: packed.to_vec(), ..Default::default() }
    }

    #[test]
    fn corrupt_packed_counts_are_refused_with_what_is_wrong() {
        let refusal = |wire: pb::Counts| counts_from_pb("peak_counts", Some(&wire), (2, 3)).unwrap_err().to_string();
        // Gap 1, count 2, then gap 0: the same entry again.
        let error = refusal(packed_counts(6, &[1, 2, 0, 1]));
        assert!(error.contains("peak_counts: an entry is given twice"), "{error}");
        // Gap 6 from 0: past the 6 entries.
        let error = refusal(packed_counts(6, &[6, 1]));
        assert!(error.contains("peak_counts: entry 6 is beyond its 6 entries"), "{error}");
        // A gap of 2^64 − 1.
        let error = refusal(packed_counts(6, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 1]));
        assert!(error.contains("beyond its 6 entries"), "{error}");
        // A number whose last byte says more follows.
        let error = refusal(packed_counts(6, &[1, 0x81]));
        assert!(error.contains("peak_counts: the packed bytes end inside a number (byte 2)"), "{error}");
        // A gap without its count.
        let error = refusal(packed_counts(6, &[1]));
        assert!(error.contains("end inside a number"), "{error}");
        // Eleven bytes, or a tenth byte past bit 64.
        let error = refusal(packed_counts(6, &[0x80; 11]));
        assert!(error.contains("peak_counts: a packed number overflows 64 bits"), "{error}");
        let error = refusal(packed_counts(6, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 1]));
        assert!(error.contains("overflows 64 bits"), "{error}");
        // Both forms at once.
        let both = pb::Counts { len: 6, gap: vec![1], count: vec![1], packed: vec![1, 1] };
        assert!(refusal(both).contains("peak_counts is given both packed and as lists"));
        // The length is still the shape's.
        assert!(refusal(packed_counts(7, &[1, 1])).contains("peak_counts has 7 entries; the shape needs 6"));
    }

    #[test]
    fn corrupt_packed_histograms_are_refused_with_what_is_wrong() {
        let list = |bins: &[&[(i32, u64)]]| -> Vec<LogHistogram> {
            bins.iter()
                .map(|b| LogHistogram { non_positive: 1, bins: SparseBins::from_sorted(b.to_vec()).unwrap() })
                .collect()
        };
        let histograms = list(&[&[], &[(-700, 2), (-3, 1), (0, 4), (i32::MAX, 1)], &[(i32::MIN, 9)]]);
        let packed = logs_to_pb_packed(&histograms);
        assert!(packed.lens.is_empty() && packed.bins.is_empty());
        let decoded = logs_from_pb("ce_horizon", Some(&packed), 3).unwrap();
        assert_eq!(decoded, logs_from_pb("ce_horizon", Some(&logs_to_pb(&histograms)), 3).unwrap());
        assert_eq!(decoded.to_histograms(), histograms);
        let refusal = |bytes: &[u8], expected: usize| {
            let wire = pb::LogHistograms { packed: bytes.to_vec(), ..Default::default() };
            logs_from_pb("ce_horizon", Some(&wire), expected).unwrap_err().to_string()
        };
        // Histogram 0: non_positive 0, 2 bins: 4 (zigzag 8), then a gap of 0.
        let error = refusal(&[0, 2, 8, 1, 0, 1], 1);
        assert!(error.contains("ce_horizon: histogram 0: a bin is given twice"), "{error}");
        // More bins claimed than the bytes hold.
        let error = refusal(&[0, 100, 8, 1], 1);
        assert!(error.contains("histogram 0 claims 100 bins"), "{error}");
        // A second histogram where the shape has one.
        let error = refusal(&[0, 0, 0, 0], 1);
        assert!(error.contains("more than the 1 histograms the shape has"), "{error}");
        // A first bin past i32 (zigzag 2^32), and a gap past i32::MAX.
        let error = refusal(&[0, 1, 0x80, 0x80, 0x80, 0x80, 0x10, 1], 1);
        assert!(error.contains("histogram 0: bin 4294967296 (zigzag) is out of range"), "{error}");
        let error = refusal(&[0, 2, 0xfe, 0xff, 0xff, 0xff, 0x0f, 1, 1, 1], 1);
        assert!(error.contains("histogram 0: a bin is out of range"), "{error}");
        // A gap of i64::MAX after bin 1 (found by fuzzing: it overflowed the sum).
        let error = refusal(&[0, 2, 2, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1], 1);
        assert!(error.contains("histogram 0: a bin is out of range"), "{error}");
        // Cut inside a bin's count.
        let error = refusal(&[0, 1, 8], 1);
        assert!(error.contains("ce_horizon: the packed bytes end inside a number"), "{error}");
        // Both forms at once.
        let mut both = logs_to_pb(&histograms);
        both.packed = packed.packed.clone();
        let error = logs_from_pb("ce_horizon", Some(&both), 3).unwrap_err().to_string();
        assert!(error.contains("ce_horizon: given both packed and as lists"), "{error}");
    }

    #[test]
    fn a_packed_result_decodes_and_merges_as_the_listed_one() {
        use zonesweep_shared::model::config::Config;
        use zonesweep_shared::sweep::SweepSpec;
        use zonesweep_shared::sweep::runner::SweepRunner;
        let dataset = zonesweep_shared::data::demo::generate(3, 1).unwrap();
        let config = Config::default();
        let spec = SweepSpec { samples: 12, ..SweepSpec::default() };
        let runner = SweepRunner::new(&dataset, &config, &spec).unwrap();
        let shape = runner.shape();
        let (mut listed, mut packed) = (Aggregate::empty(shape), Aggregate::empty(shape));
        for k in 0..12 {
            let result = runner.run_range(k..k + 1);
            let wire = result_to_pb(&result);
            assert!(wire.zone_counts.as_ref().unwrap().gap.is_empty(), "a result is sent packed");
            let from_packed = result_from_pb(&wire, &shape).unwrap();
            let from_listed = result_from_pb(&aggregate_to_pb(&result), &shape).unwrap();
            assert_eq!(from_packed, from_listed);
            assert_eq!(from_packed.to_aggregate().unwrap(), result);
            assert_eq!(aggregate_from_pb(&wire).unwrap(), result, "the dense decoder takes the packed form too");
            // Smaller than the listed form, and it survives prost's bytes.
            assert!(wire.encoded_len() < aggregate_to_pb(&result).encoded_len());
            let bytes = pb::Aggregate { ..wire }.encode_to_vec();
            assert_eq!(decode_aggregate(&bytes).unwrap(), result);
            listed.merge(&result).unwrap();
            packed.merge_sparse(&from_packed).unwrap();
        }
        assert_eq!(packed, listed, "merged bit for bit alike");
        assert_eq!(encode_aggregate(&packed), encode_aggregate(&listed));
    }

    /// Every first bin and count that a packed histogram can hold round
    /// trips, across the one-, two- and three-byte varints read inline or not.
    #[test]
    fn packed_histograms_round_trip_every_width_of_number() {
        let mut list = Vec::new();
        let mut edges: Vec<i64> = vec![0, 1, -1, 63, -64, 64, -65, 8191, -8192, 8192, -8193, 1 << 20];
        edges.extend([i64::from(i32::MAX), i64::from(i32::MIN), i64::from(i32::MAX) - 1]);
        for &first in &edges {
            for &count in &[1u64, 127, 128, 16383, 16384, u64::MAX / 4] {
                let first = first as i32;
                let mut bins = vec![(first, count)];
                if let Some(next) = first.checked_add(200) {
                    bins.push((next, 1));
                }
                list.push(LogHistogram { non_positive: count, bins: SparseBins::from_sorted(bins).unwrap() });
            }
        }
        let packed = logs_to_pb_packed(&list);
        assert_eq!(logs_from_pb("x", Some(&packed), list.len()).unwrap().to_histograms(), list);
    }

    #[test]
    fn flattened_histograms_round_trip_and_refuse_bad_lengths() {
        let mut a = LogHistogram::default();
        a.add(10.0);
        a.add(1000.0);
        a.add(-1.0);
        let list = vec![a, LogHistogram::default()];
        assert_eq!(logs_from_pb("x", Some(&logs_to_pb(&list)), 2).unwrap().to_histograms(), list);
        assert_eq!(logs_from_pb("x", Some(&logs_to_pb_packed(&list)), 2).unwrap().to_histograms(), list);
        let mut bad = logs_to_pb(&list);
        bad.lens[0] = 5;
        let error = logs_from_pb("x", Some(&bad), 2).unwrap_err().to_string();
        assert!(error.contains("x: the lengths add up to 5, not 2"), "{error}");
        let mut unsorted = logs_to_pb(&list);
        unsorted.bins.swap(0, 1);
        let error = logs_from_pb("x", Some(&unsorted), 2).unwrap_err().to_string();
        assert!(error.contains("x: histogram 0: bins are not strictly ascending"), "{error}");
    }
}
