//! A small driver of headless Chromium over the Chrome DevTools protocol,
//! for poolwatch's browser tests: the tests drive pages as a person would
//! (type into a field, click a button with the mouse, follow the page it
//! leads to) and read back what the browser holds (DOM, cookies, console
//! messages, screenshots), instead of only dumping a rendered DOM.
//!
//! One WebSocket to the browser, one page attached to it in flattened
//! mode (commands carry the page's `sessionId`). Calls are sequential:
//! each sends one command and reads messages until its answer, keeping the
//! events read meanwhile, so nothing runs in the background.
//!
//! ```text
//! let mut b = Browser::launch(Path::new("/usr/bin/chromium"), &profile_dir).await?;
//! b.goto("http://127.0.0.1:8080/").await?;
//! b.type_text("input[name=ip]", "192.0.2.1").await?;
//! b.click_and_wait("button[type=submit]").await?;
//! assert_eq!(b.eval("location.pathname").await?, "/scores/192.0.2.1");
//! b.screenshot(&out.join("server.png")).await?;
//! assert!(b.problems().is_empty());
//! ```

use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long one protocol call, a page load or a wait may take.
pub const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot start chromium: {0}")]
    Launch(String),
    #[error("devtools connection: {0}")]
    Socket(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("devtools {method}: {message}")]
    Protocol { method: String, message: String },
    #[error("timed out after {TIMEOUT:?} waiting for {0}")]
    Timeout(String),
    #[error("{0}")]
    Page(String),
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One headless Chromium with one page, killed when dropped.
pub struct Browser {
    _child: Child,
    ws: Socket,
    session: String,
    next_id: u64,
    events: VecDeque<Value>,
    problems: Vec<String>,
}

