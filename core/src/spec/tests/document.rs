//! Refusals of the document itself: malformed JSON, not an object, unknown fields
//! (typos) and values of the wrong type, each at its JSON path.

use serde_json::json;

use super::*;

#[test]
fn malformed_json_reports_line_and_column() {
    let err =
        parse_task_definition("{\n  \"family\": \"x\",\n}", &ParseOptions::default()).unwrap_err();
    assert_eq!(err.problems.len(), 1);
    assert_eq!(err.problems[0].path, "");
    assert!(
        err.problems[0]
            .reason
            .starts_with("malformed json at line 3, column 1"),
        "{err}"
    );
}

#[test]
fn document_must_be_an_object() {
    let err = parse_task_definition("[1, 2]", &ParseOptions::default()).unwrap_err();
    assert!(
        err.problems[0]
            .reason
            .contains("must be a task definition object"),
        "{err}"
    );
}

#[test]
fn unknown_fields_are_refused_with_a_suggestion() {
    let err = assert_refused(
        &generate_test_task_with("famly", json!("x")),
        "famly",
        "unknown field",
    );
    assert!(
        err.problems[0].reason.contains("did you mean `family`?"),
        "{err}"
    );
    assert_refused(
        &generate_test_task_with("frobnicate", json!(1)),
        "frobnicate",
        "unknown field",
    );
    let err = assert_refused(
        &generate_test_task_with_container_field("memry", json!(64)),
        "containerDefinitions[0].memry",
        "unknown field",
    );
    assert_eq!(
        err.to_string(),
        "containerDefinitions[0].memry: unknown field (did you mean `memory`?)"
    );
    let nested = generate_test_task_with_container_field(
        "healthCheck",
        json!({ "command": ["NONE"], "intreval": 5 }),
    );
    assert_refused(
        &nested,
        "containerDefinitions[0].healthCheck.intreval",
        "did you mean `interval`?",
    );
    assert_refused(
        &json!({ "taskDefinition": generate_test_task(), "extra": 1 }),
        "extra",
        "unknown field",
    );
}

#[test]
fn wrong_types_name_the_field() {
    assert_refused(
        &generate_test_task_with_container_field("memory", json!("32")),
        "containerDefinitions[0].memory",
        "invalid type",
    );
    assert_refused(
        &generate_test_task_with_container_field("essential", json!("yes")),
        "containerDefinitions[0].essential",
        "invalid type",
    );
    assert_refused(
        &generate_test_task_with("cpu", json!(true)),
        "cpu",
        "invalid type",
    );
    assert_refused(
        &generate_test_task_with_container_field("stopTimeout", json!(-1)),
        "containerDefinitions[0].stopTimeout",
        "invalid value",
    );
}

#[test]
fn duplicate_keys_are_refused() {
    let json = r#"{"family":"a","containerDefinitions":[{"name":"x","image":"busybox","memory":32,"memory":64}]}"#;
    let err = parse_task_definition(json, &ParseOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "containerDefinitions[0].memory: is given twice"
    );
    let json = r#"{"family":"a","family":"b","containerDefinitions":[]}"#;
    let err = parse_task_definition(json, &ParseOptions::default()).unwrap_err();
    assert_eq!(err.to_string(), "family: is given twice");
}

#[test]
fn type_errors_speak_json() {
    let task = generate_test_task_with("containerDefinitions", json!({ "name": "x" }));
    assert_refused(
        &task,
        "containerDefinitions",
        "invalid type: object, expected an array",
    );
    let task = generate_test_task_with_container_field("restartPolicy", json!([true]));
    assert_refused(
        &task,
        "containerDefinitions[0].restartPolicy",
        "expected an object",
    );
    let err = assert_refused(
        &json!({ "taskDefinition": null }),
        "taskDefinition",
        "expected an object",
    );
    assert!(!err.to_string().contains("Raw"), "{err}");
    let task = generate_test_task_with_container_field("memory", json!(32.5));
    assert_refused(
        &task,
        "containerDefinitions[0].memory",
        "expected a whole number ≥ 0",
    );
}

#[test]
fn empty_document_is_malformed() {
    let err = parse_task_definition("", &ParseOptions::default()).unwrap_err();
    assert!(
        err.problems[0].reason.starts_with("malformed json"),
        "{err}"
    );
}
