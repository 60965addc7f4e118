//! The task definitions the scenario places on the board (ECS JSON, as users write it).

/// A one-task service whose container writes `<counter> <guest uptime>` to the
/// bind-mounted /run/hb/beat every second, under a 24 MiB memory limit.
pub const BEAT_SERVICE: &str = r#"{
  "taskDefinition": {
    "family": "beat",
    "requiresCompatibilities": ["EXTERNAL"],
    "networkMode": "host",
    "volumes": [{"name": "hb", "host": {"sourcePath": "/run/hb"}}],
    "containerDefinitions": [{
      "name": "beat",
      "image": "busybox:latest",
      "essential": true,
      "memory": 24,
      "stopTimeout": 2,
      "mountPoints": [{"sourceVolume": "hb", "containerPath": "/hb"}],
      "command": ["sh", "-c", "i=0; while true; do i=$((i+1)); echo \"$i $(cut -d' ' -f1 /proc/uptime)\" >/hb/beat.tmp; mv /hb/beat.tmp /hb/beat; sleep 1; done"]
    }]
  },
  "desiredCount": 1,
  "deploymentConfiguration": {"minimumHealthyPercent": 0, "maximumPercent": 100}
}"#;

/// Memory limit of the beat container, as cgroup v2 `memory.max` must show it.
pub const BEAT_MEMORY_MAX: &str = "25165824";

/// A one-shot task (ECS RunTask) whose container doubles a string until it is far past
/// its 16 MiB limit (fast even under TCG).
pub const OOM_TASK: &str = r#"{
  "family": "hog",
  "requiresCompatibilities": ["EXTERNAL"],
  "networkMode": "host",
  "containerDefinitions": [{
    "name": "hog",
    "image": "busybox:latest",
    "essential": true,
    "memory": 16,
    "command": ["sh", "-c", "exec awk 'BEGIN { s = \"x\"; while (length(s) < 268435456) s = s s; print \"survived\" }'"]
  }]
}"#;

/// A container that exits at once: the create→start→exit→delete figure.
pub const TRUE_TASK: &str = r#"{
  "family": "bench",
  "requiresCompatibilities": ["EXTERNAL"],
  "networkMode": "host",
  "containerDefinitions": [{"name": "t", "image": "busybox:latest", "essential": true, "memory": 16, "command": ["true"]}]
}"#;

/// Run by the armv7 binary from the arm/v7 image: prints the ELF class of the busybox
/// it runs (01 = 32-bit) and exits 7.
pub const ARMV7_TASK: &str = r#"{
  "family": "armv7-probe",
  "requiresCompatibilities": ["EXTERNAL"],
  "networkMode": "host",
  "containerDefinitions": [{
    "name": "probe",
    "image": "busybox:latest",
    "essential": true,
    "memory": 16,
    "command": ["sh", "-c", "echo elfclass=$(od -An -tx1 -j4 -N1 /bin/busybox | tr -d ' '); echo armv7-container-ok; exit 7"]
  }]
}"#;

/// The beat service from a pulled `image` whose `/srv/revision` names its revision (the
/// container copies it to /run/hb/rev), with ECS's circuit breaker and rollback, one
/// failed task tripping it, and a 10 s stability window. With `unhealthy`, a health
/// check that always fails (the revision to roll back).
pub fn beat_service_from(image: &str, unhealthy: bool) -> String {
    let health = if unhealthy {
        r#""healthCheck": {"command": ["CMD-SHELL", "exit 1"], "interval": 5, "timeout": 2, "retries": 1, "startPeriod": 0},"#
    } else {
        ""
    };
    format!(
        r#"{{
  "taskDefinition": {{
    "family": "beat",
    "requiresCompatibilities": ["EXTERNAL"],
    "networkMode": "host",
    "volumes": [{{"name": "hb", "host": {{"sourcePath": "/run/hb"}}}}],
    "containerDefinitions": [{{
      "name": "beat",
      "image": "{image}",
      "essential": true,
      "memory": 24,
      "stopTimeout": 2,
      {health}
      "mountPoints": [{{"sourceVolume": "hb", "containerPath": "/hb"}}],
      "command": ["sh", "-c", "cp /srv/revision /hb/rev; i=0; while true; do i=$((i+1)); echo \"$i $(cut -d' ' -f1 /proc/uptime)\" >/hb/beat.tmp; mv /hb/beat.tmp /hb/beat; sleep 1; done"]
    }}]
  }},
  "desiredCount": 1,
  "deploymentConfiguration": {{
    "minimumHealthyPercent": 0, "maximumPercent": 100, "stabilityWindowSeconds": 10,
    "deploymentCircuitBreaker": {{"enable": true, "rollback": true, "failureThreshold": 1}}
  }}
}}"#
    )
}
