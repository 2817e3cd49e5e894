//! Carbon indices (docs/model.md section 3, paper Table 2 and Eq. 1–11), per unit
//! and year: CE, CS, NCE, ECC, ESC, Cf, Ec, Ed and the land-use degree CLI.

use serde::{Deserialize, Serialize};

use crate::data::fields::{Field, Row};
use crate::keyed::keyed_enum;
use crate::model::coefficients::{
    CROP_COEFFICIENTS, Coefficients, ENERGY_COEFFICIENTS, LIVESTOCK_COEFFICIENTS, coefficient as c,
};

keyed_enum! {
    /// The indices of docs/model.md section 3, in the order of the `evaluate` document.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
    pub enum IndexKey {
        CE = "CE",
        CS = "CS",
        NCE = "NCE",
        ECC = "ECC",
        ESC = "ESC",
        Cf = "Cf",
        Ec = "Ec",
        Ed = "Ed",
        CLI = "CLI",
    }
}

impl IndexKey {
    /// The eight indices with a trend (section 3).
    pub const TRENDED: [IndexKey; 8] = [
        IndexKey::CE,
        IndexKey::CS,
        IndexKey::NCE,
        IndexKey::ECC,
        IndexKey::ESC,
        IndexKey::Cf,
        IndexKey::Ec,
        IndexKey::Ed,
    ];
}

/// Every index for every (unit, year), unit-major like the panel rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Indices {
    pub n_units: usize,
    pub n_years: usize,
    /// `values[IndexKey as usize][unit * n_years + year_index]`.
    pub values: [Vec<f64>; 9],
    /// Total energy use in tce per (unit, year), for the STIRPAT TI driver.
    pub energy_tce: Vec<f64>,
}

impl Indices {
    pub fn get(&self, key: IndexKey) -> &[f64] {
        &self.values[key as usize]
    }

    /// One unit's series of one index.
    pub fn series(&self, key: IndexKey, unit: usize) -> &[f64] {
        &self.values[key as usize][unit * self.n_years..(unit + 1) * self.n_years]
    }
}

/// Land-use degree grades A_k of the CLI, by land-use field.
const CLI_GRADES: [(Field, f64); 7] = [
    (Field::Cropland, 3.0),
    (Field::Shrubland, 2.0),
    (Field::Forest, 2.0),
    (Field::Grassland, 2.0),
    (Field::Water, 2.0),
    (Field::Urban, 4.0),
    (Field::Unused, 1.0),
];

/// Per-row quantities before the dataset totals are known.
struct RowTerms {
    ce: f64,
    cs_crop: f64,
    cs_shrub: f64,
    cs_forest: f64,
    cs_grass: f64,
    cs_water: f64,
    energy_tce: f64,
    cli: f64,
}

/// The coefficients arranged for the per-row sums, once per run.
struct RowCoefficients {
    crop_inputs: [(Field, f64); 6],
    energy: [(Field, f64, f64); 11],
    breathing: f64,
    /// Respiration + enteric + manure per head.
    livestock: [(Field, f64); 4],
    /// (1 − w) / ρ · V per t of yield.
    crops: [(Field, f64); 9],
}

impl RowCoefficients {
    fn new(k: &Coefficients) -> RowCoefficients {
        RowCoefficients {
            crop_inputs: [
                (Field::Fertilizer, k.get(c::FERTILIZER)),
                (Field::Pesticide, k.get(c::PESTICIDE)),
                (Field::PlasticFilm, k.get(c::PLASTIC_FILM)),
                (Field::Irrigated, k.get(c::IRRIGATED)),
                (Field::Sown, k.get(c::SOWN)),
                (Field::Machinery, k.get(c::MACHINERY)),
            ],
            energy: std::array::from_fn(|e| {
                let (tce, carbon) = ENERGY_COEFFICIENTS[e];
                (Field::ENERGY[e], k.get(tce), k.get(carbon))
            }),
            breathing: k.get(c::BREATHING),
            livestock: std::array::from_fn(|s| {
                let first = LIVESTOCK_COEFFICIENTS[s];
                (Field::LIVESTOCK[s], k.get(first) + k.get(first + 1) + k.get(first + 2))
            }),
            crops: std::array::from_fn(|i| {
                let first = CROP_COEFFICIENTS[i];
                let (economic, water, absorption) = (k.get(first), k.get(first + 1), k.get(first + 2));
                (Field::CROPS[i], (1.0 - water) / economic * absorption)
            }),
        }
    }
}

