//! Alerts with evidence: when a server's score falls below 10 its account
//! hears about it by e-mail and/or webhook, with what each monitor saw and
//! their traceroutes; reminders while it stays down, a notice when it is
//! back. [`policy`] decides (pure), [`message`] words it, `send` delivers,
//! and [`run_alert_pass`] ties them to the store, once per `--alert-check`.
//!
//! Delivery: each due alert goes to every channel the account has (the
//! e-mail address when `--smtp-url` is set, the webhook). Every attempt is
//! recorded in the `alerts` table with its outcome. The alert counts as
//! sent when at least one channel delivered it; a channel that failed is
//! not retried on its own. When every channel failed, the state is left as
//! it was and the alert is tried again on the first pass after
//! `min_interval` (attempts count for the interval too).

pub mod message;
pub mod policy;
mod send;
pub(crate) mod settings;

pub use message::AlertMessage;
pub use policy::{AlertPolicy, Decision, Input, after_sent, decide};
pub use send::{Mailer, SmtpTls, SmtpUrl, parse_from, post_webhook, webhook_client};
pub use settings::AlertConfig;

use crate::jobs::{Job, JobName};
use crate::state::AppState;
use std::net::IpAddr;
use store::{AlertChannel, AlertKind, AlertTarget, NewAlert, StoreError};
use tokio_util::sync::CancellationToken;

/// The alerter's connections: an HTTP client and, with `smtp`, a mailer.
#[derive(Debug, Clone)]
pub struct Alerter {
    cfg: AlertConfig,
    http: reqwest::Client,
    mailer: Option<Mailer>,
}

impl Alerter {
    /// Checks the configuration (see [`AlertConfig::check`]). Says once in
    /// the log when e-mail is off.
    pub fn new(cfg: AlertConfig) -> Result<Alerter, String> {
        cfg.check().map_err(|(_, msg)| msg)?;
        let mailer = match (&cfg.smtp, &cfg.from) {
            (Some(smtp), Some(from)) => Some(Mailer::new(
                smtp,
                cfg.smtp_ca.as_deref(),
                from,
                cfg.send_timeout,
            )?),
            _ => {
                tracing::info!("alert e-mail is off (no --smtp-url); alerts go to webhooks only");
                None
            }
        };
        Ok(Alerter {
            http: send::webhook_client(cfg.send_timeout),
            mailer,
            cfg,
        })
    }

    pub fn config(&self) -> &AlertConfig {
        &self.cfg
    }
}

/// One alert a pass decided on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassAlert {
    pub server_id: i64,
    pub ip: IpAddr,
    pub kind: AlertKind,
    /// At least one channel delivered it.
    pub delivered: bool,
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Servers looked at (their account can be reached).
    pub checked: usize,
    pub alerts: Vec<PassAlert>,
}

/// The channels an alert about `t` goes to now.
fn channels(t: &AlertTarget, email_on: bool) -> Vec<(AlertChannel, String)> {
    let mut out = Vec::new();
    if let (true, Some(e)) = (email_on, &t.email) {
        out.push((AlertChannel::Email, e.clone()));
    }
    if let Some(w) = &t.webhook {
        out.push((AlertChannel::Webhook, w.clone()));
    }
    out
}

/// Look at every server whose account can be reached, and send what the
/// policy says is due at `now`. Servers scheduled for deletion are left
/// alone. A store error stops the pass; a failed delivery does not.
pub async fn run_alert_pass(
    state: &AppState,
    alerter: &Alerter,
    now: i64,
) -> Result<PassReport, StoreError> {
    let store = state.store();
    let cfg = &alerter.cfg;
    let mut report = PassReport::default();
    for t in store.alert_targets().await? {
        let chans = channels(&t, alerter.mailer.is_some());
        if chans.is_empty() || t.deletion_on.is_some() {
            continue;
        }
        report.checked += 1;
        let d = decide(
            &Input {
                score: t.score,
                scored: t.score_ts.is_some(),
                state: t.state.as_ref(),
                last_attempt_at: t.last_attempt_at,
            },
            &cfg.policy,
            now,
        );
        let Some(kind) = d.send else {
            if let Some(s) = &d.state
                && d.state != t.state
            {
                store.save_alert_state(t.server_id, s).await?;
            }
            continue;
        };
        let down_since = d.state.as_ref().and_then(|s| s.down_since);
        let since = match kind {
            AlertKind::Recovered => now,
            _ => down_since.unwrap_or(now).min(now),
        } - 86_400;
        let evidence = store.alert_evidence(t.server_id, since).await?;
        let reminder = d.state.as_ref().map(|s| s.reminders + 1);
        let msg = AlertMessage::new(
            kind,
            &t,
            &evidence,
            &cfg.public_url,
            down_since,
            reminder,
            now,
        );
        let mut delivered = false;
        for (channel, target) in chans {
            let (body, result) = match channel {
                AlertChannel::Email => {
                    let (subject, text) = (msg.subject(), msg.text());
                    let mailer = alerter.mailer.as_ref().expect("email only with a mailer");
                    let r = mailer.send(&target, &subject, &text).await;
                    (format!("Subject: {subject}\n\n{text}"), r)
                }
                AlertChannel::Webhook => {
                    let body = msg.json();
                    let r = send::post_webhook(&alerter.http, &target, kind.as_str(), body.clone())
                        .await;
                    (body, r)
                }
            };
            let ok = result.is_ok();
            delivered |= ok;
            state.metrics().alert(
                kind.as_str(),
                channel.as_str(),
                if ok { "ok" } else { "error" },
            );
            match &result {
                Ok(()) => tracing::info!(
                    server = %t.ip, account = %t.account, kind = %kind, channel = %channel,
                    "alert sent"
                ),
                Err(e) => tracing::warn!(
                    server = %t.ip, account = %t.account, kind = %kind, channel = %channel,
                    error = %e, "alert not delivered"
                ),
            }
            store
                .record_alert(&NewAlert {
                    server_id: t.server_id,
                    ts: now,
                    kind,
                    channel,
                    target,
                    ok,
                    error: result.err(),
                    body,
                })
                .await?;
        }
        let new_state = if delivered {
            Some(after_sent(d.state, kind, now))
        } else {
            d.state
        };
        if let Some(s) = &new_state {
            store.save_alert_state(t.server_id, s).await?;
        }
        report.alerts.push(PassAlert {
            server_id: t.server_id,
            ip: t.ip,
            kind,
            delivered,
        });
    }
    Ok(report)
}

/// The alerter as a background job of `serve`.
pub fn job(state: AppState, alerter: Alerter) -> Job {
    Job::new(JobName::Alerts, move |stop| {
        run_alerts(state.clone(), alerter.clone(), stop)
    })
}

/// Run [`run_alert_pass`] every `check_every` until `stop`.
pub async fn run_alerts(
    state: AppState,
    alerter: Alerter,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(alerter.cfg.check_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        if let Err(e) = run_alert_pass(&state, &alerter, state.now()).await {
            tracing::warn!(error = %e, "alert pass failed");
        }
    }
}
