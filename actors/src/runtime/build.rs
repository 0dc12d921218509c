//! Builds an uploaded crate into an executable and stores it in the blob store, so any
//! node can start it without building again.
//!
//! ```text
//! blob source://greeter:latest (tar.gz) ─> <runtime>/src/<ns>/greeter-latest-r<rev>/
//!   ─> cargo build --release --message-format=json (shared target dir, as RunAs user)
//!        stderr and rendered diagnostics ─> the service's log, stream "build"
//!   ─> the crate's one executable ─> blob build://greeter:latest#<rev>
//!   or the compiler's errors ─> Err (status error, metadata error)
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use micro_core::{MicroError, Namespace};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::host::HostConfig;
use super::logs::{LogBook, LogKey, LogRecord};
use crate::blobs::BlobHandle;

/// The largest source tarball the runtime accepts.
pub const SOURCE_LEN_MAX: u64 = 256 * 1024 * 1024;
/// How long a build may take.
pub(crate) const BUILD_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// The most of the compiler's errors kept in the service's `error` metadata.
pub(crate) const BUILD_ERROR_LEN_MAX: usize = 4096;

/// The blob key of a service's uploaded source.
pub fn source_key(name: &str, version: &str) -> String {
    format!("source://{name}:{version}")
}

/// The blob key of a service revision's executable.
pub fn build_key(name: &str, version: &str, revision: u64) -> String {
    format!("build://{name}:{version}#{revision}")
}

/// Reads a whole blob into memory (sources and executables are bounded).
pub(crate) async fn read_blob(
    blobs: &BlobHandle,
    namespace: &Namespace,
    key: &str,
    max: u64,
) -> Result<Vec<u8>, MicroError> {
    let manifest = blobs.open(namespace, key).await?;
    if manifest.size > max {
        return Err(MicroError::new(
            "runtime",
            micro_core::Code::PayloadTooLarge,
            format!("blob {key} is {} bytes, more than {max}", manifest.size),
        ));
    }
    let mut data = Vec::with_capacity(usize::try_from(manifest.size).unwrap_or(0));
    for index in 0..manifest.chunks {
        data.extend_from_slice(&blobs.chunk(namespace, &manifest, index)?);
    }
    Ok(data)
}

type Pipe = Box<dyn tokio::io::AsyncRead + Send + Unpin>;
type Lines = tokio::io::Lines<BufReader<Pipe>>;

/// One build of one service revision.
#[derive(Debug)]
pub(crate) struct BuildJob<'a> {
    pub(crate) host: &'a HostConfig,
    pub(crate) blobs: &'a BlobHandle,
    pub(crate) logs: &'a LogBook,
    pub(crate) namespace: Namespace,
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) revision: u64,
    pub(crate) source: String,
    pub(crate) node_id: u64,
    pub(crate) now_secs: fn() -> i64,
}

