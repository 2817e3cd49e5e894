//! The emission and sequestration coefficients of docs/model.md section 3, as one
//! flat table of named values so that a sweep can scale any of them by name
//! (`energy.raw_coal.carbon`, `crops.*.water`) without reflection.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

use crate::data::fields::Field;

macro_rules! coefficients {
    ($( $konst:ident = $path:literal => $value:expr; )*) => {
        /// Index of each coefficient in [`Coefficients`].
        pub mod coefficient {
            coefficients!(@index 0usize; $( $konst, )*);
        }

        /// The dotted name of every coefficient, in table order.
        pub const COEFFICIENT_NAMES: [&str; N_COEFFICIENTS] = [ $( $path, )* ];
        const DEFAULTS: [f64; N_COEFFICIENTS] = [ $( $value, )* ];
        /// The number of coefficients.
        pub const N_COEFFICIENTS: usize = [ $( $path, )* ].len();
    };
    (@index $n:expr; $head:ident, $( $rest:ident, )*) => {
        pub const $head: usize = $n;
        coefficients!(@index $n + 1usize; $( $rest, )*);
    };
    (@index $n:expr;) => {};
}

coefficients! {
    FERTILIZER = "cropland.fertilizer" => 0.86;
    PESTICIDE = "cropland.pesticide" => 4.93;
    PLASTIC_FILM = "cropland.plastic_film" => 5.18;
    IRRIGATED = "cropland.irrigated" => 0.266;
    SOWN = "cropland.sown" => 0.02;
    MACHINERY = "cropland.machinery" => 1.81e-4;
    RAW_COAL_TCE = "energy.raw_coal.tce" => 0.7143;
    RAW_COAL_CARBON = "energy.raw_coal.carbon" => 0.7260;
    COKE_TCE = "energy.coke.tce" => 0.9714;
    COKE_CARBON = "energy.coke.carbon" => 0.8550;
    GASOLINE_TCE = "energy.gasoline.tce" => 1.4714;
    GASOLINE_CARBON = "energy.gasoline.carbon" => 0.5538;
    KEROSENE_TCE = "energy.kerosene.tce" => 1.4714;
    KEROSENE_CARBON = "energy.kerosene.carbon" => 0.5714;
    DIESEL_TCE = "energy.diesel.tce" => 1.4571;
    DIESEL_CARBON = "energy.diesel.carbon" => 0.5921;
    FUEL_OIL_TCE = "energy.fuel_oil.tce" => 1.4286;
    FUEL_OIL_CARBON = "energy.fuel_oil.carbon" => 0.6185;
    NATURAL_GAS_TCE = "energy.natural_gas.tce" => 12.143;
    NATURAL_GAS_CARBON = "energy.natural_gas.carbon" => 0.4483;
    LNG_TCE = "energy.lng.tce" => 1.7572;
    LNG_CARBON = "energy.lng.carbon" => 0.3548;
    LPG_TCE = "energy.lpg.tce" => 1.7143;
    LPG_CARBON = "energy.lpg.carbon" => 0.5042;
    ELECTRICITY_TCE = "energy.electricity.tce" => 1.229;
    ELECTRICITY_CARBON = "energy.electricity.carbon" => 0.7935;
    HEAT_TCE = "energy.heat.tce" => 0.0341;
    HEAT_CARBON = "energy.heat.carbon" => 0.2600;
    BREATHING = "breathing" => 0.079;
    PIGS_RESPIRATION = "livestock.pigs.respiration" => 0.08;
    PIGS_ENTERIC = "livestock.pigs.enteric" => 0.001;
    PIGS_MANURE = "livestock.pigs.manure" => 0.005;
    CATTLE_RESPIRATION = "livestock.cattle.respiration" => 0.79;
    CATTLE_ENTERIC = "livestock.cattle.enteric" => 0.005;
    CATTLE_MANURE = "livestock.cattle.manure" => 0.003;
    SHEEP_RESPIRATION = "livestock.sheep.respiration" => 0.02;
    SHEEP_ENTERIC = "livestock.sheep.enteric" => 0.005;
    SHEEP_MANURE = "livestock.sheep.manure" => 0.0005;
    POULTRY_RESPIRATION = "livestock.poultry.respiration" => 0.00001;
    POULTRY_ENTERIC = "livestock.poultry.enteric" => 0.001;
    POULTRY_MANURE = "livestock.poultry.manure" => 0.00002;
    RICE_ECONOMIC = "crops.rice.economic" => 0.45;
    RICE_WATER = "crops.rice.water" => 0.12;
    RICE_ABSORPTION = "crops.rice.absorption" => 0.414;
    WHEAT_ECONOMIC = "crops.wheat.economic" => 0.40;
    WHEAT_WATER = "crops.wheat.water" => 0.12;
    WHEAT_ABSORPTION = "crops.wheat.absorption" => 0.485;
    MAIZE_ECONOMIC = "crops.maize.economic" => 0.40;
    MAIZE_WATER = "crops.maize.water" => 0.13;
    MAIZE_ABSORPTION = "crops.maize.absorption" => 0.471;
    SORGHUM_ECONOMIC = "crops.sorghum.economic" => 0.35;
    SORGHUM_WATER = "crops.sorghum.water" => 0.13;
    SORGHUM_ABSORPTION = "crops.sorghum.absorption" => 0.450;
    OTHER_CEREAL_ECONOMIC = "crops.other_cereal.economic" => 0.40;
    OTHER_CEREAL_WATER = "crops.other_cereal.water" => 0.12;
    OTHER_CEREAL_ABSORPTION = "crops.other_cereal.absorption" => 0.450;
    BEANS_ECONOMIC = "crops.beans.economic" => 0.35;
    BEANS_WATER = "crops.beans.water" => 0.13;
    BEANS_ABSORPTION = "crops.beans.absorption" => 0.450;
    TUBERS_ECONOMIC = "crops.tubers.economic" => 0.70;
    TUBERS_WATER = "crops.tubers.water" => 0.70;
    TUBERS_ABSORPTION = "crops.tubers.absorption" => 0.423;
    PEANUT_ECONOMIC = "crops.peanut.economic" => 0.43;
    PEANUT_WATER = "crops.peanut.water" => 0.10;
    PEANUT_ABSORPTION = "crops.peanut.absorption" => 0.450;
    RAPESEED_ECONOMIC = "crops.rapeseed.economic" => 0.25;
    RAPESEED_WATER = "crops.rapeseed.water" => 0.10;
    RAPESEED_ABSORPTION = "crops.rapeseed.absorption" => 0.450;
    SINK_SHRUBLAND = "land_sink.shrubland" => 3.98;
    SINK_FOREST = "land_sink.forest" => 5.77;
    SINK_GRASSLAND = "land_sink.grassland" => 0.021;
    SINK_WATER = "land_sink.water" => 0.298;
    NEP_CROPLAND = "nep.cropland" => 4.05;
    NEP_SHRUBLAND = "nep.shrubland" => 2.93;
    NEP_FOREST = "nep.forest" => 3.81;
    NEP_GRASSLAND = "nep.grassland" => 0.95;
}

