//! Reading a stored sweep for people: zone-membership tables, peaking-year
//! statistics and exports. Everything here works on domain values
//! ([`SweepStatus`], [`SweepResults`]), whether they came from a coordinator
//! or straight from a database file.

use std::fmt::Write as _;

use anyhow::{Result, bail};
use serde::Serialize;
use unicode_width::{UnicodeWidthChar as _, UnicodeWidthStr};
use zonesweep_proto::status::{SweepResults, SweepStatus};
use zonesweep_shared::model::config::Scenario;
use zonesweep_shared::model::zoning::{ScoreKey, zone_name};
use zonesweep_shared::sweep::aggregate::{Aggregate, MIN_TOTAL};
use zonesweep_shared::sweep::answers::{
    DEFAULT_ROBUST_THRESHOLD, FanYear, PeakAnswer, PeakQuantiles, Proportion, Robustness, UnitPeaking, ZoneSize,
};
use zonesweep_shared::sweep::sensitivity::{
    BASE_SLOT_NAMES, GROUP_SLOT_NAMES, Index, Output, OutputSensitivity, SensitivitySums,
};

/// A sweep's results, decoded, whether from a coordinator or a database file.
pub type SweepView = SweepResults;

/// One line per sweep, for `list` and `status`.
pub fn status_line(s: &SweepStatus) -> String {
    let mut line = format!(
        "{}  {:<9} {:>9}/{} samples ({} failed), jobs {}/{} done, {} leased, seed {}",
        s.id,
        s.state.name(),
        s.samples_done,
        s.samples,
        s.samples_failed,
        s.jobs_done,
        s.jobs,
        s.jobs_leased,
        s.seed
    );
    if !s.reason.is_empty() {
        let _ = write!(line, "\n    {}", s.reason);
    }
    line
}

/// How a query prints its answer: an aligned table for people, CSV with a
/// header row, or JSON (field names documented in the README).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    #[default]
    Table,
    Csv,
    Json,
}

/// The widest unit name a table shows, in terminal columns.
pub const NAME_WIDTH: usize = 24;

/// The terminal columns `text` takes: CJK characters take two.
pub fn display_width(text: &str) -> usize {
    UnicodeWidthStr::width(text)
}

/// `text` cut to at most `max` terminal columns (by display width, never
/// inside a character), ending in "…" when cut.
pub fn truncate_to_width(text: &str, max: usize) -> String {
    if display_width(text) <= max {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > max {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

/// A table whose columns are aligned by display width.
struct Table {
    columns: Vec<(String, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(columns: Vec<(String, Align)>) -> Table {
        Table { columns, rows: Vec::new() }
    }

    fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.columns.len());
        self.rows.push(row);
    }

    fn render(&self) -> String {
        let mut widths: Vec<usize> = self.columns.iter().map(|(h, _)| display_width(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(display_width(cell));
            }
        }
        let mut out = String::new();
        let header: Vec<&str> = self.columns.iter().map(|(h, _)| h.as_str()).collect();
        for row in std::iter::once(header).chain(self.rows.iter().map(|r| r.iter().map(String::as_str).collect())) {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .zip(&self.columns)
                .map(|((cell, &width), (_, align))| {
                    let fill = " ".repeat(width.saturating_sub(display_width(cell)));
                    match align {
                        Align::Left => format!("{cell}{fill}"),
                        Align::Right => format!("{fill}{cell}"),
                    }
                })
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        out
    }
}

fn left(header: impl Into<String>) -> (String, Align) {
    (header.into(), Align::Left)
}

fn right(header: impl Into<String>) -> (String, Align) {
    (header.into(), Align::Right)
}

/// A probability for a table: three decimals, "–" without samples.
fn prob(p: f64) -> String {
    if p.is_nan() { "–".to_owned() } else { format!("{p:.3}") }
}

fn interval(p: &Proportion) -> String {
    format!("{:.3}–{:.3}", p.low, p.high)
}

/// A number for CSV: empty when not a number.
fn csv_number(value: f64) -> String {
    if value.is_finite() { value.to_string() } else { String::new() }
}

fn csv_option<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(String::new, |v| v.to_string())
}

fn csv_text(write: impl FnOnce(&mut csv::Writer<Vec<u8>>) -> csv::Result<()>) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    write(&mut w)?;
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("writing CSV: {e}"))?;
    Ok(String::from_utf8(bytes)?)
}

fn json_text(value: &impl Serialize) -> Result<String> {
    Ok(serde_json::to_string_pretty(value)? + "\n")
}

/// The legend of zone numbers, printed once above a table.
fn zone_legend(n_zones: usize) -> String {
    let names: Vec<String> = (1..=n_zones).map(|z| format!("{z} = {}", zone_name(z))).collect();
    format!("zones: {}\n", names.join(", "))
}

fn unit_name(view: &SweepView, unit: usize) -> &str {
    view.unit_names.get(unit).map_or("", String::as_str)
}

/// The units named by `ids` (every unit when empty), each once, in the
/// order given; an id that is not a unit of the sweep is an error naming it
/// and the units there are.
fn select_units(view: &SweepView, ids: &[String]) -> Result<Vec<usize>> {
    if ids.is_empty() {
        return Ok((0..view.unit_ids.len()).collect());
    }
    let mut units = Vec::new();
    for id in ids {
        let Some(u) = view.unit_index(id) else {
            const SHOWN: usize = 20;
            let shown: Vec<&str> = view.unit_ids.iter().take(SHOWN).map(String::as_str).collect();
            let more = view.unit_ids.len().saturating_sub(SHOWN);
            bail!(
                "no unit `{id}` in sweep {}; its units are {}{}",
                view.status.id,
                shown.join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() }
            );
        };
        if !units.contains(&u) {
            units.push(u);
        }
    }
    Ok(units)
}

/// The order of `zones`'s rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ZoneSort {
    /// The sweep's unit order.
    #[default]
    Id,
    /// Least robust first: by the lower end of the modal probability's 95 %
    /// interval, ascending (the unit order on ties).
    Robustness,
}

