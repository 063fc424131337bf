//! The dashboard's door: the session cookie, the CSRF token of every form, the language of the
//! page, and the gate every dashboard route sits behind.
//!
//! The gate decides through [`Auth::admit`] — the API's role matrix, with the session cookie
//! as the credential — and only turns its refusals into what a browser needs: an anonymous
//! request (or an expired session) is redirected to the login form, a forbidden one gets a 403
//! page (audited by `admit`). Every `POST` carries a CSRF token in its form: for a person with
//! a session, a keyed hash of the session token (which only the HttpOnly cookie holds); for the
//! login form, a random double-submit cookie. A missing or wrong token is a 403, audited.
//!
//! This module must not decide who may do what (the role matrix does), and it never logs or
//! shows a token: the audit log names a session by its hash prefix only.

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};

use super::Web;
use crate::coordinator::auth::{
    Principal, Refusal, UI_DRILL_REPORT_PATH, UI_LOGIN_PATH, UI_QUARTERLY_PATH,
};
use crate::i18n::Lang;
use crate::secret::Secret;

/// The cookie that carries the session token (an ordinary people session).
pub const SESSION_COOKIE: &str = "lifeboat_session";
/// The cookie that remembers the language chosen with `?lang=`.
pub const LANG_COOKIE: &str = "lang";
/// The double-submit cookie of the login form (there is no session yet to key a token on).
pub const LOGIN_CSRF_COOKIE: &str = "lifeboat_login_csrf";
/// The form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf";
/// Pages are documents with forms: their own inline styles, no script, no frame, no other origin.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The value of cookie `name` in a request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value: `Path=/`, `SameSite=Strict`, `HttpOnly` unless it is the language,
/// `Secure` over TLS; `max_age` seconds, `0` to delete it.
pub fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> Option<HeaderValue> {
    let http_only = if name == LANG_COOKIE {
        ""
    } else {
        "; HttpOnly"
    };
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; SameSite=Strict; Max-Age={max_age}{http_only}{secure}"
    ))
    .ok()
}

/// The CSRF token of the forms of a session: a domain-separated hash of the session token.
/// Only the session's owner can know it (the cookie is HttpOnly and SameSite=Strict), it needs
/// no server state (every coordinator replica computes the same), and the store, which keeps a
/// different hash of the token, cannot derive it.
pub fn csrf_token(session: &Secret) -> String {
    let mut h = Sha256::new();
    h.update(b"lifeboat dashboard csrf\0");
    h.update(session.expose().as_bytes());
    hex::encode(h.finalize())
}

/// A fresh random value for the login form's double-submit cookie.
pub fn login_csrf() -> String {
    // uuid v4: 122 bits from the operating system's CSPRNG.
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Equality that takes as long whatever the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The language of a request: `?lang=`, else the `lang` cookie, else `Accept-Language`,
/// else English. The second value is the `?lang=` choice, to remember in the cookie.
pub fn choose_lang(parts: &Parts) -> (Lang, Option<Lang>) {
    let asked = parts.uri.query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "lang")
            .and_then(|(_, v)| Lang::from_tag(&v))
    });
    let lang = asked
        .or_else(|| cookie(&parts.headers, LANG_COOKIE).and_then(|v| Lang::from_tag(&v)))
        .or_else(|| {
            parts
                .headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(Lang::from_accept_language)
        })
        .unwrap_or_default();
    (lang, asked)
}

/// The fields of a `POST`ed form, read by the gate (which checks its CSRF token) and handed to
/// the handler.
#[derive(Debug, Clone, Default)]
pub struct Form(pub Vec<(String, String)>);

impl Form {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What every page needs to know of its request: the language, the person (none on the login
/// page), the CSRF token for its forms, and its own path (for the language switch).
#[derive(Debug, Clone)]
pub struct Ctx {
    pub lang: Lang,
    pub me: Option<Principal>,
    pub csrf: String,
    pub path: String,
    /// Pages are served over TLS (cookies are then `Secure`).
    pub secure: bool,
}

impl Ctx {
    /// Whether the person has at least `role`.
    pub fn at_least(&self, role: crate::coordinator::store::Role) -> bool {
        self.me.as_ref().is_some_and(|p| p.role >= role)
    }

    pub fn t<'a>(&self, en: &'a str, zh: &'a str) -> &'a str {
        self.lang.pick(en, zh)
    }
}

impl FromRequestParts<Web> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, web: &Web) -> Result<Self, Self::Rejection> {
        let (lang, _) = choose_lang(parts);
        let me = parts.extensions.get::<Principal>().cloned();
        let csrf = parts
            .extensions
            .get::<CsrfToken>()
            .map(|t| t.0.clone())
            .unwrap_or_default();
        Ok(Ctx {
            lang,
            me,
            csrf,
            path: parts.uri.path().to_string(),
            secure: web.secure_cookies,
        })
    }
}

/// The CSRF token a page's forms carry, put in the request by the gate.
#[derive(Debug, Clone)]
pub struct CsrfToken(pub String);

/// The most a dashboard form may hold.
pub const MAX_FORM: usize = 16 << 10;

