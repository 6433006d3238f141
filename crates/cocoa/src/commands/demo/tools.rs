//! The demo's tools, apart from its story: a tiny cookie browser for the
//! staff portal (CSRF and once-only form fields filled in as a person's
//! browser would send them) and a reader of the development outbox.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::Value;

/// A tiny browser for the staff portal: cookies, no redirects.
pub(super) struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: BTreeMap<String, String>,
}

/// A page the portal answered.
pub(super) struct Page {
    pub status: u16,
    pub location: String,
    pub body: String,
}

impl Browser {
    pub fn new(base: &str) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            base: base.to_owned(),
            cookies: BTreeMap::new(),
        })
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> anyhow::Result<Page> {
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let resp = req.header("cookie", cookie.join("; ")).send().await?;
        for v in resp.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap_or_default();
            let kv = v.split(';').next().unwrap_or_default();
            if let Some((k, val)) = kv.split_once('=') {
                if v.contains("Max-Age=0") {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.to_owned(), val.to_owned());
                }
            }
        }
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        Ok(Page {
            status,
            location,
            body: resp.text().await?,
        })
    }

    pub async fn get(&mut self, path: &str) -> anyhow::Result<Page> {
        let r = self.http.get(format!("{}{path}", self.base));
        self.send(r).await
    }

    /// Posts `form` with the CSRF token of the page at `from`.
    pub async fn submit(
        &mut self,
        from: &str,
        path: &str,
        form: &[(&str, &str)],
    ) -> anyhow::Result<Page> {
        let page = self.get(from).await?;
        let token = csrf(&page.body).with_context(|| format!("no CSRF field on {from}"))?;
        let mut f = form.to_vec();
        f.push(("csrf", &token));
        // The once-only token of the 「処理番号発行」 confirmation, when the
        // page has one.
        let once = hidden(&page.body, "form_token");
        if let Some(once) = &once {
            f.push(("form_token", once));
        }
        let r = self.http.post(format!("{}{path}", self.base)).form(&f);
        self.send(r).await
    }
}

fn csrf(html: &str) -> Option<String> {
    hidden(html, "csrf")
}

/// The value of the form field `name` of a page.
fn hidden(html: &str, name: &str) -> Option<String> {
    let field = format!("name=\"{name}\" value=\"");
    let at = html.find(&field)? + field.len();
    let rest = &html[at..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// The newest message in the outbox: (file name, recipient, body).
pub(super) fn newest_message(outbox: &Path) -> anyhow::Result<(String, String, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(outbox)
        .with_context(|| format!("reading {}", outbox.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let f = files.last().context("the outbox is empty")?;
    let msg: Value = serde_json::from_str(&std::fs::read_to_string(f)?)?;
    let field = |k: &str| msg[k].as_str().unwrap_or_default().to_owned();
    Ok((
        f.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        field("to"),
        field("body"),
    ))
}
