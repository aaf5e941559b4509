//! Bearer-token authentication, as a real API server does it: every API request must carry
//! `Authorization: Bearer TOKEN` with the token the exec credential plugin hands out (see
//! `kubeconfig`); anything else is answered `401 Unauthorized` with the same `Status` body a
//! real server sends, which is what makes client-go (and kube-rs) run the plugin again.
//! `/_control` needs no token: it is the test's side door, not part of the API.

use super::http::{Request, Response};
use super::objects;

/// Characters of a generated token.
const TOKEN_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// A fresh random token.
pub fn new_token() -> String {
    (0..32)
        .map(|_| TOKEN_ALPHABET[fastrand::usize(..TOKEN_ALPHABET.len())] as char)
        .collect()
}

/// Whether `req` carries `token` as its bearer token.
pub fn authorized(req: &Request, token: &str) -> bool {
    req.header("authorization")
        .and_then(|v| {
            let (scheme, value) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| value.trim())
        })
        .is_some_and(|given| given == token)
}

/// The real API server's answer to a missing or wrong credential.
pub fn unauthorized() -> Response {
    Response::json(401, &objects::status(401, "Unauthorized", "Unauthorized"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_auth(value: Option<&str>) -> Request {
        let mut b = http::Request::builder().uri("/api");
        if let Some(v) = value {
            b = b.header("Authorization", v);
        }
        let (parts, ()) = b.body(()).unwrap().into_parts();
        Request::from_parts(&parts)
    }

    #[test]
    fn only_the_bearer_token_passes() {
        assert!(authorized(&with_auth(Some("Bearer t0k")), "t0k"));
        assert!(authorized(&with_auth(Some("bearer  t0k ")), "t0k"));
        assert!(!authorized(&with_auth(Some("Bearer other")), "t0k"));
        assert!(!authorized(&with_auth(Some("Basic dTpw")), "t0k"));
        assert!(!authorized(&with_auth(None), "t0k"));
        assert_eq!(new_token().len(), 32);
        assert_eq!(unauthorized().status, 401);
    }
}
