//! The seeded demonstration dataset.
//!
//! **Everything this module produces is synthetic.** The units `QB01`,
//! `QB02`, … ("Synthetic county 01", …) are not real counties of the Qinba
//! Mountain region, and no value is an observation: they are drawn from
//! distributions chosen so that the region as a whole looks plausible next to
//! the published figures of Huo et al. (2025) — so the model chain has
//! realistic, heterogeneous input to run on and a sweep has something to show.
//! Never cite a number computed from it as a result about the region.
//!
//! For the default `generate(DEMO_UNITS, DEMO_SEED)` (81 units, 2000–2020)
//! the region totals are calibrated as follows (with MODEL.md section 2 and
//! its default coefficients): carbon emissions CE rise from about 35 to about
//! 56 million t/yr, carbon sinks CS stay within about 85–95 million t/yr; the
//! resident population is about 30 million in 2020 with urbanization rising
//! from about 30 % to about 50 %; the land area is 22.45 million hm² with
//! forest about 53 % and cropland about 20–25 %, urban land growing; GDP
//! (current prices) grows by about 13 %/yr early and about 7.5 %/yr late;
//! the energy intensity falls. Units come in four kinds — a few (about one
//! in thirteen) industrial high emitters burning much raw coal, coke and
//! electricity, many forested low emitters, agricultural units and mixed
//! units — with lognormal sizes, so that trends, scenario peaks and zones
//! differ between units: some units' emissions peak between about 2006 and
//! 2016 and then fall, some level off, others keep rising; some units' sinks
//! shrink (forest loss, falling crop yields) while most grow.
//!
//! With another number of units the per-unit distributions stay the same and
//! the totals scale with the number of units (land area, 2020 population and
//! 2000 energy emissions are normalized to the 81-unit totals times
//! `n_units / 81`). The output depends only on `(n_units, seed)`.
//!
//! Values are rounded so the CSV stays compact: areas (hm²) to 0.01, masses
//! (t) to 0.1, natural gas (10⁴ m³), electricity (10⁴ kWh) and GDP
//! (10⁴ CNY) to 0.01, machinery (kW), heat (GJ), livestock (head) and
//! persons to integers. Each unit's land-use classes sum to its (fixed)
//! total area; `unused` takes the rounding residue.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::model::coefficients::{Coefficients, ENERGY_COEFFICIENTS};
use crate::data::dataset::{Dataset, DatasetError, Unit};
use crate::data::fields::{Field, N_FIELDS, Row};

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
const REGION_POPULATION_LAST: f64 = 29_800_000.0; // persons in LAST_YEAR
const REGION_ENERGY_CARBON_FIRST: f64 = 28_500_000.0; // t C from energy in FIRST_YEAR

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

/// Crop production shares by mass (order of `Field::CROPS`).
const CROP_MIX: [f64; 9] = [0.20, 0.20, 0.30, 0.005, 0.02, 0.05, 0.12, 0.02, 0.085];

