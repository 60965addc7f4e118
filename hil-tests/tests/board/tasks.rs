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

/// A one-shot task (ECS RunTask) whose container allocates 64 MiB under a 16 MiB limit.
pub const OOM_TASK: &str = r#"{
  "family": "hog",
  "requiresCompatibilities": ["EXTERNAL"],
  "networkMode": "host",
  "containerDefinitions": [{
    "name": "hog",
    "image": "busybox:latest",
    "essential": true,
    "memory": 16,
    "command": ["sh", "-c", "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived ${#x}"]
  }]
}"#;

/// A container that exits at once: the create→start→exit→delete figure.
pub const TRUE_TASK: &str = r#"{
  "family": "bench",
  "requiresCompatibilities": ["EXTERNAL"],
  "networkMode": "host",
  "containerDefinitions": [{"name": "t", "image": "busybox:latest", "essential": true, "memory": 16, "command": ["true"]}]
}"#;

/// Run by the armv7 binary from the arm/v7 image: prints the machine and exits 7.
pub const ARMV7_TASK: &str = r#"{
  "family": "armv7-probe",
  "requiresCompatibilities": ["EXTERNAL"],
  "networkMode": "host",
  "containerDefinitions": [{
    "name": "probe",
    "image": "busybox:latest",
    "essential": true,
    "memory": 16,
    "command": ["sh", "-c", "echo machine=$(uname -m); echo armv7-container-ok; exit 7"]
  }]
}"#;
