//! The seeded demonstration dataset.
//!
//! **Everything this module produces is synthetic.** The units `QB01`,
//! `QB02`, … ("Synthetic county 01", …) are not real counties of the Qinba
//! Mountain region, and no value is an observation: they are drawn from
//! distributions tuned so that the model chain, run on the default dataset,
//! gives figures like those Huo et al. (2025) published for the region — so
//! the chain has realistic, heterogeneous input and a sweep has something to
//! show. Never cite a number computed from it as a result about the region.
//!
//! **What it is calibrated to.** For the default `generate(DEMO_UNITS,
//! DEMO_SEED)` (81 units, 2000–2020) the nominal chain (`zonesweep evaluate`,
//! the default configuration) meets the targets of [`calibration`], each a
//! range around a figure of the paper: the region's history (CE about 42 Mt
//! in 2000, lowest in 2001–2003 at about 33–37 Mt, highest in 2013–2017 at
//! 53–60 Mt, 50–54 Mt in 2020; CS 90–95 Mt; 30 million people and about
//! 1.2 × 10¹² CNY of GDP in 2020; 22.45 million hm², about 53 % forest); the
//! regional STIRPAT fit at K = 0.02 in sign and size of the paper's Eq. 13
//! (W, UR and CEI elasticities 0.15–0.45, TI negative, P and IS small, R²
//! 0.75–0.92, ridge VIFs below 10, OLS VIFs of the paper's order); the
//! scenario outcomes (most units peaked by 2030 under low-carbon with the
//! region's CE falling steadily, about 30 baseline units rising and then
//! peaking by 2030, about 15 not neutral in 2060); the units' Mann-Kendall
//! CE trends (about 55 marked increases, 24 marked decreases), their growth
//! rates of W, CEI, TI and UR, at least 15 high emitters; and Jenks zone
//! sizes near 10 / 33 / 19 / 14 / 5. `shared/tests/demo_calibration.rs`
//! asserts every target (and names any the search could not meet);
//! `shared/examples/calibrate_demo.rs` is the search that found
//! [`DemoParameters::CALIBRATED`].
//!
//! **How it is made.** Units come in four kinds — a few industrial high
//! emitters burning much raw coal, coke and electricity, many forested low
//! emitters, agricultural units and mixed units — with lognormal sizes. Land
//! use, agriculture, livestock and crops follow per-unit trends with noise.
//! The resident population has no trend to speak of but steps in 2005, 2010
//! and 2015 (census-like re-counts); GDP per person grows along a common
//! path with each unit's own rate and noise; urbanization rises from each
//! unit's first to its last level. Energy emissions are what the region's CE
//! path (a dip to 2002, a rise to 2015, a fall to 2020, with yearly noise)
//! leaves after every unit's other emissions: a third of the units ("falling"
//! units: old plants and mines closing) follow their own path — an early
//! drop, a trend, and cuts after 2015 — and the others share out the rest by
//! weights proportional to population, larger for industrial units and for
//! units with little forest, each with its own trend and noise (the
//! calibrated weights happen not to depend on population density). The energy is split over the carriers
//! by a mix drifting from coal towards gas and power, whose low-carbon
//! carriers' shares carry a common yearly noise, so energy use in tce moves
//! apart from CE.
//!
//! With another number of units or seed the distributions stay the same and
//! the totals scale with the number of units (land area, 2020 population,
//! 2020 GDP and the region's CE path are the 81-unit figures times
//! `n_units / 81`); the output is valid and depends only on `(n_units,
//! seed)`, but only the default is calibrated.
//!
//! Values are rounded so the CSV stays compact: areas (hm²) to 0.01, masses
//! (t) to 0.1, natural gas (10⁴ m³), electricity (10⁴ kWh) and GDP
//! (10⁴ CNY) to 0.01, machinery (kW), heat (GJ), livestock (head) and
//! persons to integers. Each unit's land-use classes sum to its (fixed)
//! total area; `unused` takes the rounding residue.
//!
//! [`units_geojson`] gives the units synthetic polygons ([`geometry`]):
//! Voronoi cells of their points clipped to an outline of the region.
//!
//! The generator uses the platform's `ln`, `exp` and `powf`, whose last bit
//! may differ between machines (see `numerics::math`); values are rounded
//! to the units above before they are written, so a generated dataset is
//! the same on every machine unless a value lies within a bit of a rounding
//! boundary. It keeps them (rather than `numerics::math`'s) because the
//! committed demonstration dataset and its calibration were made with them.
#![allow(clippy::disallowed_methods)]

pub mod calibration;
pub mod geometry;

pub use geometry::units_geojson;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::data::dataset::{Dataset, DatasetError, Unit};
use crate::data::fields::{Field, N_FIELDS, Row};
use crate::model::coefficients::{Coefficients, ENERGY_COEFFICIENTS};
use crate::model::indices::{self, IndexKey};

/// Seed of the demonstration dataset.
pub const DEMO_SEED: u64 = 2025;
/// Number of units of the demonstration dataset (as in the paper).
pub const DEMO_UNITS: usize = 81;
/// First and last year of the demonstration panel.
pub const FIRST_YEAR: i32 = 2000;
pub const LAST_YEAR: i32 = 2020;

const N_YEARS: usize = (LAST_YEAR - FIRST_YEAR + 1) as usize;

/// Region totals for 81 units; scaled by `n_units / 81`.
const REGION_AREA: f64 = 22_450_000.0; // hm²
const REGION_POPULATION_LAST: f64 = 30_000_000.0; // persons in LAST_YEAR
const REGION_GDP_LAST: f64 = 1.2e8; // 10⁴ CNY in LAST_YEAR

