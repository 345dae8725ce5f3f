"""lm-eval task YAMLs of ThreadWeaver Harness; installed as the data package `threadweaver_tasks`."""
