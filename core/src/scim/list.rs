//! The ListResponse message (RFC 7644 §3.4.2).

use serde_json::{json, Value};

/// URN of the ListResponse message.
pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// A page of results. `itemsPerPage` is the number of resources actually returned (RFC 7644
/// §3.4.2.4), and every count is a JSON number (Okta rejects strings).
pub fn list_response(total_results: u64, start_index: u64, resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": total_results,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_list_is_the_shape_entra_expects() {
        assert_eq!(
            list_response(0, 1, vec![]),
            json!({"schemas": [LIST_RESPONSE_SCHEMA], "totalResults": 0, "startIndex": 1, "itemsPerPage": 0, "Resources": []})
        );
    }

    #[test]
    fn items_per_page_counts_what_is_returned() {
        let page = list_response(30, 21, vec![json!({"id": "a"}), json!({"id": "b"})]);
        assert_eq!(page["itemsPerPage"], 2);
        assert_eq!(page["totalResults"], 30);
    }
}
