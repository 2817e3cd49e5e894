//! Talking to a coordinator: connection with the bearer token, and the
//! sweep-definition options that `run` and `submit` share.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use zonesweep_proto::auth::BearerToken;
use zonesweep_proto::pb;
use zonesweep_proto::pb::sweeps_client::SweepsClient;
use zonesweep_shared::data::dataset::{GEOJSON_FILE, PANEL_FILE, UNITS_FILE};

use crate::data::{DEMO_PANEL_CSV, DEMO_UNITS_CSV};

pub type Client = SweepsClient<InterceptedService<Channel, BearerToken>>;

/// The largest message a client sends or accepts.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

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

/// Connect to a coordinator at `url` with `token`.
pub async fn connect(url: &str, token: &str) -> Result<Client> {
    let endpoint = Endpoint::from_shared(url.to_owned())
        .with_context(|| format!("`{url}` is not a coordinator URL (like http://host:7070)"))?
        .connect_timeout(Duration::from_secs(10));
    let channel = endpoint.connect().await.with_context(|| format!("cannot reach the coordinator at {url}"))?;
    let interceptor = BearerToken::new(token).map_err(anyhow::Error::msg)?;
    Ok(SweepsClient::with_interceptor(channel, interceptor)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES))
}

/// A gRPC error as a readable message.
pub fn status_error(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("coordinator: {} ({:?})", status.message(), status.code())
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
