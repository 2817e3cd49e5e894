//! `zonesweep report`: a sweep as an offline HTML page with maps and
//! figures (SVG beside the page, PNG for slides), and the same numbers as
//! spreadsheet and GIS files (`units.csv`, `peaking.csv`, `regional.csv`,
//! `sensitivity.csv`, `units.geojson`).
//!
//! Every number comes from the sweep's aggregate through the answers
//! library, and from what the sweep ran from (its dataset, configuration
//! and spec): the historical regional CE and the ridge trace are computed
//! from those at the nominal parameters.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde_json::{Value, json};
use zonesweep_proto::pb::DefinitionResponse;
use zonesweep_shared::data::dataset::{Dataset, Unit};
use zonesweep_shared::model::chain::{self, Parameters};
use zonesweep_shared::model::config::{Config, Driver, Scenario};
use zonesweep_shared::model::indices::{self, IndexKey};
use zonesweep_shared::model::zoning::zone_name;
use zonesweep_shared::numerics::ridge::TracePoint;
use zonesweep_shared::sweep::SweepSpec;
use zonesweep_shared::sweep::answers::{FanYear, Robustness, UnitPeaking, wilson_half_width};
use zonesweep_shared::sweep::distribution::Checked;
use zonesweep_shared::sweep::sensitivity::Output;

use crate::report::{self, OutputFormat, PeakingQuery, SensitivityFormat, SensitivityOutput, SweepView};

/// The font of the PNG figures' text (DejaVu Sans, licence beside it):
/// embedded, so a machine without fonts renders the same text.
const FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
const FONT_FAMILY: &str = "sans-serif";

/// The byte-order mark that makes Excel read a CSV file as UTF-8 (without
/// it, it reads the file in the system's legacy code page and garbles
/// non-ASCII names); QGIS, pandas (`utf-8-sig`) and the csv crate skip it.
const UTF8_BOM: &str = "\u{feff}";

/// At most this many units get a row in the per-unit figures (the least
/// robust ones); the tables and files always hold every unit.
const MAX_FIGURE_UNITS: usize = 120;
/// At most this many uncertain units in the sensitivity figure.
const MAX_SENSITIVITY_UNITS: usize = 30;

/// What `report` wrote, for the command's closing lines.
pub struct Written {
    pub dir: PathBuf,
    pub files: Vec<String>,
}

/// One value of a unit's row: written to CSV as text, to GeoJSON as a
/// typed value, to the HTML table formatted with its raw value for sorting.
#[derive(Clone, Debug)]
enum Cell {
    Text(String),
    /// A value with the decimals the HTML table shows.
    Number(f64, usize),
    Int(i64),
    Bool(bool),
    Empty,
}

impl Cell {
    fn number(value: f64, decimals: usize) -> Cell {
        if value.is_finite() { Cell::Number(value, decimals) } else { Cell::Empty }
    }

    fn csv(&self) -> String {
        match self {
            Cell::Text(t) => t.clone(),
            Cell::Number(v, _) => v.to_string(),
            Cell::Int(i) => i.to_string(),
            Cell::Bool(b) => b.to_string(),
            Cell::Empty => String::new(),
        }
    }

    fn json(&self) -> Value {
        match self {
            Cell::Text(t) => json!(t),
            Cell::Number(v, _) => json!(v),
            Cell::Int(i) => json!(i),
            Cell::Bool(b) => json!(b),
            Cell::Empty => Value::Null,
        }
    }

    fn html(&self) -> String {
        match self {
            Cell::Text(t) => escape(t),
            Cell::Number(v, d) => format!("{v:.d$}", d = *d),
            Cell::Int(i) => i.to_string(),
            Cell::Bool(b) => (if *b { "yes" } else { "no" }).to_owned(),
            Cell::Empty => "–".to_owned(),
        }
    }

    /// The value the table sorts by: numbers as numbers.
    fn sort_key(&self) -> String {
        match self {
            Cell::Text(t) => escape(t),
            Cell::Number(v, _) => v.to_string(),
            Cell::Int(i) => i.to_string(),
            Cell::Bool(b) => u8::from(*b).to_string(),
            Cell::Empty => String::new(),
        }
    }
}

/// A column of the per-unit table: its CSV/GeoJSON name, its HTML header
/// and whether the HTML table shows it.
struct Column {
    key: String,
    label: String,
    in_html: bool,
}

fn column(key: impl Into<String>, label: impl Into<String>, in_html: bool) -> Column {
    Column { key: key.into(), label: label.into(), in_html }
}

/// Text for HTML: `&`, `<`, `>` and quotes escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// How a scenario is called in sentences and figure titles.
fn scenario_label(s: Scenario) -> &'static str {
    match s {
        Scenario::Low => "low-carbon",
        Scenario::Baseline => "baseline",
        Scenario::High => "high-carbon",
    }
}

/// A zone's colour: sink green through source red for the five zones of
/// the paper; a categorical palette beyond.
fn zone_colour(zone: usize) -> RGBColor {
    const FIVE: [RGBColor; 5] = [
        RGBColor(26, 152, 80),
        RGBColor(145, 207, 96),
        RGBColor(230, 200, 60),
        RGBColor(252, 141, 89),
        RGBColor(215, 48, 39),
    ];
    const MORE: [RGBColor; 10] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    FIVE.get(zone.wrapping_sub(1)).copied().unwrap_or(MORE[zone % MORE.len()])
}

/// A sequential colour for a probability: white at 0, dark blue at 1.
fn heat_colour(p: f64) -> RGBColor {
    let p = p.clamp(0.0, 1.0);
    let lerp = |a: f64, b: f64| (a + (b - a) * p).round() as u8;
    RGBColor(lerp(255.0, 8.0), lerp(255.0, 48.0), lerp(255.0, 107.0))
}

fn font(size: u32) -> TextStyle<'static> {
    TextStyle::from((FONT_FAMILY, size).into_font())
}

/// Register the embedded font once (plotters keeps a process-wide table).
fn register_font() -> Result<()> {
    static DONE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        [FontStyle::Normal, FontStyle::Bold]
            .into_iter()
            .all(|style| plotters::style::register_font(FONT_FAMILY, style, FONT).is_ok())
    });
    if ok { Ok(()) } else { bail!("the embedded font of the figures cannot be read") }
}

/// Draw one figure twice: `NAME.svg` and `NAME.png`, each on a white page of `size` pixels.
macro_rules! figure {
    ($written:expr, $dir:expr, $name:expr, $size:expr, |$area:ident| $body:expr) => {{
        let name: &str = $name;
        let svg = $dir.join(format!("{name}.svg"));
        {
            let $area = SVGBackend::new(&svg, $size).into_drawing_area();
            $area.fill(&WHITE)?;
            $body.with_context(|| format!("drawing {}", svg.display()))?;
            $area.present().with_context(|| format!("writing {}", svg.display()))?;
        }
        let png = $dir.join(format!("{name}.png"));
        {
            let $area = BitMapBackend::new(&png, $size).into_drawing_area();
            $area.fill(&WHITE)?;
            $body.with_context(|| format!("drawing {}", png.display()))?;
            $area.present().with_context(|| format!("writing {}", png.display()))?;
        }
        $written.push(format!("{name}.svg"));
        $written.push(format!("{name}.png"));
    }};
}

/// The facts of one unit that the table, the files and the figures share.
struct UnitFacts {
    robustness: Robustness,
    peaking: Vec<UnitPeaking>,
}

/// A ring of lon/lat points.
type Ring = Vec<(f64, f64)>;
/// Polygons, each as rings, the first the outer ring.
type Polygons = Vec<Vec<Ring>>;
/// A unit and its groups' total-effect indices (`None`: the output does not vary).
type UnitIndices = (usize, Vec<(String, Option<f64>)>);

/// Where a unit is drawn.
#[derive(Clone, Debug)]
enum Place {
    /// Polygons, each as rings (the first the outer ring), lon/lat.
    Polygons(Polygons),
    Point(f64, f64),
    Unknown,
}

/// What the report is made from.
struct Inputs<'a> {
    view: &'a SweepView,
    definition: &'a DefinitionResponse,
    dataset: Dataset,
    config: Config,
    spec: SweepSpec,
    threshold: f64,
    facts: Vec<UnitFacts>,
    /// The dataset's unit of each sweep unit.
    units: Vec<Option<Unit>>,
    places: Vec<Place>,
    /// The feature properties of the dataset's GeoJSON, by unit id.
    geometries: HashMap<String, Value>,
}

