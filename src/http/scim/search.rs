//! `POST /.search` at the SCIM root: the page comes from [`crate::service::search`], users
//! then groups, each rendered with its own schema's projection.

use serde_json::Value;

use super::render::{self, Ctx};
use crate::http::reply::Reply;
use crate::service::resources::Table;
use crate::service::search::{self, Wanted};
use scim_core::scim::error::Result;
use scim_core::scim::list::list_response;
use scim_core::scim::query::ListParams;
use scim_core::scim::resource::Selection;
use scim_core::scim::schema::{GROUP_TYPE, USER_TYPE};

pub async fn handle(ctx: &Ctx<'_>, params: &ListParams) -> Result<Reply> {
    let users = Selection::of(&USER_TYPE, params);
    let groups = Selection::of(&GROUP_TYPE, params);
    let wanted = Wanted {
        user_groups: users.wants("groups"),
        group_members: groups.wants("members"),
    };
    let page = search::all(&ctx.scope, params, wanted).await?;
    let resources: Vec<Value> = page
        .users
        .iter()
        .map(|u| render::json(ctx, Table::Users, u, &users))
        .chain(
            page.groups
                .iter()
                .map(|g| render::json(ctx, Table::Groups, g, &groups)),
        )
        .collect();
    Ok(Reply::json(
        200,
        list_response(page.total, params.start_index, resources),
    ))
}
