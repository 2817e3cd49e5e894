//! Reading a stored sweep for people: zone-membership tables, peaking-year
//! statistics and exports. Everything here works on domain values
//! ([`SweepStatus`], [`SweepResults`]), whether they came from a coordinator
//! or straight from a database file.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use serde::Serialize;
use zonesweep_proto::status::{SweepResults, SweepStatus};
use zonesweep_shared::model::config::Scenario;
use zonesweep_shared::model::zoning::{ScoreKey, ZONE_NAMES};
use zonesweep_shared::sweep::aggregate::{Aggregate, MIN_TOTAL};
use zonesweep_shared::sweep::sensitivity::{Index, Output, OutputSensitivity};

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

/// Zone-membership probabilities of one unit, zone 1 first.
fn zone_probabilities(a: &Aggregate, unit: usize) -> Vec<f64> {
    (1..=a.shape.n_zones).map(|z| a.zone_probability(unit, z)).collect()
}

/// The most probable zone (the lowest number on ties) and its probability.
fn modal_zone(probabilities: &[f64]) -> (usize, f64) {
    let mut best = (1, f64::NEG_INFINITY);
    for (z, p) in probabilities.iter().enumerate() {
        if *p > best.1 {
            best = (z + 1, *p);
        }
    }
    best
}

/// Peak-year statistics of one unit under one scenario.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Peaking {
    /// P(peak year ≤ the milestone, 2030).
    pub peaked_by_milestone: f64,
    /// P(T₀ < peak year ≤ the milestone): CE rises after the base year, then
    /// falls (the "hump").
    pub hump: f64,
    /// P(not peaked by the horizon, 2060).
    pub not_peaked: f64,
    /// Median, 5 % and 95 % peak year; `None` = not peaked by the horizon.
    pub median: Option<i32>,
    pub p05: Option<i32>,
    pub p95: Option<i32>,
}

pub fn peaking(a: &Aggregate, scenario: Scenario, unit: usize) -> Peaking {
    let counts = a.peak_histogram(scenario, unit);
    let n: u64 = counts.iter().sum();
    let base = a.shape.base_year;
    let quantile = |q: f64| -> Option<i32> {
        let rank = ((q * n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return (i + 1 < counts.len()).then_some(base + i as i32);
            }
        }
        None
    };
    let ratio = |c: u64| if n == 0 { f64::NAN } else { c as f64 / n as f64 };
    let peaks_in = |years: &dyn Fn(i32) -> bool| -> u64 {
        counts.iter().take(counts.len() - 1).enumerate().filter(|(i, _)| years(base + *i as i32)).map(|(_, c)| c).sum()
    };
    let by_milestone = peaks_in(&|y| y <= a.shape.milestone);
    let hump = peaks_in(&|y| y > base && y <= a.shape.milestone);
    Peaking {
        peaked_by_milestone: ratio(by_milestone),
        hump: ratio(hump),
        not_peaked: ratio(*counts.last().unwrap_or(&0)),
        median: quantile(0.5),
        p05: quantile(0.05),
        p95: quantile(0.95),
    }
}

fn year(y: Option<i32>) -> String {
    y.map_or("none".to_owned(), |y| y.to_string())
}

/// `zones`: per unit, the modal zone, its probability and all five.
pub fn zones_table(view: &SweepView) -> String {
    let a = &view.aggregate;
    let mut out = format!(
        "sweep {}: {} of {} samples succeeded\nzones: 1 {}, 2 {}, 3 {}, 4 {}, 5 {}\n",
        view.status.id,
        a.samples_ok,
        view.status.samples,
        ZONE_NAMES[0],
        ZONE_NAMES[1],
        ZONE_NAMES[2],
        ZONE_NAMES[3],
        ZONE_NAMES[4]
    );
    let _ = write!(out, "{:<10} {:<24} {:>5} {:>7}", "unit", "name", "modal", "P");
    for z in 1..=a.shape.n_zones {
        let _ = write!(out, " {:>7}", format!("P(z{z})"));
    }
    out.push('\n');
    for (u, id) in view.unit_ids.iter().enumerate() {
        let probabilities = zone_probabilities(a, u);
        let (zone, p) = modal_zone(&probabilities);
        let name: String = view.unit_names.get(u).map_or("", String::as_str).chars().take(24).collect();
        let _ = write!(out, "{id:<10} {name:<24} {zone:>5} {p:>7.3}");
        for p in probabilities {
            let _ = write!(out, " {p:>7.3}");
        }
        out.push('\n');
    }
    out
}

