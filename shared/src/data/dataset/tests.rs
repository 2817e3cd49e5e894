use super::*;

// ---------------------------------------------------------------------------
// A small valid dataset, as CSV text, that each test mutates in one place.
// ---------------------------------------------------------------------------

const FIRST_YEAR: i32 = 2000;

/// units.csv of three units, with coordinates.
const UNITS: &str = "id,name,province,lon,lat\n\
U1,Xixiang,Shaanxi,107.77,32.98\n\
U2,Ningqiang,Shaanxi,106.26,32.83\n\
U3,Wanyuan,Sichuan,108.04,32.07\n";

const UNIT_IDS: [&str; 3] = ["U1", "U2", "U3"];

/// A plausible, strictly positive value for unit `u`, year index `t`, field `f`,
/// distinct per cell and exactly representable in decimal.
fn value(u: usize, t: usize, f: usize) -> f64 {
    (f as f64 + 1.0) * 100.0 + u as f64 * 10.0 + t as f64 * 1.5
}

/// panel.csv as a table of strings: a header and rows, in file order.
#[derive(Clone)]
struct Panel {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Panel {
    /// 3 units × `n_years` years from 2000, unit-major, all values from [`value`].
    fn new(n_years: usize) -> Panel {
        let mut header = vec!["unit_id".to_owned(), "year".to_owned()];
        header.extend(Field::ALL.iter().map(|f| f.name().to_owned()));
        let mut rows = Vec::new();
        for (u, id) in UNIT_IDS.iter().enumerate() {
            for t in 0..n_years {
                let mut row = vec![id.to_string(), (FIRST_YEAR + t as i32).to_string()];
                row.extend((0..N_FIELDS).map(|f| value(u, t, f).to_string()));
                rows.push(row);
            }
        }
        Panel { header, rows }
    }

    fn column(&self, name: &str) -> usize {
        self.header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}"))
    }

    fn index(&self, unit: &str, year: i32) -> usize {
        let (u, y) = (self.column("unit_id"), self.column("year"));
        self.rows
            .iter()
            .position(|r| r[u] == unit && r[y] == year.to_string())
            .unwrap_or_else(|| panic!("no row for {unit} {year}"))
    }

    /// The panel.csv line of a row (header = line 1).
    fn line(&self, unit: &str, year: i32) -> u64 {
        self.index(unit, year) as u64 + 2
    }

    fn set(&mut self, unit: &str, year: i32, column: &str, text: &str) {
        let (i, c) = (self.index(unit, year), self.column(column));
        self.rows[i][c] = text.to_owned();
    }

    fn remove(&mut self, unit: &str, year: i32) {
        let i = self.index(unit, year);
        self.rows.remove(i);
    }

    /// Append a copy of a row, changed by `edit`; returns its line.
    fn push_copy(&mut self, unit: &str, year: i32, edit: impl FnOnce(&mut Vec<String>)) -> u64 {
        let mut row = self.rows[self.index(unit, year)].clone();
        edit(&mut row);
        self.rows.push(row);
        self.rows.len() as u64 + 1
    }

    /// Reorder the columns: column i of the result is column `order[i]`.
    fn permute_columns(&mut self, order: &[usize]) {
        fn pick(row: &[String], order: &[usize]) -> Vec<String> {
            order.iter().map(|&i| row[i].clone()).collect()
        }
        self.header = pick(&self.header, order);
        self.rows = self.rows.iter().map(|r| pick(r, order)).collect();
    }

    fn csv(&self) -> String {
        let mut text = self.header.join(",");
        text.push('\n');
        for row in &self.rows {
            text.push_str(&row.join(","));
            text.push('\n');
        }
        text
    }
}

fn parse(units: &str, panel: &Panel) -> Dataset {
    Dataset::from_csv(units, &panel.csv(), None).unwrap_or_else(|e| panic!("expected a valid dataset, got {e}"))
}

fn problems_of(units: &str, panel: &str, geojson: Option<&str>) -> Vec<Problem> {
    match Dataset::from_csv(units, panel, geojson) {
        Ok(_) => panic!("expected the dataset to be refused"),
        Err(e) => {
            assert!(!e.problems.is_empty(), "an error must carry problems");
            e.problems
        }
    }
}

fn panel_problems(panel: &Panel) -> Vec<Problem> {
    problems_of(UNITS, &panel.csv(), None)
}

/// Where a problem is expected: file, line, column, value, and a piece of the message.
struct At<'a> {
    file: &'static str,
    line: Option<u64>,
    column: Option<&'a str>,
    value: Option<&'a str>,
    message: &'a str,
}

fn matches(p: &Problem, at: &At<'_>) -> bool {
    p.file == at.file
        && p.line == at.line
        && p.column.as_deref() == at.column
        && p.value.as_deref() == at.value
        && p.message.contains(at.message)
}

/// Exactly one problem, at `at`.
#[track_caller]
fn assert_only(problems: &[Problem], at: At<'_>) {
    assert_eq!(problems.len(), 1, "expected exactly one problem, got {problems:#?}");
    assert!(matches(&problems[0], &at), "problem at the wrong place or with the wrong message: {:#?}", problems[0]);
}

/// At least one problem at `at`.
#[track_caller]
fn assert_has(problems: &[Problem], at: At<'_>) {
    assert!(
        problems.iter().any(|p| matches(p, &at)),
        "no problem {} line {:?} column {:?} value {:?} ({:?}) in {problems:#?}",
        at.file,
        at.line,
        at.column,
        at.value,
        at.message
    );
}

fn panel_at<'a>(line: u64, column: &'a str, value: &'a str, message: &'a str) -> At<'a> {
    At { file: PANEL_FILE, line: Some(line), column: Some(column), value: Some(value), message }
}

fn units_at<'a>(line: u64, column: &'a str, value: Option<&'a str>, message: &'a str) -> At<'a> {
    At { file: UNITS_FILE, line: Some(line), column: Some(column), value, message }
}

#[track_caller]
fn assert_close(actual: f64, expected: f64, rel: f64) {
    let scale = expected.abs().max(f64::MIN_POSITIVE);
    assert!((actual - expected).abs() / scale <= rel, "{actual} differs from {expected} by more than {rel} relative");
}

// ---------------------------------------------------------------------------
// Valid datasets
// ---------------------------------------------------------------------------

