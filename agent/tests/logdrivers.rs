//! Log drivers with real containers: `awslogs` output stays on the device (the
//! rotated files behind `skerry logs`) and the launch says so once, naming ECS's
//! stream; `none` keeps no log at all.

mod common;

use common::{lines_of, sh_task, TestEnv};

const AWSLOGS: &str = r#""logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/edge", "awslogs-region": "eu-west-1", "awslogs-stream-prefix": "ecs", "awslogs-create-group": "true", "mode": "non-blocking", "max-buffer-size": "4m"}}"#;

#[test]
fn awslogs_container_lines_reach_skerry_logs_and_the_launch_says_where() {
    let env = TestEnv::new();
    let out = env.run(
        "awslogs",
        &sh_task("awslogs", "echo to-cloudwatch; echo err-line >&2", AWSLOGS),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(lines_of(&out, "main"), vec!["to-cloudwatch"]);
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("CloudWatch is not reached from the device"))
        .collect();
    assert_eq!(said.len(), 1, "one notice per task, got:\n{stderr}");
    assert!(
        said[0].contains("main (stream ecs/main/awslogs)")
            && said[0].contains("skerry logs awslogs"),
        "{}",
        said[0]
    );
    let logs = env
        .skerry(&["logs", "awslogs"])
        .output()
        .expect("skerry logs");
    let text = String::from_utf8_lossy(&logs.stdout);
    assert!(text.lines().any(|l| l == "to-cloudwatch"), "{text}");
    let file = env.log("awslogs", "main");
    assert!(
        file.lines().any(|l| l.ends_with(" stderr err-line")),
        "{file}"
    );
}

#[test]
fn none_log_driver_keeps_no_output() {
    let env = TestEnv::new();
    let out = env.run(
        "nolog",
        &sh_task(
            "nolog",
            "echo dropped-line; echo dropped-err >&2; exit 3",
            r#""logConfiguration": {"logDriver": "none"}"#,
        ),
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(lines_of(&out, "main").is_empty());
    assert_eq!(env.log("nolog", "main"), "");
    let logs = env
        .skerry(&["logs", "nolog"])
        .output()
        .expect("skerry logs");
    let text = String::from_utf8_lossy(&logs.stdout);
    assert!(!text.contains("dropped"), "{text}");
}