impl BuildJob<'_> {
    fn key(&self) -> LogKey {
        (
            self.namespace.clone(),
            self.name.clone(),
            self.version.clone(),
        )
    }

    fn log(&self, message: impl Into<String>) {
        let record = LogRecord::new((self.now_secs)(), "build", message)
            .with("node", self.node_id.to_string());
        self.logs.push(&self.key(), record);
    }

    /// Builds and stores the executable: `Ok(blob key)`, or `Err(why)` for the
    /// service's `error`.
    pub(crate) async fn run(&self) -> Result<String, String> {
        self.log(format!(
            "building {}:{} revision {} on node {}",
            self.name, self.version, self.revision, self.node_id
        ));
        let result = self.build().await;
        match &result {
            Ok(key) => self.log(format!("built; stored as {key}")),
            Err(why) => self.log(format!("build failed: {why}")),
        }
        result
    }

    async fn build(&self) -> Result<String, String> {
        self.host.check_toolchain()?;
        let tarball = read_blob(self.blobs, &self.namespace, &self.source, SOURCE_LEN_MAX)
            .await
            .map_err(|e| format!("cannot read the source {}: {}", self.source, e.detail))?;
        let dir = self
            .host
            .sources
            .join(self.namespace.as_str())
            .join(format!("{}-{}-r{}", self.name, self.version, self.revision));
        let host = self.host.clone();
        let into = dir.clone();
        tokio::task::spawn_blocking(move || unpack(&host, &tarball, &into))
            .await
            .map_err(|e| format!("unpacking failed: {e}"))??;
        for dir in [&self.host.target, &self.host.home] {
            self.host
                .make_dir(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let executable = self.cargo(&dir).await?;
        let data = tokio::fs::read(&executable)
            .await
            .map_err(|e| format!("cannot read {}: {e}", executable.display()))?;
        let key = build_key(&self.name, &self.version, self.revision);
        let mut writer = self
            .blobs
            .writer(&self.namespace, &key)
            .map_err(|e| e.detail)?;
        writer.write(&data).await.map_err(|e| e.detail)?;
        writer.commit().await.map_err(|e| e.detail)?;
        Ok(key)
    }

    /// Logs cargo's output until both streams end; the last lines of stderr.
    async fn read_output(
        &self,
        stdout: &mut Lines,
        stderr: &mut Lines,
        outcome: &mut Outcome,
    ) -> Vec<String> {
        let mut tail: Vec<String> = Vec::new();
        let (mut out_open, mut err_open) = (true, true);
        while out_open || err_open {
            tokio::select! {
                line = stdout.next_line(), if out_open => match line {
                    Ok(Some(line)) => outcome.message(&line, |m| self.log(m)),
                    _ => out_open = false,
                },
                line = stderr.next_line(), if err_open => match line {
                    Ok(Some(line)) => {
                        self.log(line.clone());
                        tail.push(line);
                        if tail.len() > 20 {
                            tail.remove(0);
                        }
                    }
                    _ => err_open = false,
                },
            }
        }
        tail
    }

    /// Runs cargo in `dir`; the path of the crate's executable.
    async fn cargo(&self, dir: &Path) -> Result<PathBuf, String> {
        // A build must not starve the node it runs on (Raft heartbeats, calls): it runs
        // at a lower priority where `nice` exists.
        let mut command = match super::host::find_program("nice") {
            Some(nice) => {
                let mut command = self.host.command(&nice);
                command.args(["-n", "10"]).arg(&self.host.cargo);
                command
            }
            None => self.host.command(&self.host.cargo),
        };
        command
            .args(["build", "--release", "--message-format=json"])
            .current_dir(dir)
            .env("CARGO_TARGET_DIR", &self.host.target)
            .env("CARGO_TERM_COLOR", "never")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.host.cargo.display()))?;
        let stderr = child
            .stderr
            .take()
            .map(|s| BufReader::new(Box::new(s) as Pipe).lines());
        let stdout = child
            .stdout
            .take()
            .map(|s| BufReader::new(Box::new(s) as Pipe).lines());
        let (Some(mut stderr), Some(mut stdout)) = (stderr, stdout) else {
            return Err("cargo's output could not be read".to_owned());
        };
        let mut outcome = Outcome::default();
        let read = self.read_output(&mut stdout, &mut stderr, &mut outcome);
        let tail = tokio::time::timeout(BUILD_TIMEOUT, read)
            .await
            .map_err(|_| format!("the build took longer than {BUILD_TIMEOUT:?}"))?;
        let status = child
            .wait()
            .await
            .map_err(|e| format!("waiting for cargo: {e}"))?;
        if !status.success() {
            let why = if outcome.errors.is_empty() {
                tail.join("\n")
            } else {
                outcome.errors.join("\n")
            };
            return Err(cap(format!("cargo build failed ({status}):\n{why}")));
        }
        match outcome.executables.as_slice() {
            [one] => Ok(one.1.clone()),
            [] => Err("the crate builds no executable (add a [[bin]] or src/main.rs)".to_owned()),
            many => many
                .iter()
                .find(|(target, _)| *target == self.name)
                .map(|(_, path)| path.clone())
                .ok_or_else(|| {
                    let names: Vec<&str> = many.iter().map(|(t, _)| t.as_str()).collect();
                    format!(
                        "the crate builds several executables ({}) and none is named {}",
                        names.join(", "),
                        self.name
                    )
                }),
        }
    }
}

