//! Bearer-token access on both sides: clients add `authorization: Bearer
//! TOKEN` to every call; the coordinator looks the token up in its
//! [`TokenTable`] and refuses a call without a known token with
//! UNAUTHENTICATED, and one whose token lacks the call's [`Role`] with
//! PERMISSION_DENIED, before any handler runs or anything changes.
//!
//! Roles: `worker` (the Workers service: register, lease, heartbeat,
//! complete, fail, fetch), `submit` (submit, cancel, resume, delete, prune,
//! and everything `read` may), `read` (status, watch, list, query, the
//! worker list). A coordinator with a single token gives it every role.

use std::sync::Arc;

use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Adds the bearer token to every outgoing request.
#[derive(Clone)]
pub struct BearerToken {
    header: MetadataValue<tonic::metadata::Ascii>,
}

/// Why a token cannot be used.
fn check_token_text(token: &str) -> Result<(), String> {
    if token.is_empty() || token.len() > 1024 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("a token must be 1–1024 printable ASCII characters without spaces".to_owned());
    }
    Ok(())
}

impl BearerToken {
    /// Fails when the token holds characters a header cannot carry.
    pub fn new(token: &str) -> Result<BearerToken, String> {
        check_token_text(token)?;
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

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Worker,
    Submit,
    Read,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Worker, Role::Submit, Role::Read];

    pub fn name(self) -> &'static str {
        match self {
            Role::Worker => "worker",
            Role::Submit => "submit",
            Role::Read => "read",
        }
    }

    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.name() == name)
    }

    fn bit(self) -> u8 {
        match self {
            Role::Worker => 1,
            Role::Submit => 2,
            Role::Read => 4,
        }
    }
}

/// The roles a token holds. Holding `submit` implies `read`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Roles(u8);

impl Roles {
    pub const ALL: Roles = Roles(7);

    pub fn of(role: Role) -> Roles {
        match role {
            Role::Submit => Roles(Role::Submit.bit() | Role::Read.bit()),
            other => Roles(other.bit()),
        }
    }

    pub fn allows(self, role: Role) -> bool {
        self.0 & role.bit() != 0
    }

    fn union(self, other: Roles) -> Roles {
        Roles(self.0 | other.0)
    }

    /// "worker, read" and the like.
    pub fn names(self) -> String {
        let names: Vec<&str> = Role::ALL.into_iter().filter(|r| self.allows(*r)).map(Role::name).collect();
        if names.is_empty() { "none".to_owned() } else { names.join(", ") }
    }
}

/// The coordinator's tokens and the roles of each: one token with every
/// role, or a token file of `ROLE TOKEN` lines.
#[derive(Clone)]
pub struct TokenTable {
    /// The expected `authorization` header of each token, with its roles.
    entries: Arc<[(Vec<u8>, Roles)]>,
}

/// Shows the roles only, never a token.
impl std::fmt::Debug for TokenTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let roles: Vec<String> = self.entries.iter().map(|(_, roles)| roles.names()).collect();
        f.debug_struct("TokenTable").field("roles", &roles).finish()
    }
}

/// Compare without an early exit, so timing does not reveal a prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl TokenTable {
    /// One token holding every role.
    pub fn single(token: &str) -> Result<TokenTable, String> {
        check_token_text(token)?;
        Ok(TokenTable { entries: vec![(format!("Bearer {token}").into_bytes(), Roles::ALL)].into() })
    }

    /// A token file: one `ROLE TOKEN` line per token (roles `worker`,
    /// `submit`, `read`; a token may appear once; `#` starts a comment).
    /// Every problem is reported with its line, named after `source`.
    pub fn parse(text: &str, source: &str) -> Result<TokenTable, String> {
        let mut entries: Vec<(Vec<u8>, Roles)> = Vec::new();
        let mut problems = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let at = format!("{source}, line {}", index + 1);
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [role, token] = fields[..] else {
                problems.push(format!("{at}: expected `ROLE TOKEN` (two fields), found {} field(s)", fields.len()));
                continue;
            };
            let Some(role) = Role::from_name(role) else {
                let role: String = role.chars().take(40).collect();
                problems.push(format!("{at}: unknown role `{role}`; the roles are worker, submit and read"));
                continue;
            };
            if let Err(why) = check_token_text(token) {
                problems.push(format!("{at}: {why}"));
                continue;
            }
            let header = format!("Bearer {token}").into_bytes();
            if entries.iter().any(|(known, _)| *known == header) {
                problems.push(format!("{at}: this token is listed twice; give each role its own token"));
                continue;
            }
            entries.push((header, Roles::of(role)));
        }
        if !problems.is_empty() {
            return Err(problems.join("\n"));
        }
        if entries.is_empty() {
            return Err(format!("{source} lists no token (expected `ROLE TOKEN` lines)"));
        }
        Ok(TokenTable { entries: entries.into() })
    }

    /// The roles of the token in an `authorization` header; every entry is
    /// compared, so the time taken does not tell which one matched.
    fn roles_of(&self, header: &[u8]) -> Option<Roles> {
        let mut found = Roles::default();
        let mut any = false;
        for (expected, roles) in self.entries.iter() {
            let equal = constant_time_eq(header, expected);
            any |= equal;
            found = if equal { found.union(*roles) } else { found };
        }
        any.then_some(found)
    }
}

