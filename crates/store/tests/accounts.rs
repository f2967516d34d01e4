//! Users, e-mailed links, sessions, memberships, API tokens and the admin's
//! account actions, on SQLite and PostgreSQL.

mod common;

use common::TestDb;
use store::*;

const T0: i64 = 1_700_000_000;

both_backends!(
    first_signin_creates_account_and_link_is_single_use,
    expired_link_refused,
    signup_closed_refuses_unknown_but_not_members,
    account_names_from_address_are_unique,
    invite_adds_member_with_role,
    account_keeps_an_owner,
    sessions_expire_idle_and_absolute,
    session_picks_only_own_accounts,
    sign_out_everywhere,
    tokens_revoke_only_own_and_disabled_account_stops,
    token_last_use_written_once_a_minute,
    link_rate_count,
    admin_flags_search_and_move,
    housekeeping_deletes_expired_sessions_and_links,
);

fn h(s: &str) -> String {
    format!("{s:0>64}")
}

async fn link(s: &Store, token: &str, email: &str, purpose: LinkPurpose, expires: i64) {
    s.create_email_link(
        &NewLink {
            token_hash: h(token),
            email: email.into(),
            purpose,
            expires,
        },
        T0,
    )
    .await
    .unwrap();
}

/// Signs `email` in through a fresh sign-in link; the result.
async fn sign_in(s: &Store, token: &str, email: &str) -> SignedIn {
    link(s, token, email, LinkPurpose::SignIn, T0 + 900).await;
    s.consume_email_link(&h(token), SignupPolicy::Open, T0 + 10)
        .await
        .unwrap()
}

async fn first_signin_creates_account_and_link_is_single_use(db: &TestDb) {
    let s = &db.store;
    link(s, "a1", "Alice@Example.org", LinkPurpose::SignIn, T0 + 900).await;
    // Looking at a link uses nothing.
    for _ in 0..2 {
        let info = s.peek_email_link(&h("a1"), T0 + 60).await.unwrap().unwrap();
        assert_eq!(
            (info.purpose.as_str(), info.email.as_str()),
            ("signin", "alice@example.org")
        );
    }
    assert_eq!(
        s.peek_email_link(&h("a1"), T0 + 900).await.unwrap(),
        None,
        "expired"
    );
    let got = s
        .consume_email_link(&h("a1"), SignupPolicy::Open, T0 + 60)
        .await
        .unwrap();
    assert!(got.new_user);
    assert_eq!(got.user.email, "alice@example.org");
    assert_eq!(got.user.last_login, Some(T0 + 60));
    let acc = got.account_id.expect("an account made at first sign-in");
    let mine = s.memberships(got.user.id).await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].account_id, acc);
    assert_eq!(mine[0].account_name, "alice");
    assert_eq!(mine[0].role().unwrap(), Role::Owner);
    let log = s.audit_log(acc, 10).await.unwrap();
    assert_eq!(log[0].action, "account.create");
    assert_eq!(log[0].actor, "user:alice@example.org");
    // Used once: the same link again is refused and changes nothing.
    let again = s
        .consume_email_link(&h("a1"), SignupPolicy::Open, T0 + 61)
        .await;
    assert_eq!(
        s.peek_email_link(&h("a1"), T0 + 61).await.unwrap(),
        None,
        "used"
    );
    assert!(matches!(again, Err(StoreError::NotFound(_))), "{again:?}");
    // The next sign-in finds the same user and account, makes no other.
    let second = sign_in(s, "a2", "alice@example.org").await;
    assert!(!second.new_user);
    assert_eq!(second.user.id, got.user.id);
    assert_eq!(second.account_id, None);
    assert_eq!(s.memberships(got.user.id).await.unwrap().len(), 1);
}

async fn expired_link_refused(db: &TestDb) {
    let s = &db.store;
    link(s, "e1", "bob@example.org", LinkPurpose::SignIn, T0 + 900).await;
    let r = s
        .consume_email_link(&h("e1"), SignupPolicy::Open, T0 + 900)
        .await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    assert_eq!(s.user_by_email("bob@example.org").await.unwrap(), None);
    let r = s
        .consume_email_link(&h("unknown"), SignupPolicy::Open, T0)
        .await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
}

