//! The demonstration dataset's synthetic polygons (`units.geojson`): one
//! valid, counter-clockwise, closed polygon per unit, keyed by id, cells that
//! do not overlap and together cover the outline, each holding its unit's
//! point; accepted by the dataset reader; the same bytes for the same units;
//! and the committed `data/demo/units.geojson` is the generator's output.

use std::path::PathBuf;

use serde_json::Value;
use zonesweep_shared::data::dataset::Dataset;
use zonesweep_shared::data::demo::geometry::{DESCRIPTION, NAME, OUTLINE};
use zonesweep_shared::data::demo::{self, DEMO_SEED, DEMO_UNITS, units_geojson};

type Ring = Vec<(f64, f64)>;

/// Twice the signed area (positive when counter-clockwise) of a ring that is
/// not closed.
fn signed_area(ring: &[(f64, f64)]) -> f64 {
    let n = ring.len();
    (0..n).map(|i| ring[i].0 * ring[(i + 1) % n].1 - ring[(i + 1) % n].0 * ring[i].1).sum::<f64>() / 2.0
}

fn cross(o: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
}

/// Whether segments ab and cd properly cross.
fn segments_cross(a: (f64, f64), b: (f64, f64), c: (f64, f64), d: (f64, f64)) -> bool {
    let (d1, d2) = (cross(a, b, c), cross(a, b, d));
    let (d3, d4) = (cross(c, d, a), cross(c, d, b));
    d1 * d2 < 0.0 && d3 * d4 < 0.0
}

/// The part of convex ring `subject` inside convex counter-clockwise ring `clip`.
fn intersect_convex(subject: &[(f64, f64)], clip: &[(f64, f64)]) -> Ring {
    let mut out: Ring = subject.to_vec();
    for i in 0..clip.len() {
        let (a, b) = (clip[i], clip[(i + 1) % clip.len()]);
        let input = std::mem::take(&mut out);
        for j in 0..input.len() {
            let (p, q) = (input[j], input[(j + 1) % input.len()]);
            let (sp, sq) = (cross(a, b, p), cross(a, b, q));
            if sp >= 0.0 {
                out.push(p);
            }
            if (sp > 0.0 && sq < 0.0) || (sp < 0.0 && sq > 0.0) {
                let t = sp / (sp - sq);
                out.push((p.0 + t * (q.0 - p.0), p.1 + t * (q.1 - p.1)));
            }
        }
        if out.is_empty() {
            break;
        }
    }
    out
}

/// Whether `p` lies in the convex counter-clockwise ring (boundary included).
fn contains(ring: &[(f64, f64)], p: (f64, f64)) -> bool {
    (0..ring.len()).all(|i| cross(ring[i], ring[(i + 1) % ring.len()], p) >= -1e-12)
}

/// The features of a units.geojson text, checked for shape: (id, ring not closed).
fn rings(text: &str) -> Vec<(String, Ring)> {
    let document: Value = serde_json::from_str(text).expect("units.geojson is JSON");
    assert_eq!(document["type"], "FeatureCollection");
    assert_eq!(document["name"], NAME);
    assert_eq!(document["description"], DESCRIPTION);
    assert!(NAME.contains("synthetic") && DESCRIPTION.contains("not county boundaries"));
    let features = document["features"].as_array().expect("features");
    features
        .iter()
        .map(|feature| {
            assert_eq!(feature["type"], "Feature");
            assert_eq!(feature["properties"]["synthetic"], true);
            let id = feature["properties"]["id"].as_str().expect("an id").to_owned();
            assert_eq!(feature["geometry"]["type"], "Polygon", "{id}");
            let coordinates = feature["geometry"]["coordinates"].as_array().unwrap();
            assert_eq!(coordinates.len(), 1, "{id}: one ring, no holes");
            let ring: Ring = coordinates[0]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
                .collect();
            assert!(ring.len() >= 4, "{id}: a ring has at least four positions");
            assert_eq!(ring.first(), ring.last(), "{id}: the ring is closed");
            (id, ring[..ring.len() - 1].to_vec())
        })
        .collect()
}

