//! Resources in and out: request bodies become the canonical stored form, stored data becomes
//! SCIM JSON with `id`, `schemas` and `meta`, and `attributes`/`excludedAttributes` project it.
//!
//! The canonical form keeps every attribute as sent, under its schema-defined name (attribute
//! names are case-insensitive on input, RFC 7643 §2.1), extension attributes under the
//! extension's URN key. On input:
//! - unknown attributes and unknown schema URNs are ignored (Entra sends some), as are the
//!   server-owned and read-only ones (`id`, `meta`, `groups`); `password` is discarded, never
//!   stored or returned;
//! - `null`, `""` and `[]` mean unassigned (RFC 7643 §2.5);
//! - booleans may be strings (`"True"`, `"false"`: Entra's default `active` mapping);
//! - a bare value where a multi-valued complex attribute expects objects becomes `{"value": …}`;
//! - the enterprise `manager` may be an id, an object or an array of one object (the forms of
//!   Microsoft's "Tutorial: Develop and plan provisioning for a SCIM endpoint" and its SCIM
//!   reference code), and is stored as `{"value": id}`;
//! - a role whose `value` is a JSON-encoded object (Entra's AppRoleAssignmentsComplex PATCH, in
//!   Microsoft's "Customize user provisioning attribute-mappings", "Provisioning a role to a
//!   SCIM app") is unwrapped into `value`/`display`.
//!
//! | module | owns |
//! |---|---|
//! | [`mod@normalize`] | request bodies to the canonical form, and what must hold of a whole resource |
//! | [`mod@render`] | the canonical form to SCIM JSON: `id`, `schemas`, `meta`, references |
//! | [`mod@project`] | `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5) |

pub mod normalize;
pub mod project;
pub mod render;

pub use normalize::{
    container_mut, demote_extra_primaries, drop_empty_extension, from_request, normalize,
    replacement, set, too_many_values, validate, writable, MAX_VALUES,
};
pub use project::{project, selectors, Selection, Selector};
pub use render::{refs_json, render, MemberRef, Meta, RefType};

use serde_json::{Map, Value};

/// A resource's stored attributes (no `id`, `schemas` or `meta`).
pub type Data = Map<String, Value>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::{ENTERPRISE_USER_SCHEMA, USER_SCHEMA, USER_TYPE};
    use serde_json::json;

    fn rendered(manager_exists: bool) -> Map<String, Value> {
        let data = from_request(
            &USER_TYPE,
            &json!({
                "userName": "a", "name": {"givenName": "G", "familyName": "F"},
                "emails": [{"value": "a@x", "type": "work"}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "D", "manager": "m1"}
            }),
        )
        .expect("valid");
        render(
            &USER_TYPE,
            &data,
            &Meta {
                id: "u1",
                version: 3,
                created: 0,
                last_modified: 1000,
                location: "https://acme.example.com/api/scim/v2/Users/u1",
                base: "https://acme.example.com/api/scim/v2",
                manager_exists,
            },
        )
    }

    #[test]
    fn render_adds_id_schemas_meta_and_manager_ref() {
        let r = rendered(true);
        assert_eq!(r["id"], "u1");
        assert_eq!(r["schemas"], json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]));
        assert_eq!(
            r["meta"],
            json!({"resourceType": "User", "created": "1970-01-01T00:00:00.000Z", "lastModified": "1970-01-01T00:00:01.000Z",
                   "location": "https://acme.example.com/api/scim/v2/Users/u1", "version": "W/\"3\""})
        );
        assert_eq!(
            r[ENTERPRISE_USER_SCHEMA]["manager"],
            json!({"value": "m1", "$ref": "https://acme.example.com/api/scim/v2/Users/m1"})
        );
        assert_eq!(
            rendered(false)[ENTERPRISE_USER_SCHEMA]["manager"],
            json!({"value": "m1"})
        );
    }

    #[test]
    fn attributes_keep_only_what_is_asked_plus_id_and_schemas() {
        let mut r = rendered(true);
        let sel = selectors(&USER_TYPE, "userName, name.givenName,emails.value,nosuch");
        project(&USER_TYPE, &mut r, Some(&sel), &[]);
        assert_eq!(
            Value::Object(r),
            json!({"id": "u1", "schemas": [USER_SCHEMA], "userName": "a", "name": {"givenName": "G"}, "emails": [{"value": "a@x"}]})
        );
        let mut r = rendered(true);
        project(
            &USER_TYPE,
            &mut r,
            Some(&selectors(
                &USER_TYPE,
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            )),
            &[],
        );
        assert_eq!(
            Value::Object(r),
            json!({"id": "u1", "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA], ENTERPRISE_USER_SCHEMA: {"department": "D"}})
        );
        let mut r = rendered(true);
        project(
            &USER_TYPE,
            &mut r,
            Some(&selectors(&USER_TYPE, "nosuch,abcé")),
            &[],
        );
        assert_eq!(
            Value::Object(r),
            json!({"id": "u1", "schemas": [USER_SCHEMA]}),
            "attributes that name nothing known select only what is always returned"
        );
        let mut r = rendered(true);
        project(&USER_TYPE, &mut r, Some(&selectors(&USER_TYPE, "id")), &[]);
        assert_eq!(
            Value::Object(r),
            json!({"id": "u1", "schemas": [USER_SCHEMA]})
        );
    }

    #[test]
    fn excluded_attributes_never_remove_id() {
        let mut r = rendered(true);
        let ex = selectors(&USER_TYPE, "id,emails,name.familyName,meta,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User");
        project(&USER_TYPE, &mut r, None, &ex);
        assert_eq!(
            Value::Object(r),
            json!({"id": "u1", "schemas": [USER_SCHEMA], "userName": "a", "active": true, "name": {"givenName": "G"}})
        );
    }
}
