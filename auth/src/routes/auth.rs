//! `/api/v1/auth/*`: sign up, sign in, refresh, sign out, and the public keys.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use kit::error::{ApiError, ApiResult};
use kit::extract::ApiJson;
use proto::Snowflake;
use proto::api::auth::{RefreshRequest, SignInRequest, SignUpRequest, Tokens};
use proto::api::error::{ErrorBody, ErrorCode};
use proto::api::users::User;
use proto::events::{Event, SessionRevoked};

use crate::error::WithRate;
use crate::extract::{Caller, ClientIp};
use crate::limits::RateHeaders;
use crate::profiles;
use crate::sessions::{self, Rotation};
use crate::state::AppState;
use crate::throttle::Wait;

/// Issues an access token and a refresh token in session `session`.
fn tokens(state: &AppState, user: User, session: Snowflake, refresh: String) -> Tokens {
    let settings = &state.settings;
    Tokens {
        access_token: state.keys.signer().sign(
            user.id,
            session,
            settings.access_token_ttl,
            &settings.token_audience,
            &settings.token_issuer,
        ),
        token_type: "Bearer".to_owned(),
        expires_in: settings.access_token_ttl.as_secs(),
        refresh_token: refresh,
        refresh_expires_in: settings.refresh_token_ttl.as_secs(),
        user,
    }
}

async fn start_session(state: &AppState, user: User) -> ApiResult<Tokens> {
    let session = state.ids.next_id();
    let refresh = sessions::start(
        &state.db,
        session,
        user.id,
        state.settings.refresh_token_ttl,
    )
    .await?;
    Ok(tokens(state, user, session, refresh.token))
}

/// Create an account and sign in to it.
#[utoipa::path(post, path = "/api/v1/auth/sign-up", tag = "auth",
    request_body = SignUpRequest,
    responses(
        (status = 201, description = "Created and signed in", body = Tokens),
        (status = 400, description = "A field breaks the rules (see `fields`) or the body is not JSON", body = ErrorBody),
        (status = 409, description = "The username is taken", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 429, description = "Too many sign-ups from this address", body = ErrorBody),
    ))]
pub async fn sign_up(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(request): ApiJson<SignUpRequest>,
) -> ApiResult<(StatusCode, RateHeaders, Json<Tokens>)> {
    let outcome = |o: &str| state.metrics.sign_ups.with_label_values(&[o]).inc();
    let rate = state
        .limits
        .sign_up_per_ip
        .check(&ip)
        .inspect_err(|_| outcome("rate_limited"))?;
    let sign_up = request.parse().map_err(|e| {
        outcome("invalid");
        ApiError::from(e).with_rate(rate)
    })?;
    let hash = state
        .passwords
        .hash(sign_up.password.into_password())
        .await?;
    let id = state.ids.next_id();
    let row = sqlx::query_as!(
        profiles::UserRow,
        "INSERT INTO users (id, username, display_name, password_hash) VALUES ($1, $2, $3, $4)
         ON CONFLICT (username) DO NOTHING
         RETURNING id, username, display_name, avatar_url, bio, status",
        id.as_i64(),
        sign_up.username.as_str(),
        sign_up.display_name.as_ref().map(|n| n.as_str()),
        &hash
    )
    .fetch_optional(&state.db)
    .await?;
    let Some(row) = row else {
        outcome("conflict");
        return Err(
            ApiError::conflict(format!("the username '{}' is taken", sign_up.username))
                .with_field("username", "is taken")
                .with_rate(rate),
        );
    };
    let tokens = start_session(&state, User::from(row)).await?;
    // Signing up proves the password as a sign-in does: this address is the owner's.
    state.limits.sign_in.trust(sign_up.username.as_str(), ip);
    outcome("ok");
    Ok((StatusCode::CREATED, rate, Json(tokens)))
}

/// Sign in with a username and password.
///
/// A wrong username and a wrong password get the same answer after the same work. Failed
/// attempts slow further ones down with growing waits (429 with `Retry-After`) per account and
/// address, per address and per account; an address that has signed in to the account before is
/// slowed only by its own failures, so nobody can keep the owner out.
#[utoipa::path(post, path = "/api/v1/auth/sign-in", tag = "auth",
    request_body = SignInRequest,
    responses(
        (status = 200, description = "Signed in", body = Tokens),
        (status = 400, body = ErrorBody),
        (status = 401, description = "Wrong username or password", body = ErrorBody),
        (status = 429, description = "Too many attempts or failures; wait `Retry-After` seconds", body = ErrorBody),
    ))]