/// Write the report of `view` (which ran from `definition`) into `dir`.
pub fn write(view: &SweepView, definition: &DefinitionResponse, dir: &Path, threshold: f64) -> Result<Written> {
    let a = &view.aggregate;
    if a.samples_ok == 0 {
        bail!(
            "sweep {} has no successful sample yet ({} of {} samples done, {} failed): nothing to report",
            view.status.id,
            view.status.samples_done,
            view.status.samples,
            view.status.samples_failed
        );
    }
    let geojson = (!definition.units_geojson.is_empty()).then_some(definition.units_geojson.as_str());
    let dataset = Dataset::from_csv(&definition.units_csv, &definition.panel_csv, geojson).map_err(|e| {
        anyhow::anyhow!("the dataset stored with sweep {} is not valid: {}", view.status.id, e.summary(5))
    })?;
    let config = Config::from_toml_overrides(&definition.config_toml, "the sweep's configuration")?;
    let spec = SweepSpec::from_toml(&definition.spec_toml, "the sweep's spec")?;
    let by_id: HashMap<&str, &Unit> = dataset.units().iter().map(|u| (u.id.as_str(), u)).collect();
    let units: Vec<Option<Unit>> = view.unit_ids.iter().map(|id| by_id.get(id.as_str()).map(|&u| u.clone())).collect();
    let geometries = geojson.map(geometries_by_id).transpose()?.unwrap_or_default();
    let places = view
        .unit_ids
        .iter()
        .zip(&units)
        .map(|(id, unit)| match geometries.get(id).and_then(polygons_of) {
            Some(polygons) => Place::Polygons(polygons),
            None => match unit.as_ref().and_then(|u| u.lon.zip(u.lat)) {
                Some((lon, lat)) => Place::Point(lon, lat),
                None => Place::Unknown,
            },
        })
        .collect();
    let facts = (0..view.unit_ids.len())
        .map(|u| UnitFacts {
            robustness: a.robustness(u, view.nominal_zones.get(u).copied(), threshold),
            peaking: Scenario::ALL.iter().map(|&s| a.unit_peaking(s, u)).collect(),
        })
        .collect();
    let inputs = Inputs { view, definition, dataset, config, spec, threshold, facts, units, places, geometries };
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    register_font()?;
    let mut files = Vec::new();
    let save = |files: &mut Vec<String>, name: &str, text: &str| -> Result<()> {
        let path = dir.join(name);
        fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        files.push(name.to_owned());
        Ok(())
    };
    let (columns, rows) = unit_table(&inputs);
    save(&mut files, "units.csv", &units_csv(&columns, &rows)?)?;
    let everything = PeakingQuery { units: &[], scenario: None, region: false };
    save(&mut files, "peaking.csv", &format!("{UTF8_BOM}{}", report::peaking(view, &everything, OutputFormat::Csv)?))?;
    let history = historical_ce(&inputs);
    save(&mut files, "regional.csv", &regional_csv(&inputs, &history)?)?;
    if a.sensitivity.is_some() {
        let text = report::sensitivity_report(view, None, SensitivityOutput::Total, SensitivityFormat::Csv)?;
        save(&mut files, "sensitivity.csv", &format!("{UTF8_BOM}{text}"))?;
    }
    if let Some(text) = units_geojson(&inputs, &columns, &rows)? {
        save(&mut files, "units.geojson", &text)?;
    }
    let figures = draw_figures(&inputs, &history, dir, &mut files)?;
    let html = page(&inputs, &columns, &rows, &figures, &history);
    save(&mut files, "index.html", &html)?;
    Ok(Written { dir: dir.to_owned(), files })
}

/// The features of a GeoJSON FeatureCollection by their `id` property (the
/// first feature of an id).
fn geometries_by_id(text: &str) -> Result<HashMap<String, Value>> {
    let value: Value = serde_json::from_str(text).context("the sweep's units.geojson is not JSON")?;
    let mut out = HashMap::new();
    for feature in value.get("features").and_then(Value::as_array).into_iter().flatten() {
        if let (Some(id), Some(geometry)) =
            (feature.get("properties").and_then(|p| p.get("id")).and_then(Value::as_str), feature.get("geometry"))
        {
            if !geometry.is_null() {
                out.entry(id.to_owned()).or_insert_with(|| geometry.clone());
            }
        }
    }
    Ok(out)
}

/// The polygons of a Polygon or MultiPolygon geometry; `None` for any
/// other geometry or malformed coordinates.
fn polygons_of(geometry: &Value) -> Option<Polygons> {
    let ring = |ring: &Value| -> Option<Vec<(f64, f64)>> {
        let points: Option<Vec<(f64, f64)>> = ring
            .as_array()?
            .iter()
            .map(|p| {
                let p = p.as_array()?;
                let (x, y) = (p.first()?.as_f64()?, p.get(1)?.as_f64()?);
                (x.is_finite() && y.is_finite()).then_some((x, y))
            })
            .collect();
        points.filter(|p| p.len() >= 3)
    };
    let polygon = |rings: &Value| -> Option<Vec<Vec<(f64, f64)>>> {
        let rings: Option<Vec<_>> = rings.as_array()?.iter().map(ring).collect();
        rings.filter(|r| !r.is_empty())
    };
    let coordinates = geometry.get("coordinates")?;
    let polygons = match geometry.get("type")?.as_str()? {
        "Polygon" => vec![polygon(coordinates)?],
        "MultiPolygon" => coordinates.as_array()?.iter().map(polygon).collect::<Option<Vec<_>>>()?,
        _ => return None,
    };
    (!polygons.is_empty()).then_some(polygons)
}

/// The per-unit table: its columns and a row per unit.
fn unit_table(inputs: &Inputs<'_>) -> (Vec<Column>, Vec<Vec<Cell>>) {
    let view = inputs.view;
    let shape = view.aggregate.shape;
    let (milestone, horizon) = (shape.milestone, shape.horizon);
    let mut columns = vec![
        column("id", "id", true),
        column("name", "name", true),
        column("province", "province", true),
        column("lon", "lon", false),
        column("lat", "lat", false),
        column("nominal_zone", "nominal zone", true),
        column("modal_zone", "modal zone", true),
        column("modal_zone_name", "modal zone name", false),
        column("p_modal", "P(modal)", true),
        column("p_modal_low", "95 % low", true),
        column("p_modal_high", "95 % high", true),
        column("runner_up_zone", "runner-up", true),
        column("p_runner_up", "P(runner-up)", false),
        column("entropy", "entropy", true),
        column("robust", "robust", true),
    ];
    columns.extend((1..=shape.n_zones).map(|z| column(format!("p_zone_{z}"), format!("P(zone {z})"), false)));
    for s in Scenario::ALL {
        let k = s.key();
        columns.extend([
            column(format!("{k}_p_peak_by_milestone"), format!("{k}: P(peak by {milestone})"), true),
            column(format!("{k}_peak_year_median"), format!("{k}: median peak"), true),
            column(format!("{k}_p_neutral_by_horizon"), format!("{k}: P(neutral by {horizon})"), true),
        ]);
    }
    let rows = inputs
        .facts
        .iter()
        .enumerate()
        .map(|(u, f)| {
            let r = &f.robustness;
            let unit = inputs.units[u].as_ref();
            let text = |t: &str| if t.is_empty() { Cell::Empty } else { Cell::Text(t.to_owned()) };
            let coordinate = |v: Option<f64>| v.map_or(Cell::Empty, |v| Cell::number(v, 3));
            let mut row = vec![
                Cell::Text(view.unit_ids[u].clone()),
                text(view.unit_names.get(u).map_or("", String::as_str)),
                text(unit.map_or("", |u| u.province.as_str())),
                coordinate(unit.and_then(|u| u.lon)),
                coordinate(unit.and_then(|u| u.lat)),
                r.nominal_zone.map_or(Cell::Empty, |z| Cell::Int(i64::from(z))),
                Cell::Int(r.modal_zone as i64),
                Cell::Text(zone_name(r.modal_zone)),
                Cell::number(r.modal.p, 3),
                Cell::number(r.modal.low, 3),
                Cell::number(r.modal.high, 3),
                r.runner_up_zone.map_or(Cell::Empty, |z| Cell::Int(z as i64)),
                r.runner_up.map_or(Cell::Empty, |p| Cell::number(p.p, 3)),
                Cell::number(r.entropy, 2),
                Cell::Bool(r.robust),
            ];
            row.extend(r.zones.iter().map(|p| Cell::number(p.p, 3)));
            for p in &f.peaking {
                row.extend([
                    Cell::number(p.peak.by_milestone.p, 3),
                    p.peak.quantiles.and_then(|q| q.median).map_or(Cell::Empty, |y| Cell::Int(i64::from(y))),
                    Cell::number(p.neutral.p, 3),
                ]);
            }
            row
        })
        .collect();
    (columns, rows)
}

fn units_csv(columns: &[Column], rows: &[Vec<Cell>]) -> Result<String> {
    let mut w = csv::Writer::from_writer(UTF8_BOM.as_bytes().to_vec());
    w.write_record(columns.iter().map(|c| c.key.as_str()))?;
    for row in rows {
        w.write_record(row.iter().map(Cell::csv))?;
    }
    Ok(String::from_utf8(w.into_inner().map_err(|e| anyhow::anyhow!("writing CSV: {e}"))?)?)
}

/// The region's CE in each year of the data, at the nominal coefficients, t.
struct History {
    years: Vec<i32>,
    ce: Vec<f64>,
}

fn historical_ce(inputs: &Inputs<'_>) -> History {
    let d = &inputs.dataset;
    let parameters = Parameters::nominal(&inputs.config);
    let computed = indices::compute(d.rows(), d.n_years(), &parameters.coefficients);
    let ce = computed.get(IndexKey::CE);
    let n_years = d.n_years();
    History {
        years: d.years().to_vec(),
        ce: (0..n_years).map(|t| (0..d.n_units()).map(|u| ce[u * n_years + t]).sum()).collect(),
    }
}