/// What `zones` shows.
pub struct ZonesQuery<'a> {
    /// Only these units (every unit when empty).
    pub units: &'a [String],
    /// Only units that are not robust.
    pub only_uncertain: bool,
    pub sort: ZoneSort,
    /// The lower Wilson bound of P(modal) that makes a unit robust.
    pub threshold: f64,
}

#[derive(Serialize)]
struct ZonesDocument<'a> {
    sweep: &'a str,
    samples: u64,
    samples_ok: u64,
    robust_threshold: f64,
    zone_names: Vec<String>,
    units: Vec<ZoneUnit<'a>>,
    zone_sizes: Vec<ZoneSize>,
}

#[derive(Serialize)]
struct ZoneUnit<'a> {
    id: &'a str,
    name: &'a str,
    #[serde(flatten)]
    robustness: Robustness,
}

/// `zones`: per unit, how sure its zone is; per zone, how many units it holds.
pub fn zones(view: &SweepView, query: &ZonesQuery<'_>, format: OutputFormat) -> Result<String> {
    let a = &view.aggregate;
    let n_zones = a.shape.n_zones;
    let mut units: Vec<(usize, Robustness)> = select_units(view, query.units)?
        .into_iter()
        .map(|u| (u, a.robustness(u, view.nominal_zones.get(u).copied(), query.threshold)))
        .collect();
    if query.only_uncertain {
        units.retain(|(_, r)| !r.robust);
    }
    if query.sort == ZoneSort::Robustness {
        units.sort_by(|x, y| x.1.modal.low.total_cmp(&y.1.modal.low).then(x.0.cmp(&y.0)));
    }
    match format {
        OutputFormat::Json => json_text(&ZonesDocument {
            sweep: view.status.id.as_str(),
            samples: view.status.samples,
            samples_ok: a.samples_ok,
            robust_threshold: query.threshold,
            zone_names: (1..=n_zones).map(zone_name).collect(),
            units: units
                .into_iter()
                .map(|(u, robustness)| ZoneUnit { id: &view.unit_ids[u], name: unit_name(view, u), robustness })
                .collect(),
            zone_sizes: a.zone_sizes(),
        }),
        OutputFormat::Csv => csv_text(|w| {
            let mut header: Vec<String> = [
                "unit",
                "name",
                "nominal_zone",
                "modal_zone",
                "p_modal",
                "p_modal_low",
                "p_modal_high",
                "runner_up_zone",
                "p_runner_up",
                "entropy",
                "robust",
            ]
            .map(str::to_owned)
            .to_vec();
            header.extend((1..=n_zones).map(|z| format!("p_zone_{z}")));
            w.write_record(&header)?;
            for (u, r) in &units {
                let mut row = vec![
                    view.unit_ids[*u].clone(),
                    unit_name(view, *u).to_owned(),
                    csv_option(r.nominal_zone),
                    r.modal_zone.to_string(),
                    csv_number(r.modal.p),
                    csv_number(r.modal.low),
                    csv_number(r.modal.high),
                    csv_option(r.runner_up_zone),
                    r.runner_up.map_or_else(String::new, |p| csv_number(p.p)),
                    csv_number(r.entropy),
                    r.robust.to_string(),
                ];
                row.extend(r.zones.iter().map(|p| csv_number(p.p)));
                w.write_record(&row)?;
            }
            Ok(())
        }),
        OutputFormat::Table => {
            let mut out = format!(
                "sweep {}: {} of {} samples succeeded\n{}",
                view.status.id,
                a.samples_ok,
                view.status.samples,
                zone_legend(n_zones)
            );
            let _ = writeln!(
                out,
                "robust: the 95 % interval of P(modal) lies at or above {}; entropy: 0 = always one zone, 1 = every zone equally likely",
                query.threshold
            );
            let mut columns = vec![
                left("unit"),
                left("name"),
                right("nominal zone"),
                right("modal zone"),
                right("P(modal)"),
                right("95 % interval"),
                right("runner-up"),
                right("P(runner-up)"),
                right("entropy"),
                left("robust"),
            ];
            columns.extend((1..=n_zones).map(|z| right(format!("P(zone {z})"))));
            let mut table = Table::new(columns);
            for (u, r) in &units {
                let mut row = vec![
                    view.unit_ids[*u].clone(),
                    truncate_to_width(unit_name(view, *u), NAME_WIDTH),
                    r.nominal_zone.map_or("–".to_owned(), |z| z.to_string()),
                    r.modal_zone.to_string(),
                    prob(r.modal.p),
                    interval(&r.modal),
                    r.runner_up_zone.map_or("–".to_owned(), |z| z.to_string()),
                    r.runner_up.map_or("–".to_owned(), |p| prob(p.p)),
                    if r.entropy.is_nan() { "–".to_owned() } else { format!("{:.2}", r.entropy) },
                    (if r.robust { "yes" } else { "no" }).to_owned(),
                ];
                row.extend(r.zones.iter().map(|p| prob(p.p)));
                table.push(row);
            }
            if units.is_empty() {
                out.push_str("no unit matches\n");
            } else {
                out.push_str(&table.render());
            }
            let _ = writeln!(out, "\nunits per zone over the {} samples:", a.samples_ok);
            let mut sizes =
                Table::new(vec![left("zone"), right("units, 5–95 % of samples"), right("median"), right("expected")]);
            for size in a.zone_sizes() {
                let range = match (size.p05, size.p95) {
                    (Some(low), Some(high)) => format!("{low}–{high}"),
                    _ => "–".to_owned(),
                };
                let expected = if size.expected.is_nan() { "–".to_owned() } else { format!("{:.1}", size.expected) };
                sizes.push(vec![size.zone.to_string(), range, csv_option(size.median), expected]);
            }
            out.push_str(&sizes.render());
            Ok(out)
        }
    }
}

/// What `peaking` shows.
pub struct PeakingQuery<'a> {
    /// Only these units (every unit when empty).
    pub units: &'a [String],
    /// Only this scenario.
    pub scenario: Option<Scenario>,
    /// The region's total CE instead of the units.
    pub region: bool,
}

