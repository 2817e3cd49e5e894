//! One line of documentation for every key of the configuration schema
//! ([`crate::model::config::Config`]): its unit and meaning. `zonesweep
//! config default` prints each key under its line, and docs/model.md
//! section 11 holds the tables [`reference_table`] makes; tests check that
//! every key the schema serializes has a line here and that the tables in
//! docs/model.md are current.

use std::collections::BTreeMap;

use crate::model::config::Config;

/// The documentation of the keys a pattern matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyDoc {
    /// A dotted key path; `*` stands for any one segment. The first entry of
    /// [`KEYS`] that matches a key documents it.
    pub path: &'static str,
    /// The unit, or the values a choice may take.
    pub unit: &'static str,
    /// What the key means, in one line.
    pub meaning: &'static str,
}

const fn key(path: &'static str, unit: &'static str, meaning: &'static str) -> KeyDoc {
    KeyDoc { path, unit, meaning }
}

/// Every key of the configuration, in the order `config default` prints them.
pub const KEYS: &[KeyDoc] = &[
    // [coefficients] (docs/model.md section 3)
    key("coefficients.breathing", "t C per person and year", "carbon of human breathing (b of CE_urban)"),
    key("coefficients.cropland.fertilizer", "t C per t", "emission per t of fertilizer applied (α of CE_crop)"),
    key("coefficients.cropland.irrigated", "t C per hm²", "emission per hm² irrigated (δ of CE_crop)"),
    key("coefficients.cropland.machinery", "t C per kW", "emission per kW of machinery power (ζ of CE_crop)"),
    key("coefficients.cropland.pesticide", "t C per t", "emission per t of pesticide (β of CE_crop)"),
    key(
        "coefficients.cropland.plastic_film",
        "t C per t",
        "emission per t of agricultural plastic film (γ of CE_crop)",
    ),
    key("coefficients.cropland.sown", "t C per hm²", "emission per hm² sown (ε of CE_crop)"),
    key(
        "coefficients.crops.*.absorption",
        "t C per t of dry matter",
        "carbon absorption rate V of the crop's dry biomass",
    ),
    key(
        "coefficients.crops.*.economic",
        "fraction, > 0",
        "economic coefficient ρ: the harvested yield's share of the biomass",
    ),
    key("coefficients.crops.*.water", "fraction, < 1", "water content w of the harvested yield"),
    key(
        "coefficients.energy.*.carbon",
        "t C per tce",
        "carbon emitted per tonne of standard coal equivalent of the carrier",
    ),
    key("coefficients.energy.electricity.tce", "tce per 10⁴ kWh", "standard coal equivalent of electricity"),
    key("coefficients.energy.heat.tce", "tce per GJ", "standard coal equivalent of heat"),
    key("coefficients.energy.natural_gas.tce", "tce per 10⁴ m³", "standard coal equivalent of natural gas"),
    key("coefficients.energy.*.tce", "tce per t", "standard coal equivalent of the carrier"),
    key("coefficients.land_sink.*", "t C per hm² and year", "carbon sink of the land-use type (CS_land)"),
    key("coefficients.livestock.*.enteric", "t C per head and year", "enteric fermentation λ of the species"),
    key("coefficients.livestock.*.manure", "t C per head and year", "manure management μ of the species"),
    key("coefficients.livestock.*.respiration", "t C per head and year", "respiration η of the species"),
    key("coefficients.nep.*", "t C per hm²", "net ecosystem production NEP of the land-use type (carbon footprint F)"),
    // [ridge] (section 5)
    key("ridge.k", "–, ≥ 0", "nominal ridge parameter K of `evaluate` and of sweeps that do not draw K"),
    key("ridge.vif_limit", "–, > 0", "automatic K (`--k auto`) needs every VIF below this"),
    key(
        "ridge.stability",
        "fraction, ≥ 0",
        "automatic K needs every standardized coefficient to change by at most this fraction to the next K",
    ),
    key("ridge.trace.to", "K", "end of a segment of the ridge-trace grid, which starts at 0 (`[[ridge.trace]]`)"),
    key("ridge.trace.step", "K", "step of the grid within the segment; at most 10,000 K values in all"),
    // [stirpat] (section 5)
    key(
        "stirpat.fit",
        "\"regional\" | \"pooled\"",
        "regression rows: the region's totals per year, or every unit-year pooled",
    ),
    key("stirpat.cei", "\"gdp\" | \"secondary_gdp\"", "denominator of the carbon intensity CEI"),
    // [scenarios] (section 6)
    key("scenarios.horizon", "year", "last projected year, the year of the neutrality test"),
    key("scenarios.milestone", "year", "last year of the first period; the \"peaked by\" year"),
    key(
        "scenarios.neutral_sink",
        "\"base-year\" | \"sen-extrapolation\"",
        "the CS that CE in the horizon year is compared with",
    ),
    key(
        "scenarios.interval_years",
        "years, 1–100",
        "length of the intervals whose growth rates give min_delta and max_delta (1 = year over year)",
    ),
    key(
        "scenarios.*.*.*.rate",
        "\"delta\" | \"min_delta\" | \"max_delta\"",
        "the historical growth statistic the rule's annual rate starts from",
    ),
    key(
        "scenarios.*.*.*.sign",
        "\"keep\" | \"positive\" | \"negative\"",
        "keep the statistic's sign, take its absolute value, or minus its absolute value",
    ),
    key("scenarios.*.*.*.factor", "–", "multiplies the signed statistic"),
    key("scenarios.*.*.*.offset", "annual rate (0.01 = 1 %/yr)", "added to the rate after the factor"),
    key(
        "scenarios.*.*.*.cap.level",
        "\"min\" | \"mean\" | \"max\"",
        "cap the level at this statistic of the unit's observed series",
    ),
    key(
        "scenarios.*.*.*.cap.value",
        "the variable's unit (% for IS, UR)",
        "cap the level at this fixed value (give `level` or `value`)",
    ),
    key("scenarios.*.*.*.cap.offset", "the variable's unit (points for IS, UR)", "added to the cap"),
    // [zoning] (section 7)
    key(
        "zoning.trend_threshold",
        "Z value, > 0",
        "threshold z* of the Mann-Kendall Z (in absolute value) of the trend classes and scores",
    ),
    key(
        "zoning.direction.*",
        "\"increase-is-good\" | \"decrease-is-good\"",
        "whether a rising trend of the index scores well",
    ),
    key("zoning.cli_thresholds", "scaled CLI, four ascending", "lower bounds of the CLI scores 2, 3, 4 and 5"),
    key("zoning.zones", "count, 1–50", "number of zones (Jenks classes); the zone names apply to five"),
];

