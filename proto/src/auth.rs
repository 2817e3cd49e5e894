//! Bearer-token access on both sides: clients add `authorization: Bearer
//! TOKEN` to every call, the coordinator refuses calls without the right one
//! with UNAUTHENTICATED before any handler runs.

use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Adds the bearer token to every outgoing request.
#[derive(Clone)]
pub struct BearerToken {
    header: MetadataValue<tonic::metadata::Ascii>,
}

impl BearerToken {
    /// Fails when the token holds characters a header cannot carry.
    pub fn new(token: &str) -> Result<BearerToken, String> {
        let header = format!("Bearer {token}")
            .parse()
            .map_err(|_| "the token must be printable ASCII without spaces".to_owned())?;
        Ok(BearerToken { header })
    }
}

/// Shows no token, so a connection can be logged.
impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request.metadata_mut().insert("authorization", self.header.clone());
        Ok(request)
    }
}

/// Checks the bearer token of every incoming request.
#[derive(Clone)]
pub struct RequireToken {
    expected: std::sync::Arc<[u8]>,
}

impl RequireToken {
    pub fn new(token: &str) -> RequireToken {
        RequireToken { expected: format!("Bearer {token}").into_bytes().into() }
    }
}

/// Compare without an early exit, so timing does not reveal a prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Interceptor for RequireToken {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        match request.metadata().get("authorization") {
            Some(value) if constant_time_eq(value.as_bytes(), &self.expected) => Ok(request),
            Some(_) => Err(Status::unauthenticated("wrong bearer token")),
            None => Err(Status::unauthenticated("no bearer token: send `authorization: Bearer TOKEN`")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked() {
        let mut require = RequireToken::new("s3cret");
        let mut add = BearerToken::new("s3cret").unwrap();
        assert!(require.call(add.call(Request::new(())).unwrap()).is_ok());
        let mut wrong = BearerToken::new("other").unwrap();
        let status = require.call(wrong.call(Request::new(())).unwrap()).unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        assert_eq!(require.call(Request::new(())).unwrap_err().code(), tonic::Code::Unauthenticated);
        assert!(BearerToken::new("has space\n").is_err());
    }
}