/// Checks the bearer token of every incoming request against the table and
/// that it holds `required`; the caller's roles go with the request (see
/// [`require`]) for calls that need more.
#[derive(Clone, Debug)]
pub struct RequireRole {
    table: TokenTable,
    required: Role,
}

impl RequireRole {
    pub fn new(table: TokenTable, required: Role) -> RequireRole {
        RequireRole { table, required }
    }
}

fn denied(roles: Roles, role: Role) -> Status {
    Status::permission_denied(format!(
        "this token's roles ({}) do not allow this call; it needs the `{}` role",
        roles.names(),
        role.name()
    ))
}

impl Interceptor for RequireRole {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let Some(value) = request.metadata().get("authorization") else {
            return Err(Status::unauthenticated("no bearer token: send `authorization: Bearer TOKEN`"));
        };
        let roles =
            self.table.roles_of(value.as_bytes()).ok_or_else(|| Status::unauthenticated("wrong bearer token"))?;
        if !roles.allows(self.required) {
            return Err(denied(roles, self.required));
        }
        request.extensions_mut().insert(roles);
        Ok(request)
    }
}

/// In a handler: refuse with PERMISSION_DENIED unless the caller's token
/// (checked by [`RequireRole`]) holds `role`.
pub fn require<T>(request: &Request<T>, role: Role) -> Result<(), Status> {
    let roles = request.extensions().get::<Roles>().copied().unwrap_or_default();
    if roles.allows(role) { Ok(()) } else { Err(denied(roles, role)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(interceptor: &mut RequireRole, token: Option<&str>) -> Result<Request<()>, Status> {
        let mut request = Request::new(());
        if let Some(token) = token {
            request = BearerToken::new(token).unwrap().call(request).unwrap();
        }
        interceptor.call(request)
    }

    #[test]
    fn a_single_token_holds_every_role() {
        let table = TokenTable::single("s3cret").unwrap();
        for role in Role::ALL {
            let request = call(&mut RequireRole::new(table.clone(), role), Some("s3cret")).unwrap();
            for other in Role::ALL {
                assert!(require(&request, other).is_ok());
            }
        }
        let wrong = call(&mut RequireRole::new(table.clone(), Role::Read), Some("other")).unwrap_err();
        assert_eq!((wrong.code(), wrong.message()), (tonic::Code::Unauthenticated, "wrong bearer token"));
        let none = call(&mut RequireRole::new(table, Role::Read), None).unwrap_err();
        assert_eq!(none.code(), tonic::Code::Unauthenticated);
        assert!(BearerToken::new("has space\n").is_err());
        assert!(TokenTable::single("").is_err());
    }

    #[test]
    fn each_role_allows_its_calls_only() {
        let table =
            TokenTable::parse("# tokens\nworker w-tok\nsubmit s-tok  # the team\n\nread r-tok\n", "tokens").unwrap();
        let mut reads = RequireRole::new(table.clone(), Role::Read);
        let mut works = RequireRole::new(table, Role::Worker);
        // read: queries only.
        let request = call(&mut reads, Some("r-tok")).unwrap();
        assert!(require(&request, Role::Read).is_ok());
        let denied = require(&request, Role::Submit).unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        assert!(denied.message().contains("roles (read)") && denied.message().contains("`submit` role"), "{denied:?}");
        assert_eq!(call(&mut works, Some("r-tok")).unwrap_err().code(), tonic::Code::PermissionDenied);
        // submit: submit and read, not work.
        let request = call(&mut reads, Some("s-tok")).unwrap();
        assert!(require(&request, Role::Submit).is_ok());
        assert_eq!(call(&mut works, Some("s-tok")).unwrap_err().code(), tonic::Code::PermissionDenied);
        // worker: the Workers service only.
        assert!(call(&mut works, Some("w-tok")).is_ok());
        assert_eq!(call(&mut reads, Some("w-tok")).unwrap_err().code(), tonic::Code::PermissionDenied);
        // A handler reached without the interceptor allows nothing.
        assert!(require(&Request::new(()), Role::Read).is_err());
    }

    #[test]
    fn token_files_are_checked_line_by_line() {
        let problems = TokenTable::parse("admin a\nread r\nread r\nworker\nsubmit x y\n", "tokens.txt").unwrap_err();
        let lines: Vec<&str> = problems.lines().collect();
        assert_eq!(lines.len(), 4, "{problems}");
        assert!(lines[0].starts_with("tokens.txt, line 1: unknown role `admin`"), "{problems}");
        assert!(lines[1].starts_with("tokens.txt, line 3: this token is listed twice"), "{problems}");
        assert!(lines[2].starts_with("tokens.txt, line 4: expected `ROLE TOKEN`"), "{problems}");
        assert!(lines[3].starts_with("tokens.txt, line 5: expected `ROLE TOKEN`"), "{problems}");
        assert!(TokenTable::parse("# nothing\n", "t").unwrap_err().contains("lists no token"));
        assert!(!format!("{:?}", TokenTable::parse("read secret-value\n", "t").unwrap()).contains("secret-value"));
    }
}