/// Comments of whole tables, printed above their header.
const TABLES: &[(&str, &str)] = &[
    ("coefficients", "Emission and sequestration coefficients (docs/model.md section 3)."),
    ("ridge", "Ridge regression of the STIRPAT equation (docs/model.md section 5)."),
    ("stirpat", "How the paper's STIRPAT equation is read (docs/model.md sections 5 and 9)."),
    ("scenarios", "Scenario projection (docs/model.md section 6)."),
    (
        "scenarios.*.*.*",
        "A rule: annual rate = sign(rate) × factor + offset, optionally capped; replaced whole when given.",
    ),
    ("zoning", "Zoning criteria (docs/model.md section 7)."),
];

/// Whether the dotted `pattern` (with `*` for any one segment) matches `path`.
fn matches(pattern: &str, path: &str) -> bool {
    let (mut p, mut k) = (pattern.split('.'), path.split('.'));
    loop {
        match (p.next(), k.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a == "*" || a == b => {}
            _ => return false,
        }
    }
}

/// The documentation of the concrete key `path` (e.g.
/// `scenarios.low.P.first.rate`, `ridge.trace.step`).
pub fn key_doc(path: &str) -> Option<&'static KeyDoc> {
    KEYS.iter().find(|doc| matches(doc.path, path))
}

/// Every key `config` serializes, as a dotted path, with its value as TOML
/// (the keys of an array of tables once, with the first table's value).
pub fn key_values(config: &Config) -> BTreeMap<String, String> {
    fn walk(prefix: &str, value: &toml::Value, out: &mut BTreeMap<String, String>) {
        match value {
            toml::Value::Table(table) => {
                for (key, value) in table {
                    let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                    walk(&path, value, out);
                }
            }
            toml::Value::Array(items) if !items.is_empty() && items.iter().all(toml::Value::is_table) => {
                for item in items.iter().rev() {
                    walk(prefix, item, out);
                }
            }
            other => {
                out.insert(prefix.to_owned(), other.to_string());
            }
        }
    }
    let value = toml::Value::try_from(config).expect("a configuration serializes");
    let mut out = BTreeMap::new();
    walk("", &value, &mut out);
    out
}

