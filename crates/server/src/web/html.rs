//! The page frame and HTML responses. Pages are `maud` templates: every
//! interpolated value is escaped unless wrapped in `PreEscaped`.

use crate::error::ApiError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, PreEscaped, html};

/// Shared look: readable at phone width, wide tables scroll on their own.
const CSS: &str = "\
*{box-sizing:border-box}\
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d232a;background:#f6f7f9}\
header{background:#1f3b57;color:#fff;padding:.6em 1em;display:flex;flex-wrap:wrap;gap:1em;align-items:center}\
header a{color:#fff;text-decoration:none}header .brand{font-weight:700}\
main{max-width:1200px;margin:0 auto;padding:1em}\
h1{font-size:1.5em;margin:.3em 0}h2{font-size:1.15em;margin:1.2em 0 .4em}\
.scroll{overflow-x:auto}\
table{border-collapse:collapse;background:#fff;min-width:100%}\
th,td{padding:.3em .6em;border-bottom:1px solid #e3e6ea;text-align:left;white-space:nowrap}\
td.num,th.num{text-align:right}\
.ok{color:#1a7f37}.bad{color:#b42318}.muted{color:#667085}\
.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em;background:#fff;padding:.8em;margin:0}\
.facts dt{font-weight:600}.facts dd{margin:0}\
form.lookup{display:flex;gap:.5em;flex-wrap:wrap}form.lookup input{font:inherit;padding:.3em;min-width:16em}\
svg.chart{width:100%;height:auto;background:#fff;display:block}\
svg.chart text{font:11px system-ui,sans-serif;fill:#475467}\
svg.chart .grid{stroke:#eaecf0;stroke-width:1}\
svg.chart .threshold{stroke:#1a7f37;stroke-dasharray:6 4;stroke-width:1.2}\
svg.chart .dots{fill:none;stroke-linecap:round;stroke-width:4}\
svg.chart .offset.ok{stroke:#2e9d3a}svg.chart .offset.warn{stroke:#f08c00}svg.chart .offset.bad{stroke:#e0287d}\
svg.chart .score{stroke-width:3}\
svg.chart .score.up{stroke:#4682b4}svg.chart .score.down{stroke:#ff9f1a}svg.chart .score.fall{stroke:#483d8b}\
svg.chart .aggregate{fill:none;stroke:#111;stroke-width:1.6}\
svg.chart g.monitor{transition:opacity .15s}\
.legend tr[data-monitor]{cursor:pointer}.legend tr[data-monitor]:hover{background:#eef4ff}\
.legend tr.hidden{opacity:.45}\
svg.chart g.monitor.hidden{display:none}\
footer{max-width:1200px;margin:0 auto;padding:1em;color:#667085;font-size:.9em}\
@media (max-width:600px){svg.chart{min-width:640px}body{font-size:14px}main{padding:.5em}th,td{padding:.25em .4em}}";

/// A whole document around `body`. `head_extra` goes into `<head>`
/// (page-specific style).
pub fn page(title: &str, head_extra: Markup, body: Markup) -> String {
    let doc = html! {
        (PreEscaped("<!doctype html>\n"))
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                title { (title) " · poolwatch" }
                link rel="icon" type="image/svg+xml" href=(crate::security::FAVICON);
                // CSS is not HTML: a constant, kept as is.
                style { (PreEscaped(CSS)) }
                (head_extra)
            }
            body {
                header {
                    a.brand href="/" { "poolwatch" }
                    a href="/monitors" { "Monitors" }
                    a href="/manage" { "Manage" }
                    form.lookup action="/scores" method="get" role="search" {
                        input name="ip" placeholder="Server IP address" aria-label="Server IP address"
                            style="min-width:10em;padding:.2em";
                    }
                }
                main { (body) }
                footer {
                    "Times are UTC. Data: " a href="/api/v1/zones" { "zones" } " · "
                    a href="/api/v1/servers" { "servers" } " (JSON)."
                }
            }
        }
        "\n"
    };
    doc.into_string()
}

/// An HTML response with a cache lifetime in seconds.
pub fn respond(status: StatusCode, max_age: u32, doc: String) -> Response {
    let mut resp = (status, doc).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}, s-maxage={max_age}"))
    {
        h.insert(header::CACHE_CONTROL, v);
    }
    resp
}

/// A failed page, as HTML (the data API's errors are JSON; a browser
/// reader gets a page).
#[derive(Debug)]
pub struct PageError(pub ApiError);

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError(e)
    }
}

impl From<store::StoreError> for PageError {
    fn from(e: store::StoreError) -> Self {
        PageError(e.into())
    }
}

impl PageError {
    pub fn not_found(what: &'static str) -> Self {
        PageError(ApiError::not_found(what))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        // 500s are logged by ApiError's own conversion; keep the cause out
        // of the page.
        let detail = if status.is_server_error() {
            "Something went wrong on our side; try again in a minute.".to_string()
        } else {
            self.0.detail().to_string()
        };
        let title = status.canonical_reason().unwrap_or("Error");
        let body = html! {
            h1 { (title) }
            p { (detail) }
            p { a href="/" { "Back to the overview" } }
        };
        let max_age = if status.is_server_error() { 0 } else { 60 };
        let mut resp = respond(status, max_age, page(title, html! {}, body));
        if let Some(s) = self.0.retry_after_s() {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

/// `YYYY-MM-DD HH:MM` UTC.
pub fn minute(ts: i64) -> String {
    let mut s = crate::logfmt::timestamp(ts);
    s.truncate(16);
    s
}

/// "3 min ago"-style age for a timestamp.
pub fn ago(ts: i64, now: i64) -> String {
    let d = (now - ts).max(0);
    match d {
        0..=59 => format!("{d} s ago"),
        60..=5_999 => format!("{} min ago", d / 60),
        6_000..=172_799 => format!("{} h ago", d / 3600),
        _ => format!("{} days ago", d / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_special_character() {
        let m = html! { p title=("\"y\"") { ("<script>alert('x') & \"y\"</script>") } };
        assert_eq!(
            m.into_string(),
            "<p title=\"&quot;y&quot;\">&lt;script&gt;alert('x') &amp; &quot;y&quot;&lt;/script&gt;</p>"
        );
        let doc = page("<t>", html! {}, html! { "plain" });
        assert!(
            doc.contains("<title>&lt;t&gt; · poolwatch</title>"),
            "{doc}"
        );
        assert!(
            doc.starts_with("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
        );
    }

    #[test]
    fn ages() {
        for (d, want) in [
            (5, "5 s ago"),
            (120, "2 min ago"),
            (7200, "2 h ago"),
            (86_400 * 3, "3 days ago"),
            (-5, "0 s ago"),
        ] {
            assert_eq!(ago(1_000_000 - d, 1_000_000), want);
        }
    }
}
