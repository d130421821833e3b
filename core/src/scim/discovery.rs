//! Discovery documents (RFC 7643 §5–7, RFC 7644 §4): ServiceProviderConfig, ResourceTypes and
//! Schemas, generated from the same attribute tables ([`super::schema`]) that the filter, PATCH
//! and projection engines read, so they describe what the server really enforces.
//!
//! camelCase, no null values (Entra's schema discovery rejects them), `roles` without
//! `type.canonicalValues` so Entra names it `roles[primary eq "True"].value`.

use serde_json::{json, Map, Value};

use super::query::MAX_RESULTS;
use super::schema::{
    Attr, Mutability, ResourceType, Returned, Schema, Type, Uniqueness, GROUP_TYPE, USER_TYPE,
};

pub const SERVICE_PROVIDER_CONFIG_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
pub const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
pub const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// Every resource type served.
pub static RESOURCE_TYPES: &[&ResourceType] = &[&USER_TYPE, &GROUP_TYPE];

/// The ServiceProviderConfig (RFC 7643 §5): what this server supports, truthfully.
/// `documentation` is where the service's README is served.
pub fn service_provider_config(base: &str, documentation: &str) -> Value {
    json!({
        "schemas": [SERVICE_PROVIDER_CONFIG_SCHEMA],
        "documentationUri": documentation,
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "The organisation's Secret Token, sent as 'Authorization: Bearer <token>'.",
            "specUri": "https://www.rfc-editor.org/info/rfc6750",
            "documentationUri": documentation,
            "primary": true
        }, {
            "type": "oauth2",
            "name": "OAuth 2.0 client credentials",
            "description": "An access token from the organisation's token endpoint (<Tenant URL's origin>/oauth/token) for its client id and secret, or for a workload identity federation assertion, sent as 'Authorization: Bearer <token>'.",
            "specUri": "https://www.rfc-editor.org/info/rfc6749",
            "documentationUri": documentation,
            "primary": false
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig")
        }
    })
}

/// A ResourceType resource (RFC 7643 §6).
pub fn resource_type(base: &str, rt: &ResourceType) -> Value {
    let extensions: Vec<Value> = rt
        .extensions
        .iter()
        .map(|s| json!({"schema": s.id, "required": false}))
        .collect();
    let mut v = json!({
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": rt.name,
        "name": rt.name,
        "endpoint": rt.endpoint,
        "description": rt.schema.description,
        "schema": rt.schema.id,
        "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/{}", rt.name)}
    });
    if let (false, Some(obj)) = (extensions.is_empty(), v.as_object_mut()) {
        obj.insert("schemaExtensions".into(), Value::Array(extensions));
    }
    v
}

/// Every schema served, core schemas first.
pub fn all_schemas() -> Vec<&'static Schema> {
    let mut out: Vec<&'static Schema> = Vec::new();
    for rt in RESOURCE_TYPES {
        out.push(rt.schema);
        out.extend(rt.extensions.iter().copied());
    }
    out
}

/// A Schema resource (RFC 7643 §7).
pub fn schema(base: &str, s: &Schema) -> Value {
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "attributes": s.attributes.iter().map(attribute).collect::<Vec<_>>(),
        "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{}", s.id)}
    })
}

fn attribute(a: &Attr) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(a.name));
    m.insert("type".into(), json!(type_name(a.ty)));
    m.insert("multiValued".into(), json!(a.multi_valued));
    m.insert("description".into(), json!(a.description));
    m.insert("required".into(), json!(a.required));
    if !a.canonical_values.is_empty() {
        m.insert("canonicalValues".into(), json!(a.canonical_values));
    }
    m.insert("caseExact".into(), json!(a.case_exact));
    m.insert("mutability".into(), json!(mutability(a.mutability)));
    m.insert("returned".into(), json!(returned(a.returned)));
    m.insert("uniqueness".into(), json!(uniqueness(a.uniqueness)));
    if !a.reference_types.is_empty() {
        m.insert("referenceTypes".into(), json!(a.reference_types));
    }
    if a.is_complex() {
        m.insert(
            "subAttributes".into(),
            Value::Array(a.sub_attributes.iter().map(attribute).collect()),
        );
    }
    Value::Object(m)
}

fn type_name(t: Type) -> &'static str {
    match t {
        Type::String => "string",
        Type::Boolean => "boolean",
        Type::Decimal => "decimal",
        Type::Integer => "integer",
        Type::DateTime => "dateTime",
        Type::Binary => "binary",
        Type::Reference => "reference",
        Type::Complex => "complex",
    }
}

fn mutability(m: Mutability) -> &'static str {
    match m {
        Mutability::ReadOnly => "readOnly",
        Mutability::ReadWrite => "readWrite",
        Mutability::Immutable => "immutable",
        Mutability::WriteOnly => "writeOnly",
    }
}

fn returned(r: Returned) -> &'static str {
    match r {
        Returned::Always => "always",
        Returned::Never => "never",
        Returned::Default => "default",
        Returned::Request => "request",
    }
}

fn uniqueness(u: Uniqueness) -> &'static str {
    match u {
        Uniqueness::None => "none",
        Uniqueness::Server => "server",
        Uniqueness::Global => "global",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::{ENTERPRISE_USER_SCHEMA, USER_SCHEMA};

    fn has_null(v: &Value) -> bool {
        match v {
            Value::Null => true,
            Value::Array(a) => a.iter().any(has_null),
            Value::Object(o) => o.values().any(has_null),
            _ => false,
        }
    }

    #[test]
    fn documents_have_no_nulls() {
        let base = "https://acme.example.com/api/scim/v2";
        assert!(!has_null(&service_provider_config(
            base,
            "https://example.com/docs"
        )));
        for rt in RESOURCE_TYPES {
            assert!(!has_null(&resource_type(base, rt)));
        }
        for s in all_schemas() {
            assert!(!has_null(&schema(base, s)));
        }
    }

    #[test]
    fn user_schema_states_what_the_engines_enforce() {
        let s = schema("b", &crate::scim::schema::USER);
        let attr = |name: &str| {
            s["attributes"]
                .as_array()
                .and_then(|a| a.iter().find(|x| x["name"] == name))
                .cloned()
                .expect(name)
        };
        assert_eq!(attr("userName")["caseExact"], false);
        assert_eq!(attr("userName")["uniqueness"], "server");
        assert_eq!(attr("userName")["required"], true);
        assert_eq!(attr("password")["returned"], "never");
        assert_eq!(attr("password")["mutability"], "writeOnly");
        assert_eq!(attr("groups")["mutability"], "readOnly");
        let roles = attr("roles");
        let roles_type = roles["subAttributes"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["name"] == "type"))
            .cloned()
            .expect("type");
        assert!(
            roles_type.get("canonicalValues").is_none(),
            "roles.type has no canonicalValues: {roles_type}"
        );
        assert_eq!(s["id"], USER_SCHEMA);
        let rt = resource_type("b", &USER_TYPE);
        assert_eq!(
            rt["schemaExtensions"],
            json!([{"schema": ENTERPRISE_USER_SCHEMA, "required": false}])
        );
        assert_eq!(
            service_provider_config("b", "d")["filter"]["maxResults"],
            MAX_RESULTS
        );
    }
}
