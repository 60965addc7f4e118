//! `secrets`, `logConfiguration.secretOptions` and `repositoryCredentials`:
//! accepted as references into the device's secret store, refused by field path.

use serde_json::json;

use super::*;
use crate::spec::{NamedSecret, SecretRef};

const AT: &str = "containerDefinitions[0]";

fn secret(name: &str, from: &str) -> NamedSecret {
    NamedSecret {
        name: name.into(),
        from: SecretRef {
            name: from.into(),
            json_key: None,
        },
    }
}

#[test]
fn secrets_env_log_options_and_registry_are_kept_as_names() {
    let mut task = generate_test_task();
    let c = &mut task["containerDefinitions"][0];
    c["environment"] = json!([{ "name": "MODE", "value": "prod" }]);
    c["secrets"] = json!([
        { "name": "DB_PASSWORD", "valueFrom": "arn:aws:ssm:eu-west-1:123456789012:parameter/prod/db" },
        { "name": "API_KEY", "valueFrom": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:api-AbC123" },
        { "name": "TOKEN", "valueFrom": "token" }
    ]);
    c["logConfiguration"] = json!({
        "logDriver": "json-file",
        "secretOptions": [{ "name": "splunk-token", "valueFrom": "log_token" }]
    });
    c["repositoryCredentials"] = json!({
        "credentialsParameter": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:registry-Xy12Zq"
    });
    let def = parse_ok(&task);
    let s = &def.containers[0].secrets;
    assert_eq!(
        s.env,
        [
            secret("DB_PASSWORD", "prod.db"),
            secret("API_KEY", "api"),
            secret("TOKEN", "token")
        ]
    );
    assert_eq!(s.log_options, [secret("splunk-token", "log_token")]);
    assert_eq!(
        s.registry.as_ref().map(|r| r.name.as_str()),
        Some("registry")
    );
    assert_eq!(
        s.names().into_iter().collect::<Vec<_>>(),
        ["api", "log_token", "prod.db", "registry", "token"]
    );
}

#[test]
fn secrets_without_any_keep_the_definition_digest_form() {
    let def = parse_ok(&generate_test_task());
    let json = serde_json::to_string(&def).unwrap();
    assert!(!json.contains("secrets"), "{json}");
}

#[test]
fn secrets_bad_names_are_refused_naming_the_field() {
    for (value_from, reason) in [
        ("../etc/passwd", "cannot contain '/'"),
        ("..", "\"..\""),
        ("", "1 to 255"),
        ("tab\there", "letters, digits"),
        (
            "arn:aws:secretsmanager:r:1:secret:db:k:AWSPREVIOUS:",
            "version-stage",
        ),
    ] {
        let task = generate_test_task_with_container_field(
            "secrets",
            json!([{ "name": "X", "valueFrom": value_from }]),
        );
        assert_refused(&task, &format!("{AT}.secrets[0].valueFrom"), reason);
    }
    let task = generate_test_task_with_container_field(
        "repositoryCredentials",
        json!({ "credentialsParameter": "a/b" }),
    );
    assert_refused(
        &task,
        &format!("{AT}.repositoryCredentials.credentialsParameter"),
        "cannot contain '/'",
    );
}

#[test]
fn secrets_clashing_with_environment_or_each_other_are_refused() {
    let mut task = generate_test_task();
    let c = &mut task["containerDefinitions"][0];
    c["environment"] = json!([{ "name": "DB_PASSWORD", "value": "plain" }]);
    c["secrets"] = json!([
        { "name": "DB_PASSWORD", "valueFrom": "db" },
        { "name": "TOKEN", "valueFrom": "t1" },
        { "name": "TOKEN", "valueFrom": "t2" },
        { "name": "", "valueFrom": "t3" },
        { "name": "NOFROM" }
    ]);
    let err = assert_refused(
        &task,
        &format!("{AT}.secrets[0].name"),
        "also set in environment",
    );
    for (path, reason) in [
        ("secrets[2].name", "listed twice"),
        ("secrets[3].name", "non-empty name"),
        ("secrets[4].valueFrom", "is required"),
    ] {
        assert!(
            err.problems
                .iter()
                .any(|p| p.path == format!("{AT}.{path}") && p.reason.contains(reason)),
            "{path}: {err}"
        );
    }
    let mut task = generate_test_task();
    task["containerDefinitions"][0]["logConfiguration"] = json!({
        "logDriver": "awslogs",
        "options": { "awslogs-group": "g", "awslogs-region": "us-east-1" },
        "secretOptions": [{ "name": "awslogs-group", "valueFrom": "g" }]
    });
    assert_refused(
        &task,
        &format!("{AT}.logConfiguration.secretOptions[0].name"),
        "also set in logConfiguration.options",
    );
}
