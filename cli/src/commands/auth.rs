//! `micro login`, `micro logout`, `micro user ...` and `micro auth ...`.

use std::io::{BufRead, IsTerminal, Write};

use micro_core::Namespace;
use micro_proto::auth as pb;

use crate::client::Client;
use crate::commands::output::{Output, print_table};
use crate::exit::{CliError, UNAUTHORIZED};
use crate::session;

/// `micro login`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  micro login --email admin --password micro")]
pub struct LoginArgs {
    /// The account id or name (prompted for when missing)
    #[arg(long, visible_alias = "username")]
    pub email: Option<String>,
    /// The password (prompted for, without echo, when missing)
    #[arg(long)]
    pub password: Option<String>,
}

/// `micro user ...`.
#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Print the access token alone (for `Authorization: Bearer ...`)
    #[command(
        after_help = "Example:\n  curl -H \"Authorization: Bearer $(micro user token)\" localhost:8080/store/list"
    )]
    Token,
    /// Print the current namespace, or set it with `set NS`
    #[command(after_help = "Example:\n  micro user namespace set team-a")]
    Namespace {
        /// `set`
        action: Option<String>,
        /// The namespace to make current
        namespace: Option<String>,
    },
    /// Change the logged-in account's password
    #[command(
        after_help = "Example:\n  micro user set password --old-password micro --new-password s3cret"
    )]
    Set {
        /// `password`
        #[arg(value_parser = ["password"])]
        what: String,
        /// The current password (prompted for when missing)
        #[arg(long)]
        old_password: Option<String>,
        /// The new password (prompted for when missing)
        #[arg(long)]
        new_password: Option<String>,
    },
}

/// `micro auth ...`.
#[derive(Debug, clap::Subcommand)]
pub enum AuthCommand {
    /// List accounts or rules of the namespace
    #[command(after_help = "Example:\n  micro auth list rules")]
    List {
        /// `accounts` or `rules`
        #[arg(value_parser = ["accounts", "rules"])]
        what: String,
        /// Print JSON instead of a table
        #[arg(long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Create an account or a rule
    #[command(subcommand)]
    Create(CreateCommand),
    /// Delete an account or a rule
    #[command(after_help = "Example:\n  micro auth delete rule default")]
    Delete {
        /// `account` or `rule`
        #[arg(value_parser = ["account", "rule"])]
        what: String,
        /// Its id
        id: String,
    },
}

/// `micro auth create ...`.
#[derive(Debug, clap::Subcommand)]
pub enum CreateCommand {
    /// Create an account and print it, with its secret (shown this once)
    #[command(
        after_help = "Example:\n  micro --namespace team-a auth create account alice --scopes admin"
    )]
    Account {
        /// The account id
        id: String,
        /// Its secret [default: a random one]
        #[arg(long)]
        secret: Option<String>,
        /// Its scopes, comma separated
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
        /// `user` or `service`
        #[arg(long = "type", default_value = "user")]
        kind: String,
    },
    /// Create (or replace) an access rule
    #[command(
        after_help = "Examples:\n  micro auth create rule onlyloggedin --scope '*' --resource '*:*:*'\n  micro auth create rule hello --scope '' --resource 'service:helloworld:*'"
    )]
    Rule {
        /// The rule id
        id: String,
        /// "" (public), "*" (any account of the namespace), "+" (any account) or a scope
        #[arg(long, default_value = "")]
        scope: String,
        /// What it guards: type:name:endpoint (`*` matches anything)
        #[arg(long)]
        resource: String,
        /// granted or denied
        #[arg(long, default_value = "granted", value_parser = ["granted", "denied"])]
        access: String,
        /// Higher priorities are considered first
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        priority: i32,
    },
}

fn options(namespace: &Namespace) -> Option<pb::Options> {
    Some(pb::Options {
        namespace: namespace.to_string(),
    })
}

fn prompt(question: &str, hidden: bool) -> Result<String, CliError> {
    let failed = |e: std::io::Error| CliError::usage(format!("cannot read the {question}: {e}"));
    if !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(failed)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    eprint!("{question}: ");
    std::io::stderr().flush().map_err(failed)?;
    if hidden {
        rpassword::read_password().map_err(failed)
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(failed)?;
        Ok(line.trim().to_owned())
    }
}

/// `micro login`: exchanges an id (or name) and password for tokens and keeps them.
pub(super) async fn login(client: &Client, args: LoginArgs) -> Result<(), CliError> {
    let id = match args.email {
        Some(id) => id,
        None => prompt("Email or account id", false)?,
    };
    let password = match args.password {
        Some(p) => p,
        None => prompt("Password", true)?,
    };
    let namespace = client.namespace().clone();
    let request = pb::TokenRequest {
        id: id.clone(),
        secret: password.clone(),
        token_expiry: session::TOKEN_TTL_SECS,
        options: options(&namespace),
        ..pb::TokenRequest::default()
    };
    let reply = client
        .auth()
        .token(client.request(request))
        .await
        .map_err(|s| client.error(&s))?;
    let token = reply
        .into_inner()
        .token
        .ok_or_else(|| CliError::new(UNAUTHORIZED, "the server issued no token"))?;
    session::save_login(
        client.proxy(),
        &namespace,
        Some(session::login_from(&id, token)),
    )?;
    if id == micro_core::auth::ADMIN_ID
        && password == micro_core::auth::ADMIN_DEFAULT_PASSWORD
        && namespace == Namespace::default()
    {
        eprintln!(
            "warning: admin still has the default password \"micro\"; change it with \
             `micro user set password --old-password micro --new-password NEW`"
        );
    }
    println!(
        "Logged in as {id} (namespace {namespace}, proxy {})",
        client.proxy()
    );
    Ok(())
}

