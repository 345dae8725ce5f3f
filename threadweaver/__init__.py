"""The `threadweaver` command: the top layer, the only code that imports both harness and trainers."""