pub async fn sign_in(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(request): ApiJson<SignInRequest>,
) -> ApiResult<(Option<RateHeaders>, Json<Tokens>)> {
    let outcome = |o: &str| state.metrics.sign_ins.with_label_values(&[o]).inc();
    let sign_in = request.parse().map_err(|e| {
        outcome("invalid");
        ApiError::from(e)
    })?;
    let account = sign_in.username.as_str();
    let limits = &state.limits;
    // The owner at an address they signed in from is not held to the address's budget, which a
    // neighbour behind the same NAT could spend.
    let rate = if limits.sign_in.is_trusted(account, ip) {
        None
    } else {
        Some(
            limits
                .sign_in_per_ip
                .check(&ip)
                .inspect_err(|_| outcome("rate_limited"))?,
        )
    };
    let with_rate = |e: ApiError| match rate {
        Some(rate) => e.with_rate(rate),
        None => e,
    };
    let attempt = limits.sign_in.admit(account, ip).map_err(|Wait(wait)| {
        outcome("rate_limited");
        with_rate(ApiError::rate_limited(wait))
    })?;
    let stored = sqlx::query!(
        "SELECT id, password_hash FROM users WHERE username = $1",
        account
    )
    .fetch_optional(&state.db)
    .await?;
    let (id, hash) = stored.map_or((None, None), |row| (Some(row.id), Some(row.password_hash)));
    let matches = state.passwords.verify(sign_in.password, hash).await?;
    let Some(id) = id.filter(|_| matches) else {
        attempt.failed();
        outcome("invalid_credentials");
        return Err(with_rate(ApiError::new(
            ErrorCode::InvalidCredentials,
            "wrong username or password",
        )));
    };
    let user = profiles::by_id(&state.db, Snowflake::from_i64(id))
        .await?
        .ok_or_else(|| ApiError::internal("a user vanished while signing in"))?;
    let tokens = start_session(&state, user).await?;
    attempt.succeeded();
    outcome("ok");
    Ok((rate, Json(tokens)))
}

/// Trade a refresh token for new tokens. Each refresh token works once; presenting a used one
/// again signs the whole session out (someone else has a copy).
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, body = Tokens),
        (status = 400, body = ErrorBody),
        (status = 401, description = "Unknown, expired, reused or signed-out refresh token", body = ErrorBody),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<RefreshRequest>,
) -> ApiResult<Json<Tokens>> {
    let outcome = |o: &str| state.metrics.refreshes.with_label_values(&[o]).inc();
    match sessions::rotate(
        &state.db,
        &request.refresh_token,
        state.settings.refresh_token_ttl,
    )
    .await?
    {
        Rotation::Rotated {
            user,
            session,
            refresh,
        } => {
            let user = profiles::by_id(&state.db, user)
                .await?
                .ok_or_else(|| ApiError::unauthorized("the account no longer exists"))?;
            outcome("ok");
            Ok(Json(tokens(&state, user, session, refresh.token)))
        }
        Rotation::Reused { user, session } => {
            outcome("reused");
            tracing::warn!(%user, %session, "a used refresh token was presented again; session revoked");
            revoked(&state, user, session).await;
            Err(ApiError::unauthorized(
                "this refresh token was already used, so the session has been signed out for \
                 safety; sign in again",
            ))
        }
        Rotation::Refused => {
            outcome("refused");
            Err(ApiError::unauthorized(
                "the refresh token is not valid, has expired, or was signed out; sign in again",
            ))
        }
    }
}

async fn revoked(state: &AppState, user: Snowflake, session: Snowflake) {
    let event = Event::SessionRevoked(SessionRevoked {
        user_id: user,
        session_id: session,
    });
    state.events.publish(&event, &[user], None).await;
    state.events.flush().await;
}

/// Sign out: revokes this session's refresh tokens and access tokens, and closes its sockets.
#[utoipa::path(post, path = "/api/v1/auth/sign-out", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, body = ErrorBody),
    ))]
pub async fn sign_out(State(state): State<AppState>, caller: Caller) -> ApiResult<StatusCode> {
    if sessions::revoke(&state.db, caller.session_id).await? {
        revoked(&state, caller.user_id, caller.session_id).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The public keys access tokens are signed with (a JWKS, RFC 7517). Also at
/// `/.well-known/jwks.json`.
#[utoipa::path(get, path = "/api/v1/auth/jwks", tag = "auth",
    responses((status = 200, description = "A JWK set of Ed25519 (OKP) keys, each with its kid")))]
pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(state.keys.jwks()),
    )
}
