//! `micro-node certs init|issue`: a cluster CA and the node certificates it signs, for
//! `--tls-cert`, `--tls-key` and `--tls-ca` (and the CLI's `--proxy-ca`).
//!
//! ```text
//! certs init  [--dir D]                     -> D/ca.crt, D/ca.key (0600)
//! certs issue NAME [--host H]... [--dir D]  -> D/NAME.crt, D/NAME.key (0600), signed by D/ca.*
//! ```
//!
//! Keys are ECDSA P-256. Node certificates carry the names and addresses peers and
//! clients dial (`--host`, by default NAME, localhost and 127.0.0.1) and may serve both
//! as server and client, since a node dials its peers with the certificate it serves.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use crate::exit::{CliError, OTHER};

/// How long a CA certificate is valid.
const CA_DAYS: i64 = 3650;
/// How long a node certificate is valid.
const NODE_DAYS: i64 = 825;

/// `micro-node certs`.
#[derive(Debug, clap::Subcommand)]
pub enum CertsCommand {
    /// Create a cluster CA: DIR/ca.crt (give it to every node and client) and
    /// DIR/ca.key (keep it secret; it admits nodes to the cluster)
    #[command(after_help = "Example:\n  micro-node certs init --dir ./certs")]
    Init {
        /// Where to write the files [default: ~/.micro/certs]
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Issue a node certificate signed by the CA in DIR: DIR/NAME.crt and DIR/NAME.key
    #[command(
        after_help = "Example:\n  micro-node certs issue node1 --host 10.0.0.1 --host node1.internal"
    )]
    Issue {
        /// The node's name (the certificate's common name and file names)
        name: String,
        /// A DNS name or IP address peers and clients reach the node at (repeatable)
        /// [default: NAME, localhost, 127.0.0.1]
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// Where the CA is and the files go [default: ~/.micro/certs]
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// Runs a `certs` command.
pub(crate) fn run(command: CertsCommand) -> Result<(), CliError> {
    let default_dir = || crate::node::micro_home().join("certs");
    match command {
        CertsCommand::Init { dir } => init(&dir.unwrap_or_else(default_dir)),
        CertsCommand::Issue { name, hosts, dir } => {
            issue(&dir.unwrap_or_else(default_dir), &name, hosts)
        }
    }
}

fn failed(what: &str, e: &dyn std::fmt::Display) -> CliError {
    CliError::new(OTHER, format!("{what}: {e}"))
}

fn validity(params: &mut CertificateParams, days: i64) {
    let now = time_now();
    // An hour back, so a peer whose clock is a little behind accepts it at once.
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(days);
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "Micro cluster CA");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut params, CA_DAYS);
    params
}

/// Creates the CA in `dir`, refusing to replace one.
fn init(dir: &Path) -> Result<(), CliError> {
    let (crt, key) = (dir.join("ca.crt"), dir.join("ca.key"));
    if key.exists() || crt.exists() {
        return Err(CliError::usage(format!(
            "{} already holds a CA (ca.crt, ca.key): remove them first to make a new one \
             (every node certificate it signed stops working)",
            dir.display()
        )));
    }
    let key_pair = KeyPair::generate().map_err(|e| failed("generating the CA key", &e))?;
    let cert = ca_params()
        .self_signed(&key_pair)
        .map_err(|e| failed("signing the CA certificate", &e))?;
    write(dir, &key, &key_pair.serialize_pem(), true)?;
    write(dir, &crt, &cert.pem(), false)?;
    println!("{}", crt.display());
    println!("{}", key.display());
    Ok(())
}

fn node_params(name: &str, hosts: Vec<String>) -> Result<CertificateParams, CliError> {
    let hosts = if hosts.is_empty() {
        vec![
            name.to_owned(),
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ]
    } else {
        hosts
    };
    // rcgen reads an IP address as an IP SAN, anything else as a DNS name.
    let mut params =
        CertificateParams::new(hosts).map_err(|e| CliError::usage(format!("--host: {e}")))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    validity(&mut params, NODE_DAYS);
    Ok(params)
}

/// Issues `name`'s certificate, signed by the CA in `dir`.
fn issue(dir: &Path, name: &str, hosts: Vec<String>) -> Result<(), CliError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        || name.starts_with('.')
    {
        return Err(CliError::usage(format!(
            "NAME must be letters, digits, '-', '_' or '.', got {name:?}"
        )));
    }
    let read = |file: &str| {
        let path = dir.join(file);
        std::fs::read_to_string(&path).map_err(|e| {
            CliError::usage(format!(
                "cannot read {} ({e}): create the CA first with `micro-node certs init --dir {}`",
                path.display(),
                dir.display()
            ))
        })
    };
    let ca_key = KeyPair::from_pem(&read("ca.key")?).map_err(|e| failed("ca.key", &e))?;
    let issuer =
        Issuer::from_ca_cert_pem(&read("ca.crt")?, ca_key).map_err(|e| failed("ca.crt", &e))?;
    let key_pair = KeyPair::generate().map_err(|e| failed("generating the node key", &e))?;
    let cert = node_params(name, hosts)?
        .signed_by(&key_pair, &issuer)
        .map_err(|e| failed("signing the node certificate", &e))?;
    let (crt_path, key_path) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    write(dir, &key_path, &key_pair.serialize_pem(), true)?;
    write(dir, &crt_path, &cert.pem(), false)?;
    println!("{}", crt_path.display());
    println!("{}", key_path.display());
    Ok(())
}

/// Writes `text` to `path` (mode 0600 when `secret`), creating `dir`.
fn write(dir: &Path, path: &Path, text: &str, secret: bool) -> Result<(), CliError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::create_dir_all(dir).map_err(|e| failed(&format!("creating {}", dir.display()), &e))?;
    let mode = if secret { 0o600 } else { 0o644 };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(|e| failed(&format!("writing {}", path.display()), &e))?;
    file.write_all(text.as_bytes())
        .map_err(|e| failed(&format!("writing {}", path.display()), &e))
}
