//! Login and logout of the dashboard: the people API's own session (opened and ended by the
//! same functions as `POST /api/v1/login` and `/logout`), carried in the `lifeboat_session`
//! cookie. Never echoes a password, never puts the token anywhere but that cookie.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::Web;
use super::gate::{
    self, CSRF_FIELD, Ctx, Form, LOGIN_CSRF_COOKIE, SESSION_COOKIE, safe_next, set_cookie,
};
use super::layout;
use crate::coordinator::auth::{Principal, UI_HOME_PATH, UI_LOGIN_PATH};
use crate::coordinator::people_api::{end_session, open_session};
use crate::secret::Secret;

/// `GET /`: the dashboard's home.
pub async fn root() -> Redirect {
    Redirect::to(UI_HOME_PATH)
}

/// `?next=` (where to go after the login) and `?lang=` (read by the gate).
#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// `GET /ui/login`: the form, with its double-submit CSRF cookie.
pub async fn form(
    State(web): State<Web>,
    ctx: Ctx,
    q: Result<Query<LoginQuery>, QueryRejection>,
) -> Response {
    let next = q.ok().and_then(|Query(q)| q.next);
    login_page(&web, ctx, next.as_deref(), None)
}

fn login_page(web: &Web, mut ctx: Ctx, next: Option<&str>, error: Option<&str>) -> Response {
    let fresh = ctx.csrf.is_empty();
    if fresh {
        ctx.csrf = gate::login_csrf();
    }
    let title = ctx.t("Log in", "登录").to_string();
    let next = safe_next(next);
    let body = html! {
        div.login {
            @if let Some(e) = error { p.error id="login-error" { (e) } }
            form method="post" action=(UI_LOGIN_PATH) id="login-form" {
                input type="hidden" name=(CSRF_FIELD) value=(ctx.csrf);
                input type="hidden" name="next" value=(next);
                label for="name" { (ctx.t("User name", "用户名")) }
                input type="text" id="name" name="name" autocomplete="username" required autofocus;
                label for="password" { (ctx.t("Password", "密码")) }
                input type="password" id="password" name="password" autocomplete="current-password" required;
                p { button.act type="submit" id="login" { (ctx.t("Log in", "登录")) } }
            }
        }
    };
    let mut response = layout::page(&ctx, &title, None, body);
    if error.is_some() {
        *response.status_mut() = StatusCode::UNAUTHORIZED;
    }
    if fresh && let Some(v) = set_cookie(LOGIN_CSRF_COOKIE, &ctx.csrf, 3600, web.secure_cookies) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// `POST /ui/login`: opens a session and sets its cookie, then goes where the person was going.
pub async fn submit(
    State(web): State<Web>,
    ctx: Ctx,
    axum::Extension(form): axum::Extension<Form>,
) -> Response {
    let name = form.get("name").unwrap_or("");
    let password = Secret::new(form.get("password").unwrap_or("").to_string());
    let next = form.get("next");
    match open_session(&web.auth, name, password).await {
        Ok(opened) => {
            let ttl = opened
                .expires_at
                .duration_since(web.auth.clock.now())
                .as_secs()
                .max(0);
            let mut response = Redirect::to(&safe_next(next)).into_response();
            let headers = response.headers_mut();
            if let Some(v) = set_cookie(
                SESSION_COOKIE,
                opened.token.expose(),
                ttl,
                web.secure_cookies,
            ) {
                headers.append(header::SET_COOKIE, v);
            }
            if let Some(v) = set_cookie(LOGIN_CSRF_COOKIE, "", 0, web.secure_cookies) {
                headers.append(header::SET_COOKIE, v);
            }
            response
        }
        Err(f) if f.status == StatusCode::UNAUTHORIZED => {
            let message = ctx.t(
                "Wrong user name or password, or the user is disabled.",
                "用户名或密码错误，或该用户已停用。",
            );
            login_page(&web, ctx.clone(), next, Some(message))
        }
        Err(f) => layout::failure(&ctx, &f),
    }
}

/// `POST /ui/logout`: ends the session and deletes its cookie.
pub async fn logout(
    State(web): State<Web>,
    ctx: Ctx,
    axum::Extension(me): axum::Extension<Principal>,
) -> Response {
    if let Err(f) = end_session(&web.auth, &me).await {
        return layout::failure(&ctx, &f);
    }
    let mut response = Redirect::to(UI_LOGIN_PATH).into_response();
    if let Some(v) = set_cookie(SESSION_COOKIE, "", 0, web.secure_cookies) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}
