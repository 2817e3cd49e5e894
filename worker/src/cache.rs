//! Sweep definitions, fetched and parsed once per worker.
//!
//! Every job of a sweep names the same dataset, configuration and spec
//! hashes, so the worker fetches each blob once ([`SweepCache`] keeps raw
//! blobs by hash) and parses each definition once (kept by [`SweepKey`]).
//! Concurrent requests for the same entry wait for the one fetch in flight.
//! A parse failure is cached too — it is a property of the bytes — but a
//! fetch that failed is not, so the next job tries again.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;
use zonesweep_shared::data::blob::DatasetBlob;
use zonesweep_shared::data::dataset::Dataset;
use zonesweep_shared::model::config::Config;
use zonesweep_shared::sweep::SweepSpec;
use zonesweep_shared::sweep::aggregate::Aggregate;
use zonesweep_shared::sweep::runner::{Mode, SweepRunner};

/// What identifies a sweep definition: its three blobs and the sample count
/// and seed that override the spec's.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SweepKey {
    pub dataset_hash: String,
    pub config_hash: String,
    pub spec_hash: String,
    pub samples: u64,
    pub seed: u64,
}

/// A parsed, validated sweep: everything a job needs to run its samples.
///
/// [`SweepRunner`] borrows its dataset and configuration, so the definition
/// owns them and each job builds its runner ([`SweepDefinition::run_range`]);
/// that costs one pass over the dataset's rows, small next to any job.
pub struct SweepDefinition {
    dataset: Dataset,
    config: Config,
    spec: SweepSpec,
}

/// A summary: the dataset alone can run to megabytes.
impl std::fmt::Debug for SweepDefinition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SweepDefinition")
            .field("n_units", &self.dataset.n_units())
            .field("n_years", &self.dataset.n_years())
            .field("samples", &self.spec.samples)
            .field("seed", &self.spec.seed)
            .finish_non_exhaustive()
    }
}

impl SweepDefinition {
    /// Parse the three blobs of a sweep. The error is the text to send with
    /// FAIL: it names the blob and every problem found.
    pub fn parse(
        dataset_blob: &[u8],
        config_blob: &[u8],
        spec_blob: &[u8],
        samples: u64,
        seed: u64,
    ) -> Result<SweepDefinition, String> {
        let dataset = DatasetBlob::from_bytes(dataset_blob)?.parse().map_err(|e| e.to_string())?;
        let config_text =
            std::str::from_utf8(config_blob).map_err(|e| format!("the configuration is not UTF-8 text: {e}"))?;
        let config = Config::from_toml_overrides(config_text, "configuration").map_err(|e| e.to_string())?;
        let spec_text = std::str::from_utf8(spec_blob).map_err(|e| format!("the sweep spec is not UTF-8 text: {e}"))?;
        // An empty spec means the default spec, as in SubmitRequest; parsing
        // "" would instead give a spec with no uncertain parameter at all.
        let mut spec = if spec_text.trim().is_empty() {
            SweepSpec::default()
        } else {
            SweepSpec::from_toml(spec_text, "sweep spec").map_err(|e| e.to_string())?
        };
        spec.samples = samples;
        spec.seed = seed;
        let definition = SweepDefinition { dataset, config, spec };
        // Refuse now what the runner would refuse, so a bad sweep fails its
        // jobs before any of them reaches the thread pool.
        definition.runner()?;
        Ok(definition)
    }

    pub fn dataset(&self) -> &Dataset {
        &self.dataset
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The spec with the job's sample count and seed.
    pub fn spec(&self) -> &SweepSpec {
        &self.spec
    }

    pub fn runner(&self) -> Result<SweepRunner<'_>, String> {
        SweepRunner::new(&self.dataset, &self.config, &self.spec).map_err(|e| e.to_string())
    }

    /// The aggregate of samples `range` by `chain`, on the calling thread.
    /// CPU-bound: the worker calls it on its rayon pool, never on a tokio
    /// thread.
    pub fn run_range(&self, range: Range<u64>, chain: Mode) -> Result<Aggregate, String> {
        Ok(self.runner()?.with_mode(chain).run_range(range))
    }
}

/// A parsed definition, or why its blobs could not be parsed.
pub type Parsed = Result<Arc<SweepDefinition>, String>;

/// Least-recently-used slots of at most `capacity` entries; each slot is a
/// cell that the first requester fills while the others wait on it.
struct Slots<K, V> {
    map: HashMap<K, (u64, Arc<OnceCell<V>>)>,
    clock: u64,
    capacity: usize,
}

impl<K: Clone + Eq + Hash, V> Slots<K, V> {
    fn new(capacity: usize) -> Slots<K, V> {
        Slots { map: HashMap::new(), clock: 0, capacity: capacity.max(1) }
    }