#[test]
fn valid_dataset_parses() {
    let ds = parse(UNITS, &Panel::new(6));
    assert_eq!(ds.n_units(), 3);
    assert_eq!(ds.n_years(), 6);
    assert_eq!(ds.years(), &[2000, 2001, 2002, 2003, 2004, 2005]);
    assert_eq!(ds.base_year(), 2005);
    let ids: Vec<&str> = ds.units().iter().map(|u| u.id.as_str()).collect();
    assert_eq!(ids, UNIT_IDS);
    assert_eq!(
        ds.units()[1],
        Unit {
            id: "U2".into(),
            name: "Ningqiang".into(),
            province: "Shaanxi".into(),
            lon: Some(106.26),
            lat: Some(32.83)
        }
    );
    assert_eq!(ds.rows().len(), 18);
    for u in 0..3 {
        for t in 0..6 {
            for f in 0..N_FIELDS {
                assert_eq!(ds.row(u, t)[f], value(u, t, f), "unit {u} year {t} field {f}");
            }
        }
    }
    assert!(ds.fills().is_empty());
    assert!(ds.geojson().is_none());
}

#[test]
fn units_keep_the_order_of_units_csv() {
    let units = "id,name,province\nU3,Wanyuan,Sichuan\nU1,Xixiang,Shaanxi\nU2,Ningqiang,Shaanxi\n";
    let ds = parse(units, &Panel::new(6));
    let ids: Vec<&str> = ds.units().iter().map(|u| u.id.as_str()).collect();
    assert_eq!(ids, ["U3", "U1", "U2"]);
    // The rows follow the units: unit 0 is U3, whose values were generated with u = 2.
    assert_eq!(ds.row(0, 0)[0], value(2, 0, 0));
    assert_eq!(ds.row(1, 5)[7], value(0, 5, 7));
}

#[test]
fn panel_column_order_is_free() {
    let reference = parse(UNITS, &Panel::new(6));
    let mut panel = Panel::new(6);
    let n = panel.header.len();
    // A fixed shuffle: stride 7 through the columns (7 and 43 are coprime).
    let order: Vec<usize> = (0..n).map(|i| (i * 7 + 3) % n).collect();
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "the shuffle is a permutation");
    panel.permute_columns(&order);
    assert_ne!(panel.header[0], "unit_id");
    assert_eq!(parse(UNITS, &panel), reference);
}

#[test]
fn rows_in_any_order() {
    let reference = parse(UNITS, &Panel::new(6));
    let mut panel = Panel::new(6);
    panel.rows.reverse();
    // Interleave further: move every third row to the front.
    let (front, back): (Vec<_>, Vec<_>) = panel.rows.iter().cloned().enumerate().partition(|(i, _)| i % 3 == 0);
    panel.rows = front.into_iter().chain(back).map(|(_, r)| r).collect();
    assert_eq!(parse(UNITS, &panel), reference);
}

#[test]
fn lon_lat_columns_are_optional_and_units_column_order_is_free() {
    let units = "province,id,name\nShaanxi,U1,Xixiang\nShaanxi,U2,Ningqiang\nSichuan,U3,Wanyuan\n";
    let ds = parse(units, &Panel::new(6));
    assert_eq!(
        ds.units()[2],
        Unit { id: "U3".into(), name: "Wanyuan".into(), province: "Sichuan".into(), lon: None, lat: None }
    );
    // Empty coordinates are absent, not zero.
    let units =
        "id,name,province,lon,lat\nU1,Xixiang,Shaanxi,,\nU2,Ningqiang,Shaanxi,106.26,\nU3,Wanyuan,Sichuan,,32.07\n";
    let ds = parse(units, &Panel::new(6));
    assert_eq!((ds.units()[0].lon, ds.units()[0].lat), (None, None));
    assert_eq!((ds.units()[1].lon, ds.units()[1].lat), (Some(106.26), None));
    assert_eq!((ds.units()[2].lon, ds.units()[2].lat), (None, Some(32.07)));
}

// ---------------------------------------------------------------------------
// units.csv
// ---------------------------------------------------------------------------

#[test]
fn units_unknown_column() {
    let units = "id,name,area,province\nU1,Xixiang,3240,Shaanxi\nU2,Ningqiang,3243,Shaanxi\nU3,Wanyuan,4065,Sichuan\n";
    let problems = problems_of(units, &Panel::new(6).csv(), None);
    assert_only(&problems, units_at(1, "area", None, "unknown column"));
}

#[test]
fn units_missing_required_column() {
    let units = "id,name,lon,lat\nU1,Xixiang,107.77,32.98\nU2,Ningqiang,106.26,32.83\nU3,Wanyuan,108.04,32.07\n";
    let problems = problems_of(units, &Panel::new(6).csv(), None);
    assert_eq!(
        problems[0],
        Problem {
            file: UNITS_FILE,
            line: Some(1),
            column: Some("province".into()),
            value: None,
            message: "missing required column".into(),
        }
    );
}

#[test]
fn units_duplicate_id_names_the_line_of_the_duplicate() {
    let units = format!("{UNITS}U2,Ningqiang again,Shaanxi,106.3,32.8\n");
    let problems = problems_of(&units, &Panel::new(6).csv(), None);
    assert_only(&problems, units_at(5, "id", Some("U2"), "duplicate unit id (first on line 3)"));

    // A third occurrence still points at the first one.
    let units = format!("{UNITS}U2,Ningqiang again,Shaanxi,,\nU2,Ningqiang thrice,Shaanxi,,\n");
    let problems = problems_of(&units, &Panel::new(6).csv(), None);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(matches(&problems[0], &units_at(5, "id", Some("U2"), "first on line 3")), "{:#?}", problems[0]);
    assert!(matches(&problems[1], &units_at(6, "id", Some("U2"), "first on line 3")), "{:#?}", problems[1]);
}

#[test]
fn units_empty_id() {
    let units = format!("{UNITS},Nameless,Shaanxi,107.0,33.0\n");
    let problems = problems_of(&units, &Panel::new(6).csv(), None);
    assert_only(&problems, units_at(5, "id", Some(""), "empty unit id"));
    // Whitespace only is empty too (fields are trimmed).
    let units = "id,name,province\nU1,Xixiang,Shaanxi\n   ,Blank,Shaanxi\nU2,Ningqiang,Shaanxi\nU3,Wanyuan,Sichuan\n";
    let problems = problems_of(units, &Panel::new(6).csv(), None);
    assert_only(&problems, units_at(3, "id", Some(""), "empty unit id"));
}

