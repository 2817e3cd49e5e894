//! Talking to a coordinator: [`Remote`], its Sweeps service answering in
//! domain types, and the sweep-definition options that `run` and `submit` share.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use zonesweep_proto::client::{Authorized, ClientOptions, Connection, DEFAULT_MAX_MESSAGE_MIB, max_message_bytes};
use zonesweep_proto::convert::{results_from_pb, status_from_pb};
use zonesweep_proto::ids::SweepId;
use zonesweep_proto::pb;
use zonesweep_proto::pb::sweeps_client::SweepsClient;
use zonesweep_proto::status::{SweepResults, SweepStatus};
use zonesweep_shared::data::dataset::{GEOJSON_FILE, PANEL_FILE, UNITS_FILE};

use crate::data::{DEMO_PANEL_CSV, DEMO_UNITS_CSV};

/// `--max-message-mib`: one range on every side (1–4096).
pub fn message_mib(text: &str) -> Result<usize, String> {
    let mib: usize = text.parse().map_err(|e| format!("{e}"))?;
    max_message_bytes(mib).map(|_| mib).map_err(|e| e.to_string())
}

/// The message-size limit of a connection to a coordinator.
#[derive(clap::Args, Clone, Debug)]
pub struct LimitArgs {
    /// The largest message sent or accepted, in MiB (a query's answer
    /// carries the sweep's whole aggregate, a submission its dataset).
    #[arg(long, default_value_t = DEFAULT_MAX_MESSAGE_MIB, value_parser = message_mib)]
    pub max_message_mib: usize,
}

impl Default for LimitArgs {
    fn default() -> LimitArgs {
        LimitArgs { max_message_mib: DEFAULT_MAX_MESSAGE_MIB }
    }
}

/// The environment variable that carries the access token.
pub const TOKEN_ENV: &str = "ZONESWEEP_TOKEN";

/// How a client finds the token: `--token-file`, or the environment.
#[derive(clap::Args, Clone, Debug)]
pub struct TokenArgs {
    /// File holding the access token (default: the ZONESWEEP_TOKEN variable).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

impl TokenArgs {
    /// The token, if one was given.
    pub fn token(&self) -> Result<Option<String>> {
        if let Some(path) = &self.token_file {
            let text =
                fs::read_to_string(path).with_context(|| format!("cannot read token file {}", path.display()))?;
            let token = text.trim().to_owned();
            if token.is_empty() {
                bail!("token file {} is empty", path.display());
            }
            return Ok(Some(token));
        }
        Ok(std::env::var(TOKEN_ENV).ok().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()))
    }

    pub fn require(&self) -> Result<String> {
        self.token()?.with_context(|| {
            format!("no access token: pass --token-file FILE or set {TOKEN_ENV} (a coordinator started without one wrote it beside its database, as DB.token)")
        })
    }
}

/// A gRPC error as a readable message.
pub fn status_error(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("coordinator: {} ({:?})", status.message(), status.code())
}

/// A sweep id given on the command line.
pub fn sweep_id(text: &str) -> Result<SweepId> {
    Ok(SweepId::parse(text)?)
}

fn sweep_ref(id: &SweepId) -> pb::SweepRef {
    pb::SweepRef { sweep_id: id.as_str().to_owned() }
}

/// A coordinator's Sweeps service; every answer is checked into domain types.
pub struct Remote {
    client: SweepsClient<Authorized>,
}

/// A sweep's statuses as a coordinator streams them.
pub struct StatusStream {
    stream: tonic::Streaming<pb::SweepStatus>,
}

impl StatusStream {
    /// The next status, or `None` when the coordinator ended the stream.
    pub async fn next(&mut self) -> Result<Option<SweepStatus>> {
        match self.stream.message().await.map_err(status_error)? {
            Some(status) => Ok(Some(status_from_pb(status)?)),
            None => Ok(None),
        }
    }
}

impl Remote {
    /// Connect to the coordinator at `url` now, with `token`.
    pub async fn connect(url: &str, token: &str, limits: &LimitArgs) -> Result<Remote> {
        let options = ClientOptions { max_message_mib: limits.max_message_mib, ..ClientOptions::default() };
        Ok(Remote { client: Connection::connect(url, token, &options).await?.sweeps() })
    }