const PROVINCES: [&str; 6] = ["Shaanxi", "Sichuan", "Chongqing", "Gansu", "Henan", "Hubei"];

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
    let years: Vec<i32> = (FIRST_YEAR..=LAST_YEAR).collect();
    if n_units == 0 {
        return Dataset::from_parts(Vec::new(), years, Vec::new());
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let scale = n_units as f64 / DEMO_UNITS as f64;

    // Kinds: fixed proportions, shuffled over the units.
    let count = |share: f64| (n_units as f64 * share).round() as usize;
    let n_industrial = count(6.0 / 81.0);
    let n_forested = count(30.0 / 81.0).min(n_units - n_industrial);
    let n_agricultural = count(20.0 / 81.0).min(n_units - n_industrial - n_forested);
    let mut kinds = Vec::with_capacity(n_units);
    kinds.extend(std::iter::repeat_n(Kind::Industrial, n_industrial));
    kinds.extend(std::iter::repeat_n(Kind::Forested, n_forested));
    kinds.extend(std::iter::repeat_n(Kind::Agricultural, n_agricultural));
    kinds.resize(n_units, Kind::Mixed);
    kinds.shuffle(&mut rng);

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
        specs.push(UnitSpec::draw(&mut rng, kind, lat));
    }

    // Normalize the sizes to the region totals.
    let area_factor = REGION_AREA * scale / specs.iter().map(|s| s.area).sum::<f64>();
    let population_factor =
        REGION_POPULATION_LAST * scale / specs.iter().map(|s| s.area * area_factor * s.density).sum::<f64>();
    for spec in &mut specs {
        spec.area = round_to(spec.area * area_factor, 2);
        spec.population_last = spec.area * spec.density * population_factor;
    }
    let energy_first: f64 = specs.iter().map(|s| s.population_first() * s.energy_per_person).sum();
    let energy_factor = REGION_ENERGY_CARBON_FIRST * scale / energy_first;
    for spec in &mut specs {
        spec.energy_per_person *= energy_factor;
    }

    let mut rows = Vec::with_capacity(n_units * N_YEARS);
    for spec in &specs {
        rows.extend(spec.series(&mut rng));
    }
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
    population_growth: f64,
    urbanization_first: f64,
    urbanization_gain: f64,
    gdp_per_person_first: f64,
    gdp_growth_early: f64,
    gdp_growth_late: f64,
    secondary_first: f64,
    secondary_up: f64,
    secondary_down: f64,
    // Energy.
    energy_per_person: f64,
    energy_growth_early: f64,
    energy_growth_late: f64,
    /// Year index from which growth moves (over three years) to the late rate.
    energy_turn: usize,
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
    fn draw(rng: &mut ChaCha8Rng, kind: Kind, lat: f64) -> UnitSpec {
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
        let mut forest_change = forest * normal(rng, 0.015, 0.025).clamp(-0.04, 0.07);
        // Crop and grass land lose at most 35 % over the period.
        let loss = urban_gain + forest_change.max(0.0);
        let limit = 0.35 * (crop + grass);
        if loss > limit {
            forest_change -= loss - limit;
        }
        let shrub_change = shrub * normal(rng, 0.01, 0.03).clamp(-0.05, 0.08);

        // People.
        let density = lognormal(rng, 1.0, 0.4) * (0.3 + 2.5 * crop + 20.0 * urban);
        let population_growth = match kind {
            Forested => normal(rng, -0.006, 0.004),
            Agricultural => normal(rng, -0.004, 0.004),
            Mixed => normal(rng, -0.001, 0.004),
            Industrial => normal(rng, 0.004, 0.004),
        };
        let urbanization_first = match kind {
            Forested => uniform(rng, 0.18, 0.30),
            Agricultural => uniform(rng, 0.20, 0.32),
            Mixed => uniform(rng, 0.24, 0.36),
            Industrial => uniform(rng, 0.32, 0.45),
        };
        let urbanization_gain = uniform(rng, 0.16, 0.28);

        // Economy.
        let wealth = match kind {
            Forested => 0.85,
            Agricultural => 0.95,
            Mixed => 1.1,
            Industrial => 1.8,
        };
        let gdp_per_person_first = 0.42 * wealth * lognormal(rng, 1.0, 0.3);
        let gdp_growth_early = normal(rng, 0.13, 0.015) + if kind == Industrial { 0.01 } else { 0.0 };
        let gdp_growth_late = normal(rng, 0.075, 0.012);
        let secondary_first = match kind {
            Forested => uniform(rng, 0.30, 0.40),
            Agricultural => uniform(rng, 0.30, 0.42),
            Mixed => uniform(rng, 0.36, 0.48),
            Industrial => uniform(rng, 0.46, 0.54),
        };
        let secondary_up = uniform(rng, 0.02, 0.08);
        let secondary_down = uniform(rng, 0.03, 0.10);

        // Energy: carbon per person in the first year (t C, normalized later),
        // and growth rates before and after the turn (see `series`).
        let energy_median = match kind {
            Forested => 0.45,
            Agricultural => 0.50,
            Mixed => 0.70,
            Industrial => 3.0,
        };
        // Richer units use more energy per person, except the industrial
        // ones, whose use is set by their plants.
        let energy_per_person = if kind == Industrial {
            energy_median * lognormal(rng, 1.0, 0.25).clamp(0.7, 1.4)
        } else {
            energy_median * lognormal(rng, 1.0, 0.3) * (gdp_per_person_first / 0.42).sqrt()
        };
        let (early, late) = match kind {
            Forested => ((0.030, 0.010), (0.012, 0.02)),
            Agricultural => ((0.035, 0.010), (0.017, 0.02)),
            Mixed => ((0.040, 0.010), (0.032, 0.02)),
            Industrial => ((0.050, 0.012), (0.007, 0.025)),
        };
        // Some units peak early (plant closures, coal replaced by hydropower
        // and gas) and fall for the rest of the period.
        let early_peak = match kind {
            Forested => 0.30,
            Agricultural => 0.20,
            Mixed => 0.10,
            Industrial => 0.35,
        };
        let (energy_growth_early, energy_growth_late, energy_turn) = if rng.random::<f64>() < early_peak {
            (normal(rng, 0.025, 0.012), normal(rng, -0.02, 0.02), rng.random_range(6..14))
        } else {
            (normal(rng, early.0, early.1), normal(rng, late.0, late.1), 11)
        };
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
        let crop_yield = lognormal(rng, 2.3, 0.15);
        let crop_yield_trend = normal(rng, 0.01, 0.012);
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
            population_growth,
            urbanization_first,
            urbanization_gain,
            gdp_per_person_first,
            gdp_growth_early,
            gdp_growth_late,
            secondary_first,
            secondary_up,
            secondary_down,
            energy_per_person,
            energy_growth_early,
            energy_growth_late,
            energy_turn,
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

    /// Population of the first year, without noise.
    fn population_first(&self) -> f64 {
        self.population_last * (self.population_growth * (FIRST_YEAR - LAST_YEAR) as f64).exp()
    }

    /// The unit's panel rows, first year to last.
    fn series(&self, rng: &mut ChaCha8Rng) -> Vec<Row> {
        let area = self.area;
        let span = (N_YEARS - 1) as f64;
        let mut gdp = self.population_first() * self.gdp_per_person_first;
        let mut log_energy = 0.0;
        let mut rows = Vec::with_capacity(N_YEARS);
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
            let population = (self.population_last
                * (self.population_growth * (year - LAST_YEAR) as f64).exp()
                * (1.0 + 0.003 * gauss(rng)))
            .round()
            .max(1000.0);
            let urbanization =
                (self.urbanization_first + self.urbanization_gain * tau + 0.004 * gauss(rng)).clamp(0.05, 0.9);
            let urban_population = (population * urbanization).round().max(1.0);
            let rural = population - urban_population;
            row[Field::Population as usize] = population;
            row[Field::UrbanPopulation as usize] = urban_population;

            // Economy: growth slows from the early to the late rate over
            // 2011–2015; the secondary share rises until 2011, then falls.
            if k > 0 {
                let slow = ((k as f64 - 10.0) / 5.0).clamp(0.0, 1.0);
                let rate = self.gdp_growth_early + (self.gdp_growth_late - self.gdp_growth_early) * slow;
                gdp *= 1.0 + rate + 0.008 * gauss(rng);
            }
            let turn = 0.55;
            let secondary = (self.secondary_first + self.secondary_up * (tau / turn).min(1.0)
                - self.secondary_down * ((tau - turn) / (1.0 - turn)).max(0.0)
                + 0.005 * gauss(rng))
            .clamp(0.28, 0.56);
            let gdp_rounded = round_to(gdp, 2).max(0.01);
            row[Field::Gdp as usize] = gdp_rounded;
            row[Field::SecondaryGdp as usize] = round_to(gdp * secondary, 2).max(0.01);

            // Energy: carbon grows at the early rate until the turn (2011,
            // earlier for early peakers) and at the late rate three years on, with year-to-year noise, split over the
            // carriers by a mix drifting from coal towards gas and power.
            if k > 0 {
                let slow = ((k as f64 - self.energy_turn as f64) / 3.0).clamp(0.0, 1.0);
                log_energy += self.energy_growth_early + (self.energy_growth_late - self.energy_growth_early) * slow;
            }
            let energy_carbon =
                self.population_first() * self.energy_per_person * (log_energy + 0.03 * gauss(rng)).exp();
            let mut mix = [0.0; 11];
            for c in 0..11 {
                if Field::ENERGY[c] == Field::Lng && k < self.lng_start {
                    continue;
                }
                let share = self.mix_first[c] + (self.mix_last[c] - self.mix_first[c]) * tau;
                mix[c] = share * (0.04 * gauss(rng)).exp();
            }
            let total: f64 = mix.iter().sum();
            for (c, &(field, tce, carbon)) in energy().iter().enumerate() {
                let physical = energy_carbon * mix[c] / total / (tce * carbon);
                let decimals = match field {
                    Field::NaturalGas | Field::Electricity => 2,
                    Field::Heat => 0,
                    _ => 1,
                };
                put(&mut row, field, physical, decimals);
            }

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
            rows.push(row);
        }
        rows
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

    /// CE and CS of one row, straight from MODEL.md section 2 with its
    /// default coefficients (to be replaced by `crate::model::indices`).
    fn ce_cs(row: &Row) -> (f64, f64) {
        let v = |f: Field| row[f as usize];
        let ce_crop = 0.86 * v(Field::Fertilizer)
            + 4.93 * v(Field::Pesticide)
            + 5.18 * v(Field::PlasticFilm)
            + 0.266 * v(Field::Irrigated)
            + 0.02 * v(Field::Sown)
            + 1.81e-4 * v(Field::Machinery);
        let ce_urban = energy().iter().map(|&(f, tce, c)| v(f) * tce * c).sum::<f64>() + 0.079 * v(Field::Population);
        let ce_livestock = v(Field::Pigs) * (0.08 + 0.001 + 0.005)
            + v(Field::Cattle) * (0.79 + 0.005 + 0.003)
            + v(Field::Sheep) * (0.02 + 0.005 + 0.0005)
            + v(Field::Poultry) * (0.00001 + 0.001 + 0.00002);
        let crops = [
            (Field::Rice, 0.45, 0.12, 0.414),
            (Field::Wheat, 0.40, 0.12, 0.485),
            (Field::Maize, 0.40, 0.13, 0.471),
            (Field::Sorghum, 0.35, 0.13, 0.450),
            (Field::OtherCereal, 0.40, 0.12, 0.450),
            (Field::Beans, 0.35, 0.13, 0.450),
            (Field::Tubers, 0.70, 0.70, 0.423),
            (Field::Peanut, 0.43, 0.10, 0.450),
            (Field::Rapeseed, 0.25, 0.10, 0.450),
        ];
        let cs_crop: f64 = crops.iter().map(|&(f, rho, w, vv)| v(f) * (1.0 - w) / rho * vv).sum();
        let cs_land = 3.98 * v(Field::Shrubland)
            + 5.77 * v(Field::Forest)
            + 0.021 * v(Field::Grassland)
            + 0.298 * v(Field::Water);
        (ce_crop + ce_urban + ce_livestock, cs_crop + cs_land)
    }

    fn sum_over_units(d: &Dataset, t: usize, f: impl Fn(&Row) -> f64) -> f64 {
        (0..d.n_units()).map(|u| f(d.row(u, t))).sum()
    }

    /// Theil-Sen slope of a short series.
    fn sen(xs: &[f64]) -> f64 {
        let mut slopes = Vec::new();
        for j in 0..xs.len() {
            for k in 0..j {
                slopes.push((xs[j] - xs[k]) / (j - k) as f64);
            }
        }
        slopes.sort_by(f64::total_cmp);
        let n = slopes.len();
        if n % 2 == 1 { slopes[n / 2] } else { (slopes[n / 2 - 1] + slopes[n / 2]) / 2.0 }
    }

    /// Mann-Kendall Z without tie correction (the values are continuous).
    fn mk_z(xs: &[f64]) -> f64 {
        let n = xs.len();
        let mut s = 0.0;
        for j in 0..n {
            for k in 0..j {
                s += (xs[j] - xs[k]).signum() * f64::from(u8::from(xs[j] != xs[k]));
            }
        }
        let var = (n * (n - 1) * (2 * n + 5)) as f64 / 18.0;
        if s > 0.0 {
            (s - 1.0) / var.sqrt()
        } else if s < 0.0 {
            (s + 1.0) / var.sqrt()
        } else {
            0.0
        }
    }

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

    #[test]
    fn default_dataset_meets_the_calibration() {
        let d = generate(DEMO_UNITS, DEMO_SEED).unwrap();
        let (n, last) = (d.n_units(), d.n_years() - 1);
        let ce = |t: usize| sum_over_units(&d, t, |r| ce_cs(r).0);
        let cs = |t: usize| sum_over_units(&d, t, |r| ce_cs(r).1);
        let total = |t: usize, f: Field| sum_over_units(&d, t, |r| r[f as usize]);
        let area = |t: usize| sum_over_units(&d, t, |r| Field::LAND_USE.iter().map(|f| r[*f as usize]).sum());

        let (ce_first, ce_last) = (ce(0), ce(last));
        let cs_all: Vec<f64> = (0..=last).map(cs).collect();
        let (cs_min, cs_max) = cs_all.iter().fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        let population = total(last, Field::Population);
        let ur = |t| total(t, Field::UrbanPopulation) / total(t, Field::Population);
        let forest = total(last, Field::Forest) / area(last);
        let crop = total(last, Field::Cropland) / area(last);
        let growth =
            |a: usize, b: usize| (total(b, Field::Gdp) / total(a, Field::Gdp)).powf(1.0 / (b - a) as f64) - 1.0;
        let energy_tce =
            |t: usize| sum_over_units(&d, t, |r| energy().iter().map(|&(f, tce, _)| r[f as usize] * tce).sum());
        let intensity = |t: usize| energy_tce(t) / total(t, Field::Gdp);
        eprintln!(
            "CE {:.2} -> {:.2} Mt; CS {:.2}..{:.2} Mt; population 2020 {:.2} M; urbanization {:.3} -> {:.3}; \
             area {:.4} Mhm²; forest {:.3}; cropland {:.3}; urban {:.4} -> {:.4}; GDP growth {:.3} (2000-10) {:.3} (2015-20); \
             secondary share {:.3}; energy intensity {:.3} -> {:.3} tce/10⁴ CNY",
            ce_first / 1e6,
            ce_last / 1e6,
            cs_min / 1e6,
            cs_max / 1e6,
            population / 1e6,
            ur(0),
            ur(last),
            area(last) / 1e6,
            forest,
            crop,
            total(0, Field::Urban) / area(0),
            total(last, Field::Urban) / area(last),
            growth(0, 10),
            growth(15, 20),
            total(last, Field::SecondaryGdp) / total(last, Field::Gdp),
            intensity(0),
            intensity(last),
        );
        assert!((32e6..=38e6).contains(&ce_first), "CE first year {ce_first}");
        assert!((52e6..=60e6).contains(&ce_last), "CE last year {ce_last}");
        assert!(cs_min >= 85e6 && cs_max <= 95e6, "CS {cs_min}..{cs_max}");
        assert!((28e6..=32e6).contains(&population), "population {population}");
        assert!((0.25..=0.35).contains(&ur(0)) && (0.45..=0.60).contains(&ur(last)));
        assert!((area(last) / 22.45e6 - 1.0).abs() < 1e-6);
        assert!((0.51..=0.55).contains(&forest), "forest {forest}");
        assert!((0.20..=0.25).contains(&crop), "cropland {crop}");
        assert!(total(last, Field::Urban) > 1.3 * total(0, Field::Urban));
        assert!((0.10..=0.14).contains(&growth(0, 10)), "early GDP growth {}", growth(0, 10));
        assert!((0.06..=0.08).contains(&growth(15, 20)), "late GDP growth {}", growth(15, 20));
        assert!(intensity(last) < 0.5 * intensity(0));

        // Per unit: secondary shares 30–55 % (roughly), a few high emitters,
        // and emissions rising in some units and flat or falling in others
        // late in the period.
        let shares: Vec<f64> = (0..n)
            .map(|u| d.row(u, last)[Field::SecondaryGdp as usize] / d.row(u, last)[Field::Gdp as usize])
            .collect();
        let (lo, hi) = shares.iter().fold((1.0f64, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
        eprintln!("secondary shares {lo:.3}..{hi:.3}");
        assert!(lo >= 0.279 && hi <= 0.561);
        let mut ce_last_units: Vec<f64> = (0..n).map(|u| ce_cs(d.row(u, last)).0).collect();
        let per_person: Vec<f64> =
            (0..n).map(|u| ce_last_units[u] / d.row(u, last)[Field::Population as usize]).collect();
        let mut sorted = per_person.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[n / 2];
        let high = per_person.iter().filter(|&&p| p > 3.0 * median).count();
        ce_last_units.sort_by(f64::total_cmp);
        let late_slopes: Vec<f64> = (0..n)
            .map(|u| {
                let series: Vec<f64> = (14..=last).map(|t| ce_cs(d.row(u, t)).0).collect();
                sen(&series) / series[0]
            })
            .collect();
        let falling = late_slopes.iter().filter(|&&s| s <= 0.0).count();
        let rising = late_slopes.iter().filter(|&&s| s > 0.01).count();
        eprintln!(
            "high emitters (> 3x median CE per person): {high}; late CE falling/flat: {falling}, rising > 1 %/yr: {rising}"
        );
        assert!((5..=8).contains(&high), "{high} high emitters");
        assert!(falling >= 10, "{falling} units with flat or falling late CE");
        assert!(rising >= 20, "{rising} units with rising late CE");

        // Whole-period Mann-Kendall trends of CE and CS differ between units.
        let classes = |pick: &dyn Fn(&Row) -> f64| {
            let mut counts = [0usize; 3]; // marked decrease or moderate, moderate increase, marked increase
            for u in 0..n {
                let series: Vec<f64> = (0..=last).map(|t| pick(d.row(u, t))).collect();
                let z = mk_z(&series);
                counts[if z > 1.66 {
                    2
                } else if z > 0.0 {
                    1
                } else {
                    0
                }] += 1;
            }
            counts
        };
        let ce_classes = classes(&|r| ce_cs(r).0);
        let cs_classes = classes(&|r| ce_cs(r).1);
        eprintln!("MK classes (Z <= 0, 0 < Z <= 1.66, Z > 1.66): CE {ce_classes:?}, CS {cs_classes:?}");
        assert!(ce_classes[0] >= 5 && ce_classes[1] >= 3 && ce_classes[2] >= n / 2, "CE {ce_classes:?}");
        assert!(cs_classes[0] >= 5 && cs_classes[2] >= n / 3, "CS {cs_classes:?}");
    }
}