#[test]
fn units_lon_lat_out_of_range_or_not_a_number() {
    let units = "id,name,province,lon,lat\n\
U1,Xixiang,Shaanxi,190.5,32.98\n\
U2,Ningqiang,Shaanxi,east,32.83\n\
U3,Wanyuan,Sichuan,108.04,-91\n";
    let problems = problems_of(units, &Panel::new(6).csv(), None);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert_has(&problems, units_at(2, "lon", Some("190.5"), "within ±180"));
    assert_has(&problems, units_at(3, "lon", Some("east"), "not a number"));
    assert_has(&problems, units_at(4, "lat", Some("-91"), "within ±90"));

    let units =
        "id,name,province,lon,lat\nU1,Xixiang,Shaanxi,NaN,32.98\nU2,Ningqiang,Shaanxi,,\nU3,Wanyuan,Sichuan,,\n";
    let problems = problems_of(units, &Panel::new(6).csv(), None);
    assert_only(&problems, units_at(2, "lon", Some("NaN"), ""));
}

#[test]
fn units_row_with_wrong_number_of_fields() {
    let units = format!("{UNITS}U4,Zhenba\n");
    let problems = problems_of(&units, &Panel::new(6).csv(), None);
    assert_only(&problems, At { file: UNITS_FILE, line: Some(5), column: None, value: None, message: "2 fields" });
}

#[test]
fn unit_without_panel_rows() {
    let units = format!("{UNITS}U4,Zhenba,Shaanxi,107.9,32.5\n");
    let problems = problems_of(&units, &Panel::new(6).csv(), None);
    assert_only(&problems, units_at(5, "id", Some("U4"), "no rows in panel.csv"));
}

// ---------------------------------------------------------------------------
// panel.csv: header and row structure
// ---------------------------------------------------------------------------

#[test]
fn panel_unknown_column() {
    let mut panel = Panel::new(6);
    panel.header.insert(5, "co2".into());
    for row in &mut panel.rows {
        row.insert(5, "1.0".into());
    }
    assert_only(
        &panel_problems(&panel),
        At { file: PANEL_FILE, line: Some(1), column: Some("co2"), value: None, message: "unknown column" },
    );
}

#[test]
fn panel_missing_required_column() {
    let mut panel = Panel::new(6);
    let c = panel.column("gdp");
    panel.header.remove(c);
    for row in &mut panel.rows {
        row.remove(c);
    }
    assert_only(
        &panel_problems(&panel),
        At { file: PANEL_FILE, line: Some(1), column: Some("gdp"), value: None, message: "missing required column" },
    );
}

#[test]
fn panel_duplicate_column() {
    let mut panel = Panel::new(6);
    panel.header.push("heat".into());
    for row in &mut panel.rows {
        row.push("1".into());
    }
    assert_only(
        &panel_problems(&panel),
        At { file: PANEL_FILE, line: Some(1), column: Some("heat"), value: None, message: "duplicate column" },
    );
}

#[test]
fn panel_duplicate_unit_year_row() {
    let mut panel = Panel::new(6);
    let first = panel.line("U2", 2003);
    let line = panel.push_copy("U2", 2003, |_| {});
    let message = format!("duplicate row for unit U2 and year 2003 (first on line {first})");
    assert_only(&panel_problems(&panel), panel_at(line, "year", "2003", &message));
}

#[test]
fn panel_unit_not_in_units_csv() {
    let mut panel = Panel::new(6);
    let line = panel.push_copy("U1", 2000, |r| r[0] = "U9".into());
    assert_only(&panel_problems(&panel), panel_at(line, "unit_id", "U9", "unit not in units.csv"));
}

#[test]
fn panel_year_not_an_integer() {
    for bad in ["2003.5", "two thousand", "", "-4"] {
        let mut panel = Panel::new(6);
        let line = panel.push_copy("U1", 2003, |r| r[1] = bad.into());
        assert_only(&panel_problems(&panel), panel_at(line, "year", bad, "not a year"));
    }
    // In place, the missing year then also breaks the unit's series; the
    // year cell is still named.
    let mut panel = Panel::new(6);
    let line = panel.line("U3", 2002);
    panel.set("U3", 2002, "year", "2002.0");
    assert_has(&panel_problems(&panel), panel_at(line, "year", "2002.0", "not a year"));
}

/// A panel of `n_years` years from `first`, every year shifted from the
/// standard panel's.
fn panel_from(first: i32, n_years: usize) -> Panel {
    let mut panel = Panel::new(n_years);
    let y = panel.column("year");
    for row in &mut panel.rows {
        let year: i32 = row[y].parse().unwrap();
        row[y] = (year - FIRST_YEAR + first).to_string();
    }
    panel
}

#[test]
fn panel_years_outside_1900_to_2200_are_refused_by_line() {
    for (first, last) in [(10, 30), (3050, 3070), (9979, 9999), (1850, 1870), (2190, 2210)] {
        let panel = panel_from(first, (last - first + 1) as usize);
        let problems = panel_problems(&panel);
        let out_of_range: Vec<i32> = (first..=last).filter(|y| !(MIN_YEAR..=MAX_YEAR).contains(y)).collect();
        let year_problems = problems.iter().filter(|p| p.column.as_deref() == Some("year")).count();
        assert_eq!(year_problems, out_of_range.len() * UNIT_IDS.len(), "{first}–{last}: {problems:#?}");
        let year = out_of_range[0].to_string();
        let line = panel.line("U1", out_of_range[0]);
        assert_has(&problems, panel_at(line, "year", &year, "not a year in the allowed range 1900–2200"));
    }
    // The edges are years.
    for (first, n_years) in [(MIN_YEAR, 6), (MAX_YEAR - 5, 6)] {
        let dataset = parse(UNITS, &panel_from(first, n_years));
        assert_eq!((dataset.years()[0], dataset.base_year()), (first, first + n_years as i32 - 1));
    }
}

#[test]
fn a_summary_lists_the_first_problems_and_counts_the_others() {
    let error = Dataset::from_csv(UNITS, &panel_from(10, 6).csv(), None).unwrap_err();
    let total = error.problems.len();
    assert!(total > 5, "{total}");
    let summary = error.summary(5);
    assert!(summary.starts_with(&format!("the dataset has {total} problem(s):\n  - panel.csv line 2")), "{summary}");
    assert_eq!(summary.lines().filter(|l| l.starts_with("  - ")).count(), 5, "{summary}");
    assert!(
        summary.ends_with(&format!(
            "… and {} more (`zonesweep data validate --data DIR --all` lists them all)",
            total - 5
        ))
    );
    assert_eq!(error.summary(total), error.list_all(), "with room for all, the summary lists all");
}

