//! The monitors on `/manage/admin`: each found monitor's own check
//! settings (samples, sample interval, timeout, batch size), changed with
//! a CSRF-checked form through the same rules and audit entry as `poolwatch
//! admin monitor set`. Its agent takes them up at its next config refresh.

use super::admin_pages::{admin_actor, admin_only};
use super::auth::{CsrfForm, Operator, csrf_field, see_other};
use crate::admin::{AdminError, MonitorSettings, set_monitor_settings};
use crate::error::ApiError;
use crate::state::AppState;
use crate::web::html::PageError;
use axum::extract::State;
use axum::response::Response;
use maud::{Markup, html};
use store::MonitorRow;

/// The monitors whose name contains `q` (case-insensitive), with forms.
pub(super) async fn section(st: &AppState, op: &Operator, q: &str) -> Result<Markup, PageError> {
    let q = q.to_lowercase();
    let monitors: Vec<MonitorRow> = st
        .store()
        .list_monitors()
        .await?
        .into_iter()
        .filter(|m| m.name.to_lowercase().contains(&q))
        .collect();
    Ok(html! {
        h2 { "Monitors" }
        @if monitors.is_empty() { p.muted { "None." } }
        div.scroll { table {
            @for m in &monitors {
                tr {
                    td { (m.name) }
                    td { (m.status.as_str()) " · " (m.ip) }
                    td { code { (m.config.as_deref().unwrap_or("serve's defaults")) } }
                    td {
                        form method="post" action="/manage/admin/monitor" {
                            (csrf_field(op))
                            input type="hidden" name="name" value=(m.name);
                            input name="samples" size="3" placeholder="samples" aria-label="Samples (1–16)";
                            input name="sample_interval_ms" size="6" placeholder="interval ms" aria-label="Sample interval (ms)";
                            input name="timeout_ms" size="6" placeholder="timeout ms" aria-label="Timeout (ms)";
                            input name="batch_size" size="4" placeholder="batch" aria-label="Batch size (1–1000)";
                            label { input type="checkbox" name="clear" value="true"; " clear first" }
                            button type="submit" { "Set" }
                        }
                    }
                }
            }
        } }
    })
}

/// The form: empty fields leave a setting as it is.
#[derive(serde::Deserialize)]
pub struct MonitorForm {
    name: String,
    #[serde(default)]
    samples: String,
    #[serde(default)]
    sample_interval_ms: String,
    #[serde(default)]
    timeout_ms: String,
    #[serde(default)]
    batch_size: String,
    #[serde(default)]
    clear: Option<String>,
}

/// A field as a number, `None` when empty; 400 naming it otherwise.
fn number<T: std::str::FromStr>(field: &str, text: &str) -> Result<Option<T>, PageError> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    t.parse().map(Some).map_err(|_| {
        PageError(ApiError::bad_request(format!(
            "{field}: '{t}' is not a whole number"
        )))
    })
}

pub async fn monitor_post(
    State(st): State<AppState>,
    CsrfForm(op, f): CsrfForm<MonitorForm>,
) -> Result<Response, PageError> {
    admin_only(&op)?;
    let set = MonitorSettings {
        samples: number("samples", &f.samples)?,
        sample_interval_ms: number("sample_interval_ms", &f.sample_interval_ms)?,
        timeout_ms: number("timeout_ms", &f.timeout_ms)?,
        batch_size: number("batch_size", &f.batch_size)?,
    };
    let clear = f.clear.is_some();
    if set.is_empty() && !clear {
        return Err(PageError(ApiError::bad_request(
            "give a setting, or tick 'clear first'",
        )));
    }
    set_monitor_settings(st.store(), &f.name, set, clear, &admin_actor(&op), st.now())
        .await
        .map_err(|e| match e {
            AdminError::Usage(m) if m.starts_with("no monitor") => {
                PageError::not_found("no such monitor")
            }
            AdminError::Usage(m) => PageError(ApiError::bad_request(m)),
            AdminError::Store(e) => e.into(),
        })?;
    Ok(see_other(&format!(
        "/manage/admin?q={}",
        percent_encoding::utf8_percent_encode(&f.name, percent_encoding::NON_ALPHANUMERIC)
    )))
}
