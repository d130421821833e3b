//! API key scopes. A key carries a set of them; each admin route needs one (the table is the
//! edge's, beside the routes). `ADMIN_TOKEN`, the bootstrap key, has [`Scopes::EVERY`].
//!
//! Names follow the `resource:action` shape OAuth 2.0 scopes commonly take (RFC 6749 §3.3 only
//! asks for space-free strings); stored space-separated, as a `scope` parameter is.

/// One permission of the admin API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// List and read organisations, their credentials' metadata, shards and purges.
    TenantsRead,
    /// Create, update, delete and move organisations; open or close shards.
    TenantsWrite,
    /// Secret Tokens, OAuth client secrets and federation, console links.
    CredentialsWrite,
    /// The directory: users, groups, members.
    DirectoryRead,
    /// The change feed.
    EventsRead,
    /// The provisioning log and the summary.
    LogsRead,
    /// The app's roles and the organisations' group → role mappings.
    RolesWrite,
    /// API keys themselves.
    KeysWrite,
    /// Webhook endpoints: create, change, rotate, test, replay; their deliveries.
    WebhooksWrite,
}

impl Scope {
    /// Every scope, in the order they are listed.
    pub const ALL: [Scope; 9] = [
        Scope::TenantsRead,
        Scope::TenantsWrite,
        Scope::CredentialsWrite,
        Scope::DirectoryRead,
        Scope::EventsRead,
        Scope::LogsRead,
        Scope::RolesWrite,
        Scope::KeysWrite,
        Scope::WebhooksWrite,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scope::TenantsRead => "tenants:read",
            Scope::TenantsWrite => "tenants:write",
            Scope::CredentialsWrite => "credentials:write",
            Scope::DirectoryRead => "directory:read",
            Scope::EventsRead => "events:read",
            Scope::LogsRead => "logs:read",
            Scope::RolesWrite => "roles:write",
            Scope::KeysWrite => "keys:write",
            Scope::WebhooksWrite => "webhooks:write",
        }
    }

    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.name() == name)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of scopes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Scopes(u16);

impl Scopes {
    /// What the bootstrap key has.
    pub const EVERY: Scopes = Scopes((1 << Scope::ALL.len()) - 1);

    pub fn has(self, s: Scope) -> bool {
        self.0 & s.bit() != 0
    }

    pub fn with(self, s: Scope) -> Scopes {
        Scopes(self.0 | s.bit())
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The scopes of `other` that `self` lacks, in listing order.
    pub fn missing(self, other: Scopes) -> impl Iterator<Item = Scope> {
        Scope::ALL
            .into_iter()
            .filter(move |s| other.has(*s) && !self.has(*s))
    }

    /// Names as a client sends them; an unknown name is the error, word for word.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Scopes, &'a str> {
        names.into_iter().try_fold(Scopes::default(), |set, n| {
            Scope::parse(n).map(|s| set.with(s)).ok_or(n)
        })
    }

    /// The names, in listing order.
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Scope::name).collect()
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.has(*s))
    }

    /// The stored form: names, space-separated.
    pub fn stored(self) -> String {
        self.names().join(" ")
    }

    /// From the stored form. A name this build does not know (written by a newer one, or a
    /// scope since withdrawn) grants nothing.
    pub fn from_stored(text: &str) -> Scopes {
        text.split(' ')
            .filter_map(Scope::parse)
            .fold(Scopes::default(), Scopes::with)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_named() {
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.name()), Some(s));
        }
        let set = Scopes::parse(["events:read", "tenants:read", "events:read"]).unwrap();
        assert_eq!(set.names(), ["tenants:read", "events:read"]);
        assert_eq!(Scopes::from_stored(&set.stored()), set);
        assert_eq!(Scopes::parse(["tenants:read", "admin"]), Err("admin"));
        assert_eq!(Scopes::parse(["Tenants:Read"]), Err("Tenants:Read"));
        assert!(Scopes::parse([]).unwrap().is_empty());
    }

    #[test]
    fn every_has_all_and_a_stored_unknown_grants_nothing() {
        assert_eq!(Scopes::EVERY.names().len(), Scope::ALL.len());
        assert!(Scope::ALL.iter().all(|s| Scopes::EVERY.has(*s)));
        let stored = Scopes::from_stored("directory:read everything  keys:write");
        assert_eq!(stored.names(), ["directory:read", "keys:write"]);
        assert_eq!(Scopes::from_stored(""), Scopes::default());
    }

    #[test]
    fn missing_lists_what_a_maker_lacks() {
        let maker = Scopes::parse(["directory:read", "keys:write"]).unwrap();
        let asked = Scopes::parse(["directory:read", "tenants:write", "logs:read"]).unwrap();
        let lacks: Vec<_> = maker.missing(asked).map(Scope::name).collect();
        assert_eq!(lacks, ["tenants:write", "logs:read"]);
        assert_eq!(Scopes::EVERY.missing(asked).count(), 0);
    }
}