#[test]
fn more_units_or_panel_rows_than_allowed_are_refused() {
    let mut units = String::from("id,name,province\n");
    for u in 0..=MAX_UNITS {
        units.push_str(&format!("U{u},n,p\n"));
    }
    let problems = problems_of(&units, &Panel::new(6).csv(), None);
    let line = MAX_UNITS as u64 + 2;
    assert_has(
        &problems,
        At { file: UNITS_FILE, line: Some(line), column: None, value: None, message: "at most 20000" },
    );

    // The panel's limit, at a size a test can afford: the row past it is
    // named and nothing more is read.
    let panel = Panel::new(6).csv();
    let units: HashMap<&str, usize> = UNIT_IDS.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut problems = Problems::default();
    assert!(parse_panel(&panel, Some(&units), 18, &mut problems).is_some() && problems.0.is_empty());
    assert!(parse_panel(&panel, Some(&units), 17, &mut problems).is_none());
    assert_only(
        &problems.0,
        At {
            file: PANEL_FILE,
            line: Some(19),
            column: None,
            value: None,
            message: "more than 17 rows; a dataset may have at most 17",
        },
    );
}

#[test]
fn panel_row_with_wrong_number_of_fields() {
    let mut panel = Panel::new(6);
    let line = panel.push_copy("U1", 2001, |r| {
        r.pop();
    });
    let n = panel.header.len();
    let message = format!("row has {} fields, the header has {n}", n - 1);
    assert_only(
        &panel_problems(&panel),
        At { file: PANEL_FILE, line: Some(line), column: None, value: None, message: &message },
    );

    let mut panel = Panel::new(6);
    let line = panel.push_copy("U1", 2001, |r| r.push("7".into()));
    assert_only(
        &panel_problems(&panel),
        At { file: PANEL_FILE, line: Some(line), column: None, value: None, message: "fields" },
    );
}

// ---------------------------------------------------------------------------
// panel.csv: cell values
// ---------------------------------------------------------------------------

/// One bad cell in an otherwise valid panel gives exactly one problem naming it.
#[track_caller]
fn assert_bad_cell(unit: &str, year: i32, column: &str, text: &str, message: &str) {
    let mut panel = Panel::new(6);
    let line = panel.line(unit, year);
    panel.set(unit, year, column, text);
    assert_only(&panel_problems(&panel), panel_at(line, column, text, message));
}

#[test]
fn panel_negative_value() {
    assert_bad_cell("U2", 2002, "fertilizer", "-1.5", "negative value");
    assert_bad_cell("U3", 2005, "forest", "-0.001", "negative value");
}

#[test]
fn panel_nan() {
    assert_bad_cell("U1", 2003, "pigs", "NaN", "not a finite number");
    assert_bad_cell("U1", 2003, "pigs", "nan", "not a finite number");
}

#[test]
fn panel_inf() {
    assert_bad_cell("U2", 2001, "electricity", "inf", "not a finite number");
    assert_bad_cell("U2", 2001, "electricity", "-inf", "not a finite number");
    assert_bad_cell("U2", 2001, "gdp", "infinity", "not a finite number");
}

#[test]
fn panel_non_number_text() {
    assert_bad_cell("U3", 2004, "rice", "n/a", "not a number");
    assert_bad_cell("U3", 2004, "rice", "1.2.3", "not a number");
    assert_bad_cell("U1", 2000, "maize", "12t", "not a number");
}

#[test]
fn panel_zero_population() {
    assert_bad_cell("U1", 2002, "population", "0", "must be greater than zero");
    assert_bad_cell("U1", 2002, "population", "0.0", "must be greater than zero");
}

#[test]
fn panel_zero_gdp() {
    assert_bad_cell("U2", 2005, "gdp", "0", "must be greater than zero");
}

#[test]
fn panel_zero_secondary_gdp() {
    assert_bad_cell("U3", 2000, "secondary_gdp", "0", "must be greater than zero");
}

#[test]
fn panel_zero_urban_population() {
    assert_bad_cell("U2", 2003, "urban_population", "0", "must be greater than zero");
}

#[test]
fn zero_is_fine_for_other_fields() {
    let mut panel = Panel::new(6);
    for column in ["unused", "pesticide", "sheep", "sorghum", "kerosene", "heat"] {
        panel.set("U2", 2003, column, "0");
    }
    let ds = parse(UNITS, &panel);
    assert_eq!(ds.row(1, 3)[Field::Unused as usize], 0.0);
    assert_eq!(ds.row(1, 3)[Field::Heat as usize], 0.0);
}

#[test]
fn panel_all_energy_carriers_zero_in_a_row() {
    let mut panel = Panel::new(6);
    let line = panel.line("U2", 2004);
    for field in Field::ENERGY {
        panel.set("U2", 2004, field.name(), "0");
    }
    assert_only(&panel_problems(&panel), panel_at(line, "raw_coal…heat", "0", "total energy use is zero"));

    // All but one carrier zero is fine.
    let mut panel = Panel::new(6);
    for field in &Field::ENERGY[1..] {
        panel.set("U2", 2004, field.name(), "0");
    }
    parse(UNITS, &panel);
}

#[test]
fn panel_missing_value_in_first_year_cannot_be_filled() {
    let mut panel = Panel::new(6);
    let line = panel.line("U2", 2000);
    panel.set("U2", 2000, "pigs", "");
    assert_only(&panel_problems(&panel), panel_at(line, "pigs", "", "missing value in the first year"));
}

#[test]
fn panel_missing_value_in_last_year_cannot_be_filled() {
    let mut panel = Panel::new(6);
    let line = panel.line("U3", 2005);
    panel.set("U3", 2005, "lpg", "");
    assert_only(&panel_problems(&panel), panel_at(line, "lpg", "", "missing value in the last year"));
}

// ---------------------------------------------------------------------------
// panel.csv: years
// ---------------------------------------------------------------------------

#[test]
fn panel_non_consecutive_years() {
    let mut panel = Panel::new(6);
    panel.remove("U2", 2003);
    let line = panel.line("U2", 2004);
    assert_only(&panel_problems(&panel), panel_at(line, "year", "2004", "not consecutive: 2004 follows 2002"));
}