/// Defines [`DemoParameters`]: each parameter with its calibrated value and
/// the range a calibration search may explore.
macro_rules! demo_parameters {
    ($($(#[doc = $doc:literal])* $name:ident = $value:expr, [$low:expr, $high:expr];)*) => {
        /// The knobs of the generator that the calibration tunes (see
        /// [`calibration`] and `shared/examples/calibrate_demo.rs`). Rates
        /// are per year, shares are fractions, `*_sd` and `*_sigma` are
        /// standard deviations of logarithms unless said otherwise.
        #[derive(Clone, Debug, PartialEq)]
        pub struct DemoParameters {
            $($(#[doc = $doc])* pub $name: f64,)*
        }

        impl DemoParameters {
            /// The values the committed demonstration dataset uses.
            pub const CALIBRATED: DemoParameters = DemoParameters { $($name: $value,)* };
            /// The parameter names, in field order.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($name)),*];
            /// The range a search may explore, per parameter.
            pub const RANGES: &'static [(f64, f64)] = &[$(($low, $high)),*];

            /// The `i`-th parameter (field order).
            pub fn get(&self, i: usize) -> f64 {
                [$(self.$name),*][i]
            }

            /// Set the `i`-th parameter (field order).
            pub fn set(&mut self, i: usize, value: f64) {
                let fields = [$(&mut self.$name),*];
                if let Some(field) = fields.into_iter().nth(i) {
                    *field = value;
                }
            }
        }

        impl Default for DemoParameters {
            fn default() -> Self {
                DemoParameters::CALIBRATED
            }
        }
    };
}

demo_parameters! {
    /// Region CE in 2000, million t (for 81 units).
    ce_first = 42.9392239, [38.0, 46.0];
    /// Region CE in 2002, the lowest year, million t.
    ce_low = 34.1602307, [32.0, 37.0];
    /// Region CE in 2015, the highest year, million t.
    ce_peak = 56.7511579, [53.0, 60.0];
    /// Region CE in 2020, million t.
    ce_last = 51.6757665, [49.0, 55.0];
    /// Shape of the 2002–2015 rise of ln CE: (progress)^shape.
    ce_rise_shape = 0.8524027, [0.5, 2.0];
    /// Year-to-year noise of the region's CE shared by all units.
    ce_common_noise = 0.0287704, [0.0, 0.04];
    /// Share of units whose energy emissions fall over the period.
    dec_share = 0.3615900, [0.18, 0.42];
    /// Share of the falling units in the region's energy emissions of 2000.
    dec_energy_share = 0.2384359, [0.15, 0.7];
    /// ln change of the falling units' energy emissions over 2000–2002
    /// (closures of small plants and mines).
    dec_early_drop = -0.2308914, [-0.6, 0.0];
    /// ln change of the falling units' energy emissions over 2015–2020
    /// (capacity cuts).
    dec_late_drop = -0.0892944, [-0.8, 0.0];
    /// Mean trend (per year) of the falling units' energy emissions.
    dec_tilt = -0.0200241, [-0.1, 0.02];
    /// Standard deviation of the falling units' tilts.
    dec_tilt_sd = 0.0215350, [0.002, 0.03];
    /// Mean relative trend of the other units' energy emissions (they share
    /// what the falling units leave of the region's).
    inc_tilt = 0.0400000, [-0.01, 0.04];
    /// Standard deviation of the other units' tilts.
    tilt_sd = 0.0123039, [0.002, 0.03];
    /// Year-to-year noise of a unit's energy emissions.
    ce_unit_noise = 0.0425731, [0.005, 0.07];
    /// Spread of the units' energy-emission weights.
    ce_weight_sigma = 0.9329044, [0.2, 1.2];
    /// Largest factor of a unit's own energy-emission weight (the lognormal
    /// draw is capped at it).
    ce_weight_cap = 10.0000000, [1.5, 10.0];
    /// Power of the population density in the energy-emission weight per person.
    weight_density_power = 0.0000000, [0.0, 2.0];
    /// Power of the non-forest share of the land in the energy-emission weight
    /// per person (units with little forest emit more).
    weight_forest_power = 1.9268744, [0.0, 5.0];
    /// Share of industrial units (coal, coke and power heavy).
    industrial_share = 0.0725000, [0.05, 0.25];
    /// Energy-emission weight per person of industrial units (mixed = 1).
    industrial_weight = 1.2819578, [1.0, 15.0];
    /// Energy-emission weight per person of forested units (mixed = 1).
    forested_weight = 0.0500000, [0.05, 1.2];
    /// Growth of GDP per person, 2001–2010.
    w_growth_early = 0.0900181, [0.08, 0.14];
    /// Growth of GDP per person, 2016–2020 (linear in between).
    w_growth_late = 0.0759988, [0.06, 0.12];
    /// Extra growth of GDP per person peaking in 2010 (a hat 2005–2015).
    w_boom = 0.0116175, [0.0, 0.05];
    /// Year-to-year noise of a unit's growth of GDP per person.
    w_noise = 0.0029889, [0.0, 0.012];
    /// Standard deviation of the units' GDP-per-person growth.
    w_unit_sd = 0.0186248, [0.0, 0.03];
    /// Median urbanization in 2020 (mixed units; others offset by kind).
    ur_last = 0.5600000, [0.38, 0.56];
    /// Standard deviation of urbanization in 2020 (absolute).
    ur_last_sd = 0.1200000, [0.02, 0.12];
    /// Mean growth of urbanization over 2000–2020 (of the rate).
    ur_growth = 0.0435688, [0.025, 0.05];
    /// Standard deviation of the units' urbanization growth.
    ur_growth_sd = 0.0084192, [0.0, 0.015];
    /// Shape of urbanization's rise: level = first + gain·τ^shape.
    ur_shape = 1.0591668, [0.6, 1.6];
    /// Mean relative change of a unit's forest over 2000–2020.
    forest_gain = 0.0033198, [-0.02, 0.04];
    /// Crop yields relative to the default 2.3 t per sown hm².
    crop_yield_level = 1.0748652, [0.8, 1.4];
    /// Mean yearly growth of crop yields (crop sinks).
    crop_yield_growth = 0.0110122, [-0.005, 0.02];
    /// The year (as a fraction of 2000–2020) the secondary share turns down.
    is_turn = 0.5019380, [0.3, 0.8];
    /// Year-to-year noise of the secondary share shared by all units (absolute).
    is_common_noise = 0.0138850, [0.0, 0.03];
    /// Region-wide step of the resident population in 2005 (a sample survey).
    pop_jump_2005 = 0.0474723, [-0.08, 0.08];
    /// Region-wide step of the resident population in 2010 (the census).
    pop_jump_2010 = 0.0049312, [-0.08, 0.08];
    /// Region-wide step of the resident population in 2015 (a sample survey).
    pop_jump_2015 = 0.0351736, [-0.08, 0.08];
    /// Standard deviation of a unit's own population steps.
    pop_jump_sd = 0.0295976, [0.0, 0.03];
    /// Standard deviation of the units' population trends.
    pop_trend_sd = 0.0071358, [0.0, 0.008];
    /// Year-to-year noise, shared by all units, of the shares of gas, LNG,
    /// LPG and heat in energy carbon (energy use moves apart from CE).
    mix_common_sd = 1.9956620, [0.0, 3.0];
    /// The same, each unit's own.
    mix_unit_sd = 0.0000000, [0.0, 0.3];
}

/// Energy carriers: (field, tce per physical unit, t C per tce) at the
/// default coefficients; used to turn a carbon amount into a physical one.
fn energy() -> [(Field, f64, f64); 11] {
    let defaults = Coefficients::default();
    std::array::from_fn(|e| {
        let (tce, carbon) = ENERGY_COEFFICIENTS[e];
        (Field::ENERGY[e], defaults.get(tce), defaults.get(carbon))
    })
}

/// Shares of energy carbon by carrier (order of [`Field::ENERGY`]) in the first and
/// the last year, before each unit's own random tilt.
const MIX_COMMON_FIRST: [f64; 11] = [0.60, 0.03, 0.07, 0.003, 0.10, 0.015, 0.03, 0.002, 0.01, 0.13, 0.005];
const MIX_COMMON_LAST: [f64; 11] = [0.42, 0.025, 0.12, 0.004, 0.11, 0.008, 0.09, 0.01, 0.012, 0.19, 0.01];
const MIX_INDUSTRIAL_FIRST: [f64; 11] = [0.55, 0.18, 0.03, 0.001, 0.05, 0.01, 0.02, 0.001, 0.004, 0.15, 0.004];
const MIX_INDUSTRIAL_LAST: [f64; 11] = [0.48, 0.16, 0.04, 0.001, 0.05, 0.005, 0.04, 0.005, 0.004, 0.20, 0.015];

/// The carriers whose shares move with the mix noise (low carbon per tce).
const MIX_NOISY: [Field; 4] = [Field::NaturalGas, Field::Lng, Field::Lpg, Field::Heat];

/// Crop production shares by mass (order of `Field::CROPS`).
const CROP_MIX: [f64; 9] = [0.20, 0.20, 0.30, 0.005, 0.02, 0.05, 0.12, 0.02, 0.085];

const PROVINCES: [&str; 6] = ["Shaanxi", "Sichuan", "Chongqing", "Gansu", "Henan", "Hubei"];

/// Year indices of the population steps (2005, 2010, 2015).
const POPULATION_STEPS: [usize; 3] = [5, 10, 15];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Coal, coke and power heavy; a few per region.
    Industrial,
    /// Mountain forest, few people, low emissions.
    Forested,
    /// Valley farmland.
    Agricultural,
    /// Everything in between, including the growing towns.
    Mixed,
}

/// Synthetic county-level units `QB01`… (`QB0001`… when `n_units > 99`) with
/// plausible, heterogeneous data for 2000–2020. Synthetic, not real counties:
/// see the module documentation. Deterministic for `(n_units, seed)`;
/// `n_units` must be at least 1 (0 gives the validator's "no units" error).
pub fn generate(n_units: usize, seed: u64) -> Result<Dataset, DatasetError> {
    generate_with(n_units, seed, &DemoParameters::CALIBRATED)
}

/// Paths shared by every unit: the region's CE, the growth of GDP per
/// person, and the year-to-year mix noise.
struct Common {
    /// Region CE per year (t, for 81 units).
    ce: [f64; N_YEARS],
    /// Growth of ln(GDP per person) into each year (index 0 unused).
    w_growth: [f64; N_YEARS],
    /// Shared log-noise of the low-carbon carriers' shares per year.
    mix: [f64; N_YEARS],
    /// Shared noise of the secondary share per year.
    secondary: [f64; N_YEARS],
}

impl Common {
    fn draw(rng: &mut ChaCha8Rng, p: &DemoParameters) -> Common {
        let (low_year, peak_year) = (2usize, 15usize);
        let ln = |mt: f64| (mt * 1e6).ln();
        let mut ce = [0.0; N_YEARS];
        for (k, value) in ce.iter_mut().enumerate() {
            let log = if k <= low_year {
                ln(p.ce_first) + (ln(p.ce_low) - ln(p.ce_first)) * k as f64 / low_year as f64
            } else if k <= peak_year {
                let progress = (k - low_year) as f64 / (peak_year - low_year) as f64;
                ln(p.ce_low) + (ln(p.ce_peak) - ln(p.ce_low)) * progress.powf(p.ce_rise_shape)
            } else {
                let progress = (k - peak_year) as f64 / (N_YEARS - 1 - peak_year) as f64;
                ln(p.ce_peak) + (ln(p.ce_last) - ln(p.ce_peak)) * progress
            };
            *value = (log + p.ce_common_noise * gauss(rng)).exp();
        }
        let w_growth = std::array::from_fn(|k| {
            let kf = k as f64;
            let slow = ((kf - 10.0) / 5.0).clamp(0.0, 1.0);
            let boom = (1.0 - (kf - 10.0).abs() / 5.0).max(0.0);
            p.w_growth_early + (p.w_growth_late - p.w_growth_early) * slow + p.w_boom * boom
        });
        let mix = std::array::from_fn(|_| p.mix_common_sd * gauss(rng));
        let secondary = std::array::from_fn(|_| p.is_common_noise * gauss(rng));
        Common { ce, w_growth, mix, secondary }
    }
}

/// [`generate`] with other generator parameters (for the calibration).
pub fn generate_with(n_units: usize, seed: u64, p: &DemoParameters) -> Result<Dataset, DatasetError> {
    let years: Vec<i32> = (FIRST_YEAR..=LAST_YEAR).collect();
    if n_units == 0 {
        return Dataset::from_parts(Vec::new(), years, Vec::new());
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let scale = n_units as f64 / DEMO_UNITS as f64;

    // Kinds: fixed proportions, shuffled over the units; likewise which
    // units' energy emissions fall.
    let count = |share: f64| (n_units as f64 * share).round() as usize;
    let n_industrial = count(p.industrial_share.clamp(0.0, 0.5));
    let n_forested = count(30.0 / 81.0).min(n_units - n_industrial);
    let n_agricultural = count(20.0 / 81.0).min(n_units - n_industrial - n_forested);
    let mut kinds = Vec::with_capacity(n_units);
    kinds.extend(std::iter::repeat_n(Kind::Industrial, n_industrial));
    kinds.extend(std::iter::repeat_n(Kind::Forested, n_forested));
    kinds.extend(std::iter::repeat_n(Kind::Agricultural, n_agricultural));
    kinds.resize(n_units, Kind::Mixed);
    kinds.shuffle(&mut rng);
    let mut falling = vec![true; count(p.dec_share.clamp(0.0, 1.0)).min(n_units)];
    falling.resize(n_units, false);
    falling.shuffle(&mut rng);

    let width = if n_units > 99 { 4 } else { 2 };
    let mut units = Vec::with_capacity(n_units);
    let mut specs = Vec::with_capacity(n_units);
    for (u, &kind) in kinds.iter().enumerate() {
        let lon = round_to(uniform(&mut rng, 104.0, 113.0), 3);
        let lat = round_to(uniform(&mut rng, 31.0, 35.0), 3);
        units.push(Unit {
            id: format!("QB{:0width$}", u + 1),
            name: format!("Synthetic county {:0width$}", u + 1),
            province: province(lon, lat).to_owned(),
            lon: Some(lon),
            lat: Some(lat),
        });
        specs.push(UnitSpec::draw(&mut rng, kind, lat, falling[u], p));
    }

    // Normalize the sizes to the region totals.
    let area_factor = REGION_AREA * scale / specs.iter().map(|s| s.area).sum::<f64>();
    let population_factor =
        REGION_POPULATION_LAST * scale / specs.iter().map(|s| s.area * area_factor * s.density).sum::<f64>();
    for spec in &mut specs {
        spec.area = round_to(spec.area * area_factor, 2);
        spec.population_last = spec.area * spec.density * population_factor;
    }

    let common = Common::draw(&mut rng, p);
    let mut series: Vec<UnitSeries> = specs.iter().map(|spec| spec.series(&mut rng, &common, p)).collect();

    // GDP: GDP per person times people, normalized to the region's last year.
    let gdp_last: f64 = series.iter().map(|s| s.gdp[N_YEARS - 1]).sum();
    let gdp_factor = REGION_GDP_LAST * scale / gdp_last;
    for s in &mut series {
        for k in 0..N_YEARS {
            let gdp = s.gdp[k] * gdp_factor;
            s.rows[k][Field::Gdp as usize] = round_to(gdp, 2).max(0.01);
            s.rows[k][Field::SecondaryGdp as usize] = round_to(gdp * s.secondary[k], 2).max(0.01);
        }
    }

    // Energy: the region's CE less every unit's other emissions. The falling
    // units follow their own paths (a share of the region's first year, an
    // early drop and their trends); the other units share out the rest by
    // their weights.
    let other_rows: Vec<Row> = series.iter().flat_map(|s| s.rows.iter().copied()).collect();
    let other = indices::compute(&other_rows, N_YEARS, &Coefficients::default());
    let other_ce = other.get(IndexKey::CE);
    let energy_region: Vec<f64> = (0..N_YEARS)
        .map(|k| {
            let region = common.ce[k] * scale;
            let other_total: f64 = (0..n_units).map(|u| other_ce[u * N_YEARS + k]).sum();
            (region - other_total).max(0.2 * region)
        })
        .collect();
    let any_rising = specs.iter().any(|s| !s.falling);
    let own_path = |u: usize| specs[u].falling && any_rising;
    let top = series.iter().map(|s| s.log_weight[0]).fold(f64::NEG_INFINITY, f64::max);
    let falling_first: f64 = (0..n_units).filter(|&u| own_path(u)).map(|u| (series[u].log_weight[0] - top).exp()).sum();
    let falling_factor = if falling_first > 0.0 { p.dec_energy_share * energy_region[0] / falling_first } else { 0.0 };
    for k in 0..N_YEARS {
        let drop = p.dec_early_drop * (k.min(2) as f64 / 2.0) + p.dec_late_drop * (k.saturating_sub(15) as f64 / 5.0);
        let mut energy = vec![0.0; n_units];
        for u in (0..n_units).filter(|&u| own_path(u)) {
            energy[u] = falling_factor * (series[u].log_weight[k] - top + drop).exp();
        }
        let falling_total: f64 = energy.iter().sum();
        let rest = (energy_region[k] - falling_total).max(0.1 * energy_region[k]);
        let rest_top =
            (0..n_units).filter(|&u| !own_path(u)).map(|u| series[u].log_weight[k]).fold(f64::NEG_INFINITY, f64::max);
        let weights: Vec<f64> =
            (0..n_units).map(|u| if own_path(u) { 0.0 } else { (series[u].log_weight[k] - rest_top).exp() }).collect();
        let sum: f64 = weights.iter().sum();
        for u in 0..n_units {
            if !own_path(u) {
                energy[u] = rest * weights[u] / sum;
            }
        }
        for (u, s) in series.iter_mut().enumerate() {
            specs[u].put_energy(&mut rng, &mut s.rows[k], k, energy[u], common.mix[k], p);
        }
    }

    let rows = series.into_iter().flat_map(|s| s.rows).collect();
    Dataset::from_parts(units, years, rows)
}

/// A province consistent with the rough geography of the region.
fn province(lon: f64, lat: f64) -> &'static str {
    let [shaanxi, sichuan, chongqing, gansu, henan, hubei] = PROVINCES;
    if lon < 106.0 {
        if lat > 33.0 { gansu } else { sichuan }
    } else if lon < 108.5 {
        if lat > 32.7 {
            shaanxi
        } else if lon < 107.3 {
            sichuan
        } else {
            chongqing
        }
    } else if lon < 111.0 {
        if lat > 32.5 { shaanxi } else { hubei }
    } else if lat > 33.0 {
        henan
    } else {
        hubei
    }
}

/// One unit's rows before GDP and energy are filled in, and what fills them.
struct UnitSeries {
    rows: Vec<Row>,
    /// GDP per year before the region's normalization.
    gdp: [f64; N_YEARS],
    /// Secondary share of GDP per year.
    secondary: [f64; N_YEARS],
    /// ln of the unit's energy-emission weight per year.
    log_weight: [f64; N_YEARS],
}

/// One unit's drawn parameters.
struct UnitSpec {
    area: f64,
    // Land shares in the first year and changes over the period (hm², as
    // shares of the area until the area is normalized).
    forest: f64,
    shrub: f64,
    water: f64,
    urban: f64,
    crop: f64,
    grass: f64,
    urban_gain: f64,
    forest_change: f64,
    shrub_change: f64,
    // People and economy.
    density: f64,
    population_last: f64,
    population_trend: f64,
    /// ln steps of the population at [`POPULATION_STEPS`].
    population_steps: [f64; 3],
    urbanization_last: f64,
    urbanization_growth: f64,
    /// GDP per person in the last year, before normalization.
    wealth: f64,
    /// The unit's own addition to the growth of GDP per person.
    w_growth: f64,
    secondary_first: f64,
    secondary_up: f64,
    secondary_down: f64,
    // Energy.
    /// ln of the energy-emission weight in the first year, per person of the last.
    log_weight: f64,
    /// Relative trend of the energy-emission weight, per year.
    tilt: f64,
    /// Whether the unit's energy emissions follow their own falling path.
    falling: bool,
    mix_first: [f64; 11],
    mix_last: [f64; 11],
    lng_start: usize,
    // Agriculture.
    cropping_index: f64,
    fertilizer_rate: f64,
    pesticide_rate: f64,
    film_rate: f64,
    irrigated_share: f64,
    machinery_rate: f64,
    pigs_per_rural: f64,
    cattle_rate: f64,
    sheep_rate: f64,
    poultry_per_rural: f64,
    crop_yield: f64,
    crop_yield_trend: f64,
    crop_mix: [f64; 9],
}

impl UnitSpec {
    fn draw(rng: &mut ChaCha8Rng, kind: Kind, lat: f64, falling: bool, p: &DemoParameters) -> UnitSpec {
        use Kind::*;
        let size = match kind {
            Forested => 1.25,
            Mixed => 1.0,
            Agricultural => 0.85,
            Industrial => 0.8,
        };
        let area = size * lognormal(rng, 1.0, 0.5);

        // Land shares of the first year.
        let forest = match kind {
            Forested => normal(rng, 0.63, 0.07).clamp(0.52, 0.86),
            Mixed => normal(rng, 0.47, 0.08).clamp(0.30, 0.66),
            Agricultural => normal(rng, 0.35, 0.08).clamp(0.18, 0.50),
            Industrial => normal(rng, 0.42, 0.08).clamp(0.25, 0.58),
        };
        let water = lognormal(rng, 0.011, 0.5).clamp(0.003, 0.04);
        let urban_median = match kind {
            Forested => 0.005,
            Mixed => 0.009,
            Agricultural => 0.011,
            Industrial => 0.016,
        };
        let urban = lognormal(rng, urban_median, 0.4).clamp(0.002, 0.05);
        let unused = lognormal(rng, 0.005, 0.6).clamp(0.001, 0.03);
        let rest = 1.0 - forest - water - urban - unused;
        let crop_weight = match kind {
            Forested => uniform(rng, 0.38, 0.55),
            Mixed | Industrial => uniform(rng, 0.45, 0.60),
            Agricultural => uniform(rng, 0.55, 0.70),
        };
        let shrub_weight = uniform(rng, 0.08, 0.18);
        let crop = rest * crop_weight;
        let shrub = rest * shrub_weight;
        let grass = rest - crop - shrub;

        // Land change over the whole period, as shares of the area.
        let urban_gain = urban
            * match kind {
                Forested | Agricultural => uniform(rng, 0.5, 1.0),
                Mixed | Industrial => uniform(rng, 0.8, 1.4),
            };
        let mut forest_change = forest * normal(rng, p.forest_gain, 0.025).clamp(-0.04, 0.07);
        // Crop and grass land lose at most 35 % over the period.
        let loss = urban_gain + forest_change.max(0.0);
        let limit = 0.35 * (crop + grass);
        if loss > limit {
            forest_change -= loss - limit;
        }
        let shrub_change = shrub * normal(rng, 0.01, 0.03).clamp(-0.05, 0.08);

        // People: no trend to speak of, but steps where a census or sample
        // survey re-counted the residents.
        let density = lognormal(rng, 1.0, 0.4) * (0.3 + 2.5 * crop + 20.0 * urban);
        let population_trend = normal(rng, 0.0, p.pop_trend_sd);
        let common_steps = [p.pop_jump_2005, p.pop_jump_2010, p.pop_jump_2015];
        let population_steps = common_steps.map(|step| normal(rng, step, p.pop_jump_sd));
        let urbanization_offset = match kind {
            Forested => -0.06,
            Agricultural => -0.03,
            Mixed => 0.0,
            Industrial => 0.06,
        };
        let urbanization_last = normal(rng, p.ur_last + urbanization_offset, p.ur_last_sd).clamp(0.2, 0.8);
        let urbanization_growth = normal(rng, p.ur_growth, p.ur_growth_sd).max(0.005);

        // Economy.
        let wealth_median = match kind {
            Forested => 0.85,
            Agricultural => 0.95,
            Mixed => 1.1,
            Industrial => 1.8,
        };
        let wealth = wealth_median * lognormal(rng, 1.0, 0.3);
        let w_growth = normal(rng, 0.0, p.w_unit_sd);
        let secondary_first = match kind {
            Forested => uniform(rng, 0.30, 0.40),
            Agricultural => uniform(rng, 0.30, 0.42),
            Mixed => uniform(rng, 0.36, 0.48),
            Industrial => uniform(rng, 0.46, 0.54),
        };
        let secondary_up = uniform(rng, 0.02, 0.08);
        let secondary_down = uniform(rng, 0.03, 0.10);

        // Energy: a weight per person (the region's energy emissions are
        // shared out by it) with its own trend.
        let kind_weight = match kind {
            Forested => p.forested_weight,
            Agricultural => 0.8,
            Mixed => 1.0,
            Industrial => p.industrial_weight,
        };
        let log_weight = (kind_weight * lognormal(rng, 1.0, p.ce_weight_sigma).min(p.ce_weight_cap)).ln()
            + p.weight_density_power * density.ln()
            + p.weight_forest_power * (1.0 - forest).ln();
        let tilt =
            normal(rng, if falling { p.dec_tilt } else { p.inc_tilt }, if falling { p.dec_tilt_sd } else { p.tilt_sd });
        let (base_first, base_last) = if kind == Industrial {
            (MIX_INDUSTRIAL_FIRST, MIX_INDUSTRIAL_LAST)
        } else {
            (MIX_COMMON_FIRST, MIX_COMMON_LAST)
        };
        let mut mix_first = [0.0; 11];
        let mut mix_last = [0.0; 11];
        for c in 0..11 {
            let tilt = lognormal(rng, 1.0, 0.3);
            mix_first[c] = base_first[c] * tilt;
            mix_last[c] = base_last[c] * tilt;
        }
        let lng_start = rng.random_range(3..16);

        // Agriculture.
        let cropping_index = uniform(rng, 1.1, 1.5);
        let fertilizer_rate = lognormal(rng, 0.17, 0.25);
        let pesticide_rate = lognormal(rng, 0.004, 0.3);
        let film_rate = lognormal(rng, 0.004, 0.4);
        let irrigated_share = match kind {
            Agricultural => uniform(rng, 0.25, 0.45),
            _ => uniform(rng, 0.12, 0.35),
        };
        let machinery_rate = lognormal(rng, 1.8, 0.3);
        let pigs_per_rural = lognormal(rng, 0.45, 0.3);
        let cattle_rate = lognormal(rng, 0.35, 0.4);
        let sheep_rate = lognormal(rng, 0.5, 0.6);
        let poultry_per_rural = lognormal(rng, 2.5, 0.4);
        let crop_yield = lognormal(rng, 2.3 * p.crop_yield_level, 0.15);
        let crop_yield_trend = normal(rng, p.crop_yield_growth, 0.012);
        let south = lat < 32.5;
        let mut crop_mix = [0.0; 9];
        for (c, share) in CROP_MIX.iter().enumerate() {
            let regional = match Field::CROPS[c] {
                Field::Rice => {
                    if south {
                        2.0
                    } else {
                        0.5
                    }
                }
                Field::Wheat => {
                    if south {
                        0.6
                    } else {
                        1.6
                    }
                }
                _ => 1.0,
            };
            crop_mix[c] = share * regional * lognormal(rng, 1.0, 0.5);
        }
        let total: f64 = crop_mix.iter().sum();
        crop_mix.iter_mut().for_each(|s| *s /= total);

        UnitSpec {
            area,
            forest,
            shrub,
            water,
            urban,
            crop,
            grass,
            urban_gain,
            forest_change,
            shrub_change,
            density,
            population_last: 0.0,
            population_trend,
            population_steps,
            urbanization_last,
            urbanization_growth,
            wealth,
            w_growth,
            secondary_first,
            secondary_up,
            secondary_down,
            log_weight,
            tilt,
            falling,
            mix_first,
            mix_last,
            lng_start,
            cropping_index,
            fertilizer_rate,
            pesticide_rate,
            film_rate,
            irrigated_share,
            machinery_rate,
            pigs_per_rural,
            cattle_rate,
            sheep_rate,
            poultry_per_rural,
            crop_yield,
            crop_yield_trend,
            crop_mix,
        }
    }

    /// The unit's population in year index `k`, without noise: the last
    /// year's, with the trend and the steps taken back.
    fn population(&self, k: usize) -> f64 {
        let mut log = self.population_trend * (k as f64 - (N_YEARS - 1) as f64);
        for (step, &at) in self.population_steps.iter().zip(&POPULATION_STEPS) {
            if k < at {
                log -= step;
            }
        }
        self.population_last * log.exp()
    }

    /// The unit's rows, first year to last, with GDP and energy left at 0,
    /// and what [`generate_with`] needs to fill them.
    fn series(&self, rng: &mut ChaCha8Rng, common: &Common, p: &DemoParameters) -> UnitSeries {
        let area = self.area;
        let span = (N_YEARS - 1) as f64;
        let urbanization_first = self.urbanization_last * (-span * self.urbanization_growth).exp();
        // ln GDP per person, a random walk around the common growth.
        let mut log_w = [0.0; N_YEARS];
        for k in 1..N_YEARS {
            log_w[k] = log_w[k - 1] + common.w_growth[k] + self.w_growth + p.w_noise * gauss(rng);
        }
        let mut series = UnitSeries {
            rows: Vec::with_capacity(N_YEARS),
            gdp: [0.0; N_YEARS],
            secondary: [0.0; N_YEARS],
            log_weight: [0.0; N_YEARS],
        };
        for k in 0..N_YEARS {
            let tau = k as f64 / span;
            let year = FIRST_YEAR + k as i32;
            let mut row = [0.0; N_FIELDS];

            // Land use: urban sprawl accelerates, afforestation (Grain for
            // Green) is front-loaded; both take cropland and grassland.
            let urban_gain = self.urban_gain * tau.powf(1.3);
            let forest_change = self.forest_change * (1.0 - (1.0 - tau).powf(1.8));
            let shrub_change = self.shrub_change * tau;
            let taken = urban_gain + forest_change;
            let crop_part = self.crop / (self.crop + self.grass);
            let crop = self.crop - crop_part * taken;
            let grass = self.grass - (1.0 - crop_part) * taken - shrub_change;
            let land = [
                (Field::Cropland, crop),
                (Field::Shrubland, self.shrub + shrub_change),
                (Field::Forest, self.forest + forest_change),
                (Field::Grassland, grass),
                (Field::Water, self.water),
                (Field::Urban, self.urban + urban_gain),
            ];
            let mut used = 0.0;
            for (field, share) in land {
                put(&mut row, field, share * area, 2);
                used += row[field as usize];
            }
            row[Field::Unused as usize] = round_to((area - used).max(0.001 * area), 2);
            let cropland = row[Field::Cropland as usize];
            let grassland = row[Field::Grassland as usize];

            // People.
            let population = (self.population(k) * (1.0 + 0.003 * gauss(rng))).round().max(1000.0);
            let urbanization = (urbanization_first
                + (self.urbanization_last - urbanization_first) * tau.powf(p.ur_shape)
                + 0.004 * gauss(rng))
            .clamp(0.05, 0.9);
            let urban_population = (population * urbanization).round().max(1.0);
            let rural = population - urban_population;
            row[Field::Population as usize] = population;
            row[Field::UrbanPopulation as usize] = urban_population;

            // Economy: GDP per person from the random walk; the secondary
            // share rises until 2011, then falls.
            series.gdp[k] = population * self.wealth * (log_w[k] - log_w[N_YEARS - 1]).exp();
            let turn = p.is_turn;
            series.secondary[k] = (self.secondary_first + self.secondary_up * (tau / turn).min(1.0)
                - self.secondary_down * ((tau - turn) / (1.0 - turn)).max(0.0)
                + common.secondary[k]
                + 0.005 * gauss(rng))
            .clamp(0.28, 0.56);

            // Energy emissions' weight: per person of the last year, with the
            // unit's trend and year-to-year noise.
            series.log_weight[k] =
                self.population_last.ln() + self.log_weight + self.tilt * k as f64 + p.ce_unit_noise * gauss(rng);

            // Agriculture: inputs per sown hectare rise until about 2015 and
            // then fall (the fertilizer and pesticide zero-growth actions).
            let sown = cropland * self.cropping_index * (0.02 * gauss(rng)).exp();
            let t = (year - FIRST_YEAR) as f64;
            // exp(up·t) until `peak`, then exp(−down) a year, with 3 % noise.
            fn rise_fall(rng: &mut ChaCha8Rng, t: f64, up: f64, down: f64, peak: f64) -> f64 {
                (up * t.min(peak) - down * (t - peak).max(0.0)).exp() * (0.03 * gauss(rng)).exp()
            }
            put(&mut row, Field::Sown, sown, 2);
            put(&mut row, Field::Fertilizer, sown * self.fertilizer_rate * rise_fall(rng, t, 0.025, 0.02, 15.0), 1);
            put(&mut row, Field::Pesticide, sown * self.pesticide_rate * rise_fall(rng, t, 0.03, 0.03, 14.0), 1);
            put(&mut row, Field::PlasticFilm, sown * self.film_rate * rise_fall(rng, t, 0.04, 0.01, 16.0), 1);
            put(
                &mut row,
                Field::Irrigated,
                cropland * self.irrigated_share * (1.0 + 0.005 * t) * (0.02 * gauss(rng)).exp(),
                2,
            );
            put(
                &mut row,
                Field::Machinery,
                cropland * self.machinery_rate * (0.045 * t).exp() * (0.03 * gauss(rng)).exp(),
                0,
            );

            // Livestock: pigs rise until 2014, fall after, and drop in
            // 2019–2020 (African swine fever); cattle decline slowly.
            let swine_fever = match year {
                2019 => 0.8,
                2020 => 0.85,
                _ => 1.0,
            };
            put(
                &mut row,
                Field::Pigs,
                rural * self.pigs_per_rural * rise_fall(rng, t, 0.015, 0.02, 14.0) * swine_fever,
                0,
            );
            put(
                &mut row,
                Field::Cattle,
                (grassland + 0.2 * cropland) * self.cattle_rate * rise_fall(rng, t, 0.0, 0.01, 0.0),
                0,
            );
            put(&mut row, Field::Sheep, grassland * self.sheep_rate * rise_fall(rng, t, 0.01, 0.0, 20.0), 0);
            put(&mut row, Field::Poultry, rural * self.poultry_per_rural * rise_fall(rng, t, 0.015, 0.0, 20.0), 0);

            // Crops: production per sown hectare changes by about +1 %/yr, with
            // weather noise shared by the unit's crops in a year.
            let weather = (0.05 * gauss(rng)).exp();
            let production = sown * self.crop_yield * (self.crop_yield_trend * t).exp() * weather;
            for (c, field) in Field::CROPS.iter().enumerate() {
                put(&mut row, *field, production * self.crop_mix[c] * (0.05 * gauss(rng)).exp(), 1);
            }
            series.rows.push(row);
        }
        series
    }

    /// Split `energy_carbon` (t C) of year index `k` over the carriers by a
    /// mix drifting from coal towards gas and power, with noise, and store
    /// the physical amounts.
    fn put_energy(
        &self,
        rng: &mut ChaCha8Rng,
        row: &mut Row,
        k: usize,
        energy_carbon: f64,
        common_mix: f64,
        p: &DemoParameters,
    ) {
        let tau = k as f64 / (N_YEARS - 1) as f64;
        let unit_mix = p.mix_unit_sd * gauss(rng);
        let mut mix = [0.0; 11];
        for c in 0..11 {
            let field = Field::ENERGY[c];
            if field == Field::Lng && k < self.lng_start {
                continue;
            }
            let share = self.mix_first[c] + (self.mix_last[c] - self.mix_first[c]) * tau;
            let noise = if MIX_NOISY.contains(&field) { common_mix + unit_mix } else { 0.0 };
            mix[c] = share * (0.04 * gauss(rng) + noise).exp();
        }
        let total: f64 = mix.iter().sum();
        for (c, &(field, tce, carbon)) in energy().iter().enumerate() {
            let physical = energy_carbon * mix[c] / total / (tce * carbon);
            let decimals = match field {
                Field::NaturalGas | Field::Electricity => 2,
                Field::Heat => 0,
                _ => 1,
            };
            put(row, field, physical, decimals);
        }
    }
}

/// Store `value` (floored at 0) rounded to `decimals` decimal places.
fn put(row: &mut Row, field: Field, value: f64, decimals: i32) {
    row[field as usize] = round_to(value.max(0.0), decimals);
}

/// `value` rounded to `decimals` decimal places. The result is the f64
/// nearest to that decimal, so it prints as that decimal.
fn round_to(value: f64, decimals: i32) -> f64 {
    if decimals <= 0 {
        return value.round();
    }
    let factor = 10f64.powi(decimals);
    (value * factor).round() / factor
}

fn gauss(rng: &mut ChaCha8Rng) -> f64 {
    rng.sample(StandardNormal)
}

fn normal(rng: &mut ChaCha8Rng, mean: f64, sd: f64) -> f64 {
    mean + sd * gauss(rng)
}

/// Lognormal with the given median and log-scale standard deviation.
fn lognormal(rng: &mut ChaCha8Rng, median: f64, sigma: f64) -> f64 {
    median * (sigma * gauss(rng)).exp()
}

fn uniform(rng: &mut ChaCha8Rng, low: f64, high: f64) -> f64 {
    rng.random_range(low..high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_for_a_seed() {
        let a = generate(12, 7).unwrap();
        let b = generate(12, 7).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_csv(), b.to_csv());
        let c = generate(12, 8).unwrap();
        assert_ne!(a.rows(), c.rows());
    }

    #[test]
    fn small_and_large_panels_validate() {
        let small = generate(3, DEMO_SEED).unwrap();
        assert_eq!(small.n_units(), 3);
        assert_eq!(small.years(), (2000..=2020).collect::<Vec<_>>());
        assert_eq!(small.units()[0].id, "QB01");
        let one = generate(1, DEMO_SEED).unwrap();
        assert_eq!(one.n_units(), 1);

        let large = generate(500, DEMO_SEED).unwrap();
        assert_eq!(large.n_units(), 500);
        assert_eq!(large.units()[0].id, "QB0001");
        assert_eq!(large.units()[499].id, "QB0500");
        assert_eq!(large.units()[499].name, "Synthetic county 0500");
        // Totals scale with the number of units.
        let area: f64 =
            (0..500).map(|u| Field::LAND_USE.iter().map(|f| large.row(u, 0)[*f as usize]).sum::<f64>()).sum();
        assert!((area / (REGION_AREA * 500.0 / 81.0) - 1.0).abs() < 1e-6, "{area}");

        assert!(generate(0, DEMO_SEED).is_err());
    }

    #[test]
    fn csv_round_trip_is_exact() {
        let d = generate(DEMO_UNITS, DEMO_SEED).unwrap();
        let (units, panel) = d.to_csv();
        assert_eq!(Dataset::from_csv(&units, &panel, None).unwrap(), d);
        assert!(d.fills().is_empty());
        for unit in d.units() {
            assert!(PROVINCES.contains(&unit.province.as_str()));
            assert!(unit.name.starts_with("Synthetic county "));
            let (lon, lat) = (unit.lon.unwrap(), unit.lat.unwrap());
            assert!((104.0..=113.0).contains(&lon) && (31.0..=35.0).contains(&lat));
        }
    }
}
