//! Attribute metadata (RFC 7643 §2, §4, §7): the one source of truth for what each attribute is.
//!
//! The filter parser, the PATCH engine, the request normaliser, the `attributes` projection and
//! the `/Schemas` documents ([`super::discovery`]) all read these tables, so what the server
//! advertises is what its engines enforce.

/// Attribute data types (RFC 7643 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

/// RFC 7643 §7 `mutability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

/// RFC 7643 §7 `returned`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

/// RFC 7643 §7 `uniqueness`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    None,
    Server,
    Global,
}

/// One attribute definition.
#[derive(Debug, Clone, Copy)]
pub struct Attr {
    pub name: &'static str,
    pub ty: Type,
    pub multi_valued: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
    pub sub_attributes: &'static [Attr],
    pub canonical_values: &'static [&'static str],
    pub reference_types: &'static [&'static str],
    pub description: &'static str,
}

impl Attr {
    const fn new(name: &'static str, ty: Type, description: &'static str) -> Attr {
        Attr {
            name,
            ty,
            multi_valued: false,
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            sub_attributes: &[],
            canonical_values: &[],
            reference_types: &[],
            description,
        }
    }
    const fn string(name: &'static str, description: &'static str) -> Attr {
        Attr::new(name, Type::String, description)
    }
    const fn boolean(name: &'static str, description: &'static str) -> Attr {
        Attr::new(name, Type::Boolean, description)
    }
    const fn reference(
        name: &'static str,
        types: &'static [&'static str],
        description: &'static str,
    ) -> Attr {
        Attr {
            reference_types: types,
            ..Attr::new(name, Type::Reference, description)
        }
    }
    const fn complex(name: &'static str, sub: &'static [Attr], description: &'static str) -> Attr {
        Attr {
            sub_attributes: sub,
            ..Attr::new(name, Type::Complex, description)
        }
    }
    const fn multi(self) -> Attr {
        Attr {
            multi_valued: true,
            ..self
        }
    }
    const fn required(self) -> Attr {
        Attr {
            required: true,
            ..self
        }
    }
    const fn case_exact(self) -> Attr {
        Attr {
            case_exact: true,
            ..self
        }
    }
    const fn read_only(self) -> Attr {
        Attr {
            mutability: Mutability::ReadOnly,
            ..self
        }
    }
    const fn immutable(self) -> Attr {
        Attr {
            mutability: Mutability::Immutable,
            ..self
        }
    }
    const fn write_only(self) -> Attr {
        Attr {
            mutability: Mutability::WriteOnly,
            returned: Returned::Never,
            ..self
        }
    }
    const fn always(self) -> Attr {
        Attr {
            returned: Returned::Always,
            ..self
        }
    }
    const fn unique(self) -> Attr {
        Attr {
            uniqueness: Uniqueness::Server,
            ..self
        }
    }
    const fn canonical(self, values: &'static [&'static str]) -> Attr {
        Attr {
            canonical_values: values,
            ..self
        }
    }

    /// A sub-attribute by name, case-insensitively (RFC 7643 §2.1).
    pub fn sub(&self, name: &str) -> Option<&'static Attr> {
        find(self.sub_attributes, name)
    }

    pub fn is_complex(&self) -> bool {
        self.ty == Type::Complex
    }
}

/// A schema: its URN, name, and attributes.
#[derive(Debug)]
pub struct Schema {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attributes: &'static [Attr],
}

impl Schema {
    pub fn attr(&self, name: &str) -> Option<&'static Attr> {
        find(self.attributes, name)
    }
}