/// `regional.csv`: a row per year and series (the observed CE, then each
/// scenario's quantiles over the samples), t.
fn regional_csv(inputs: &Inputs<'_>, history: &History) -> Result<String> {
    let a = &inputs.view.aggregate;
    let mut w = csv::Writer::from_writer(UTF8_BOM.as_bytes().to_vec());
    w.write_record(["year", "series", "ce_observed_t", "ce_p05_t", "ce_p25_t", "ce_median_t", "ce_p75_t", "ce_p95_t"])?;
    for (year, ce) in history.years.iter().zip(&history.ce) {
        w.write_record([
            year.to_string(),
            "observed".to_owned(),
            ce.to_string(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ])?;
    }
    let opt = |v: Option<f64>| v.map_or_else(String::new, |v| v.to_string());
    for s in Scenario::ALL {
        for y in a.regional_fan(s) {
            w.write_record([
                y.year.to_string(),
                s.key().to_owned(),
                String::new(),
                opt(y.p05),
                opt(y.p25),
                opt(y.median),
                opt(y.p75),
                opt(y.p95),
            ])?;
        }
    }
    Ok(String::from_utf8(w.into_inner().map_err(|e| anyhow::anyhow!("writing CSV: {e}"))?)?)
}

/// `units.geojson`: a feature per unit with the columns of `units.csv` as
/// properties; the dataset's polygons, else a point at lon/lat, else no
/// geometry (null). `None` when no unit has a place.
fn units_geojson(inputs: &Inputs<'_>, columns: &[Column], rows: &[Vec<Cell>]) -> Result<Option<String>> {
    if inputs.places.iter().all(|p| matches!(p, Place::Unknown)) {
        return Ok(None);
    }
    let features: Vec<Value> = rows
        .iter()
        .enumerate()
        .map(|(u, row)| {
            let properties: serde_json::Map<String, Value> =
                columns.iter().zip(row).map(|(c, cell)| (c.key.clone(), cell.json())).collect();
            let geometry = match &inputs.places[u] {
                Place::Polygons(_) => inputs.geometries[&inputs.view.unit_ids[u]].clone(),
                Place::Point(lon, lat) => json!({ "type": "Point", "coordinates": [lon, lat] }),
                Place::Unknown => Value::Null,
            };
            json!({ "type": "Feature", "properties": properties, "geometry": geometry })
        })
        .collect();
    let collection = json!({ "type": "FeatureCollection", "features": features });
    Ok(Some(serde_json::to_string(&collection)? + "\n"))
}

/// A figure on the page: its file stem, title and caption.
struct FigureEntry {
    name: String,
    title: String,
    caption: String,
}

fn draw_figures(
    inputs: &Inputs<'_>,
    history: &History,
    dir: &Path,
    files: &mut Vec<String>,
) -> Result<Vec<FigureEntry>> {
    let view = inputs.view;
    let a = &view.aggregate;
    let n_zones = a.shape.n_zones;
    let mut figures = Vec::new();
    let mut entry = |name: &str, title: &str, caption: String| {
        figures.push(FigureEntry { name: name.to_owned(), title: title.to_owned(), caption });
    };
    let kind = map_kind(&inputs.places);
    let modal: Vec<(usize, f64)> =
        inputs.facts.iter().map(|f| (f.robustness.modal_zone, f.robustness.modal.p)).collect();
    let labels: Vec<&str> = view.unit_ids.iter().map(String::as_str).collect();
    // The map's height follows the region's shape (the legend takes 270 px of the width).
    let size = match bounds(&inputs.places) {
        Some((x0, x1, y0, y1)) if kind != MapKind::Tiles => {
            let scale_x = ((y0 + y1) / 2.0).to_radians().cos().max(0.05);
            let aspect = (y1 - y0).max(1e-6) / ((x1 - x0) * scale_x).max(1e-6);
            (1000, (730.0 * aspect + 80.0).clamp(420.0, 900.0) as u32)
        }
        _ => (1000, 680),
    };
    figure!(files, dir, "map_modal", size, |area| draw_map(
        &area,
        &inputs.places,
        &labels,
        &modal,
        n_zones,
        true,
        "Modal zone over the samples"
    ));
    entry(
        "map_modal",
        "Map of the modal zone",
        format!(
            "Each unit in its most probable zone over the {} samples; the more opaque, the more probable ({}).",
            a.samples_ok,
            kind.describe()
        ),
    );
    if view.nominal_zones.len() == view.unit_ids.len() {
        let nominal: Vec<(usize, f64)> = view.nominal_zones.iter().map(|&z| (usize::from(z), 1.0)).collect();
        figure!(files, dir, "map_nominal", size, |area| draw_map(
            &area,
            &inputs.places,
            &labels,
            &nominal,
            n_zones,
            false,
            "Nominal zone (one run at the nominal parameters)"
        ));
        entry(
            "map_nominal",
            "Map of the nominal zone",
            format!(
                "The zone of each unit in the single deterministic run at the nominal parameters ({}).",
                kind.describe()
            ),
        );
    }
    // Least robust first, at most MAX_FIGURE_UNITS of them.
    let mut order: Vec<usize> = (0..view.unit_ids.len()).collect();
    order.sort_by(|&x, &y| {
        let (rx, ry) = (&inputs.facts[x].robustness, &inputs.facts[y].robustness);
        rx.modal.low.total_cmp(&ry.modal.low).then(x.cmp(&y))
    });
    let shown = order.len().min(MAX_FIGURE_UNITS);
    let cut = if shown < order.len() {
        format!(" Only the {shown} least robust of the {} units are shown; units.csv has them all.", order.len())
    } else {
        String::new()
    };
    let bars = &order[..shown];
    let rows_height = |n: usize| (110 + 13 * n as u32).max(300);
    figure!(files, dir, "zone_probabilities", (1000, rows_height(bars.len())), |area| draw_zone_bars(
        &area, inputs, bars
    ));
    entry(
        "zone_probabilities",
        "Zone probabilities per unit",
        format!(
            "Stacked bars of each unit's zone probabilities, least robust at the top (by the lower end of the 95 % interval of P(modal zone)). \
             A unit is robust when that lower end is at least {}.{cut}",
            inputs.threshold
        ),
    );
    let mut by_id: Vec<usize> = order[..shown].to_vec();
    by_id.sort_unstable();
    figure!(files, dir, "peak_years", (1200, rows_height(by_id.len()) + 40), |area| draw_peak_heatmap(
        &area, inputs, &by_id
    ));
    entry(
        "peak_years",
        "Peak-year distributions",
        format!(
            "For each unit (rows) and scenario (panels): the share of samples whose CE peaks in each year; the last column is \"not peaked by {}\". The dashed line marks the end of the milestone year {}: peaks left of it count as peaked by the milestone.{cut}",
            a.shape.horizon, a.shape.milestone
        ),
    );
    figure!(files, dir, "regional_fan", (1200, 440), |area| draw_fan(&area, inputs, history));
    entry(
        "regional_fan",
        "Regional CE fan chart",
        "The region's total carbon emissions: the observed series (black, at the nominal coefficients) and, per scenario, the median projection with the 25–75 % and 5–95 % bands over the samples.".to_owned(),
    );
    match ridge_trace(inputs) {
        Ok(trace) => {
            let range = sampled_k_range(inputs);
            figure!(files, dir, "ridge_trace", (1200, 460), |area| draw_ridge(&area, inputs, &trace, range));
            entry(
                "ridge_trace",
                "Ridge trace",
                format!(
                    "Standardized STIRPAT coefficients β* and their variance inflation factors over the ridge constant K, at the nominal parameters. {}",
                    match range {
                        Some((low, high, what)) =>
                            format!("The shaded band is the K the sweep sampled ({what}: {low:.4}–{high:.4})."),
                        None => format!(
                            "The sweep did not sample K; the line marks the configuration's K = {}.",
                            inputs.config.ridge.k
                        ),
                    }
                ),
            );
        }
        Err(e) => {
            entry("", "Ridge trace", format!("not drawn: the ridge trace of the sweep's dataset failed ({e:#})."))
        }
    }
    if let Some(sums) = &a.sensitivity {
        let mut uncertain: Vec<usize> = order.iter().copied().filter(|&u| !inputs.facts[u].robustness.robust).collect();
        let note = if uncertain.is_empty() {
            uncertain = order.iter().copied().take(10).collect();
            "Every unit is robust; the 10 least robust are shown."
        } else {
            "The units whose zone is not robust, least robust first."
        };
        uncertain.truncate(MAX_SENSITIVITY_UNITS);
        let analyses: Vec<UnitIndices> = uncertain
            .iter()
            .map(|&u| {
                let analysis = sums.analyse(&a.shape, u, Output::Total);
                (u, analysis.groups.into_iter().map(|g| (g.group, g.total.map(|t| t.estimate))).collect())
            })
            .collect();
        figure!(files, dir, "sensitivity", (1000, (130 + 24 * analyses.len() as u32).max(320)), |area| {
            draw_sensitivity(&area, inputs, &sums.groups, &analyses)
        });
        entry(
            "sensitivity",
            "Which inputs drive the uncertain units",
            format!(
                "Total-effect Sobol' index ST of each group of inputs on the unit's total score ({} base samples). {note} Groups ordered by their mean index over the units shown; sensitivity.csv has every unit with first-order indices and 95 % intervals.",
                sums.samples
            ),
        );
    }
    figure!(files, dir, "convergence", (1000, 440), |area| draw_convergence(&area, inputs));
    entry(
        "convergence",
        "Convergence",
        format!(
            "The largest 95 % Wilson half-width over every zone probability as the coordinator merged results (a point per 15 % more samples, in the order results arrived; sweeps stored before it was kept have none), beside the half-width the least certain zone probability (P = {:.3}) would have after n samples. The dot is the sweep's final value, ±{:.4} after {} samples: every zone probability of the report is within that of its limit (95 % confidence).",
            worst_proportion(inputs),
            a.largest_zone_half_width(),
            a.samples_ok
        ),
    );
    Ok(figures)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum MapKind {
    Polygons,
    Points,
    Tiles,
}

impl MapKind {
    fn describe(self) -> &'static str {
        match self {
            MapKind::Polygons => "unit polygons from the dataset's units.geojson",
            MapKind::Points => "units at their lon/lat from units.csv; the dataset has no polygons",
            MapKind::Tiles => "a tile per unit in id order; the dataset has no coordinates",
        }
    }
}

fn map_kind(places: &[Place]) -> MapKind {
    if places.iter().any(|p| matches!(p, Place::Polygons(_))) {
        MapKind::Polygons
    } else if places.iter().any(|p| matches!(p, Place::Point(..))) {
        MapKind::Points
    } else {
        MapKind::Tiles
    }
}

/// The lon/lat bounding box of the places.
fn bounds(places: &[Place]) -> Option<(f64, f64, f64, f64)> {
    let mut b: Option<(f64, f64, f64, f64)> = None;
    let mut add = |(x, y): (f64, f64)| {
        b = Some(match b {
            None => (x, x, y, y),
            Some((x0, x1, y0, y1)) => (x0.min(x), x1.max(x), y0.min(y), y1.max(y)),
        });
    };
    for p in places {
        match p {
            Place::Polygons(polygons) => polygons.iter().flatten().flatten().for_each(|&q| add(q)),
            Place::Point(x, y) => add((*x, *y)),
            Place::Unknown => {}
        }
    }
    b
}

/// A map of `zones` (a zone and its opacity per unit) with a legend on the right.
#[allow(clippy::too_many_arguments)]
fn draw_map<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    places: &[Place],
    labels: &[&str],
    zones: &[(usize, f64)],
    n_zones: usize,
    opacity_legend: bool,
    title: &str,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let area = area.titled(title, font(20))?;
    let (map, legend) = area.split_horizontally(area.dim_in_pixel().0 - 270);
    let map = map.margin(10, 10, 10, 10);
    let (w, h) = map.dim_in_pixel();
    let kind = map_kind(places);
    let show_labels = labels.len() <= 100;
    match (kind, bounds(places)) {
        (MapKind::Tiles, _) | (_, None) => {
            let n = zones.len().max(1);
            let cols = ((n as f64 * f64::from(w) / f64::from(h)).sqrt().ceil() as usize).max(1);
            let rows = n.div_ceil(cols);
            let side = (f64::from(w) / cols as f64).min(f64::from(h) / rows as f64);
            for (u, &(zone, p)) in zones.iter().enumerate() {
                let (c, r) = ((u % cols) as f64, (u / cols) as f64);
                let rect = [
                    ((c * side) as i32 + 1, (r * side) as i32 + 1),
                    (((c + 1.0) * side) as i32 - 1, ((r + 1.0) * side) as i32 - 1),
                ];
                map.draw(&Rectangle::new(rect, zone_colour(zone).mix(p).filled()))?;
                map.draw(&Rectangle::new(rect, BLACK.mix(0.3)))?;
                if show_labels {
                    let centre = (((c + 0.5) * side) as i32, ((r + 0.5) * side) as i32);
                    map.draw(&Text::new(
                        labels[u].to_owned(),
                        centre,
                        font(10).pos(Pos::new(HPos::Center, VPos::Center)),
                    ))?;
                }
            }
        }
        (_, Some((x0, x1, y0, y1))) => {
            // Equirectangular, x scaled by cos(mid latitude), the aspect kept.
            let scale_x = ((y0 + y1) / 2.0).to_radians().cos().max(0.05);
            let pad = 0.03 * (x1 - x0).max(y1 - y0).max(0.1);
            let (px0, px1) = ((x0 - pad) * scale_x, (x1 + pad) * scale_x);
            let (py0, py1) = (y0 - pad, y1 + pad);
            let k = (f64::from(w) / (px1 - px0)).min(f64::from(h) / (py1 - py0));
            let (ox, oy) = ((f64::from(w) - k * (px1 - px0)) / 2.0, (f64::from(h) - k * (py1 - py0)) / 2.0);
            let project = |(lon, lat): (f64, f64)| -> (i32, i32) {
                ((ox + k * (lon * scale_x - px0)).round() as i32, (oy + k * (py1 - lat)).round() as i32)
            };
            // Larger units first, each with its holes punched, so enclaves stay visible.
            let mut drawing: Vec<usize> = (0..places.len()).collect();
            let extent = |p: &Place| match p {
                Place::Polygons(_) => bounds(std::slice::from_ref(p)).map_or(0.0, |(a, b, c, d)| (b - a) * (d - c)),
                _ => -1.0,
            };
            drawing.sort_by(|&a, &b| extent(&places[b]).total_cmp(&extent(&places[a])));
            let radius = (f64::from(w.min(h)) / (zones.len() as f64).sqrt() / 8.0).clamp(3.0, 10.0) as i32;
            for &u in &drawing {
                let (zone, p) = zones[u];
                let colour = zone_colour(zone);
                match &places[u] {
                    Place::Polygons(polygons) => {
                        for rings in polygons {
                            let outer: Vec<(i32, i32)> = rings[0].iter().map(|&q| project(q)).collect();
                            map.draw(&Polygon::new(outer.clone(), WHITE.filled()))?;
                            map.draw(&Polygon::new(outer.clone(), colour.mix(p).filled()))?;
                            for hole in &rings[1..] {
                                map.draw(&Polygon::new(
                                    hole.iter().map(|&q| project(q)).collect::<Vec<_>>(),
                                    WHITE.filled(),
                                ))?;
                            }
                            for ring in rings {
                                let mut path: Vec<(i32, i32)> = ring.iter().map(|&q| project(q)).collect();
                                path.push(path[0]);
                                map.draw(&PathElement::new(path, BLACK.mix(0.45)))?;
                            }
                        }
                    }
                    Place::Point(lon, lat) => {
                        let c = project((*lon, *lat));
                        map.draw(&Circle::new(c, radius, WHITE.filled()))?;
                        map.draw(&Circle::new(c, radius, colour.mix(p).filled()))?;
                        map.draw(&Circle::new(c, radius, BLACK.mix(0.5)))?;
                    }
                    Place::Unknown => {}
                }
            }
            if show_labels {
                for (u, place) in places.iter().enumerate() {
                    let (anchor, at) = match place {
                        Place::Polygons(polygons) => {
                            // The mean vertex of the largest outer ring.
                            let ring = polygons.iter().map(|r| &r[0]).max_by_key(|r| r.len()).expect("a polygon");
                            let n = ring.len() as f64;
                            let c =
                                (ring.iter().map(|q| q.0).sum::<f64>() / n, ring.iter().map(|q| q.1).sum::<f64>() / n);
                            (Pos::new(HPos::Center, VPos::Center), project(c))
                        }
                        Place::Point(lon, lat) => {
                            let (x, y) = project((*lon, *lat));
                            (Pos::new(HPos::Left, VPos::Center), (x + radius + 2, y))
                        }
                        Place::Unknown => continue,
                    };
                    map.draw(&Text::new(labels[u].to_owned(), at, font(9).pos(anchor).color(&BLACK.mix(0.8))))?;
                }
            }
            let unplaced = places.iter().filter(|p| matches!(p, Place::Unknown)).count();
            if unplaced > 0 {
                map.draw(&Text::new(
                    format!("{unplaced} unit(s) without a place are not drawn"),
                    (4, h as i32 - 14),
                    font(12),
                ))?;
            }
        }
    }
    // Legend: the zones, then the opacity scale.
    let mut y = 20;
    legend.draw(&Text::new("zone", (10, y), font(14)))?;
    for z in 1..=n_zones {
        y += 24;
        legend.draw(&Rectangle::new([(10, y), (30, y + 16)], zone_colour(z).filled()))?;
        legend.draw(&Text::new(format!("{z} {}", zone_name(z)), (36, y + 2), font(11)))?;
    }
    if opacity_legend {
        y += 44;
        legend.draw(&Text::new("P(modal zone)", (10, y), font(14)))?;
        y += 22;
        for (i, p) in [0.2, 0.4, 0.6, 0.8, 1.0].into_iter().enumerate() {
            let x = 10 + 44 * i as i32;
            legend.draw(&Rectangle::new([(x, y), (x + 38, y + 18)], zone_colour(1).mix(p).filled()))?;
            legend.draw(&Rectangle::new([(x, y), (x + 38, y + 18)], BLACK.mix(0.3)))?;
            legend.draw(&Text::new(
                format!("{p:.1}"),
                (x + 19, y + 32),
                font(11).pos(Pos::new(HPos::Center, VPos::Center)),
            ))?;
        }
    }
    Ok(())
}