#[test]
fn panel_units_with_different_years() {
    let mut panel = Panel::new(6);
    // U3 observed 2001–2006 instead of 2000–2005.
    for t in (0..6).rev() {
        let year = FIRST_YEAR + t;
        panel.set("U3", year, "year", &(year + 1).to_string());
    }
    let line = panel.line("U3", 2001);
    assert_only(
        &panel_problems(&panel),
        At {
            file: PANEL_FILE,
            line: Some(line),
            column: Some("year"),
            value: None,
            message: "unit U3 has years 2001–2006, unit U1 has 2000–2005",
        },
    );

    // A shorter series is also different years.
    let mut panel = Panel::new(6);
    panel.remove("U2", 2005);
    let line = panel.line("U2", 2000);
    assert_only(
        &panel_problems(&panel),
        At {
            file: PANEL_FILE,
            line: Some(line),
            column: Some("year"),
            value: None,
            message: "unit U2 has years 2000–2004, unit U1 has 2000–2005",
        },
    );
    // When the first unit is the odd one, every other unit is reported against it.
    let mut panel = Panel::new(6);
    panel.remove("U1", 2005);
    let problems = panel_problems(&panel);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    for unit in ["U2", "U3"] {
        let message = format!("unit {unit} has years 2000–2005, unit U1 has 2000–2004");
        let at = At {
            file: PANEL_FILE,
            line: Some(panel.line(unit, 2000)),
            column: Some("year"),
            value: None,
            message: &message,
        };
        assert_has(&problems, at);
    }
}

#[test]
fn panel_fewer_than_five_years() {
    let problems = panel_problems(&Panel::new(4));
    assert_only(
        &problems,
        At { file: PANEL_FILE, line: None, column: Some("year"), value: None, message: "4 years of data; at least 5" },
    );
    parse(UNITS, &Panel::new(5));
}

// ---------------------------------------------------------------------------
// All problems together
// ---------------------------------------------------------------------------

#[test]
fn all_errors_of_a_file_are_reported_together() {
    let mut panel = Panel::new(6);
    let l1 = panel.line("U1", 2001);
    let l2 = panel.line("U2", 2003);
    let l3 = panel.line("U3", 2005);
    panel.set("U1", 2001, "forest", "-3");
    panel.set("U2", 2003, "gdp", "abc");
    panel.set("U3", 2005, "population", "0");
    let problems = panel_problems(&panel);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(matches(&problems[0], &panel_at(l1, "forest", "-3", "negative")), "{:#?}", problems[0]);
    assert!(matches(&problems[1], &panel_at(l2, "gdp", "abc", "not a number")), "{:#?}", problems[1]);
    assert!(matches(&problems[2], &panel_at(l3, "population", "0", "greater than zero")), "{:#?}", problems[2]);

    // Three bad cells in one row are three problems too.
    let mut panel = Panel::new(6);
    let line = panel.line("U2", 2002);
    panel.set("U2", 2002, "cattle", "inf");
    panel.set("U2", 2002, "wheat", "-1");
    panel.set("U2", 2002, "secondary_gdp", "0");
    let problems = panel_problems(&panel);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert_has(&problems, panel_at(line, "cattle", "inf", "finite"));
    assert_has(&problems, panel_at(line, "wheat", "-1", "negative"));
    assert_has(&problems, panel_at(line, "secondary_gdp", "0", "greater than zero"));
}

#[test]
fn errors_of_all_files_are_reported_together() {
    let units = "id,name,province,lon,lat,area\nU1,Xixiang,Shaanxi,107.77,32.98,1\nU2,Ningqiang,Shaanxi,200,32.83,1\nU3,Wanyuan,Sichuan,108.04,32.07,1\n";
    let mut panel = Panel::new(6);
    let line = panel.line("U1", 2004);
    panel.set("U1", 2004, "sown", "-5");
    let geojson =
        r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"id":"U7"},"geometry":null}]}"#;
    let problems = problems_of(units, &panel.csv(), Some(geojson));
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert_has(&problems, units_at(1, "area", None, "unknown column"));
    assert_has(&problems, units_at(3, "lon", Some("200"), "within"));
    assert_has(&problems, panel_at(line, "sown", "-5", "negative"));
    assert_has(
        &problems,
        At {
            file: GEOJSON_FILE,
            line: None,
            column: Some("features[0].properties.id"),
            value: Some("U7"),
            message: "unit not in units.csv",
        },
    );
}

// ---------------------------------------------------------------------------
// Interior gap filling
// ---------------------------------------------------------------------------

/// Case 1 of shared/tests/vectors/cubic_spline.json (scipy
/// CubicSpline(bc_type="natural") over the known points), years 2000–2020.
const CASE1_VALUES: [Option<f64>; 21] = [
    Some(52.35570372899698),
    Some(55.198936757820086),
    Some(56.43122357971343),
    Some(56.77555831180837),
    Some(56.38868399777039),
    Some(56.917491872680166),
    Some(59.15826524527989),
    None,
    Some(60.49345327988509),
    None,
    Some(62.34389373227354),
    Some(62.84522223548337),
    Some(65.08734402402487),
    Some(65.8426370635341),
    Some(67.30177306132194),
    Some(67.65262347743555),
    None,
    Some(69.51349854494862),
    None,
    Some(72.79012923400344),
    Some(74.47327807831324),
];

const CASE1_FILLED: [f64; 21] = [
    52.35570372899698,
    55.198936757820086,
    56.43122357971343,
    56.77555831180837,
    56.38868399777039,
    56.917491872680166,
    59.15826524527989,
    60.14595200753438,
    60.49345327988509,
    61.49328838193195,
    62.34389373227354,
    62.84522223548337,
    65.08734402402487,
    65.8426370635341,
    67.30177306132194,
    67.65262347743555,
    68.27809891605219,
    69.51349854494862,
    71.08692104253227,
    72.79012923400344,
    74.47327807831324,
];

#[test]
fn interior_gaps_are_filled_by_the_natural_cubic_spline() {
    let mut panel = Panel::new(21);
    for (t, v) in CASE1_VALUES.iter().enumerate() {
        let text = v.map(|v| v.to_string()).unwrap_or_default();
        panel.set("U2", FIRST_YEAR + t as i32, "forest", &text);
    }
    // Shuffle the rows: the series is by year, not by file order.
    panel.rows.reverse();
    let ds = parse(UNITS, &panel);

    let f = Field::Forest as usize;
    for (t, expected) in CASE1_FILLED.iter().enumerate() {
        let actual = ds.row(1, t)[f];
        match CASE1_VALUES[t] {
            Some(known) => assert_eq!(actual, known, "known value of year index {t} is unchanged"),
            None => assert_close(actual, *expected, 1e-9),
        }
    }
    // Other units and fields are untouched.
    assert_eq!(ds.row(0, 7)[f], value(0, 7, f));
    assert_eq!(ds.row(1, 7)[f + 1], value(1, 7, f + 1));

    let fills = ds.fills();
    assert_eq!(fills.len(), 4, "{fills:#?}");
    let gap_years = [2007, 2009, 2016, 2018];
    for (fill, year) in fills.iter().zip(gap_years) {
        let t = (year - FIRST_YEAR) as usize;
        assert_eq!(fill.unit_id, "U2");
        assert_eq!(fill.year, year);
        assert_eq!(fill.field, "forest");
        assert_eq!(fill.line, panel.line("U2", year));
        assert_eq!(fill.value, ds.row(1, t)[f]);
        assert_close(fill.value, CASE1_FILLED[t], 1e-9);
    }
    // Each fill is reported as a warning naming its line.
    let warnings = ds.warnings();
    for fill in fills {
        let needle = format!("panel.csv line {}: missing `forest` of unit U2 in {}", fill.line, fill.year);
        assert!(warnings.iter().any(|w| w.contains(&needle)), "no warning {needle:?} in {warnings:#?}");
    }
}