/// `micro logout`: forgets the login for this proxy and namespace.
pub(super) fn logout(client: &Client) -> Result<(), CliError> {
    session::save_login(client.proxy(), client.namespace(), None)?;
    println!(
        "Logged out of {} (namespace {})",
        client.proxy(),
        client.namespace()
    );
    Ok(())
}

fn not_logged_in(client: &Client) -> CliError {
    CliError::new(
        UNAUTHORIZED,
        format!(
            "not logged in to {} (namespace {}): run `micro login`",
            client.proxy(),
            client.namespace()
        ),
    )
}

async fn whoami(client: &Client) -> Result<pb::Account, CliError> {
    let token = client.token().ok_or_else(|| not_logged_in(client))?;
    let request = pb::InspectRequest {
        token: token.to_owned(),
        options: None,
    };
    let reply = client
        .auth()
        .inspect(client.request(request))
        .await
        .map_err(|_| not_logged_in(client))?;
    reply
        .into_inner()
        .account
        .ok_or_else(|| not_logged_in(client))
}

/// `micro user`: who this CLI acts as, where, and in which namespace.
pub(super) async fn user(client: &Client, output: Option<Output>) -> Result<(), CliError> {
    let account = whoami(client).await?;
    let fields = [
        ("user", account.id),
        ("issuer", account.issuer),
        ("scopes", account.scopes.join(",")),
        ("namespace", client.namespace().to_string()),
        ("proxy", client.proxy().to_owned()),
    ];
    match output {
        None => {
            for (name, value) in fields {
                println!("{name}: {value}");
            }
        }
        Some(Output::Json) => {
            let object: serde_json::Map<String, serde_json::Value> = fields
                .into_iter()
                .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v)))
                .collect();
            println!("{}", serde_json::Value::Object(object));
        }
        Some(Output::Table) => {
            let rows = fields
                .into_iter()
                .map(|(k, v)| vec![k.to_owned(), v])
                .collect();
            print_table(&["FIELD", "VALUE"], rows);
        }
    }
    Ok(())
}

/// `micro user token|namespace|set password`.
pub(super) async fn user_command(client: &Client, command: UserCommand) -> Result<(), CliError> {
    match command {
        UserCommand::Token => {
            let token = client.token().ok_or_else(|| not_logged_in(client))?;
            println!("{token}");
            Ok(())
        }
        UserCommand::Namespace { action, namespace } => match (action.as_deref(), namespace) {
            (None, _) => {
                println!("{}", client.namespace());
                Ok(())
            }
            (Some("set"), Some(ns)) => {
                let ns = Namespace::new(ns).map_err(|e| CliError::usage(e.to_string()))?;
                session::set_namespace(client.context(), &ns)?;
                println!("{ns}");
                Ok(())
            }
            _ => Err(CliError::usage(
                "usage: micro user namespace [set NAMESPACE]",
            )),
        },
        UserCommand::Set {
            old_password,
            new_password,
            ..
        } => {
            let account = whoami(client).await?;
            let old = match old_password {
                Some(p) => p,
                None => prompt("Current password", true)?,
            };
            let new = match new_password {
                Some(p) => p,
                None => prompt("New password", true)?,
            };
            let request = pb::ChangeSecretRequest {
                id: account.id.clone(),
                old_secret: old,
                new_secret: new,
                options: Some(pb::Options {
                    namespace: account.issuer,
                }),
            };
            client
                .accounts()
                .change_secret(client.request(request))
                .await
                .map_err(|s| client.error(&s))?;
            println!(
                "Password changed for {}; log in again on other machines",
                account.id
            );
            Ok(())
        }
    }
}

/// `micro auth list|create|delete`.
pub(super) async fn auth(client: &Client, command: AuthCommand) -> Result<(), CliError> {
    let ns = client.namespace().clone();
    match command {
        AuthCommand::List { what, output } if what == "accounts" => {
            list_accounts(client, &ns, output).await
        }
        AuthCommand::List { output, .. } => list_rules(client, &ns, output).await,
        AuthCommand::Create(CreateCommand::Account {
            id,
            secret,
            scopes,
            kind,
        }) => {
            let request = pb::GenerateRequest {
                id,
                secret: secret.unwrap_or_default(),
                scopes,
                r#type: kind,
                options: options(&ns),
                ..pb::GenerateRequest::default()
            };
            let reply = client
                .auth()
                .generate(client.request(request))
                .await
                .map_err(|s| client.error(&s))?;
            let account = reply.into_inner().account.unwrap_or_default();
            println!(
                "{}",
                serde_json::to_string_pretty(&account_json(&account, true)).unwrap_or_default()
            );
            Ok(())
        }
        AuthCommand::Create(CreateCommand::Rule {
            id,
            scope,
            resource,
            access,
            priority,
        }) => create_rule(client, &ns, id, scope, &resource, &access, priority).await,
        AuthCommand::Delete { what, id } => delete(client, &ns, &what, id).await,
    }
}

