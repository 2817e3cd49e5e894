//! Carbon indices (docs/model.md section 3, paper Table 2 and Eq. 1–11), per unit
//! and year: CE, CS, NCE, ECC, ESC, Cf, Ec, Ed and the land-use degree CLI.

use serde::{Deserialize, Serialize};

use crate::data::fields::{Field, N_FIELDS, Row};
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

/// Per-row quantities before the dataset totals are known; `V` is one row's
/// f64.
#[derive(Clone, Copy)]
struct RowTerms<V> {
    ce: V,
    cs_crop: V,
    cs_shrub: V,
    cs_forest: V,
    cs_grass: V,
    cs_water: V,
    energy_tce: V,
    cli: V,
}

impl<V: Lane> RowTerms<V> {
    /// CS of the row, the sum in the order every use of it takes.
    fn cs(&self) -> V {
        self.cs_crop + self.cs_shrub + self.cs_forest + self.cs_grass + self.cs_water
    }
}

/// What the index arithmetic is computed on: one f64, or four rows' f64s
/// side by side with the same operations lane by lane (no fused or
/// reordered arithmetic, so each lane is bit-identical to the f64 path).
pub(crate) trait Lane:
    Copy
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
{
    fn splat(value: f64) -> Self;
}

impl Lane for f64 {
    fn splat(value: f64) -> f64 {
        value
    }
}

/// Σ of `terms` from −0.0, term by term: exactly `Iterator::sum` of f64.
#[inline(always)]
fn sum<V: Lane>(terms: impl Iterator<Item = V>) -> V {
    terms.fold(V::splat(-0.0), |total, term| total + term)
}

/// The coefficients arranged for the per-row sums, once per run.
pub(crate) struct RowCoefficients {
    crop_inputs: [(Field, f64); 6],
    energy: [(Field, f64, f64); 11],
    breathing: f64,
    /// Respiration + enteric + manure per head.
    livestock: [(Field, f64); 4],
    /// (1 − w) / ρ · V per t of yield.
    crops: [(Field, f64); 9],
    /// The sinks per hm² of shrubland, forest, grassland and water.
    sinks: [f64; 4],
}

impl RowCoefficients {
    pub(crate) fn new(k: &Coefficients) -> RowCoefficients {
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
            sinks: [c::SINK_SHRUBLAND, c::SINK_FOREST, c::SINK_GRASSLAND, c::SINK_WATER].map(|i| k.get(i)),
        }
    }
}

#[inline(always)]
fn row_terms<V: Lane>(v: impl Fn(Field) -> V, k: &RowCoefficients) -> RowTerms<V> {
    let s = V::splat;
    let ce_crop = sum(k.crop_inputs.iter().map(|&(f, coefficient)| s(coefficient) * v(f)));
    let mut energy_tce = s(0.0);
    let mut energy_carbon = s(0.0);
    for &(field, tce, carbon) in &k.energy {
        let standard_coal = v(field) * s(tce);
        energy_tce = energy_tce + standard_coal;
        energy_carbon = energy_carbon + standard_coal * s(carbon);
    }
    let ce_urban = energy_carbon + s(k.breathing) * v(Field::Population);
    let ce_livestock = sum(k.livestock.iter().map(|&(f, per_head)| v(f) * s(per_head)));
    let cs_crop = sum(k.crops.iter().map(|&(f, factor)| v(f) * s(factor)));
    let mut graded = s(0.0);
    let mut area = s(0.0);
    for (field, grade) in CLI_GRADES {
        graded = graded + s(grade) * v(field);
        area = area + v(field);
    }
    RowTerms {
        ce: ce_crop + ce_urban + ce_livestock,
        cs_crop,
        cs_shrub: s(k.sinks[0]) * v(Field::Shrubland),
        cs_forest: s(k.sinks[1]) * v(Field::Forest),
        cs_grass: s(k.sinks[2]) * v(Field::Grassland),
        cs_water: s(k.sinks[3]) * v(Field::Water),
        energy_tce,
        cli: s(100.0) * graded / area,
    }
}