/// An axis of `n` rows or columns, the i-th centred on i: asked for `n`
/// labels, plotters puts them at the integers (a step of 1 is the smallest
/// round step that fits), so each label sits in the middle of its row.
fn index_axis(n: usize) -> std::ops::Range<f64> {
    -0.5..(n.max(1) as f64 - 0.5)
}

/// The row or column an axis label at `v` names: `v` when it is an integer in 0..n.
fn index_at(v: f64, n: usize) -> Option<usize> {
    let i = v.round();
    ((v - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < n).then_some(i as usize)
}

/// Stacked zone-probability bars, a row per unit of `order` (top first).
fn draw_zone_bars<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, inputs: &Inputs<'_>, order: &[usize]) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let n = order.len();
    let n_zones = inputs.view.aggregate.shape.n_zones;
    let area = area.titled("Zone probabilities, least robust first", font(20))?;
    let (plot, legend) = area.split_vertically(area.dim_in_pixel().1 - 44);
    let mut chart = ChartBuilder::on(&plot)
        .margin(10)
        .margin_right(30)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..1.0, index_axis(n))?;
    let ids = &inputs.view.unit_ids;
    let label_of = |v: &f64| {
        index_at(*v, n).map_or(String::new(), |i| {
            let u = order[n - 1 - i];
            format!("{}{}", ids[u], if inputs.facts[u].robustness.robust { "" } else { " *" })
        })
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(order.len())
        .y_label_formatter(&label_of)
        .y_label_style(font(10))
        .x_label_style(font(12))
        .x_desc("probability (* = not robust)")
        .axis_desc_style(font(13))
        .draw()?;
    for (row, &u) in order.iter().enumerate() {
        let i = (n - 1 - row) as f64;
        let mut x = 0.0;
        for (z, p) in inputs.facts[u].robustness.zones.iter().enumerate() {
            let x1 = (x + p.p).min(1.0);
            if x1 > x {
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x, i - 0.5), (x1, i + 0.5)],
                    zone_colour(z + 1).filled(),
                )))?;
            }
            x = x1;
        }
    }
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(inputs.threshold, -0.5), (inputs.threshold, n as f64 - 0.5)],
        BLACK.mix(0.4).stroke_width(1),
    )))?;
    let (mut x, mut y) = (20, 4);
    let width = legend.dim_in_pixel().0 as i32;
    for z in 1..=n_zones {
        let text = format!("{z} {}", zone_name(z));
        let (text_width, _) = legend.estimate_text_size(&text, &font(11))?;
        let step = 30 + text_width as i32;
        if x + step > width && x > 20 {
            (x, y) = (20, y + 18);
        }
        legend.draw(&Rectangle::new([(x, y), (x + 14, y + 14)], zone_colour(z).filled()))?;
        legend.draw(&Text::new(text, (x + 18, y + 1), font(11)))?;
        x += step;
    }
    Ok(())
}