#[test]
fn gaps_in_a_linear_series_are_filled_on_the_line() {
    // Gaps in several fields and units of series that are linear in time:
    // the natural spline through linear data is that line.
    let mut panel = Panel::new(6);
    panel.set("U1", 2002, "gdp", "");
    panel.set("U3", 2001, "cropland", "");
    panel.set("U3", 2004, "cropland", "");
    let ds = parse(UNITS, &panel);
    assert_close(ds.row(0, 2)[Field::Gdp as usize], value(0, 2, Field::Gdp as usize), 1e-12);
    assert_close(ds.row(2, 1)[Field::Cropland as usize], value(2, 1, 0), 1e-12);
    assert_close(ds.row(2, 4)[Field::Cropland as usize], value(2, 4, 0), 1e-12);
    let places: Vec<(&str, i32, &str)> =
        ds.fills().iter().map(|f| (f.unit_id.as_str(), f.year, f.field.as_str())).collect();
    assert_eq!(places, [("U1", 2002, "gdp"), ("U3", 2001, "cropland"), ("U3", 2004, "cropland")]);
}

#[test]
fn a_fill_that_comes_out_negative_is_an_error() {
    // Knots 1000, 1000, 1000, 1, _, 1: the natural spline undershoots to
    // about -330 in the gap.
    let mut panel = Panel::new(6);
    for (t, text) in ["1000", "1000", "1000", "1", "", "1"].iter().enumerate() {
        panel.set("U1", FIRST_YEAR + t as i32, "cropland", text);
    }
    let line = panel.line("U1", 2004);
    assert_only(&panel_problems(&panel), panel_at(line, "cropland", "", "cubic-spline fill"));
}

#[test]
fn a_bad_cell_next_to_a_gap_is_not_also_a_gap() {
    let mut panel = Panel::new(6);
    let line = panel.line("U2", 2002);
    panel.set("U2", 2002, "maize", "-9");
    panel.set("U2", 2003, "maize", "");
    assert_only(&panel_problems(&panel), panel_at(line, "maize", "-9", "negative"));
}

// ---------------------------------------------------------------------------
// Warnings
// ---------------------------------------------------------------------------

#[test]
fn fewer_than_ten_years_gives_a_warning() {
    let ds = parse(UNITS, &Panel::new(6));
    let warnings = ds.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(warnings[0].contains("only 6 years"), "{}", warnings[0]);

    let ds = parse(UNITS, &Panel::new(9));
    assert_eq!(ds.warnings().len(), 1);

    let ds = parse(UNITS, &Panel::new(10));
    assert!(ds.warnings().is_empty(), "{:#?}", ds.warnings());
}

// ---------------------------------------------------------------------------
// GeoJSON
// ---------------------------------------------------------------------------

fn feature(id: &str) -> String {
    format!(
        r#"{{"type":"Feature","properties":{{"id":"{id}"}},"geometry":{{"type":"Point","coordinates":[107.0,33.0]}}}}"#
    )
}

fn geojson_problems(geojson: &str) -> Vec<Problem> {
    problems_of(UNITS, &Panel::new(6).csv(), Some(geojson))
}

#[test]
fn geojson_valid_is_kept() {
    let text = format!(r#"{{"type":"FeatureCollection","features":[{},{}]}}"#, feature("U1"), feature("U3"));
    let ds = Dataset::from_csv(UNITS, &Panel::new(6).csv(), Some(&text)).unwrap();
    assert_eq!(ds.geojson(), Some(text.as_str()));
}

#[test]
fn geojson_not_json() {
    let problems = geojson_problems("{\n\"type\": \"FeatureCollection\",\n\"features\": [\n");
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].file, GEOJSON_FILE);
    assert!(problems[0].message.starts_with("not JSON"), "{:#?}", problems[0]);
    assert_eq!(problems[0].line, Some(4), "the line where the JSON breaks off");

    let problems = geojson_problems("type,id\n");
    assert_only(&problems, At { file: GEOJSON_FILE, line: Some(1), column: None, value: None, message: "not JSON" });
}

#[test]
fn geojson_not_a_feature_collection() {
    let problems = geojson_problems(&feature("U1"));
    assert_only(
        &problems,
        At {
            file: GEOJSON_FILE,
            line: None,
            column: Some("type"),
            value: None,
            message: "not a GeoJSON FeatureCollection",
        },
    );
    let problems = geojson_problems("[1, 2]");
    assert_only(
        &problems,
        At { file: GEOJSON_FILE, line: None, column: Some("type"), value: None, message: "FeatureCollection" },
    );
    let problems = geojson_problems(r#"{"type":"FeatureCollection"}"#);
    assert_only(
        &problems,
        At { file: GEOJSON_FILE, line: None, column: Some("features"), value: None, message: "no `features` array" },
    );
}

#[test]
fn geojson_feature_with_unknown_id() {
    let text = format!(
        r#"{{"type":"FeatureCollection","features":[{},{},{}]}}"#,
        feature("U1"),
        feature("X42"),
        feature("U3")
    );
    assert_only(
        &geojson_problems(&text),
        At {
            file: GEOJSON_FILE,
            line: None,
            column: Some("features[1].properties.id"),
            value: Some("X42"),
            message: "unit not in units.csv",
        },
    );
    let text = r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"id":7},"geometry":null}]}"#;
    assert_only(
        &geojson_problems(text),
        At {
            file: GEOJSON_FILE,
            line: None,
            column: Some("features[0].properties.id"),
            value: None,
            message: "without a string `id`",
        },
    );
}

// ---------------------------------------------------------------------------
// Round trip through the on-disk format
// ---------------------------------------------------------------------------

