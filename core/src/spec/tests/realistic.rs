//! Whole documents as users hand them over: `aws ecs describe-task-definition`
//! output, and the RegisterTaskDefinition examples shipped in `examples/`.

use std::path::PathBuf;
use std::time::Duration;

use crate::spec::*;

/// `aws ecs describe-task-definition --task-definition sensor-bridge:12 --include TAGS`
/// for an ECS Anywhere task, as the CLI prints it.
const DESCRIBE_OUTPUT: &str = r#"{
    "taskDefinition": {
        "taskDefinitionArn": "arn:aws:ecs:eu-central-1:123456789012:task-definition/sensor-bridge:12",
        "containerDefinitions": [
            {
                "name": "sensor-bridge",
                "image": "123456789012.dkr.ecr.eu-central-1.amazonaws.com/sensor-bridge:2.3.1",
                "cpu": 256,
                "memory": 128,
                "memoryReservation": 64,
                "portMappings": [
                    {
                        "containerPort": 8080,
                        "hostPort": 8080,
                        "protocol": "tcp",
                        "name": "http",
                        "appProtocol": "http"
                    }
                ],
                "essential": true,
                "environment": [
                    { "name": "BRIDGE_LISTEN", "value": "127.0.0.1:8080" },
                    { "name": "BRIDGE_DATA", "value": "/data" }
                ],
                "environmentFiles": [],
                "mountPoints": [
                    { "sourceVolume": "bridge-data", "containerPath": "/data", "readOnly": false }
                ],
                "volumesFrom": [],
                "linuxParameters": { "initProcessEnabled": true },
                "user": "1000",
                "ulimits": [ { "name": "nofile", "softLimit": 65536, "hardLimit": 65536 } ],
                "logConfiguration": {
                    "logDriver": "json-file",
                    "options": { "max-size": "10m", "max-file": "5" },
                    "secretOptions": []
                },
                "healthCheck": {
                    "command": [ "CMD-SHELL", "wget -q -O- http://127.0.0.1:8080/healthz || exit 1" ],
                    "interval": 30,
                    "timeout": 5,
                    "retries": 3,
                    "startPeriod": 15
                },
                "systemControls": [],
                "stopTimeout": 30
            },
            {
                "name": "watchdog",
                "image": "public.ecr.aws/docker/library/busybox:1.36",
                "cpu": 0,
                "memory": 16,
                "portMappings": [],
                "essential": false,
                "command": [ "sh", "-c", "while wget -q -O /dev/null http://127.0.0.1:8080/healthz; do sleep 60; done" ],
                "environment": [],
                "mountPoints": [],
                "volumesFrom": [],
                "dependsOn": [ { "containerName": "sensor-bridge", "condition": "HEALTHY" } ],
                "systemControls": []
            }
        ],
        "family": "sensor-bridge",
        "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
        "networkMode": "host",
        "revision": 12,
        "volumes": [
            { "name": "bridge-data", "host": { "sourcePath": "/var/lib/sensor-bridge" } }
        ],
        "status": "ACTIVE",
        "requiresAttributes": [
            { "name": "com.amazonaws.ecs.capability.ecr-auth" },
            { "name": "com.amazonaws.ecs.capability.docker-remote-api.1.29" },
            { "name": "ecs.capability.execution-role-ecr-pull" },
            { "name": "ecs.capability.container-health-check" },
            { "name": "ecs.capability.container-ordering" }
        ],
        "placementConstraints": [],
        "compatibilities": [ "EXTERNAL", "EC2" ],
        "requiresCompatibilities": [ "EXTERNAL" ],
        "cpu": "512",
        "memory": "256",
        "registeredAt": "2024-05-14T09:12:44.512000+02:00",
        "registeredBy": "arn:aws:sts::123456789012:assumed-role/Admin/jane"
    },
    "tags": [ { "key": "site", "value": "plant-7" } ]
}"#;

fn parse_str(json: &str) -> TaskDefinition {
    match parse_task_definition(json, &ParseOptions::default()) {
        Ok(def) => def,
        Err(err) => panic!("expected the document to be accepted, got:\n{err}"),
    }
}

#[test]
fn describe_task_definition_output() {
    let def = parse_str(DESCRIBE_OUTPUT);
    assert_eq!((def.family.as_str(), def.revision), ("sensor-bridge", 12));
    assert_eq!((def.cpu_units, def.memory_mib), (Some(512), Some(256)));
    assert_eq!(def.network_mode, NetworkMode::Host);
    assert_eq!(
        def.volume("bridge-data").map(|v| &v.source),
        Some(&VolumeSource::HostPath(PathBuf::from(
            "/var/lib/sensor-bridge"
        )))
    );
    let bridge = def.container("sensor-bridge").unwrap();
    assert_eq!(
        bridge.user,
        Some(UserSpec::Id {
            uid: 1000,
            gid: None
        })
    );
    assert_eq!(bridge.environment.len(), 2);
    assert!(bridge.linux.init_process_enabled);
    assert_eq!(bridge.ulimits[0].rlimit, "RLIMIT_NOFILE");
    assert_eq!(
        bridge.health_check.as_ref().map(|h| h.start_period),
        Some(Duration::from_secs(15))
    );
    let watchdog = def.container("watchdog").unwrap();
    assert!(!watchdog.essential);
    assert_eq!(
        watchdog.depends_on[0].condition,
        DependencyCondition::Healthy
    );
}

#[test]
fn hello_example() {
    let def = parse_str(include_str!("../../../../examples/hello.json"));
    assert_eq!(def.family, "hello");
    let hello = def.container("hello").unwrap();
    assert_eq!(hello.image, "busybox:latest");
    assert_eq!(hello.command.as_ref().map(Vec::len), Some(3));
    assert_eq!((hello.memory_mib, hello.essential), (Some(32), true));
    assert_eq!(hello.stop_timeout, Duration::from_secs(5));
}

#[test]
fn gateway_stack_example() {
    let def = parse_str(include_str!("../../../../examples/gateway-stack.json"));
    assert_eq!((def.cpu_units, def.memory_mib), (Some(1024), Some(512)));
    assert_eq!(def.containers.len(), 3);
    assert_eq!(
        def.volume("spool").map(|v| &v.source),
        Some(&VolumeSource::TaskScoped)
    );
    let broker = def.container("mqtt-broker").unwrap();
    assert_eq!(broker.port_mappings[0].host_port, Some(1883));
    assert!(broker.mount_points[0].read_only);
    let telemetry = def.container("telemetry").unwrap();
    assert_eq!(
        telemetry.user,
        Some(UserSpec::Id {
            uid: 1000,
            gid: Some(1000)
        })
    );
    assert_eq!(telemetry.linux.cap_drop, vec!["ALL".to_string()]);
    assert_eq!(
        telemetry.linux.cap_add,
        vec!["CAP_NET_BIND_SERVICE".to_string()]
    );
    assert_eq!(telemetry.linux.tmpfs[0].size_mib, 16);
    assert_eq!(telemetry.depends_on.len(), 2);
    assert_eq!(
        telemetry
            .restart_policy
            .as_ref()
            .map(|r| r.restart_attempt_period),
        Some(Duration::from_secs(120))
    );
    assert_eq!(
        telemetry.labels.get("com.example.team").map(String::as_str),
        Some("edge")
    );
}