/// `peaking`: per unit and scenario, P(peak ≤ milestone), the median and
/// 5–95 % peak year, and P(not peaked by the horizon).
pub fn peaking_table(view: &SweepView, unit: Option<&str>, scenario: Option<Scenario>) -> Result<String> {
    let a = &view.aggregate;
    let units: Vec<usize> = match unit {
        Some(id) => vec![view.unit_index(id).with_context(|| format!("no unit `{id}` in sweep {}", view.status.id))?],
        None => (0..view.unit_ids.len()).collect(),
    };
    let scenarios: Vec<Scenario> = scenario.map_or(Scenario::ALL.to_vec(), |s| vec![s]);
    let mut out = format!(
        "{:<10} {:<9} {:>9} {:>7} {:>11} {:>10}\n",
        "unit",
        "scenario",
        format!("P(≤{})", a.shape.milestone),
        "median",
        "5–95 %",
        format!("P(none≤{})", a.shape.horizon)
    );
    for &u in &units {
        for &s in &scenarios {
            let p = peaking(a, s, u);
            let _ = writeln!(
                out,
                "{:<10} {:<9} {:>9.3} {:>7} {:>11} {:>10.3}",
                view.unit_ids[u],
                s.key(),
                p.peaked_by_milestone,
                year(p.median),
                format!("{}–{}", year(p.p05), year(p.p95)),
                p.not_peaked
            );
        }
    }
    Ok(out)
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
    for (u, id) in view.unit_ids.iter().enumerate() {
        let (zone, p) = modal_zone(&zone_probabilities(a, u));
        let by: Vec<String> =
            Scenario::ALL.iter().map(|&s| format!("{:.2}", peaking(a, s, u).peaked_by_milestone)).collect();
        let base = peaking(a, Scenario::Baseline, u);
        let _ = writeln!(
            out,
            "{id:<10} {zone:>5} {p:>6.2}   {:>20}   {:>14}",
            by.join("/"),
            format!("{} ({}–{})", year(base.median), year(base.p05), year(base.p95))
        );
    }
    let mut counts = vec![0usize; a.shape.n_zones];
    for u in 0..view.unit_ids.len() {
        counts[modal_zone(&zone_probabilities(a, u)).0 - 1] += 1;
    }
    let _ = writeln!(
        out,
        "units by modal zone (1 = {} … {} = {}): {:?}",
        ZONE_NAMES[0],
        a.shape.n_zones,
        ZONE_NAMES[a.shape.n_zones.min(5) - 1],
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
    let expected = |f: &dyn Fn(&Peaking) -> f64, s: Scenario| (0..n_units).map(|u| f(&peaking(a, s, u))).sum::<f64>();
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
            format!("{:.1}{}", expected(&|p| p.peaked_by_milestone, Scenario::ALL[s]), bracket(papers_by_milestone[s]))
        }),
    );
    out += &row(
        "  of which rising first (T₀ < peak)".to_owned(),
        std::array::from_fn(|s| {
            format!("{:.1}{}", expected(&|p| p.hump, Scenario::ALL[s]), bracket(["–", "30", "–"][s]))
        }),
    );
    out += &row(
        format!("units not neutral by {horizon}"),
        std::array::from_fn(|s| format!("{:.1}", not_neutral(Scenario::ALL[s]))),
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
    if paper {
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
            for (bin, count) in &hist.bins {
                row("regional_ce", &year, scenario.key(), format!("log1.01:{bin}"), *count)?;
            }
        }
    }
    let names = ["P", "W", "IS", "TI", "UR", "CEI"];
    for (name, hist) in names.iter().zip(&a.coefficients) {
        for (bin, count) in &hist.bins {
            row(&format!("coefficient_{name}"), "", "", format!("{}:{bin}", hist.width), *count)?;
        }
    }
    for (name, hist) in [("r2", &a.r2), ("k", &a.k)] {
        for (bin, count) in &hist.bins {
            row(name, "", "", format!("{}:{bin}", hist.width), *count)?;
        }
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("writing CSV: {e}"))?;
    Ok(String::from_utf8(bytes)?)
}

