//! The monitor's config as the service sets it: read at start, again
//! every `config_refresh` and after a refusal that suggests it changed;
//! what changed is logged and used from the next batch.

use crate::api_client::{ApiError, labels};
use crate::{Agent, AgentError, clock};
use api::MonitorConfig;
use std::time::Instant;
use tracing::{info, warn};

/// What differs between two configs, e.g. `samples 4 → 2`, for the log.
pub fn config_changes(old: &MonitorConfig, new: &MonitorConfig) -> Vec<String> {
    let mut out = Vec::new();
    let mut note = |what: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{what} {a} → {b}"));
        }
    };
    note("samples", old.samples.to_string(), new.samples.to_string());
    note(
        "sample interval (ms)",
        old.sample_interval_ms.to_string(),
        new.sample_interval_ms.to_string(),
    );
    note(
        "timeout (ms)",
        old.timeout_ms.to_string(),
        new.timeout_ms.to_string(),
    );
    note(
        "batch size",
        old.batch_size.to_string(),
        new.batch_size.to_string(),
    );
    note(
        "reference servers",
        old.reference_servers.join(" "),
        new.reference_servers.join(" "),
    );
    out
}

impl Agent {
    /// The config in hand, or a fresh one when it is `config_refresh` old
    /// (or was dropped by [`stale_config`](Self::stale_config)).
    pub(crate) async fn monitor_config(&mut self) -> Result<MonitorConfig, AgentError> {
        if let Some((m, at)) = &self.monitor
            && at.elapsed() < self.cfg.config_refresh
        {
            return Ok(m.clone());
        }
        let m = self.api.config().await?;
        match self.last_config.as_ref().map(|old| config_changes(old, &m)) {
            None => info!(
                "monitor {}: {} samples {} ms apart, timeout {} ms, batch size {}, {} reference server(s)",
                m.name,
                m.samples,
                m.sample_interval_ms,
                m.timeout_ms,
                m.batch_size,
                m.reference_servers.len()
            ),
            Some(changes) if !changes.is_empty() => info!(
                "monitor {}: config changed: {}; taken up from the next batch",
                m.name,
                changes.join(", ")
            ),
            Some(_) => {}
        }
        self.note_reference_servers(&m);
        self.monitor = Some((m.clone(), Instant::now()));
        Ok(m)
    }

    /// With no reference servers the clock check is off and this agent
    /// submits whatever its clock says: a gauge always, and a warning for
    /// each new config (at start, and when the service changes it), never
    /// on every check.
    fn note_reference_servers(&mut self, m: &MonitorConfig) {
        let disabled = m.reference_servers.is_empty();
        metrics::gauge!(
            "poolwatch_agent_clock_check_disabled",
            labels(self.cfg.family, &[])
        )
        .set(if disabled { 1.0 } else { 0.0 });
        if self.last_config.as_ref() != Some(m) {
            if disabled {
                warn!("{}", clock::DISABLED);
            }
            self.last_config = Some(m.clone());
        }
    }

    /// A refusal that may come from settings changed since the config
    /// was read (a batch too large, a conflict): read it again before the
    /// next batch instead of waiting for the refresh.
    pub(crate) fn stale_config(&mut self, e: &ApiError) {
        if matches!(
            e,
            ApiError::Rejected {
                status: 400 | 409,
                ..
            }
        ) {
            self.monitor = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_changes_name_each_field() {
        let old = MonitorConfig {
            name: "m".into(),
            ip: "192.0.2.1".into(),
            samples: 4,
            sample_interval_ms: 2000,
            timeout_ms: 3000,
            reference_servers: vec!["a".into()],
            batch_size: 10,
        };
        assert!(config_changes(&old, &old).is_empty());
        let new = MonitorConfig {
            samples: 2,
            batch_size: 3,
            ..old.clone()
        };
        assert_eq!(
            config_changes(&old, &new),
            ["samples 4 → 2", "batch size 10 → 3"]
        );
    }
}