/// The factors of one year's dataset totals that turn a row's terms into
/// its indices.
#[derive(Clone, Copy)]
struct YearFactors {
    footprint: f64,
    ce_per_gdp: f64,
    ce_per_cs: f64,
}

impl YearFactors {
    /// From the year's rows (term and gdp of unit u), summed in unit order.
    #[inline(always)]
    fn of(n_units: usize, coefficients: &Coefficients, row: impl Fn(usize) -> (RowTerms<f64>, f64)) -> YearFactors {
        let (mut gdp, mut ce, mut cs) = (0.0, 0.0, 0.0);
        let (mut crop, mut shrub, mut forest, mut grass) = (0.0, 0.0, 0.0, 0.0);
        for u in 0..n_units {
            let (term, unit_gdp) = row(u);
            gdp += unit_gdp;
            ce += term.ce;
            cs += term.cs();
            crop += term.cs_crop;
            shrub += term.cs_shrub;
            forest += term.cs_forest;
            grass += term.cs_grass;
        }
        YearFactors::of_totals(coefficients, [gdp, ce, cs, crop, shrub, forest, grass])
    }

    /// From the year's totals of GDP, CE, CS and the crop, shrub, forest
    /// and grass sinks, each summed in unit order.
    #[inline(always)]
    fn of_totals(coefficients: &Coefficients, [gdp, ce, cs, crop, shrub, forest, grass]: [f64; 7]) -> YearFactors {
        let nep = |i| coefficients.get(i);
        let typed_sink = crop + shrub + forest + grass;
        let footprint = crop / typed_sink / nep(c::NEP_CROPLAND)
            + shrub / typed_sink / nep(c::NEP_SHRUBLAND)
            + forest / typed_sink / nep(c::NEP_FOREST)
            + grass / typed_sink / nep(c::NEP_GRASSLAND);
        // (x_i / x_t) / (CE_i / CE_t) = x_i · (CE_t / x_t) / CE_i: one
        // division per row instead of five.
        YearFactors { footprint, ce_per_gdp: ce / gdp, ce_per_cs: ce / cs }
    }

    /// CE, CS, NCE, ECC, ESC, Cf, Ec, Ed of a row (the trended indices, in
    /// [`IndexKey::TRENDED`] order).
    #[inline(always)]
    fn indices<V: Lane>(&self, term: &RowTerms<V>, gdp: V) -> [V; 8] {
        let s = V::splat;
        let unit_ce = term.ce;
        let unit_cs = term.cs();
        let per_unit_ce = s(1.0) / unit_ce;
        let cf = unit_ce * s(self.footprint);
        let ec = unit_cs * s(self.footprint);
        [
            unit_ce,
            unit_cs,
            unit_ce - unit_cs,
            gdp * s(self.ce_per_gdp) * per_unit_ce,
            unit_cs * s(self.ce_per_cs) * per_unit_ce,
            cf,
            ec,
            cf - ec,
        ]
    }
}

/// Compute every index from unit-major panel rows (`n_years` rows a unit).
/// Non-finite results (a zero total, say) are left in place for the caller
/// to refuse; see [`crate::model::chain`].
pub fn compute(rows: &[Row], n_years: usize, coefficients: &Coefficients) -> Indices {
    let n_units = rows.len() / n_years;
    let row_coefficients = RowCoefficients::new(coefficients);
    let terms: Vec<RowTerms<f64>> = rows.iter().map(|row| row_terms(|f| row[f as usize], &row_coefficients)).collect();
    let n = rows.len();
    let mut values: [Vec<f64>; 9] = std::array::from_fn(|_| vec![0.0; n]);
    for t in 0..n_years {
        let factors = YearFactors::of(n_units, coefficients, |u| {
            let i = u * n_years + t;
            (terms[i], rows[i][Field::Gdp as usize])
        });
        for u in 0..n_units {
            let i = u * n_years + t;
            let trended = factors.indices(&terms[i], rows[i][Field::Gdp as usize]);
            for (key, value) in IndexKey::TRENDED.iter().zip(trended) {
                values[*key as usize][i] = value;
            }
            values[IndexKey::CLI as usize][i] = terms[i].cli;
        }
    }
    Indices { n_units, n_years, values, energy_tce: terms.iter().map(|t| t.energy_tce).collect() }
}