async fn signup_closed_refuses_unknown_but_not_members(db: &TestDb) {
    let s = &db.store;
    link(s, "c1", "carol@example.org", LinkPurpose::SignIn, T0 + 900).await;
    let r = s
        .consume_email_link(&h("c1"), SignupPolicy::Closed, T0 + 1)
        .await;
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    assert_eq!(s.user_by_email("carol@example.org").await.unwrap(), None);
    // The refusal rolled back: the link is still usable once signup opens.
    let ok = s
        .consume_email_link(&h("c1"), SignupPolicy::Open, T0 + 2)
        .await
        .unwrap();
    // A member signs in with signup closed.
    link(s, "c2", "carol@example.org", LinkPurpose::SignIn, T0 + 900).await;
    let again = s
        .consume_email_link(&h("c2"), SignupPolicy::Closed, T0 + 3)
        .await
        .unwrap();
    assert_eq!(again.user.id, ok.user.id);
    // An invited address may sign in while signup is closed (no account
    // of its own is made; the invitation link adds the membership).
    let acc = ok.account_id.unwrap();
    link(
        s,
        "i1",
        "dave@example.org",
        LinkPurpose::Invite {
            account_id: acc,
            role: Role::Member,
            invited_by: Some(ok.user.id),
            actor: "user:carol@example.org".into(),
        },
        T0 + 7 * 86_400,
    )
    .await;
    link(s, "d1", "dave@example.org", LinkPurpose::SignIn, T0 + 900).await;
    let dave = s
        .consume_email_link(&h("d1"), SignupPolicy::Closed, T0 + 4)
        .await
        .unwrap();
    assert_eq!(dave.account_id, None);
    assert!(s.memberships(dave.user.id).await.unwrap().is_empty());
}

async fn account_names_from_address_are_unique(db: &TestDb) {
    let s = &db.store;
    s.ensure_account("erin").await.unwrap();
    let a = sign_in(s, "n1", "erin@example.org").await;
    let b = sign_in(s, "n2", "erin@example.net").await;
    let name = |id| async move { s.account_info(id).await.unwrap().unwrap().name };
    assert_eq!(name(a.account_id.unwrap()).await, "erin-2");
    assert_eq!(name(b.account_id.unwrap()).await, "erin-3");
}

async fn invite_adds_member_with_role(db: &TestDb) {
    let s = &db.store;
    let owner = sign_in(s, "o1", "owner@example.org").await;
    let acc = owner.account_id.unwrap();
    link(
        s,
        "inv",
        "Frank@example.org",
        LinkPurpose::Invite {
            account_id: acc,
            role: Role::Member,
            invited_by: Some(owner.user.id),
            actor: "user:owner@example.org".into(),
        },
        T0 + 7 * 86_400,
    )
    .await;
    let frank = s
        .consume_email_link(&h("inv"), SignupPolicy::Closed, T0 + 6 * 86_400)
        .await
        .unwrap();
    assert_eq!(frank.account_id, Some(acc));
    let m = s.membership(frank.user.id, acc).await.unwrap().unwrap();
    assert_eq!(m.role().unwrap(), Role::Member);
    let members = s.members(acc).await.unwrap();
    let emails: Vec<_> = members.iter().map(|m| m.email.as_str()).collect();
    assert_eq!(emails, ["frank@example.org", "owner@example.org"]);
    let actions: Vec<_> = s
        .audit_log(acc, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["member.join", "member.invite", "account.create"]);
    // An invitation past its 7 days is refused.
    link(
        s,
        "late",
        "gina@example.org",
        LinkPurpose::Invite {
            account_id: acc,
            role: Role::Owner,
            invited_by: None,
            actor: "user:owner@example.org".into(),
        },
        T0 + 7 * 86_400,
    )
    .await;
    let r = s
        .consume_email_link(&h("late"), SignupPolicy::Open, T0 + 7 * 86_400 + 1)
        .await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
}

