//! `auth.Auth`, `auth.Accounts` and `auth.Rules` over the node's [`AuthHandle`].
//!
//! Each request acts in `options.namespace` when given, else in the request's namespace
//! (which the guard resolved). The permission checks live in the handle, so the HTTP
//! api and the gRPC proxy enforce the same ones.

use micro_actors::AuthHandle;
use micro_actors::auth::{Credentials, NewAccount};
use micro_core::Namespace;
use micro_core::auth::{Access, Account, AuthError, Resource, Rule};
use micro_proto::auth as pb;
use micro_proto::auth::accounts_server::Accounts;
use micro_proto::auth::auth_server::Auth;
use micro_proto::auth::rules_server::Rules;
use tonic::{Request, Response, Status};

use crate::proxy::guard::{caller_of, refused};
use crate::proxy::namespace_from;

/// The auth services of the proxy.
#[derive(Debug, Clone)]
pub struct AuthService {
    auth: AuthHandle,
}

impl AuthService {
    /// Services answering from `auth`.
    pub fn new(auth: AuthHandle) -> Self {
        Self { auth }
    }
}

fn fail(err: &AuthError) -> Status {
    refused("auth", err)
}

fn namespace<T>(request: &Request<T>, options: Option<&pb::Options>) -> Result<Namespace, Status> {
    namespace_from(request, options.map(|o| o.namespace.as_str()), "auth")
}

/// The wire form of an account; the secret only when it was just generated.
pub fn account_to_wire(account: Account, secret: String) -> pb::Account {
    pb::Account {
        id: account.id,
        r#type: account.kind,
        metadata: account.metadata.into_iter().collect(),
        scopes: account.scopes,
        issuer: account.issuer,
        secret,
        name: account.name,
    }
}

fn rule_to_wire(rule: Rule) -> pb::Rule {
    let access = match rule.access {
        Access::Granted => pb::Access::Granted,
        Access::Denied => pb::Access::Denied,
    };
    pb::Rule {
        id: rule.id,
        scope: rule.scope,
        resource: Some(pb::Resource {
            name: rule.resource.name,
            r#type: rule.resource.kind,
            endpoint: rule.resource.endpoint,
        }),
        access: access.into(),
        priority: rule.priority,
    }
}

fn rule_from_wire(rule: pb::Rule) -> Result<Rule, AuthError> {
    let access = match pb::Access::try_from(rule.access) {
        Ok(pb::Access::Granted) => Access::Granted,
        Ok(pb::Access::Denied) => Access::Denied,
        _ => {
            return Err(AuthError::Invalid(
                "a rule's access must be GRANTED or DENIED".to_owned(),
            ));
        }
    };
    let resource = rule
        .resource
        .ok_or_else(|| AuthError::Invalid("a rule needs a resource".to_owned()))?;
    Ok(Rule {
        id: rule.id,
        scope: rule.scope,
        resource: Resource {
            kind: resource.r#type,
            name: resource.name,
            endpoint: resource.endpoint,
        },
        access,
        priority: rule.priority,
    })
}

#[tonic::async_trait]
impl Auth for AuthService {
    async fn generate(
        &self,
        request: Request<pb::GenerateRequest>,
    ) -> Result<Response<pb::GenerateResponse>, Status> {
        let ns = namespace(&request, request.get_ref().options.as_ref())?;
        let caller = caller_of(&request).cloned();
        let body = request.into_inner();
        let new = NewAccount {
            id: body.id,
            secret: body.secret,
            kind: body.r#type,
            scopes: body.scopes,
            metadata: body.metadata.into_iter().collect(),
            name: body.name,
        };
        let (account, secret) = self
            .auth
            .generate(caller.as_ref(), &ns, new)
            .await
            .map_err(|e| fail(&e))?;
        Ok(Response::new(pb::GenerateResponse {
            account: Some(account_to_wire(account, secret)),
        }))
    }

    async fn inspect(
        &self,
        request: Request<pb::InspectRequest>,
    ) -> Result<Response<pb::InspectResponse>, Status> {
        // As in v3, a token that does not verify is a bad request here, not a 401.
        let account = self
            .auth
            .verify(&request.get_ref().token)
            .map_err(|e| fail(&AuthError::Invalid(e.to_string())))?;
        Ok(Response::new(pb::InspectResponse {
            account: Some(account_to_wire(account, String::new())),
        }))
    }

