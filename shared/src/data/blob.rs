//! The wire form of a dataset as the coordinator stores it and a worker
//! fetches it by content hash: the text of its files in one JSON document.
//! The coordinator hashes the bytes of [`DatasetBlob::to_bytes`], so both
//! sides must produce and read exactly this form.

use serde::{Deserialize, Serialize};

use crate::data::dataset::{Dataset, DatasetError};

/// A dataset's files as text, as stored by the coordinator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetBlob {
    pub units_csv: String,
    pub panel_csv: String,
    /// `None` when the dataset has no polygons.
    pub units_geojson: Option<String>,
}

impl DatasetBlob {
    /// The JSON bytes of the blob (deterministic: fields in declaration order).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a dataset blob of strings serializes")
    }

    /// Read a blob written by [`DatasetBlob::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<DatasetBlob, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("not a valid dataset blob: {e}"))
    }

    /// Parse and validate the dataset the blob holds.
    pub fn parse(&self) -> Result<Dataset, DatasetError> {
        Dataset::from_csv(&self.units_csv, &self.panel_csv, self.units_geojson.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip() {
        let blob = DatasetBlob {
            units_csv: "id,name\n\"a,b\",Ä\n".to_owned(),
            panel_csv: "id,year\n".to_owned(),
            units_geojson: Some("{\"type\":\"FeatureCollection\"}".to_owned()),
        };
        assert_eq!(DatasetBlob::from_bytes(&blob.to_bytes()).unwrap(), blob);
        let without = DatasetBlob { units_geojson: None, ..blob };
        assert_eq!(DatasetBlob::from_bytes(&without.to_bytes()).unwrap(), without);
        assert!(DatasetBlob::from_bytes(b"{\"units_csv\": 1}").is_err());
    }
}