async fn delete(client: &Client, ns: &Namespace, what: &str, id: String) -> Result<(), CliError> {
    if what == "account" {
        let request = pb::DeleteAccountRequest {
            id: id.clone(),
            options: options(ns),
        };
        client
            .accounts()
            .delete(client.request(request))
            .await
            .map_err(|s| client.error(&s))?;
    } else {
        let request = pb::DeleteRequest {
            id: id.clone(),
            options: options(ns),
        };
        client
            .rules()
            .delete(client.request(request))
            .await
            .map_err(|s| client.error(&s))?;
    }
    println!("Deleted {what} {id}");
    Ok(())
}

fn account_json(account: &pb::Account, with_secret: bool) -> serde_json::Value {
    let mut json = serde_json::json!({
        "id": account.id,
        "type": account.r#type,
        "issuer": account.issuer,
        "name": account.name,
        "scopes": account.scopes,
        "metadata": account.metadata,
    });
    if with_secret {
        json["secret"] = serde_json::Value::String(account.secret.clone());
    }
    json
}

async fn list_accounts(client: &Client, ns: &Namespace, output: Output) -> Result<(), CliError> {
    let request = pb::ListAccountsRequest {
        options: options(ns),
    };
    let reply = client
        .accounts()
        .list(client.request(request))
        .await
        .map_err(|s| client.error(&s))?;
    let accounts = reply.into_inner().accounts;
    if output == Output::Json {
        let json: Vec<_> = accounts.iter().map(|a| account_json(a, false)).collect();
        println!("{}", serde_json::Value::Array(json));
        return Ok(());
    }
    let rows = accounts
        .into_iter()
        .map(|a| {
            let metadata: Vec<String> =
                a.metadata.iter().map(|(k, v)| format!("{k}={v}")).collect();
            vec![a.id, a.name, a.scopes.join(","), metadata.join(",")]
        })
        .collect();
    print_table(&["ID", "NAME", "SCOPES", "METADATA"], rows);
    Ok(())
}

async fn list_rules(client: &Client, ns: &Namespace, output: Output) -> Result<(), CliError> {
    let request = pb::ListRequest {
        options: options(ns),
    };
    let reply = client
        .rules()
        .list(client.request(request))
        .await
        .map_err(|s| client.error(&s))?;
    let rules = reply.into_inner().rules;
    let access = |a: i32| match pb::Access::try_from(a) {
        Ok(pb::Access::Denied) => "denied",
        Ok(pb::Access::Granted) => "granted",
        _ => "unknown",
    };
    let resource = |r: &Option<pb::Resource>| {
        r.as_ref()
            .map(|r| format!("{}:{}:{}", r.r#type, r.name, r.endpoint))
            .unwrap_or_default()
    };
    if output == Output::Json {
        let json: Vec<_> = rules
            .iter()
            .map(|r| {
                serde_json::json!({"id": r.id, "scope": r.scope, "resource": resource(&r.resource),
                    "access": access(r.access), "priority": r.priority})
            })
            .collect();
        println!("{}", serde_json::Value::Array(json));
        return Ok(());
    }
    let rows = rules
        .iter()
        .map(|r| {
            let scope = if r.scope.is_empty() {
                "<public>".to_owned()
            } else {
                r.scope.clone()
            };
            vec![
                r.id.clone(),
                scope,
                access(r.access).to_owned(),
                resource(&r.resource),
                r.priority.to_string(),
            ]
        })
        .collect();
    print_table(&["ID", "SCOPE", "ACCESS", "RESOURCE", "PRIORITY"], rows);
    Ok(())
}

async fn create_rule(
    client: &Client,
    ns: &Namespace,
    id: String,
    scope: String,
    resource: &str,
    access: &str,
    priority: i32,
) -> Result<(), CliError> {
    let parsed =
        micro_core::auth::Resource::parse(resource).map_err(|e| CliError::usage(e.to_string()))?;
    let access = if access == "denied" {
        pb::Access::Denied
    } else {
        pb::Access::Granted
    };
    let rule = pb::Rule {
        id: id.clone(),
        scope,
        resource: Some(pb::Resource {
            name: parsed.name,
            r#type: parsed.kind,
            endpoint: parsed.endpoint,
        }),
        access: access.into(),
        priority,
    };
    let request = pb::CreateRequest {
        rule: Some(rule),
        options: options(ns),
    };
    client
        .rules()
        .create(client.request(request))
        .await
        .map_err(|s| client.error(&s))?;
    println!("Created rule {id}");
    Ok(())
}