/// Find an attribute by name, case-insensitively.
pub fn find(attrs: &'static [Attr], name: &str) -> Option<&'static Attr> {
    attrs.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// Sub-attributes shared by most multi-valued attributes (RFC 7643 §2.4).
macro_rules! multi_value_subs {
    ($value:expr, $types:expr) => {
        &[
            $value,
            Attr::string("display", "A human-readable name, primarily used for display purposes."),
            Attr::string("type", "A label indicating the attribute's function.").canonical($types),
            Attr::boolean("primary", "A Boolean value indicating the 'primary' or preferred attribute value for this attribute."),
        ]
    };
}

/// Attributes every resource has (RFC 7643 §3.1). `id` and `meta` are server-owned.
///
/// The schema tables are `static`, not `const`: a `const` is instantiated again in every crate
/// that names it, which put their text in the wasm twice once the core became a crate.
pub static COMMON: &[Attr] = &[
    Attr::string("id", "A unique identifier for a SCIM resource as defined by the service provider.")
        .case_exact()
        .read_only()
        .always()
        .unique(),
    Attr::string("externalId", "A String that is an identifier for the resource as defined by the provisioning client.")
        .case_exact(),
    Attr::complex(
        "meta",
        &[
            Attr::string("resourceType", "The name of the resource type of the resource.").case_exact().read_only(),
            Attr::new("created", Type::DateTime, "The DateTime that the resource was added to the service provider.").read_only(),
            Attr::new("lastModified", Type::DateTime, "The most recent DateTime that the details of this resource were updated at the service provider.").read_only(),
            Attr::reference("location", &["uri"], "The URI of the resource being returned.").case_exact().read_only(),
            Attr::string("version", "The version of the resource being returned (a weak ETag).").case_exact().read_only(),
        ],
        "Resource metadata.",
    )
    .read_only(),
];

/// The core User schema (RFC 7643 §4.1, §8.7.1).
pub static USER: Schema = Schema {
    id: USER_SCHEMA,
    name: "User",
    description: "User Account",
    attributes: &[
        Attr::string("userName", "Unique identifier for the User, typically used by the user to directly authenticate to the service provider.")
            .required()
            .unique(),
        Attr::complex(
            "name",
            &[
                Attr::string("formatted", "The full name, including all middle names, titles, and suffixes as appropriate, formatted for display."),
                Attr::string("familyName", "The family name of the User, or last name."),
                Attr::string("givenName", "The given name of the User, or first name."),
                Attr::string("middleName", "The middle name(s) of the User."),
                Attr::string("honorificPrefix", "The honorific prefix(es) of the User, or title."),
                Attr::string("honorificSuffix", "The honorific suffix(es) of the User, or suffix."),
            ],
            "The components of the user's real name.",
        ),
        Attr::string("displayName", "The name of the User, suitable for display to end-users."),
        Attr::string("nickName", "The casual way to address the user in real life."),
        Attr::reference("profileUrl", &["external"], "A fully qualified URL pointing to a page representing the User's online profile."),
        Attr::string("title", "The user's title, such as \"Vice President\"."),
        Attr::string("userType", "Used to identify the relationship between the organization and the user."),
        Attr::string("preferredLanguage", "Indicates the User's preferred written or spoken language."),
        Attr::string("locale", "Used to indicate the User's default location for purposes of localizing items."),
        Attr::string("timezone", "The User's time zone in the 'Olson' time zone database format."),
        Attr::boolean("active", "A Boolean value indicating the User's administrative status."),
        Attr::string("password", "The User's cleartext password. Accepted and discarded: never stored, never returned.")
            .write_only(),
        Attr::complex(
            "emails",
            multi_value_subs!(
                Attr::string("value", "Email addresses for the user."),
                &["work", "home", "other"]
            ),
            "Email addresses for the user.",
        )
        .multi(),
        Attr::complex(
            "phoneNumbers",
            multi_value_subs!(
                Attr::string("value", "Phone number of the User."),
                &["work", "home", "mobile", "fax", "pager", "other"]
            ),
            "Phone numbers for the User.",
        )
        .multi(),
        Attr::complex(
            "ims",
            multi_value_subs!(
                Attr::string("value", "Instant messaging address for the User."),
                &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"]
            ),
            "Instant messaging addresses for the User.",
        )
        .multi(),
        Attr::complex(
            "photos",
            multi_value_subs!(
                Attr::reference("value", &["external"], "URL of a photo of the User.").case_exact(),
                &["photo", "thumbnail"]
            ),
            "URLs of photos of the User.",
        )
        .multi(),
        Attr::complex(
            "addresses",
            &[
                Attr::string("formatted", "The full mailing address, formatted for display or use with a mailing label."),
                Attr::string("streetAddress", "The full street address component."),
                Attr::string("locality", "The city or locality component."),
                Attr::string("region", "The state or region component."),
                Attr::string("postalCode", "The zip code or postal code component."),
                Attr::string("country", "The country name component."),
                Attr::string("type", "A label indicating the attribute's function.").canonical(&["work", "home", "other"]),
                Attr::boolean("primary", "A Boolean value indicating the 'primary' or preferred attribute value for this attribute."),
            ],
            "A physical mailing address for this User.",
        )
        .multi(),
        Attr::complex(
            "groups",
            &[
                Attr::string("value", "The identifier of the User's group.").read_only(),
                Attr::reference("$ref", &["User", "Group"], "The URI of the corresponding 'Group' resource to which the user belongs.").read_only(),
                Attr::string("display", "A human-readable name, primarily used for display purposes.").read_only(),
                Attr::string("type", "A label indicating the attribute's function.").canonical(&["direct", "indirect"]).read_only(),
            ],
            "A list of groups to which the user belongs, either through direct membership or through nested groups.",
        )
        .multi()
        .read_only(),
        Attr::complex(
            "entitlements",
            multi_value_subs!(Attr::string("value", "The value of an entitlement."), &[]),
            "A list of entitlements for the User that represent a thing the User has.",
        )
        .multi(),
        // No canonical values on `type`: Entra's schema discovery then names the target attribute
        // `roles[primary eq "True"].value`, as Ardoq's mapping expects (Microsoft's "Customize
        // user provisioning attribute-mappings", "Provisioning a role to a SCIM app").
        Attr::complex(
            "roles",
            multi_value_subs!(Attr::string("value", "The value of a role."), &[]),
            "A list of roles for the User that collectively represent who the User is.",
        )
        .multi(),
        Attr::complex(
            "x509Certificates",
            multi_value_subs!(
                Attr::new("value", Type::Binary, "The value of an X.509 certificate.").case_exact(),
                &[]
            ),
            "A list of certificates issued to the User.",
        )
        .multi(),
    ],
};

/// The Enterprise User extension (RFC 7643 §4.3).
pub static ENTERPRISE_USER: Schema = Schema {
    id: ENTERPRISE_USER_SCHEMA,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attributes: &[
        Attr::string(
            "employeeNumber",
            "Numeric or alphanumeric identifier assigned to a person.",
        ),
        Attr::string("costCenter", "Identifies the name of a cost center."),
        Attr::string("organization", "Identifies the name of an organization."),
        Attr::string("division", "Identifies the name of a division."),
        Attr::string("department", "Identifies the name of a department."),
        Attr::complex(
            "manager",
            &[
                Attr::string(
                    "value",
                    "The id of the SCIM resource representing the User's manager.",
                )
                .case_exact(),
                Attr::reference(
                    "$ref",
                    &["User"],
                    "The URI of the SCIM resource representing the User's manager.",
                ),
                Attr::string("displayName", "The displayName of the User's manager.").read_only(),
            ],
            "The User's manager.",
        ),
    ],
};

/// The core Group schema (RFC 7643 §4.2, §8.7.1). `displayName` is unique per tenant here
/// (Entra requires it: Microsoft's "Tutorial: Develop and plan provisioning for a SCIM endpoint").
pub static GROUP: Schema = Schema {
    id: GROUP_SCHEMA,
    name: "Group",
    description: "Group",
    attributes: &[
        Attr::string("displayName", "A human-readable name for the Group.")
            .required()
            .unique(),
        Attr::complex(
            "members",
            &[
                Attr::string("value", "Identifier of the member of this Group.")
                    .case_exact()
                    .immutable(),
                Attr::reference(
                    "$ref",
                    &["User", "Group"],
                    "The URI corresponding to a SCIM resource that is a member of this Group.",
                )
                .case_exact()
                .immutable(),
                Attr::string(
                    "type",
                    "A label indicating the type of resource, e.g., 'User' or 'Group'.",
                )
                .canonical(&["User", "Group"])
                .immutable(),
                Attr::string(
                    "display",
                    "A human-readable name for the member, as the client sent it.",
                )
                .immutable(),
            ],
            "A list of members of the Group.",
        )
        .multi(),
    ],
};

/// A resource type: its endpoint, core schema and extensions (RFC 7643 §6).
#[derive(Debug)]
pub struct ResourceType {
    pub name: &'static str,
    pub endpoint: &'static str,
    pub schema: &'static Schema,
    pub extensions: &'static [&'static Schema],
}

pub static USER_TYPE: ResourceType = ResourceType {
    name: "User",
    endpoint: "/Users",
    schema: &USER,
    extensions: &[&ENTERPRISE_USER],
};

pub static GROUP_TYPE: ResourceType = ResourceType {
    name: "Group",
    endpoint: "/Groups",
    schema: &GROUP,
    extensions: &[],
};

/// Where an attribute lives: the core schema (top level of a resource) or an extension (under
/// the extension's URN key).
#[derive(Debug, Clone, Copy)]
pub struct AttrRef {
    pub schema: &'static Schema,
    /// True for an extension attribute (stored under the extension's URN key).
    pub extension: bool,
    pub attr: &'static Attr,
    pub sub: Option<&'static Attr>,
}

impl PartialEq for AttrRef {
    fn eq(&self, other: &Self) -> bool {
        self.schema.id == other.schema.id
            && self.attr.name == other.attr.name
            && self.sub.map(|s| s.name) == other.sub.map(|s| s.name)
    }
}

impl AttrRef {
    /// The attribute whose type and case rules apply: the sub-attribute if named.
    pub fn leaf(&self) -> &'static Attr {
        self.sub.unwrap_or(self.attr)
    }

    /// `name.givenName`, or `urn:…:User:employeeNumber` for extension attributes.
    pub fn display(&self) -> String {
        let mut s = if self.extension {
            format!("{}:{}", self.schema.id, self.attr.name)
        } else {
            self.attr.name.to_string()
        };
        if let Some(sub) = self.sub {
            s.push('.');
            s.push_str(sub.name);
        }
        s
    }
}

