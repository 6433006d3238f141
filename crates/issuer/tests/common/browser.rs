//! A minimal browser for the portal tests: keeps cookies, follows no
//! redirects, posts forms with the page's CSRF token.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;

use super::Harness;

/// A minimal browser: keeps cookies, follows no redirects.
pub struct Browser {
    pub base: String,
    pub http: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
    pub last_set_cookie: Vec<String>,
}

pub struct Page {
    pub status: u16,
    pub location: String,
    pub body: String,
}

impl Browser {
    pub fn new(h: &Harness) -> Self {
        Self {
            base: h.base.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
            last_set_cookie: Vec::new(),
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn send(&mut self, r: reqwest::RequestBuilder) -> Page {
        let resp = r
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.last_set_cookie.clear();
        for v in resp.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap().to_owned();
            let (kv, _) = v.split_once(';').unwrap_or((&v, ""));
            let (k, val) = kv.split_once('=').unwrap();
            if v.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), val.to_owned());
            }
            self.last_set_cookie.push(v);
        }
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned())
            .unwrap_or_default();
        Page {
            status,
            location,
            body: resp.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let r = self.http.get(format!("{}{path}", self.base));
        self.send(r).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let r = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(r).await
    }

    /// Posts `form` with the CSRF token of the page at `from`.
    pub async fn submit(&mut self, from: &str, path: &str, form: &[(&str, &str)]) -> Page {
        let page = self.get(from).await;
        let token = csrf(&page.body);
        let once = hidden(&page.body, "form_token");
        let mut f = form.to_vec();
        f.push(("csrf", &token));
        if let Some(once) = &once {
            f.push(("form_token", once));
        }
        self.post(path, &f).await
    }

    pub async fn login(&mut self, login: &str, password: &str) -> Page {
        self.submit(
            "/portal/login",
            "/portal/login",
            &[("login", login), ("password", password)],
        )
        .await
    }

    /// Posts `file` as the `file` field of a `multipart/form-data` form
    /// with the CSRF token `csrf`.
    pub async fn upload(&mut self, path: &str, csrf: &str, file: &[u8]) -> Page {
        let boundary = "cocoa-test-boundary-7d1e";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cases.csv\"\r\n\
             Content-Type: text/csv\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(file);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body);
        self.send(r).await
    }

    /// Another tab of the same browser (the same cookies).
    pub fn tab(&self) -> Self {
        Self {
            base: self.base.clone(),
            http: self.http.clone(),
            cookies: self.cookies.clone(),
            last_set_cookie: Vec::new(),
        }
    }

    pub fn sid(&self) -> Option<String> {
        self.cookies.get("cocoa_sid").cloned()
    }
}

pub fn hidden(html: &str, name: &str) -> Option<String> {
    let field = format!("name=\"{name}\" value=\"");
    let at = html.find(&field)? + field.len();
    let rest = &html[at..];
    Some(rest[..rest.find('"')?].to_owned())
}

pub fn csrf(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field");
    let rest = &html[at + 19..];
    rest[..rest.find('"').unwrap()].to_owned()
}