async fn account_keeps_an_owner(db: &TestDb) {
    let s = &db.store;
    let owner = sign_in(s, "k1", "kim@example.org").await;
    let acc = owner.account_id.unwrap();
    let actor = "user:kim@example.org";
    // The only owner can neither leave nor be demoted.
    let r = s.remove_member(acc, owner.user.id, actor, T0).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    let r = s
        .set_member_role(acc, owner.user.id, Role::Member, actor, T0)
        .await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    assert_eq!(s.members(acc).await.unwrap()[0].role, "owner");
    // With a second owner, the first may leave.
    link(
        s,
        "k2",
        "lee@example.org",
        LinkPurpose::Invite {
            account_id: acc,
            role: Role::Member,
            invited_by: None,
            actor: actor.into(),
        },
        T0 + 900,
    )
    .await;
    let lee = s
        .consume_email_link(&h("k2"), SignupPolicy::Open, T0 + 1)
        .await
        .unwrap();
    s.set_member_role(acc, lee.user.id, Role::Owner, actor, T0 + 2)
        .await
        .unwrap();
    s.remove_member(acc, owner.user.id, actor, T0 + 3)
        .await
        .unwrap();
    let left: Vec<_> = s.members(acc).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].email, "lee@example.org");
    let log = s.audit_log(acc, 1).await.unwrap();
    assert_eq!(log[0].action, "member.leave");
    // Another account's member, or no member: NotFound.
    let other = sign_in(s, "k3", "max@example.org").await;
    let r = s.remove_member(acc, other.user.id, actor, T0).await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
}

async fn sessions_expire_idle_and_absolute(db: &TestDb) {
    let s = &db.store;
    let u = sign_in(s, "s1", "sam@example.org").await;
    let lim = SessionLimits {
        idle_s: 3600,
        max_age_s: 3 * 3600,
    };
    s.create_session(&h("sess"), &h("csrf"), u.user.id, None, T0)
        .await
        .unwrap();
    let got = s
        .session(&h("sess"), lim, T0 + 1800)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.account_id, u.account_id, "the only account is picked");
    assert_eq!(got.email, "sam@example.org");
    assert_eq!(got.csrf_hash, h("csrf"));
    // Used every 50 minutes it lives on (idle counted from the last use) …
    for t in [T0 + 4800, T0 + 7800, T0 + 10_000] {
        assert!(
            s.session(&h("sess"), lim, t).await.unwrap().is_some(),
            "{t}"
        );
    }
    // … until its absolute age, then it is gone for good.
    assert!(
        s.session(&h("sess"), lim, T0 + 3 * 3600)
            .await
            .unwrap()
            .is_none()
    );
    assert!(s.session(&h("sess"), lim, T0 + 1).await.unwrap().is_none());
    // Unused for the idle time: gone.
    s.create_session(&h("idle"), &h("c2"), u.user.id, None, T0)
        .await
        .unwrap();
    assert!(
        s.session(&h("idle"), lim, T0 + 3600)
            .await
            .unwrap()
            .is_none()
    );
    assert!(s.session(&h("idle"), lim, T0 + 10).await.unwrap().is_none());
}

async fn session_picks_only_own_accounts(db: &TestDb) {
    let s = &db.store;
    let a = sign_in(s, "p1", "pat@example.org").await;
    let b = sign_in(s, "p2", "quinn@example.org").await;
    let other = b.account_id.unwrap();
    // Pat joins a second account: the session starts without a pick.
    link(
        s,
        "p3",
        "pat@example.org",
        LinkPurpose::Invite {
            account_id: other,
            role: Role::Member,
            invited_by: None,
            actor: "user:quinn@example.org".into(),
        },
        T0 + 900,
    )
    .await;
    s.consume_email_link(&h("p3"), SignupPolicy::Open, T0 + 1)
        .await
        .unwrap();
    let third = sign_in(s, "p4", "ray@example.org")
        .await
        .account_id
        .unwrap();
    s.create_session(&h("ps"), &h("pc"), a.user.id, None, T0)
        .await
        .unwrap();
    let lim = SessionLimits {
        idle_s: 3600,
        max_age_s: 7200,
    };
    assert_eq!(
        s.session(&h("ps"), lim, T0)
            .await
            .unwrap()
            .unwrap()
            .account_id,
        None
    );
    let r = s.pick_account(&h("ps"), third).await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    s.pick_account(&h("ps"), other).await.unwrap();
    assert_eq!(
        s.session(&h("ps"), lim, T0)
            .await
            .unwrap()
            .unwrap()
            .account_id,
        Some(other)
    );
}

