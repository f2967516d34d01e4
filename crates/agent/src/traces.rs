//! Traceroutes the service asks for, run beside the checks in tasks of
//! their own (never in their way), at most `TRACE_CONCURRENCY` at once.

use crate::api_client::labels;
use crate::trace_runner::{self, Outcome, Tracer};
use crate::{Agent, now_unix};
use api::TraceRequest;
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{info, warn};

/// Traceroutes waiting or running at most; more are left for the service
/// to hand out again.
const TRACES_QUEUED: usize = 16;

/// Requested traceroutes, run beside the checks (never in their way).
pub(crate) struct Traces {
    tracer: Tracer,
    pub(crate) tasks: JoinSet<()>,
    slots: Arc<Semaphore>,
    /// Targets being traced, so a request handed out again is not doubled.
    busy: Arc<Mutex<HashSet<IpAddr>>>,
    /// The "no tool" line was logged.
    warned: Arc<AtomicBool>,
}

impl Traces {
    pub(crate) fn new(tracer: Tracer) -> Traces {
        Traces {
            tracer,
            tasks: JoinSet::new(),
            slots: Arc::new(Semaphore::new(trace_runner::TRACE_CONCURRENCY)),
            busy: Arc::default(),
            warned: Arc::default(),
        }
    }
}

impl Agent {
    /// Start the traceroutes the service asked for: at most
    /// `TRACE_CONCURRENCY` at once, each within `TRACE_TIMEOUT`, in tasks of
    /// their own so the checks never wait for them. Refused addresses are
    /// never traced.
    pub(crate) fn start_traceroutes(&mut self, requests: &[TraceRequest]) {
        let family = self.cfg.family;
        for req in requests {
            let refused = |why: String| {
                warn!("{why}; traceroute skipped");
                metrics::counter!(
                    "poolwatch_agent_traceroutes_total",
                    labels(family, &[("result", "refused")])
                )
                .increment(1);
            };
            let target: IpAddr = match req.ip.parse() {
                Ok(ip) => ip,
                Err(_) => {
                    refused(format!("unreadable traceroute target {:?}", req.ip));
                    continue;
                }
            };
            if let Err(e) = self.cfg.policy.check(target) {
                refused(format!("no traceroute: {e}"));
                continue;
            }
            if !self.family_enabled(&target) {
                refused(format!(
                    "no traceroute to {target}: its address family is turned off"
                ));
                continue;
            }
            if self.traces.tasks.len() >= TRACES_QUEUED
                || !self
                    .traces
                    .busy
                    .lock()
                    .expect("not poisoned")
                    .insert(target)
            {
                tracing::debug!("traceroute to {target} already queued or too many queued");
                continue;
            }
            info!("traceroute to {target} requested: {}", req.reason);
            let t = &self.traces;
            let (tracer, slots, busy, warned) = (
                t.tracer.clone(),
                t.slots.clone(),
                t.busy.clone(),
                t.warned.clone(),
            );
            let (api, policy, source, ip) = (
                self.api.clone(),
                self.cfg.policy,
                self.cfg.source,
                req.ip.clone(),
            );
            self.traces.tasks.spawn(async move {
                let permit = slots.acquire_owned().await;
                let outcome = trace_runner::trace_one(
                    &tracer,
                    policy,
                    source,
                    &ip,
                    trace_runner::TRACE_TIMEOUT,
                    now_unix,
                )
                .await;
                drop(permit);
                metrics::counter!(
                    "poolwatch_agent_traceroutes_total",
                    labels(family, &[("result", outcome.label())])
                )
                .increment(1);
                let report = match outcome {
                    Outcome::Refused(why) => {
                        warn!("{why}; traceroute skipped");
                        None
                    }
                    Outcome::Ok(r) => {
                        info!(
                            "traceroute to {ip} with {}: {} hop(s)",
                            r.tool,
                            r.hops.len()
                        );
                        Some(r)
                    }
                    Outcome::Error(r) => {
                        let why = r.error.clone().unwrap_or_default();
                        match &tracer {
                            Tracer::Unavailable(_) => {
                                if !warned.swap(true, Ordering::Relaxed) {
                                    warn!("{why}");
                                }
                            }
                            Tracer::Tools(_) => warn!("traceroute to {ip} failed: {why}"),
                        }
                        Some(r)
                    }
                };
                if let Some(r) = report
                    && let Err(e) = api.submit_traceroute(&r).await
                {
                    warn!("cannot send the traceroute to {ip}: {e}");
                }
                busy.lock().expect("not poisoned").remove(&target);
            });
        }
    }
}
