//! Datasets (docs/model.md section 2): parsing and validation of the `units.csv` /
//! `panel.csv` / optional `units.geojson` folder format, and interior-gap
//! filling by natural cubic spline.
//!
//! Nothing here touches the file system: callers hand in the files' text and
//! get back a validated [`Dataset`] or every problem found, each naming the
//! file, line (the header is line 1), column and value.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::data::fields::{Field, N_FIELDS, Row};
use crate::numerics::spline::fill_natural_cubic;

/// File names of the on-disk format.
pub const UNITS_FILE: &str = "units.csv";
pub const PANEL_FILE: &str = "panel.csv";
pub const GEOJSON_FILE: &str = "units.geojson";

/// Fewer years than this is an error.
pub const MIN_YEARS: usize = 5;
/// Fewer years than this is allowed with a warning: the Mann-Kendall normal
/// approximation is weak on short series.
pub const WARN_YEARS: usize = 10;
/// The earliest year a dataset or a configuration may name.
pub const MIN_YEAR: i32 = 1900;
/// The latest year a dataset or a configuration may name; with
/// [`MIN_YEAR`] it also bounds a dataset to 301 years.
pub const MAX_YEAR: i32 = 2200;
/// The most units a dataset may have (China has about 2,850 county-level
/// units): it bounds the size of a sweep's aggregate.
pub const MAX_UNITS: usize = 20_000;
/// The most panel rows (units × years) a dataset may have.
pub const MAX_PANEL_ROWS: usize = 1_000_000;

/// One county-level unit's static attributes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Unit {
    pub id: String,
    pub name: String,
    pub province: String,
    pub lon: Option<f64>,
    pub lat: Option<f64>,
}

/// A missing panel value that was filled by spline interpolation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fill {
    pub unit_id: String,
    pub year: i32,
    pub field: String,
    /// The panel.csv line that had the empty cell.
    pub line: u64,
    pub value: f64,
}

/// A validated panel: every unit observed in the same consecutive years, every
/// value finite, non-negative and filled.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    units: Vec<Unit>,
    years: Vec<i32>,
    /// Unit-major: row of unit u, year index t is `rows[u * n_years + t]`.
    rows: Vec<Row>,
    fills: Vec<Fill>,
    geojson: Option<String>,
}

