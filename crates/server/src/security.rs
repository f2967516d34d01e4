//! Security headers on every answer (pages, JSON, the CSV log, errors) and
//! the server page's script, served from here so the pages need no inline
//! script.
//!
//! What the pages need, and so what the policy allows: one `<style>`
//! element per page (the server page's is built per monitor, so it cannot
//! be hashed ahead) and a `style` attribute: `style-src 'unsafe-inline'`;
//! the score chart is inline SVG in the page (no image loads); one script,
//! [`SERVER_PAGE_JS`], from this origin; the lookup form submits to this
//! origin. Everything else is refused: no other script, no plugin, no
//! frame, no `<base>`, no connection elsewhere.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// Where the server page's script is served.
pub const SERVER_PAGE_JS: &str = "/assets/server-page.js";
/// Where the pages' icon is served (linked from every page, so browsers
/// don't ask for a `/favicon.ico` that isn't there).
pub const FAVICON: &str = "/assets/icon.svg";

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; \
     img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the security headers to a response.
pub async fn headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        // Browsers must not guess a type: the CSV carries text monitors
        // control and is `text/plain`, never HTML or script.
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // For browsers without CSP `frame-ancestors`.
        (header::X_FRAME_OPTIONS, "DENY"),
        // Server addresses are in our paths; other sites need not see them.
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    resp
}

/// `GET /assets/server-page.js`: click a legend row to hide that monitor's
/// points; marks the section `data-script="ok"` once it ran (the browser
/// test reads that).
pub async fn server_page_js() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// `GET /assets/icon.svg`: a clock face.
pub async fn favicon() -> Response {
    asset("image/svg+xml", ICON)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        body,
    )
        .into_response()
}

const ICON: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\">\
<circle cx=\"8\" cy=\"8\" r=\"7\" fill=\"#fff\" stroke=\"#1f5fa8\" stroke-width=\"2\"/>\
<path d=\"M8 4v4l3 2\" fill=\"none\" stroke=\"#1f5fa8\" stroke-width=\"1.5\"/></svg>";

const SCRIPT: &str = "(function(){\
var sec=document.getElementById('history');if(!sec)return;\
var svg=sec.querySelector('svg.chart');\
sec.querySelectorAll('tr[data-monitor]').forEach(function(tr){\
tr.tabIndex=0;var id=tr.getAttribute('data-monitor');\
var g=svg?svg.querySelector('g.monitor[data-monitor=\"'+id+'\"]'):null;\
function t(){tr.classList.toggle('hidden');if(g)g.classList.toggle('hidden');}\
tr.addEventListener('click',t);\
tr.addEventListener('keydown',function(e){if(e.key==='Enter'||e.key===' '){e.preventDefault();t();}});});\
sec.setAttribute('data-script-monitors',String(svg?svg.querySelectorAll('g.monitor').length:0));\
sec.setAttribute('data-script','ok');})();";