/// Units × years heat maps of the peak-year distribution, a panel per scenario.
fn draw_peak_heatmap<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    inputs: &Inputs<'_>,
    units: &[usize],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let a = &inputs.view.aggregate;
    let shape = a.shape;
    let n_bins = shape.n_peak_bins() as i32;
    let n = units.len() as i32;
    let area = area.titled("Peak year of each unit's CE: share of samples", font(20))?;
    let (panels, legend) = area.split_vertically(area.dim_in_pixel().1 - 44);
    let (label_area, panels) = panels.split_horizontally(80);
    let parts = panels.split_evenly((1, 3));
    let ids = &inputs.view.unit_ids;
    for (p, (part, s)) in parts.iter().zip(Scenario::ALL).enumerate() {
        let mut chart = ChartBuilder::on(part)
            .caption(format!("{} scenario", scenario_label(s)), font(15))
            .margin(6)
            .margin_right(18)
            .x_label_area_size(34)
            .build_cartesian_2d(0..n_bins, 0..n)?;
        let base = shape.base_year;
        let horizon = shape.horizon;
        let year_label = move |b: &i32| {
            let year = base + *b;
            if *b == n_bins - 1 {
                "none".to_owned()
            } else if year % 10 == 0 {
                year.to_string()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(n_bins as usize)
            .x_label_formatter(&year_label)
            .x_label_style(font(10))
            .disable_y_axis()
            .draw()?;
        for (row, &u) in units.iter().enumerate() {
            let counts = a.peak_histogram(s, u);
            let i = n - 1 - row as i32;
            chart.draw_series(counts.iter().enumerate().filter(|(_, c)| **c > 0).map(|(b, &c)| {
                let share = c as f64 / a.samples_ok as f64;
                Rectangle::new([(b as i32, i), (b as i32 + 1, i + 1)], heat_colour(share).filled())
            }))?;
        }
        let m = shape.milestone - base + 1;
        if (0..n_bins).contains(&m) {
            chart.draw_series(DashedLineSeries::new(vec![(m, 0), (m, n)], 4, 3, BLACK.mix(0.6).stroke_width(1)))?;
        }
        chart.draw_series(std::iter::once(Rectangle::new([(0, 0), (n_bins, n)], BLACK.mix(0.4))))?;
        let _ = horizon;
        if p == 0 {
            // Unit labels beside the first panel, at the rows' pixel positions.
            let (_, y_range) = chart.plotting_area().get_pixel_range();
            let (top, bottom) = (y_range.start, y_range.end);
            let row_px = f64::from(bottom - top) / f64::from(n.max(1));
            let (_, label_top) = label_area.get_base_pixel();
            let (_, part_top) = part.get_base_pixel();
            let offset = part_top - label_top;
            for (row, &u) in units.iter().enumerate() {
                let y = offset + top - part_top + (row_px * (row as f64 + 0.5)) as i32;
                label_area.draw(&Text::new(
                    ids[u].clone(),
                    (76, y),
                    font(10).pos(Pos::new(HPos::Right, VPos::Center)),
                ))?;
            }
        }
    }
    // Colour scale.
    legend.draw(&Text::new("share of samples", (90, 14), font(12).pos(Pos::new(HPos::Left, VPos::Center))))?;
    for i in 0..=20 {
        let x = 200 + 14 * i;
        legend.draw(&Rectangle::new([(x, 6), (x + 14, 22)], heat_colour(f64::from(i) / 20.0).filled()))?;
    }
    legend.draw(&Rectangle::new([(200, 6), (200 + 14 * 21, 22)], BLACK.mix(0.4)))?;
    legend.draw(&Text::new("0", (200, 34), font(11).pos(Pos::new(HPos::Center, VPos::Center))))?;
    legend.draw(&Text::new("1", (200 + 14 * 21, 34), font(11).pos(Pos::new(HPos::Center, VPos::Center))))?;
    legend.draw(&Text::new(
        format!("dashed: end of the milestone year {}; \"none\": not peaked by {}", shape.milestone, shape.horizon),
        (520, 14),
        font(12).pos(Pos::new(HPos::Left, VPos::Center)),
    ))?;
    Ok(())
}

/// The regional CE fan per scenario with the observed series.
fn draw_fan<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, inputs: &Inputs<'_>, history: &History) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let a = &inputs.view.aggregate;
    let fans: Vec<Vec<FanYear>> = Scenario::ALL.iter().map(|&s| a.regional_fan(s)).collect();
    let mt = |t: f64| t / 1e6;
    let values = fans
        .iter()
        .flatten()
        .flat_map(|y| [y.p05, y.p95, y.median])
        .flatten()
        .chain(history.ce.iter().copied())
        .map(mt)
        .filter(|v| v.is_finite());
    let (low, high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    let (low, high) = if low.is_finite() { (low.min(0.0), high * 1.05 + 1e-9) } else { (0.0, 1.0) };
    let first = history.years.first().copied().unwrap_or(a.shape.base_year);
    let area = area.titled("Regional CE, Mt: observed and projected (quantiles over the samples)", font(20))?;
    let (panels, legend) = area.split_vertically(area.dim_in_pixel().1 - 34);
    let parts = panels.split_evenly((1, 3));
    for (part, (s, fan)) in parts.iter().zip(Scenario::ALL.iter().zip(&fans)) {
        let mut chart = ChartBuilder::on(part)
            .caption(format!("{} scenario", scenario_label(*s)), font(15))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(48)
            .build_cartesian_2d(first..a.shape.horizon, low..high)?;
        chart
            .configure_mesh()
            .x_labels(6)
            .y_labels(6)
            .y_label_formatter(&|v| format!("{v:.0}"))
            .y_desc("Mt")
            .axis_desc_style(font(12))
            .label_style(font(11))
            .light_line_style(BLACK.mix(0.06))
            .draw()?;
        let colour = match s {
            Scenario::Low => RGBColor(26, 152, 80),
            Scenario::Baseline => RGBColor(49, 130, 189),
            Scenario::High => RGBColor(215, 48, 39),
        };
        let band = |lo: fn(&FanYear) -> Option<f64>, hi: fn(&FanYear) -> Option<f64>| -> Vec<(i32, f64)> {
            let upper = fan.iter().filter_map(|y| hi(y).map(|v| (y.year, mt(v))));
            let lower: Vec<(i32, f64)> = fan.iter().filter_map(|y| lo(y).map(|v| (y.year, mt(v)))).collect();
            upper.chain(lower.into_iter().rev()).collect()
        };
        chart.draw_series(std::iter::once(Polygon::new(band(|y| y.p05, |y| y.p95), colour.mix(0.18).filled())))?;
        chart.draw_series(std::iter::once(Polygon::new(band(|y| y.p25, |y| y.p75), colour.mix(0.35).filled())))?;
        chart.draw_series(LineSeries::new(
            fan.iter().filter_map(|y| y.median.map(|v| (y.year, mt(v)))),
            colour.stroke_width(2),
        ))?;
        chart.draw_series(LineSeries::new(
            history.years.iter().zip(&history.ce).map(|(&y, &v)| (y, mt(v))),
            BLACK.stroke_width(2),
        ))?;
    }
    let mut x = 60;
    for (text, style) in [
        ("observed", ShapeStyle::from(&BLACK).stroke_width(2)),
        ("median", ShapeStyle::from(&RGBColor(49, 130, 189)).stroke_width(2)),
        ("25–75 %", RGBColor(49, 130, 189).mix(0.45).filled()),
        ("5–95 %", RGBColor(49, 130, 189).mix(0.18).filled()),
    ] {
        if style.filled {
            legend.draw(&Rectangle::new([(x, 8), (x + 26, 22)], style))?;
        } else {
            legend.draw(&PathElement::new(vec![(x, 15), (x + 26, 15)], style))?;
        }
        legend.draw(&Text::new(text, (x + 32, 15), font(12).pos(Pos::new(HPos::Left, VPos::Center))))?;
        x += 140;
    }
    Ok(())
}

fn ridge_trace(inputs: &Inputs<'_>) -> Result<Vec<TracePoint>> {
    let parameters = Parameters::nominal(&inputs.config);
    let (trace, _) = chain::ridge_trace(&inputs.dataset, &inputs.config, &parameters)?;
    if trace.is_empty() {
        bail!("the configuration's ridge grid is empty");
    }
    Ok(trace)
}

/// The range of K the sweep sampled, from its spec: the support of the
/// distribution, or its central 99 % when unbounded; `None` when K is
/// not sampled.
fn sampled_k_range(inputs: &Inputs<'_>) -> Option<(f64, f64, &'static str)> {
    let checked = Checked::try_from(inputs.spec.k?).ok()?;
    if checked.is_fixed() {
        return None;
    }
    let (low, high) = (checked.quantile(0.0), checked.quantile(1.0));
    if low.is_finite() && high.is_finite() {
        Some((low, high, "its range"))
    } else {
        Some((checked.quantile(0.005), checked.quantile(0.995), "its central 99 %"))
    }
}

fn draw_ridge<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    inputs: &Inputs<'_>,
    trace: &[TracePoint],
    range: Option<(f64, f64, &str)>,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let k_max = trace.iter().map(|p| p.k).fold(0.0, f64::max).max(1e-6);
    let area = area.titled("Ridge trace of the STIRPAT regression (nominal parameters)", font(20))?;
    let parts = area.split_evenly((1, 2));
    let colours = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
    ];
    let finite = |v: f64| v.is_finite();
    let betas = trace.iter().flat_map(|p| p.standardized).filter(|v| finite(*v));
    let (b_lo, b_hi) = betas.fold((0.0f64, 0.0f64), |(l, h), v| (l.min(v), h.max(v)));
    let pad = 0.05 * (b_hi - b_lo).max(1e-6);
    let vifs = trace.iter().flat_map(|p| p.vif).filter(|v| finite(*v) && *v > 0.0);
    let (v_lo, v_hi) = vifs.fold((f64::INFINITY, 1.0f64), |(l, h), v| (l.min(v), h.max(v)));
    let v_lo = if v_lo.is_finite() { (v_lo * 0.8).min(1.0) } else { 0.1 };
    let shade = |chart: &mut ChartContext<'_, DB, _>, y0: f64, y1: f64| -> Result<()> {
        if let Some((lo, hi, _)) = range {
            chart.draw_series(std::iter::once(Rectangle::new(
                [(lo, y0), (hi, y1)],
                RGBColor(120, 120, 120).mix(0.18).filled(),
            )))?;
        } else {
            let k = inputs.config.ridge.k;
            chart.draw_series(DashedLineSeries::new(vec![(k, y0), (k, y1)], 5, 4, BLACK.mix(0.6).stroke_width(1)))?;
        }
        Ok(())
    };
    {
        let (y0, y1) = (b_lo - pad, b_hi + pad);
        let mut chart = ChartBuilder::on(&parts[0])
            .caption("standardized coefficients β*", font(15))
            .margin(10)
            .x_label_area_size(34)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..k_max, y0..y1)?;
        chart
            .configure_mesh()
            .label_style(font(11))
            .x_desc("K")
            .axis_desc_style(font(12))
            .light_line_style(BLACK.mix(0.06))
            .draw()?;
        shade(&mut chart, y0, y1)?;
        for (d, driver) in Driver::ALL.iter().enumerate() {
            let c = colours[d % colours.len()];
            chart
                .draw_series(LineSeries::new(
                    trace.iter().map(|p| (p.k, p.standardized[d])).filter(|q| finite(q.1)),
                    c.stroke_width(2),
                ))?
                .label(driver.key())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .label_font(font(11))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
    }
    {
        let (y0, y1) = (v_lo, v_hi * 1.5);
        let mut chart = ChartBuilder::on(&parts[1])
            .caption("variance inflation factors (log scale)", font(15))
            .margin(10)
            .x_label_area_size(34)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..k_max, (y0..y1).log_scale())?;
        chart
            .configure_mesh()
            .label_style(font(11))
            .x_desc("K")
            .axis_desc_style(font(12))
            .light_line_style(BLACK.mix(0.06))
            .draw()?;
        if let Some((lo, hi, _)) = range {
            chart.draw_series(std::iter::once(Rectangle::new(
                [(lo, y0), (hi, y1)],
                RGBColor(120, 120, 120).mix(0.18).filled(),
            )))?;
        } else {
            let k = inputs.config.ridge.k;
            chart.draw_series(DashedLineSeries::new(vec![(k, y0), (k, y1)], 5, 4, BLACK.mix(0.6).stroke_width(1)))?;
        }
        let limit = inputs.config.ridge.vif_limit;
        if limit > y0 && limit < y1 {
            chart.draw_series(DashedLineSeries::new(
                vec![(0.0, limit), (k_max, limit)],
                6,
                4,
                RGBColor(200, 0, 0).stroke_width(1),
            ))?;
        }
        for d in 0..Driver::ALL.len() {
            let c = colours[d % colours.len()];
            chart.draw_series(LineSeries::new(
                trace.iter().map(|p| (p.k, p.vif[d])).filter(|q| finite(q.1) && q.1 > 0.0),
                c.stroke_width(2),
            ))?;
        }
    }
    Ok(())
}

