//! The AWS-owned documents Corral serves to every account and region without storing them
//! (as `services/iam/managed.rs` serves the AWS managed policies): Owner `Amazon`, one version,
//! ARNs with an empty account field. Their content is in `aws_owned/`, written for Corral in
//! the shape AWS's documents of the same names have (parameters `commands`,
//! `workingDirectory`, `executionTimeout`; one `runtimeConfig` plugin).

use time::macros::datetime;
use time::OffsetDateTime;

/// An AWS-owned document.
pub struct AwsDocument {
    /// Its name.
    pub name: &'static str,
    /// `DocumentType`.
    pub document_type: &'static str,
    /// The content (JSON).
    pub content: &'static str,
    /// When it was published (shown as `CreatedDate`).
    pub created_at: OffsetDateTime,
}

/// The owner shown for AWS-owned documents.
pub const AMAZON: &str = "Amazon";

/// Every AWS-owned document, ordered by name (byte order), as listings merge them.
pub const AWS_DOCUMENTS: &[AwsDocument] = &[
    AwsDocument {
        name: "AWS-RunPowerShellScript",
        document_type: "Command",
        content: include_str!("aws_owned/AWS-RunPowerShellScript.json"),
        created_at: datetime!(2017-08-31 00:00:00 UTC),
    },
    AwsDocument {
        name: "AWS-RunShellScript",
        document_type: "Command",
        content: include_str!("aws_owned/AWS-RunShellScript.json"),
        created_at: datetime!(2017-08-31 00:00:00 UTC),
    },
];

/// The AWS-owned document named `name` (exact match).
pub fn find(name: &str) -> Option<&'static AwsDocument> {
    AWS_DOCUMENTS.iter().find(|d| d.name == name)
}

/// `arn:aws:ssm:<region>::document/<name>`: AWS-owned documents have no account.
pub fn arn(region: &str, name: &str) -> String {
    format!("arn:aws:ssm:{region}::document/{name}")
}

#[cfg(test)]
mod tests {
    use super::super::content::{parse, Format};
    use super::*;

    #[test]
    fn aws_documents_are_valid_and_sorted() {
        let names: Vec<&str> = AWS_DOCUMENTS.iter().map(|d| d.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        for d in AWS_DOCUMENTS {
            let doc = parse(d.content, Format::Json, d.document_type).expect(d.name);
            assert_eq!(doc.schema_version, "1.2");
            let params: Vec<&str> = doc.parameters.iter().map(|p| p.name.as_str()).collect();
            assert_eq!(params, ["commands", "workingDirectory", "executionTimeout"]);
        }
        assert_eq!(arn("eu-west-1", "AWS-RunShellScript"), "arn:aws:ssm:eu-west-1::document/AWS-RunShellScript");
    }
}
