//! The namespace of a request.

use micro_core::Namespace;

/// The metadata key carrying the caller's namespace (gRPC keys are lower case).
pub const NAMESPACE_HEADER: &str = "micro-namespace";

/// The namespace a request names in `Micro-Namespace`, or `micro` when it names none.
/// A name that breaks the syntax is an `InvalidArgument` status.
pub fn namespace_of<T>(request: &tonic::Request<T>) -> Result<Namespace, tonic::Status> {
    let Some(value) = request.metadata().get(NAMESPACE_HEADER) else {
        return Ok(Namespace::default());
    };
    let text = value
        .to_str()
        .map_err(|_| tonic::Status::invalid_argument("Micro-Namespace must be ASCII text"))?;
    if text.is_empty() {
        return Ok(Namespace::default());
    }
    Namespace::new(text).map_err(|e| micro_proto::status_from_error("proxy", &e))
}

/// The namespace a request's options name (`service`'s field), else the request's own.
/// Options naming another namespace than the request's must pass that namespace's rules
/// too (the guard checked the request's).
pub fn namespace_from<T>(
    request: &tonic::Request<T>,
    option: Option<&str>,
    service: &str,
) -> Result<Namespace, tonic::Status> {
    let own = namespace_of(request)?;
    let Some(named) = option.filter(|n| !n.is_empty()) else {
        return Ok(own);
    };
    let named = Namespace::new(named).map_err(|e| micro_proto::status_from_error(service, &e))?;
    if named != own {
        crate::proxy::guard::check_rules_of(request, &named, service)?;
    }
    Ok(named)
}

/// The metadata key choosing how fresh a read must be (`stale` or `linearizable`).
pub const CONSISTENCY_HEADER: &str = "micro-consistency";

/// The read consistency a request asks for in `Micro-Consistency` (default linearizable).
pub fn consistency_of<T>(
    request: &tonic::Request<T>,
) -> Result<micro_core::replicator::Consistency, tonic::Status> {
    let text = match request.metadata().get(CONSISTENCY_HEADER) {
        None => return Ok(micro_core::replicator::Consistency::Linearizable),
        Some(value) => value.to_str().unwrap_or("invalid"),
    };
    micro_core::replicator::Consistency::parse(text).ok_or_else(|| {
        tonic::Status::invalid_argument(format!(
            "Micro-Consistency must be stale or linearizable, not {text:?}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_to_micro_and_rejects_bad_names() {
        let mut request = tonic::Request::new(());
        assert_eq!(namespace_of(&request).unwrap().as_str(), "micro");
        request
            .metadata_mut()
            .insert(NAMESPACE_HEADER, "team-a".parse().unwrap());
        assert_eq!(namespace_of(&request).unwrap().as_str(), "team-a");
        request
            .metadata_mut()
            .insert(NAMESPACE_HEADER, "a/b".parse().unwrap());
        assert_eq!(
            namespace_of(&request).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
    }
}
