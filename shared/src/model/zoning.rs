//! Zoning (docs/model.md section 7, paper Table 6): ten scores per unit, their
//! total, Jenks natural breaks of the totals and the five zones.

use serde::{Deserialize, Serialize};

use crate::keyed::keyed_enum;
use crate::model::config::{Direction, Directions, ZoningConfig};
use crate::model::indices::IndexKey;
use crate::numerics::jenks;
use crate::numerics::trend::TrendClass;

keyed_enum! {
    /// The ten scores, in this order in [`Scores`].
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
    pub enum ScoreKey {
        CS = "CS",
        NCE = "NCE",
        CE = "CE",
        ECC = "ECC",
        ESC = "ESC",
        Cf = "Cf",
        Ec = "Ec",
        Ed = "Ed",
        CEP = "CEP",
        CLI = "CLI",
    }
}

impl ScoreKey {
    /// The score of a trended index.
    pub const fn of_index(index: IndexKey) -> Option<ScoreKey> {
        Some(match index {
            IndexKey::CE => ScoreKey::CE,
            IndexKey::CS => ScoreKey::CS,
            IndexKey::NCE => ScoreKey::NCE,
            IndexKey::ECC => ScoreKey::ECC,
            IndexKey::ESC => ScoreKey::ESC,
            IndexKey::Cf => ScoreKey::Cf,
            IndexKey::Ec => ScoreKey::Ec,
            IndexKey::Ed => ScoreKey::Ed,
            IndexKey::CLI => return None,
        })
    }
}

/// One unit's ten scores, indexed by [`ScoreKey`].
pub type Scores = [u8; 10];

/// The zone names, zone 1 first.
pub const ZONE_NAMES: [&str; 5] = [
    "carbon sink functional zone",
    "low-carbon development zone",
    "net-carbon stabilization zone",
    "high-carbon control zone",
    "carbon source optimization zone",
];

/// The name of zone `zone` (1-based): one of [`ZONE_NAMES`], or "zone 6",
/// "zone 7", … beyond them (a configuration may have more zones).
pub fn zone_name(zone: usize) -> String {
    match zone.checked_sub(1).and_then(|i| ZONE_NAMES.get(i)) {
        Some(name) => (*name).to_owned(),
        None => format!("zone {zone}"),
    }
}

/// The scoring direction of a trended index.
pub fn direction(directions: &Directions, index: IndexKey) -> Direction {
    match index {
        IndexKey::CE => directions.CE,
        IndexKey::CS => directions.CS,
        IndexKey::NCE => directions.NCE,
        IndexKey::ECC => directions.ECC,
        IndexKey::ESC => directions.ESC,
        IndexKey::Cf => directions.Cf,
        IndexKey::Ec => directions.Ec,
        IndexKey::Ed => directions.Ed,
        IndexKey::CLI => Direction::IncreaseIsGood,
    }
}

/// The 1–5 score of a Mann-Kendall Z: marked increase 5 … marked decrease 1
/// when an increase is good, the mirror when a decrease is good.
pub fn trend_score(z: f64, threshold: f64, direction: Direction) -> u8 {
    let increase_good = TrendClass::of(z, threshold).score_increase_good();
    match direction {
        Direction::IncreaseIsGood => increase_good,
        Direction::DecreaseIsGood => 6 - increase_good,
    }
}

/// CLI scores: base-year CLI min-max scaled over the units, then scored by
/// the lower bounds of scores 2…5 (all 3 when every CLI is equal).
pub fn cli_scores(cli: &[f64], thresholds: &[f64; 4]) -> Vec<u8> {
    let min = cli.iter().copied().fold(f64::INFINITY, f64::min);
    let max = cli.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    cli.iter()
        .map(|&c| {
            if max == min {
                return 3;
            }
            let scaled = (c - min) / (max - min);
            1 + thresholds.iter().filter(|&&t| scaled >= t).count() as u8
        })
        .collect()
}

/// Totals partitioned into zones.
#[derive(Clone, Debug, PartialEq)]
pub struct Zoning {
    /// Upper bound of each class, ascending.
    pub breaks: Vec<u32>,
    /// 1 = the class of the highest totals.
    pub zone: Vec<u8>,
}

/// Jenks natural breaks of the totals into `config.zones` classes, zone 1
/// being the highest; with fewer distinct totals than zones, the highest
/// zone numbers stay empty.
pub fn zones(totals: &[u32], config: &ZoningConfig) -> Zoning {
    let values: Vec<f64> = totals.iter().map(|&t| f64::from(t)).collect();
    let partition = jenks::partition(&values, config.zones);
    let n_classes = partition.n_classes();
    Zoning {
        breaks: partition.upper_bounds.iter().map(|&b| b as u32).collect(),
        zone: partition.class_of.iter().map(|&c| (n_classes - c) as u8).collect(),
    }
}

