//! `zonesweep token new` and `zonesweep tls self-signed`: the files a
//! coordinator with roles and TLS needs, made without other tools.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use zonesweep_proto::auth::Role;

#[derive(clap::Subcommand)]
pub enum TokenCommand {
    /// Print a new random token with its role as a `ROLE TOKEN` line, to
    /// append to the coordinator's --tokens file; give the token alone to
    /// the client (`--token-file`).
    New {
        /// worker (lease and run jobs), submit (submit, cancel, resume,
        /// delete; also read) or read (status, watch, queries, export).
        #[arg(long)]
        role: String,
    },
}

#[derive(clap::Subcommand)]
pub enum TlsCommand {
    /// Make a certificate authority and a server certificate signed by it,
    /// for a quick start: DIR/ca.pem (give it to clients and workers with
    /// --ca), DIR/server.pem and DIR/server-key.pem (the coordinator's
    /// --tls-cert and --tls-key). The CA's key is not kept.
    SelfSigned {
        /// The folder to write to (created if missing; existing files are not overwritten).
        #[arg(long)]
        out: PathBuf,
        /// A DNS name or IP address clients use to reach the coordinator
        /// (repeat for several).
        #[arg(long = "host", required = true)]
        hosts: Vec<String>,
        /// Days the certificates are valid.
        #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=36500))]
        days: u32,
    },
}

/// 32 random bytes as hex.
pub fn random_token() -> String {
    (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect()
}

pub fn token(command: TokenCommand) -> Result<()> {
    match command {
        TokenCommand::New { role } => {
            let role = Role::from_name(&role)
                .with_context(|| format!("--role must be worker, submit or read, not `{role}`"))?;
            println!("{} {}", role.name(), random_token());
            Ok(())
        }
    }
}

/// Write `text` to a new file (never over an existing one), with `mode`.
fn write_new(path: &Path, text: &str, mode: u32) -> Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?;
    file.write_all(text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
}

pub fn tls(command: TlsCommand) -> Result<()> {
    let TlsCommand::SelfSigned { out, hosts, days } = command;
    for host in &hosts {
        if host.is_empty() || host.len() > 253 || host.contains(char::is_whitespace) {
            bail!("--host `{host}` is not a DNS name or an IP address");
        }
    }
    let files = ["ca.pem", "server.pem", "server-key.pem"].map(|name| out.join(name));
    if let Some(existing) = files.iter().find(|path| path.exists()) {
        bail!("{} exists already; choose another --out or move it away", existing.display());
    }
    let now = time::OffsetDateTime::now_utc();
    let not_after = now + time::Duration::days(i64::from(days));

    let mut ca = CertificateParams::new(Vec::<String>::new()).context("the CA's parameters")?;
    // A name of its own, so two quick-start CAs are never taken for each other.
    let serial: String = random_token().chars().take(12).collect();
    ca.distinguished_name.push(DnType::CommonName, format!("zonesweep quick-start CA {serial}"));
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    (ca.not_before, ca.not_after) = (now, not_after);
    let ca_key = KeyPair::generate().context("cannot make the CA's key")?;
    let ca_cert = ca.self_signed(&ca_key).context("cannot sign the CA certificate")?;
    let issuer = Issuer::new(ca, ca_key);

    // Names that parse as IP addresses become IP SANs, the rest DNS names.
    let mut server = CertificateParams::new(hosts.clone()).context("a --host is not a valid name")?;
    server.distinguished_name.push(DnType::CommonName, hosts[0].clone());
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    (server.not_before, server.not_after) = (now, not_after);
    let server_key = KeyPair::generate().context("cannot make the server's key")?;
    let server_cert = server.signed_by(&server_key, &issuer).context("cannot sign the server certificate")?;

    fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    write_new(&files[0], &ca_cert.pem(), 0o644)?;
    write_new(&files[1], &server_cert.pem(), 0o644)?;
    write_new(&files[2], &server_key.serialize_pem(), 0o600)?;
    note!(
        "wrote {} (for clients and workers: --ca), {} and {} (mode 0600) for the coordinator's --tls-cert and --tls-key; valid {days} days for {}",
        files[0].display(),
        files[1].display(),
        files[2].display(),
        hosts.join(", ")
    );
    Ok(())
}
