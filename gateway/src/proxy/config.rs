//! `config.Config` over the node's [`ConfigHandle`]: every method needs an admin or
//! service account of the namespace (v3's `AuthorizeAdmin`).

use micro_actors::ConfigHandle;
use micro_core::Namespace;
use micro_core::config::ConfigError;
use micro_proto::config as pb;
use micro_proto::config::config_server::Config;
use tonic::{Request, Response, Status};

use crate::proxy::guard::require_admin;
use crate::proxy::namespace_from;

/// The `config.Config` gRPC service.
#[derive(Debug, Clone)]
pub struct ConfigService {
    config: ConfigHandle,
}

impl ConfigService {
    /// A service answering from `config`.
    pub fn new(config: ConfigHandle) -> Self {
        Self { config }
    }
}

fn fail(err: &ConfigError) -> Status {
    micro_proto::status_from_error("config", err)
}

/// The namespace a request names (else the caller's), after the admin check.
fn admin_namespace<T>(request: &Request<T>, named: &str) -> Result<Namespace, Status> {
    let namespace = namespace_from(request, Some(named), "config")?;
    require_admin(request, &namespace, "config")?;
    Ok(namespace)
}

fn json_value(value: &serde_json::Value) -> pb::Value {
    pb::Value {
        data: value.to_string(),
        format: "json".to_owned(),
    }
}

#[tonic::async_trait]
impl Config for ConfigService {
    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        let ns = admin_namespace(&request, &request.get_ref().namespace)?;
        let body = request.into_inner();
        let secrets = body.options.is_some_and(|o| o.secret);
        let value = self
            .config
            .get(&ns, &body.path, secrets)
            .await
            .map_err(|e| fail(&e))?;
        Ok(Response::new(pb::GetResponse {
            value: Some(json_value(&value)),
        }))
    }

    async fn set(
        &self,
        request: Request<pb::SetRequest>,
    ) -> Result<Response<pb::SetResponse>, Status> {
        let ns = admin_namespace(&request, &request.get_ref().namespace)?;
        let body = request.into_inner();
        let value = body.value.ok_or_else(|| {
            fail(&ConfigError::Invalid(
                "the request holds no value".to_owned(),
            ))
        })?;
        let secret = body.options.is_some_and(|o| o.secret);
        self.config
            .set(&ns, &body.path, &value.data, secret)
            .await
            .map_err(|e| fail(&e))?;
        Ok(Response::new(pb::SetResponse {}))
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        let ns = admin_namespace(&request, &request.get_ref().namespace)?;
        self.config
            .delete(&ns, &request.get_ref().path)
            .await
            .map_err(|e| fail(&e))?;
        Ok(Response::new(pb::DeleteResponse {}))
    }

    async fn read(
        &self,
        request: Request<pb::ReadRequest>,
    ) -> Result<Response<pb::ReadResponse>, Status> {
        let ns = admin_namespace(&request, &request.get_ref().namespace)?;
        let path = request.into_inner().path;
        let value = self
            .config
            .get(&ns, &path, false)
            .await
            .map_err(|e| fail(&e))?;
        let data = value.to_string();
        let checksum = format!("{:x}", fnv1a(&data));
        Ok(Response::new(pb::ReadResponse {
            change: Some(pb::Change {
                namespace: ns.to_string(),
                path,
                change_set: Some(pb::ChangeSet {
                    data,
                    checksum,
                    format: "json".to_owned(),
                    source: "config".to_owned(),
                    timestamp: 0,
                }),
            }),
        }))
    }
}

/// A cheap, stable checksum of the data (FNV-1a), as v3 sent one; not for security.
fn fnv1a(data: &str) -> u64 {
    data.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