/// What cargo's JSON messages said.
#[derive(Debug, Default)]
struct Outcome {
    executables: Vec<(String, PathBuf)>,
    errors: Vec<String>,
}

impl Outcome {
    fn message(&mut self, line: &str, mut log: impl FnMut(String)) {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            log(line.to_owned());
            return;
        };
        match message["reason"].as_str() {
            Some("compiler-artifact") => {
                if let (Some(path), Some(target)) = (
                    message["executable"].as_str(),
                    message["target"]["name"].as_str(),
                ) {
                    self.executables
                        .push((target.to_owned(), PathBuf::from(path)));
                }
            }
            Some("compiler-message") => {
                let rendered = message["message"]["rendered"].as_str().unwrap_or_default();
                let trimmed = rendered.trim_end().to_owned();
                if message["message"]["level"] == "error" {
                    self.errors.push(trimmed.clone());
                }
                for line in trimmed.lines() {
                    log(line.to_owned());
                }
            }
            _ => {}
        }
    }
}

fn cap(mut text: String) -> String {
    if super::logs::cut(&mut text, BUILD_ERROR_LEN_MAX) {
        text.push_str("\n[...]");
    }
    text
}

/// Unpacks a gzipped tarball into a fresh `dir` (entries cannot escape it: the tar
/// crate refuses `..` and absolute paths) and gives it to the [`HostConfig::run_as`]
/// user.
fn unpack(host: &HostConfig, tarball: &[u8], dir: &Path) -> Result<(), String> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("cannot clear {}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tarball));
    archive.set_preserve_permissions(false);
    archive.set_overwrite(true);
    archive
        .unpack(dir)
        .map_err(|e| format!("the source is not a valid .tar.gz: {e}"))?;
    if !dir.join("Cargo.toml").is_file() {
        return Err("the source has no Cargo.toml at its top".to_owned());
    }
    host.give(dir)
        .map_err(|e| format!("cannot hand {} to the build user: {e}", dir.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cargo_messages_yield_executables_and_errors() {
        let mut outcome = Outcome::default();
        let mut logged = Vec::new();
        outcome.message(
            r#"{"reason":"compiler-artifact","target":{"name":"greeter"},"executable":"/t/release/greeter"}"#,
            |l| logged.push(l),
        );
        outcome.message(
            r#"{"reason":"compiler-artifact","target":{"name":"micro"},"executable":null}"#,
            |l| logged.push(l),
        );
        outcome.message(
            r#"{"reason":"compiler-message","message":{"level":"error","rendered":"error[E0425]: cannot find value `x`\n --> src/main.rs:1:1\n"}}"#,
            |l| logged.push(l),
        );
        outcome.message("not json", |l| logged.push(l));
        assert_eq!(outcome.executables.len(), 1);
        assert_eq!(outcome.executables[0].0, "greeter");
        assert!(outcome.errors[0].starts_with("error[E0425]"));
        assert_eq!(logged.len(), 3);
    }

    #[test]
    fn an_archive_cannot_write_outside_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let mut data = Vec::new();
        {
            let gz = flate2::write::GzEncoder::new(&mut data, flate2::Compression::fast());
            let mut builder = tar::Builder::new(gz);
            let mut header = tar::Header::new_gnu();
            let body = b"[package]\nname = \"x\"\n";
            header.set_size(body.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(&mut header, "Cargo.toml", &body[..])
                .unwrap();
            let mut evil = tar::Header::new_gnu();
            evil.set_size(4);
            evil.set_mode(0o644);
            // append_data refuses `..`; write the name raw as an attacker would.
            evil.as_gnu_mut().unwrap().name[..9].copy_from_slice(b"../escape");
            evil.set_cksum();
            builder.append(&evil, &b"evil"[..]).unwrap();
            builder.into_inner().unwrap().finish().unwrap();
        }
        let host = HostConfig::new(dir.path(), None, "127.0.0.1:8081".into());
        let into = dir.path().join("src/x");
        let result = unpack(&host, &data, &into);
        assert!(!dir.path().join("src/escape").exists());
        assert!(result.is_err() || into.join("Cargo.toml").is_file());
        assert!(unpack(&host, b"not a tarball", &into).is_err());
    }
}