#[derive(Serialize)]
struct PeakingDocument<'a, T> {
    sweep: &'a str,
    samples: u64,
    samples_ok: u64,
    base_year: i32,
    milestone: i32,
    horizon: i32,
    #[serde(flatten)]
    answers: T,
}

impl<'a, T> PeakingDocument<'a, T> {
    fn of(view: &'a SweepView, answers: T) -> PeakingDocument<'a, T> {
        let shape = view.aggregate.shape;
        PeakingDocument {
            sweep: view.status.id.as_str(),
            samples: view.status.samples,
            samples_ok: view.aggregate.samples_ok,
            base_year: shape.base_year,
            milestone: shape.milestone,
            horizon: shape.horizon,
            answers,
        }
    }
}

#[derive(Serialize)]
struct UnitPeakingRow<'a> {
    id: &'a str,
    name: &'a str,
    scenario: Scenario,
    #[serde(flatten)]
    peaking: UnitPeaking,
}

#[derive(Serialize)]
struct UnitsPeaking<'a> {
    units: Vec<UnitPeakingRow<'a>>,
}

#[derive(Serialize)]
struct RegionPeakingRow {
    scenario: Scenario,
    #[serde(flatten)]
    peak: PeakAnswer,
    /// The regional total CE per year, t.
    fan: Vec<FanYear>,
}

#[derive(Serialize)]
struct RegionPeaking {
    region: Vec<RegionPeakingRow>,
}

/// A peak year for a table: the year, or "no peak" (not peaked by the horizon).
fn peak_cell(year: Option<i32>) -> String {
    year.map_or("no peak".to_owned(), |y| y.to_string())
}

fn quantile_cells(q: Option<PeakQuantiles>, cell: impl Fn(Option<i32>) -> String) -> [String; 5] {
    match q {
        Some(q) => [q.p05, q.p25, q.median, q.p75, q.p95].map(cell),
        None => std::array::from_fn(|_| String::new()),
    }
}

fn peak_quantile_columns() -> [(String, Align); 5] {
    ["peak year 5 %", "25 %", "median", "75 %", "95 %"].map(right)
}

/// `peaking`: per unit and scenario, when it peaks and whether it is
/// neutral by the horizon; with `region`, the same for the region's total
/// CE and its fan per year.
pub fn peaking(view: &SweepView, query: &PeakingQuery<'_>, format: OutputFormat) -> Result<String> {
    let a = &view.aggregate;
    let shape = a.shape;
    let scenarios: Vec<Scenario> = query.scenario.map_or(Scenario::ALL.to_vec(), |s| vec![s]);
    let (milestone, horizon) = (shape.milestone, shape.horizon);
    let intro = format!(
        "sweep {}: {} of {} samples succeeded; peak years are quantiles over the samples, \"no peak\" = not peaked by {horizon}\n",
        view.status.id, a.samples_ok, view.status.samples
    );
    if query.region {
        let rows: Vec<RegionPeakingRow> = scenarios
            .iter()
            .map(|&s| RegionPeakingRow { scenario: s, peak: a.regional_peaking(s), fan: a.regional_fan(s) })
            .collect();
        return match format {
            OutputFormat::Json => json_text(&PeakingDocument::of(view, RegionPeaking { region: rows })),
            OutputFormat::Csv => csv_text(|w| {
                w.write_record(["scenario", "statistic", "year", "value", "low", "high"])?;
                for row in &rows {
                    let s = row.scenario.key();
                    let p = &row.peak;
                    for (name, year, share) in [
                        ("p_peak_by_milestone", milestone, &p.by_milestone),
                        ("p_no_peak_by_horizon", horizon, &p.not_by_horizon),
                    ] {
                        let record = [csv_number(share.p), csv_number(share.low), csv_number(share.high)];
                        w.write_record([s, name, &year.to_string(), &record[0], &record[1], &record[2]])?;
                    }
                    let names =
                        ["peak_year_p05", "peak_year_p25", "peak_year_median", "peak_year_p75", "peak_year_p95"];
                    for (name, value) in names.iter().zip(quantile_cells(p.quantiles, csv_option)) {
                        w.write_record([s, name, "", &value, "", ""])?;
                    }
                    for year in &row.fan {
                        let values = [year.p05, year.p25, year.median, year.p75, year.p95];
                        for (name, value) in ["ce_p05", "ce_p25", "ce_median", "ce_p75", "ce_p95"].iter().zip(values) {
                            w.write_record([s, name, &year.year.to_string(), &csv_option(value), "", ""])?;
                        }
                    }
                }
                Ok(())
            }),
            OutputFormat::Table => {
                let mut out = intro;
                let _ = writeln!(out, "the region's total CE of {} units:", view.unit_ids.len());
                let mut columns =
                    vec![left("scenario"), right(format!("P(peak by {milestone})")), right("95 % interval")];
                columns.extend(peak_quantile_columns());
                columns.extend([right(format!("P(no peak by {horizon})")), right("95 % interval")]);
                let mut table = Table::new(columns);
                for row in &rows {
                    let p = &row.peak;
                    let mut cells =
                        vec![row.scenario.key().to_owned(), prob(p.by_milestone.p), interval(&p.by_milestone)];
                    cells.extend(quantile_cells(p.quantiles, peak_cell));
                    cells.extend([prob(p.not_by_horizon.p), interval(&p.not_by_horizon)]);
                    table.push(cells);
                }
                out.push_str(&table.render());
                out.push_str("\nregional CE, Mt: quantiles over the samples\n");
                let mut fan = Table::new(vec![
                    left("scenario"),
                    right("year"),
                    right("5 %"),
                    right("25 %"),
                    right("median"),
                    right("75 %"),
                    right("95 %"),
                ]);
                for row in &rows {
                    for year in &row.fan {
                        let mut cells = vec![row.scenario.key().to_owned(), year.year.to_string()];
                        cells.extend(
                            [year.p05, year.p25, year.median, year.p75, year.p95]
                                .map(|v| v.map_or("–".to_owned(), |v| format!("{:.2}", v / 1e6))),
                        );
                        fan.push(cells);
                    }
                }
                out.push_str(&fan.render());
                Ok(out)
            }
        };
    }
    let units = select_units(view, query.units)?;
    let rows: Vec<UnitPeakingRow> = units
        .iter()
        .flat_map(|&u| scenarios.iter().map(move |&s| (u, s)))
        .map(|(u, s)| UnitPeakingRow {
            id: &view.unit_ids[u],
            name: unit_name(view, u),
            scenario: s,
            peaking: a.unit_peaking(s, u),
        })
        .collect();
    match format {
        OutputFormat::Json => json_text(&PeakingDocument::of(view, UnitsPeaking { units: rows })),
        OutputFormat::Csv => csv_text(|w| {
            w.write_record([
                "unit",
                "name",
                "scenario",
                "p_peak_by_milestone",
                "p_peak_by_milestone_low",
                "p_peak_by_milestone_high",
                "peak_year_p05",
                "peak_year_p25",
                "peak_year_median",
                "peak_year_p75",
                "peak_year_p95",
                "p_no_peak_by_horizon",
                "p_neutral_by_horizon",
                "p_neutral_by_horizon_low",
                "p_neutral_by_horizon_high",
            ])?;
            for row in &rows {
                let p = &row.peaking.peak;
                let n = &row.peaking.neutral;
                let mut record = vec![
                    row.id.to_owned(),
                    row.name.to_owned(),
                    row.scenario.key().to_owned(),
                    csv_number(p.by_milestone.p),
                    csv_number(p.by_milestone.low),
                    csv_number(p.by_milestone.high),
                ];
                record.extend(quantile_cells(p.quantiles, csv_option));
                record.extend([csv_number(p.not_by_horizon.p), csv_number(n.p), csv_number(n.low), csv_number(n.high)]);
                w.write_record(&record)?;
            }
            Ok(())
        }),
        OutputFormat::Table => {
            let mut out = intro;
            let mut columns = vec![
                left("unit"),
                left("name"),
                left("scenario"),
                right(format!("P(peak by {milestone})")),
                right("95 % interval"),
            ];
            columns.extend(peak_quantile_columns());
            columns.extend([
                right(format!("P(no peak by {horizon})")),
                right(format!("P(neutral by {horizon})")),
                right("95 % interval"),
            ]);
            let mut table = Table::new(columns);
            for row in &rows {
                let p = &row.peaking.peak;
                let n = &row.peaking.neutral;
                let mut cells = vec![
                    row.id.to_owned(),
                    truncate_to_width(row.name, NAME_WIDTH),
                    row.scenario.key().to_owned(),
                    prob(p.by_milestone.p),
                    interval(&p.by_milestone),
                ];
                cells.extend(quantile_cells(p.quantiles, peak_cell));
                cells.extend([prob(p.not_by_horizon.p), prob(n.p), interval(n)]);
                table.push(cells);
            }
            out.push_str(&table.render());
            Ok(out)
        }
    }
}