/// The coefficient indices of each energy carrier of [`Field::ENERGY`]:
/// (tce per physical unit, t carbon per tce).
pub const ENERGY_COEFFICIENTS: [(usize, usize); 11] = {
    use coefficient::*;
    [
        (RAW_COAL_TCE, RAW_COAL_CARBON),
        (COKE_TCE, COKE_CARBON),
        (GASOLINE_TCE, GASOLINE_CARBON),
        (KEROSENE_TCE, KEROSENE_CARBON),
        (DIESEL_TCE, DIESEL_CARBON),
        (FUEL_OIL_TCE, FUEL_OIL_CARBON),
        (NATURAL_GAS_TCE, NATURAL_GAS_CARBON),
        (LNG_TCE, LNG_CARBON),
        (LPG_TCE, LPG_CARBON),
        (ELECTRICITY_TCE, ELECTRICITY_CARBON),
        (HEAT_TCE, HEAT_CARBON),
    ]
};

/// The coefficient index of the first of (respiration, enteric, manure) for
/// each livestock field of [`Field::LIVESTOCK`].
pub const LIVESTOCK_COEFFICIENTS: [usize; 4] = {
    use coefficient::*;
    [PIGS_RESPIRATION, CATTLE_RESPIRATION, SHEEP_RESPIRATION, POULTRY_RESPIRATION]
};

/// The coefficient index of the first of (economic, water, absorption) for
/// each crop field of [`Field::CROPS`].
pub const CROP_COEFFICIENTS: [usize; 9] = {
    use coefficient::*;
    [
        RICE_ECONOMIC,
        WHEAT_ECONOMIC,
        MAIZE_ECONOMIC,
        SORGHUM_ECONOMIC,
        OTHER_CEREAL_ECONOMIC,
        BEANS_ECONOMIC,
        TUBERS_ECONOMIC,
        PEANUT_ECONOMIC,
        RAPESEED_ECONOMIC,
    ]
};

const _: () = assert!(Field::ENERGY.len() == ENERGY_COEFFICIENTS.len());

/// Every coefficient of docs/model.md section 3, by index ([`coefficient`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Coefficients {
    values: [f64; N_COEFFICIENTS],
}

impl Default for Coefficients {
    fn default() -> Self {
        Coefficients { values: DEFAULTS }
    }
}

impl Coefficients {
    pub fn get(&self, index: usize) -> f64 {
        self.values[index]
    }

    pub fn set(&mut self, index: usize, value: f64) {
        self.values[index] = value;
    }

