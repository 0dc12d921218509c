//! Tokens that must be refused, and the account lifecycle, over an in-memory replicator.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use micro_core::ManualClock;
use micro_core::replicator::MemReplicator;

use super::*;

async fn bootstrapped() -> (AuthHandle, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let replicator = Arc::new(MemReplicator::new(clock.clone()));
    let auth = AuthHandle::new(replicator, clock.clone());
    assert!(auth.bootstrap("micro").await.unwrap());
    assert!(!auth.bootstrap("other").await.unwrap());
    (auth, clock)
}

/// The admin's token and account, as a fresh login gives them.
async fn admin_login(auth: &AuthHandle) -> (Token, Account) {
    let token = auth
        .token(&Namespace::default(), login("admin", "micro"), 60)
        .await
        .unwrap();
    let account = auth.verify(&token.access_token).unwrap();
    (token, account)
}

fn login(id: &str, secret: &str) -> Credentials {
    Credentials::Secret {
        id: id.into(),
        secret: secret.into(),
    }
}

fn forge(header: &str, payload_of: &str, signature: &[u8]) -> String {
    let payload = payload_of.split('.').nth(1).unwrap();
    format!(
        "{}.{payload}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

#[tokio::test]
async fn forged_expired_and_orphaned_tokens_are_refused() {
    let (auth, clock) = bootstrapped().await;
    let micro = Namespace::default();
    let (token, admin) = admin_login(&auth).await;
    assert_eq!(
        (admin.id.as_str(), admin.issuer.as_str()),
        ("admin", "micro")
    );
    assert!(admin.is_admin());
    assert!(
        auth.token(&micro, login("admin", "wrong"), 60)
            .await
            .is_err()
    );

    // A flipped byte in the signature.
    let mut bytes = token.access_token.clone().into_bytes();
    let last = bytes.len() - 5;
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(bytes).unwrap();
    assert!(matches!(
        auth.verify(&flipped),
        Err(AuthError::Unauthorized(_))
    ));
    // `alg: none` with no signature.
    let none = forge(r#"{"alg":"none","typ":"JWT"}"#, &token.access_token, b"");
    assert!(matches!(
        auth.verify(&none),
        Err(AuthError::Unauthorized(_))
    ));
    // HS256 keyed with the public key (the classic algorithm confusion).
    let public = auth
        .replicator
        .reader()
        .auth_keys()
        .unwrap()
        .unwrap()
        .public_der;
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({"sub":"admin","iss":"micro","exp":1_800_000_000u64,"type":"user","scopes":["admin"]}),
        &jsonwebtoken::EncodingKey::from_secret(&public).unwrap(),
    )
    .unwrap();
    assert!(matches!(auth.verify(&hs), Err(AuthError::Unauthorized(_))));
    // Expired.
    clock.advance_ms(61_000);
    assert!(matches!(
        auth.verify(&token.access_token),
        Err(AuthError::Unauthorized(_))
    ));
}

#[tokio::test]
async fn refresh_tokens_die_with_a_secret_change_and_secrets_are_hashed() {
    let (auth, _clock) = bootstrapped().await;
    let (_, admin) = admin_login(&auth).await;
    let b = Namespace::new("b").unwrap();
    let new = NewAccount {
        id: "bob".into(),
        secret: "s3cret-value".into(),
        name: "bob@example.com".into(),
        ..NewAccount::default()
    };
    let (bob, _) = auth.generate(Some(&admin), &b, new.clone()).await.unwrap();
    assert!(matches!(
        auth.generate(Some(&admin), &b, new).await,
        Err(AuthError::Conflict(_))
    ));
    // Login by name; refresh works until the secret changes.
    let token = auth
        .token(&b, login("bob@example.com", "s3cret-value"), 60)
        .await
        .unwrap();
    let refreshed = auth
        .token(&b, Credentials::Refresh(token.refresh_token.clone()), 60)
        .await
        .unwrap();
    assert_eq!(auth.verify(&refreshed.access_token).unwrap().id, "bob");
    auth.change_secret(Some(&bob), &b, "bob", "s3cret-value", "another")
        .await
        .unwrap();
    assert!(matches!(
        auth.token(&b, Credentials::Refresh(token.refresh_token), 60)
            .await,
        Err(AuthError::Unauthorized(_))
    ));
    // The stored account holds a hash, never the secret.
    let stored = auth
        .replicator
        .reader()
        .auth_account(&b, "bob")
        .unwrap()
        .unwrap();
    assert!(stored.secret_hash.starts_with("$argon2id$"));
    assert!(!format!("{stored:?}").contains("another"));
    // Bob administers nothing: he cannot list accounts, even of his own namespace.
    assert!(matches!(
        auth.list_accounts(Some(&bob), &b),
        Err(AuthError::Forbidden(_))
    ));
    assert!(auth.list_rules(Some(&bob), &b).is_ok());
    assert!(matches!(
        auth.list_rules(None, &b),
        Err(AuthError::Unauthorized(_))
    ));
}

#[tokio::test]
async fn a_deleted_accounts_token_is_refused_though_well_signed_and_fresh() {
    let (auth, _clock) = bootstrapped().await;
    let micro = Namespace::default();
    let (_, admin) = admin_login(&auth).await;
    let (alice, secret) = auth
        .generate(
            Some(&admin),
            &micro,
            NewAccount {
                id: "alice".into(),
                ..NewAccount::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(alice.issuer, "micro");
    let alice_token = auth
        .token(&micro, login("alice", &secret), 600)
        .await
        .unwrap();
    assert!(auth.verify(&alice_token.access_token).is_ok());
    auth.delete_account(Some(&admin), &micro, "alice")
        .await
        .unwrap();
    assert!(matches!(
        auth.verify(&alice_token.access_token),
        Err(AuthError::Unauthorized(_))
    ));
}

#[test]
fn the_dummy_hash_parses_so_unknown_accounts_cost_a_full_hash() {
    use argon2::password_hash::PasswordHash;
    assert!(PasswordHash::new(crypto::DUMMY_HASH).is_ok());
    assert!(!crypto::secret_matches("micro", crypto::DUMMY_HASH));
}

#[tokio::test]
async fn a_token_carries_the_accounts_current_scopes_not_those_it_was_issued_with() {
    let (auth, _clock) = bootstrapped().await;
    let micro = Namespace::default();
    let (_, admin) = admin_login(&auth).await;
    let bob = NewAccount {
        id: "bob".into(),
        secret: "pw".into(),
        scopes: vec!["admin".into()],
        ..NewAccount::default()
    };
    auth.generate(Some(&admin), &micro, bob.clone())
        .await
        .unwrap();
    let token = auth.token(&micro, login("bob", "pw"), 600).await.unwrap();
    assert!(auth.verify(&token.access_token).unwrap().is_admin());
    auth.delete_account(Some(&admin), &micro, "bob")
        .await
        .unwrap();
    let demoted = NewAccount {
        scopes: Vec::new(),
        ..bob
    };
    auth.generate(Some(&admin), &micro, demoted).await.unwrap();
    assert!(!auth.verify(&token.access_token).unwrap().is_admin());
    // A name cannot shadow another account's id, nor an id another's name.
    let named = NewAccount {
        id: "carol".into(),
        name: "bob".into(),
        ..NewAccount::default()
    };
    assert!(matches!(
        auth.generate(Some(&admin), &micro, named).await,
        Err(AuthError::Conflict(_))
    ));
}

#[tokio::test]
async fn repeated_wrong_secrets_make_an_account_wait_even_with_the_right_one() {
    let (auth, clock) = bootstrapped().await;
    let ns = Namespace::default();
    for _ in 0..backoff::FAILURES_FREE {
        let err = auth
            .token(&ns, login("admin", "guess"), 60)
            .await
            .unwrap_err();
        assert_eq!(err.code(), micro_core::Code::Unauthorized, "{err}");
    }
    // The sixth failure starts a wait; during it even the right secret is refused, with
    // 429 and the time left, and without revealing whether it was right.
    let err = auth
        .token(&ns, login("admin", "guess"), 60)
        .await
        .unwrap_err();
    assert_eq!(err.code(), micro_core::Code::Unauthorized);
    let err = auth
        .token(&ns, login("admin", "micro"), 60)
        .await
        .unwrap_err();
    assert_eq!(err.code(), micro_core::Code::TooManyRequests, "{err}");
    assert!(err.to_string().contains("retry in 1 s"), "{err}");
    // Unknown accounts are counted the same way.
    for _ in 0..=backoff::FAILURES_FREE {
        let _ = auth.token(&ns, login("nobody", "x"), 60).await;
    }
    let err = auth.token(&ns, login("nobody", "x"), 60).await.unwrap_err();
    assert_eq!(err.code(), micro_core::Code::TooManyRequests);
    // Once the wait is over the right secret works, and it clears the count.
    clock.advance_ms(1_000);
    admin_login(&auth).await;
    let err = auth
        .token(&ns, login("admin", "guess"), 60)
        .await
        .unwrap_err();
    assert_eq!(err.code(), micro_core::Code::Unauthorized);
}
