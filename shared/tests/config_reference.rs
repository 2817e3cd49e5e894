//! Every configuration key is documented: `zonesweep config default` prints
//! each under a comment with its unit, still reads back as the default, and
//! docs/model.md section 11 has the current table of every key.

use std::path::PathBuf;

use zonesweep_shared::model::config::Config;
use zonesweep_shared::model::config_keys::{KEYS, SECTIONS, key_doc, key_values, reference_table};

#[test]
fn the_commented_default_reads_back_as_the_default() {
    let text = Config::default_toml();
    assert_eq!(Config::from_toml_overrides(&text, "config default").unwrap(), Config::default());
    assert!(text.contains("docs/model.md section 11"), "{text}");
}

#[test]
fn every_key_the_schema_serializes_has_a_comment() {
    let keys = key_values(&Config::default());
    assert!(keys.len() > 100, "{} keys", keys.len());
    let missing: Vec<&String> = keys.keys().filter(|path| key_doc(path).is_none()).collect();
    assert!(missing.is_empty(), "keys without a line in config_keys::KEYS: {missing:#?}");
    // And no entry is stale or shadowed by an earlier one.
    for doc in KEYS {
        assert!(
            keys.keys().any(|path| key_doc(path).is_some_and(|d| d.path == doc.path)),
            "config_keys::KEYS has `{}`, which documents no key",
            doc.path
        );
        assert!(!doc.unit.is_empty() && !doc.meaning.is_empty(), "{doc:?}");
    }
    // Spot checks of the keys users ask about.
    for path in [
        "scenarios.low.P.first.rate",
        "scenarios.high.CEI.second.sign",
        "scenarios.baseline.W.second.factor",
        "scenarios.low.CEI.second.offset",
        "scenarios.low.IS.second.cap.offset",
        "ridge.stability",
        "ridge.trace.step",
        "scenarios.neutral_sink",
        "coefficients.energy.natural_gas.tce",
    ] {
        assert!(keys.contains_key(path), "{path} is not a key");
    }
    assert_eq!(key_doc("coefficients.energy.natural_gas.tce").unwrap().unit, "tce per 10⁴ m³");
    assert_eq!(key_doc("coefficients.energy.coke.tce").unwrap().unit, "tce per t");
    assert!(key_doc("scenarios.low.P.first.rate").unwrap().unit.contains("min_delta"));
}

#[test]
fn every_key_line_of_config_default_has_a_comment_above_it() {
    let text = Config::default_toml();
    let lines: Vec<&str> = text.lines().collect();
    let mut keys = 0;
    for (i, line) in lines.iter().enumerate() {
        let is_key = line.split_once(" = ").is_some_and(|(k, _)| !k.starts_with('#') && !k.starts_with(' '));
        if is_key {
            keys += 1;
            assert!(lines[i - 1].starts_with("# "), "no comment above `{line}` (line {})", i + 1);
            assert!(lines[i - 1].ends_with(']'), "no unit in the comment above `{line}`: {}", lines[i - 1]);
        }
    }
    assert!(keys > 250, "{keys} key lines");
}

/// docs/model.md section 11.
fn reference_section() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/model.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text.find("## 11. Configuration reference").expect("docs/model.md has section 11");
    let end = text[start..].find("## 12.").map_or(text.len(), |e| start + e);
    text[start..end].to_owned()
}

#[test]
fn docs_model_md_section_11_lists_every_key_with_unit_and_meaning() {
    let section = reference_section();
    let mut stale = Vec::new();
    for name in SECTIONS {
        let table = reference_table(name);
        if !section.contains(&table) {
            stale.push(format!("### `[{name}]`\n\n{table}"));
        }
    }
    assert!(
        stale.is_empty(),
        "docs/model.md section 11 lacks the current key tables; replace them with:\n\n{}",
        stale.join("\n")
    );
}