/// A sweep's status as `status`/`list --format json` write it (field names
/// documented in the README).
#[derive(Default, Serialize)]
struct StatusRecord<'a> {
    id: &'a str,
    state: &'static str,
    samples: u64,
    samples_done: u64,
    samples_failed: u64,
    jobs: u32,
    jobs_done: u32,
    jobs_leased: u32,
    units: u32,
    seed: u64,
    sequence: u64,
    reason: &'a str,
    dataset_hash: &'a str,
    config_hash: &'a str,
    spec_hash: &'a str,
    /// The largest 95 % Wilson half-width over every zone probability.
    largest_half_width: Option<f64>,
    until_ci: Option<f64>,
    samples_max: Option<u64>,
    version: &'a str,
    /// The model chain revision (0: not recorded).
    chain: u32,
    dataset_name: &'a str,
    submitted_unix: Option<u64>,
    ended_unix: Option<u64>,
    wall_seconds: Option<u64>,
    workers: &'a [String],
    more_workers: u64,
    /// [successful samples, largest half-width] as results were merged (JSON only).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    history: &'a [(u64, f64)],
}

impl<'a> StatusRecord<'a> {
    fn of(s: &'a SweepStatus) -> StatusRecord<'a> {
        let p = &s.provenance;
        StatusRecord {
            id: s.id.as_str(),
            state: s.state.name(),
            samples: s.samples,
            samples_done: s.samples_done,
            samples_failed: s.samples_failed,
            jobs: s.jobs,
            jobs_done: s.jobs_done,
            jobs_leased: s.jobs_leased,
            units: s.units,
            seed: s.seed,
            sequence: s.sequence,
            reason: &s.reason,
            dataset_hash: &s.dataset_hash,
            config_hash: &s.config_hash,
            spec_hash: &s.spec_hash,
            largest_half_width: (s.samples_done > s.samples_failed).then_some(s.largest_half_width),
            until_ci: s.until_ci,
            samples_max: s.samples_max,
            version: &p.version,
            chain: p.chain,
            dataset_name: &p.dataset_name,
            submitted_unix: p.submitted_unix,
            ended_unix: p.ended_unix,
            wall_seconds: p.submitted_unix.zip(p.ended_unix).map(|(start, end)| end.saturating_sub(start)),
            workers: &p.workers,
            more_workers: p.more_workers,
            history: &p.history,
        }
    }

    /// (column, value) pairs of a CSV row: every field, the workers joined by `;`.
    fn columns(&self) -> Vec<(&'static str, String)> {
        let opt = |v: Option<String>| v.unwrap_or_default();
        vec![
            ("id", self.id.to_owned()),
            ("state", self.state.to_owned()),
            ("samples", self.samples.to_string()),
            ("samples_done", self.samples_done.to_string()),
            ("samples_failed", self.samples_failed.to_string()),
            ("jobs", self.jobs.to_string()),
            ("jobs_done", self.jobs_done.to_string()),
            ("jobs_leased", self.jobs_leased.to_string()),
            ("units", self.units.to_string()),
            ("seed", self.seed.to_string()),
            ("sequence", self.sequence.to_string()),
            ("reason", self.reason.to_owned()),
            ("dataset_hash", self.dataset_hash.to_owned()),
            ("config_hash", self.config_hash.to_owned()),
            ("spec_hash", self.spec_hash.to_owned()),
            ("largest_half_width", opt(self.largest_half_width.map(|h| h.to_string()))),
            ("until_ci", opt(self.until_ci.map(|h| h.to_string()))),
            ("samples_max", opt(self.samples_max.map(|n| n.to_string()))),
            ("version", self.version.to_owned()),
            ("chain", self.chain.to_string()),
            ("dataset_name", self.dataset_name.to_owned()),
            ("submitted_unix", opt(self.submitted_unix.map(|t| t.to_string()))),
            ("ended_unix", opt(self.ended_unix.map(|t| t.to_string()))),
            ("wall_seconds", opt(self.wall_seconds.map(|t| t.to_string()))),
            ("workers", self.workers.join(";")),
            ("more_workers", self.more_workers.to_string()),
        ]
    }
}

fn statuses_csv(list: &[SweepStatus]) -> Result<String> {
    csv_text(|w| {
        w.write_record(StatusRecord::default().columns().iter().map(|(name, _)| *name))?;
        for s in list {
            w.write_record(StatusRecord::of(s).columns().iter().map(|(_, value)| value))?;
        }
        Ok(())
    })
}

/// `status`: one sweep.
pub fn status(s: &SweepStatus, format: OutputFormat) -> Result<String> {
    match format {
        OutputFormat::Table => Ok(format!("{}\n    {}\n", status_line(s), convergence(s))),
        OutputFormat::Csv => statuses_csv(std::slice::from_ref(s)),
        OutputFormat::Json => json_text(&StatusRecord::of(s)),
    }
}

/// `list`: every sweep (a JSON array, a CSV row each).
pub fn list(sweeps: &[SweepStatus], format: OutputFormat) -> Result<String> {
    match format {
        OutputFormat::Table if sweeps.is_empty() => Ok("no sweeps\n".to_owned()),
        OutputFormat::Table => Ok(sweeps.iter().map(|s| status_line(s) + "\n").collect()),
        OutputFormat::Csv => statuses_csv(sweeps),
        OutputFormat::Json => json_text(&sweeps.iter().map(StatusRecord::of).collect::<Vec<_>>()),
    }
}

fn year(y: Option<i32>) -> String {
    y.map_or("none".to_owned(), |y| y.to_string())
}

/// The short table `run` ends with: modal zone and peaking per unit.
pub fn summary(view: &SweepView) -> String {
    let a = &view.aggregate;
    let mut out = format!(
        "{:<10} {:>5} {:>6}   {:>20}   {:>14}\n",
        "unit",
        "zone",
        "P",
        format!("P(peak≤{}) low/base/high", a.shape.milestone),
        "baseline peak"
    );
    let mut counts = vec![0usize; a.shape.n_zones];
    for (u, id) in view.unit_ids.iter().enumerate() {
        let r = a.robustness(u, None, DEFAULT_ROBUST_THRESHOLD);
        counts[r.modal_zone - 1] += 1;
        let by: Vec<String> =
            Scenario::ALL.iter().map(|&s| format!("{:.2}", a.unit_peaking(s, u).peak.by_milestone.p)).collect();
        let q = a.unit_peaking(Scenario::Baseline, u).peak.quantiles;
        let baseline = match q {
            Some(q) => format!("{} ({}–{})", year(q.median), year(q.p05), year(q.p95)),
            None => "–".to_owned(),
        };
        let _ =
            writeln!(out, "{id:<10} {:>5} {:>6.2}   {:>20}   {:>14}", r.modal_zone, r.modal.p, by.join("/"), baseline);
    }
    let _ = writeln!(
        out,
        "units by modal zone (1 = {} … {} = {}): {:?}",
        zone_name(1),
        a.shape.n_zones,
        zone_name(a.shape.n_zones),
        counts
    );
    out.push_str(&regional_summary(view));
    out
}

/// The figures a reader of the paper looks for, as expected counts over the
/// samples (the sum over units of each unit's probability), with the
/// paper's single run in brackets where it reports one.
fn regional_summary(view: &SweepView) -> String {
    let a = &view.aggregate;
    let (milestone, horizon) = (a.shape.milestone, a.shape.horizon);
    let n_units = view.unit_ids.len();
    let expected =
        |f: &dyn Fn(&PeakAnswer) -> f64, s: Scenario| (0..n_units).map(|u| f(&a.unit_peaking(s, u).peak)).sum::<f64>();
    let not_neutral = |s: Scenario| {
        (0..n_units).map(|u| 1.0 - a.neutral_count(s, u) as f64 / a.samples_ok.max(1) as f64).sum::<f64>()
    };
    let regional_ce = |s: Scenario, year: i32, q: f64| -> Option<f64> {
        let t = usize::try_from(year - a.shape.base_year).ok()?;
        a.regional_ce.get(s as usize * a.shape.n_projected_years() + t)?.quantile(q).map(|v| v / 1e6)
    };
    let paper = n_units == 81 && a.shape.base_year == 2020;
    // The paper's figure, where it reports one for this cell.
    let bracket = |text: &str| if paper && text != "–" { format!(" [{text}]") } else { String::new() };
    let mut out = format!(
        "\nregion over {} samples: unit counts are means, regional CE medians (5–95 %){}:\n",
        a.samples_ok,
        if paper { "; the paper's single run in brackets" } else { "" }
    );
    let _ = writeln!(out, "{:<36} {:>22} {:>22} {:>22}", "", "low-carbon", "baseline", "high-carbon");
    let row =
        |label: String, cells: [String; 3]| format!("{label:<36} {:>22} {:>22} {:>22}\n", cells[0], cells[1], cells[2]);
    let papers_by_milestone = ["72", "–", "59"];
    out += &row(
        format!("units peaked by {milestone}"),
        std::array::from_fn(|s| {
            format!("{:.1}{}", expected(&|p| p.by_milestone.p, Scenario::ALL[s]), bracket(papers_by_milestone[s]))
        }),
    );
    out += &row(
        "  of which rising first (T₀ < peak)".to_owned(),
        std::array::from_fn(|s| {
            format!("{:.1}{}", expected(&|p| p.rising_first.p, Scenario::ALL[s]), bracket(["–", "30", "–"][s]))
        }),
    );
    out += &row(
        format!("units not neutral by {horizon}"),
        std::array::from_fn(|s| format!("{:.1}", not_neutral(Scenario::ALL[s]))),
    );
    out += &row(
        "regional peak year, median (5–95 %)".to_owned(),
        std::array::from_fn(|s| match a.regional_peaking(Scenario::ALL[s]).quantiles {
            Some(q) => format!("{} ({}–{})", year(q.median), year(q.p05), year(q.p95)),
            None => "–".to_owned(),
        }),
    );
    let fan = |s: Scenario, year: i32| match (
        regional_ce(s, year, 0.5),
        regional_ce(s, year, 0.05),
        regional_ce(s, year, 0.95),
    ) {
        (Some(m), Some(lo), Some(hi)) => format!("{m:.1} ({lo:.0}–{hi:.0})"),
        _ => "–".to_owned(),
    };
    out += &row(
        format!("regional CE {milestone}, Mt (5–95 %)"),
        std::array::from_fn(|s| fan(Scenario::ALL[s], milestone)),
    );
    out += &row(
        format!("regional CE {horizon}, Mt (5–95 %)"),
        std::array::from_fn(|s| format!("{}{}", fan(Scenario::ALL[s], horizon), bracket(["30.55", "–", "–"][s]))),
    );
    if paper && a.shape.n_zones == 5 {
        out += "zone sizes in the paper: [10, 33, 19, 14, 5]\n";
    }
    out
}

/// What an export holds: nothing that differs between equal runs (no sweep
/// id, time or host), so equal results export byte-identically.
#[derive(Serialize)]
struct Export<'a> {
    samples: u64,
    seed: u64,
    dataset_hash: &'a str,
    config_hash: &'a str,
    spec_hash: &'a str,
    units: Vec<ExportUnit<'a>>,
    aggregate: &'a Aggregate,
}

