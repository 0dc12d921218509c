//! Packs a crate directory for `micro run ./path`: a gzipped tarball of what git would
//! track (`.gitignore`, `.ignore` and `.git/info/exclude` respected, even outside a git
//! repository), never `target/` or `.git/`, paths relative to the crate's root.

use std::path::Path;

use crate::exit::CliError;

/// The largest tarball `micro run` uploads (the runtime's own limit).
pub const SOURCE_LEN_MAX: u64 = micro_actors::runtime::SOURCE_LEN_MAX;

/// Directories never uploaded, ignored or not.
const ALWAYS_SKIPPED: [&str; 2] = ["target", ".git"];

/// The crate at `dir` as a `.tar.gz`.
pub fn pack(dir: &Path) -> Result<Vec<u8>, CliError> {
    if !dir.join("Cargo.toml").is_file() {
        return Err(CliError::usage(format!(
            "{} has no Cargo.toml: `micro run` builds a Rust crate (create one with `micro new NAME`)",
            dir.display()
        )));
    }
    let fail = |e: &dyn std::fmt::Display| {
        CliError::new(
            crate::exit::OTHER,
            format!("cannot pack {}: {e}", dir.display()),
        )
    };
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    let walk = ignore::WalkBuilder::new(dir)
        .hidden(false)
        .require_git(false)
        .filter_entry(|entry| {
            let name = entry.file_name().to_string_lossy();
            !(entry.depth() == 1 && ALWAYS_SKIPPED.contains(&name.as_ref())) && name != ".git"
        })
        .build();
    let mut size = 0u64;
    for entry in walk {
        let entry = entry.map_err(|e| fail(&e))?;
        let path = entry.path();
        let Ok(relative) = path.strip_prefix(dir) else {
            continue;
        };
        if relative.as_os_str().is_empty() {
            continue;
        }
        let file_type = entry.file_type();
        if file_type.is_some_and(|t| t.is_file()) {
            size += entry.metadata().map(|m| m.len()).unwrap_or(0);
            if size > SOURCE_LEN_MAX {
                return Err(CliError::usage(format!(
                    "{} holds more than {SOURCE_LEN_MAX} bytes to upload; list build output \
                     in .gitignore",
                    dir.display()
                )));
            }
        }
        if file_type.is_some_and(|t| t.is_file() || t.is_dir() || t.is_symlink()) {
            tar.append_path_with_name(path, relative)
                .map_err(|e| fail(&e))?;
        }
    }
    let gz = tar.into_inner().map_err(|e| fail(&e))?;
    gz.finish().map_err(|e| fail(&e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn names(tarball: &[u8]) -> Vec<String> {
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tarball));
        let mut names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn packs_what_git_would_track() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("Cargo.toml"), "[package]\nname = \"x\"\n").unwrap();
        std::fs::write(root.join(".gitignore"), "/secret.txt\n*.log\n").unwrap();
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::write(root.join("src/main.rs"), "fn main() {}\n").unwrap();
        std::fs::write(root.join("secret.txt"), "no").unwrap();
        std::fs::write(root.join("src/debug.log"), "no").unwrap();
        std::fs::create_dir_all(root.join("target/release")).unwrap();
        std::fs::write(root.join("target/release/x"), "binary").unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::write(root.join(".git/HEAD"), "ref").unwrap();
        let names = names(&pack(root).unwrap());
        assert_eq!(
            names,
            [".gitignore", "Cargo.toml", "src", "src/main.rs"],
            "packed: {names:?}"
        );
    }

    #[test]
    fn a_directory_without_a_crate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = pack(dir.path()).unwrap_err();
        assert!(err.to_string().contains("no Cargo.toml"), "{err}");
    }
}
