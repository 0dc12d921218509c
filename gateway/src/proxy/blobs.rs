//! `store.BlobStore` (Read, Write, Delete, List) over the node's [`BlobHandle`]: the
//! blobs of a namespace, for its admin and service accounts (as the store), the
//! namespace from `options.namespace` or the request's.
//!
//! ```text
//! Write: BlobWriteRequest{key, options, blob}, {blob}, {blob} ... ─> chunks ─> commit
//! Read:  BlobReadRequest{key} ─> BlobReadResponse{blob: chunk 0}, {chunk 1}, ...
//! ```

use std::pin::Pin;

use futures::{Stream, StreamExt};
use micro_actors::BlobHandle;
use micro_core::{Code, MicroError, Namespace};
use micro_proto::store as pb;
use micro_proto::store::blob_store_server::BlobStore;
use tonic::codec::Streaming;
use tonic::{Request, Response, Status};

use crate::proxy::guard::require_admin;
use crate::proxy::namespace_from;

/// The `store.BlobStore` gRPC service.
#[derive(Debug, Clone)]
pub struct BlobStoreService {
    blobs: BlobHandle,
}

impl BlobStoreService {
    /// A service over `blobs`.
    pub fn new(blobs: BlobHandle) -> Self {
        Self { blobs }
    }
}

fn status(err: &MicroError) -> Status {
    micro_proto::status_from_micro(err)
}

/// The namespace `options` names (else the request's), after the admin check.
fn admin_namespace<T>(request: &Request<T>, named: Option<&str>) -> Result<Namespace, Status> {
    let namespace = namespace_from(request, named, "store")?;
    require_admin(request, &namespace, "store")?;
    Ok(namespace)
}

type BlobStream = Pin<Box<dyn Stream<Item = Result<pb::BlobReadResponse, Status>> + Send>>;

#[tonic::async_trait]
impl BlobStore for BlobStoreService {
    type ReadStream = BlobStream;

    async fn read(
        &self,
        request: Request<pb::BlobReadRequest>,
    ) -> Result<Response<BlobStream>, Status> {
        let named = request
            .get_ref()
            .options
            .as_ref()
            .map(|o| o.namespace.clone());
        let ns = admin_namespace(&request, named.as_deref())?;
        let key = request.into_inner().key;
        let manifest = self.blobs.open(&ns, &key).await.map_err(|e| status(&e))?;
        let blobs = self.blobs.clone();
        let chunks = futures::stream::iter(0..manifest.chunks).map(move |index| {
            blobs
                .chunk(&ns, &manifest, index)
                .map(|blob| pb::BlobReadResponse { blob })
                .map_err(|e| status(&e))
        });
        Ok(Response::new(Box::pin(chunks)))
    }

    async fn write(
        &self,
        request: Request<Streaming<pb::BlobWriteRequest>>,
    ) -> Result<Response<pb::BlobWriteResponse>, Status> {
        let (metadata, extensions, mut stream) = request.into_parts();
        let probe = Request::from_parts(metadata, extensions, ());
        let first = stream
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("the write stream ended before a key"))?;
        let named = first.options.as_ref().map(|o| o.namespace.clone());
        let ns = admin_namespace(&probe, named.as_deref())?;
        let mut writer = self.blobs.writer(&ns, &first.key).map_err(|e| status(&e))?;
        writer.write(&first.blob).await.map_err(|e| status(&e))?;
        while let Some(next) = stream.message().await? {
            if !next.key.is_empty() && next.key != first.key {
                let detail = "every message of one write must name the same key (or none)";
                return Err(status(&MicroError::new("store", Code::BadRequest, detail)));
            }
            writer.write(&next.blob).await.map_err(|e| status(&e))?;
        }
        writer.commit().await.map_err(|e| status(&e))?;
        Ok(Response::new(pb::BlobWriteResponse {}))
    }

    async fn delete(
        &self,
        request: Request<pb::BlobDeleteRequest>,
    ) -> Result<Response<pb::BlobDeleteResponse>, Status> {
        let named = request
            .get_ref()
            .options
            .as_ref()
            .map(|o| o.namespace.clone());
        let ns = admin_namespace(&request, named.as_deref())?;
        let key = request.into_inner().key;
        if !self.blobs.delete(&ns, &key).await.map_err(|e| status(&e))? {
            let detail = format!("no blob {key:?}");
            return Err(status(&MicroError::new("store", Code::NotFound, detail)));
        }
        Ok(Response::new(pb::BlobDeleteResponse {}))
    }

    async fn list(
        &self,
        request: Request<pb::BlobListRequest>,
    ) -> Result<Response<pb::BlobListResponse>, Status> {
        let options = request.get_ref().options.clone().unwrap_or_default();
        let ns = admin_namespace(&request, Some(&options.namespace))?;
        let keys = self
            .blobs
            .list(&ns, &options.prefix)
            .await
            .map_err(|e| status(&e))?;
        Ok(Response::new(pb::BlobListResponse { keys }))
    }
}