#[derive(Serialize)]
struct ExportUnit<'a> {
    id: &'a str,
    name: &'a str,
}

pub fn export_json(view: &SweepView) -> Result<String> {
    let export = Export {
        samples: view.status.samples,
        seed: view.status.seed,
        dataset_hash: &view.status.dataset_hash,
        config_hash: &view.status.config_hash,
        spec_hash: &view.status.spec_hash,
        units: view.unit_ids.iter().zip(&view.unit_names).map(|(id, name)| ExportUnit { id, name }).collect(),
        aggregate: &view.aggregate,
    };
    Ok(serde_json::to_string_pretty(&export)? + "\n")
}

/// The whole aggregate as one tidy table: quantity, unit, scenario, bin, count.
pub fn export_csv(view: &SweepView) -> Result<String> {
    let a = &view.aggregate;
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["quantity", "unit", "scenario", "bin", "count"])?;
    let n = a.shape.n_units;
    let mut row = |q: &str, unit: &str, scenario: &str, bin: String, count: u64| -> Result<()> {
        w.write_record([q, unit, scenario, &bin, &count.to_string()])?;
        Ok(())
    };
    row("samples_ok", "", "", String::new(), a.samples_ok)?;
    for (kind, failure) in &a.failures {
        row("samples_failed", "", "", kind.clone(), failure.count)?;
    }
    let peak_bins = a.shape.n_peak_bins();
    for (u, id) in view.unit_ids.iter().enumerate() {
        for (z, count) in a.zone_counts.row(u).iter().enumerate() {
            row("zone", id, "", (z + 1).to_string(), *count)?;
        }
        for (t, count) in a.total_counts.row(u).iter().enumerate() {
            row("total", id, "", (MIN_TOTAL as usize + t).to_string(), *count)?;
        }
        for key in ScoreKey::ALL {
            for (s, count) in a.score_row(u, key).iter().enumerate() {
                row(&format!("score_{}", key.key()), id, "", (s + 1).to_string(), *count)?;
            }
        }
        for (c, count) in a.cep_counts.row(u).iter().enumerate() {
            row("cep", id, "", (c + 1).to_string(), *count)?;
        }
        for scenario in Scenario::ALL {
            let s = scenario as usize;
            for (b, count) in a.peak_histogram(scenario, u).iter().enumerate() {
                let bin =
                    if b + 1 == peak_bins { "none".to_owned() } else { (a.shape.base_year + b as i32).to_string() };
                row("peak_year", id, scenario.key(), bin, *count)?;
            }
            row("neutral", id, scenario.key(), String::new(), a.neutral_count(scenario, u))?;
            for (name, hist) in [("ce_milestone", &a.ce_milestone[s * n + u]), ("ce_horizon", &a.ce_horizon[s * n + u])]
            {
                if hist.non_positive > 0 {
                    row(name, id, scenario.key(), "<=0".to_owned(), hist.non_positive)?;
                }
                for (bin, count) in &hist.bins {
                    row(name, id, scenario.key(), format!("log1.01:{bin}"), *count)?;
                }
            }
        }
    }
    let years = a.shape.n_projected_years();
    for scenario in Scenario::ALL {
        for t in 0..years {
            let hist = &a.regional_ce[scenario as usize * years + t];
            let year = (a.shape.base_year + t as i32).to_string();
            if hist.non_positive > 0 {
                row("regional_ce", &year, scenario.key(), "<=0".to_owned(), hist.non_positive)?;
            }
            for (bin, count) in &hist.bins {
                row("regional_ce", &year, scenario.key(), format!("log1.01:{bin}"), *count)?;
            }
        }
    }
    let names = ["P", "W", "IS", "TI", "UR", "CEI"];
    let linear = names.iter().map(|n| format!("coefficient_{n}")).zip(&a.coefficients);
    for (name, hist) in linear.chain([("r2".to_owned(), &a.r2), ("k".to_owned(), &a.k)]) {
        if hist.non_finite > 0 {
            row(&name, "", "", "non-finite".to_owned(), hist.non_finite)?;
        }
        for (bin, count) in &hist.bins {
            row(&name, "", "", format!("{}:{bin}", hist.width), *count)?;
        }
    }
    for scenario in Scenario::ALL {
        for (b, count) in a.regional_peak_counts.row(scenario as usize).iter().enumerate() {
            let bin = if b + 1 == peak_bins { "none".to_owned() } else { (a.shape.base_year + b as i32).to_string() };
            row("regional_peak_year", "", scenario.key(), bin, *count)?;
        }
    }
    for z in 0..a.shape.n_zones {
        for (units, count) in a.zone_size_counts.row(z).iter().enumerate() {
            if *count > 0 {
                row(&format!("units_in_zone_{}", z + 1), "", "", units.to_string(), *count)?;
            }
        }
    }
    if let Some(sums) = &a.sensitivity {
        // Sums, not counts: the `count` column holds each (signed) sum.
        let mut sum = |q: &str, unit: &str, bin: String, value: i64| -> Result<()> {
            w.write_record([q, unit, "", &bin, &value.to_string()])?;
            Ok(())
        };
        sum("sensitivity_samples", "", String::new(), i64::try_from(sums.samples).unwrap_or(i64::MAX))?;
        sum("sensitivity_incomplete", "", String::new(), i64::try_from(sums.incomplete).unwrap_or(i64::MAX))?;
        let n_outputs = SensitivitySums::n_outputs(&a.shape);
        let n_groups = sums.groups.len();
        let output_name = |o: usize| if o == 0 { "total".to_owned() } else { format!("zone{o}") };
        for (u, id) in view.unit_ids.iter().enumerate() {
            for o in 0..n_outputs {
                let slot = u * n_outputs + o;
                for (i, name) in BASE_SLOT_NAMES.iter().enumerate() {
                    sum(
                        "sensitivity_base",
                        id,
                        format!("{}:{name}", output_name(o)),
                        sums.base[slot * BASE_SLOT_NAMES.len() + i],
                    )?;
                }
                for (g, group) in sums.groups.iter().enumerate() {
                    let at = (slot * n_groups + g) * GROUP_SLOT_NAMES.len();
                    for (i, name) in GROUP_SLOT_NAMES.iter().enumerate() {
                        sum("sensitivity_group", id, format!("{}:{group}:{name}", output_name(o)), sums.group[at + i])?;
                    }
                }
            }
        }
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("writing CSV: {e}"))?;
    Ok(String::from_utf8(bytes)?)
}