/// Total-effect indices of the groups, a row per unit.
fn draw_sensitivity<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    inputs: &Inputs<'_>,
    groups: &[String],
    analyses: &[UnitIndices],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    // Groups by their mean index over the units shown, largest first.
    let mean = |g: &str| {
        let values: Vec<f64> = analyses
            .iter()
            .filter_map(|(_, list)| list.iter().find(|(name, _)| name == g).and_then(|(_, v)| *v))
            .collect();
        if values.is_empty() { f64::NEG_INFINITY } else { values.iter().sum::<f64>() / values.len() as f64 }
    };
    let mut order: Vec<&String> = groups.iter().collect();
    order.sort_by(|x, y| mean(y).total_cmp(&mean(x)).then(x.cmp(y)));
    let (n_units, n_groups) = (analyses.len(), order.len());
    let area = area.titled("Total-effect index ST of each input group on the total score", font(20))?;
    let mut chart = ChartBuilder::on(&area)
        .margin(10)
        .margin_right(20)
        .x_label_area_size(70)
        .y_label_area_size(90)
        .build_cartesian_2d(index_axis(n_groups), index_axis(n_units))?;
    let ids = &inputs.view.unit_ids;
    let unit_label =
        |v: &f64| index_at(*v, n_units).map_or(String::new(), |i| ids[analyses[n_units - 1 - i].0].clone());
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(order.len())
        .y_labels(analyses.len())
        .x_label_formatter(&|_| String::new())
        .y_label_formatter(&unit_label)
        .label_style(font(11))
        .draw()?;
    // Group names are wider than their columns: written under them in two
    // staggered rows, each centred on its column.
    let base = area.get_base_pixel();
    for (g, name) in order.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(g as f64, -0.5));
        let row = if g % 2 == 0 { 8 } else { 26 };
        let style = font(11).pos(Pos::new(HPos::Center, VPos::Top));
        area.draw(&Text::new(name.to_string(), (x - base.0, y - base.1 + row), style))?;
    }
    let (x_px, y_px) = chart.plotting_area().get_pixel_range();
    let cell_width = (x_px.end - x_px.start) / n_groups.max(1) as i32;
    let cell_height = (y_px.end - y_px.start) / n_units.max(1) as i32;
    let value_font = if cell_width >= 34 && cell_height >= 14 { 10 } else { 0 };
    for (row, (_, list)) in analyses.iter().enumerate() {
        let i = (n_units - 1 - row) as f64;
        for (g, name) in order.iter().enumerate() {
            let value = list.iter().find(|(n, _)| n == *name).and_then(|(_, v)| *v);
            let g = g as f64;
            let corner = [(g - 0.5, i - 0.5), (g + 0.5, i + 0.5)];
            let fill = value.map_or(RGBColor(235, 235, 235), |v| heat_colour(v.clamp(0.0, 1.0)));
            chart.draw_series(std::iter::once(Rectangle::new(corner, fill.filled())))?;
            chart.draw_series(std::iter::once(Rectangle::new(corner, WHITE.stroke_width(1))))?;
            if value_font > 0 {
                let text = value.map_or("–".to_owned(), |v| format!("{v:.2}"));
                let dark = value.is_some_and(|v| v > 0.55);
                let style = font(value_font).pos(Pos::new(HPos::Center, VPos::Center)).color(if dark {
                    &WHITE
                } else {
                    &BLACK
                });
                chart.draw_series(std::iter::once(Text::new(text, (g, i), style)))?;
            }
        }
    }
    Ok(())
}