/// The outcome of resolving an attribute path.
#[derive(Debug, Clone)]
pub enum Resolved {
    Attr(AttrRef),
    /// The path is exactly an extension's URN (a path-less PATCH value may carry a whole
    /// extension object under it).
    Extension(&'static Schema),
    /// Well-formed but unknown to this server.
    Unknown,
}

impl PartialEq for Resolved {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Resolved::Attr(a), Resolved::Attr(b)) => a == b,
            (Resolved::Extension(a), Resolved::Extension(b)) => a.id == b.id,
            (Resolved::Unknown, Resolved::Unknown) => true,
            _ => false,
        }
    }
}

impl ResourceType {
    /// Resolve `[schemaURN:]attr[.sub]` case-insensitively (RFC 7644 §3.10). Extension URNs
    /// contain dots (`…:enterprise:2.0:User`), so they are matched as whole prefixes before the
    /// rest is split on `.`.
    pub fn resolve(&'static self, path: &str) -> Resolved {
        let (schema, extension, rest) = match self.split_urn(path) {
            Some(Ok((schema, extension, rest))) => (schema, extension, rest),
            Some(Err(schema)) => return Resolved::Extension(schema),
            None if path
                .get(..4)
                .is_some_and(|p| p.eq_ignore_ascii_case("urn:")) =>
            {
                return Resolved::Unknown
            }
            None => (self.schema, false, path),
        };
        let (name, sub) = match rest.split_once('.') {
            Some((n, s)) => (n, Some(s)),
            None => (rest, None),
        };
        let (schema, extension, attr) = match schema.attr(name) {
            Some(a) => (schema, extension, a),
            None if !extension => match find(COMMON, name) {
                Some(a) => (schema, false, a),
                // RFC 7644 §3.10 asks clients to qualify extension attributes, but Entra's
                // reference check sends a bare `manager`: accept an unqualified name that
                // exactly one extension defines.
                None if schema.id == self.schema.id => {
                    match self.unqualified_extension_attr(name) {
                        Some((ext, a)) => (ext, true, a),
                        None => return Resolved::Unknown,
                    }
                }
                None => return Resolved::Unknown,
            },
            None => return Resolved::Unknown,
        };
        let sub = match sub {
            Some(s) => match attr.sub(s) {
                Some(sa) => Some(sa),
                None => return Resolved::Unknown,
            },
            None => None,
        };
        Resolved::Attr(AttrRef {
            schema,
            extension,
            attr,
            sub,
        })
    }