/// One problem found in a dataset, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub file: &'static str,
    /// 1-based line number, the header being line 1.
    pub line: Option<u64>,
    pub column: Option<String>,
    pub value: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, " line {line}")?;
        }
        if let Some(column) = &self.column {
            write!(f, ", column `{column}`")?;
        }
        if let Some(value) = &self.value {
            write!(f, ", value `{value}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// How many problems of one kind a listing shows before it counts the rest.
pub const SHOWN_PER_KIND: usize = 5;

impl Problem {
    /// What kind of problem this is, for grouping repeats: the file and the
    /// message without its parenthesised details and with every word that
    /// holds a digit (a unit id, a year, a count) left out.
    pub fn kind(&self) -> (&'static str, String) {
        let message = self.message.split(" (").next().unwrap_or_default();
        let words: Vec<&str> =
            message.split_whitespace().map(|w| if w.chars().any(|c| c.is_ascii_digit()) { "#" } else { w }).collect();
        (self.file, words.join(" "))
    }
}

/// Why a dataset was refused: every problem found, not just the first.
///
/// Its display lists the problems kind by kind, in the order each kind was
/// first found, with at most [`SHOWN_PER_KIND`] of each kind and the number
/// of the others; [`DatasetError::list_all`] lists every one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the dataset has {} problem(s):\n{}", thousands(.problems.len()), ByKind(.problems))]
pub struct DatasetError {
    pub problems: Vec<Problem>,
}

impl DatasetError {
    /// The error with at most `shown` of its problems listed and the number
    /// of the others, for answers that must stay short (a gRPC status).
    pub fn summary(&self, shown: usize) -> String {
        let listed = &self.problems[..self.problems.len().min(shown)];
        let mut text =
            format!("the dataset has {} problem(s):\n{}", thousands(self.problems.len()), ProblemList(listed));
        let more = self.problems.len() - listed.len();
        if more > 0 {
            text.push_str(&format!(
                "\n  … and {} more (`zonesweep data validate --data DIR --all` lists them all)",
                thousands(more)
            ));
        }
        text
    }

    /// Every problem, one a line, in the order found.
    pub fn list_all(&self) -> String {
        format!("the dataset has {} problem(s):\n{}", thousands(self.problems.len()), ProblemList(&self.problems))
    }
}

/// `n` with a comma between groups of three digits: 1,650.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

/// The problems kind by kind, at most [`SHOWN_PER_KIND`] of each.
struct ByKind<'a>(&'a [Problem]);

impl fmt::Display for ByKind<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kinds: Vec<((&'static str, String), Vec<&Problem>)> = Vec::new();
        let mut index: HashMap<(&'static str, String), usize> = HashMap::new();
        for problem in self.0 {
            let kind = problem.kind();
            let i = *index.entry(kind.clone()).or_insert_with(|| {
                kinds.push((kind, Vec::new()));
                kinds.len() - 1
            });
            kinds[i].1.push(problem);
        }
        let mut first = true;
        for (_, problems) in &kinds {
            for problem in problems.iter().take(SHOWN_PER_KIND) {
                if !first {
                    writeln!(f)?;
                }
                first = false;
                write!(f, "  - {problem}")?;
            }
            if problems.len() > SHOWN_PER_KIND {
                write!(f, "\n    … and {} more of the same kind", thousands(problems.len() - SHOWN_PER_KIND))?;
            }
        }
        if kinds.iter().any(|(_, p)| p.len() > SHOWN_PER_KIND) {
            write!(f, "\n(`zonesweep data validate --data DIR --all` lists every problem)")?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(
        &mut self,
        file: &'static str,
        line: Option<u64>,
        column: Option<&str>,
        value: Option<&str>,
        message: impl Into<String>,
    ) {
        self.0.push(Problem {
            file,
            line,
            column: column.map(str::to_owned),
            value: value.map(str::to_owned),
            message: message.into(),
        });
    }
}

impl Dataset {
    /// Parse and validate a dataset from the text of its files.
    ///
    /// Every file is checked as far as it can be: a header problem (an
    /// unknown or missing column) does not stop the rows' values from being
    /// checked. A file whose header looks `;`- or tab-separated gets one
    /// problem saying so, listed first, instead of a problem per row.
    pub fn from_csv(units_csv: &str, panel_csv: &str, geojson: Option<&str>) -> Result<Dataset, DatasetError> {
        let mut problems = Problems::default();
        let parsed_units = parse_units(units_csv, &mut problems);
        let units = parsed_units.units;
        let index: HashMap<&str, usize> = units.iter().enumerate().map(|(i, u)| (u.id.as_str(), i)).collect();
        let known_units = parsed_units.keyed.then_some(&index);
        let panel = parse_panel(panel_csv, known_units, MAX_PANEL_ROWS, &mut problems);
        if let Some(text) = geojson {
            check_geojson(text, known_units, &mut problems);
        }
        let assembled = match panel {
            Some(panel) if parsed_units.keyed => assemble(&units, &parsed_units.lines, panel, &mut problems),
            _ => None,
        };
        match assembled {
            Some((years, rows, fills)) if problems.0.is_empty() => {
                Ok(Dataset { units, years, rows, fills, geojson: geojson.map(str::to_owned) })
            }
            _ => {
                let mut problems = problems.0;
                // A file in the wrong format explains everything else: say so first.
                problems.sort_by_key(|p| !p.message.starts_with(DELIMITER_HINT));
                Err(DatasetError { problems })
            }
        }
    }

    /// Build a dataset from values already in memory (the demonstration
    /// generator, tests). The same validation applies.
    pub fn from_parts(units: Vec<Unit>, years: Vec<i32>, rows: Vec<Row>) -> Result<Dataset, DatasetError> {
        let dataset = Dataset { units, years, rows, fills: Vec::new(), geojson: None };
        // Round-tripping through the on-disk format keeps one validator.
        let (units_csv, panel_csv) = dataset.to_csv();
        Dataset::from_csv(&units_csv, &panel_csv, None)
    }

    pub fn units(&self) -> &[Unit] {
        &self.units
    }

    pub fn n_units(&self) -> usize {
        self.units.len()
    }

    pub fn years(&self) -> &[i32] {
        &self.years
    }

    pub fn n_years(&self) -> usize {
        self.years.len()
    }

    /// The last observed year, T₀ of the projection.
    pub fn base_year(&self) -> i32 {
        *self.years.last().expect("a validated dataset has years")
    }

    /// The row of unit `unit` in year index `year_index`.
    pub fn row(&self, unit: usize, year_index: usize) -> &Row {
        &self.rows[unit * self.years.len() + year_index]
    }

    /// All rows, unit-major.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// Missing values that were filled by spline interpolation.
    pub fn fills(&self) -> &[Fill] {
        &self.fills
    }

    /// The polygon file, when the dataset has one.
    pub fn geojson(&self) -> Option<&str> {
        self.geojson.as_deref()
    }

    /// Warnings a user should see: short series and filled gaps.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.years.len() < WARN_YEARS {
            warnings.push(format!(
                "only {} years of data: the Mann-Kendall normal approximation is weak below {WARN_YEARS}",
                self.years.len()
            ));
        }
        for fill in &self.fills {
            warnings.push(format!(
                "{PANEL_FILE} line {}: missing `{}` of unit {} in {} filled by cubic spline as {}",
                fill.line, fill.field, fill.unit_id, fill.year, fill.value
            ));
        }
        warnings
    }

    /// The dataset in its on-disk format: (`units.csv`, `panel.csv`). Values
    /// are written with Rust's shortest round-trip formatting, so reading the
    /// text back gives the same numbers bit for bit.
    pub fn to_csv(&self) -> (String, String) {
        let mut units = String::from("id,name,province,lon,lat\n");
        for unit in &self.units {
            let coordinate = |c: Option<f64>| c.map(|v| v.to_string()).unwrap_or_default();
            units.push_str(&format!(
                "{},{},{},{},{}\n",
                csv_field(&unit.id),
                csv_field(&unit.name),
                csv_field(&unit.province),
                coordinate(unit.lon),
                coordinate(unit.lat)
            ));
        }
        let mut panel = String::from("unit_id,year");
        for field in Field::ALL {
            panel.push(',');
            panel.push_str(field.name());
        }
        panel.push('\n');
        for (u, unit) in self.units.iter().enumerate() {
            for (t, year) in self.years.iter().enumerate() {
                panel.push_str(&csv_field(&unit.id));
                panel.push(',');
                panel.push_str(&year.to_string());
                for value in self.row(u, t) {
                    panel.push(',');
                    panel.push_str(&value.to_string());
                }
                panel.push('\n');
            }
        }
        (units, panel)
    }
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_owned() }
}

fn reader(text: &str) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(text.as_bytes())
}