    async fn token(
        &self,
        request: Request<pb::TokenRequest>,
    ) -> Result<Response<pb::TokenResponse>, Status> {
        let ns = namespace(&request, request.get_ref().options.as_ref())?;
        let body = request.into_inner();
        let credentials = if body.refresh_token.is_empty() {
            Credentials::Secret {
                id: body.id,
                secret: body.secret,
            }
        } else {
            Credentials::Refresh(body.refresh_token)
        };
        let ttl = u64::try_from(body.token_expiry).unwrap_or(0);
        let token = self
            .auth
            .token(&ns, credentials, ttl)
            .await
            .map_err(|e| fail(&e))?;
        Ok(Response::new(pb::TokenResponse {
            token: Some(pb::Token {
                access_token: token.access_token,
                refresh_token: token.refresh_token,
                created: token.created,
                expiry: token.expiry,
            }),
        }))
    }
}

#[tonic::async_trait]
impl Accounts for AuthService {
    async fn list(
        &self,
        request: Request<pb::ListAccountsRequest>,
    ) -> Result<Response<pb::ListAccountsResponse>, Status> {
        let ns = namespace(&request, request.get_ref().options.as_ref())?;
        let accounts = self
            .auth
            .list_accounts(caller_of(&request), &ns)
            .map_err(|e| fail(&e))?;
        Ok(Response::new(pb::ListAccountsResponse {
            accounts: accounts
                .into_iter()
                .map(|a| account_to_wire(a, String::new()))
                .collect(),
        }))
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteAccountRequest>,
    ) -> Result<Response<pb::DeleteAccountResponse>, Status> {
        let ns = namespace(&request, request.get_ref().options.as_ref())?;
        let caller = caller_of(&request).cloned();
        self.auth
            .delete_account(caller.as_ref(), &ns, &request.get_ref().id)
            .await
            .map_err(|e| fail(&e))?;
        Ok(Response::new(pb::DeleteAccountResponse {}))
    }

    async fn change_secret(
        &self,
        request: Request<pb::ChangeSecretRequest>,
    ) -> Result<Response<pb::ChangeSecretResponse>, Status> {
        let ns = namespace(&request, request.get_ref().options.as_ref())?;
        let caller = caller_of(&request).cloned();
        let body = request.into_inner();
        self.auth
            .change_secret(
                caller.as_ref(),
                &ns,
                &body.id,
                &body.old_secret,
                &body.new_secret,
            )
            .await
            .map_err(|e| fail(&e))?;
        Ok(Response::new(pb::ChangeSecretResponse {}))
    }
}

#[tonic::async_trait]
impl Rules for AuthService {
    async fn create(
        &self,
        request: Request<pb::CreateRequest>,
    ) -> Result<Response<pb::CreateResponse>, Status> {
        let ns = namespace(&request, request.get_ref().options.as_ref())?;
        let caller = caller_of(&request).cloned();
        let rule = request
            .into_inner()
            .rule
            .ok_or_else(|| fail(&AuthError::Invalid("the request holds no rule".to_owned())))?;
        let rule = rule_from_wire(rule).map_err(|e| fail(&e))?;
        self.auth
            .create_rule(caller.as_ref(), &ns, rule)
            .await
            .map_err(|e| fail(&e))?;
        Ok(Response::new(pb::CreateResponse {}))
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        let ns = namespace(&request, request.get_ref().options.as_ref())?;
        let caller = caller_of(&request).cloned();
        self.auth
            .delete_rule(caller.as_ref(), &ns, &request.get_ref().id)
            .await
            .map_err(|e| fail(&e))?;
        Ok(Response::new(pb::DeleteResponse {}))
    }

    async fn list(
        &self,
        request: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListResponse>, Status> {
        let ns = namespace(&request, request.get_ref().options.as_ref())?;
        let rules = self
            .auth
            .list_rules(caller_of(&request), &ns)
            .map_err(|e| fail(&e))?;
        Ok(Response::new(pb::ListResponse {
            rules: rules.into_iter().map(rule_to_wire).collect(),
        }))
    }
}
