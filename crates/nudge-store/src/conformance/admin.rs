//! Stories of admin users: sign-in credentials, the lock-out count, languages and sessions.

use super::ctx;
use crate::{LockOut, NewUser, Store, StoreError, User};
use jiff::{SignedDuration, Timestamp};
use nudge_core::{Email, Role};
use uuid::Uuid;

const POLICY: LockOut = LockOut {
    after_failures: 3,
    duration: SignedDuration::from_mins(15),
};

fn at(second: i64) -> Timestamp {
    ctx(second).at
}

async fn user(store: &dyn Store, email: &str, role: Role) -> User {
    store
        .create_user(NewUser {
            email: Email::parse(email).unwrap(),
            password_hash: format!("$argon2id$hash-of-{email}"),
            role,
        })
        .await
        .unwrap()
}

pub async fn users_are_found_for_sign_in_by_address_and_listed(store: &dyn Store) {
    assert!(store.list_users().await.unwrap().is_empty());
    let owner = user(store, "Owner@Example.com", Role::Owner).await;
    let viewer = user(store, "viewer@example.com", Role::Viewer).await;
    assert_eq!(owner.language, None);

    let found = store
        .user_credentials(&Email::parse("owner@EXAMPLE.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.user, owner);
    assert_eq!(found.password_hash, "$argon2id$hash-of-Owner@Example.com");
    assert_eq!((found.failed_sign_ins, found.locked_until), (0, None));
    let nobody = Email::parse("nobody@example.com").unwrap();
    assert!(store.user_credentials(&nobody).await.unwrap().is_none());

    assert_eq!(store.list_users().await.unwrap(), vec![owner, viewer]);
}

pub async fn failed_sign_ins_lock_a_user_out_until_cleared(store: &dyn Store) {
    let u = user(store, "editor@example.com", Role::Editor).await;
    let email = Email::parse("editor@example.com").unwrap();
    for second in 0..2 {
        let locked = store.record_failed_sign_in(u.id, POLICY, at(second));
        assert_eq!(locked.await.unwrap(), None);
    }
    let creds = store.user_credentials(&email).await.unwrap().unwrap();
    assert_eq!((creds.failed_sign_ins, creds.locked_until), (2, None));

    // The third failure locks for the policy's duration and starts counting again.
    let until = at(2) + SignedDuration::from_mins(15);
    let locked = store.record_failed_sign_in(u.id, POLICY, at(2)).await;
    assert_eq!(locked.unwrap(), Some(until));
    let creds = store.user_credentials(&email).await.unwrap().unwrap();
    assert_eq!(
        (creds.failed_sign_ins, creds.locked_until),
        (0, Some(until))
    );

    // A failure after the lock counts anew and keeps the lock's end.
    let locked = store.record_failed_sign_in(u.id, POLICY, at(3)).await;
    assert_eq!(locked.unwrap(), None);
    let creds = store.user_credentials(&email).await.unwrap().unwrap();
    assert_eq!(
        (creds.failed_sign_ins, creds.locked_until),
        (1, Some(until))
    );

    store.clear_failed_sign_ins(u.id).await.unwrap();
    let creds = store.user_credentials(&email).await.unwrap().unwrap();
    assert_eq!((creds.failed_sign_ins, creds.locked_until), (0, None));

    let unknown = store
        .record_failed_sign_in(Uuid::now_v7(), POLICY, at(4))
        .await;
    assert!(matches!(unknown, Err(StoreError::NotFound)));
}

pub async fn a_users_language_is_stored_and_cleared(store: &dyn Store) {
    let u = user(store, "admin@example.com", Role::Admin).await;
    let changed = store.set_user_language(u.id, Some("nl")).await.unwrap();
    assert_eq!(changed.language.as_deref(), Some("nl"));
    assert_eq!(store.list_users().await.unwrap(), vec![changed]);
    let cleared = store.set_user_language(u.id, None).await.unwrap();
    assert_eq!(cleared.language, None);
    let unknown = store.set_user_language(Uuid::now_v7(), Some("de")).await;
    assert!(matches!(unknown, Err(StoreError::NotFound)));
}

pub async fn sessions_are_created_found_with_their_user_touched_and_deleted(store: &dyn Store) {
    let u = user(store, "owner@example.com", Role::Owner).await;
    let u = store.set_user_language(u.id, Some("de")).await.unwrap();
    let created = store.create_session("hash-a", u.id, at(0)).await.unwrap();
    assert_eq!(created.user, u);
    assert_eq!((created.created_at, created.last_seen_at), (at(0), at(0)));
    assert_eq!(store.session("hash-a").await.unwrap(), Some(created));
    assert_eq!(store.session("hash-b").await.unwrap(), None);

    store.touch_session("hash-a", at(60)).await.unwrap();
    let seen = store.session("hash-a").await.unwrap().unwrap();
    assert_eq!((seen.created_at, seen.last_seen_at), (at(0), at(60)));

    store.delete_session("hash-a").await.unwrap();
    assert_eq!(store.session("hash-a").await.unwrap(), None);
    store.delete_session("hash-a").await.unwrap();

    let unknown = store.create_session("hash-c", Uuid::now_v7(), at(0)).await;
    assert!(matches!(unknown, Err(StoreError::NotFound)));
}

pub async fn expired_sessions_are_purged_by_idle_time_or_age(store: &dyn Store) {
    let u = user(store, "owner@example.com", Role::Owner).await;
    store.create_session("old", u.id, at(0)).await.unwrap();
    store.create_session("idle", u.id, at(100)).await.unwrap();
    store.create_session("fresh", u.id, at(100)).await.unwrap();
    store.touch_session("old", at(1000)).await.unwrap();
    store.touch_session("fresh", at(1000)).await.unwrap();

    // "old" is recent but too old in all; "idle" is young but was not seen for long.
    let purged = store
        .delete_expired_sessions(at(500), at(50))
        .await
        .unwrap();
    assert_eq!(purged, 2);
    assert!(store.session("old").await.unwrap().is_none());
    assert!(store.session("idle").await.unwrap().is_none());
    assert!(store.session("fresh").await.unwrap().is_some());
}