impl Browser {
    /// Starts `chromium` headless with a fresh profile in `profile` (an
    /// empty directory the caller owns) and opens a blank page of
    /// 1280×900 CSS pixels.
    pub async fn launch(chromium: &Path, profile: &Path) -> Result<Browser, Error> {
        let mut child = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .env("HOME", profile)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::Launch(format!("{}: {e}", chromium.display())))?;
        // Chromium says where its DevTools endpoint listens on stderr.
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| Error::Launch("no stderr".into()))?;
        let mut lines = BufReader::new(stderr).lines();
        let mut seen = Vec::new();
        let url = tokio::time::timeout(TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    return Some(url.trim().to_string());
                }
                seen.push(line);
            }
            None
        })
        .await
        .map_err(|_| Error::Timeout("chromium's DevTools address".into()))?
        .ok_or_else(|| {
            Error::Launch(format!("no DevTools address; stderr: {}", seen.join("\n")))
        })?;
        // Keep draining stderr so chromium never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let (ws, _) = tokio_tungstenite::connect_async(&url).await?;
        let mut b = Browser {
            _child: child,
            ws,
            session: String::new(),
            next_id: 0,
            events: VecDeque::new(),
            problems: Vec::new(),
        };
        let target = b
            .send(None, "Target.createTarget", json!({ "url": "about:blank" }))
            .await?;
        let target_id = str_of(&target, "targetId")?;
        let attached = b
            .send(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target_id, "flatten": true }),
            )
            .await?;
        b.session = str_of(&attached, "sessionId")?;
        for domain in [
            "Page.enable",
            "Runtime.enable",
            "Log.enable",
            "Network.enable",
        ] {
            b.call(domain, json!({})).await?;
        }
        b.set_viewport(1280, 900, false).await?;
        Ok(b)
    }

    /// One command to the page; its `result`.
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value, Error> {
        let session = self.session.clone();
        self.send(Some(&session), method, params).await
    }

    async fn send(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, Error> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws.send(Message::text(msg.to_string())).await?;
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let m = self.read(deadline, method).await?;
            if m.get("id").and_then(Value::as_u64) != Some(id) {
                self.keep(m);
                continue;
            }
            if let Some(e) = m.get("error") {
                return Err(Error::Protocol {
                    method: method.into(),
                    message: e.to_string(),
                });
            }
            return Ok(m.get("result").cloned().unwrap_or(Value::Null));
        }
    }

    async fn read(&mut self, deadline: tokio::time::Instant, what: &str) -> Result<Value, Error> {
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .map_err(|_| Error::Timeout(what.into()))?;
            match next {
                Some(Ok(Message::Text(t))) => {
                    return serde_json::from_str(&t).map_err(|e| Error::Protocol {
                        method: what.into(),
                        message: format!("bad JSON from chromium: {e}"),
                    });
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
                None => return Err(Error::Page("chromium closed the connection".into())),
            }
        }
    }

    /// An event read while waiting for something else: console messages,
    /// uncaught exceptions and logged errors are noted as problems, the rest kept for
    /// [`Browser::wait_event`].
    fn keep(&mut self, m: Value) {
        let method = m.get("method").and_then(Value::as_str).unwrap_or("");
        let p = &m["params"];
        match method {
            "Runtime.exceptionThrown" => self.problems.push(format!(
                "uncaught: {}",
                p["exceptionDetails"]["exception"]["description"]
                    .as_str()
                    .or(p["exceptionDetails"]["text"].as_str())
                    .unwrap_or("?")
            )),
            "Runtime.consoleAPICalled"
                if matches!(p["type"].as_str(), Some("error" | "assert")) =>
            {
                self.problems
                    .push(format!("console.{}: {}", p["type"], p["args"]));
            }
            // CSP violations, failed loads, mixed content.
            "Log.entryAdded" if p["entry"]["level"].as_str() == Some("error") => {
                self.problems.push(format!(
                    "log: {}",
                    p["entry"]["text"].as_str().unwrap_or("?")
                ));
            }
            _ => {}
        }
        if !method.is_empty() {
            self.events.push_back(m);
        }
    }

    /// Waits for the next event `method` (one read before this call counts),
    /// returning its `params`.
    pub async fn wait_event(&mut self, method: &str) -> Result<Value, Error> {
        if let Some(i) = self.events.iter().position(|e| e["method"] == method) {
            let e = self.events.remove(i).expect("index from position");
            return Ok(e["params"].clone());
        }
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let m = self.read(deadline, method).await?;
            if m["method"] == method {
                return Ok(m["params"].clone());
            }
            self.keep(m);
        }
    }

    fn forget_events(&mut self, method: &str) {
        self.events.retain(|e| e["method"] != method);
    }

    /// Loads `url` and waits for its `load` event; an HTTP error status
    /// still loads (the test reads the page), a network error does not.
    pub async fn goto(&mut self, url: &str) -> Result<(), Error> {
        self.forget_events("Page.loadEventFired");
        let r = self.call("Page.navigate", json!({ "url": url })).await?;
        if let Some(e) = r.get("errorText").and_then(Value::as_str) {
            return Err(Error::Page(format!("cannot load {url}: {e}")));
        }
        self.wait_event("Page.loadEventFired").await.map(drop)
    }

    /// The value of a JavaScript expression (awaited when a promise).
    pub async fn eval(&mut self, expression: &str) -> Result<Value, Error> {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
            )
            .await?;
        if let Some(e) = r.get("exceptionDetails") {
            return Err(Error::Page(format!("{expression}: {e}")));
        }
        Ok(r["result"].get("value").cloned().unwrap_or(Value::Null))
    }

    /// Polls `expression` until it is truthy; its value.
    pub async fn wait_for(&mut self, expression: &str) -> Result<Value, Error> {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let v = self.eval(expression).await?;
            if !matches!(v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("") {
                return Ok(v);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Timeout(expression.into()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The centre of the first element matching `selector`, scrolled into
    /// view, in CSS pixels of the viewport.
    async fn centre(&mut self, selector: &str) -> Result<(f64, f64), Error> {
        let js = format!(
            "(() => {{ const e = document.querySelector({sel}); if (!e) return null; \
             e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); \
             return [r.left + r.width / 2, r.top + r.height / 2]; }})()",
            sel = json!(selector)
        );
        match self.eval(&js).await? {
            Value::Array(xy) if xy.len() == 2 => {
                Ok((xy[0].as_f64().unwrap_or(0.0), xy[1].as_f64().unwrap_or(0.0)))
            }
            _ => Err(Error::Page(format!("no element matches {selector}"))),
        }
    }

    /// A left click with the mouse at the centre of `selector`, as a
    /// person makes it (the page sees mousedown, mouseup and click).
    pub async fn click(&mut self, selector: &str) -> Result<(), Error> {
        let (x, y) = self.centre(selector).await?;
        // (type, button, buttons held): a move there, then press and release.
        for (kind, button, buttons) in [
            ("mouseMoved", "none", 0),
            ("mousePressed", "left", 1),
            ("mouseReleased", "left", 0),
        ] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": x, "y": y, "button": button,
                        "buttons": buttons, "clickCount": 1 }),
            )
            .await?;
        }
        Ok(())
    }

    /// [`Browser::click`], then waits for the page it leads to to load.
    pub async fn click_and_wait(&mut self, selector: &str) -> Result<(), Error> {
        self.forget_events("Page.loadEventFired");
        self.click(selector).await?;
        self.wait_event("Page.loadEventFired").await.map(drop)
    }

    /// Clicks into `selector` and types `text` as keyboard input.
    pub async fn type_text(&mut self, selector: &str, text: &str) -> Result<(), Error> {
        self.click(selector).await?;
        self.call("Input.insertText", json!({ "text": text }))
            .await
            .map(drop)
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&mut self, path: &Path) -> Result<(), Error> {
        let r = self
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(str_of(&r, "data")?)
            .map_err(|e| Error::Page(format!("screenshot: {e}")))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::Page(format!("{dir:?}: {e}")))?;
        }
        std::fs::write(path, png).map_err(|e| Error::Page(format!("{path:?}: {e}")))
    }

    /// Emulates a viewport of `width`×`height` CSS pixels (`mobile`: a
    /// phone's, with touch-sized layout).
    pub async fn set_viewport(
        &mut self,
        width: u32,
        height: u32,
        mobile: bool,
    ) -> Result<(), Error> {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile }),
        )
        .await
        .map(drop)
    }

    /// Every cookie the browser holds for the page, as the protocol gives
    /// them (`name`, `value`, `httpOnly`, `secure`, `sameSite`, `expires`…).
    pub async fn cookies(&mut self) -> Result<Vec<Value>, Error> {
        let r = self.call("Network.getCookies", json!({})).await?;
        Ok(r["cookies"].as_array().cloned().unwrap_or_default())
    }

    /// Console messages, uncaught exceptions and browser log errors (a CSP
    /// violation, a failed load) seen so far.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// Reads what chromium sent since the last call, so that problems a
    /// page reports after loading are in [`Browser::problems`].
    pub async fn settle(&mut self) -> Result<(), Error> {
        // A round trip: everything sent before its answer has been read.
        self.eval("0").await.map(drop)
    }
}

fn str_of(v: &Value, key: &str) -> Result<String, Error> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| Error::Page(format!("no {key} in {v}")))
}