/// How well the sweep's zone probabilities are known: "zone probabilities
/// ±0.0123 (target ±0.01)".
pub fn convergence(status: &SweepStatus) -> String {
    let mut text = if status.samples_done == 0 {
        "zone probabilities not known yet".to_owned()
    } else {
        format!("zone probabilities ±{:.4}", status.largest_half_width)
    };
    if let Some(target) = status.until_ci {
        let _ = write!(text, " (target ±{target})");
    }
    text
}

/// A date and time in UTC from seconds since 1970.
fn utc(seconds: u64) -> String {
    i64::try_from(seconds)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .map(|t| {
            let (date, clock) = (t.date(), t.time());
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
                date.year(),
                u8::from(date.month()),
                date.day(),
                clock.hour(),
                clock.minute(),
                clock.second()
            )
        })
        .unwrap_or_else(|| format!("{seconds} s after 1970"))
}

/// "revision N", or that it was not recorded.
pub fn chain_revision(chain: u32) -> String {
    if chain == 0 { "revision not recorded".to_owned() } else { format!("revision {chain}") }
}

/// `show`: where a sweep came from and who ran it, a line per fact.
pub fn provenance(s: &SweepStatus) -> String {
    let p = &s.provenance;
    let known = |text: &str| if text.is_empty() { "not recorded".to_owned() } else { text.to_owned() };
    let mut out = String::new();
    let mut line = |key: &str, value: String| {
        let _ = writeln!(out, "{key:<18} {value}");
    };
    line("sweep", s.id.to_string());
    line("state", if s.reason.is_empty() { s.state.to_string() } else { format!("{}: {}", s.state, s.reason) });
    line("zonesweep", known(&p.version));
    line("model chain", chain_revision(p.chain));
    line("dataset", format!("{}: {} units, sha256 {}", known(&p.dataset_name), s.units, s.dataset_hash));
    line("configuration", format!("sha256 {} (`show --config` prints it)", s.config_hash));
    line("spec", format!("sha256 {} (`show --spec` prints it)", s.spec_hash));
    line("seed", s.seed.to_string());
    let samples = match s.samples_max {
        Some(max) => format!("{} of at most {max}", s.samples),
        None => s.samples.to_string(),
    };
    line("samples", format!("{samples} ({} done, {} failed) in {} jobs", s.samples_done, s.samples_failed, s.jobs));
    line("convergence", convergence(s));
    line("submitted", p.submitted_unix.map_or("not recorded".to_owned(), utc));
    line("ended", p.ended_unix.map_or(if s.state.is_final() { "not recorded" } else { "running" }.to_owned(), utc));
    if let (Some(start), Some(end)) = (p.submitted_unix, p.ended_unix) {
        line("wall time", format!("{} s from submission to its last end", end.saturating_sub(start)));
    }
    let mut workers = p.workers.join(", ");
    if p.more_workers > 0 {
        let _ = write!(workers, ", and {} results from further workers", p.more_workers);
    }
    line("workers", if workers.is_empty() { "none recorded".to_owned() } else { workers });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cut_by_display_width_never_inside_a_character() {
        assert_eq!(truncate_to_width("Alpha County", 24), "Alpha County");
        // Two columns per CJK character: 5 characters and the ellipsis fill 11 of 12.
        let cut = truncate_to_width("北京市朝阳区望京街道", 12);
        assert_eq!(cut, "北京市朝阳…");
        assert!(display_width(&cut) <= 12);
        assert_eq!(truncate_to_width("abcdef", 4), "abc…");
        assert_eq!(display_width("北京"), 4);
    }

    #[test]
    fn table_columns_line_up_by_display_width() {
        let mut table = Table::new(vec![left("name"), right("P(modal)")]);
        table.push(vec!["北京市".to_owned(), "0.950".to_owned()]);
        table.push(vec!["Alpha".to_owned(), "0.500".to_owned()]);
        let text = table.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        // Every line ends at the same display column.
        let widths: Vec<usize> = lines.iter().map(|l| display_width(l)).collect();
        assert!(widths.iter().all(|&w| w == widths[0]), "{text}");
        assert!(lines[1].starts_with("北京市  ") && lines[2].starts_with("Alpha   "), "{text}");
    }
}

