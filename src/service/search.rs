//! `POST /.search` at the SCIM root (RFC 7644 §3.4.3): one query over every resource type.
//!
//! The result lists users, then groups, each in its own stable order (or its own `sortBy`
//! order: the RFC does not define a sort across types), and `totalResults` is their sum;
//! `startIndex`/`count` page across the concatenation. A filter is applied to each resource
//! type; one that names an attribute only one type has matches nothing in the other (RFC 7644
//! §3.4.2.2), and is 400 only if it is invalid for every type.

use super::resources;
use super::resources::Table;
use super::{Runtime, Scope};
use crate::store::resources::Stored;
use crate::store::Executor;
use scim_core::scim::error::{Result, ScimType};
use scim_core::scim::query::ListParams;

/// One page across both types: users first.
#[derive(Debug, Default)]
pub struct Page {
    pub total: u64,
    pub users: Vec<Stored>,
    pub groups: Vec<Stored>,
}

/// What the response keeps of each type's references, so that the store reads no more.
#[derive(Debug, Clone, Copy)]
pub struct Wanted {
    pub user_groups: bool,
    pub group_members: bool,
}

/// The page of `params` across users and groups.
pub async fn all<E: Executor, R: Runtime>(
    s: &Scope<'_, E, R>,
    params: &ListParams,
    wanted: Wanted,
) -> Result<Page> {
    let groups = |p: ListParams| async move {
        match resources::list(s, Table::Groups, &p, wanted.group_members, None).await {
            Err(e) if e.scim_type == Some(ScimType::InvalidFilter) => Ok((0, vec![])),
            other => other,
        }
    };
    let (user_total, users) =
        match resources::list(s, Table::Users, params, wanted.user_groups, None).await {
            Ok(found) => found,
            Err(e) if e.scim_type == Some(ScimType::InvalidFilter) => {
                // The filter may still be meaningful for groups.
                let (total, groups) =
                    resources::list(s, Table::Groups, params, wanted.group_members, None).await?;
                return Ok(Page {
                    total,
                    users: vec![],
                    groups,
                });
            }
            Err(e) => return Err(e),
        };
    // A page of users cut short (their groups passed the page budget) ends the page here:
    // groups added after it would skip the users it left out.
    let users_left = user_total.saturating_sub(params.start_index.saturating_sub(1));
    let returned = u64::try_from(users.len()).unwrap_or(u64::MAX);
    if returned < params.count.min(users_left) {
        let (group_total, _) = groups(ListParams {
            count: 0,
            ..params.clone()
        })
        .await?;
        return Ok(Page {
            total: user_total.saturating_add(group_total),
            users,
            groups: vec![],
        });
    }
    // Where the page continues in the groups, and how many more it may hold.
    let (group_total, page) = groups(ListParams {
        start_index: params.start_index.saturating_sub(user_total).max(1),
        count: params.count.saturating_sub(returned),
        ..params.clone()
    })
    .await?;
    Ok(Page {
        total: user_total.saturating_add(group_total),
        users,
        groups: page,
    })
}
