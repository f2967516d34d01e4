//! The manage side: server operators sign in by e-mailed link, act for an
//! account (pages with a session, or `/api/v1/manage/…` with an account's
//! API token) and add and look after their servers. Every change checks
//! the CSRF token (pages) or the bearer token (API) first, refuses another
//! account's ids with 404, and writes the audit log in the same
//! transaction.

pub mod settings;