    fn unqualified_extension_attr(&self, name: &str) -> Option<(&'static Schema, &'static Attr)> {
        let mut found = self
            .extensions
            .iter()
            .filter_map(|s| s.attr(name).map(|a| (*s, a)));
        let first = found.next()?;
        found.next().is_none().then_some(first)
    }

    /// `Some(Ok(..))` for `URN:rest`, `Some(Err(schema))` for a bare extension URN.
    #[allow(clippy::type_complexity)]
    fn split_urn<'p>(
        &'static self,
        path: &'p str,
    ) -> Option<Result<(&'static Schema, bool, &'p str), &'static Schema>> {
        let candidates =
            std::iter::once((self.schema, false)).chain(self.extensions.iter().map(|s| (*s, true)));
        for (schema, extension) in candidates {
            // `split_at_checked` refuses a split inside a character: a non-ASCII path never
            // panics here, it just does not match.
            let Some((head, rest)) = path.split_at_checked(schema.id.len()) else {
                continue;
            };
            if head.eq_ignore_ascii_case(schema.id) {
                if rest.is_empty() {
                    return if extension { Some(Err(schema)) } else { None };
                }
                if let Some(rest) = rest.strip_prefix(':') {
                    return Some(Ok((schema, extension, rest)));
                }
            }
        }
        None
    }

    /// The extension schema whose URN this is (case-insensitively).
    pub fn extension(&self, urn: &str) -> Option<&'static Schema> {
        self.extensions
            .iter()
            .copied()
            .find(|s| s.id.eq_ignore_ascii_case(urn))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(path: &str) -> AttrRef {
        match USER_TYPE.resolve(path) {
            Resolved::Attr(a) => a,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn resolves_core_common_and_sub_attributes_case_insensitively() {
        assert_eq!(attr("userName").display(), "userName");
        assert_eq!(attr("USERNAME").display(), "userName");
        assert_eq!(attr("name.givenName").display(), "name.givenName");
        assert_eq!(attr("Emails.Value").display(), "emails.value");
        assert_eq!(attr("id").attr.mutability, Mutability::ReadOnly);
        assert_eq!(attr("meta.created").leaf().ty, Type::DateTime);
        assert!(attr("externalId").attr.case_exact);
        assert_eq!(
            attr("urn:ietf:params:scim:schemas:core:2.0:User:userName").display(),
            "userName"
        );
    }

    #[test]
    fn resolves_extension_paths_with_dots_in_the_urn() {
        let a = attr("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber");
        assert!(a.extension);
        assert_eq!(
            a.display(),
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"
        );
        let m = attr("URN:IETF:params:scim:schemas:extension:enterprise:2.0:User:manager.value");
        assert_eq!(m.sub.map(|s| s.name), Some("value"));
        assert!(matches!(
            USER_TYPE.resolve("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"),
            Resolved::Extension(s) if s.id == ENTERPRISE_USER_SCHEMA
        ));
    }

    #[test]
    fn unqualified_extension_names_resolve_when_unambiguous() {
        let m = attr("manager");
        assert!(m.extension);
        assert_eq!(m.schema.id, ENTERPRISE_USER_SCHEMA);
        assert_eq!(
            attr("department").display(),
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"
        );
    }

    #[test]
    fn unknown_paths_are_unknown_not_errors() {
        for p in [
            "nosuch",
            "name.nosuch",
            "urn:ietf:params:scim:schemas:extension:custom:2.0:User:foo",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:nosuch",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:id",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0Userx",
        ] {
            assert_eq!(USER_TYPE.resolve(p), Resolved::Unknown, "{p}");
        }
    }

    /// Each of these panicked the isolate ("byte index 4 is not a char boundary"): a byte index
    /// that fell inside 'é'. Non-ASCII paths are unknown attributes, never a crash.
    #[test]
    fn non_ascii_paths_are_unknown_not_a_panic() {
        let long = format!("{}é", "a".repeat(41));
        let urn_prefix = format!("{}é:x", &USER_SCHEMA[..41]);
        for p in [
            "abcé",
            "é",
            "urné",
            "urn\u{301}:x",
            long.as_str(),
            urn_prefix.as_str(),
            "Abteilungsgröße",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:Useré",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:é",
            "name.é",
            "\u{10FFFF}",
        ] {
            assert_eq!(USER_TYPE.resolve(p), Resolved::Unknown, "{p}");
            assert_eq!(GROUP_TYPE.resolve(p), Resolved::Unknown, "{p}");
        }
    }

    #[test]
    fn roles_type_has_no_canonical_values() {
        assert!(attr("roles.type").leaf().canonical_values.is_empty());
        assert!(!attr("emails.type").leaf().canonical_values.is_empty());
    }
}
