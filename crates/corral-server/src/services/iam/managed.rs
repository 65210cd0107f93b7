//! The AWS managed policies Corral ships, so `attach-role-policy --policy-arn
//! arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore` works out of the box. Their documents
//! are the action lists AWS publishes for them (in `aws_managed/`).

/// An AWS managed policy.
pub struct AwsManagedPolicy {
    /// The policy's name.
    pub name: &'static str,
    /// Its unique ID (`ANPA...`).
    pub policy_id: &'static str,
    /// Its current default version.
    pub default_version_id: &'static str,
    /// AWS's description.
    pub description: &'static str,
    /// The policy document (JSON).
    pub document: &'static str,
}

impl AwsManagedPolicy {
    /// `arn:aws:iam::aws:policy/<name>`.
    pub fn arn(&self) -> String {
        format!("arn:aws:iam::aws:policy/{}", self.name)
    }
}

/// Every AWS managed policy Corral knows.
pub const AWS_MANAGED_POLICIES: &[AwsManagedPolicy] = &[
    AwsManagedPolicy {
        name: "AdministratorAccess",
        policy_id: "ANPAIWMBCKSKIEE64ZLYK",
        default_version_id: "v1",
        description: "Provides full access to AWS services and resources.",
        document: include_str!("aws_managed/AdministratorAccess.json"),
    },
    AwsManagedPolicy {
        name: "AmazonSSMFullAccess",
        policy_id: "ANPAJA7V6HI4ISQFMDYAG",
        default_version_id: "v5",
        description: "Provides full access to Amazon SSM.",
        document: include_str!("aws_managed/AmazonSSMFullAccess.json"),
    },
    AwsManagedPolicy {
        name: "AmazonSSMManagedInstanceCore",
        policy_id: "ANPAIXSHM2BNB2D3AXXRU",
        default_version_id: "v2",
        description: "The policy for Amazon EC2 Role to enable AWS Systems Manager service core functionality.",
        document: include_str!("aws_managed/AmazonSSMManagedInstanceCore.json"),
    },
    AwsManagedPolicy {
        name: "AmazonSSMReadOnlyAccess",
        policy_id: "ANPAJODSKQGGJTHRYZ5FC",
        default_version_id: "v1",
        description: "Provides read only access to Amazon SSM.",
        document: include_str!("aws_managed/AmazonSSMReadOnlyAccess.json"),
    },
];

/// Looks up an AWS managed policy by ARN.
pub fn find_by_arn(arn: &str) -> Option<&'static AwsManagedPolicy> {
    let name = arn.strip_prefix("arn:aws:iam::aws:policy/")?;
    AWS_MANAGED_POLICIES.iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_documents_are_valid_identity_policies() {
        for p in AWS_MANAGED_POLICIES {
            corral_iam::policy::parse(p.document, corral_iam::policy::PolicyKind::Identity)
                .unwrap_or_else(|e| panic!("{}: {e}", p.name));
            assert_eq!(p.policy_id.len(), 21);
            assert!(find_by_arn(&p.arn()).is_some());
        }
        assert!(find_by_arn("arn:aws:iam::aws:policy/NoSuchPolicy").is_none());
    }
}
