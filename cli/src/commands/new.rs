//! `micro new NAME`: a service crate that `micro run ./NAME` builds and runs unchanged.
//!
//! The `micro` framework is not on a registry: the crate depends on it by path, the
//! framework source this CLI was built from (`MICRO_FRAMEWORK` overrides it), and ships
//! this workspace's `Cargo.lock`, so the node builds it with the very versions the
//! framework was tested with. Nodes of a cluster must see the framework at that path.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::exit::{CliError, OTHER};

/// Flags of `micro new`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  micro new greeter && micro run ./greeter")]
pub struct NewArgs {
    /// The service name (lower case letters, digits and dashes)
    pub name: String,
    /// Where to create it [default: ./NAME]
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Where the framework's source was when this CLI was built.
const FRAMEWORK_BUILT_AT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../framework");
/// The workspace's lock file, so the new crate resolves the versions tested here.
const LOCK: &str = include_str!("../../../Cargo.lock");

/// The framework's source directory: `MICRO_FRAMEWORK`, else where it was at build time.
fn framework() -> Result<PathBuf, CliError> {
    let dir = std::env::var_os("MICRO_FRAMEWORK")
        .map_or_else(|| PathBuf::from(FRAMEWORK_BUILT_AT), PathBuf::from);
    let found = std::fs::canonicalize(&dir)
        .ok()
        .filter(|d| d.join("Cargo.toml").is_file());
    found.ok_or_else(|| {
        CliError::new(
            OTHER,
            format!(
                "the micro framework's source is not at {} (this CLI was built elsewhere); \
                 set MICRO_FRAMEWORK to its directory",
                dir.display()
            ),
        )
    })
}

fn check_name(name: &str) -> Result<(), CliError> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(CliError::usage(format!(
            "{name:?}: a service name is lower case letters, digits and dashes, starting with \
             a letter (e.g. greeter)"
        )))
    }
}

/// `GreeterService` from `greeter-service`.
fn camel(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// The template files of a service crate: path (`NAME` replaced) and text.
const TEMPLATES: [(&str, &str); 6] = [
    (
        "Cargo.toml",
        include_str!("../../templates/service/Cargo.toml.tmpl"),
    ),
    (
        "build.rs",
        include_str!("../../templates/service/build.rs.tmpl"),
    ),
    (
        "proto/NAME.proto",
        include_str!("../../templates/service/proto/NAME.proto.tmpl"),
    ),
    (
        "src/main.rs",
        include_str!("../../templates/service/src/main.rs.tmpl"),
    ),
    (
        "README.md",
        include_str!("../../templates/service/README.md.tmpl"),
    ),
    (".gitignore", "/target\n"),
];

/// The files of the crate, by relative path.
fn files(name: &str, framework: &Path) -> Vec<(String, String)> {
    let package = name.replace('-', "_");
    let framework = framework.display().to_string();
    let fill = |text: &str| {
        text.replace("__NAME__", name)
            .replace("__PACKAGE__", &package)
            .replace("__SERVICE__", &camel(name))
            .replace("__SNAKE__", &package)
            .replace("__FRAMEWORK__", &framework)
    };
    let mut files: Vec<(String, String)> = TEMPLATES
        .iter()
        .map(|(path, text)| (path.replace("NAME", name), fill(text)))
        .collect();
    files.push(("Cargo.lock".to_owned(), LOCK.to_owned()));
    files
}

/// `micro new NAME`.
pub(crate) fn run(args: &NewArgs) -> Result<(), CliError> {
    check_name(&args.name)?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists() {
        return Err(CliError::usage(format!(
            "{} already exists; choose another name or --dir",
            dir.display()
        )));
    }
    let framework = framework()?;
    for (path, text) in files(&args.name, &framework) {
        let path = dir.join(path);
        let fail = |e: std::io::Error| CliError::new(OTHER, format!("{}: {e}", path.display()));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(fail)?;
        }
        std::fs::write(&path, text).map_err(fail)?;
    }
    println!(
        "created {}; run it with: micro run ./{}",
        dir.display(),
        dir.file_name()
            .map_or_else(|| args.name.clone(), |n| n.to_string_lossy().into_owned())
    );
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_camel_cased() {
        assert!(check_name("greeter").is_ok());
        assert!(check_name("my-svc2").is_ok());
        for bad in ["", "Greeter", "1x", "a_b", "x-", "a b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(camel("my-svc"), "MySvc");
        assert_eq!(camel("greeter"), "Greeter");
    }

    #[test]
    fn the_scaffold_names_its_parts_consistently() {
        let files = files("my-svc", Path::new("/src/framework"));
        let text = |name: &str| &files.iter().find(|(p, _)| p == name).unwrap().1;
        assert!(text("Cargo.toml").contains(r#"micro = { path = "/src/framework" }"#));
        assert!(text("proto/my-svc.proto").contains("package my_svc;"));
        assert!(text("proto/my-svc.proto").contains("service MySvc"));
        assert!(text("src/main.rs").contains("pb::my_svc_handler(Handler)"));
        assert!(text("src/main.rs").contains(r#"include_proto!("my_svc")"#));
        assert!(text("build.rs").contains("proto/my-svc.proto"));
        assert!(text("Cargo.lock").contains("name = \"micro\""));
    }
}
