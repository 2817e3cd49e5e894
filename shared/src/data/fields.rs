//! The per (unit, year) fields of a dataset (docs/model.md section 2), in one fixed
//! order. A panel row is a `[f64; N_FIELDS]` indexed by [`Field`].

use serde::{Deserialize, Serialize};

use crate::keyed::keyed_enum;

macro_rules! fields {
    ($( $variant:ident => $name:literal, $group:ident; )*) => {
        /// One column of `panel.csv`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(usize)]
        pub enum Field { $( $variant, )* }

        impl Field {
            /// Every field, in the order of a panel row.
            pub const ALL: [Field; N_FIELDS] = [ $( Field::$variant, )* ];

            /// The column name in `panel.csv`.
            pub const fn name(self) -> &'static str {
                match self { $( Field::$variant => $name, )* }
            }

            /// The group whose measurement noise this field shares.
            pub const fn group(self) -> FieldGroup {
                match self { $( Field::$variant => FieldGroup::$group, )* }
            }
        }

        /// The number of per (unit, year) fields.
        pub const N_FIELDS: usize = [ $( $name, )* ].len();
    };
}

fields! {
    Cropland => "cropland", LandUse;
    Shrubland => "shrubland", LandUse;
    Forest => "forest", LandUse;
    Grassland => "grassland", LandUse;
    Water => "water", LandUse;
    Urban => "urban", LandUse;
    Unused => "unused", LandUse;
    Fertilizer => "fertilizer", Agriculture;
    Pesticide => "pesticide", Agriculture;
    PlasticFilm => "plastic_film", Agriculture;
    Irrigated => "irrigated", Agriculture;
    Sown => "sown", Agriculture;
    Machinery => "machinery", Agriculture;
    Pigs => "pigs", Livestock;
    Cattle => "cattle", Livestock;
    Sheep => "sheep", Livestock;
    Poultry => "poultry", Livestock;
    Rice => "rice", CropYield;
    Wheat => "wheat", CropYield;
    Maize => "maize", CropYield;
    Sorghum => "sorghum", CropYield;
    OtherCereal => "other_cereal", CropYield;
    Beans => "beans", CropYield;
    Tubers => "tubers", CropYield;
    Peanut => "peanut", CropYield;
    Rapeseed => "rapeseed", CropYield;
    RawCoal => "raw_coal", Energy;
    Coke => "coke", Energy;
    Gasoline => "gasoline", Energy;
    Kerosene => "kerosene", Energy;
    Diesel => "diesel", Energy;
    FuelOil => "fuel_oil", Energy;
    NaturalGas => "natural_gas", Energy;
    Lng => "lng", Energy;
    Lpg => "lpg", Energy;
    Electricity => "electricity", Energy;
    Heat => "heat", Energy;
    Population => "population", Socioeconomic;
    UrbanPopulation => "urban_population", Socioeconomic;
    Gdp => "gdp", Socioeconomic;
    SecondaryGdp => "secondary_gdp", Socioeconomic;
}

/// One panel row: every field of one (unit, year).
pub type Row = [f64; N_FIELDS];

impl Field {
    /// The field with this `panel.csv` column name.
    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.iter().copied().find(|f| f.name() == name)
    }

    /// Land-use area fields L1–L7 (hm²).
    pub const LAND_USE: [Field; 7] =
        [Field::Cropland, Field::Shrubland, Field::Forest, Field::Grassland, Field::Water, Field::Urban, Field::Unused];

    /// Livestock stock fields (head).
    pub const LIVESTOCK: [Field; 4] = [Field::Pigs, Field::Cattle, Field::Sheep, Field::Poultry];

    /// Crop yield fields (t).
    pub const CROPS: [Field; 9] = [
        Field::Rice,
        Field::Wheat,
        Field::Maize,
        Field::Sorghum,
        Field::OtherCereal,
        Field::Beans,
        Field::Tubers,
        Field::Peanut,
        Field::Rapeseed,
    ];

    /// Energy carriers, in the physical unit docs/model.md section 3 names.
    pub const ENERGY: [Field; 11] = [
        Field::RawCoal,
        Field::Coke,
        Field::Gasoline,
        Field::Kerosene,
        Field::Diesel,
        Field::FuelOil,
        Field::NaturalGas,
        Field::Lng,
        Field::Lpg,
        Field::Electricity,
        Field::Heat,
    ];

    /// Fields that must be strictly positive in every row, because the model
    /// takes their logarithm or divides by them.
    pub const POSITIVE: [Field; 4] = [Field::Population, Field::UrbanPopulation, Field::Gdp, Field::SecondaryGdp];
}

keyed_enum! {
    /// Groups of fields that share one measurement-noise level in a sweep.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum FieldGroup {
        LandUse = "land_use",
        Agriculture = "agriculture",
        Livestock = "livestock",
        CropYield = "crop_yield",
        Energy = "energy",
        Socioeconomic = "socioeconomic",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        assert_eq!(N_FIELDS, 41);
        for (i, f) in Field::ALL.iter().enumerate() {
            assert_eq!(*f as usize, i);
            assert_eq!(Field::from_name(f.name()), Some(*f));
        }
        let mut names: Vec<_> = Field::ALL.iter().map(|f| f.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), N_FIELDS);
    }
}
