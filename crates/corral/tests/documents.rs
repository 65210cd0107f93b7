//! SSM documents end to end with the AWS SDK: the AWS-owned documents every account sees,
//! user documents in JSON and YAML, versions, the default version, format conversion, every
//! document error, listing filters and pages, tags, and IAM on documents.

mod common;

use aws_sdk_ssm::error::ProvideErrorMetadata;
use aws_sdk_ssm::types::{
    DocumentFilter, DocumentFilterKey, DocumentFormat, DocumentKeyValuesFilter, DocumentType, ResourceTypeForTagging,
    Tag,
};
use common::*;

const RESTART_YAML: &str = r#"schemaVersion: "2.2"
description: Restart a service
parameters:
  svc:
    type: String
    default: nginx
    description: Service name
    allowedValues: [nginx, sshd]
mainSteps:
  - action: aws:runShellScript
    name: restart
    inputs:
      runCommand:
        - systemctl restart {{ svc }}
"#;

const INVENTORY_JSON: &str = r#"{
  "schemaVersion": "1.2",
  "description": "Collect inventory",
  "parameters": {
    "commands": {"type": "StringList", "description": "What to run"},
    "executionTimeout": {"type": "String", "default": "600"}
  },
  "runtimeConfig": {
    "aws:runPowerShellScript": {
      "properties": [{"id": "0.aws:runPowerShellScript", "runCommand": "{{ commands }}",
                      "timeoutSeconds": "{{ executionTimeout }}"}]
    }
  }
}"#;

fn json_doc(description: &str) -> String {
    format!(
        r#"{{"schemaVersion": "2.2", "description": "{description}", "mainSteps": [
            {{"action": "aws:runShellScript", "name": "run", "inputs": {{"runCommand": ["echo {description}"]}}}}]}}"#
    )
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build().expect("tag")
}

fn filter(key: &str, values: &[&str]) -> DocumentKeyValuesFilter {
    let mut f = DocumentKeyValuesFilter::builder().key(key);
    for v in values {
        f = f.values(*v);
    }
    f.build()
}

async fn create(ssm: &aws_sdk_ssm::Client, name: &str, content: &str, format: DocumentFormat) {
    ssm.create_document()
        .name(name)
        .content(content)
        .document_type(DocumentType::Command)
        .document_format(format)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e:?}"));
}