#[test]
fn to_csv_round_trip() {
    let units = "id,name,province,lon,lat\n\
U1,\"Xixiang, Hanzhong\",Shaanxi,107.77,32.98\n\
U2,\"Ning\"\"qiang\",Shaanxi,,\n\
U3,Wanyuan,Sichuan,108.04123456789012,-32.07\n";
    let mut panel = Panel::new(7);
    // Values whose decimal form is long or unusual.
    panel.set("U1", 2001, "forest", "0.30000000000000004");
    panel.set("U2", 2003, "gdp", "1e-7");
    panel.set("U3", 2006, "heat", "123456789012345680000");
    panel.set("U3", 2002, "unused", "0");
    panel.set("U1", 2004, "poultry", "3.141592653589793");
    let ds = parse(units, &panel);
    assert_eq!(ds.units()[0].name, "Xixiang, Hanzhong");
    assert_eq!(ds.units()[1].name, "Ning\"qiang");
    let (units_csv, panel_csv) = ds.to_csv();
    let again = Dataset::from_csv(&units_csv, &panel_csv, None).unwrap();
    assert_eq!(again, ds);
    // And once more: the text is a fixed point.
    assert_eq!(again.to_csv(), (units_csv, panel_csv));
}

#[test]
fn to_csv_round_trip_of_a_filled_dataset_keeps_the_values() {
    let mut panel = Panel::new(6);
    panel.set("U2", 2002, "sown", "");
    let ds = parse(UNITS, &panel);
    assert_eq!(ds.fills().len(), 1);
    let (units_csv, panel_csv) = ds.to_csv();
    let again = Dataset::from_csv(&units_csv, &panel_csv, None).unwrap();
    // The filled value is written out as data, so the copy has no fills.
    assert!(again.fills().is_empty());
    assert_eq!(again.rows(), ds.rows());
    assert_eq!(again.units(), ds.units());
    assert_eq!(again.years(), ds.years());
}

#[test]
fn from_parts_validates_and_equals_the_parsed_dataset() {
    let ds = parse(UNITS, &Panel::new(6));
    let again = Dataset::from_parts(ds.units().to_vec(), ds.years().to_vec(), ds.rows().to_vec()).unwrap();
    assert_eq!(again, ds);

    let mut rows = ds.rows().to_vec();
    rows[4][Field::Population as usize] = 0.0;
    let err = Dataset::from_parts(ds.units().to_vec(), ds.years().to_vec(), rows).unwrap_err();
    assert_eq!(err.problems.len(), 1, "{err}");
    assert!(matches(&err.problems[0], &panel_at(6, "population", "0", "greater than zero")), "{err}");
}

#[test]
fn problem_display_names_file_line_column_and_value() {
    let mut panel = Panel::new(6);
    panel.set("U1", 2000, "coke", "-2");
    let err = Dataset::from_csv(UNITS, &panel.csv(), None).unwrap_err();
    assert_eq!(err.problems[0].to_string(), "panel.csv line 2, column `coke`, value `-2`: negative value");
    assert!(err.to_string().starts_with("the dataset has 1 problem(s):\n  - panel.csv line 2"), "{err}");
}

// ---------------------------------------------------------------------------
// The spline against the scipy reference vectors
// ---------------------------------------------------------------------------

