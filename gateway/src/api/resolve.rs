//! Path resolution of the default handler, as Micro v3's `apiRoute` did it:
//!
//! | path | service | endpoint |
//! |---|---|---|
//! | `/foo` | `foo` | `Foo.Call` |
//! | `/foo/bar` | `foo` | `Foo.Bar` |
//! | `/v1/foo/bar` | `v1.foo` | `Foo.Bar` |
//! | `/foo/bar/baz` | `foo` | `Bar.Baz` |
//! | `/foo/bar/baz/cat` | `foo.bar` | `Baz.Cat` |
//!
//! Each endpoint part is camel-cased per `-` word (`baz-xyz` -> `BazXyz`, `fooBar` ->
//! `FooBar`).

/// The service and endpoint a path names; `None` for `/` or a path with empty segments.
pub fn resolve(path: &str) -> Option<(String, String)> {
    let segments: Vec<&str> = path
        .trim_start_matches('/')
        .trim_end_matches('/')
        .split('/')
        .collect();
    if segments
        .iter()
        .any(|s| s.is_empty() || *s == "." || *s == "..")
    {
        return None;
    }
    let is_version =
        |s: &str| s.len() > 1 && s.starts_with('v') && s[1..].bytes().all(|b| b.is_ascii_digit());
    let (service, handler, method) = match segments.as_slice() {
        [one] => ((*one).to_owned(), *one, "call"),
        [service, method] => ((*service).to_owned(), *service, *method),
        [version, service, method] if is_version(version) => {
            (format!("{version}.{service}"), *service, *method)
        }
        [rest @ .., handler, method] => (rest.join("."), *handler, *method),
        [] => return None,
    };
    Some((service, format!("{}.{}", camel(handler), camel(method))))
}

/// Upper-cases the first letter of each `-`-separated word and drops the dashes.
fn camel(part: &str) -> String {
    part.split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_as_micro_v3_did() {
        let cases = [
            ("/foo", "foo", "Foo.Call"),
            ("/foo/bar", "foo", "Foo.Bar"),
            ("/v1/foo/bar", "v1.foo", "Foo.Bar"),
            ("/foo/bar/baz", "foo", "Bar.Baz"),
            ("/foo/foo/bar", "foo", "Foo.Bar"),
            ("/foo/bar/baz/cat", "foo.bar", "Baz.Cat"),
            ("/v1/foo/bar/baz", "v1.foo", "Bar.Baz"),
            ("/foo/baz-xyz", "foo", "Foo.BazXyz"),
            ("/foo/fooBar", "foo", "Foo.FooBar"),
            ("/helloworld/call", "helloworld", "Helloworld.Call"),
        ];
        for (path, service, endpoint) in cases {
            assert_eq!(
                resolve(path),
                Some((service.to_owned(), endpoint.to_owned())),
                "{path}"
            );
        }
        assert_eq!(resolve("/"), None);
        assert_eq!(resolve("/a//b"), None);
        assert_eq!(resolve("/a/../b"), None);
    }
}
