//! What the Kubernetes objects of a Micro service are called and labelled.
//!
//! Kubernetes names are DNS labels (`[a-z0-9-]`, at most 63 characters, a Service's
//! starting with a letter) and label values are shorter still in what they allow, while
//! Micro names and namespaces allow more. A name that is already valid is kept as it is
//! (`greeter-latest`); one that had to be changed gets a hash of the original appended,
//! so two different Micro names can never map to the same object.

use sha2::{Digest as _, Sha256};

/// The longest DNS label (and label value) Kubernetes accepts.
pub(super) const LABEL_LEN_MAX: usize = 63;
/// Label: every object the runtime makes has it, so it can find them again.
pub(super) const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "micro");
/// Label Micro v3 put on what its runtime ran: `micro=service`.
pub(super) const MICRO: (&str, &str) = ("micro", "service");
/// Label: the service's name (Micro v3's label).
pub(super) const NAME: &str = "name";
/// Label: the service's version (Micro v3's label).
pub(super) const VERSION: &str = "version";
/// Pod label: the Micro revision the pod runs.
pub(super) const REVISION: &str = "micro.mu/revision";
/// Annotation: the Micro namespace, unaltered (labels may have been shortened).
pub(super) const ANNOTATION_NAMESPACE: &str = "micro.mu/namespace";
/// Annotation: the service's name, unaltered.
pub(super) const ANNOTATION_NAME: &str = "micro.mu/name";
/// Annotation: the service's version, unaltered.
pub(super) const ANNOTATION_VERSION: &str = "micro.mu/version";

/// The Kubernetes namespace of Micro namespace `namespace`: `<prefix><namespace>`.
pub(super) fn namespace(prefix: &str, namespace: &str) -> String {
    dns_label(&format!("{prefix}{namespace}"))
}

/// The name of a service's Deployment and Service (its Secret adds `-auth`):
/// `<name>-<version>`, starting with a letter as a Service name must.
pub(super) fn object(name: &str, version: &str) -> String {
    let joined = format!("{name}-{version}");
    if joined.starts_with(|c: char| c.is_ascii_lowercase()) {
        // The Secret's suffix must fit too.
        shortened(&joined, LABEL_LEN_MAX - SECRET_SUFFIX.len(), is_dns_char)
    } else {
        shortened(
            &format!("s-{joined}"),
            LABEL_LEN_MAX - SECRET_SUFFIX.len(),
            is_dns_char,
        )
    }
}

/// What a service's Secret name adds to its object name.
pub(super) const SECRET_SUFFIX: &str = "-auth";

/// The name of a service's Secret.
pub(super) fn secret(object: &str) -> String {
    format!("{object}{SECRET_SUFFIX}")
}

/// `text` as a label value.
pub(super) fn label_value(text: &str) -> String {
    shortened(text, LABEL_LEN_MAX, |c| {
        c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
    })
}

/// `text` as a DNS label.
fn dns_label(text: &str) -> String {
    shortened(text, LABEL_LEN_MAX, is_dns_char)
}

fn is_dns_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
}

/// `text` if every character passes `allowed`, it starts and ends with an alphanumeric
/// and it fits in `max`; else its allowed characters (lower-cased, others as `-`), cut
/// to fit, plus `-` and 8 hex digits of its SHA-256.
fn shortened(text: &str, max: usize, allowed: fn(char) -> bool) -> String {
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if text.len() <= max
        && text.chars().all(allowed)
        && edge_ok(text.chars().next())
        && edge_ok(text.chars().last())
    {
        return text.to_owned();
    }
    let hash = Sha256::digest(text.as_bytes());
    let suffix: String = hash.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let mut kept: String = text
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if allowed(c) { c } else { '-' })
        .collect();
    kept.truncate(max - suffix.len() - 1);
    let kept = kept.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if kept.is_empty() {
        format!("x-{suffix}")
    } else {
        format!("{kept}-{suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names_are_kept_and_others_hashed_apart() {
        assert_eq!(namespace("micro-", "micro"), "micro-micro");
        assert_eq!(object("greeter", "latest"), "greeter-latest");
        assert_eq!(secret(&object("greeter", "latest")), "greeter-latest-auth");
        assert_eq!(label_value("1.0.0"), "1.0.0");

        let dotted = object("greeter", "1.0.0");
        assert!(dotted.starts_with("greeter-1-0-0-"), "{dotted}");
        assert_ne!(dotted, object("greeter", "1-0-0"), "no two names collide");
        assert!(object("7up", "latest").starts_with("s-7up-latest"));
        let upper = namespace("micro-", "Team_A");
        assert!(upper.starts_with("micro-team-a-"), "{upper}");

        let long = "x".repeat(200);
        for name in [namespace("micro-", &long), label_value(&long)] {
            assert!(name.len() <= LABEL_LEN_MAX, "{name}");
        }
        assert!(secret(&object(&long, "latest")).len() <= LABEL_LEN_MAX);
        assert!(label_value("-").starts_with("x-"));
    }
}