/// Line numbers of a file's byte offsets. A line ends at `\n`, `\r\n` or a
/// lone `\r`, so files saved with Windows line ends are counted right, and a
/// row whose quoted field holds a line break is reported at the line it
/// starts on (the csv reader's own line count is off by one per `\r\n`).
struct LineIndex<'a> {
    text: &'a [u8],
    /// The byte offset at which each line starts; the first is 0.
    starts: Vec<u64>,
}

impl<'a> LineIndex<'a> {
    fn of(text: &'a str) -> LineIndex<'a> {
        let bytes = text.as_bytes();
        let mut starts = vec![0];
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')) {
                starts.push(i as u64 + 1);
            }
        }
        LineIndex { text: bytes, starts }
    }

    /// The 1-based line of the record or error the csv reader placed at
    /// `position`. The reader's byte offset may point at the line end before
    /// the record (the `\n` of a `\r\n`) or at blank lines it skipped: the
    /// record starts at the first byte after them.
    fn at(&self, position: Option<&csv::Position>) -> u64 {
        let Some(position) = position else {
            return 0;
        };
        let mut byte = usize::try_from(position.byte()).unwrap_or(usize::MAX).min(self.text.len());
        while matches!(self.text.get(byte), Some(b'\r' | b'\n')) {
            byte += 1;
        }
        self.starts.partition_point(|&start| start <= byte as u64) as u64
    }
}

/// How a problem about a file's delimiter begins (such a problem is listed first).
const DELIMITER_HINT: &str = "the header looks ";