/// The middleware in front of every dashboard route (see the module documentation).
pub async fn gate(
    State(web): State<Web>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let route = matched.as_ref().map_or("", MatchedPath::as_str).to_string();
    let (mut parts, body) = request.into_parts();
    let (lang, asked) = choose_lang(&parts);
    let session = cookie(&parts.headers, SESSION_COOKIE).map(Secret::new);
    let admitted = web.auth.admit(&parts.method, &route, session.clone()).await;
    let me = match admitted {
        Ok(me) => me,
        Err(Refusal::Unauthenticated(_)) => return to_login(&parts, web.secure_cookies),
        Err(Refusal::Forbidden(f)) => {
            return super::layout::refusal(lang, StatusCode::FORBIDDEN, &f.body.message);
        }
        Err(Refusal::Unlisted(f)) => {
            return super::layout::refusal(lang, f.status, &f.body.message);
        }
    };
    // The form's token: keyed on the session, or the login form's double-submit cookie.
    let expected = match (&me, &session) {
        (Some(_), Some(s)) => Some(csrf_token(s)),
        _ => cookie(&parts.headers, LOGIN_CSRF_COOKIE),
    };
    let mut request = if parts.method == Method::POST {
        let bytes = match axum::body::to_bytes(body, MAX_FORM).await {
            Ok(b) => b,
            Err(_) => {
                return super::layout::refusal(
                    lang,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "the form is too large",
                );
            }
        };
        let form = Form(
            url::form_urlencoded::parse(&bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        );
        let sent = form.get(CSRF_FIELD).unwrap_or("");
        if !expected.as_deref().is_some_and(|e| same(e, sent)) {
            let actor = me
                .as_ref()
                .map_or("anonymous".to_string(), Principal::actor);
            web.auth
                .audit(
                    &actor,
                    "ui.csrf-refused",
                    &format!("POST {route}"),
                    serde_json::json!({ "token_sent": !sent.is_empty() }),
                )
                .await;
            return super::layout::refusal(
                lang,
                StatusCode::FORBIDDEN,
                lang.pick(
                    "the form's security token is missing or wrong: reload the page and try again",
                    "表单安全令牌缺失或错误：请刷新页面后重试",
                ),
            );
        }
        parts.extensions.insert(form);
        Request::from_parts(parts, axum::body::Body::empty())
    } else {
        Request::from_parts(parts, body)
    };
    if let Some(token) = expected {
        request.extensions_mut().insert(CsrfToken(token));
    }
    if let Some(me) = me {
        request.extensions_mut().insert(me);
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    // A report's `lang` is the report's language, not a choice for the dashboard.
    if let Some(lang) =
        asked.filter(|_| route != UI_QUARTERLY_PATH && route != UI_DRILL_REPORT_PATH)
        && let Some(v) = set_cookie(LANG_COOKIE, lang.tag(), 365 * 86_400, web.secure_cookies)
    {
        headers.append(header::SET_COOKIE, v);
    }
    response
}

/// 303 to the login form, which brings the person back to where they were going (a `GET`
/// page; after a refused `POST`, the home page). A stale session cookie is deleted.
fn to_login(parts: &Parts, secure: bool) -> Response {
    let back = if parts.method == Method::GET {
        parts
            .uri
            .path_and_query()
            .map_or("/ui", |p| p.as_str())
            .to_string()
    } else {
        "/ui".to_string()
    };
    let target = format!(
        "{UI_LOGIN_PATH}?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("next", &back)
            .finish()
    );
    let mut response = Redirect::to(&target).into_response();
    if cookie(&parts.headers, SESSION_COOKIE).is_some()
        && let Some(v) = set_cookie(SESSION_COOKIE, "", 0, secure)
    {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// Where a login may send the person back to: a dashboard path only, never another site.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/ui") && !n.contains("//") && !n.contains('\\') => n.to_string(),
        _ => "/ui".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = axum::http::Request::builder().uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn the_language_comes_from_the_query_then_the_cookie_then_the_browser() {
        let table = [
            ("/ui?lang=zh-CN", vec![], Lang::ZhCn, Some(Lang::ZhCn)),
            (
                "/ui?lang=en",
                vec![("cookie", "lang=zh-CN")],
                Lang::En,
                Some(Lang::En),
            ),
            ("/ui", vec![("cookie", "a=b; lang=zh-CN")], Lang::ZhCn, None),
            (
                "/ui",
                vec![("accept-language", "zh-CN,zh;q=0.9,en;q=0.8")],
                Lang::ZhCn,
                None,
            ),
            (
                "/ui?lang=fr",
                vec![("accept-language", "fr, en;q=0.5")],
                Lang::En,
                None,
            ),
            ("/ui", vec![], Lang::En, None),
        ];
        for (uri, headers, lang, asked) in table {
            assert_eq!(
                choose_lang(&parts(uri, &headers)),
                (lang, asked),
                "{uri} {headers:?}"
            );
        }
    }

    #[test]
    fn cookies_csrf_tokens_and_return_paths() {
        let p = parts(
            "/ui",
            &[("cookie", "x=1; lifeboat_session=lbs-abc ; lang=en")],
        );
        assert_eq!(
            cookie(&p.headers, SESSION_COOKIE).as_deref(),
            Some("lbs-abc")
        );
        assert_eq!(cookie(&p.headers, "nope"), None);
        let a = csrf_token(&Secret::new("lbs-abc"));
        assert_eq!(a.len(), 64);
        assert_eq!(a, csrf_token(&Secret::new("lbs-abc")));
        assert_ne!(a, csrf_token(&Secret::new("lbs-abd")));
        assert!(!a.contains("abc"));
        assert!(same(&a, &a.clone()) && !same(&a, "") && !same("ab", "ac"));
        let c = set_cookie(SESSION_COOKIE, "v", 60, true).unwrap();
        assert_eq!(
            c.to_str().unwrap(),
            "lifeboat_session=v; Path=/; SameSite=Strict; Max-Age=60; HttpOnly; Secure"
        );
        for (next, expected) in [
            (Some("/ui/drills?x=1"), "/ui/drills?x=1"),
            (Some("https://evil.example/ui"), "/ui"),
            (Some("//evil.example"), "/ui"),
            (Some("/ui//evil"), "/ui"),
            (None, "/ui"),
        ] {
            assert_eq!(safe_next(next), expected, "{next:?}");
        }
    }
}