    pub async fn submit(&mut self, request: pb::SubmitRequest) -> Result<SweepStatus> {
        Ok(status_from_pb(self.client.submit(request).await.map_err(status_error)?.into_inner())?)
    }

    pub async fn status(&mut self, id: &SweepId) -> Result<SweepStatus> {
        Ok(status_from_pb(self.client.get(sweep_ref(id)).await.map_err(status_error)?.into_inner())?)
    }

    pub async fn watch(&mut self, id: &SweepId) -> Result<StatusStream> {
        Ok(StatusStream { stream: self.client.watch(sweep_ref(id)).await.map_err(status_error)?.into_inner() })
    }

    pub async fn cancel(&mut self, id: &SweepId) -> Result<SweepStatus> {
        Ok(status_from_pb(self.client.cancel(sweep_ref(id)).await.map_err(status_error)?.into_inner())?)
    }

    pub async fn list(&mut self) -> Result<Vec<SweepStatus>> {
        let sweeps = self.client.list(pb::ListRequest {}).await.map_err(status_error)?.into_inner().sweeps;
        Ok(sweeps.into_iter().map(status_from_pb).collect::<Result<_, _>>()?)
    }

    pub async fn query(&mut self, id: &SweepId) -> Result<SweepResults> {
        Ok(results_from_pb(self.client.query(sweep_ref(id)).await.map_err(status_error)?.into_inner())?)
    }

    pub async fn resume(&mut self, id: &SweepId) -> Result<SweepStatus> {
        Ok(status_from_pb(self.client.resume(sweep_ref(id)).await.map_err(status_error)?.into_inner())?)
    }

    pub async fn delete(&mut self, id: &SweepId) -> Result<()> {
        self.client.delete(sweep_ref(id)).await.map_err(status_error)?;
        Ok(())
    }

    /// Delete the final sweeps that ended more than `age` ago; their ids.
    pub async fn prune(&mut self, age: std::time::Duration) -> Result<Vec<String>> {
        let request = pb::PruneRequest { older_than_seconds: age.as_secs() };
        Ok(self.client.prune(request).await.map_err(status_error)?.into_inner().deleted)
    }

    pub async fn workers(&mut self) -> Result<Vec<pb::WorkerStatus>> {
        Ok(self.client.list_workers(pb::ListWorkersRequest {}).await.map_err(status_error)?.into_inner().workers)
    }
}

/// What defines a sweep, shared by `run` and `submit`.
#[derive(clap::Args, Clone, Debug)]
pub struct SweepArgs {
    /// Number of samples (default: the spec's, 10,000 for the default spec).
    #[arg(long)]
    pub samples: Option<u64>,
    /// Random seed (default: the spec's, 1 for the default spec).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Dataset folder; the embedded synthetic demonstration dataset when omitted.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Sweep spec (TOML); the default spec when omitted.
    #[arg(long)]
    pub spec: Option<PathBuf>,
    /// Model configuration overrides (TOML).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Samples per job (default: the coordinator's, 100).
    #[arg(long)]
    pub job_size: Option<u64>,
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

impl SweepArgs {
    /// The submission these options describe; files are read here, checked
    /// by the coordinator.
    pub fn request(&self) -> Result<pb::SubmitRequest> {
        let (units_csv, panel_csv, units_geojson) = match &self.data {
            Some(dir) => {
                let geojson = dir.join(GEOJSON_FILE);
                let geojson = if geojson.exists() { read(&geojson)? } else { String::new() };
                (read(&dir.join(UNITS_FILE))?, read(&dir.join(PANEL_FILE))?, geojson)
            }
            None => (DEMO_UNITS_CSV.to_owned(), DEMO_PANEL_CSV.to_owned(), String::new()),
        };
        if self.job_size == Some(0) {
            bail!("--job-size must be at least 1");
        }
        if self.samples == Some(0) {
            bail!("--samples must be at least 1");
        }
        Ok(pb::SubmitRequest {
            units_csv,
            panel_csv,
            units_geojson,
            config_toml: self.config.as_deref().map(read).transpose()?.unwrap_or_default(),
            spec_toml: self.spec.as_deref().map(read).transpose()?.unwrap_or_default(),
            samples: self.samples.unwrap_or(0),
            seed: self.seed.unwrap_or(0),
            has_seed: self.seed.is_some(),
            job_size: self.job_size.unwrap_or(0),
        })
    }
}
