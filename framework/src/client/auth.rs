//! [`AuthClient`]: accounts, tokens and rules (`auth.Auth`, `auth.Accounts`,
//! `auth.Rules`) through the proxy.

use micro_proto::auth as pb;
use micro_proto::auth::accounts_client::AccountsClient;
use micro_proto::auth::auth_client::AuthClient as AuthGrpc;
use micro_proto::auth::rules_client::RulesClient;

use crate::client::Client;
use crate::error::Error;

use pb::{Account, Rule, Token};

/// The auth service's messages: `Account`, `Rule`, `Resource`, `Access`, `Token`.
pub mod types {
    pub use micro_proto::auth::{Access, Account, Resource, Rule, Token};
}

/// The typed auth client; get one with [`Client::auth`].
#[derive(Debug, Clone)]
pub struct AuthClient {
    client: Client,
}

fn status(status: &tonic::Status) -> Error {
    micro_proto::micro_from_status("auth", status)
}

impl AuthClient {
    pub(crate) fn new(client: Client) -> Self {
        Self { client }
    }

    fn options(&self) -> Option<pb::Options> {
        Some(pb::Options {
            namespace: self.client.namespace().to_string(),
        })
    }

    /// Logs in with an account id (or name) and secret: a token pair valid for
    /// `ttl_secs` (0: the server's default).
    pub async fn token(&self, id: &str, secret: &str, ttl_secs: i64) -> Result<Token, Error> {
        self.token_request(pb::TokenRequest {
            id: id.to_owned(),
            secret: secret.to_owned(),
            token_expiry: ttl_secs,
            options: self.options(),
            ..pb::TokenRequest::default()
        })
        .await
    }

    /// A fresh token pair from a refresh token.
    pub async fn refresh(&self, refresh_token: &str, ttl_secs: i64) -> Result<Token, Error> {
        self.token_request(pb::TokenRequest {
            refresh_token: refresh_token.to_owned(),
            token_expiry: ttl_secs,
            options: self.options(),
            ..pb::TokenRequest::default()
        })
        .await
    }

    async fn token_request(&self, request: pb::TokenRequest) -> Result<Token, Error> {
        let mut grpc = AuthGrpc::new(self.client.channel());
        let reply = grpc
            .token(self.client.request(request))
            .await
            .map_err(|s| status(&s))?;
        reply
            .into_inner()
            .token
            .ok_or_else(|| crate::error::unavailable("auth", "the server issued no token"))
    }

    /// The account a token belongs to, if it is valid.
    pub async fn inspect(&self, token: &str) -> Result<Account, Error> {
        let mut grpc = AuthGrpc::new(self.client.channel());
        let request = pb::InspectRequest {
            token: token.to_owned(),
            options: None,
        };
        let reply = grpc
            .inspect(self.client.request(request))
            .await
            .map_err(|s| status(&s))?;
        Ok(reply.into_inner().account.unwrap_or_default())
    }

    /// Creates an account of `kind` (`user` or `service`) in the client's namespace and
    /// returns it with its secret (random when `secret` is empty).
    pub async fn generate(
        &self,
        id: &str,
        secret: &str,
        kind: &str,
        scopes: &[&str],
    ) -> Result<Account, Error> {
        let mut grpc = AuthGrpc::new(self.client.channel());
        let request = pb::GenerateRequest {
            id: id.to_owned(),
            secret: secret.to_owned(),
            r#type: kind.to_owned(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            options: self.options(),
            ..pb::GenerateRequest::default()
        };
        let reply = grpc
            .generate(self.client.request(request))
            .await
            .map_err(|s| status(&s))?;
        Ok(reply.into_inner().account.unwrap_or_default())
    }

    /// The accounts of the namespace (needs an admin).
    pub async fn list_accounts(&self) -> Result<Vec<Account>, Error> {
        let mut grpc = AccountsClient::new(self.client.channel());
        let request = pb::ListAccountsRequest {
            options: self.options(),
        };
        let reply = grpc
            .list(self.client.request(request))
            .await
            .map_err(|s| status(&s))?;
        Ok(reply.into_inner().accounts)
    }

    /// Deletes an account (needs an admin).
    pub async fn delete_account(&self, id: &str) -> Result<(), Error> {
        let mut grpc = AccountsClient::new(self.client.channel());
        let request = pb::DeleteAccountRequest {
            id: id.to_owned(),
            options: self.options(),
        };
        grpc.delete(self.client.request(request))
            .await
            .map_err(|s| status(&s))?;
        Ok(())
    }

    /// Changes an account's secret (the old one is needed unless the caller is a
    /// `micro` admin); its refresh tokens stop working.
    pub async fn change_secret(&self, id: &str, old: &str, new: &str) -> Result<(), Error> {
        let mut grpc = AccountsClient::new(self.client.channel());
        let request = pb::ChangeSecretRequest {
            id: id.to_owned(),
            old_secret: old.to_owned(),
            new_secret: new.to_owned(),
            options: self.options(),
        };
        grpc.change_secret(self.client.request(request))
            .await
            .map_err(|s| status(&s))?;
        Ok(())
    }

    /// The namespace's rules (needs an account of it).
    pub async fn list_rules(&self) -> Result<Vec<Rule>, Error> {
        let mut grpc = RulesClient::new(self.client.channel());
        let request = pb::ListRequest {
            options: self.options(),
        };
        let reply = grpc
            .list(self.client.request(request))
            .await
            .map_err(|s| status(&s))?;
        Ok(reply.into_inner().rules)
    }

    /// Creates or replaces a rule (needs an admin).
    pub async fn create_rule(&self, rule: Rule) -> Result<(), Error> {
        let mut grpc = RulesClient::new(self.client.channel());
        let request = pb::CreateRequest {
            rule: Some(rule),
            options: self.options(),
        };
        grpc.create(self.client.request(request))
            .await
            .map_err(|s| status(&s))?;
        Ok(())
    }

    /// Deletes a rule (needs an admin).
    pub async fn delete_rule(&self, id: &str) -> Result<(), Error> {
        let mut grpc = RulesClient::new(self.client.channel());
        let request = pb::DeleteRequest {
            id: id.to_owned(),
            options: self.options(),
        };
        grpc.delete(self.client.request(request))
            .await
            .map_err(|s| status(&s))?;
        Ok(())
    }
}
