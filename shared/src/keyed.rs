//! Enums whose variants have a fixed text key (the name used in TOML, JSON,
//! sweep specs and tables): one macro writes each variant's key, the array of
//! all variants in declaration order, and the look-up by key.

/// `keyed_enum! { #[attrs] pub enum Name { Variant = "key", … } }` defines the
/// enum with `Name::ALL`, `name.key()` and `Name::from_key(text)`. Serde
/// attributes are given as usual; a test checks that serde's names agree
/// with the keys.
macro_rules! keyed_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident = $key:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$variant_meta])* $variant ),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: [$name; [$($key),+].len()] = [$($name::$variant),+];

            /// The variant's text key.
            pub const fn key(self) -> &'static str {
                match self {
                    $( $name::$variant => $key ),+
                }
            }

            /// The variant whose key is `key`.
            pub fn from_key(key: &str) -> Option<$name> {
                Self::ALL.into_iter().find(|v| v.key() == key)
            }
        }
    };
}

pub(crate) use keyed_enum;

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use crate::data::fields::FieldGroup;
    use crate::model::config::{CeiBasis, Driver, Fit, NeutralSink, Period, Scenario};
    use crate::model::indices::IndexKey;
    use crate::model::zoning::ScoreKey;

    /// Serde's name of every variant is its key, and `from_key` inverts `key`.
    fn agree<T: Serialize + Copy + PartialEq + std::fmt::Debug>(
        all: &[T],
        key: fn(T) -> &'static str,
        from: fn(&str) -> Option<T>,
    ) {
        for &v in all {
            assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{}\"", key(v)), "{v:?}");
            assert_eq!(from(key(v)), Some(v));
        }
        assert_eq!(from("no such key"), None);
    }

    #[test]
    fn keys_are_serde_names_and_round_trip() {
        agree(&Scenario::ALL, Scenario::key, Scenario::from_key);
        agree(&Driver::ALL, Driver::key, Driver::from_key);
        agree(&Period::ALL, Period::key, Period::from_key);
        agree(&NeutralSink::ALL, NeutralSink::key, NeutralSink::from_key);
        agree(&Fit::ALL, Fit::key, Fit::from_key);
        agree(&CeiBasis::ALL, CeiBasis::key, CeiBasis::from_key);
        agree(&FieldGroup::ALL, FieldGroup::key, FieldGroup::from_key);
        agree(&IndexKey::ALL, IndexKey::key, IndexKey::from_key);
        agree(&ScoreKey::ALL, ScoreKey::key, ScoreKey::from_key);
        assert_eq!(Scenario::ALL, [Scenario::Low, Scenario::Baseline, Scenario::High]);
        assert_eq!(ScoreKey::ALL.len(), 10);
        assert_eq!(IndexKey::ALL.len(), 9);
    }
}