async fn sign_out_everywhere(db: &TestDb) {
    let s = &db.store;
    let u = sign_in(s, "o1", "uma@example.org").await;
    let v = sign_in(s, "o2", "vic@example.org").await;
    for id in ["x1", "x2"] {
        s.create_session(&h(id), &h("c"), u.user.id, None, T0)
            .await
            .unwrap();
    }
    s.create_session(&h("y1"), &h("c"), v.user.id, None, T0)
        .await
        .unwrap();
    let lim = SessionLimits {
        idle_s: 3600,
        max_age_s: 7200,
    };
    s.delete_session(&h("x1")).await.unwrap();
    assert!(s.session(&h("x1"), lim, T0).await.unwrap().is_none());
    assert!(s.session(&h("x2"), lim, T0).await.unwrap().is_some());
    assert_eq!(s.delete_sessions_of(u.user.id).await.unwrap(), 1);
    assert!(s.session(&h("x2"), lim, T0).await.unwrap().is_none());
    assert!(
        s.session(&h("y1"), lim, T0).await.unwrap().is_some(),
        "others' stay"
    );
}

async fn tokens_revoke_only_own_and_disabled_account_stops(db: &TestDb) {
    let s = &db.store;
    let a = sign_in(s, "t1", "tess@example.org").await;
    let b = sign_in(s, "t2", "uri@example.org").await;
    let (acc, other) = (a.account_id.unwrap(), b.account_id.unwrap());
    let actor = "user:tess@example.org";
    let r = s.create_token(acc, "  ", &h("tk"), None, actor, T0).await;
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    let t = s
        .create_token(acc, "<b>ci</b>", &h("tk"), Some(a.user.id), actor, T0)
        .await
        .unwrap();
    let t2 = s
        .create_token(other, "theirs", &h("tk2"), None, "user:uri@example.org", T0)
        .await
        .unwrap();
    assert_eq!(s.tokens(acc).await.unwrap(), vec![t.clone()]);
    let auth = s.token_auth(&h("tk"), T0 + 5).await.unwrap().unwrap();
    assert_eq!((auth.account_id, auth.name.as_str()), (acc, "<b>ci</b>"));
    // Another account's token id: NotFound, and it still works.
    let r = s.revoke_token(acc, t2.id, actor, T0).await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    assert!(s.token_auth(&h("tk2"), T0).await.unwrap().is_some());
    // A disabled account's tokens stop; enabled again, they work.
    s.set_account_flags(
        &s.account_info(other).await.unwrap().unwrap().name,
        None,
        Some(true),
        "admin:root",
        T0,
    )
    .await
    .unwrap();
    assert!(s.token_auth(&h("tk2"), T0).await.unwrap().is_none());
    // Revoked: gone for good, listed with its date.
    s.revoke_token(acc, t.id, actor, T0 + 10).await.unwrap();
    assert!(s.token_auth(&h("tk"), T0 + 11).await.unwrap().is_none());
    assert_eq!(s.tokens(acc).await.unwrap()[0].revoked_on, Some(T0 + 10));
    let actions: Vec<_> = s
        .audit_log(acc, 2)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.action, e.subject))
        .collect();
    assert_eq!(
        actions,
        [
            ("token.revoke".to_string(), "<b>ci</b>".to_string()),
            ("token.create".to_string(), "<b>ci</b>".to_string())
        ]
    );
}

async fn token_last_use_written_once_a_minute(db: &TestDb) {
    let s = &db.store;
    let acc = sign_in(s, "l1", "lu@example.org").await.account_id.unwrap();
    s.create_token(acc, "ci", &h("lt"), None, "user:lu@example.org", T0)
        .await
        .unwrap();
    let last = async || s.tokens(acc).await.unwrap()[0].last_used;
    assert_eq!(last().await, None);
    s.token_auth(&h("lt"), T0 + 100).await.unwrap().unwrap();
    assert_eq!(last().await, Some(T0 + 100));
    s.token_auth(&h("lt"), T0 + 159).await.unwrap().unwrap();
    assert_eq!(
        last().await,
        Some(T0 + 100),
        "not rewritten within a minute"
    );
    s.token_auth(&h("lt"), T0 + 160).await.unwrap().unwrap();
    assert_eq!(last().await, Some(T0 + 160));
}