#[test]
fn spline_matches_scipy_reference_vectors() {
    let text = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/cubic_spline.json"));
    let json: serde_json::Value = serde_json::from_str(text).unwrap();
    let cases = json["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for (c, case) in cases.iter().enumerate() {
        let xs: Vec<f64> = case["years"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let ys: Vec<Option<f64>> = case["values"].as_array().unwrap().iter().map(|v| v.as_f64()).collect();
        let expected: Vec<f64> = case["filled"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        assert!(ys.iter().any(Option::is_none), "case {c} has gaps");
        let filled =
            crate::numerics::spline::fill_natural_cubic(&xs, &ys).unwrap_or_else(|| panic!("case {c} not filled"));
        assert_eq!(filled.len(), expected.len());
        for (t, (a, e)) in filled.iter().zip(&expected).enumerate() {
            let rel = (a - e).abs() / e.abs();
            assert!(rel <= 1e-9, "case {c}, index {t}: {a} vs scipy {e} (relative {rel:e})");
        }
    }
}

// ---------------------------------------------------------------------------
// Line ends, delimiters, header and row problems together, capped listings
// ---------------------------------------------------------------------------

/// `text` with every `\n` made `\r\n`.
fn crlf(text: &str) -> String {
    text.replace('\n', "\r\n")
}

#[test]
fn line_numbers_are_right_with_lf_and_crlf_line_ends() {
    let mut panel = Panel::new(6);
    panel.set("U2", 2003, "gdp", "lots");
    let line = panel.line("U2", 2003);
    assert_eq!(line, 11);
    for (units, text) in [(UNITS.to_owned(), panel.csv()), (crlf(UNITS), crlf(&panel.csv()))] {
        let problems = problems_of(&units, &text, None);
        assert_only(&problems, panel_at(line, "gdp", "lots", "not a number"));
    }
    // units.csv too, and a lone `\r` (old Mac line ends) counts as a line end.
    let units = format!("{UNITS}U2,Ningqiang again,Shaanxi,106.3,32.8\n");
    for text in [units.clone(), crlf(&units), units.replace('\n', "\r")] {
        let problems = problems_of(&text, &Panel::new(6).csv(), None);
        assert_only(&problems, units_at(5, "id", Some("U2"), "duplicate unit id (first on line 3)"));
    }
}

#[test]
fn a_quoted_line_break_moves_the_following_lines_down() {
    // U2's name holds a line break: the row starts on line 3, and U3 is on line 5.
    for end in ["\n", "\r\n"] {
        let units = "id,name,province,lon,lat\n\
U1,Xixiang,Shaanxi,107.77,32.98\n\
U2,\"Ningqiang\nCounty\",Shaanxi,106.26,32.83\n\
U3,Wanyuan,Sichuan,108.04,-91\n\
U3,Wanyuan again,Sichuan,108.04,32.07\n"
            .replace('\n', end);
        let problems = problems_of(&units, &Panel::new(6).csv(), None);
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert_has(&problems, units_at(5, "lat", Some("-91"), "within ±90"));
        assert_has(&problems, units_at(6, "id", Some("U3"), "duplicate unit id (first on line 5)"));
    }
    // The dataset itself is read the same with either line end.
    let units = "id,name,province\nU1,\"Xi\nxiang\",Shaanxi\nU2,Ningqiang,Shaanxi\nU3,Wanyuan,Sichuan\n";
    let lf = parse(units, &Panel::new(6));
    let windows = Dataset::from_csv(&crlf(units), &crlf(&Panel::new(6).csv()), None).unwrap();
    assert_eq!(lf.units()[0].name, "Xi\nxiang");
    assert_eq!(windows.units()[0].name, "Xi\r\nxiang");
    assert_eq!(lf.rows(), windows.rows());
}

#[test]
fn fill_lines_are_right_with_crlf() {
    let mut panel = Panel::new(6);
    panel.set("U3", 2002, "cattle", "");
    let line = panel.line("U3", 2002);
    let dataset = Dataset::from_csv(&crlf(UNITS), &crlf(&panel.csv()), None).unwrap();
    assert_eq!(dataset.fills().len(), 1);
    assert_eq!(dataset.fills()[0].line, line);
}

#[test]
fn a_semicolon_or_tab_separated_file_gets_one_clear_problem_first() {
    let panel = Panel::new(6).csv();
    for (separator, name) in [(";", "`;`-separated"), ("\t", "tab-separated")] {
        let problems = problems_of(UNITS, &panel.replace(',', separator), None);
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert_eq!(problems[0].file, PANEL_FILE);
        assert_eq!(problems[0].line, Some(1));
        assert!(problems[0].message.contains(name), "{}", problems[0].message);
        assert!(problems[0].message.contains("comma-separated"), "{}", problems[0].message);
        assert!(problems[0].message.contains("CSV UTF-8 (comma delimited)"), "{}", problems[0].message);

        // A `;`-separated units.csv: its hint comes first, and the panel's
        // rows are not each reported as a unit that is missing.
        let units = UNITS.replace(',', separator);
        let error = Dataset::from_csv(&units, &panel.replace(',', separator), None).unwrap_err();
        assert_eq!(error.problems.len(), 2, "{:#?}", error.problems);
        assert_eq!(error.problems[0].file, UNITS_FILE);
        assert!(error.problems.iter().all(|p| p.message.contains(name)), "{:#?}", error.problems);
        let problems = problems_of(&units, &panel, None);
        assert_only(&problems, At { file: UNITS_FILE, line: Some(1), column: None, value: None, message: name });
        assert!(error.to_string().contains(&format!("units.csv line 1: the header looks {name}")), "{error}");
    }
    // With quoted header names too.
    let quoted = "\"id\";\"name\";\"province\"\n\"U1\";\"Xixiang\";\"Shaanxi\"\n";
    let problems = problems_of(quoted, &panel, None);
    assert!(problems[0].message.contains("`;`-separated"), "{problems:#?}");
    // The hint is listed first even when another file's problems came before it.
    let mut bad_units = UNITS.to_owned();
    bad_units.push_str("U4,Zhenba\n");
    let error = Dataset::from_csv(&bad_units, &panel.replace(',', ";"), None).unwrap_err();
    assert!(error.problems[0].message.contains("`;`-separated"), "{:#?}", error.problems);
    assert_eq!(error.problems.len(), 2);
}

#[test]
fn header_problems_do_not_hide_row_problems() {
    // A missing column and a bad value in a column that is there.
    let mut panel = Panel::new(6);
    panel.set("U1", 2001, "pigs", "many");
    panel.set("U3", 2004, "population", "-5");
    let c = panel.column("gdp");
    panel.header.remove(c);
    for row in &mut panel.rows {
        row.remove(c);
    }
    let problems = panel_problems(&panel);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(matches(
        &problems[0],
        &At { file: PANEL_FILE, line: Some(1), column: Some("gdp"), value: None, message: "missing required column" }
    ));
    assert_has(&problems, panel_at(panel.line("U1", 2001), "pigs", "many", "not a number"));
    assert_has(&problems, panel_at(panel.line("U3", 2004), "population", "-5", "negative value"));

    // Without `unit_id` or `year` the values are still checked.
    let mut panel = Panel::new(6);
    panel.set("U2", 2002, "coke", "x");
    let line = panel.line("U2", 2002);
    panel.header[0] = "unit".into();
    let problems = panel_problems(&panel);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert_has(
        &problems,
        At { file: PANEL_FILE, line: Some(1), column: Some("unit"), value: None, message: "unknown" },
    );
    assert_has(
        &problems,
        At { file: PANEL_FILE, line: Some(1), column: Some("unit_id"), value: None, message: "missing" },
    );
    assert_has(&problems, panel_at(line, "coke", "x", "not a number"));

    // units.csv without `id`: its rows' coordinates are checked, and the panel's
    // rows are not each reported as a unit not in units.csv.
    let units = "code,name,province,lon,lat\nU1,Xixiang,Shaanxi,107.77,32.98\nU2,Ningqiang,Shaanxi,east,32.83\n";
    let problems = problems_of(units, &Panel::new(6).csv(), None);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert_has(&problems, units_at(1, "code", None, "unknown column"));
    assert_has(&problems, units_at(1, "id", None, "missing required column"));
    assert_has(&problems, units_at(3, "lon", Some("east"), "not a number"));
}

#[test]
fn repeated_problems_are_listed_a_few_of_each_kind_with_a_count() {
    let mut panel = Panel::new(20);
    for (u, unit) in UNIT_IDS.iter().enumerate() {
        for t in 0..20 {
            panel.set(unit, FIRST_YEAR + t, "heat", &format!("{u}x{t}"));
        }
    }
    panel.set("U2", 2005, "gdp", "-1");
    let line = panel.push_copy("U1", 2000, |r| r.truncate(5));
    let error = Dataset::from_csv(UNITS, &panel.csv(), None).unwrap_err();
    assert_eq!(error.problems.len(), 62);
    let text = error.to_string();
    assert!(text.starts_with("the dataset has 62 problem(s):\n"), "{text}");
    let listed: Vec<&str> = text.lines().filter(|l| l.starts_with("  - ")).collect();
    assert_eq!(listed.len(), SHOWN_PER_KIND + 2, "{text}");
    // The first of the kind, with file, line, column and value.
    assert!(listed[0].starts_with("  - panel.csv line 2, column `heat`, value `0x0`: not a number"), "{text}");
    assert!(text.contains("    … and 55 more of the same kind"), "{text}");
    assert!(text.contains("panel.csv line 27, column `gdp`, value `-1`: negative value"), "{text}");
    assert!(text.contains(&format!("panel.csv line {line}: row has 5 fields")), "{text}");
    assert!(text.contains("--all"), "{text}");
    // The whole list has every problem.
    assert_eq!(error.list_all().lines().count(), 63);
    // Problems of a kind differ only in numbers and details.
    let kinds: std::collections::HashSet<_> = error.problems.iter().map(Problem::kind).collect();
    assert_eq!(kinds.len(), 3, "{kinds:#?}");
}

#[test]
fn thousands_are_separated() {
    assert_eq!(thousands(0), "0");
    assert_eq!(thousands(999), "999");
    assert_eq!(thousands(1_650), "1,650");
    assert_eq!(thousands(1_000_000), "1,000,000");
}