fn row_terms(row: &Row, k: &RowCoefficients, sinks: [f64; 4]) -> RowTerms {
    let v = |f: Field| row[f as usize];
    let ce_crop: f64 = k.crop_inputs.iter().map(|&(f, coefficient)| coefficient * v(f)).sum();
    let mut energy_tce = 0.0;
    let mut energy_carbon = 0.0;
    for &(field, tce, carbon) in &k.energy {
        let standard_coal = v(field) * tce;
        energy_tce += standard_coal;
        energy_carbon += standard_coal * carbon;
    }
    let ce_urban = energy_carbon + k.breathing * v(Field::Population);
    let ce_livestock: f64 = k.livestock.iter().map(|&(f, per_head)| v(f) * per_head).sum();
    let cs_crop: f64 = k.crops.iter().map(|&(f, factor)| v(f) * factor).sum();
    let mut graded = 0.0;
    let mut area = 0.0;
    for (field, grade) in CLI_GRADES {
        graded += grade * v(field);
        area += v(field);
    }
    RowTerms {
        ce: ce_crop + ce_urban + ce_livestock,
        cs_crop,
        cs_shrub: sinks[0] * v(Field::Shrubland),
        cs_forest: sinks[1] * v(Field::Forest),
        cs_grass: sinks[2] * v(Field::Grassland),
        cs_water: sinks[3] * v(Field::Water),
        energy_tce,
        cli: 100.0 * graded / area,
    }
}

/// Compute every index from unit-major panel rows (`n_years` rows a unit).
/// Non-finite results (a zero total, say) are left in place for the caller
/// to refuse; see [`crate::model::chain`].
pub fn compute(rows: &[Row], n_years: usize, coefficients: &Coefficients) -> Indices {
    let n_units = rows.len() / n_years;
    let row_coefficients = RowCoefficients::new(coefficients);
    let sinks = [c::SINK_SHRUBLAND, c::SINK_FOREST, c::SINK_GRASSLAND, c::SINK_WATER].map(|i| coefficients.get(i));
    let terms: Vec<RowTerms> = rows.iter().map(|row| row_terms(row, &row_coefficients, sinks)).collect();
    let n = rows.len();
    let mut values: [Vec<f64>; 9] = std::array::from_fn(|_| vec![0.0; n]);
    let nep = |i| coefficients.get(i);
    for t in 0..n_years {
        // Dataset totals of year t, summed in unit order.
        let (mut gdp, mut ce, mut cs) = (0.0, 0.0, 0.0);
        let (mut crop, mut shrub, mut forest, mut grass) = (0.0, 0.0, 0.0, 0.0);
        for u in 0..n_units {
            let i = u * n_years + t;
            let term = &terms[i];
            gdp += rows[i][Field::Gdp as usize];
            ce += term.ce;
            cs += term.cs_crop + term.cs_shrub + term.cs_forest + term.cs_grass + term.cs_water;
            crop += term.cs_crop;
            shrub += term.cs_shrub;
            forest += term.cs_forest;
            grass += term.cs_grass;
        }
        let typed_sink = crop + shrub + forest + grass;
        let footprint_factor = crop / typed_sink / nep(c::NEP_CROPLAND)
            + shrub / typed_sink / nep(c::NEP_SHRUBLAND)
            + forest / typed_sink / nep(c::NEP_FOREST)
            + grass / typed_sink / nep(c::NEP_GRASSLAND);
        // (x_i / x_t) / (CE_i / CE_t) = x_i · (CE_t / x_t) / CE_i: one
        // division per row instead of five.
        let (ce_per_gdp, ce_per_cs) = (ce / gdp, ce / cs);
        for u in 0..n_units {
            let i = u * n_years + t;
            let term = &terms[i];
            let unit_ce = term.ce;
            let unit_cs = term.cs_crop + term.cs_shrub + term.cs_forest + term.cs_grass + term.cs_water;
            let per_unit_ce = 1.0 / unit_ce;
            let cf = unit_ce * footprint_factor;
            let ec = unit_cs * footprint_factor;
            values[IndexKey::CE as usize][i] = unit_ce;
            values[IndexKey::CS as usize][i] = unit_cs;
            values[IndexKey::NCE as usize][i] = unit_ce - unit_cs;
            values[IndexKey::ECC as usize][i] = rows[i][Field::Gdp as usize] * ce_per_gdp * per_unit_ce;
            values[IndexKey::ESC as usize][i] = unit_cs * ce_per_cs * per_unit_ce;
            values[IndexKey::Cf as usize][i] = cf;
            values[IndexKey::Ec as usize][i] = ec;
            values[IndexKey::Ed as usize][i] = cf - ec;
            values[IndexKey::CLI as usize][i] = term.cli;
        }
    }
    Indices { n_units, n_years, values, energy_tce: terms.iter().map(|t| t.energy_tce).collect() }
}
