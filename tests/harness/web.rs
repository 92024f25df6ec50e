//! Signing in to the dashboard and fetching its pages, as a browser does.
#![allow(dead_code)]

use reqwest::header;

use super::TestApp;

/// A browser without a cookie jar: cookies are passed by hand, redirects
/// are not followed, so each answer can be looked at.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

pub fn set_cookie(r: &reqwest::Response, name: &str) -> Option<(String, String)> {
    r.headers().get_all(header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
        let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
        let (n, value) = pair.split_once('=')?;
        (n == name).then(|| (value.to_owned(), attrs.to_owned()))
    })
}

/// The value of hidden field `name` in a page.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no field {name} in {html}")) + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

pub struct Signed {
    pub cookie: String,
    pub csrf: String,
}

/// Signs in with `token` through the form, as a browser would; the session
/// and the attributes its cookie was set with.
pub async fn sign_in(t: &TestApp, token: &str) -> (Signed, String) {
    let b = browser();
    let r = b.get(t.url("/login")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (login, _) = set_cookie(&r, "tocsin_login").expect("login cookie");
    let form_csrf = hidden(&r.text().await.unwrap(), "csrf");
    let r = b
        .post(t.url("/login"))
        .header(header::COOKIE, format!("tocsin_login={login}"))
        .form(&[("token", token), ("csrf", &form_csrf), ("next", "/now")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "sign-in refused");
    assert_eq!(r.headers()[header::LOCATION], "/now");
    let (session, attrs) = set_cookie(&r, "tocsin_session").expect("session cookie");
    let cookie = format!("tocsin_session={session}");
    let page = b.get(t.url("/now")).header(header::COOKIE, &cookie).send().await.unwrap().text().await.unwrap();
    (Signed { csrf: hidden(&page, "csrf"), cookie }, attrs)
}

pub async fn page(t: &TestApp, s: &Signed, path: &str) -> (u16, String) {
    let r = browser().get(t.url(path)).header(header::COOKIE, &s.cookie).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}