/// `config` as TOML with each key under a comment giving its meaning and
/// unit. Read back by [`Config::from_toml_overrides`] it gives `config`.
pub fn commented_toml(config: &Config) -> String {
    let body = config.to_toml();
    let mut out = String::with_capacity(body.len() * 3);
    let mut table = String::new();
    let mut commented_tables = Vec::new();
    for line in body.lines() {
        let header = line.strip_prefix("[[").and_then(|l| l.strip_suffix("]]"));
        let header = header.or_else(|| line.strip_prefix('[').and_then(|l| l.strip_suffix(']')));
        if let Some(name) = header {
            table = name.trim().to_owned();
            // A table's comment once, above the first table it matches.
            if let Some((pattern, comment)) = TABLES.iter().find(|(pattern, _)| matches(pattern, &table)) {
                if !commented_tables.contains(pattern) {
                    commented_tables.push(*pattern);
                    out.push_str(&format!("# {comment}\n"));
                }
            }
        } else if let Some((key, _)) = line.split_once(" = ").filter(|(k, _)| is_bare_key(k)) {
            let path = if table.is_empty() { key.to_owned() } else { format!("{table}.{key}") };
            if let Some(doc) = key_doc(&path) {
                out.push_str(&format!("# {} [{}]\n", doc.meaning, doc.unit));
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Whether `text` is a bare TOML key (a line that starts one, not a
/// continuation of a multi-line array).
fn is_bare_key(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The markdown table of the keys of `section` (`coefficients`, `ridge`,
/// `stirpat`, `scenarios`, `zoning`) for docs/model.md section 11: key
/// (below the section), default, unit and meaning. A pattern whose keys have
/// different defaults lists them by the segment `*` stands for.
pub fn reference_table(section: &str) -> String {
    let values = key_values(&Config::default());
    let prefix = format!("{section}.");
    let mut out = String::from("| key | default | unit | meaning |\n|---|---|---|---|\n");
    for doc in KEYS.iter().filter(|doc| doc.path.starts_with(&prefix)) {
        let matched: Vec<(&String, &String)> =
            values.iter().filter(|(path, _)| key_doc(path).is_some_and(|d| d.path == doc.path)).collect();
        let distinct: Vec<&String> = {
            let mut v: Vec<&String> = matched.iter().map(|(_, value)| *value).collect();
            v.sort();
            v.dedup();
            v
        };
        let default = match distinct.as_slice() {
            [] => "–".to_owned(),
            [one] => format!("`{one}`"),
            _ if doc.path.matches('*').count() == 1 => {
                let star = doc.path.split('.').position(|s| s == "*").unwrap_or(0);
                matched
                    .iter()
                    .map(|(path, value)| format!("{} `{value}`", path.split('.').nth(star).unwrap_or(path)))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
            _ => "per rule (table below)".to_owned(),
        };
        let key = display_key(&doc.path[prefix.len()..]);
        let unit = doc.unit.replace('|', "or");
        out.push_str(&format!("| `{key}` | {default} | {unit} | {} |\n", doc.meaning.replace('|', "\\|")));
    }
    out
}

/// A key pattern below its section as the documentation writes it: each `*`
/// named by what it stands for (`crops.<crop>.water`).
fn display_key(pattern: &str) -> String {
    let mut previous = "";
    let mut stars = 0;
    let segments: Vec<&str> = pattern
        .split('.')
        .map(|segment| {
            let shown = if segment != "*" {
                segment
            } else {
                stars += 1;
                match (previous, stars) {
                    ("crops", _) => "<crop>",
                    ("energy", _) => "<carrier>",
                    ("livestock", _) => "<species>",
                    ("land_sink" | "nep", _) => "<type>",
                    ("direction", _) => "<index>",
                    (_, 1) => "<scenario>",
                    (_, 2) => "<variable>",
                    _ => "<period>",
                }
            };
            previous = segment;
            shown
        })
        .collect();
    segments.join(".")
}

/// The sections of the configuration, in the order of the schema.
pub const SECTIONS: [&str; 5] = ["coefficients", "ridge", "stirpat", "scenarios", "zoning"];