    fn slot(&mut self, key: &K) -> Arc<OnceCell<V>> {
        self.clock += 1;
        let clock = self.clock;
        let cell = match self.map.get_mut(key) {
            Some((used, cell)) => {
                *used = clock;
                cell.clone()
            }
            None => {
                let cell = Arc::new(OnceCell::new());
                self.map.insert(key.clone(), (clock, cell.clone()));
                cell
            }
        };
        // Evicting a cell still being filled is harmless: whoever holds it
        // finishes with it, and a later request starts a new one.
        while self.map.len() > self.capacity {
            let oldest = self.map.iter().min_by_key(|(_, (used, _))| *used).map(|(k, _)| k.clone());
            match oldest {
                Some(key) => self.map.remove(&key),
                None => break,
            };
        }
        cell
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

struct CacheState {
    blobs: Slots<String, Arc<Vec<u8>>>,
    definitions: Slots<SweepKey, Parsed>,
}

/// Raw blobs by hash and parsed definitions by [`SweepKey`], each bounded.
pub struct SweepCache {
    state: Mutex<CacheState>,
}

/// Enough for the sweeps a worker interleaves; a dataset blob can be large.
pub const DEFAULT_BLOB_CAPACITY: usize = 16;
pub const DEFAULT_DEFINITION_CAPACITY: usize = 16;

impl Default for SweepCache {
    fn default() -> SweepCache {
        SweepCache::new(DEFAULT_BLOB_CAPACITY, DEFAULT_DEFINITION_CAPACITY)
    }
}

impl SweepCache {
    pub fn new(blob_capacity: usize, definition_capacity: usize) -> SweepCache {
        SweepCache {
            state: Mutex::new(CacheState {
                blobs: Slots::new(blob_capacity),
                definitions: Slots::new(definition_capacity),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        // The state is a pair of maps updated in single statements, so a
        // panic elsewhere cannot have left it half-changed.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of raw blobs and parsed definitions held.
    pub fn len(&self) -> (usize, usize) {
        let state = self.lock();
        (state.blobs.len(), state.definitions.len())
    }

    /// A blob by hash, fetched with `fetch` unless it is held.
    pub async fn blob<E, F, Fut>(&self, hash: &str, fetch: F) -> Result<Arc<Vec<u8>>, E>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<Vec<u8>, E>>,
    {
        let cell = self.lock().blobs.slot(&hash.to_owned());
        let hash = hash.to_owned();
        cell.get_or_try_init(|| async move { fetch(hash).await.map(Arc::new) }).await.cloned()
    }

    /// The definition of `key`: fetched (blobs with `fetch`) and parsed on a
    /// blocking thread the first time, from the cache afterwards. `Err` is a
    /// fetch error (not cached); `Ok(Err(reason))` a parse failure (cached).
    pub async fn definition<E, F, Fut>(&self, key: &SweepKey, fetch: F) -> Result<Parsed, E>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<Vec<u8>, E>>,
    {
        let cell = self.lock().definitions.slot(key);
        let parsed = cell
            .get_or_try_init(|| async {
                let dataset = self.blob(&key.dataset_hash, &fetch).await?;
                let config = self.blob(&key.config_hash, &fetch).await?;
                let spec = self.blob(&key.spec_hash, &fetch).await?;
                let (samples, seed) = (key.samples, key.seed);
                // Parsing a large dataset is CPU work: keep it off the
                // runtime's threads (and off the pool running samples).
                let parsed = tokio::task::spawn_blocking(move || {
                    SweepDefinition::parse(&dataset, &config, &spec, samples, seed).map(Arc::new)
                })
                .await
                .unwrap_or_else(|e| Err(format!("parsing the sweep definition panicked: {e}")));
                Ok(parsed)
            })
            .await?;
        Ok(parsed.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use zonesweep_shared::data::demo;

    use super::*;

    fn blobs(spec: &str) -> HashMap<String, Vec<u8>> {
        let (units_csv, panel_csv) = demo::generate(6, 3).unwrap().to_csv();
        let dataset = DatasetBlob { units_csv, panel_csv, units_geojson: None };
        HashMap::from([
            ("d".to_owned(), dataset.to_bytes()),
            ("c".to_owned(), Vec::new()),
            ("s".to_owned(), spec.as_bytes().to_vec()),
            ("bad-c".to_owned(), b"[ridge]\nk = -1.0\n".to_vec()),
            ("bad-d".to_owned(), b"{\"units_csv\": \"id\\n\", \"panel_csv\": \"\", \"units_geojson\": null}".to_vec()),
        ])
    }

    fn key(dataset: &str, config: &str) -> SweepKey {
        SweepKey {
            dataset_hash: dataset.into(),
            config_hash: config.into(),
            spec_hash: "s".into(),
            samples: 40,
            seed: 9,
        }
    }

    /// A fetch function over a map that counts its calls.
    fn fetcher(
        store: &HashMap<String, Vec<u8>>,
        calls: &AtomicUsize,
    ) -> impl Fn(String) -> std::future::Ready<Result<Vec<u8>, String>> {
        move |hash| {
            calls.fetch_add(1, Ordering::SeqCst);
            std::future::ready(store.get(&hash).cloned().ok_or(format!("no blob {hash}")))
        }
    }

    #[tokio::test]
    async fn each_definition_is_fetched_and_parsed_once() {
        let store = blobs("samples = 5\nseed = 1\n");
        let calls = AtomicUsize::new(0);
        let cache = SweepCache::default();
        let sweep = key("d", "c");
        let requests = (0..8).map(|_| cache.definition(&sweep, fetcher(&store, &calls)));
        let results = futures_join_all(requests).await;
        let first = results[0].as_ref().unwrap().as_ref().unwrap();
        for result in &results {
            assert!(Arc::ptr_eq(first, result.as_ref().unwrap().as_ref().unwrap()));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3, "one fetch per blob");
        // The job's sample count and seed override the spec's.
        assert_eq!((first.spec().samples, first.spec().seed), (40, 9));
        assert_eq!(first.dataset().n_units(), 6);

        // Another seed is another definition, but the blobs are not fetched again.
        let other = SweepKey { seed: 10, ..key("d", "c") };
        let parsed = cache.definition(&other, fetcher(&store, &calls)).await.unwrap().unwrap();
        assert_eq!(parsed.spec().seed, 10);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(cache.len(), (3, 2));
    }

    #[tokio::test]
    async fn parse_failures_carry_the_parser_text_and_are_cached() {
        let store = blobs("");
        let calls = AtomicUsize::new(0);
        let cache = SweepCache::default();
        let reason = cache.definition(&key("d", "bad-c"), fetcher(&store, &calls)).await.unwrap().unwrap_err();
        assert!(reason.contains("configuration") && reason.contains("ridge"), "{reason}");
        let again = cache.definition(&key("d", "bad-c"), fetcher(&store, &calls)).await.unwrap().unwrap_err();
        assert_eq!(reason, again);
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        let reason = cache.definition(&key("bad-d", "c"), fetcher(&store, &calls)).await.unwrap().unwrap_err();
        assert!(reason.contains("problem"), "{reason}");

        // A new cache: the blob cache rightly holds hash "s" with the old text.
        let store = blobs("samples = \"many\"");
        let reason =
            SweepCache::default().definition(&key("d", "c"), fetcher(&store, &calls)).await.unwrap().unwrap_err();
        assert!(reason.contains("sweep spec"), "{reason}");
    }

    #[tokio::test]
    async fn an_empty_spec_is_the_default_spec() {
        let store = blobs(" \n");
        let calls = AtomicUsize::new(0);
        let parsed = SweepCache::default().definition(&key("d", "c"), fetcher(&store, &calls)).await.unwrap().unwrap();
        let expected = SweepSpec { samples: 40, seed: 9, ..SweepSpec::default() };
        assert_eq!(parsed.spec(), &expected);
    }

    #[tokio::test]
    async fn fetch_failures_are_not_cached() {
        let mut store = blobs("");
        let calls = AtomicUsize::new(0);
        let cache = SweepCache::default();
        let spec = store.remove("s").unwrap();
        let error = cache.definition(&key("d", "c"), fetcher(&store, &calls)).await.unwrap_err();
        assert_eq!(error, "no blob s");
        store.insert("s".into(), spec);
        assert!(cache.definition(&key("d", "c"), fetcher(&store, &calls)).await.unwrap().is_ok());
        // The dataset and configuration were held; only the spec is fetched again.
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn the_cache_is_bounded() {
        let cache = SweepCache::new(2, 2);
        for hash in ["a", "b", "a", "c"] {
            cache.blob(hash, |h| std::future::ready(Ok::<_, ()>(h.into_bytes()))).await.unwrap();
        }
        // "b" was the least recently used, so "a" is still held.
        let calls = AtomicUsize::new(0);
        let a = cache
            .blob("a", |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                std::future::ready(Ok::<_, ()>(Vec::new()))
            })
            .await
            .unwrap();
        assert_eq!((a.as_slice(), calls.load(Ordering::SeqCst)), (&b"a"[..], 0));
        assert_eq!(cache.len().0, 2);
    }

    #[test]
    fn a_job_range_is_the_runner_range() {
        let store = blobs("");
        let definition = SweepDefinition::parse(&store["d"], &store["c"], &store["s"], 20, 4).unwrap();
        let direct =
            SweepRunner::new(definition.dataset(), definition.config(), definition.spec()).unwrap().run_range(3..7);
        let via = definition.run_range(3..7, Mode::Fast).unwrap();
        assert_eq!(via, direct);
        assert_eq!(via.samples_total(), 4);
    }

    /// Polls futures concurrently on one task, so they race for the same
    /// cache cells (no `futures` dependency for one test helper).
    async fn futures_join_all<F: Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
        let mut set = Vec::new();
        for future in futures {
            set.push(Box::pin(future));
        }
        let mut outputs: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
        std::future::poll_fn(|cx| {
            let mut pending = false;
            for (future, output) in set.iter_mut().zip(outputs.iter_mut()) {
                if output.is_none() {
                    match future.as_mut().poll(cx) {
                        std::task::Poll::Ready(value) => *output = Some(value),
                        std::task::Poll::Pending => pending = true,
                    }
                }
            }
            if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
        })
        .await;
        outputs.into_iter().map(|o| o.expect("every future finished")).collect()
    }
}