#[cfg(test)]
mod tests {
    use zonesweep_shared::model::config::Config;
    use zonesweep_shared::sweep::aggregate::Shape;

    use super::*;

    /// An aggregate of one unit whose baseline peak years are `years`
    /// (`None`: not peaked by the horizon), 2020–2060.
    fn with_peaks(years: &[Option<i32>]) -> Aggregate {
        let shape = Shape::new(1, 2020, &Config::default());
        let mut a = Aggregate::empty(shape);
        a.samples_ok = years.len() as u64;
        let last = shape.n_peak_bins() - 1;
        for year in years {
            let bin = year.map_or(last, |y| (y - 2020) as usize);
            a.peak_counts.row_mut(Scenario::Baseline as usize)[bin] += 1;
        }
        a
    }

    /// The q-quantile of a sorted list the way the report defines it: the
    /// smallest value with at least ⌈q·n⌉ values at or below it.
    fn quantile(sorted: &[Option<i32>], q: f64) -> Option<i32> {
        let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
        sorted[rank - 1]
    }

    #[test]
    fn peaking_statistics_equal_those_of_the_sample_list() {
        // 10 × 2020, 20 × 2025, 30 × 2035, 40 × never; `None` sorts last.
        let mut years: Vec<Option<i32>> = Vec::new();
        for (year, n) in [(Some(2020), 10), (Some(2025), 20), (Some(2035), 30), (None, 40)] {
            years.extend(std::iter::repeat_n(year, n));
        }
        let a = with_peaks(&years);
        let p = peaking(&a, Scenario::Baseline, 0);
        let share = |f: &dyn Fn(Option<i32>) -> bool| years.iter().filter(|y| f(**y)).count() as f64 / 100.0;
        assert_eq!(p.peaked_by_milestone, share(&|y| y.is_some_and(|y| y <= 2030)));
        assert_eq!(p.hump, share(&|y| y.is_some_and(|y| y > 2020 && y <= 2030)));
        assert_eq!(p.not_peaked, share(&|y| y.is_none()));
        let mut sorted = years.clone();
        sorted.sort_by_key(|y| y.unwrap_or(i32::MAX));
        assert_eq!(
            (p.p05, p.median, p.p95),
            (quantile(&sorted, 0.05), quantile(&sorted, 0.5), quantile(&sorted, 0.95))
        );
        assert_eq!((p.p05, p.median, p.p95), (Some(2020), Some(2035), None));
        // Another scenario of the same unit has no samples counted.
        assert!(peaking(&a, Scenario::Low, 0).peaked_by_milestone.is_nan());
    }

    #[test]
    fn the_modal_zone_is_the_most_probable_and_the_lowest_on_ties() {
        assert_eq!(modal_zone(&[0.1, 0.5, 0.4]), (2, 0.5));
        assert_eq!(modal_zone(&[0.2, 0.4, 0.4]), (2, 0.4));
        assert_eq!(modal_zone(&[1.0, 0.0, 0.0, 0.0, 0.0]), (1, 1.0));
        let shape = Shape::new(2, 2020, &Config::default());
        let mut a = Aggregate::empty(shape);
        a.samples_ok = 4;
        a.zone_counts.row_mut(1).copy_from_slice(&[0, 1, 3, 0, 0]);
        assert_eq!(modal_zone(&zone_probabilities(&a, 1)), (3, 0.75));
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
    let units: Vec<usize> = match unit {
        Some(id) => vec![view.unit_index(id).with_context(|| format!("no unit `{id}` in sweep {}", view.status.id))?],
        None => (0..view.unit_ids.len()).collect(),
    };
    let analyses: Vec<(usize, OutputSensitivity)> = units
        .iter()
        .map(|&u| {
            let which = match output {
                SensitivityOutput::Total => Output::Total,
                SensitivityOutput::Zone => Output::Zone(modal_zone(&zone_probabilities(a, u)).0),
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
