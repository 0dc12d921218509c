//! [`StoreClient`]: the platform store (`/store.Store/*`) through the proxy.

use futures::StreamExt;
use micro_core::store::Record;
use micro_proto::store as pb;
use micro_proto::store::store_client::StoreClient as WireClient;
use tonic::transport::Channel;

use crate::client::Client;
use crate::error::Error;

/// The most keys [`StoreClient::list`] collects from the streamed reply.
pub const LIST_KEYS_MAX: usize = 100_000;

/// Reads and writes records of one table, in the client's namespace. The database
/// defaults to the namespace and the table to the default table, as in Micro v3.
///
/// ```no_run
/// # async fn demo() -> Result<(), micro::Error> {
/// use micro_core::store::Record;
/// let store = micro::Client::new("127.0.0.1:8081")?.store().table("greetings");
/// store.write(Record { key: "bob".into(), value: b"hi".to_vec(), ..Record::default() }).await?;
/// assert_eq!(store.read("bob").await?[0].value, b"hi");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct StoreClient {
    client: Client,
    database: String,
    table: String,
}

impl StoreClient {
    pub(crate) fn new(client: Client) -> Self {
        Self {
            client,
            database: String::new(),
            table: String::new(),
        }
    }

    /// Uses `database` (default: the namespace's database).
    pub fn database(mut self, database: &str) -> Self {
        database.clone_into(&mut self.database);
        self
    }

    /// Uses `table` (default: the default table).
    pub fn table(mut self, table: &str) -> Self {
        table.clone_into(&mut self.table);
        self
    }

    /// The record at `key`; `NotFound` if there is none.
    pub async fn read(&self, key: &str) -> Result<Vec<Record>, Error> {
        let request = pb::ReadRequest {
            key: key.to_owned(),
            options: Some(pb::ReadOptions {
                database: self.database.clone(),
                table: self.table.clone(),
                ..pb::ReadOptions::default()
            }),
        };
        let reply = self
            .wire()
            .read(self.client.request(request))
            .await
            .map_err(|s| from_status(&s))?;
        reply
            .into_inner()
            .records
            .into_iter()
            .map(|r| micro_proto::record_from_wire(r).map_err(|e| Error::from_error("store", &e)))
            .collect()
    }

    /// Writes `record`; returns once it is durable.
    pub async fn write(&self, record: Record) -> Result<(), Error> {
        let request = pb::WriteRequest {
            record: Some(micro_proto::record_to_wire(record)),
            options: Some(pb::WriteOptions {
                database: self.database.clone(),
                table: self.table.clone(),
            }),
        };
        self.wire()
            .write(self.client.request(request))
            .await
            .map_err(|s| from_status(&s))?;
        Ok(())
    }

    /// Deletes the record at `key`.
    pub async fn delete(&self, key: &str) -> Result<(), Error> {
        let request = pb::DeleteRequest {
            key: key.to_owned(),
            options: Some(pb::DeleteOptions {
                database: self.database.clone(),
                table: self.table.clone(),
            }),
        };
        self.wire()
            .delete(self.client.request(request))
            .await
            .map_err(|s| from_status(&s))?;
        Ok(())
    }

    /// The keys starting with `prefix` (every key when empty), at most
    /// [`LIST_KEYS_MAX`].
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let request = pb::ListRequest {
            options: Some(pb::ListOptions {
                database: self.database.clone(),
                table: self.table.clone(),
                prefix: prefix.to_owned(),
                ..pb::ListOptions::default()
            }),
        };
        let mut replies = self
            .wire()
            .list(self.client.request(request))
            .await
            .map_err(|s| from_status(&s))?
            .into_inner();
        let mut keys = Vec::new();
        while let Some(reply) = replies.next().await {
            let reply = reply.map_err(|s| from_status(&s))?;
            keys.extend(reply.keys);
            if keys.len() >= LIST_KEYS_MAX {
                keys.truncate(LIST_KEYS_MAX);
                break;
            }
        }
        Ok(keys)
    }

    fn wire(&self) -> WireClient<Channel> {
        WireClient::new(self.client.channel())
    }
}

fn from_status(status: &tonic::Status) -> Error {
    micro_proto::micro_from_status("store", status)
}
