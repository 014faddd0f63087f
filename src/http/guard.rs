//! The gate in front of every `/api` (and `/uppy`) route: authenticate the caller, then take
//! a token from its rate-limit bucket. Handlers find the caller's [`Owner`] in the depot.

use std::net::IpAddr;

use salvo::http::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use salvo::{Depot, FlowCtrl, Handler, Request, Response, async_trait};

use super::client_ip::client_ip;
use super::rate_limit::{RouteGroup, Verdict};
use crate::auth::upload_token::is_upload_token;
use crate::auth::{AuthError, Authenticator};
use crate::domain::{Owner, UploadScope};
use crate::error::{AppError, ProblemDetails};
use crate::state::AppState;

/// Authenticates and rate-limits the requests of one route group.
pub struct Guard(pub RouteGroup);

#[async_trait]
impl Handler for Guard {
    async fn handle(
        &self,
        req: &mut Request,
        depot: &mut Depot,
        res: &mut Response,
        ctrl: &mut FlowCtrl,
    ) {
        let gate = Gate {
            group: self.0,
            for_uppy: false,
        };
        gate.run(req, depot, res, ctrl, authenticate).await;
    }
}

/// The gate of the Uppy routes: mounted under `{token}`, the delegated upload token in the
/// path is the credential (Uppy's `companionEndpoint` mode sends no headers); elsewhere the
/// request's headers are, as for [`Guard`]. Problems carry the `message` Uppy shows.
pub struct UppyGuard(pub RouteGroup);

#[async_trait]
impl Handler for UppyGuard {
    async fn handle(
        &self,
        req: &mut Request,
        depot: &mut Depot,
        res: &mut Response,
        ctrl: &mut FlowCtrl,
    ) {
        let gate = Gate {
            group: self.0,
            for_uppy: true,
        };
        gate.run(req, depot, res, ctrl, |state, req| {
            match req.param::<String>("token") {
                Some(token) => verify_upload_token(state, &token),
                None => authenticate(state, req),
            }
        })
        .await;
    }
}

/// Authentication outcome and the scope of a delegated upload token.
type Admission = (Result<Owner, AuthError>, Option<UploadScope>);

/// What both gates do once they know who is calling: limit the rate, then admit or refuse.
struct Gate {
    group: RouteGroup,
    /// Problems carry `message` (see [`ProblemDetails::with_message`]).
    for_uppy: bool,
}

impl Gate {
    async fn run(
        &self,
        req: &mut Request,
        depot: &mut Depot,
        res: &mut Response,
        ctrl: &mut FlowCtrl,
        authenticate: impl FnOnce(&AppState, &Request) -> Admission,
    ) {
        let state = match AppState::from_depot(depot) {
            Ok(state) => state.clone(),
            Err(error) => {
                self.render(error.to_problem(), res);
                return ctrl.skip_rest();
            }
        };
        let ip = client_ip(req, &state.trusted_proxies);
        let (outcome, scope) = authenticate(&state, req);
        // Anonymous callers share one owner, so they are told apart (and limited) by address,
        // as are callers whose credentials failed.
        let bucket = match (&outcome, state.auth.as_ref()) {
            (Ok(owner), _) if *owner == Owner::anonymous() => ip_bucket(ip),
            (Ok(owner), Authenticator::Jwt(_) | Authenticator::ApiKey(_)) => {
                format!("owner:{owner}")
            }
            (Ok(owner), Authenticator::Anonymous) if scope.is_some() => format!("owner:{owner}"),
            _ => ip_bucket(ip),
        };
        if let Some(limits) = &state.rate_limits {
            match limits.check(self.group, bucket).await {
                Verdict::Allowed { limit, remaining } => set_rate_headers(res, limit, remaining),
                Verdict::Unlimited => {}
                Verdict::Limited { limit, retry_after } => {
                    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                    set_rate_headers(res, limit, 0);
                    res.headers_mut()
                        .insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
                    let problem = AppError::RateLimited {
                        limit,
                        retry_after: seconds.max(1),
                    }
                    .to_problem();
                    self.render(problem, res);
                    return ctrl.skip_rest();
                }
                Verdict::Unavailable => {
                    res.headers_mut().insert(RETRY_AFTER, HeaderValue::from(1));
                    self.render(AppError::RateLimitUnavailable.to_problem(), res);
                    return ctrl.skip_rest();
                }
            }
        }
        match outcome {
            Ok(owner) => {
                depot.insert_typed(owner);
                if let Some(scope) = scope {
                    depot.insert_typed(scope);
                }
            }
            Err(error) => {
                if let Some(challenge) = state.auth.challenge(&error)
                    && let Ok(value) = HeaderValue::from_str(&challenge)
                {
                    res.headers_mut().insert(WWW_AUTHENTICATE, value);
                }
                self.render(AppError::Unauthorized(error).to_problem(), res);
                ctrl.skip_rest();
            }
        }
    }

    fn render(&self, problem: ProblemDetails, res: &mut Response) {
        if self.for_uppy {
            problem.with_message().render(res);
        } else {
            problem.render(res);
        }
    }
}

/// The caller's owner, and the scope of its delegated upload token when it sent one: a bearer
/// token typed as an upload token is verified as one in every `auth.mode` (and never falls
/// back to the mode's own checks), anything else by the mode.
fn authenticate(state: &AppState, req: &Request) -> Admission {
    let bearer = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(crate::auth::strip_bearer)
        .filter(|token| is_upload_token(token));
    let Some(token) = bearer else {
        return (state.auth.authenticate(req.headers()), None);
    };
    verify_upload_token(state, token)
}

/// The owner and scope a delegated upload token grants.
fn verify_upload_token(state: &AppState, token: &str) -> Admission {
    match state
        .upload_tokens
        .as_deref()
        .map(|tokens| tokens.verify(token))
    {
        Some(Ok((owner, scope))) => (Ok(owner), Some(scope)),
        Some(Err(error)) => (Err(error), None),
        None => (Err(AuthError::Invalid), None),
    }
}

fn ip_bucket(ip: Option<IpAddr>) -> String {
    match ip {
        Some(ip) => format!("ip:{ip}"),
        None => "ip:unknown".to_owned(),
    }
}

fn set_rate_headers(res: &mut Response, limit: u32, remaining: u32) {
    let headers = res.headers_mut();
    headers.insert("ratelimit-limit", HeaderValue::from(limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(remaining));
}
