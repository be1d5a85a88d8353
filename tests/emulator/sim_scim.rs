//! Emulator identity domain SCIM (§10): users, groups, apps, app roles, grants.

use crate::support::sim as common;

use common::*;
use reqwest::{Client, Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn find_and_grant_roles() {
    let h = start().await;
    let scim = Scim::new(&h).await;
    // User by e-mail and by userName.
    let u = scim
        .filter("Users", r#"emails.value eq "jane.doe@example.com""#)
        .await;
    assert_eq!(u["totalResults"], 1);
    assert_eq!(
        u["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:ListResponse"
    );
    let uid = u["Resources"][0]["id"].as_str().expect("id").to_string();
    let u2 = scim
        .filter("Users", r#"userName eq "JANE.DOE@example.com""#)
        .await;
    assert_eq!(u2["Resources"][0]["id"], uid.as_str());
    let none = scim
        .filter("Users", r#"userName eq "nobody@example.com""#)
        .await;
    assert_eq!(none["totalResults"], 0);
    // Group.
    let g = scim
        .filter("Groups", r#"displayName eq "OIC-Developers""#)
        .await;
    assert_eq!(
        g["Resources"][0]["members"]
            .as_array()
            .expect("members")
            .len(),
        2
    );
    // App of the prod instance and its roles.
    let app_id = h.instance("prod").expect("prod").idcs_app_id.clone();
    let a = scim.filter("Apps", r#"displayName co "prod-sim-lo""#).await;
    assert_eq!(a["totalResults"], 1);
    assert_eq!(a["Resources"][0]["id"], app_id.as_str());
    let roles = scim
        .filter("AppRoles", &format!(r#"app.value eq "{app_id}""#))
        .await;
    let names: Vec<&str> = roles["Resources"]
        .as_array()
        .expect("roles")
        .iter()
        .filter_map(|r| r["displayName"].as_str())
        .collect();
    for r in [
        "ServiceAdministrator",
        "ServiceDeveloper",
        "ServiceViewer",
        "ServiceMonitor",
        "ServiceDeployer",
        "ServiceUser",
        "ServiceInvoker",
    ] {
        assert!(names.contains(&r), "{r} missing");
    }
    let dev_role = scim
        .filter(
            "AppRoles",
            &format!(r#"app.value eq "{app_id}" and displayName eq "ServiceDeveloper""#),
        )
        .await;
    assert_eq!(dev_role["totalResults"], 1);
    let role_id = dev_role["Resources"][0]["id"]
        .as_str()
        .expect("role id")
        .to_string();
    // Grant: 201, then 409.
    let grant = json!({
        "schemas": ["urn:ietf:params:scim:schemas:oracle:idcs:Grant"],
        "grantee": {"type": "User", "value": uid},
        "app": {"value": app_id},
        "entitlement": {"attributeName": "appRoles", "attributeValue": role_id},
        "grantMechanism": "ADMINISTRATOR_TO_USER"
    });
    let r = scim.call(Method::POST, "/Grants", Some(&grant)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: serde_json::Value = r.json().await.expect("json");
    let gid = created["id"].as_str().expect("grant id").to_string();
    assert_eq!(
        h.granted_roles("prod", "jane.doe@example.com"),
        vec!["ServiceDeveloper".to_string()]
    );
    let r = scim.call(Method::POST, "/Grants", Some(&grant)).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let e: serde_json::Value = r.json().await.expect("json");
    assert_eq!(e["status"], "409");
    assert_eq!(e["scimType"], "uniqueness");
    assert_eq!(
        e["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    // Check existing via filter and via .search.
    let f = format!(r#"grantee.value eq "{uid}" and app.value eq "{app_id}""#);
    let l = scim.filter("Grants", &f).await;
    assert_eq!(l["totalResults"], 1);
    let s: serde_json::Value = scim
        .call(Method::POST, "/Grants/.search", Some(&json!({"filter": f})))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(s["Resources"][0]["id"], gid.as_str());
    // Revoke: 204, then 404.
    let revoke = format!("/Grants/{gid}");
    let r = scim.call(Method::DELETE, &revoke, None).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = scim.call(Method::DELETE, &revoke, None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(h.granted_roles("prod", "jane.doe@example.com").is_empty());
    // Bad grant references.
    let mut bad = grant.clone();
    bad["entitlement"]["attributeValue"] = json!("nope");
    let r = scim.call(Method::POST, "/Grants", Some(&bad)).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn group_grants_patch_and_auth() {
    let h = start().await;
    let new_uid = h.add_user("omar.haddad@example.com", "Omar Haddad");
    let gid = h.add_group("OIC-Ops", &["ana.silva@example.com"]);
    let scim = Scim::new(&h).await;
    let patch = json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value": new_uid, "type":"User"}]}]});
    let r = scim
        .call(Method::PATCH, &format!("/Groups/{gid}"), Some(&patch))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let g: serde_json::Value = r.json().await.expect("json");
    assert_eq!(g["members"].as_array().expect("members").len(), 2);
    // Group grant → the member inherits the role.
    let app_id = h.instance("dev").expect("dev").idcs_app_id.clone();
    let roles = scim
        .filter(
            "AppRoles",
            &format!(r#"app.value eq "{app_id}" and displayName eq "ServiceViewer""#),
        )
        .await;
    let role_id = roles["Resources"][0]["id"]
        .as_str()
        .expect("role")
        .to_string();
    let grant = json!({"grantee":{"type":"Group","value":gid},"app":{"value":app_id},"entitlement":{"attributeName":"appRoles","attributeValue":role_id},"grantMechanism":"ADMINISTRATOR_TO_GROUP"});
    let r = scim.call(Method::POST, "/Grants", Some(&grant)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        h.granted_roles("dev", "omar.haddad@example.com"),
        vec!["ServiceViewer".to_string()]
    );
    // Auth: none → 401, instance token → 403, bad filter → 400.
    let users = format!("{}/Users", scim.base);
    let http = Client::new();
    let r = http.get(&users).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let inst_tok = fetch_token(&http, h.instance("dev").expect("dev")).await;
    let r = http
        .get(&users)
        .bearer_auth(&inst_tok)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = scim
        .call(
            Method::GET,
            &format!("/Users?filter={}", enc("userName equals x")),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Paging.
    let p = scim.json("/Users?count=2&startIndex=2").await;
    assert_eq!(p["startIndex"], 2);
    assert_eq!(p["Resources"].as_array().expect("res").len(), 2);
    assert!(p["totalResults"].as_u64().is_some_and(|t| t >= 4));
}