/// The zone probability whose 95 % interval is the widest (closest to 1/2).
fn worst_proportion(inputs: &Inputs<'_>) -> f64 {
    let a = &inputs.view.aggregate;
    let n = a.samples_ok;
    a.zone_counts
        .rows()
        .flat_map(|row| row.iter().copied())
        .max_by(|&x, &y| wilson_half_width(x, n).total_cmp(&wilson_half_width(y, n)))
        .map_or(0.5, |c| c as f64 / n as f64)
}

fn draw_convergence<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, inputs: &Inputs<'_>) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let status = &inputs.view.status;
    let a = &inputs.view.aggregate;
    let n = a.samples_ok.max(1);
    let p = worst_proportion(inputs);
    let actual = a.largest_zone_half_width();
    let history = &status.provenance.history;
    let first = history.first().map_or(n, |p| p.0.max(1));
    let (n0, n1) = (10.0f64.min(first as f64), (n as f64 * 10.0).max(1000.0));
    let curve: Vec<(f64, f64)> = (0..=200)
        .map(|i| {
            let m = (n0.ln() + (n1.ln() - n0.ln()) * f64::from(i) / 200.0).exp().round().max(1.0);
            let successes = (p * m).round() as u64;
            (m, wilson_half_width(successes, m as u64))
        })
        .collect();
    let recorded: Vec<(f64, f64)> = history.iter().map(|&(m, h)| (m.max(1) as f64, h.max(1e-6))).collect();
    let y_max = curve.iter().chain(&recorded).map(|q| q.1).fold(actual, f64::max) * 1.1;
    let y_min = curve.iter().chain(&recorded).map(|q| q.1).fold(actual, f64::min).max(1e-4) * 0.8;
    let area = area.titled("Largest 95 % half-width of the zone probabilities", font(20))?;
    let mut chart = ChartBuilder::on(&area)
        .margin(12)
        .margin_right(30)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((n0..n1).log_scale(), (y_min..y_max).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("successful samples")
        .y_desc("half-width")
        .y_labels(12)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.3}"))
        .label_style(font(11))
        .axis_desc_style(font(12))
        .light_line_style(BLACK.mix(0.06))
        .draw()?;
    chart
        .draw_series(LineSeries::new(curve, RGBColor(49, 130, 189).stroke_width(2)))?
        .label(format!("expected for P = {p:.3}"))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RGBColor(49, 130, 189).stroke_width(2)));
    if !recorded.is_empty() {
        let ink = RGBColor(84, 39, 143);
        chart
            .draw_series(LineSeries::new(recorded.iter().copied(), ink.stroke_width(2)))?
            .label("recorded as results were merged")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], ink.stroke_width(2)));
        chart.draw_series(recorded.iter().map(|&q| Circle::new(q, 2, ink.filled())))?;
    }
    chart
        .draw_series(std::iter::once(Circle::new((n as f64, actual), 6, RGBColor(215, 48, 39).filled())))?
        .label(format!("this sweep: ±{actual:.4} after {n} samples"))
        .legend(|(x, y)| Circle::new((x + 9, y), 5, RGBColor(215, 48, 39).filled()));
    if let Some(target) = status.until_ci.filter(|t| *t > y_min && *t < y_max) {
        chart
            .draw_series(DashedLineSeries::new(vec![(n0, target), (n1, target)], 6, 4, BLACK.mix(0.6).stroke_width(1)))?
            .label(format!("target ±{target}"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK.mix(0.6)));
    }
    chart
        .configure_series_labels()
        .label_font(font(12))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    Ok(())
}

/// The headline answers, a sentence each.
fn headlines(inputs: &Inputs<'_>) -> Vec<String> {
    let view = inputs.view;
    let a = &view.aggregate;
    let shape = a.shape;
    let n = inputs.facts.len();
    let mut out = Vec::new();
    let robust = inputs.facts.iter().filter(|f| f.robustness.robust).count();
    let mut pairs: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    for f in inputs.facts.iter().filter(|f| !f.robustness.robust) {
        if let Some(r) = f.robustness.runner_up_zone {
            let m = f.robustness.modal_zone;
            *pairs.entry((m.min(r), m.max(r))).or_default() += 1;
        }
    }
    let mut sentence = format!(
        "{robust} of {n} zone assignments are robust (the 95 % interval of the modal zone's probability lies at or above {})",
        inputs.threshold
    );
    if robust < n {
        let (&(z1, z2), &count) = pairs.iter().max_by(|x, y| x.1.cmp(y.1).then(y.0.cmp(x.0))).unwrap_or((&(0, 0), &0));
        let _ = write!(sentence, "; {} could flip", n - robust);
        if count > 0 {
            let mostly = if count * 2 > n - robust { "mostly" } else { "most often" };
            let _ = write!(sentence, ", {mostly} between zones {z1} and {z2} ({count} of them)");
        }
    }
    sentence.push('.');
    out.push(sentence);
    if view.nominal_zones.len() == n {
        let agree =
            inputs.facts.iter().filter(|f| f.robustness.nominal_zone == Some(f.robustness.modal_zone as u8)).count();
        out.push(format!("The nominal run's zone is the modal zone for {agree} of {n} units."));
    }
    let peaks: Vec<String> = Scenario::ALL
        .iter()
        .map(|&s| {
            let p = a.regional_peaking(s).by_milestone;
            format!("{:.2} ({:.2}–{:.2}) under the {} scenario", p.p, p.low, p.high, scenario_label(s))
        })
        .collect();
    out.push(format!("The region's total CE peaks by {} with probability {}.", shape.milestone, join_and(&peaks)));
    let medians: Vec<String> = Scenario::ALL
        .iter()
        .filter_map(|&s| {
            let q = a.regional_peaking(s).quantiles?;
            Some(match (q.p05, q.median) {
                (None, _) => {
                    format!("{}: not peaked by {} in at least 95 % of the samples", scenario_label(s), shape.horizon)
                }
                (Some(_), None) => format!(
                    "{}: not peaked by {} in at least half of the samples (5 %: {})",
                    scenario_label(s),
                    shape.horizon,
                    year_text(q.p05, shape.horizon)
                ),
                (Some(_), Some(median)) => format!(
                    "{} {median} (5–95 %: {}–{})",
                    scenario_label(s),
                    year_text(q.p05, shape.horizon),
                    year_text(q.p95, shape.horizon)
                ),
            })
        })
        .collect();
    if !medians.is_empty() {
        out.push(format!("Median regional peak year: {}.", medians.join("; ")));
    }
    let neutral: Vec<String> = Scenario::ALL
        .iter()
        .map(|&s| {
            let expected: f64 = inputs.facts.iter().map(|f| f.peaking[s as usize].neutral.p).sum();
            format!("{expected:.1} under the {} scenario", scenario_label(s))
        })
        .collect();
    out.push(format!("Units expected to be carbon neutral by {}: {} (of {n}).", shape.horizon, join_and(&neutral)));
    if let Some(sums) = &a.sensitivity {
        let mut top: BTreeMap<String, usize> = BTreeMap::new();
        let uncertain: Vec<usize> = (0..n).filter(|&u| !inputs.facts[u].robustness.robust).collect();
        for &u in &uncertain {
            if let Some(g) = sums.analyse(&shape, u, Output::Total).groups.into_iter().find(|g| g.total.is_some()) {
                *top.entry(g.group).or_default() += 1;
            }
        }
        if let Some((group, count)) = top.iter().max_by(|x, y| x.1.cmp(y.1).then(y.0.cmp(x.0))) {
            out.push(format!(
                "The inputs of group \u{201c}{group}\u{201d} drive the total score of {count} of the {} uncertain units most (largest total-effect index).",
                uncertain.len()
            ));
        }
    }
    out.push(format!(
        "Every zone probability is within ±{:.4} of its limit (95 % confidence) after {} successful samples.",
        a.largest_zone_half_width(),
        a.samples_ok
    ));
    out
}

fn year_text(year: Option<i32>, horizon: i32) -> String {
    year.map_or(format!("not by {horizon}"), |y| y.to_string())
}

fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{}, and {last}", init.join(", ")),
    }
}