/// The panel year-major for [`compute_year_major`]: the fields the indices
/// read (35 of the 41) in blocks of 16 rows of a year (which the indices
/// read without a bounds check per field), and GDP and secondary GDP as
/// columns, unit u in year t at `t * width + u`; `width` ≥ the number of
/// units (the padding lanes hold zeros).
#[derive(Clone, Debug)]
pub struct YearMajorPanel {
    pub n_units: usize,
    pub n_years: usize,
    pub width: usize,
    gdp: Vec<f64>,
    secondary_gdp: Vec<f64>,
    /// Year t's rows b·ROWS … at `blocks[t * (width / ROWS) + b]`.
    blocks: Vec<[[f64; ROWS]; BLOCK_FIELDS]>,
    /// Year t's last ROWS / 2 rows at `tails[t]`, when `width` is not a
    /// multiple of ROWS (it is one of ROWS / 2).
    tails: Vec<[[f64; ROWS / 2]; BLOCK_FIELDS]>,
}

impl YearMajorPanel {
    /// From unit-major rows; `width` is rounded up to a multiple of 8.
    pub fn new(rows: &[Row], n_years: usize, width: usize) -> YearMajorPanel {
        let n_units = rows.len() / n_years.max(1);
        let width = width.max(n_units).div_ceil(ROWS / 2) * (ROWS / 2);
        let mut columns = vec![vec![0.0; n_years * width]; N_FIELDS];
        for (i, row) in rows.iter().enumerate() {
            let (u, t) = (i / n_years, i % n_years);
            for (f, column) in columns.iter_mut().enumerate() {
                column[t * width + u] = row[f];
            }
        }
        fn block<const R: usize>(columns: &[Vec<f64>], start: usize) -> [[f64; R]; BLOCK_FIELDS] {
            let mut block = [[0.0; R]; BLOCK_FIELDS];
            for (f, column) in columns.iter().enumerate() {
                if let Some(out) = block.get_mut(BLOCK_SLOT[f]) {
                    *out = std::array::from_fn(|i| column[start + i]);
                }
            }
            block
        }
        let (wide, mut blocks, mut tails) = (width - width % ROWS, Vec::new(), Vec::new());
        for t in 0..n_years {
            blocks.extend((0..wide).step_by(ROWS).map(|r| block::<ROWS>(&columns, t * width + r)));
            if wide < width {
                tails.push(block::<{ ROWS / 2 }>(&columns, t * width + wide));
            }
        }
        let (gdp, secondary_gdp) = (
            std::mem::take(&mut columns[Field::Gdp as usize]),
            std::mem::take(&mut columns[Field::SecondaryGdp as usize]),
        );
        YearMajorPanel { n_units, n_years, width, gdp, secondary_gdp, blocks, tails }
    }

    /// GDP, year-major.
    pub fn gdp(&self) -> &[f64] {
        &self.gdp
    }

    /// Secondary-sector GDP, year-major.
    pub fn secondary_gdp(&self) -> &[f64] {
        &self.secondary_gdp
    }
}

/// The per-row terms of [`compute_year_major`] of one year's rows, one
/// column each.
#[derive(Clone, Debug, Default)]
pub struct RowColumns {
    ce: Vec<f64>,
    cs_crop: Vec<f64>,
    cs_shrub: Vec<f64>,
    cs_forest: Vec<f64>,
    cs_grass: Vec<f64>,
    cs_water: Vec<f64>,
}