/// The zone of each total, as [`zones`] gives it, into `zone`, with the
/// buffers of `scratch`: what a sweep calls once per sample.
pub fn zones_into(totals: &[u32], config: &ZoningConfig, scratch: &mut jenks::Scratch, zone: &mut [u8]) {
    if totals.is_empty() || config.zones == 0 {
        zone.iter_mut().for_each(|z| *z = 0);
        return;
    }
    scratch.sorted.clear();
    // Sorted by counting when the totals span fewer than `SPAN` values
    // (as they do: ten scores of 1 to 5), otherwise by comparisons.
    const SPAN: usize = 64;
    let (low, high) = totals.iter().fold((u32::MAX, 0), |(low, high), &t| (low.min(t), high.max(t)));
    if ((high - low) as usize) < SPAN {
        let mut counts = [0u32; SPAN];
        for &t in totals {
            counts[(t - low) as usize] += 1;
        }
        for (offset, &count) in counts.iter().enumerate().filter(|(_, count)| **count > 0) {
            // A total that occurs: low + offset does not overflow.
            let value = f64::from(low + offset as u32);
            scratch.sorted.extend(std::iter::repeat_n(value, count as usize));
        }
    } else {
        scratch.sorted.extend(totals.iter().map(|&t| f64::from(t)));
        scratch.sorted.sort_unstable_by(f64::total_cmp);
    }
    let upper_bounds = scratch.upper_bounds(config.zones);
    let n_classes = upper_bounds.len();
    for (z, &total) in zone.iter_mut().zip(totals) {
        let value = f64::from(total);
        let class = upper_bounds.iter().position(|u| value <= *u).unwrap_or(n_classes - 1);
        *z = (n_classes - class) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::Config;

    #[test]
    fn zones_beyond_the_five_named_ones_are_named_by_number() {
        assert_eq!(zone_name(1), "carbon sink functional zone");
        assert_eq!(zone_name(5), "carbon source optimization zone");
        assert_eq!(zone_name(6), "zone 6");
        assert_eq!(zone_name(50), "zone 50");
        assert_eq!(zone_name(0), "zone 0");
    }

    #[test]
    fn trend_scores_mirror() {
        use Direction::*;
        assert_eq!(trend_score(2.0, 1.66, IncreaseIsGood), 5);
        assert_eq!(trend_score(2.0, 1.66, DecreaseIsGood), 1);
        assert_eq!(trend_score(0.0, 1.66, DecreaseIsGood), 3);
        assert_eq!(trend_score(-1.0, 1.66, DecreaseIsGood), 4);
        assert_eq!(trend_score(-1.0, 1.66, IncreaseIsGood), 2);
    }

    #[test]
    fn cli_scores_scale_and_flat() {
        let t = [0.2, 0.4, 0.6, 0.8];
        assert_eq!(cli_scores(&[100.0, 200.0, 150.0, 180.0, 119.0], &t), vec![1, 5, 3, 5, 1]);
        assert_eq!(cli_scores(&[150.0, 150.0], &t), vec![3, 3]);
    }

    #[test]
    fn zones_number_from_the_top() {
        let z = zones(&[10, 10, 30, 20], &Config::default().zoning);
        assert_eq!(z.breaks, vec![10, 20, 30]);
        assert_eq!(z.zone, vec![3, 3, 1, 2]);
    }

    /// A sweep's zones (totals sorted by counting when their span is
    /// narrow, by comparisons otherwise) are those of `zones`.
    #[test]
    fn zones_into_gives_the_zones_of_zones() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut scratch = jenks::Scratch::default();
        let mut config = Config::default().zoning;
        for case in 0..3_000 {
            let n = rng.random_range(1..100);
            let (low, span) =
                [(10, 41), (0, 64), (0, 65), (7, 63), (1000, 3), (u32::MAX - 70, 70), (0, 5000)][case % 7];
            let totals: Vec<u32> = (0..n).map(|_| low + rng.random_range(0..=span)).collect();
            config.zones = [5, 1, 3, 8][case % 4];
            let mut zone = vec![u8::MAX; n];
            zones_into(&totals, &config, &mut scratch, &mut zone);
            assert_eq!(zone, zones(&totals, &config).zone, "case {case}: {totals:?}");
        }
    }
}
