//! `logConfiguration`: awslogs options checked as ECS documents them, the drivers
//! kept on the device, and the refused drivers naming the supported ones.

use serde_json::{json, Value};

use super::*;
use crate::spec::{AwsLogs, LogDriver};

const AT: &str = "containerDefinitions[0].logConfiguration";

fn with_log(log: Value) -> Value {
    generate_test_task_with_container_field("logConfiguration", log)
}

fn awslogs(options: Value) -> Value {
    with_log(json!({ "logDriver": "awslogs", "options": options }))
}

fn base_options() -> Value {
    json!({ "awslogs-group": "/ecs/app", "awslogs-region": "eu-west-1", "awslogs-stream-prefix": "ecs" })
}

#[test]
fn awslogs_is_accepted_with_its_stream_name() {
    let mut options = base_options();
    for (k, v) in [
        ("awslogs-create-group", "true"),
        ("mode", "non-blocking"),
        ("max-buffer-size", "25m"),
        ("awslogs-datetime-format", "%Y-%m-%d %H:%M:%S"),
    ] {
        options[k] = json!(v);
    }
    let def = parse_ok(&awslogs(options));
    let LogDriver::Awslogs(aws) = &def.containers[0].log else {
        panic!("expected awslogs, got {:?}", def.containers[0].log);
    };
    assert_eq!(
        *aws,
        AwsLogs {
            group: "/ecs/app".into(),
            region: "eu-west-1".into(),
            stream_prefix: Some("ecs".into()),
            event_start: Some(crate::telemetry::multiline::datetime_pattern(
                "%Y-%m-%d %H:%M:%S"
            )),
            flush_secs: None,
        }
    );
    assert_eq!(
        aws.stream_name("app", "test-0a1b2c3d").as_deref(),
        Some("ecs/app/test-0a1b2c3d")
    );
    let mut no_prefix = base_options();
    no_prefix
        .as_object_mut()
        .unwrap()
        .remove("awslogs-stream-prefix");
    let def = parse_ok(&awslogs(no_prefix));
    let LogDriver::Awslogs(aws) = &def.containers[0].log else {
        panic!("expected awslogs");
    };
    assert_eq!(aws.stream_name("app", "t"), None);
}

#[test]
fn awslogs_options_are_checked() {
    let cases: [(&str, Value, &str); 9] = [
        (
            "awslogs-group",
            Value::Null,
            "is required by the awslogs log driver",
        ),
        (
            "awslogs-region",
            Value::Null,
            "is required by the awslogs log driver",
        ),
        (
            "awslogs-group",
            json!("my group"),
            "a log group name has letters",
        ),
        ("awslogs-region", json!("Europe"), "must be an AWS region"),
        ("awslogs-stream-prefix", json!("a:b"), "without ':' or '*'"),
        (
            "awslogs-create-group",
            json!("yes"),
            "must be \"true\" or \"false\"",
        ),
        (
            "mode",
            json!("async"),
            "must be \"blocking\" or \"non-blocking\"",
        ),
        (
            "max-buffer-size",
            json!("lots"),
            "must be a size such as \"25m\"",
        ),
        ("awslogs-colour", json!("blue"), "is not an awslogs option"),
    ];
    for (name, value, reason) in cases {
        let mut options = base_options();
        match value {
            Value::Null => {
                options.as_object_mut().unwrap().remove(name);
            }
            v => options[name] = v,
        }
        let err = assert_refused(&awslogs(options), &format!("{AT}.options.{name}"), reason);
        assert_eq!(err.problems.len(), 1, "one problem for {name}, got:\n{err}");
    }
}

#[test]
fn awslogs_option_combinations_are_checked() {
    let mut options = base_options();
    options["max-buffer-size"] = json!("4m");
    assert_refused(
        &awslogs(options),
        &format!("{AT}.options.max-buffer-size"),
        "only supported with \"mode\": \"non-blocking\"",
    );
    let mut options = base_options();
    options["awslogs-datetime-format"] = json!("%b %d");
    options["awslogs-multiline-pattern"] = json!("^INFO");
    assert_refused(
        &awslogs(options),
        &format!("{AT}.options.awslogs-multiline-pattern"),
        "cannot be set together with awslogs-datetime-format",
    );
}