impl RowColumns {
    pub fn heap_bytes(&self) -> usize {
        [&self.ce, &self.cs_crop, &self.cs_shrub, &self.cs_forest, &self.cs_grass, &self.cs_water]
            .iter()
            .map(|c| c.capacity() * std::mem::size_of::<f64>())
            .sum()
    }
}

/// The fields that no index reads, left out of [`YearMajorPanel`]'s
/// blocks: the blocks are streamed from memory once a sample (20 MiB at
/// 2,844 units with every field), so each field left out is time saved.
const NOT_IN_BLOCKS: [Field; 6] =
    [Field::Cropland, Field::Urban, Field::Unused, Field::UrbanPopulation, Field::Gdp, Field::SecondaryGdp];

/// The fields of a block of [`YearMajorPanel`].
const BLOCK_FIELDS: usize = N_FIELDS - NOT_IN_BLOCKS.len();

/// Where each field is in a block: fields in panel order, without those
/// of [`NOT_IN_BLOCKS`], which have `usize::MAX` (reading one is an
/// out-of-bounds panic, which the year-major index tests would meet).
const BLOCK_SLOT: [usize; N_FIELDS] = {
    let mut slots = [usize::MAX; N_FIELDS];
    let (mut f, mut next) = (0, 0);
    while f < N_FIELDS {
        let mut left_out = false;
        let mut i = 0;
        while i < NOT_IN_BLOCKS.len() {
            left_out |= NOT_IN_BLOCKS[i] as usize == f;
            i += 1;
        }
        if !left_out {
            slots[f] = next;
            next += 1;
        }
        f += 1;
    }
    assert!(next == BLOCK_FIELDS);
    slots
};

/// Rows [`compute_year_major`] computes together (then half as many for
/// the rest): each sum's partial totals for them stay in vector registers
/// while its terms are added (fixed-size arrays, which the compiler keeps
/// there). With 64 rows at a time the totals went to memory and back for
/// every term.
const ROWS: usize = 16;

/// `out[r] = out[r] + coefficient · column[r]`, the step of a sum over terms.
#[inline(always)]
fn add_term<const R: usize>(out: &mut [f64; R], coefficient: f64, column: &[f64; R]) {
    for (total, value) in out.iter_mut().zip(column) {
        *total += coefficient * *value;
    }
}

/// The per-row terms of `R` panel rows from `r0` on: CE (crop inputs,
/// energy and breathing, livestock) and CS by source into `columns` from
/// row `o0` on, energy use in tce into `energy_tce` from `r0` on, each
/// row's terms added in the order of `row_terms`.
#[inline(always)]
fn row_terms_of<const R: usize>(
    block: &[[f64; R]; BLOCK_FIELDS],
    k: &RowCoefficients,
    r0: usize,
    o0: usize,
    columns: &mut RowColumns,
    energy_tce: &mut [f64],
) {
    let v = |f: Field| -> &[f64; R] { &block[BLOCK_SLOT[f as usize]] };
    fn out<const R: usize>(column: &mut [f64], r0: usize) -> &mut [f64; R] {
        (&mut column[r0..][..R]).try_into().expect("R rows")
    }
    // CE: crop inputs, energy and breathing (urban), livestock.
    let mut ce_crop = [-0.0; R];
    for &(field, coefficient) in &k.crop_inputs {
        add_term(&mut ce_crop, coefficient, v(field));
    }
    let (mut tce, mut carbon) = ([0.0; R], [0.0; R]);
    for &(field, tce_per_unit, carbon_per_tce) in &k.energy {
        for ((t, c), value) in tce.iter_mut().zip(&mut carbon).zip(v(field)) {
            let standard_coal = *value * tce_per_unit;
            *t += standard_coal;
            *c += standard_coal * carbon_per_tce;
        }
    }
    let mut livestock = [-0.0; R];
    for &(field, per_head) in &k.livestock {
        add_term(&mut livestock, per_head, v(field));
    }
    // Each output is formed in an array and written whole: written element
    // by element through the column, it was reloaded from the column's
    // vector after every store (which might have changed it, as far as the
    // compiler could tell), and the loop ran one row at a time.
    let population = v(Field::Population);
    let ce: [f64; R] = std::array::from_fn(|i| {
        let ce_urban = carbon[i] + k.breathing * population[i];
        ce_crop[i] + ce_urban + livestock[i]
    });
    *out::<R>(&mut columns.ce, o0) = ce;
    *out::<R>(energy_tce, r0) = tce;
    // CS: crops, and the sinks of four land uses.
    let mut crop = [-0.0; R];
    for &(field, factor) in &k.crops {
        add_term(&mut crop, factor, v(field));
    }
    *out::<R>(&mut columns.cs_crop, o0) = crop;
    let RowColumns { cs_shrub, cs_forest, cs_grass, cs_water, .. } = columns;
    let land = [Field::Shrubland, Field::Forest, Field::Grassland, Field::Water];
    for (column, (&sink, field)) in [cs_shrub, cs_forest, cs_grass, cs_water].into_iter().zip(k.sinks.iter().zip(land))
    {
        let values = v(field);
        *out::<R>(column, o0) = std::array::from_fn(|i| sink * values[i]);
    }
}