/// Every property the polygons of `n_units` units of seed `seed` must have.
fn check_polygons(n_units: usize, seed: u64) {
    let dataset = demo::generate(n_units, seed).unwrap();
    let text = units_geojson(dataset.units());
    let features = rings(&text);
    // One feature per unit, in order, keyed by id.
    let ids: Vec<&str> = features.iter().map(|(id, _)| id.as_str()).collect();
    let unit_ids: Vec<&str> = dataset.units().iter().map(|u| u.id.as_str()).collect();
    assert_eq!(ids, unit_ids);

    let mut total = 0.0;
    for ((id, ring), unit) in features.iter().zip(dataset.units()) {
        let area = signed_area(ring);
        assert!(area > 0.0, "{id}: the exterior ring is counter-clockwise (RFC 7946)");
        total += area;
        let n = ring.len();
        for i in 0..n {
            assert_ne!(ring[i], ring[(i + 1) % n], "{id}: repeated corner");
            assert!(cross(ring[i], ring[(i + 1) % n], ring[(i + 2) % n]) >= -1e-9, "{id}: not convex at {i}");
            // No two edges that do not share a corner cross.
            for j in i + 2..n {
                if (j + 1) % n != i {
                    assert!(
                        !segments_cross(ring[i], ring[(i + 1) % n], ring[j], ring[(j + 1) % n]),
                        "{id}: edges {i} and {j} cross"
                    );
                }
            }
        }
        let point = (unit.lon.unwrap(), unit.lat.unwrap());
        assert!(contains(ring, point), "{id}: its point {point:?} is not in its cell");
        assert!(ring.iter().all(|&(x, y)| (102.0..=114.0).contains(&x) && (30.0..=36.0).contains(&y)), "{id}");
    }
    // The cells cover the outline and do not overlap beyond rounding.
    let outline: Ring = OUTLINE.to_vec();
    assert!((total / signed_area(&outline) - 1.0).abs() < 1e-6, "{total} vs {}", signed_area(&outline));
    for (i, (a, ring_a)) in features.iter().enumerate() {
        for (b, ring_b) in &features[i + 1..] {
            let overlap = intersect_convex(ring_a, ring_b);
            let area = if overlap.len() >= 3 { signed_area(&overlap) } else { 0.0 };
            assert!(area < 1e-9, "{a} and {b} overlap by {area} square degrees");
        }
    }
    // The dataset reader accepts it.
    let (units_csv, panel_csv) = dataset.to_csv();
    let read = Dataset::from_csv(&units_csv, &panel_csv, Some(&text)).expect("the reader accepts the polygons");
    assert_eq!(read.geojson(), Some(text.as_str()));
}

#[test]
fn the_default_demo_polygons_are_valid_cells() {
    check_polygons(DEMO_UNITS, DEMO_SEED);
}

#[test]
fn other_sizes_and_seeds_give_valid_cells() {
    for (n_units, seed) in [(1, 1), (2, 7), (3, 3), (12, 8), (300, 11)] {
        check_polygons(n_units, seed);
    }
}

#[test]
fn the_same_units_give_the_same_bytes() {
    let units = demo::generate(40, 9).unwrap().units().to_vec();
    assert_eq!(units_geojson(&units), units_geojson(&units));
    let again = demo::generate(40, 9).unwrap();
    assert_eq!(units_geojson(&units), units_geojson(again.units()));
    let other = demo::generate(40, 10).unwrap();
    assert_ne!(units_geojson(&units), units_geojson(other.units()));
}

#[test]
fn the_committed_demo_polygons_are_the_generators_output() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/demo/units.geojson");
    let committed = std::fs::read_to_string(&path).expect("data/demo/units.geojson");
    let dataset = demo::generate(DEMO_UNITS, DEMO_SEED).unwrap();
    assert!(
        committed == units_geojson(dataset.units()),
        "data/demo/units.geojson differs from the generator's output: regenerate it with \
         `zonesweep data demo --out data/demo --force`"
    );
}