/// When a header read as comma-separated is one column that, split on `;`,
/// a tab or `|`, gives at least two of the expected column names: which
/// separator the file seems to use.
fn other_delimiter(headers: &csv::StringRecord, expected: &[&str]) -> Option<&'static str> {
    if headers.len() != 1 {
        return None;
    }
    [(';', "`;`-separated"), ('\t', "tab-separated"), ('|', "`|`-separated")].into_iter().find_map(|(d, name)| {
        let known = headers[0].split(d).filter(|part| expected.contains(&part.trim().trim_matches('"'))).count();
        (known >= 2).then_some(name)
    })
}

/// The header of `file`, or `None` after reporting why it cannot be used:
/// it cannot be read, or the file is not comma-separated.
fn read_header(
    file: &'static str,
    rdr: &mut csv::Reader<&[u8]>,
    expected: &[&str],
    problems: &mut Problems,
) -> Option<csv::StringRecord> {
    let headers = match rdr.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            problems.add(file, Some(1), None, None, format!("cannot read the header: {e}"));
            return None;
        }
    };
    if let Some(kind) = other_delimiter(&headers, expected) {
        problems.add(
            file,
            Some(1),
            None,
            None,
            format!(
                "{DELIMITER_HINT}{kind}; zonesweep reads comma-separated files (save it as \
                 CSV UTF-8 (comma delimited)); the rest of {file} was not checked"
            ),
        );
        return None;
    }
    Some(headers)
}

/// Header column positions, with unknown, duplicate and missing columns reported.
fn header_map(
    file: &'static str,
    headers: &csv::StringRecord,
    required: &[&str],
    optional: &[&str],
    problems: &mut Problems,
) -> HashMap<String, usize> {
    let mut map = HashMap::new();
    for (i, name) in headers.iter().enumerate() {
        if !required.contains(&name) && !optional.contains(&name) {
            problems.add(file, Some(1), Some(name), None, "unknown column");
        } else if map.insert(name.to_owned(), i).is_some() {
            problems.add(file, Some(1), Some(name), None, "duplicate column");
        }
    }
    for name in required {
        if !map.contains_key(*name) {
            problems.add(file, Some(1), Some(name), None, "missing required column");
        }
    }
    map
}

/// What was read of units.csv.
struct ParsedUnits {
    units: Vec<Unit>,
    /// For each unit, the units.csv line it was read from.
    lines: Vec<u64>,
    /// Whether the units could be keyed by id (the header was read and has
    /// an `id` column): only then can panel rows be matched to units.
    keyed: bool,
}

/// The units of units.csv. Without some required column the rows are still
/// checked, as far as the columns present allow.
fn parse_units(text: &str, problems: &mut Problems) -> ParsedUnits {
    let mut parsed = ParsedUnits { units: Vec::new(), lines: Vec::new(), keyed: false };
    let lines = LineIndex::of(text);
    let mut rdr = reader(text);
    let required = ["id", "name", "province"];
    let optional = ["lon", "lat"];
    let expected: Vec<&str> = required.iter().chain(&optional).copied().collect();
    let Some(headers) = read_header(UNITS_FILE, &mut rdr, &expected, problems) else {
        return parsed;
    };
    let columns = header_map(UNITS_FILE, &headers, &required, &optional, problems);
    parsed.keyed = columns.contains_key("id");
    let mut seen: HashMap<String, u64> = HashMap::new();
    for (count, record) in rdr.records().enumerate() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| lines.at(Some(p)));
                problems.add(UNITS_FILE, line, None, None, format!("unreadable row: {}", csv_error_kind(&e)));
                continue;
            }
        };
        let line = lines.at(record.position());
        if count == MAX_UNITS {
            problems.add(
                UNITS_FILE,
                Some(line),
                None,
                None,
                format!("more than {MAX_UNITS} units; a dataset may have at most {MAX_UNITS}"),
            );
            break;
        }
        if record.len() != headers.len() {
            problems.add(
                UNITS_FILE,
                Some(line),
                None,
                None,
                format!("row has {} fields, the header has {}", record.len(), headers.len()),
            );
            continue;
        }
        let get = |name: &str| columns.get(name).map(|&i| record[i].to_owned());
        let mut coordinate = |name: &str, limit: f64| -> Option<f64> {
            let raw = get(name)?;
            if raw.is_empty() {
                return None;
            }
            match raw.parse::<f64>() {
                Ok(v) if v.is_finite() && v.abs() <= limit => Some(v),
                Ok(_) => {
                    problems.add(UNITS_FILE, Some(line), Some(name), Some(&raw), format!("must be within ±{limit}"));
                    None
                }
                Err(_) => {
                    problems.add(UNITS_FILE, Some(line), Some(name), Some(&raw), "not a number");
                    None
                }
            }
        };
        let lon = coordinate("lon", 180.0);
        let lat = coordinate("lat", 90.0);
        let Some(id) = get("id") else {
            continue;
        };
        if id.is_empty() {
            problems.add(UNITS_FILE, Some(line), Some("id"), Some(""), "empty unit id");
            continue;
        }
        if let Some(&first) = seen.get(&id) {
            problems.add(
                UNITS_FILE,
                Some(line),
                Some("id"),
                Some(&id),
                format!("duplicate unit id (first on line {first})"),
            );
            continue;
        }
        seen.insert(id.clone(), line);
        parsed.units.push(Unit {
            id,
            name: get("name").unwrap_or_default(),
            province: get("province").unwrap_or_default(),
            lon,
            lat,
        });
        parsed.lines.push(line);
    }
    if parsed.keyed && parsed.units.is_empty() && problems.0.is_empty() {
        problems.add(UNITS_FILE, None, None, None, "no units");
    }
    parsed
}

