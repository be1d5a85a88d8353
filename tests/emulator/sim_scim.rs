//! Emulator identity domain SCIM (§10): users, groups, apps, app roles, grants.

use crate::support::sim as common;

use common::*;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

async fn admin_token(h: &ferry::sim::SimHandle, http: &Client) -> String {
    let r = http
        .post(format!("{}/oauth2/v1/token", h.info.identity_url))
        .basic_auth(&h.info.admin_client_id, Some(&h.info.admin_client_secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "urn:opc:idm:__myscopes__"),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    r.json::<Value>().await.expect("json")["access_token"]
        .as_str()
        .expect("token")
        .to_string()
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[tokio::test]
async fn find_and_grant_roles() {
    let h = start().await;
    let http = Client::new();
    let tok = admin_token(&h, &http).await;
    let base = format!("{}/admin/v1", h.info.identity_url);
    let get = |path: String| http.get(format!("{base}{path}")).bearer_auth(&tok).send();
    // User by e-mail and by userName.
    let u: Value = get(format!(
        "/Users?filter={}",
        enc(r#"emails.value eq "jane.doe@example.com""#)
    ))
    .await
    .expect("send")
    .json()
    .await
    .expect("json");
    assert_eq!(u["totalResults"], 1);
    assert_eq!(
        u["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:ListResponse"
    );
    let uid = u["Resources"][0]["id"].as_str().expect("id").to_string();
    let u2: Value = get(format!(
        "/Users?filter={}",
        enc(r#"userName eq "JANE.DOE@example.com""#)
    ))
    .await
    .expect("send")
    .json()
    .await
    .expect("json");
    assert_eq!(u2["Resources"][0]["id"], uid.as_str());
    let none: Value = get(format!(
        "/Users?filter={}",
        enc(r#"userName eq "nobody@example.com""#)
    ))
    .await
    .expect("send")
    .json()
    .await
    .expect("json");
    assert_eq!(none["totalResults"], 0);
    // Group.
    let g: Value = get(format!(
        "/Groups?filter={}",
        enc(r#"displayName eq "OIC-Developers""#)
    ))
    .await
    .expect("send")
    .json()
    .await
    .expect("json");
    assert_eq!(
        g["Resources"][0]["members"]
            .as_array()
            .expect("members")
            .len(),
        2
    );
    // App of the prod instance and its roles.
    let app_id = h.instance("prod").expect("prod").idcs_app_id.clone();
    let a: Value = get(format!(
        "/Apps?filter={}",
        enc(r#"displayName co "prod-sim-lo""#)
    ))
    .await
    .expect("send")
    .json()
    .await
    .expect("json");
    assert_eq!(a["totalResults"], 1);
    assert_eq!(a["Resources"][0]["id"], app_id.as_str());
    let roles: Value = get(format!(
        "/AppRoles?filter={}",
        enc(&format!(r#"app.value eq "{app_id}""#))
    ))
    .await
    .expect("send")
    .json()
    .await
    .expect("json");
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
    let dev_role: Value = get(format!(
        "/AppRoles?filter={}",
        enc(&format!(
            r#"app.value eq "{app_id}" and displayName eq "ServiceDeveloper""#
        ))
    ))
    .await
    .expect("send")
    .json()
    .await
    .expect("json");
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
    let r = http
        .post(format!("{base}/Grants"))
        .bearer_auth(&tok)
        .json(&grant)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.expect("json");
    let gid = created["id"].as_str().expect("grant id").to_string();
    assert_eq!(
        h.granted_roles("prod", "jane.doe@example.com"),
        vec!["ServiceDeveloper".to_string()]
    );
    let r = http
        .post(format!("{base}/Grants"))
        .bearer_auth(&tok)
        .json(&grant)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let e: Value = r.json().await.expect("json");
    assert_eq!(e["status"], "409");
    assert_eq!(e["scimType"], "uniqueness");
    assert_eq!(
        e["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    // Check existing via filter and via .search.
    let f = format!(r#"grantee.value eq "{uid}" and app.value eq "{app_id}""#);
    let l: Value = get(format!("/Grants?filter={}", enc(&f)))
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(l["totalResults"], 1);
    let s: Value = http
        .post(format!("{base}/Grants/.search"))
        .bearer_auth(&tok)
        .json(&json!({"filter": f}))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(s["Resources"][0]["id"], gid.as_str());
    // Revoke: 204, then 404.
    let r = http
        .delete(format!("{base}/Grants/{gid}"))
        .bearer_auth(&tok)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = http
        .delete(format!("{base}/Grants/{gid}"))
        .bearer_auth(&tok)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(h.granted_roles("prod", "jane.doe@example.com").is_empty());
    // Bad grant references.
    let mut bad = grant.clone();
    bad["entitlement"]["attributeValue"] = json!("nope");
    let r = http
        .post(format!("{base}/Grants"))
        .bearer_auth(&tok)
        .json(&bad)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn group_grants_patch_and_auth() {
    let h = start().await;
    let http = Client::new();
    let new_uid = h.add_user("omar.haddad@example.com", "Omar Haddad");
    let gid = h.add_group("OIC-Ops", &["ana.silva@example.com"]);
    let tok = admin_token(&h, &http).await;
    let base = format!("{}/admin/v1", h.info.identity_url);
    let patch = json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value": new_uid, "type":"User"}]}]});
    let r = http
        .patch(format!("{base}/Groups/{gid}"))
        .bearer_auth(&tok)
        .json(&patch)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    let g: Value = r.json().await.expect("json");
    assert_eq!(g["members"].as_array().expect("members").len(), 2);
    // Group grant → the member inherits the role.
    let app_id = h.instance("dev").expect("dev").idcs_app_id.clone();
    let roles: Value = http
        .get(format!(
            "{base}/AppRoles?filter={}",
            enc(&format!(
                r#"app.value eq "{app_id}" and displayName eq "ServiceViewer""#
            ))
        ))
        .bearer_auth(&tok)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let role_id = roles["Resources"][0]["id"]
        .as_str()
        .expect("role")
        .to_string();
    let grant = json!({"grantee":{"type":"Group","value":gid},"app":{"value":app_id},"entitlement":{"attributeName":"appRoles","attributeValue":role_id},"grantMechanism":"ADMINISTRATOR_TO_GROUP"});
    let r = http
        .post(format!("{base}/Grants"))
        .bearer_auth(&tok)
        .json(&grant)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        h.granted_roles("dev", "omar.haddad@example.com"),
        vec!["ServiceViewer".to_string()]
    );
    // Auth: none → 401, instance token → 403, bad filter → 400.
    let r = http
        .get(format!("{base}/Users"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let inst_tok = fetch_token(&http, h.instance("dev").expect("dev")).await;
    let r = http
        .get(format!("{base}/Users"))
        .bearer_auth(&inst_tok)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = http
        .get(format!("{base}/Users?filter={}", enc("userName equals x")))
        .bearer_auth(&tok)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Paging.
    let p: Value = http
        .get(format!("{base}/Users?count=2&startIndex=2"))
        .bearer_auth(&tok)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(p["startIndex"], 2);
    assert_eq!(p["Resources"].as_array().expect("res").len(), 2);
    assert!(p["totalResults"].as_u64().is_some_and(|t| t >= 4));
}
