//! A table of counts: rows of equal width in one flat vector, the layout of
//! the aggregate's per-unit distributions (zone, total score, score, CEP,
//! peak year). Row r holds the counts of one unit (or one unit and scenario)
//! over its bins.

use serde::{Serialize, Serializer};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountTable {
    width: usize,
    counts: Vec<u64>,
}

impl CountTable {
    /// `rows` rows of `width` zero counts.
    pub fn zeros(rows: usize, width: usize) -> CountTable {
        CountTable { width, counts: vec![0; rows * width] }
    }

    /// A table from its flat counts, `width` per row; `None` when the counts
    /// do not fill whole rows.
    pub fn from_flat(width: usize, counts: Vec<u64>) -> Option<CountTable> {
        (width > 0 && counts.len() % width == 0).then_some(CountTable { width, counts })
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn n_rows(&self) -> usize {
        self.counts.len() / self.width.max(1)
    }

    /// Row `r`.
    pub fn row(&self, r: usize) -> &[u64] {
        &self.counts[r * self.width..(r + 1) * self.width]
    }

    pub fn row_mut(&mut self, r: usize) -> &mut [u64] {
        &mut self.counts[r * self.width..(r + 1) * self.width]
    }

    /// Every row, in order.
    pub fn rows(&self) -> std::slice::ChunksExact<'_, u64> {
        self.counts.chunks_exact(self.width.max(1))
    }

    /// The counts, row after row.
    pub fn as_flat(&self) -> &[u64] {
        &self.counts
    }

    /// The counts, row after row, to change in place.
    pub fn as_flat_mut(&mut self) -> &mut [u64] {
        &mut self.counts
    }

    /// Add another table of the same layout.
    pub fn add(&mut self, other: &CountTable) -> Result<(), String> {
        if self.width != other.width || self.counts.len() != other.counts.len() {
            return Err(format!(
                "count tables differ: {}×{} and {}×{}",
                self.n_rows(),
                self.width,
                other.n_rows(),
                other.width
            ));
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        Ok(())
    }
}

/// Written as the flat list of counts, row after row (the export format).
impl Serialize for CountTable {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.counts.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_slices_of_the_flat_counts() {
        let mut t = CountTable::zeros(3, 4);
        t.row_mut(1)[2] += 5;
        assert_eq!(t.row(1), &[0, 0, 5, 0]);
        assert_eq!(t.as_flat()[6], 5);
        assert_eq!(t.n_rows(), 3);
        assert_eq!(t.rows().count(), 3);
        assert_eq!(serde_json::to_string(&t).unwrap(), "[0,0,0,0,0,0,5,0,0,0,0,0]");
        assert!(CountTable::from_flat(4, vec![0; 7]).is_none());
        assert!(CountTable::from_flat(0, vec![]).is_none());
        let mut u = CountTable::from_flat(4, vec![1; 12]).unwrap();
        u.add(&t).unwrap();
        assert_eq!(u.row(1), &[1, 1, 6, 1]);
        assert!(u.add(&CountTable::zeros(4, 3)).is_err());
    }
}