/// A csv reading error without the reader's own position (which counts
/// lines differently); the problem carries the line.
fn csv_error_kind(error: &csv::Error) -> String {
    match error.kind() {
        csv::ErrorKind::Utf8 { err, .. } => format!("not UTF-8 text ({err}); save the file as UTF-8"),
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("row has {len} fields, the header has {expected_len}")
        }
        _ => error.to_string(),
    }
}

/// A parsed panel cell: a value, or an empty cell to fill, with its line.
struct PanelRow {
    line: u64,
    values: [Option<f64>; N_FIELDS],
}

/// Panel rows per unit (by unit index), keyed by year.
type ParsedPanel = Vec<BTreeMap<i32, PanelRow>>;

/// The panel's rows, reading at most `max_rows` of them ([`MAX_PANEL_ROWS`]).
/// `units` is `None` when units.csv could not be read by id: rows are then
/// not matched to units. Without some required column the rows' other cells
/// are still checked, and the result is `None`.
fn parse_panel(
    text: &str,
    units: Option<&HashMap<&str, usize>>,
    max_rows: usize,
    problems: &mut Problems,
) -> Option<ParsedPanel> {
    let lines = LineIndex::of(text);
    let mut rdr = reader(text);
    let field_names: Vec<&str> = Field::ALL.iter().map(|f| f.name()).collect();
    let mut required = vec!["unit_id", "year"];
    required.extend(&field_names);
    let headers = read_header(PANEL_FILE, &mut rdr, &required, problems)?;
    let columns = header_map(PANEL_FILE, &headers, &required, &[], problems);
    let complete = required.iter().all(|c| columns.contains_key(*c));
    let field_columns: Vec<Option<usize>> = Field::ALL.iter().map(|f| columns.get(f.name()).copied()).collect();
    let (unit_column, year_column) = (columns.get("unit_id").copied(), columns.get("year").copied());

    let n_units = units.map_or(0, HashMap::len);
    let mut panel: ParsedPanel = (0..n_units).map(|_| BTreeMap::new()).collect();
    for (count, record) in rdr.records().enumerate() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| lines.at(Some(p)));
                problems.add(PANEL_FILE, line, None, None, format!("unreadable row: {}", csv_error_kind(&e)));
                continue;
            }
        };
        let line = lines.at(record.position());
        if count == max_rows {
            problems.add(
                PANEL_FILE,
                Some(line),
                None,
                None,
                format!("more than {max_rows} rows; a dataset may have at most {max_rows}"),
            );
            return None;
        }
        if record.len() != headers.len() {
            problems.add(
                PANEL_FILE,
                Some(line),
                None,
                None,
                format!("row has {} fields, the header has {}", record.len(), headers.len()),
            );
            continue;
        }
        let unit_id = unit_column.map_or("", |c| &record[c]);
        let unit = match (units, unit_column) {
            (Some(units), Some(_)) => {
                let unit = units.get(unit_id).copied();
                if unit.is_none() {
                    let message = format!("unit not in {UNITS_FILE}");
                    problems.add(PANEL_FILE, Some(line), Some("unit_id"), Some(unit_id), message);
                }
                unit
            }
            _ => None,
        };
        let raw_year = year_column.map_or("", |c| &record[c]);
        let year = match year_column.map(|_| raw_year.parse::<i32>()) {
            None => None,
            Some(Ok(y)) if (MIN_YEAR..=MAX_YEAR).contains(&y) => Some(y),
            Some(Ok(_)) => {
                let message = format!("not a year in the allowed range {MIN_YEAR}–{MAX_YEAR}");
                problems.add(PANEL_FILE, Some(line), Some("year"), Some(raw_year), message);
                None
            }
            Some(Err(_)) => {
                let message = format!("not a year (an integer {MIN_YEAR}–{MAX_YEAR})");
                problems.add(PANEL_FILE, Some(line), Some("year"), Some(raw_year), message);
                None
            }
        };
        let mut values = [None; N_FIELDS];
        for (f, field) in Field::ALL.iter().enumerate() {
            let Some(column) = field_columns[f] else {
                continue;
            };
            let raw = &record[column];
            if raw.is_empty() {
                continue;
            }
            match raw.parse::<f64>() {
                Ok(v) if !v.is_finite() => {
                    problems.add(PANEL_FILE, Some(line), Some(field.name()), Some(raw), "not a finite number");
                }
                Ok(v) if v < 0.0 => {
                    problems.add(PANEL_FILE, Some(line), Some(field.name()), Some(raw), "negative value");
                }
                Ok(v) if v == 0.0 && Field::POSITIVE.contains(field) => {
                    problems.add(PANEL_FILE, Some(line), Some(field.name()), Some(raw), "must be greater than zero");
                }
                Ok(v) => values[f] = Some(v),
                Err(_) => {
                    problems.add(PANEL_FILE, Some(line), Some(field.name()), Some(raw), "not a number");
                }
            }
            // A refused cell is stored as NaN, not left empty, so that one bad
            // cell does not also show up as a spurious gap to fill.
            if values[f].is_none() {
                values[f] = Some(f64::NAN);
            }
        }
        if let (Some(unit), Some(year)) = (unit, year) {
            if let Some(previous) = panel[unit].get(&year) {
                problems.add(
                    PANEL_FILE,
                    Some(line),
                    Some("year"),
                    Some(raw_year),
                    format!("duplicate row for unit {unit_id} and year {year} (first on line {})", previous.line),
                );
            } else {
                panel[unit].insert(year, PanelRow { line, values });
            }
        }
    }
    complete.then_some(panel)
}

