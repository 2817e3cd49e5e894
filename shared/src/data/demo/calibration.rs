//! The targets the demonstration dataset is calibrated to: figures of Huo et
//! al. (2025) for the Qinba Mountain region, each with the range the
//! synthetic demo must land in, checked by running the nominal chain
//! (`evaluate` with the default configuration) on a dataset.
//!
//! Used by `shared/tests/demo_calibration.rs` (every target on the committed
//! demo) and `shared/examples/calibrate_demo.rs` (the search that found the
//! generator's parameters).

use std::fmt::Write as _;

use crate::data::dataset::Dataset;
use crate::data::fields::Field;
use crate::error::ChainError;
use crate::model::chain::{self, Detail, Parameters};
use crate::model::config::{Config, Scenario};
use crate::model::indices::IndexKey;
use crate::model::projection::DriverStats;

/// One calibration target.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// What is measured.
    pub name: &'static str,
    /// The paper's figure (or the paper's description when it gives no number).
    pub paper: &'static str,
    /// The allowed range, inclusive; infinite ends for one-sided targets.
    pub low: f64,
    pub high: f64,
    /// The demo's value.
    pub value: f64,
    /// Decimals to print the value and range with.
    pub decimals: usize,
}

impl Target {
    /// Whether the value lies in the allowed range.
    pub fn met(&self) -> bool {
        self.low <= self.value && self.value <= self.high
    }

    /// How far the value lies outside the range, in units of the range's
    /// width (of the finite end's magnitude, at least 1, for one-sided
    /// ranges); 0 when met, infinite when the value is not a number.
    pub fn distance(&self) -> f64 {
        if self.value.is_nan() {
            return f64::INFINITY;
        }
        let scale = if self.low.is_finite() && self.high.is_finite() {
            let width = self.high - self.low;
            if width > 0.0 { width } else { 1.0 }
        } else {
            let end = if self.low.is_finite() { self.low } else { self.high };
            end.abs().max(1.0)
        };
        if self.value < self.low {
            (self.low - self.value) / scale
        } else if self.value > self.high {
            (self.value - self.high) / scale
        } else {
            0.0
        }
    }

    /// The allowed range as text.
    pub fn range(&self) -> String {
        let d = self.decimals;
        match (self.low.is_finite(), self.high.is_finite()) {
            (true, true) => format!("{:.d$} – {:.d$}", self.low, self.high),
            (true, false) => format!("≥ {:.d$}", self.low),
            (false, true) => format!("≤ {:.d$}", self.high),
            (false, false) => "any".to_owned(),
        }
    }
}

/// The sum of the targets' distances (0 when every target is met).
pub fn total_distance(targets: &[Target]) -> f64 {
    targets.iter().map(Target::distance).sum()
}

/// The targets as a Markdown table: target, paper, allowed, demo, met.
pub fn table(targets: &[Target]) -> String {
    let mut out = String::from("| target | paper | allowed | demo | met? |\n|---|---|---|---|---|\n");
    for t in targets {
        let d = t.decimals;
        let met = if t.met() { "yes".to_owned() } else { format!("**no** (off by {:.2} × range)", t.distance()) };
        let _ = writeln!(out, "| {} | {} | {} | {:.d$} | {met} |", t.name, t.paper, t.range(), t.value);
    }
    out
}

/// The paper's zone sizes, zone 1 first.
pub const PAPER_ZONE_SIZES: [usize; 5] = [10, 33, 19, 14, 5];

/// Median of a list (the mean of the middle two for an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 }
}