async fn link_rate_count(db: &TestDb) {
    let s = &db.store;
    for (i, t) in [T0 - 4000, T0 - 100, T0 - 10].into_iter().enumerate() {
        s.create_email_link(
            &NewLink {
                token_hash: h(&format!("r{i}")),
                email: "rate@example.org".into(),
                purpose: LinkPurpose::SignIn,
                expires: t + 900,
            },
            t,
        )
        .await
        .unwrap();
    }
    assert_eq!(
        s.count_links_since("RATE@example.org", T0 - 3600)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        s.count_links_since("other@example.org", T0 - 3600)
            .await
            .unwrap(),
        0
    );
    let r = s
        .create_email_link(
            &NewLink {
                token_hash: h("bad"),
                email: "not an address".into(),
                purpose: LinkPurpose::SignIn,
                expires: T0,
            },
            T0,
        )
        .await;
    assert!(
        matches!(r, Err(StoreError::Invalid(ref m)) if m.contains("email")),
        "{r:?}"
    );
}

async fn admin_flags_search_and_move(db: &TestDb) {
    let s = &db.store;
    common::seed_global(s).await;
    let a = sign_in(s, "m1", "wes@example.org")
        .await
        .account_id
        .unwrap();
    let b = sign_in(s, "m2", "xia@example.org")
        .await
        .account_id
        .unwrap();
    let srv = s
        .add_server(
            NewServer {
                ip: "192.0.2.7".parse().unwrap(),
                netspeed: 1000,
                account_id: Some(a),
                zones: vec!["@".into()],
            },
            T0,
        )
        .await
        .unwrap();
    s.set_account_flags("wes", Some(true), None, "admin:cli", T0)
        .await
        .unwrap();
    let info = s.account_info(a).await.unwrap().unwrap();
    assert!(info.is_admin && !info.disabled);
    let r = s
        .set_account_flags("nobody", Some(true), None, "admin:cli", T0)
        .await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    // By name, by member address; LIKE's own characters match literally.
    let hits = s.search_accounts("WES").await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!((hits[0].servers, hits[0].members), (1, 1));
    assert_eq!(s.search_accounts("xia@example").await.unwrap()[0].id, b);
    assert!(s.search_accounts("%").await.unwrap().is_empty());
    let hits = s.search_servers("192.0.2").await.unwrap();
    assert_eq!(hits[0].account_name.as_deref(), Some("wes"));
    s.move_server(srv.id, "xia", "admin:wes@example.org", T0 + 1)
        .await
        .unwrap();
    assert_eq!(
        s.search_servers("192.0.2.7").await.unwrap()[0].account_id,
        Some(b)
    );
    for acc in [a, b] {
        let log = s.audit_log(acc, 1).await.unwrap();
        assert_eq!(
            (log[0].action.as_str(), log[0].detail.as_str()),
            ("server.move", "wes → xia")
        );
    }
    let r = s.move_server(srv.id, "nobody", "admin:x", T0).await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    let r = s.move_server(9999, "wes", "admin:x", T0).await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
}

async fn housekeeping_deletes_expired_sessions_and_links(db: &TestDb) {
    let s = &db.store;
    let u = sign_in(s, "h1", "hal@example.org").await;
    let lim = SessionLimits {
        idle_s: 3600,
        max_age_s: 7200,
    };
    s.create_session(&h("old"), &h("c"), u.user.id, None, T0)
        .await
        .unwrap();
    s.create_session(&h("new"), &h("c"), u.user.id, None, T0 + 3000)
        .await
        .unwrap();
    assert_eq!(s.delete_expired_sessions(lim, T0 + 3600).await.unwrap(), 1);
    assert!(
        s.session(&h("new"), lim, T0 + 3600)
            .await
            .unwrap()
            .is_some()
    );
    link(s, "h2", "hal@example.org", LinkPurpose::SignIn, T0 + 5000).await;
    // "h1" expired at T0 + 900: deleted; "h2" not yet.
    assert_eq!(s.delete_old_links(T0 + 4000).await.unwrap(), 1);
    assert_eq!(s.count_links_since("hal@example.org", 0).await.unwrap(), 1);
}