fn check_geojson(text: &str, units: Option<&HashMap<&str, usize>>, problems: &mut Problems) {
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            problems.add(GEOJSON_FILE, Some(e.line() as u64), None, None, format!("not JSON: {e}"));
            return;
        }
    };
    if value.get("type").and_then(|t| t.as_str()) != Some("FeatureCollection") {
        problems.add(GEOJSON_FILE, None, Some("type"), None, "not a GeoJSON FeatureCollection");
        return;
    }
    let Some(features) = value.get("features").and_then(|f| f.as_array()) else {
        problems.add(GEOJSON_FILE, None, Some("features"), None, "no `features` array");
        return;
    };
    for (i, feature) in features.iter().enumerate() {
        let id = feature.get("properties").and_then(|p| p.get("id"));
        match id.and_then(|v| v.as_str()) {
            Some(id) if units.is_none_or(|units| units.contains_key(id)) => {}
            Some(id) => problems.add(
                GEOJSON_FILE,
                None,
                Some(&format!("features[{i}].properties.id")),
                Some(id),
                format!("unit not in {UNITS_FILE}"),
            ),
            None => problems.add(
                GEOJSON_FILE,
                None,
                Some(&format!("features[{i}].properties.id")),
                None,
                "feature without a string `id` property",
            ),
        }
    }
}

type Assembled = (Vec<i32>, Vec<Row>, Vec<Fill>);

