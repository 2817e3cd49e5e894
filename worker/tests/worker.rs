//! The worker's public surface without a coordinator: the dataset blob it
//! fetches, and `run` against a coordinator that is not there. The full
//! protocol is exercised by the cluster tests in the workspace's `tests/`.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use zonesweep_shared::data::blob::DatasetBlob;
use zonesweep_shared::demo;
use zonesweep_worker::{WorkerConfig, WorkerError, run};

#[test]
fn the_dataset_blob_round_trips_to_the_same_dataset() {
    let dataset = demo::generate(12, 5).unwrap();
    let (units_csv, panel_csv) = dataset.to_csv();
    let blob = DatasetBlob { units_csv, panel_csv, units_geojson: None };
    let back = DatasetBlob::from_bytes(&blob.to_bytes()).unwrap();
    assert_eq!(back, blob);
    assert_eq!(back.parse().unwrap(), dataset);

    let damaged = DatasetBlob { panel_csv: "id,year\nQB01,2000\n".to_owned(), ..blob };
    assert!(damaged.parse().unwrap_err().to_string().contains("problem"));
    assert!(DatasetBlob::from_bytes(b"not json").is_err());
}

/// A loopback URL where nothing listens: bind a port, then let it go.
fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

fn config(coordinator: String, threads: usize) -> WorkerConfig {
    WorkerConfig { coordinator, token: "test-token".into(), threads, hostname: "test-host".into(), verbose: false }
}

/// An unreachable coordinator is retried, not an error: the worker keeps
/// trying until it is shut down, then returns Ok promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_coordinator_is_waited_for_until_shutdown() {
    let started = Instant::now();
    let shutdown = tokio::time::sleep(Duration::from_millis(1500));
    let result = tokio::time::timeout(Duration::from_secs(20), run(config(closed_port_url(), 2), shutdown)).await;
    let elapsed = started.elapsed();
    assert!(matches!(result, Ok(Ok(()))), "{result:?}");
    assert!(elapsed >= Duration::from_millis(1500), "returned before shutdown, after {elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "shutdown took {elapsed:?}");
}

#[tokio::test]
async fn a_bad_configuration_is_an_error_at_once() {
    let never = std::future::pending::<()>();
    let zero_threads = run(config(closed_port_url(), 0), never).await;
    assert!(matches!(zero_threads, Err(WorkerError::Config(_))), "{zero_threads:?}");

    let never = std::future::pending::<()>();
    let bad_url = run(config("127.0.0.1 7070".into(), 1), never).await;
    assert!(matches!(bad_url, Err(WorkerError::CoordinatorUrl { .. })), "{bad_url:?}");
}

/// The embedded mode spawns the worker on the runtime, so `run` must be Send.
#[test]
fn the_worker_future_can_be_spawned() {
    fn assert_send<T: Send + 'static>(_: &T) {}
    let future = run(config(closed_port_url(), 1), std::future::pending::<()>());
    assert_send(&future);
    let shown = format!("{:?}", config("http://h:1".into(), 1));
    assert!(!shown.contains("test-token") && shown.contains("<redacted>"), "{shown}");
}