/// A few lines of script: click a header to sort its table.
const SORT_SCRIPT: &str = r#"
document.querySelectorAll("table.sortable th").forEach(function (th, column) {
  th.title = "click to sort";
  th.addEventListener("click", function () {
    var body = th.closest("table").tBodies[0];
    var dir = th.dataset.dir === "asc" ? -1 : 1;
    th.dataset.dir = dir > 0 ? "asc" : "desc";
    var key = function (row) { var c = row.cells[column]; return c.dataset.v !== undefined ? c.dataset.v : c.textContent; };
    var rows = Array.prototype.slice.call(body.rows).sort(function (a, b) {
      var x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
      return dir * (isNaN(nx) || isNaN(ny) ? x.localeCompare(y) : nx - ny);
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
document.body.dataset.sortable = "ready";
"#;

const STYLE: &str = r#"
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 1.5em auto; max-width: 1250px; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
dl.provenance { display: grid; grid-template-columns: max-content 1fr; gap: 0.15em 1em; font-size: 0.92em; }
dl.provenance dt { font-weight: bold; }
dl.provenance dd { margin: 0; overflow-wrap: anywhere; }
ul.headlines li { margin: 0.3em 0; }
figure { margin: 1.2em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #444; max-width: 60em; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
table { border-collapse: collapse; font-size: 0.82em; }
th, td { border: 1px solid #ddd; padding: 0.2em 0.45em; text-align: right; }
td { white-space: nowrap; }
.table-wrap { overflow-x: auto; max-height: 85vh; }
th { background: #f0f0f0; cursor: pointer; position: sticky; top: 0; }
td.text { text-align: left; }
tr.uncertain td { background: #fff4e5; }
.files code { font-size: 0.95em; }
@media print {
  body { max-width: none; margin: 0; font-size: 10pt; }
  th { position: static; cursor: auto; }
  .table-wrap { overflow: visible; max-height: none; }
  table { font-size: 7pt; }
  figure { break-inside: avoid; }
  details > pre { display: block; }
  a { color: inherit; text-decoration: none; }
}
"#;

fn page(
    inputs: &Inputs<'_>,
    columns: &[Column],
    rows: &[Vec<Cell>],
    figures: &[FigureEntry],
    history: &History,
) -> String {
    let view = inputs.view;
    let s = &view.status;
    let p = &s.provenance;
    let a = &view.aggregate;
    let mut h = String::new();
    let title = format!("zonesweep report: sweep {}", s.id);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <link rel=\"icon\" href=\"data:,\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    let known = |t: &str| if t.is_empty() { "not recorded".to_owned() } else { escape(t) };
    let mut facts: Vec<(&str, String)> = vec![
        (
            "state",
            escape(&if s.reason.is_empty() { s.state.to_string() } else { format!("{}: {}", s.state, s.reason) }),
        ),
        ("zonesweep", known(&p.version)),
        ("model chain", escape(&crate::report::chain_revision(p.chain))),
        (
            "dataset",
            format!(
                "{} ({} units, {}–{}), sha256 <code>{}</code>",
                known(&p.dataset_name),
                s.units,
                history.years.first().copied().unwrap_or(0),
                history.years.last().copied().unwrap_or(0),
                escape(&s.dataset_hash)
            ),
        ),
        ("configuration", format!("sha256 <code>{}</code>", escape(&s.config_hash))),
        ("spec", format!("sha256 <code>{}</code>", escape(&s.spec_hash))),
        ("seed", s.seed.to_string()),
        (
            "samples",
            format!(
                "{} ({} done, {} failed) in {} jobs; design {}",
                s.samples,
                s.samples_done,
                s.samples_failed,
                s.jobs,
                escape(serde_json::to_value(inputs.spec.design).ok().as_ref().and_then(Value::as_str).unwrap_or("?"))
            ),
        ),
        ("convergence", escape(&report::convergence(s))),
    ];
    let wall = p
        .submitted_unix
        .zip(p.ended_unix)
        .map_or("not recorded".to_owned(), |(start, end)| format!("{} s", end.saturating_sub(start)));
    facts.push(("wall time", wall));
    let mut workers = p.workers.join(", ");
    if p.more_workers > 0 {
        let _ = write!(workers, ", and {} results from further workers", p.more_workers);
    }
    facts.push(("workers", if workers.is_empty() { "none recorded".to_owned() } else { escape(&workers) }));
    facts.push((
        "years",
        format!("base year {}, milestone {}, horizon {}", a.shape.base_year, a.shape.milestone, a.shape.horizon),
    ));
    h.push_str("<dl class=\"provenance\">\n");
    for (key, value) in facts {
        let _ = writeln!(h, "<dt>{key}</dt><dd>{value}</dd>");
    }
    h.push_str("</dl>\n");
    let _ = writeln!(
        h,
        "<details><summary>The sweep spec</summary><pre>{}</pre></details>",
        escape(&inputs.definition.spec_toml)
    );
    h.push_str("<h2>Answers</h2>\n<ul class=\"headlines\">\n");
    for line in headlines(inputs) {
        let _ = writeln!(h, "<li>{}</li>", escape(&line));
    }
    h.push_str("</ul>\n");
    let zones: Vec<String> = (1..=a.shape.n_zones).map(|z| format!("{z} = {}", zone_name(z))).collect();
    let _ = writeln!(h, "<p>Zones: {}.</p>", escape(&zones.join(", ")));
    h.push_str("<h2>Figures</h2>\n");
    for f in figures {
        if f.name.is_empty() {
            let _ = writeln!(h, "<p><strong>{}</strong>: {}</p>", escape(&f.title), escape(&f.caption));
            continue;
        }
        let _ = writeln!(
            h,
            "<figure id=\"{name}\"><img src=\"{name}.svg\" alt=\"{title}\"><figcaption><strong>{title}.</strong> {caption} (<a href=\"{name}.png\">PNG</a>)</figcaption></figure>",
            name = f.name,
            title = escape(&f.title),
            caption = escape(&f.caption)
        );
    }
    h.push_str("<h2>Units</h2>\n");
    let _ = writeln!(
        h,
        "<p>One row per unit; click a header to sort. Rows shaded orange are not robust. P(peak by {}) and P(neutral by {}) are shares of the {} successful samples; a median peak year of – means not peaked by {} in at least half of them. units.csv has these columns and more.</p>",
        a.shape.milestone, a.shape.horizon, a.samples_ok, a.shape.horizon
    );
    h.push_str("<div class=\"table-wrap\"><table class=\"sortable\" id=\"units\">\n<thead><tr>");
    let shown: Vec<usize> = (0..columns.len()).filter(|&c| columns[c].in_html).collect();
    for &c in &shown {
        let _ = write!(h, "<th>{}</th>", escape(&columns[c].label));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    let robust_column = columns.iter().position(|c| c.key == "robust");
    for row in rows {
        let uncertain = robust_column.is_some_and(|c| matches!(row[c], Cell::Bool(false)));
        h.push_str(if uncertain { "<tr class=\"uncertain\">" } else { "<tr>" });
        for &c in &shown {
            let cell = &row[c];
            let class = if matches!(cell, Cell::Text(_)) { " class=\"text\"" } else { "" };
            let _ = write!(h, "<td{class} data-v=\"{}\">{}</td>", cell.sort_key(), cell.html());
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table></div>\n");
    h.push_str("<h2>Files</h2>\n<ul class=\"files\">\n");
    let mut files = vec![
        (
            "units.csv",
            "the table above, one row per unit, with every zone's probability (UTF-8 with a byte-order mark for Excel; joins in QGIS by id)",
        ),
        (
            "peaking.csv",
            "per unit and scenario: P(peak by the milestone) with its interval, peak-year quantiles, P(no peak by the horizon), P(neutral by the horizon)",
        ),
        ("regional.csv", "per year: the observed regional CE, and each scenario's projected quantiles (t)"),
    ];
    if a.sensitivity.is_some() {
        files.push((
            "sensitivity.csv",
            "per unit and input group: first-order and total Sobol' indices of the total score with 95 % intervals",
        ));
    }
    if inputs.places.iter().any(|p| !matches!(p, Place::Unknown)) {
        files.push(("units.geojson", "the units with the columns of units.csv as properties"));
    }
    for (name, what) in files {
        let _ = writeln!(h, "<li><a href=\"{name}\"><code>{name}</code></a>: {}</li>", escape(what));
    }
    h.push_str("</ul>\n");
    let _ = write!(h, "<script>{SORT_SCRIPT}</script>\n</body>\n</html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polygons_are_read_from_polygon_and_multipolygon_geometries_only() {
        let square = json!([[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]]);
        let polygon = polygons_of(&json!({ "type": "Polygon", "coordinates": square })).expect("a polygon");
        assert_eq!(polygon.len(), 1);
        assert_eq!(polygon[0][0].len(), 5);
        let multi = polygons_of(&json!({ "type": "MultiPolygon", "coordinates": [square, square] })).expect("two");
        assert_eq!(multi.len(), 2);
        for bad in [
            json!({ "type": "Point", "coordinates": [1.0, 2.0] }),
            json!({ "type": "Polygon", "coordinates": [[[0.0, 0.0], [1.0, 0.0]]] }),
            json!({ "type": "Polygon", "coordinates": [[[0.0, "x"], [1.0, 0.0], [1.0, 1.0]]] }),
            json!({ "type": "Polygon" }),
            json!({ "type": "MultiPolygon", "coordinates": [] }),
        ] {
            assert!(polygons_of(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn cells_are_written_as_csv_text_typed_json_and_escaped_html() {
        assert_eq!(Cell::number(f64::NAN, 3).csv(), "");
        assert_eq!(Cell::number(0.25, 3).csv(), "0.25");
        assert_eq!(Cell::number(0.25, 3).html(), "0.250");
        assert_eq!(Cell::number(0.25, 3).json(), json!(0.25));
        assert_eq!(Cell::Empty.json(), Value::Null);
        assert_eq!(Cell::Bool(true).json(), json!(true));
        assert_eq!(Cell::Text("a<b & \"c\"".into()).html(), "a&lt;b &amp; &quot;c&quot;");
        assert_eq!(escape("北京'"), "北京&#39;");
    }

    #[test]
    fn a_list_reads_as_a_sentence() {
        assert_eq!(join_and(&[]), "");
        assert_eq!(join_and(&["a".into()]), "a");
        assert_eq!(join_and(&["a".into(), "b".into(), "c".into()]), "a, b, and c");
    }

    #[test]
    fn the_embedded_font_registers() {
        register_font().expect("DejaVu Sans registers");
        let mut svg = String::new();
        let area = SVGBackend::with_string(&mut svg, (10, 10)).into_drawing_area();
        let (width, _) = area.estimate_text_size("zonesweep", &font(12)).expect("a text size");
        assert!(width > 30, "text is measured with the font ({width} px)");
    }
}
