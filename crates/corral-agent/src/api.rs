//! The request and answer bodies of the SSM calls the agent makes.
//!
//! Small serde structs of our own rather than `corral-api`'s generated types: the agent needs six
//! shapes, and the generated crate brings botocore's validation tables and `regex` along, which
//! would grow a binary meant to stay small on every managed machine. Field names are the wire's
//! (agent-protocol.md §1.3, §2, §5.4).

use corral_wire::time::Timestamp;
use serde::{Deserialize, Serialize};

/// `RegisterManagedInstance` (anonymous).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterManagedInstanceRequest<'a> {
    /// The activation code (the secret).
    pub activation_code: &'a str,
    /// The activation ID.
    pub activation_id: &'a str,
    /// Base64 DER SubjectPublicKeyInfo of the instance key.
    pub public_key: &'a str,
    /// Always `Rsa`.
    pub public_key_type: &'a str,
    /// The machine fingerprint.
    pub fingerprint: &'a str,
}

/// The answer to `RegisterManagedInstance`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterManagedInstanceResult {
    /// The new managed instance ID.
    pub instance_id: String,
}

/// `RequestManagedInstanceRoleToken` (RSA-signed).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RequestManagedInstanceRoleTokenRequest<'a> {
    /// The machine fingerprint sent at registration.
    pub fingerprint: &'a str,
}

/// The answer to `RequestManagedInstanceRoleToken`. The secret fields are never logged: the
/// type deliberately does not implement `Debug`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RequestManagedInstanceRoleTokenResult {
    /// Temporary access key ID.
    pub access_key_id: String,
    /// Temporary secret access key.
    pub secret_access_key: String,
    /// Session token, sent as `X-Amz-Security-Token`.
    pub session_token: String,
    /// Expiry, epoch seconds (or ISO-8601).
    pub token_expiration_date: Timestamp,
    /// The control plane asks for a new key pair.
    #[serde(default)]
    pub update_key_pair: bool,
}

/// `UpdateManagedInstancePublicKey` (RSA-signed with the old key).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateManagedInstancePublicKeyRequest<'a> {
    /// Base64 DER SPKI of the new key.
    pub new_public_key: &'a str,
    /// Always `Rsa`.
    pub new_public_key_type: &'a str,
}

/// `UpdateInstanceInformation`, the health ping.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateInstanceInformationRequest {
    /// Managed instance ID.
    pub instance_id: String,
    /// `corral-agent`.
    pub agent_name: String,
    /// `Active`.
    pub agent_status: String,
    /// The agent's version, `x.y.z`.
    pub agent_version: String,
    /// `Linux`, `Windows` or `MacOS`.
    pub platform_type: String,
    /// OS name, e.g. `Ubuntu`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform_name: Option<String>,
    /// OS version, e.g. `24.04`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform_version: Option<String>,
    /// The machine's main IPv4 address.
    #[serde(rename = "IPAddress", skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    /// Host name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub computer_name: Option<String>,
}

/// `ListInstanceAssociations`; the answer is ignored until State Manager arrives.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListInstanceAssociationsRequest<'a> {
    /// Managed instance ID.
    pub instance_id: &'a str,
}

/// An answer whose content the agent does not need (`{}`), accepting any JSON object.
#[derive(Debug, Deserialize)]
pub struct Ignored {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bodies_use_wire_names() {
        let body = serde_json::to_value(RegisterManagedInstanceRequest {
            activation_code: "c",
            activation_id: "i",
            public_key: "k",
            public_key_type: "Rsa",
            fingerprint: "f",
        })
        .expect("json");
        assert_eq!(
            body,
            serde_json::json!({"ActivationCode":"c","ActivationId":"i","PublicKey":"k","PublicKeyType":"Rsa","Fingerprint":"f"})
        );
        let body = serde_json::to_value(UpdateManagedInstancePublicKeyRequest {
            new_public_key: "k",
            new_public_key_type: "Rsa",
        })
        .expect("json");
        assert_eq!(body, serde_json::json!({"NewPublicKey":"k","NewPublicKeyType":"Rsa"}));
        let body = serde_json::to_value(UpdateInstanceInformationRequest {
            instance_id: "mi-1".into(),
            agent_name: "corral-agent".into(),
            agent_status: "Active".into(),
            agent_version: "0.1.0".into(),
            platform_type: "Linux".into(),
            platform_name: Some("Debian GNU/Linux".into()),
            platform_version: None,
            ip_address: Some("10.0.0.5".into()),
            computer_name: Some("web1".into()),
        })
        .expect("json");
        assert_eq!(
            body,
            serde_json::json!({"InstanceId":"mi-1","AgentName":"corral-agent","AgentStatus":"Active",
                "AgentVersion":"0.1.0","PlatformType":"Linux","PlatformName":"Debian GNU/Linux",
                "IPAddress":"10.0.0.5","ComputerName":"web1"})
        );
    }

    #[test]
    fn role_token_answers() {
        let parsed: RequestManagedInstanceRoleTokenResult = serde_json::from_str(
            r#"{"AccessKeyId":"ASIA","SecretAccessKey":"s","SessionToken":"t","TokenExpirationDate":1764064800.5,"UpdateKeyPair":true}"#,
        )
        .expect("parse");
        assert_eq!(parsed.token_expiration_date.0.unix_timestamp(), 1_764_064_800);
        assert!(parsed.update_key_pair);
        let parsed: RequestManagedInstanceRoleTokenResult = serde_json::from_str(
            r#"{"AccessKeyId":"ASIA","SecretAccessKey":"s","SessionToken":"t","TokenExpirationDate":"2025-11-25T10:00:00Z"}"#,
        )
        .expect("parse");
        assert_eq!(parsed.token_expiration_date.0.unix_timestamp(), 1_764_064_800);
        assert!(!parsed.update_key_pair);
        assert!(serde_json::from_str::<RequestManagedInstanceRoleTokenResult>(r#"{"AccessKeyId":"A"}"#).is_err());
    }
}