#[test]
fn awslogs_multiline_pattern_is_kept_and_a_bad_one_refused_by_name() {
    let mut options = base_options();
    options["awslogs-multiline-pattern"] = json!("^(INFO|WARN|ERROR) ");
    options["awslogs-force-flush-interval-seconds"] = json!("2");
    let def = parse_ok(&awslogs(options));
    let LogDriver::Awslogs(aws) = &def.containers[0].log else {
        panic!("expected awslogs, got {:?}", def.containers[0].log);
    };
    assert_eq!(aws.event_start.as_deref(), Some("^(INFO|WARN|ERROR) "));
    assert_eq!(aws.flush_secs, Some(2));
    let mut options = base_options();
    options["awslogs-multiline-pattern"] = json!("^(INFO");
    assert_refused(
        &awslogs(options),
        &format!("{AT}.options.awslogs-multiline-pattern"),
        "is not a valid regular expression",
    );
}

#[test]
fn file_drivers_and_none_are_accepted() {
    for driver in ["json-file", "local"] {
        let def = parse_ok(&with_log(
            json!({ "logDriver": driver, "options": { "max-size": "10m" } }),
        ));
        assert_eq!(def.containers[0].log, LogDriver::Files);
    }
    assert_eq!(
        parse_ok(&generate_test_task()).containers[0].log,
        LogDriver::Files
    );
    let def = parse_ok(&with_log(json!({ "logDriver": "none" })));
    assert_eq!(def.containers[0].log, LogDriver::None);
    assert_refused(
        &with_log(json!({ "logDriver": "none", "options": { "max-size": "1m" } })),
        &format!("{AT}.options.max-size"),
        "the none log driver takes no options",
    );
}

#[test]
fn other_drivers_are_refused_naming_the_supported_ones() {
    for driver in ["splunk", "fluentd", "gelf", "syslog", "awsfirelens"] {
        let err = assert_refused(
            &with_log(json!({ "logDriver": driver })),
            &format!("{AT}.logDriver"),
            &format!("\"{driver}\" is not supported"),
        );
        assert_eq!(err.problems.len(), 1, "{err}");
        assert!(
            err.problems[0].reason.contains(
                "skerry supports the awslogs, journald, json-file, local, none and skerry log drivers"
            ),
            "{err}"
        );
    }
    assert_refused(
        &with_log(json!({ "options": {} })),
        &format!("{AT}.logDriver"),
        "is required",
    );
    let secret =
        json!({ "logDriver": "json-file", "secretOptions": [{ "name": "k", "valueFrom": "a/b" }] });
    assert_refused(
        &with_log(secret),
        &format!("{AT}.secretOptions[0].valueFrom"),
        "cannot contain '/'",
    );
}

#[test]
fn journald_options_checked_as_docker_takes_them() {
    let def = parse_ok(&with_log(json!({
        "logDriver": "journald",
        "options": { "tag": "{{.Name}}/{{.ID}}", "labels": "team,site", "env": "STAGE" }
    })));
    let LogDriver::Journald(j) = &def.containers[0].log else {
        panic!("not journald: {:?}", def.containers[0].log);
    };
    assert_eq!(j.tag.as_deref(), Some("{{.Name}}/{{.ID}}"));
    assert_eq!(j.labels, vec!["team", "site"]);
    assert_eq!(j.env, vec!["STAGE"]);
    assert_refused(
        &with_log(json!({ "logDriver": "journald", "options": { "max-size": "1m" } })),
        &format!("{AT}.options.max-size"),
        "is not a journald log driver option (tag, labels, labels-regex, env and env-regex are)",
    );
    assert_refused(
        &with_log(json!({ "logDriver": "journald", "options": { "env-regex": "^(S" } })),
        &format!("{AT}.options.env-regex"),
        "is not a valid regular expression",
    );
    assert_refused(
        &with_log(json!({ "logDriver": "journald", "options": { "tag": "{{.Hostname}}" } })),
        &format!("{AT}.options.tag"),
        "{{.Hostname}} is not a tag template field",
    );
    assert_refused(
        &with_log(json!({ "logDriver": "journald", "options": { "labels": "a,,b" } })),
        &format!("{AT}.options.labels"),
        "must be names separated by commas",
    );
}
