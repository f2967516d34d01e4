//! Live checks the service asks for when an operator adds a server: each
//! request is checked once, with the same check and the same target policy
//! as the work (a lab agent refuses public addresses), in a task of its
//! own so the batches never wait, and the best sample goes back to
//! `POST api::LIVE_CHECK_PATH`. A request the agent will not check (the
//! policy refuses it, its family is off) is answered with why, so the
//! operator's page shows it instead of waiting for the check to expire.
//! Failures are logged; the loop never stops for them.

use crate::api_client::Api;
use api::{LiveCheckReport, LiveCheckRequest};
use ntp::{CheckConfig, TargetPolicy};
use std::net::{IpAddr, SocketAddr};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Live checks running at most; more are answered "busy" rather than
/// queued (the service asks each monitor once per check).
const MAX_RUNNING: usize = 8;

/// What the checks need from the agent's settings.
#[derive(Clone, Copy)]
pub(crate) struct Target {
    pub policy: TargetPolicy,
    pub port: u16,
    pub ipv4: bool,
    pub ipv6: bool,
}

/// The running live checks.
#[derive(Default)]
pub(crate) struct LiveChecks {
    pub tasks: JoinSet<()>,
}

impl LiveChecks {
    /// Start one task per request.
    pub fn start(
        &mut self,
        api: &Api,
        target: Target,
        cfg: &CheckConfig,
        requests: &[LiveCheckRequest],
        stop: &CancellationToken,
    ) {
        while self.tasks.try_join_next().is_some() {}
        for req in requests {
            let Ok(ip) = req.ip.parse::<IpAddr>() else {
                warn!(
                    "service sent an unreadable live check address {:?}; skipped",
                    req.ip
                );
                continue;
            };
            let refused = refusal(target, ip, self.tasks.len());
            let (api, cfg, stop, id) = (api.clone(), *cfg, stop.clone(), req.id.clone());
            self.tasks.spawn(async move {
                let report = match refused {
                    Some(why) => {
                        warn!("live check {id} of {ip} not made: {why}");
                        not_checked(id, ip, &why)
                    }
                    None => {
                        let addr = SocketAddr::new(ip, target.port);
                        let r = ntp::check_until(
                            ip.to_string(),
                            addr,
                            &cfg,
                            stop.clone().cancelled_owned(),
                        )
                        .await;
                        if stop.is_cancelled() {
                            return;
                        }
                        from_result(id, crate::result_item(ip, "", &r))
                    }
                };
                let outcome = match (&report.stratum, &report.error) {
                    (_, Some(e)) => format!("error {e}"),
                    (Some(s), None) => format!("stratum {s}"),
                    (None, None) => "no stratum".into(),
                };
                match api.submit_live_check(&report).await {
                    Ok(()) => info!("live check {} of {ip}: {outcome}", report.id),
                    Err(e) => warn!("cannot send live check {} of {ip}: {e}", report.id),
                }
            });
        }
    }
}

/// Why this agent will not check `ip`, if it will not.
fn refusal(t: Target, ip: IpAddr, running: usize) -> Option<String> {
    if let Err(e) = t.policy.check(ip) {
        return Some(e.to_string());
    }
    let family_on = match ip {
        IpAddr::V4(_) => t.ipv4,
        IpAddr::V6(_) => t.ipv6,
    };
    if !family_on {
        return Some("this monitor has its address family turned off".into());
    }
    (running >= MAX_RUNNING).then(|| "this monitor is busy with other live checks".into())
}

fn not_checked(id: String, ip: IpAddr, why: &str) -> LiveCheckReport {
    // The service takes at most 256 bytes of error.
    let mut error = format!("not checked: {why}");
    while error.len() > 256 {
        error.pop();
    }
    LiveCheckReport {
        id,
        ip,
        ts: crate::now_unix(),
        offset: None,
        rtt: None,
        stratum: None,
        leap: None,
        refid: None,
        error: Some(error),
        no_response: false,
    }
}

fn from_result(id: String, r: api::CheckResult) -> LiveCheckReport {
    LiveCheckReport {
        id,
        ip: r.ip,
        ts: r.ts,
        offset: r.offset,
        rtt: r.rtt,
        stratum: r.stratum,
        leap: r.leap,
        refid: r.refid,
        error: r.error,
        no_response: r.no_response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_policy_and_families_refuse_with_a_reason() {
        let lab = Target {
            policy: TargetPolicy::Lab,
            port: 123,
            ipv4: true,
            ipv6: false,
        };
        assert_eq!(refusal(lab, "10.0.0.1".parse().unwrap(), 0), None);
        assert!(refusal(lab, "8.8.8.8".parse().unwrap(), 0).is_some());
        assert!(
            refusal(lab, "fd00::1".parse().unwrap(), 0)
                .unwrap()
                .contains("family")
        );
        assert!(
            refusal(lab, "10.0.0.1".parse().unwrap(), MAX_RUNNING)
                .unwrap()
                .contains("busy")
        );
        let r = not_checked("7".into(), "192.0.2.1".parse().unwrap(), &"x".repeat(400));
        assert!(r.error.as_ref().unwrap().len() <= 256 && r.stratum.is_none());
    }
}
