//! `POST /.search` at the SCIM root (RFC 7644 §3.4.3): one query over every resource type.
//!
//! The result lists users, then groups, each in its own stable order (or its own `sortBy`
//! order: the RFC does not define a sort across types), and `totalResults` is their sum;
//! `startIndex`/`count` page across the concatenation. A filter is applied to each resource
//! type; one that names an attribute only one type has matches nothing in the other (RFC 7644
//! §3.4.2.2), and is 400 only if it is invalid for every type.

use super::resources::Ctx;
use super::{groups, users, Reply};
use crate::scim::error::{Result, ScimType};
use crate::scim::list::list_response;
use crate::scim::query::ListParams;

pub async fn search_all(ctx: &Ctx<'_>, params: &ListParams) -> Result<Reply> {
    let users = users::query(ctx, params).await;
    let (user_total, mut resources) = match users {
        Ok(found) => found,
        Err(e) if e.scim_type == Some(ScimType::InvalidFilter) => {
            // The filter may still be meaningful for groups.
            let groups = groups::query(ctx, params).await?;
            return Ok(Reply::json(
                200,
                list_response(groups.0, params.start_index, groups.1),
            ));
        }
        Err(e) => return Err(e),
    };
    // A page of users cut short (their groups passed the page budget) ends the page here:
    // groups added after it would skip the users it left out.
    let users_left = user_total.saturating_sub(params.start_index.saturating_sub(1));
    let returned = u64::try_from(resources.len()).unwrap_or(u64::MAX);
    if returned < params.count.min(users_left) {
        let total = user_total.saturating_add(group_count(ctx, params).await?);
        return Ok(Reply::json(
            200,
            list_response(total, params.start_index, resources),
        ));
    }
    // Where the page continues in the groups, and how many more it may hold.
    let room = params.count.saturating_sub(returned);
    let group_params = ListParams {
        start_index: params.start_index.saturating_sub(user_total).max(1),
        count: room,
        ..params.clone()
    };
    let (group_total, group_resources) = match groups::query(ctx, &group_params).await {
        Ok(found) => found,
        Err(e) if e.scim_type == Some(ScimType::InvalidFilter) => (0, vec![]),
        Err(e) => return Err(e),
    };
    resources.extend(group_resources);
    Ok(Reply::json(
        200,
        list_response(
            user_total.saturating_add(group_total),
            params.start_index,
            resources,
        ),
    ))
}

/// How many groups match (for `totalResults` of a page that holds no groups).
async fn group_count(ctx: &Ctx<'_>, params: &ListParams) -> Result<u64> {
    let count_only = ListParams {
        count: 0,
        ..params.clone()
    };
    match groups::query(ctx, &count_only).await {
        Ok((n, _)) => Ok(n),
        Err(e) if e.scim_type == Some(ScimType::InvalidFilter) => Ok(0),
        Err(e) => Err(e),
    }
}