/// Check the year structure, fill interior gaps and produce unit-major rows.
fn assemble(units: &[Unit], unit_lines: &[u64], panel: ParsedPanel, problems: &mut Problems) -> Option<Assembled> {
    let mut expected_years: Option<(String, Vec<i32>)> = None;
    let mut structure_ok = true;
    for ((unit, rows), &unit_line) in units.iter().zip(&panel).zip(unit_lines) {
        if rows.is_empty() {
            problems.add(
                UNITS_FILE,
                Some(unit_line),
                Some("id"),
                Some(&unit.id),
                format!("unit has no rows in {PANEL_FILE}"),
            );
            structure_ok = false;
            continue;
        }
        let years: Vec<i32> = rows.keys().copied().collect();
        if let Some(gap) = years.windows(2).find(|w| w[1] != w[0] + 1) {
            let line = rows[&gap[1]].line;
            problems.add(
                PANEL_FILE,
                Some(line),
                Some("year"),
                Some(&gap[1].to_string()),
                format!("years of unit {} are not consecutive: {} follows {}", unit.id, gap[1], gap[0]),
            );
            structure_ok = false;
            continue;
        }
        match &expected_years {
            None => expected_years = Some((unit.id.clone(), years)),
            Some((first_unit, first_years)) if *first_years != years => {
                problems.add(
                    PANEL_FILE,
                    Some(rows.values().next().map_or(0, |r| r.line)),
                    Some("year"),
                    None,
                    format!(
                        "unit {} has years {}–{}, unit {} has {}–{}: every unit must have the same years",
                        unit.id,
                        years[0],
                        years[years.len() - 1],
                        first_unit,
                        first_years[0],
                        first_years[first_years.len() - 1]
                    ),
                );
                structure_ok = false;
            }
            Some(_) => {}
        }
    }
    let (_, years) = expected_years?;
    if years.len() < MIN_YEARS {
        problems.add(
            PANEL_FILE,
            None,
            Some("year"),
            None,
            format!("{} years of data; at least {MIN_YEARS} are needed", years.len()),
        );
        return None;
    }
    if !structure_ok {
        return None;
    }

    let n_years = years.len();
    let xs: Vec<f64> = years.iter().map(|&y| f64::from(y)).collect();
    let mut rows = vec![[0.0; N_FIELDS]; units.len() * n_years];
    let mut fills = Vec::new();
    for (u, (unit, unit_rows)) in units.iter().zip(&panel).enumerate() {
        let unit_rows: Vec<&PanelRow> = unit_rows.values().collect();
        for field in Field::ALL {
            let f = field as usize;
            let series: Vec<Option<f64>> = unit_rows.iter().map(|r| r.values[f]).collect();
            for (t, edge) in [(0, "first"), (n_years - 1, "last")] {
                if series[t].is_none() {
                    problems.add(
                        PANEL_FILE,
                        Some(unit_rows[t].line),
                        Some(field.name()),
                        Some(""),
                        format!("missing value in the {edge} year; only interior gaps can be filled"),
                    );
                }
            }
            if series[0].is_none() || series[n_years - 1].is_none() {
                continue;
            }
            let filled = if series.iter().all(Option::is_some) {
                series.iter().map(|v| v.unwrap_or_default()).collect()
            } else {
                // Cells refused earlier are NaN; leave them out of the spline.
                let known: Vec<Option<f64>> = series.iter().map(|v| v.filter(|x| !x.is_nan())).collect();
                match fill_natural_cubic(&xs, &known) {
                    Some(values) => values,
                    None => continue,
                }
            };
            for t in 0..n_years {
                let value = filled[t];
                rows[u * n_years + t][f] = value;
                if series[t].is_some() {
                    continue;
                }
                let line = unit_rows[t].line;
                if value < 0.0 || (value == 0.0 && Field::POSITIVE.contains(&field)) {
                    problems.add(
                        PANEL_FILE,
                        Some(line),
                        Some(field.name()),
                        Some(""),
                        format!("the cubic-spline fill of this gap is {value}, which is not a valid value"),
                    );
                }
                fills.push(Fill {
                    unit_id: unit.id.clone(),
                    year: years[t],
                    field: field.name().to_owned(),
                    line,
                    value,
                });
            }
        }
        for (t, row) in rows[u * n_years..(u + 1) * n_years].iter().enumerate() {
            if Field::ENERGY.iter().all(|e| row[*e as usize] <= 0.0) {
                problems.add(
                    PANEL_FILE,
                    Some(unit_rows[t].line),
                    Some("raw_coal…heat"),
                    Some("0"),
                    "total energy use is zero; it must be greater than zero (the model divides by it)",
                );
            }
        }
    }
    Some((years, rows, fills))
}

#[cfg(test)]
mod tests;