    pub fn values(&self) -> &[f64; N_COEFFICIENTS] {
        &self.values
    }

    /// The index of the coefficient with this dotted name.
    pub fn index_of(name: &str) -> Option<usize> {
        COEFFICIENT_NAMES.iter().position(|n| *n == name)
    }

    /// Problems with the values: every coefficient must be finite and ≥ 0,
    /// economic coefficients > 0 and water contents < 1.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (name, value) in COEFFICIENT_NAMES.iter().zip(&self.values) {
            if !value.is_finite() || *value < 0.0 {
                problems.push(format!("coefficient `{name}` is {value}; it must be finite and ≥ 0"));
            } else if name.ends_with(".economic") && *value == 0.0 {
                problems.push(format!("coefficient `{name}` is 0; an economic coefficient must be > 0"));
            } else if name.ends_with(".water") && *value >= 1.0 {
                problems.push(format!("coefficient `{name}` is {value}; a water content must be < 1"));
            } else if name.starts_with("nep.") && *value == 0.0 {
                problems.push(format!("coefficient `{name}` is 0; an NEP must be > 0"));
            }
        }
        problems
    }

    fn to_table(&self) -> toml::Table {
        let mut root = toml::Table::new();
        for (name, value) in COEFFICIENT_NAMES.iter().zip(&self.values) {
            let mut parts: Vec<&str> = name.split('.').collect();
            let leaf = parts.pop().expect("names are not empty");
            let mut table = &mut root;
            for part in parts {
                table = table
                    .entry(part)
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                    .as_table_mut()
                    .expect("coefficient names form a tree");
            }
            table.insert(leaf.to_owned(), toml::Value::Float(*value));
        }
        root
    }
}

impl Serialize for Coefficients {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_table().serialize(serializer)
    }
}

/// A nested table of numbers, as written in a configuration file.
#[derive(Deserialize)]
#[serde(untagged)]
enum Node {
    Number(f64),
    Table(BTreeMap<String, Node>),
}

impl<'de> Deserialize<'de> for Coefficients {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let tree = BTreeMap::<String, Node>::deserialize(deserializer)?;
        let mut coefficients = Coefficients::default();
        let mut stack: Vec<(String, Node)> = tree.into_iter().collect();
        while let Some((path, node)) = stack.pop() {
            match node {
                Node::Number(value) => match Coefficients::index_of(&path) {
                    Some(index) => coefficients.values[index] = value,
                    None => return Err(de::Error::custom(UnknownCoefficient(path))),
                },
                Node::Table(children) => {
                    if children.is_empty() && !COEFFICIENT_NAMES.iter().any(|n| n.starts_with(&format!("{path}."))) {
                        return Err(de::Error::custom(UnknownCoefficient(path)));
                    }
                    stack.extend(children.into_iter().map(|(k, v)| (format!("{path}.{k}"), v)));
                }
            }
        }
        Ok(coefficients)
    }
}

struct UnknownCoefficient(String);

impl fmt::Display for UnknownCoefficient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown coefficient `{}` (known: cropland.*, energy.*.tce|carbon, breathing, livestock.*.respiration|enteric|manure, crops.*.economic|water|absorption, land_sink.*, nep.*)",
            self.0
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_layout_matches_the_field_lists() {
        for (field, (tce, carbon)) in Field::ENERGY.iter().zip(ENERGY_COEFFICIENTS) {
            assert_eq!(COEFFICIENT_NAMES[tce], format!("energy.{}.tce", field.name()));
            assert_eq!(COEFFICIENT_NAMES[carbon], format!("energy.{}.carbon", field.name()));
        }
        for (field, first) in Field::LIVESTOCK.iter().zip(LIVESTOCK_COEFFICIENTS) {
            assert_eq!(COEFFICIENT_NAMES[first], format!("livestock.{}.respiration", field.name()));
            assert_eq!(COEFFICIENT_NAMES[first + 2], format!("livestock.{}.manure", field.name()));
        }
        for (field, first) in Field::CROPS.iter().zip(CROP_COEFFICIENTS) {
            assert_eq!(COEFFICIENT_NAMES[first], format!("crops.{}.economic", field.name()));
            assert_eq!(COEFFICIENT_NAMES[first + 2], format!("crops.{}.absorption", field.name()));
        }
        assert_eq!(N_COEFFICIENTS, 76);
        assert!(Coefficients::default().problems().is_empty());
    }

    #[test]
    fn toml_round_trip_and_unknown_names() {
        let text = toml::to_string(&Coefficients::default()).unwrap();
        let back: Coefficients = toml::from_str(&text).unwrap();
        assert_eq!(back, Coefficients::default());
        let err = toml::from_str::<Coefficients>("[energy.rawcoal]\ntce = 1.0\n").unwrap_err();
        assert!(err.to_string().contains("energy.rawcoal.tce"), "{err}");
    }
}