fn sha256(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_owned_documents_are_served_to_everyone() {
    let (_dir, server) = TestServer::start_fresh();
    let ssm = server.ssm();
    for (name, plugin, platforms) in [
        ("AWS-RunShellScript", "aws:runShellScript", vec!["Linux", "MacOS"]),
        ("AWS-RunPowerShellScript", "aws:runPowerShellScript", vec!["Windows", "Linux"]),
    ] {
        let d = ssm.describe_document().name(name).send().await.expect("describe").document.expect("document");
        assert_eq!(d.name(), Some(name));
        assert_eq!(d.owner(), Some("Amazon"));
        assert_eq!(d.document_version(), Some("1"));
        assert_eq!((d.latest_version(), d.default_version()), (Some("1"), Some("1")));
        assert_eq!(d.schema_version(), Some("1.2"));
        assert_eq!(d.document_format().map(|f| f.as_str()), Some("JSON"));
        assert_eq!(d.document_type().map(|t| t.as_str()), Some("Command"));
        assert_eq!(d.status().map(|s| s.as_str()), Some("Active"));
        assert_eq!(d.hash_type().map(|h| h.as_str()), Some("Sha256"));
        let got_platforms: Vec<&str> = d.platform_types().iter().map(|p| p.as_str()).collect();
        assert_eq!(got_platforms, platforms);
        let params: Vec<(&str, &str, Option<&str>)> = d
            .parameters()
            .iter()
            .map(|p| (p.name().unwrap_or(""), p.r#type().map(|t| t.as_str()).unwrap_or(""), p.default_value()))
            .collect();
        assert_eq!(
            params,
            [
                ("commands", "StringList", None),
                ("workingDirectory", "String", Some("")),
                ("executionTimeout", "String", Some("3600"))
            ]
        );

        let got = ssm.get_document().name(name).send().await.expect("get");
        assert_eq!(got.document_format().map(|f| f.as_str()), Some("JSON"));
        let content = got.content().expect("content");
        assert_eq!(d.hash(), Some(sha256(content).as_str()));
        let body: serde_json::Value = serde_json::from_str(content).expect("JSON content");
        assert_eq!(body["schemaVersion"], "1.2");
        let props = &body["runtimeConfig"][plugin]["properties"][0];
        assert_eq!(props["id"], format!("0.{plugin}"));
        assert_eq!(props["runCommand"], "{{ commands }}");
        assert_eq!(props["workingDirectory"], "{{ workingDirectory }}");
        assert_eq!(props["timeoutSeconds"], "{{ executionTimeout }}");
        assert_eq!(body["parameters"]["executionTimeout"]["default"], "3600");

        // Also by ARN (empty account), and as YAML.
        let arn = format!("arn:aws:ssm:us-east-1::document/{name}");
        ssm.describe_document().name(&arn).send().await.expect("describe by ARN");
        let yaml = ssm.get_document().name(name).document_format(DocumentFormat::Yaml).send().await.expect("yaml");
        assert_eq!(yaml.document_format().map(|f| f.as_str()), Some("YAML"));
        let back: serde_json::Value = serde_norway::from_str(yaml.content().unwrap()).expect("YAML content");
        assert_eq!(back, body);

        let versions = ssm.list_document_versions().name(name).send().await.expect("versions");
        assert_eq!(versions.document_versions().len(), 1);
        assert!(versions.document_versions()[0].is_default_version());

        // Not the account's to change.
        let err = ssm.update_document().name(name).content(json_doc("x")).send().await.expect_err("update");
        assert_eq!(err.code(), Some("InvalidDocumentOperation"), "{err:?}");
        let err = ssm.delete_document().name(name).send().await.expect_err("delete");
        assert_eq!(err.code(), Some("InvalidDocumentOperation"), "{err:?}");
        let err = ssm
            .add_tags_to_resource()
            .resource_type(ResourceTypeForTagging::Document)
            .resource_id(name)
            .tags(tag("a", "b"))
            .send()
            .await
            .expect_err("tag");
        assert_eq!(err.code(), Some("InvalidResourceId"), "{err:?}");
    }

    // Listed by default and with Owner Amazon; not with Owner Self.
    let names = |r: aws_sdk_ssm::operation::list_documents::ListDocumentsOutput| -> Vec<String> {
        r.document_identifiers().iter().filter_map(|d| d.name().map(str::to_string)).collect()
    };
    let all = ssm.list_documents().send().await.expect("list");
    assert_eq!(names(all), ["AWS-RunPowerShellScript", "AWS-RunShellScript"]);
    let amazon = ssm.list_documents().filters(filter("Owner", &["Amazon"])).send().await.expect("amazon");
    assert_eq!(amazon.document_identifiers()[0].owner(), Some("Amazon"));
    assert_eq!(names(amazon).len(), 2);
    let mine = ssm.list_documents().filters(filter("Owner", &["Self"])).send().await.expect("self");
    assert!(names(mine).is_empty());

    // Their names (and any aws/amazon/amzn prefix) are reserved.
    for name in ["AWS-RunShellScript", "aws-mine", "Amazon-Thing", "AMZN.x"] {
        let err = ssm.create_document().name(name).content(json_doc("x")).send().await.expect_err("reserved");
        assert_eq!(err.code(), Some("ValidationException"), "{name}: {err:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_versions_and_formats() {
    let (_dir, server) = TestServer::start_fresh();
    let ssm = server.ssm();
    let acct = server.account_id.clone();

    // YAML, schema 2.2, with tags.
    let created = ssm
        .create_document()
        .name("Restart")
        .content(RESTART_YAML)
        .document_type(DocumentType::Command)
        .document_format(DocumentFormat::Yaml)
        .version_name("v-one")
        .tags(tag("team", "ops"))
        .send()
        .await
        .expect("create YAML")
        .document_description
        .expect("description");
    assert_eq!(created.owner(), Some(acct.as_str()));
    assert_eq!(created.hash(), Some(sha256(RESTART_YAML).as_str()));
    assert_eq!(created.schema_version(), Some("2.2"));
    assert_eq!(created.description(), Some("Restart a service"));
    assert_eq!(created.version_name(), Some("v-one"));
    assert_eq!(created.document_format().map(|f| f.as_str()), Some("YAML"));
    assert_eq!(created.platform_types().iter().map(|p| p.as_str()).collect::<Vec<_>>(), ["Linux", "MacOS"]);
    assert_eq!(created.tags().len(), 1);
    assert_eq!(created.parameters()[0].default_value(), Some("nginx"));

    // JSON, schema 1.2.
    create(&ssm, "Inventory", INVENTORY_JSON, DocumentFormat::Json).await;
    let inv = ssm.describe_document().name("Inventory").send().await.unwrap().document.unwrap();
    assert_eq!(inv.platform_types().iter().map(|p| p.as_str()).collect::<Vec<_>>(), ["Windows", "Linux"]);
    assert_eq!(inv.schema_version(), Some("1.2"));
    let arn = format!("arn:aws:ssm:us-east-1:{acct}:document/Inventory");
    ssm.describe_document().name(&arn).send().await.expect("by ARN");

    // The same name again.
    let err = ssm.create_document().name("Restart").content(json_doc("x")).send().await.expect_err("duplicate");
    assert_eq!(err.code(), Some("DocumentAlreadyExists"));
    assert_eq!(err.message(), Some("The specified document already exists."));

    // Content comes back as stored, or converted.
    let got = ssm.get_document().name("Restart").send().await.unwrap();
    assert_eq!(got.content(), Some(RESTART_YAML));
    assert_eq!(got.document_format().map(|f| f.as_str()), Some("YAML"));
    let as_json = ssm.get_document().name("Restart").document_format(DocumentFormat::Json).send().await.unwrap();
    let json: serde_json::Value = serde_json::from_str(as_json.content().unwrap()).expect("JSON");
    let yaml: serde_json::Value = serde_norway::from_str(RESTART_YAML).unwrap();
    assert_eq!(json, yaml);
    let as_yaml = ssm.get_document().name("Inventory").document_format(DocumentFormat::Yaml).send().await.unwrap();
    let back: serde_json::Value = serde_norway::from_str(as_yaml.content().unwrap()).unwrap();
    assert_eq!(back, serde_json::from_str::<serde_json::Value>(INVENTORY_JSON).unwrap());

    // Versions: a new one is latest + 1; the default stays.
    let v2_content = RESTART_YAML.replace("nginx, sshd", "nginx, sshd, cron");
    let v2 = ssm
        .update_document()
        .name("Restart")
        .content(&v2_content)
        .document_format(DocumentFormat::Yaml)
        .document_version("$LATEST")
        .version_name("v-two")
        .send()
        .await
        .expect("update")
        .document_description
        .unwrap();
    assert_eq!((v2.document_version(), v2.latest_version(), v2.default_version()), (Some("2"), Some("2"), Some("1")));
    let described = ssm.describe_document().name("Restart").send().await.unwrap().document.unwrap();
    assert_eq!(described.document_version(), Some("1"), "describe shows the default");
    let latest =
        ssm.describe_document().name("Restart").document_version("$LATEST").send().await.unwrap().document.unwrap();
    assert_eq!(latest.version_name(), Some("v-two"));
    let by_name = ssm.get_document().name("Restart").version_name("v-two").send().await.unwrap();
    assert_eq!(by_name.document_version(), Some("2"));

    // Only the latest may be updated; no duplicate content or version names.
    let err = ssm
        .update_document()
        .name("Restart")
        .content(json_doc("three"))
        .document_version("1")
        .send()
        .await
        .expect_err("old version");
    assert_eq!(err.code(), Some("InvalidDocumentVersion"));
    let err = ssm
        .update_document()
        .name("Restart")
        .content(RESTART_YAML)
        .document_format(DocumentFormat::Yaml)
        .send()
        .await
        .expect_err("same content");
    assert_eq!(err.code(), Some("DuplicateDocumentContent"));
    let err = ssm
        .update_document()
        .name("Restart")
        .content(json_doc("three"))
        .version_name("v-one")
        .send()
        .await
        .expect_err("same version name");
    assert_eq!(err.code(), Some("DuplicateDocumentVersionName"));
    let err = ssm.update_document().name("Absent").content(json_doc("x")).send().await.expect_err("absent");
    assert_eq!(err.code(), Some("InvalidDocument"));
    assert_eq!(err.message(), Some("The specified document does not exist."));

    // Versions that do not exist.
    for v in ["7", "$LATEST-ish"] {
        let err = ssm.get_document().name("Restart").document_version(v).send().await.expect_err("bad version");
        assert!(matches!(err.code(), Some("InvalidDocumentVersion" | "ValidationException")), "{v}: {err:?}");
    }
    let err = ssm.describe_document().name("Restart").version_name("nope").send().await.expect_err("bad name");
    assert_eq!(err.code(), Some("InvalidDocumentVersion"));

    // Default version.
    let out = ssm.update_document_default_version().name("Restart").document_version("2").send().await.unwrap();
    let desc = out.description.unwrap();
    assert_eq!((desc.default_version(), desc.default_version_name()), (Some("2"), Some("v-two")));
    let err = ssm.update_document_default_version().name("Restart").document_version("9").send().await.expect_err("9");
    assert_eq!(err.code(), Some("InvalidDocumentVersion"));
    let got = ssm.get_document().name("Restart").send().await.unwrap();
    assert_eq!(got.content(), Some(v2_content.as_str()));

    let versions = ssm.list_document_versions().name("Restart").send().await.unwrap();
    let listed: Vec<(&str, bool)> = versions
        .document_versions()
        .iter()
        .map(|v| (v.document_version().unwrap_or(""), v.is_default_version()))
        .collect();
    assert_eq!(listed, [("1", false), ("2", true)]);
    let page = ssm.list_document_versions().name("Restart").max_results(1).send().await.unwrap();
    assert_eq!(page.document_versions().len(), 1);
    let rest =
        ssm.list_document_versions().name("Restart").next_token(page.next_token().expect("more")).send().await.unwrap();
    assert_eq!(rest.document_versions()[0].document_version(), Some("2"));
    assert!(rest.next_token().is_none());

    // Deleting: not the default version alone; another version; then everything.
    let err = ssm.delete_document().name("Restart").document_version("2").send().await.expect_err("default");
    assert_eq!(err.code(), Some("InvalidDocumentOperation"));
    assert_eq!(err.message(), Some("Default version of the document can't be deleted."));
    ssm.delete_document().name("Restart").document_version("1").send().await.expect("delete v1");
    let err = ssm.get_document().name("Restart").document_version("1").send().await.expect_err("gone");
    assert_eq!(err.code(), Some("InvalidDocumentVersion"));
    ssm.delete_document().name("Restart").send().await.expect("delete all");
    let err = ssm.describe_document().name("Restart").send().await.expect_err("deleted");
    assert_eq!(err.code(), Some("InvalidDocument"));
    let err = ssm.delete_document().name("Restart").send().await.expect_err("deleted twice");
    assert_eq!(err.code(), Some("InvalidDocument"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_content_is_refused_as_aws_does() {
    let (_dir, server) = TestServer::start_fresh();
    let ssm = server.ssm();
    let cases: Vec<(&str, String, DocumentFormat, &str)> = vec![
        ("bad JSON", "{not json".into(), DocumentFormat::Json, "InvalidDocumentContent"),
        ("bad YAML", "a: [b".into(), DocumentFormat::Yaml, "InvalidDocumentContent"),
        ("YAML declared JSON", RESTART_YAML.into(), DocumentFormat::Json, "InvalidDocumentContent"),
        ("no schema", r#"{"mainSteps": []}"#.into(), DocumentFormat::Json, "InvalidDocumentContent"),
        (
            "schema 3.0",
            r#"{"schemaVersion": "3.0", "mainSteps": []}"#.into(),
            DocumentFormat::Json,
            "InvalidDocumentSchemaVersion",
        ),
        (
            "duplicate step",
            r#"{"schemaVersion": "2.2", "mainSteps": [
              {"action": "aws:runShellScript", "name": "a", "inputs": {"runCommand": ["x"]}},
              {"action": "aws:runShellScript", "name": "a", "inputs": {"runCommand": ["y"]}}]}"#
                .into(),
            DocumentFormat::Json,
            "InvalidDocumentContent",
        ),
        (
            "undeclared parameter",
            RESTART_YAML.replace("{{ svc }}", "{{ service }}"),
            DocumentFormat::Yaml,
            "InvalidDocumentContent",
        ),
        (
            "bad parameter type",
            RESTART_YAML.replace("type: String", "type: Text"),
            DocumentFormat::Yaml,
            "InvalidDocumentContent",
        ),
        ("too large", json_doc(&"x".repeat(64 * 1024)), DocumentFormat::Json, "MaxDocumentSizeExceeded"),
    ];
    for (what, content, format, code) in cases {
        let err =
            ssm.create_document().name("Bad").content(content).document_format(format).send().await.expect_err(what);
        assert_eq!(err.code(), Some(code), "{what}: {err:?}");
        if code == "InvalidDocumentContent" {
            let message = err.message().unwrap_or_default();
            assert!(message.starts_with("The content for the document is not valid."), "{what}: {message}");
        }
    }
    // {{ssm:...}} references are left for Parameter Store.
    let with_ssm = RESTART_YAML.replace("{{ svc }}", "{{ svc }} {{ssm:/corral/flag}}");
    create(&ssm, "WithSsmRef", &with_ssm, DocumentFormat::Yaml).await;
    // Nothing was stored by the refusals.
    let listed = ssm.list_documents().filters(filter("Owner", &["Self"])).send().await.unwrap();
    assert_eq!(listed.document_identifiers().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_pages_and_tags() {
    let (_dir, server) = TestServer::start_fresh();
    let ssm = server.ssm();
    for (name, env) in [("Web-Restart", "prod"), ("Web-Deploy", "dev"), ("Db-Backup", "prod"), ("Zz-Last", "")] {
        let mut req = ssm.create_document().name(name).content(json_doc(name)).document_type(DocumentType::Command);
        if !env.is_empty() {
            req = req.tags(tag("env", env));
        }
        req.send().await.expect("create");
    }
    create(&ssm, "Win-Inventory", INVENTORY_JSON, DocumentFormat::Json).await;
    let names = |r: &aws_sdk_ssm::operation::list_documents::ListDocumentsOutput| -> Vec<String> {
        r.document_identifiers().iter().filter_map(|d| d.name().map(str::to_string)).collect()
    };

    let mine = ssm.list_documents().filters(filter("Owner", &["Self"])).send().await.unwrap();
    assert_eq!(names(&mine), ["Db-Backup", "Web-Deploy", "Web-Restart", "Win-Inventory", "Zz-Last"]);
    let first = &mine.document_identifiers()[0];
    assert_eq!(first.owner(), Some(server.account_id.as_str()));
    assert_eq!((first.document_version(), first.schema_version()), (Some("1"), Some("2.2")));
    assert_eq!(first.tags().len(), 1);

    let by_prefix = ssm.list_documents().filters(filter("Name", &["Web-", "Db"])).send().await.unwrap();
    assert_eq!(names(&by_prefix), ["Db-Backup", "Web-Deploy", "Web-Restart"]);
    let by_tag = ssm.list_documents().filters(filter("tag:env", &["prod"])).send().await.unwrap();
    assert_eq!(names(&by_tag), ["Db-Backup", "Web-Restart"]);
    let has_tag = ssm.list_documents().filters(filter("tag:env", &[])).send().await.unwrap();
    assert_eq!(names(&has_tag).len(), 3);
    let windows = ssm.list_documents().filters(filter("PlatformTypes", &["Windows"])).send().await.unwrap();
    assert_eq!(names(&windows), ["AWS-RunPowerShellScript", "Win-Inventory"]);
    let anded = ssm
        .list_documents()
        .filters(filter("PlatformTypes", &["Linux"]))
        .filters(filter("Owner", &["Self"]))
        .filters(filter("Name", &["W"]))
        .send()
        .await
        .unwrap();
    assert_eq!(names(&anded), ["Web-Deploy", "Web-Restart", "Win-Inventory"]);
    let typed = ssm.list_documents().filters(filter("DocumentType", &["Session"])).send().await.unwrap();
    assert!(names(&typed).is_empty());
    // The legacy filter list.
    let legacy = ssm
        .list_documents()
        .document_filter_list(DocumentFilter::builder().key(DocumentFilterKey::Name).value("Web").build().unwrap())
        .document_filter_list(DocumentFilter::builder().key(DocumentFilterKey::Owner).value("Self").build().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(names(&legacy), ["Web-Deploy", "Web-Restart"]);

    // Pages of two, AWS-owned documents merged in name order.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = ssm.list_documents().max_results(2).set_next_token(token.clone()).send().await.unwrap();
        assert!(page.document_identifiers().len() <= 2);
        seen.extend(names(&page));
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(
        seen,
        [
            "AWS-RunPowerShellScript",
            "AWS-RunShellScript",
            "Db-Backup",
            "Web-Deploy",
            "Web-Restart",
            "Win-Inventory",
            "Zz-Last"
        ]
    );

    let err = ssm.list_documents().filters(filter("Colour", &["red"])).send().await.expect_err("key");
    assert_eq!(err.code(), Some("InvalidFilterKey"));
    let err = ssm.list_documents().next_token("bogus").send().await.expect_err("token");
    assert_eq!(err.code(), Some("InvalidNextToken"));

    // Tags on a document.
    let tags_of = |name: &'static str| {
        let ssm = ssm.clone();
        async move {
            let out = ssm
                .list_tags_for_resource()
                .resource_type(ResourceTypeForTagging::Document)
                .resource_id(name)
                .send()
                .await
                .expect("list tags");
            out.tag_list().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect::<Vec<_>>()
        }
    };
    ssm.add_tags_to_resource()
        .resource_type(ResourceTypeForTagging::Document)
        .resource_id("Zz-Last")
        .tags(tag("owner", "me"))
        .tags(tag("env", "lab"))
        .send()
        .await
        .expect("add tags");
    assert_eq!(tags_of("Zz-Last").await, [("env".into(), "lab".into()), ("owner".into(), "me".into())]);
    ssm.remove_tags_from_resource()
        .resource_type(ResourceTypeForTagging::Document)
        .resource_id("Zz-Last")
        .tag_keys("owner")
        .send()
        .await
        .expect("remove tags");
    assert_eq!(tags_of("Zz-Last").await, [("env".to_string(), "lab".to_string())]);
    let d = ssm.describe_document().name("Zz-Last").send().await.unwrap().document.unwrap();
    assert_eq!(d.tags().len(), 1);
    let err = ssm
        .list_tags_for_resource()
        .resource_type(ResourceTypeForTagging::Document)
        .resource_id("Absent")
        .send()
        .await
        .expect_err("absent");
    assert_eq!(err.code(), Some("InvalidResourceId"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iam_decides_document_calls() {
    let (_dir, server) = TestServer::start_fresh();
    let acct = server.account_id.clone();
    server
        .ssm()
        .create_document()
        .name("Team-Doc")
        .content(json_doc("team"))
        .tags(tag("team", "blue"))
        .send()
        .await
        .expect("admin creates");

    // Read-only: reads and lists, but cannot create.
    let reader = user(&server, "reader", &["arn:aws:iam::aws:policy/AmazonSSMReadOnlyAccess"], None).await;
    let ssm = aws_sdk_ssm::Client::new(&server.sdk_config_with(&reader.0, &reader.1, None));
    ssm.list_documents().send().await.expect("list");
    ssm.describe_document().name("AWS-RunShellScript").send().await.expect("describe AWS doc");
    ssm.get_document().name("Team-Doc").send().await.expect("get own doc");
    let err = ssm.create_document().name("Mine").content(json_doc("m")).send().await.expect_err("denied");
    assert_eq!(err.code(), Some("AccessDeniedException"));
    let expected = format!(
        "User: arn:aws:iam::{acct}:user/reader is not authorized to perform: ssm:CreateDocument on resource: \
         arn:aws:ssm:us-east-1:{acct}:document/Mine because no identity-based policy allows the ssm:CreateDocument action"
    );
    assert_eq!(err.message(), Some(expected.as_str()));

    // Resource ARNs, the AWS-owned documents' empty account, document tags and types.
    let policy = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"ssm:DescribeDocument","Resource":"arn:aws:ssm:*::document/AWS-*"},
        {"Effect":"Allow","Action":"ssm:GetDocument","Resource":"*",
         "Condition":{"StringEquals":{"aws:ResourceTag/team":"blue"}}},
        {"Effect":"Allow","Action":"ssm:CreateDocument","Resource":"*",
         "Condition":{"StringEquals":{"ssm:DocumentType":"Session"}}}]}"#;
    let narrow = user(&server, "narrow", &[], Some(policy)).await;
    let ssm = aws_sdk_ssm::Client::new(&server.sdk_config_with(&narrow.0, &narrow.1, None));
    ssm.describe_document().name("AWS-RunShellScript").send().await.expect("AWS-* allowed");
    let err = ssm.describe_document().name("Team-Doc").send().await.expect_err("own doc not allowed");
    assert_eq!(err.code(), Some("AccessDeniedException"));
    ssm.get_document().name("Team-Doc").send().await.expect("tag allows");
    let err = ssm.get_document().name("AWS-RunShellScript").send().await.expect_err("no tag");
    assert_eq!(err.code(), Some("AccessDeniedException"));
    let err = ssm.create_document().name("Cmd").content(json_doc("c")).send().await.expect_err("Command type");
    assert_eq!(err.code(), Some("AccessDeniedException"));
    ssm.create_document()
        .name("Sess")
        .content(r#"{"schemaVersion": "1.0", "sessionType": "Standard_Stream", "inputs": {}}"#)
        .document_type(DocumentType::Session)
        .send()
        .await
        .expect("Session type allowed");
}
