//! The services and operations Corral generates code for: the one place to extend.
//!
//! Operations the agent calls that botocore's public model lacks are described in
//! `xtask/models/<service>.supplement.json` (botocore's format) and merged in first.
//!
//! To support another operation, add its botocore name to the service's `operations` list below and
//! run `cargo run -p xtask -- codegen`. Every structure reachable from the operation's input and
//! output is generated with it. A new service needs a new [`ServiceSpec`] entry (its module name
//! is the botocore service name).

/// One botocore service model and the operations of it that Corral implements.
pub struct ServiceSpec {
    /// botocore's service name, also the generated module's name (`data/<name>/...`).
    pub name: &'static str,
    /// The model's API version (`data/<name>/<api_version>/service-2.json.gz`).
    pub api_version: &'static str,
    /// Operation names as botocore spells them. Order does not matter; output is sorted.
    pub operations: &'static [&'static str],
    /// Shapes whose values Query responses carry URL-encoded (IAM policy documents).
    pub policy_document_shapes: &'static [&'static str],
}

/// Every generated service.
pub const SERVICES: &[ServiceSpec] = &[
    ServiceSpec {
        name: "cloudtrail",
        api_version: "2013-11-01",
        operations: &["LookupEvents"],
        policy_document_shapes: &[],
    },
    // Not in botocore: the whole model is xtask/models/ec2messages.model.json.
    ServiceSpec {
        name: "ec2messages",
        api_version: "2016-11-14",
        operations: &["AcknowledgeMessage", "DeleteMessage", "FailMessage", "GetEndpoint", "GetMessages", "SendReply"],
        policy_document_shapes: &[],
    },
    ServiceSpec {
        name: "iam",
        api_version: "2010-05-08",
        operations: &[
            "AddUserToGroup",
            "AttachGroupPolicy",
            "AttachRolePolicy",
            "AttachUserPolicy",
            "CreateAccessKey",
            "CreateGroup",
            "CreatePolicy",
            "CreatePolicyVersion",
            "CreateRole",
            "CreateUser",
            "DeleteAccessKey",
            "DeleteGroup",
            "DeleteGroupPolicy",
            "DeletePolicy",
            "DeletePolicyVersion",
            "DeleteRole",
            "DeleteRolePolicy",
            "DeleteUser",
            "DeleteUserPolicy",
            "DetachGroupPolicy",
            "DetachRolePolicy",
            "DetachUserPolicy",
            "GetGroup",
            "GetGroupPolicy",
            "GetPolicy",
            "GetPolicyVersion",
            "GetRole",
            "GetRolePolicy",
            "GetUser",
            "GetUserPolicy",
            "ListAccessKeys",
            "ListAttachedGroupPolicies",
            "ListAttachedRolePolicies",
            "ListAttachedUserPolicies",
            "ListGroupPolicies",
            "ListGroups",
            "ListGroupsForUser",
            "ListPolicies",
            "ListPolicyVersions",
            "ListRolePolicies",
            "ListRoleTags",
            "ListRoles",
            "ListUserPolicies",
            "ListUserTags",
            "ListUsers",
            "PutGroupPolicy",
            "PutRolePolicy",
            "PutUserPolicy",
            "RemoveUserFromGroup",
            "TagRole",
            "TagUser",
            "UntagRole",
            "UntagUser",
            "UpdateAccessKey",
            "UpdateAssumeRolePolicy",
        ],
        policy_document_shapes: &["policyDocumentType"],
    },
    ServiceSpec {
        name: "ssm",
        api_version: "2014-11-06",
        operations: &[
            "AddTagsToResource",
            "CancelCommand",
            "CreateActivation",
            "CreateDocument",
            "DeleteActivation",
            "DeleteDocument",
            "DeregisterManagedInstance",
            "DescribeActivations",
            "DescribeDocument",
            "DescribeInstanceInformation",
            "GetCommandInvocation",
            "GetDocument",
            "GetServiceSetting",
            "ListCommandInvocations",
            "ListCommands",
            "ListDocumentVersions",
            "ListDocuments",
            "ListInstanceAssociations",
            "ListTagsForResource",
            "RegisterManagedInstance",
            "RemoveTagsFromResource",
            "RequestManagedInstanceRoleToken",
            "ResetServiceSetting",
            "SendCommand",
            "UpdateDocument",
            "UpdateDocumentDefaultVersion",
            "UpdateInstanceInformation",
            "UpdateManagedInstancePublicKey",
            "UpdateManagedInstanceRole",
            "UpdateServiceSetting",
        ],
        policy_document_shapes: &[],
    },
    ServiceSpec {
        name: "sts",
        api_version: "2011-06-15",
        operations: &["AssumeRole", "GetCallerIdentity", "GetSessionToken"],
        policy_document_shapes: &[],
    },
];