/// Which output `sensitivity` reports: the total score, or the indicator of
/// each unit's modal zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SensitivityOutput {
    Total,
    Zone,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SensitivityFormat {
    Table,
    Csv,
    Json,
}

#[derive(Serialize)]
struct SensitivityUnit<'a> {
    id: &'a str,
    name: &'a str,
    #[serde(flatten)]
    analysis: OutputSensitivity,
}

#[derive(Serialize)]
struct SensitivityExport<'a> {
    sweep: &'a str,
    /// Base samples in the sums, and those left out because B or an A_B run failed.
    samples: u64,
    incomplete: u64,
    groups: &'a [String],
    units: Vec<SensitivityUnit<'a>>,
}

fn index_cells(index: Option<Index>) -> [String; 3] {
    match index {
        Some(i) => [format!("{:.3}", i.estimate), format!("{:.3}", i.low), format!("{:.3}", i.high)],
        None => ["-".to_owned(), "-".to_owned(), "-".to_owned()],
    }
}

fn output_label(output: Output) -> String {
    match output {
        Output::Total => "total".to_owned(),
        Output::Zone(z) => format!("zone {z}"),
    }
}

/// `sensitivity`: per unit, the groups ranked by total index with their
/// first-order and total indices and 95 % intervals.
pub fn sensitivity_report(
    view: &SweepView,
    unit: Option<&str>,
    output: SensitivityOutput,
    format: SensitivityFormat,
) -> Result<String> {
    let a = &view.aggregate;
    let Some(sums) = &a.sensitivity else {
        anyhow::bail!(
            "sweep {} has no sensitivity design; add `sensitivity = {{ method = \"saltelli\" }}` to its spec and run it again",
            view.status.id
        );
    };
    let units = select_units(view, &unit.map(str::to_owned).into_iter().collect::<Vec<_>>())?;
    let analyses: Vec<(usize, OutputSensitivity)> = units
        .iter()
        .map(|&u| {
            let which = match output {
                SensitivityOutput::Total => Output::Total,
                SensitivityOutput::Zone => Output::Zone(a.robustness(u, None, DEFAULT_ROBUST_THRESHOLD).modal_zone),
            };
            (u, sums.analyse(&a.shape, u, which))
        })
        .collect();
    let name = |u: usize| view.unit_names.get(u).map_or("", String::as_str);
    match format {
        SensitivityFormat::Json => {
            let export = SensitivityExport {
                sweep: view.status.id.as_str(),
                samples: sums.samples,
                incomplete: sums.incomplete,
                groups: &sums.groups,
                units: analyses
                    .into_iter()
                    .map(|(u, analysis)| SensitivityUnit { id: &view.unit_ids[u], name: name(u), analysis })
                    .collect(),
            };
            Ok(serde_json::to_string_pretty(&export)? + "\n")
        }
        SensitivityFormat::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record([
                "unit", "name", "output", "samples", "mean", "variance", "rank", "group", "s1", "s1_low", "s1_high",
                "st", "st_low", "st_high",
            ])?;
            for (u, analysis) in &analyses {
                for (rank, g) in analysis.groups.iter().enumerate() {
                    let mut record = vec![
                        view.unit_ids[*u].clone(),
                        name(*u).to_owned(),
                        output_label(analysis.output),
                        analysis.samples.to_string(),
                        analysis.mean.to_string(),
                        analysis.variance.to_string(),
                        (rank + 1).to_string(),
                        g.group.clone(),
                    ];
                    for index in [g.first, g.total] {
                        match index {
                            Some(i) => record.extend([i.estimate, i.low, i.high].map(|x| x.to_string())),
                            None => record.extend(["", "", ""].map(str::to_owned)),
                        }
                    }
                    w.write_record(&record)?;
                }
            }
            Ok(String::from_utf8(w.into_inner()?)?)
        }
        SensitivityFormat::Table => {
            let mut out = format!(
                "sweep {}: group sensitivity of the {}, {} base samples{} ({} groups, {} chain runs each)\n\
                 S1: first-order index (Saltelli 2010), ST: total index (Jansen 1999), with 95 % intervals\n",
                view.status.id,
                match output {
                    SensitivityOutput::Total => "total score",
                    SensitivityOutput::Zone => "modal-zone indicator",
                },
                sums.samples,
                if sums.incomplete > 0 {
                    format!(" ({} more left out: a B or A_B run failed)", sums.incomplete)
                } else {
                    String::new()
                },
                sums.groups.len(),
                2 + sums.groups.len()
            );
            let width = sums.groups.iter().map(|g| g.chars().count()).max().unwrap_or(5).max(5);
            let _ = writeln!(
                out,
                "{:<10} {:<7} {:>9} {:>4} {:<width$} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}",
                "unit", "output", "variance", "rank", "group", "S1", "S1 low", "S1 high", "ST", "ST low", "ST high"
            );
            for (u, analysis) in &analyses {
                for (rank, g) in analysis.groups.iter().enumerate() {
                    let [s, s_low, s_high] = index_cells(g.first);
                    let [t, t_low, t_high] = index_cells(g.total);
                    let _ = writeln!(
                        out,
                        "{:<10} {:<7} {:>9.4} {:>4} {:<width$} {s:>7} {s_low:>7} {s_high:>7} {t:>7} {t_low:>7} {t_high:>7}",
                        view.unit_ids[*u],
                        output_label(analysis.output),
                        analysis.variance,
                        rank + 1,
                        g.group,
                    );
                }
            }
            Ok(out)
        }
    }
}