/// Every target, measured on `dataset` with the nominal chain of the default
/// configuration (what `zonesweep evaluate --json` computes).
pub fn targets(dataset: &Dataset) -> Result<Vec<Target>, ChainError> {
    let config = Config::default();
    let parameters = Parameters::nominal(&config);
    let result = chain::run(dataset, &config, &parameters, Detail::Full)?;
    let (n_units, n_years) = (dataset.n_units(), dataset.n_years());
    let years = dataset.years();
    let last = n_years - 1;
    let base_year = result.base_year;
    let milestone = config.scenarios.milestone;
    let interval = config.scenarios.interval_years as usize;

    let mut out = Vec::new();
    let mut push = |name, paper, low: f64, high: f64, value: f64, decimals| {
        out.push(Target { name, paper, low, high, value, decimals });
    };
    let inf = f64::INFINITY;

    // History of the region.
    let ce = result.indices.get(IndexKey::CE);
    let cs = result.indices.get(IndexKey::CS);
    let region = |values: &[f64], t: usize| (0..n_units).map(|u| values[u * n_years + t]).sum::<f64>();
    let ce_region: Vec<f64> = (0..n_years).map(|t| region(ce, t) / 1e6).collect();
    let cs_region: Vec<f64> = (0..n_years).map(|t| region(cs, t) / 1e6).collect();
    let (t_min, ce_min) = ce_region.iter().copied().enumerate().min_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
    let (t_max, ce_max) = ce_region.iter().copied().enumerate().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
    let total = |field: Field, t: usize| (0..n_units).map(|u| dataset.row(u, t)[field as usize]).sum::<f64>();
    let area = |t: usize| Field::LAND_USE.iter().map(|&f| total(f, t)).sum::<f64>();
    push("region CE 2000, Mt", "≈ 42", 38.0, 46.0, ce_region[0], 1);
    push("year of the lowest region CE", "2002", 2001.0, 2003.0, f64::from(years[t_min]), 0);
    push("lowest region CE, Mt", "34.7", 33.0, 37.0, ce_min, 1);
    push("year of the highest region CE", "2015", 2013.0, 2017.0, f64::from(years[t_max]), 0);
    push("highest region CE, Mt", "56.4", 53.0, 60.0, ce_max, 1);
    push("region CE 2020, Mt", "≈ 52", 50.0, 54.0, ce_region[last], 1);
    let cs_low = cs_region.iter().copied().fold(inf, f64::min);
    let cs_high = cs_region.iter().copied().fold(-inf, f64::max);
    push("lowest region CS 2000–2020, Mt", "90–95", 90.0, 95.0, cs_low, 1);
    push("highest region CS 2000–2020, Mt", "90–95", 90.0, 95.0, cs_high, 1);
    push("population 2020, million", "30", 29.0, 31.0, total(Field::Population, last) / 1e6, 2);
    push("GDP 2020, 10¹² CNY", "≈ 1.2", 1.1, 1.3, total(Field::Gdp, last) / 1e8, 3);
    push("land area, million hm²", "22.45", 22.44, 22.46, area(last) / 1e6, 3);
    push("forest 2020, % of the land", "≈ 53", 51.0, 55.0, 100.0 * total(Field::Forest, last) / area(last), 1);

    // The regional STIRPAT fit at K = 0.02 (Eq. 13).
    let fit = &result.stirpat.fit;
    let coefficients = [
        ("STIRPAT P elasticity", "0.016", -0.2, 0.5),
        ("STIRPAT W elasticity", "0.274", 0.15, 0.45),
        ("STIRPAT IS elasticity", "0.001", -0.2, 0.5),
        ("STIRPAT TI elasticity", "−0.079", -0.2, -1e-9),
        ("STIRPAT UR elasticity", "0.377", 0.15, 0.45),
        ("STIRPAT CEI elasticity", "0.304", 0.15, 0.45),
    ];
    for (j, (name, paper, low, high)) in coefficients.into_iter().enumerate() {
        push(name, paper, low, high, fit.coefficients[j], 3);
    }
    push("STIRPAT R²", "0.825", 0.75, 0.92, result.stirpat.r2, 3);
    push("largest ridge VIF at K = 0.02", "< 10", 0.0, 10.0 - 1e-9, fit.vif.iter().copied().fold(0.0, f64::max), 2);
    push("Welch t-test p, fitted vs observed CE", "0.898", 0.5, 1.0, result.stirpat.t_test_p.unwrap_or(f64::NAN), 3);
    let (_, standardized) = chain::ridge_trace(dataset, &config, &parameters)?;
    let (_, ols_vif) = standardized.solve(0.0)?;
    push("OLS VIF of P", "small", 0.0, 5.0, ols_vif[0], 1);
    push("OLS VIF of W", "hundreds", 100.0, 999.0, ols_vif[1], 1);
    push("OLS VIF of IS", "small", 0.0, 5.0, ols_vif[2], 1);
    push("OLS VIF of TI", "10–20", 10.0, 20.0, ols_vif[3], 1);
    push("OLS VIF of UR", "hundreds", 100.0, 999.0, ols_vif[4], 1);
    push("OLS VIF of CEI", "tens", 10.0, 99.0, ols_vif[5], 1);

    // Projections.
    let projections = &result.projections;
    let count = |s: Scenario, f: &dyn Fn(&crate::model::projection::UnitProjection) -> bool| {
        projections[s as usize].iter().filter(|p| f(p)).count() as f64
    };
    let region_ce = |s: Scenario, year: i32| -> f64 {
        let i = (year - base_year) as usize;
        projections[s as usize].iter().map(|p| p.ce[i]).sum::<f64>() / 1e6
    };
    let horizon = config.scenarios.horizon;
    push(
        "low-carbon: units peaked by 2030",
        "most units",
        64.0,
        78.0,
        count(Scenario::Low, &|p| p.peak_year.is_some_and(|y| y <= milestone)),
        0,
    );
    push("low-carbon: region CE 2060, Mt", "falling", 24.0, 37.0, region_ce(Scenario::Low, horizon), 1);
    let rising_years =
        ((base_year + 1)..=horizon).filter(|&y| region_ce(Scenario::Low, y) > region_ce(Scenario::Low, y - 1)).count();
    push("low-carbon: years 2021–2060 with rising region CE", "0 (falls steadily)", 0.0, 0.0, rising_years as f64, 0);
    push(
        "baseline: units rising, then peaking by 2030",
        "30",
        24.0,
        36.0,
        count(Scenario::Baseline, &|p| p.peak_year.is_some_and(|y| y > base_year && y <= milestone)),
        0,
    );
    push("baseline: units not neutral in 2060", "≈ 15", 10.0, 20.0, count(Scenario::Baseline, &|p| !p.neutral), 0);
    for (scenario, name_after, name_growth) in [
        (Scenario::Baseline, "baseline: region CE 2060 / 2030", "baseline: region CE 2060 / 2020"),
        (Scenario::High, "high-carbon: region CE 2060 / 2030", "high-carbon: region CE 2060 / 2020"),
    ] {
        let (ce_base, ce_milestone, ce_horizon) =
            (region_ce(scenario, base_year), region_ce(scenario, milestone), region_ce(scenario, horizon));
        push(name_after, "> 1 (rising)", 1.0 + 1e-9, inf, ce_horizon / ce_milestone, 2);
        push(name_growth, "≤ 4", 0.0, 4.0, ce_horizon / ce_base, 2);
    }

    // Units.
    let threshold = config.zoning.trend_threshold;
    let ce_trend = &result.trends[0];
    let rising = ce_trend.iter().filter(|t| t.mk.z > threshold).count();
    let falling = ce_trend.iter().filter(|t| t.mk.z < -threshold).count();
    push("units with a marked CE increase (Z > 1.66)", "55", 48.0, 62.0, rising as f64, 0);
    push("units with a marked CE decrease (Z < −1.66)", "24", 18.0, 30.0, falling as f64, 0);
    let mut stats: [Vec<DriverStats>; 4] = Default::default();
    for u in 0..n_units {
        let unit_series = |f: &dyn Fn(usize) -> f64| -> Vec<f64> { (0..n_years).map(f).collect() };
        let row = |t: usize| dataset.row(u, t);
        let i = |t: usize| u * n_years + t;
        let w = unit_series(&|t| row(t)[Field::Gdp as usize] / row(t)[Field::Population as usize]);
        let cei = unit_series(&|t| ce[i(t)] / row(t)[Field::Gdp as usize]);
        let ti = unit_series(&|t| row(t)[Field::Gdp as usize] / result.indices.energy_tce[i(t)]);
        let ur = unit_series(&|t| 100.0 * row(t)[Field::UrbanPopulation as usize] / row(t)[Field::Population as usize]);
        for (j, series) in [w, cei, ti, ur].iter().enumerate() {
            stats[j].push(DriverStats::of(series, interval));
        }
    }
    let med = |j: usize, f: &dyn Fn(&DriverStats) -> f64| median(stats[j].iter().map(f).collect());
    push("median unit growth of W, %/yr", "9–11", 9.0, 11.0, 100.0 * med(0, &|s| s.delta), 2);
    push("median unit growth of CEI, %/yr", "≈ −8", -9.5, -6.5, 100.0 * med(1, &|s| s.delta), 2);
    push("median unit growth of TI, %/yr", "≈ +8", 6.5, 9.5, 100.0 * med(2, &|s| s.delta), 2);
    push("median unit growth of UR, %/yr", "3–4.5", 3.0, 4.5, 100.0 * med(3, &|s| s.delta), 2);
    push("median unit UR 2020, %", "40–55", 40.0, 55.0, med(3, &|s| s.last), 1);
    push(
        "median spread of a unit's 5-year W rates, pp",
        "1–3",
        1.0,
        3.0,
        100.0 * med(0, &|s| s.max_delta - s.min_delta),
        2,
    );
    push(
        "median spread of a unit's 5-year CEI rates, pp",
        "2–5",
        2.0,
        5.0,
        100.0 * med(1, &|s| s.max_delta - s.min_delta),
        2,
    );
    let high_emitters = (0..n_units).filter(|&u| ce[u * n_years + last] > cs[u * n_years + last]).count();
    push("high emitters (CE > CS in 2020)", "≥ 15", 15.0, inf, high_emitters as f64, 0);

    // Zones.
    const ZONE_NAMES: [&str; 5] = ["zone 1 size", "zone 2 size", "zone 3 size", "zone 4 size", "zone 5 size"];
    const ZONE_PAPER: [&str; 5] = ["10", "33", "19", "14", "5"];
    for z in 0..5 {
        let size = result.zone.iter().filter(|&&zone| usize::from(zone) == z + 1).count();
        let paper = PAPER_ZONE_SIZES[z] as f64;
        push(ZONE_NAMES[z], ZONE_PAPER[z], paper - 4.0, paper + 4.0, size as f64, 0);
    }
    Ok(out)
}
