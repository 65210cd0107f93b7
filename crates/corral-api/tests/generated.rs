//! Cheap checks on the generated modules (regenerating needs the network, so it is not tested).

use corral_api::model::{Protocol, ShapeKind};
use corral_api::{cloudtrail, ec2messages, generated, iam, ssm, sts};

/// Checks one service's operation enum against its metadata.
macro_rules! check_service {
    ($svc:ident) => {{
        let meta = &$svc::SERVICE;
        assert!(
            meta.model_operations.windows(2).all(|w| w[0] < w[1]),
            "{}: model_operations must be sorted and unique",
            meta.name
        );
        for op in $svc::Operation::ALL {
            let name = op.name();
            assert_eq!($svc::Operation::from_name(name), Some(*op));
            assert!(meta.has_model_operation(name), "{name} not in the model");
            assert_eq!(op.iam_action(), format!("{}:{name}", meta.signing_name));
            assert!(matches!(op.input_shape().kind, ShapeKind::Structure { .. }));
            let read_only = ["Describe", "Get", "List", "Lookup"].iter().any(|p| name.starts_with(p));
            assert_eq!(op.read_only(), read_only, "{name}");
            match meta.protocol {
                Protocol::Query => assert_eq!(
                    op.result_wrapper().map(str::to_owned),
                    op.output_shape().map(|_| format!("{name}Result")),
                    "{name}"
                ),
                Protocol::Json => assert_eq!(op.result_wrapper(), None),
            }
        }
        assert_eq!($svc::Operation::from_name("NoSuchOperation"), None);
        assert!(!meta.has_model_operation("NoSuchOperation"));
        for (shape, code, status) in $svc::ERROR_CODES {
            assert!(!shape.is_empty() && !code.is_empty());
            assert!((400..600).contains(status), "{shape}: {status}");
        }
    }};
}

#[test]
fn operations_round_trip_and_exist_in_the_model() {
    check_service!(ssm);
    check_service!(sts);
    check_service!(iam);
    check_service!(cloudtrail);
    check_service!(ec2messages);
    let names: Vec<&str> = generated::SERVICES.iter().map(|s| s.name).collect();
    assert_eq!(names, ["cloudtrail", "ec2messages", "iam", "ssm", "sts"]);
}

#[test]
fn service_metadata() {
    assert_eq!(ssm::SERVICE.target_prefix, Some("AmazonSSM"));
    assert_eq!(ssm::SERVICE.protocol, Protocol::Json);
    assert_eq!(ssm::SERVICE.event_source, "ssm.amazonaws.com");
    assert_eq!(cloudtrail::SERVICE.target_prefix, Some("com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101"));
    assert_eq!(sts::SERVICE.protocol, Protocol::Query);
    assert_eq!(sts::SERVICE.xml_namespace, Some("https://sts.amazonaws.com/doc/2011-06-15/"));
    assert_eq!(iam::SERVICE.api_version, "2010-05-08");
    // An AWS operation Corral does not serve is known to the model but has no Operation.
    assert!(ssm::SERVICE.has_model_operation("StartAutomationExecution"));
    assert!(ssm::Operation::from_name("StartAutomationExecution").is_none());
    assert_eq!(ssm::Operation::from_name("SendCommand"), Some(ssm::Operation::SendCommand));
    // ec2messages comes from Corral's own model of the agent's long poll.
    assert_eq!(ec2messages::SERVICE.target_prefix, Some("EC2WindowsMessageDeliveryService"));
    assert_eq!(ec2messages::SERVICE.signing_name, "ec2messages");
    assert_eq!(ec2messages::Operation::GetMessages.iam_action(), "ec2messages:GetMessages");
    assert_eq!(ssm::Operation::GetServiceSetting.iam_action(), "ssm:GetServiceSetting");
    assert!(!ssm::Operation::UpdateServiceSetting.read_only());
    assert_eq!(sts::Operation::GetCallerIdentity.result_wrapper(), Some("GetCallerIdentityResult"));
    // Modelled error codes: query services use error.code and httpStatusCode.
    assert!(iam::ERROR_CODES.contains(&("NoSuchEntityException", "NoSuchEntity", 404)));
    assert!(ssm::ERROR_CODES.contains(&("InternalServerError", "InternalServerError", 500)));
    assert!(ssm::ERROR_CODES.contains(&("InvalidActivationId", "InvalidActivationId", 400)));
}