/// [`compute`]'s trended indices and energy use, year-major like `panel`
/// (padding lanes hold whatever their zeros give), into buffers a sweep
/// reuses: `trended[i]` the i-th of [`IndexKey::TRENDED`]. Every value is
/// bit-identical to [`compute`]'s: the expressions of `row_terms` and
/// `YearFactors`, in the same order, written as loops over a block of
/// rows (one term at a time) instead of over the terms of one row. CLI,
/// which no coefficient changes, is not computed.
#[inline(always)]
pub fn compute_year_major(
    panel: &YearMajorPanel,
    coefficients: &Coefficients,
    columns: &mut RowColumns,
    trended: &mut [Vec<f64>; 8],
    energy_tce: &mut Vec<f64>,
) {
    let (n_units, n_years, width) = (panel.n_units, panel.n_years, panel.width);
    let n = n_years * width;
    let k = RowCoefficients::new(coefficients);
    // Every element is written below: the buffers are only sized.
    {
        // One year's rows at a time.
        let RowColumns { ce, cs_crop, cs_shrub, cs_forest, cs_grass, cs_water } = &mut *columns;
        for column in [ce, cs_crop, cs_shrub, cs_forest, cs_grass, cs_water] {
            column.resize(width, 0.0);
        }
    }
    energy_tce.resize(n, 0.0);
    for values in trended.iter_mut() {
        values.resize(n, 0.0);
    }
    // Year by year, so that a year's terms are still in cache when its
    // indices read them: first the terms of its rows (`width`, a multiple
    // of 8), then the year's totals and the indices.
    let gdp = panel.gdp();
    let wide = width - width % ROWS;
    for t in 0..n_years {
        let row0 = t * width;
        let blocks = &panel.blocks[t * (wide / ROWS)..(t + 1) * (wide / ROWS)];
        for (b, block) in blocks.iter().enumerate() {
            let r = b * ROWS;
            row_terms_of::<ROWS>(block, &k, row0 + r, r, columns, energy_tce);
        }
        if wide < width {
            row_terms_of::<{ ROWS / 2 }>(&panel.tails[t], &k, row0 + wide, wide, columns, energy_tce);
        }
        // The year's totals, then YearFactors::indices term by term over the
        // year's units side by side: every input and output is cut to the
        // year's units first, so that the loops have no bounds checks (and
        // the second runs in vector lanes).
        let RowColumns { ce, cs_crop, cs_shrub, cs_forest, cs_grass, cs_water } = &*columns;
        let year = row0..row0 + n_units;
        let [ce, cs_crop, cs_shrub, cs_forest, cs_grass, cs_water] =
            [ce, cs_crop, cs_shrub, cs_forest, cs_grass, cs_water].map(|column| &column[..n_units]);
        let gdp = &gdp[year.clone()];
        // The totals as `YearFactors::of` sums them (a row's CS as
        // `RowTerms::cs`), over zipped columns: no bounds check per unit.
        let mut totals = [0.0; 7];
        let columns =
            gdp.iter().zip(ce).zip(cs_crop.iter().zip(cs_shrub)).zip(cs_forest.iter().zip(cs_grass).zip(cs_water));
        for (((&gdp, &ce), (&crop, &shrub)), ((&forest, &grass), &water)) in columns {
            let [t_gdp, t_ce, t_cs, t_crop, t_shrub, t_forest, t_grass] = &mut totals;
            *t_gdp += gdp;
            *t_ce += ce;
            *t_cs += crop + shrub + forest + grass + water;
            *t_crop += crop;
            *t_shrub += shrub;
            *t_forest += forest;
            *t_grass += grass;
        }
        let factors = YearFactors::of_totals(coefficients, totals);
        let [out_ce, out_cs, out_nce, out_ecc, out_esc, out_cf, out_ec, out_ed] =
            trended.each_mut().map(|values| &mut values[year.clone()]);
        for u in 0..n_units {
            let unit_ce = ce[u];
            let unit_cs = cs_crop[u] + cs_shrub[u] + cs_forest[u] + cs_grass[u] + cs_water[u];
            let per_unit_ce = 1.0 / unit_ce;
            let cf = unit_ce * factors.footprint;
            let ec = unit_cs * factors.footprint;
            out_ce[u] = unit_ce;
            out_cs[u] = unit_cs;
            out_nce[u] = unit_ce - unit_cs;
            out_ecc[u] = gdp[u] * factors.ce_per_gdp * per_unit_ce;
            out_esc[u] = unit_cs * factors.ce_per_cs * per_unit_ce;
            out_cf[u] = cf;
            out_ec[u] = ec;
            out_ed[u] = cf - ec;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::coefficients::N_COEFFICIENTS;

    /// Every trended index and every energy use of `compute_year_major`
    /// has the bits of `compute`'s, for unit counts that fill the blocks of
    /// rows or leave a short one, with sampled coefficients; an input of
    /// zeros, which gives non-finite indices, included.
    #[test]
    fn year_major_indices_are_those_of_compute_bit_for_bit() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let (mut columns, mut trended, mut energy_tce) = (RowColumns::default(), Default::default(), Vec::new());
        for (case, n_units) in [1, 7, 8, 9, 16, 17, 23, 40, 81].into_iter().enumerate() {
            let dataset = crate::data::demo::generate(n_units, case as u64).expect("a valid demo dataset");
            let mut rows = dataset.rows().to_vec();
            if case % 3 == 0 {
                // A unit with nothing at all in its first year.
                rows[0] = [0.0; crate::data::fields::N_FIELDS];
            }
            let n_years = dataset.n_years();
            let panel = YearMajorPanel::new(&rows, n_years, n_units + case % 2);
            for _ in 0..5 {
                let mut coefficients = crate::model::config::Config::default().coefficients;
                for c in 0..N_COEFFICIENTS {
                    coefficients.set(c, coefficients.get(c) * rng.random_range(0.8..1.2));
                }
                let reference = compute(&rows, n_years, &coefficients);
                compute_year_major(&panel, &coefficients, &mut columns, &mut trended, &mut energy_tce);
                for u in 0..n_units {
                    for t in 0..n_years {
                        let (i, year_major) = (u * n_years + t, t * panel.width + u);
                        for (key, values) in IndexKey::TRENDED.iter().zip(&trended) {
                            let (want, got) = (reference.get(*key)[i], values[year_major]);
                            assert!(
                                want.to_bits() == got.to_bits() || (want.is_nan() && got.is_nan()),
                                "{n_units} units, {key:?} of unit {u} year {t}: {want:e} against {got:e}"
                            );
                        }
                        assert_eq!(reference.energy_tce[i].to_bits(), energy_tce[year_major].to_bits());
                    }
                }
            }
        }
    }
}
