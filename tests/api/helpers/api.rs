//! The admin and public APIs as tests call them.

use super::{TOKEN, TestApp};
use reqwest::{Response, StatusCode};
use serde_json::Value;

impl TestApp {
    pub async fn admin_get(&self, path: &str) -> Response {
        self.client
            .get(self.admin_url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("admin GET")
    }

    pub async fn admin_send(&self, method: reqwest::Method, path: &str, body: &Value) -> Response {
        self.client
            .request(method, self.admin_url(path))
            .bearer_auth(TOKEN)
            .json(body)
            .send()
            .await
            .expect("admin request")
    }

    pub async fn post_link(&self, body: Value) -> Response {
        self.admin_send(reqwest::Method::POST, "/v1/links", &body)
            .await
    }

    /// Creates a link and returns its JSON, asserting `201`.
    pub async fn create_link(&self, body: Value) -> Value {
        let response = self.post_link(body).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.expect("a link")
    }

    pub async fn patch_link(&self, code: &str, body: Value) -> Response {
        self.admin_send(reqwest::Method::PATCH, &format!("/v1/links/{code}"), &body)
            .await
    }

    /// `GET /{code}` as a lead's phone would, without following the redirect.
    pub async fn click(&self, code: &str) -> Response {
        self.client
            .get(format!("{}/{code}", self.public))
            .header(
                "user-agent",
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
            )
            .send()
            .await
            .expect("public GET")
    }

    /// Subscribes `url` with the extra fields of `filters`; returns the subscription.
    pub async fn subscribe(&self, url: &str, filters: Value) -> Value {
        let mut body = serde_json::json!({ "url": url });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), filters.as_object()) {
            body.extend(extra.clone());
        }
        let response = self
            .admin_send(reqwest::Method::POST, "/v1/webhooks", &body)
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    /// `GET /{code}` with a given User-Agent (`None`: no header at all).
    pub async fn click_as(&self, code: &str, agent: Option<&str>) -> Response {
        let mut request = self.client.get(format!("{}/{code}", self.public));
        if let Some(agent) = agent {
            request = request.header("user-agent", agent);
        }
        request.send().await.expect("public GET")
    }

    /// `GET path` on the admin API, its body as JSON.
    pub async fn admin_json(&self, path: &str) -> Value {
        self.admin_get(path)
            .await
            .json()
            .await
            .expect("a JSON body")
    }

    pub async fn stats(&self, code: &str) -> Value {
        self.admin_json(&format!("/v1/links/{code}/stats")).await
    }
}
